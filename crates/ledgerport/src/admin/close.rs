//! `admin close`: closes the payout periods that have passed, on demand (the server's background
//! task does the same as time passes). Closing is idempotent: a period is closed once, so a second
//! run has nothing to do.

use super::{Output, find_ledger, store_err, table, time};
use anyhow::anyhow;
use jiff::Timestamp;
use ledgerport_core::ids::Currency;
use ledgerport_store::{ClosedPeriod, Store};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(clap::Args)]
#[command(after_help = "\
Each closed period is one line: the ledger, the period's last date, the payout it scheduled (number
and amount) and the fees it retained (net) or invoiced (gross). Amounts are in minor units. A period
whose balance is zero or negative pays nothing and carries the balance over.")]
pub struct CloseArgs {
    /// Close what is due as of this time, RFC 3339 (e.g. 2024-06-01T00:00:00Z); not in the future
    /// [default: now].
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Close only this ledger.
    #[arg(long, value_name = "LEDGER-ID")]
    pub ledger: Option<String>,
}

pub(super) async fn close(store: &dyn Store, a: CloseArgs) -> anyhow::Result<Output> {
    let until = until(a.until.as_deref(), Timestamp::now())?;
    let ledgers = match &a.ledger {
        Some(id) => vec![find_ledger(store, "--ledger", id).await?],
        None => store.ledgers().await.map_err(store_err)?,
    };
    let mut closed: Vec<(Currency, ClosedPeriod)> = Vec::new();
    for view in &ledgers {
        let id = &view.ledger.ledger_id;
        let periods = store.close_due(id, until).await.map_err(|e| {
            anyhow!(
                "closing ledger {id}: {} ({} periods of earlier ledgers were closed; running again \
                 continues where this stopped)",
                store_err(e),
                closed.len()
            )
        })?;
        closed.extend(periods.into_iter().map(|p| (view.ledger.currency, p)));
    }
    Ok(report(until, &closed))
}

/// The `--until` time: now when not given, never later than now.
fn until(given: Option<&str>, now: Timestamp) -> anyhow::Result<Timestamp> {
    let Some(s) = given else {
        return Ok(now);
    };
    let t: Timestamp = s.trim().parse().map_err(|_| {
        anyhow!("--until: {s:?} is not an RFC 3339 time such as 2024-06-01T00:00:00Z")
    })?;
    if t > now {
        return Err(anyhow!(
            "--until: {s} lies in the future (now is {}); only periods that have passed can be closed",
            time(now)
        ));
    }
    Ok(t)
}

fn report(until: Timestamp, closed: &[(Currency, ClosedPeriod)]) -> Output {
    let as_of = time(until);
    let rows: Vec<Vec<String>> = closed
        .iter()
        .map(|(currency, p)| {
            let (number, amount) = match p.payout {
                Some((n, a)) => (n.to_string(), a.to_string()),
                None => ("-".into(), "0".into()),
            };
            vec![
                p.ledger_id.to_string(),
                p.end.to_string(),
                number,
                amount,
                p.fees.to_string(),
                currency.to_string(),
            ]
        })
        .collect();
    // Totals per currency: (payouts, paid out, fees).
    let mut totals: BTreeMap<&str, (usize, i64, i64)> = BTreeMap::new();
    for (currency, p) in closed {
        let t = totals.entry(currency.as_str()).or_default();
        if let Some((_, amount)) = p.payout {
            t.0 += 1;
            t.1 += amount;
        }
        t.2 += p.fees;
    }
    let ledgers = {
        let mut ids: Vec<&str> = closed.iter().map(|(_, p)| p.ledger_id.as_str()).collect();
        ids.dedup();
        ids.len()
    };
    let text = if closed.is_empty() {
        format!("nothing due as of {as_of}\n")
    } else {
        let payouts: usize = totals.values().map(|t| t.0).sum();
        let sums = |pick: fn(&(usize, i64, i64)) -> i64| {
            totals
                .iter()
                .map(|(c, t)| format!("{} {c}", pick(t)))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        format!(
            "closed as of {as_of}:\n{}total: {} closed on {}, {}, paid out {}, fees {}\n",
            table(
                &["LEDGER", "DATE", "PAYOUT", "AMOUNT", "FEES", "CURRENCY"],
                &rows
            ),
            plural(closed.len(), "period", "periods"),
            plural(ledgers, "ledger", "ledgers"),
            plural(payouts, "payout", "payouts"),
            sums(|t| t.1),
            sums(|t| t.2),
        )
    };
    let json = json!({
        "until": as_of,
        "closed": closed.iter().map(|(currency, p)| json!({
            "ledger_id": p.ledger_id,
            "end": p.end,
            "payout_number": p.payout.map(|(n, _)| n),
            "payout_amount": p.payout.map_or(0, |(_, a)| a),
            "fees": p.fees,
            "currency": currency.as_str(),
        })).collect::<Vec<Value>>(),
        "totals": totals.iter().map(|(c, t)| json!({
            "currency": c, "payouts": t.0, "paid_out": t.1, "fees": t.2,
        })).collect::<Vec<Value>>(),
    });
    Output::new(text, json)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerport_core::ids::{LedgerDate, LedgerId};

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn period(ledger: &str, end: &str, payout: Option<(i64, i64)>, fees: i64) -> ClosedPeriod {
        ClosedPeriod {
            ledger_id: LedgerId::parse("l", ledger).expect("id"),
            end: LedgerDate::parse("d", end).expect("date"),
            payout,
            fees,
        }
    }

    #[test]
    fn until_defaults_to_now_and_may_lie_in_the_past_but_not_the_future() {
        let now = t("2024-06-04T10:00:00Z");

        let until = |given, now| until(given, now).map_err(|e| e.to_string());
        assert_eq!(until(None, now), Ok(now));
        assert_eq!(
            until(Some("2024-06-01T00:00:00+02:00"), now),
            Ok(t("2024-05-31T22:00:00Z"))
        );
        assert_eq!(
            until(Some("2024-06-04T10:00:01Z"), now),
            Err("--until: 2024-06-04T10:00:01Z lies in the future (now is \
                 2024-06-04T10:00:00.000000Z); only periods that have passed can be closed"
                .into())
        );
        assert_eq!(
            until(Some("yesterday"), now),
            Err(
                "--until: \"yesterday\" is not an RFC 3339 time such as 2024-06-01T00:00:00Z"
                    .into()
            )
        );
    }

    #[test]
    fn a_report_lists_each_period_and_totals_per_currency() {
        let closed = vec![
            (
                Currency::NOK,
                period("302321", "2024-06-01", Some((2_000_001, 28_800)), 1_200),
            ),
            (Currency::NOK, period("302321", "2024-06-02", None, 0)),
            (
                Currency::DKK,
                period("5001", "2024-06-02", Some((2_000_007, 500)), 25),
            ),
        ];

        let out = report(t("2024-06-04T10:00:00Z"), &closed);

        assert_eq!(
            out.text,
            "closed as of 2024-06-04T10:00:00.000000Z:\n\
             LEDGER  DATE        PAYOUT   AMOUNT  FEES  CURRENCY\n\
             302321  2024-06-01  2000001  28800   1200  NOK\n\
             302321  2024-06-02  -        0       0     NOK\n\
             5001    2024-06-02  2000007  500     25    DKK\n\
             total: 3 periods closed on 2 ledgers, 2 payouts, paid out 500 DKK + 28800 NOK, \
             fees 25 DKK + 1200 NOK\n"
        );
        assert_eq!(out.json["closed"][1]["payout_number"], Value::Null);
        assert_eq!(
            out.json["totals"],
            json!([
                {"currency": "DKK", "payouts": 1, "paid_out": 500, "fees": 25},
                {"currency": "NOK", "payouts": 1, "paid_out": 28800, "fees": 1200}
            ])
        );
    }

    #[test]
    fn a_report_of_nothing_says_nothing_is_due() {
        let out = report(t("2024-06-04T10:00:00Z"), &[]);

        assert_eq!(out.text, "nothing due as of 2024-06-04T10:00:00.000000Z\n");
        assert_eq!(out.json["closed"], json!([]));
    }
}
