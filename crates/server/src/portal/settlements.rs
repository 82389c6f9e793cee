//! Merchant: Reports → Settlements. Per ledger and period: each ledger date's totals in columns
//! an accountant reads in order (sales, refunds, fees, fees retained, ...; each topic's entries
//! summed apart), the payout with its reference, the number of entries, the closing balances
//! and whether the date is still open; a chart of daily sales, refunds, fees and payout named
//! as the table's columns (server-rendered SVG); and the entries as CSV with the Report API's
//! fields, amounts as decimal amounts of the currency named in the `currency` column (123.45
//! for 12345 minor units, as many decimals as the currency's exponent); and the period as a
//! camt.053 bank statement (`crate::statement`).
//!
//! The ledger must be one the user's organisation owns: its entries are read with the
//! [`LedgerAccess`] the access policy gave this user for it when the organisation was loaded.

use super::auth::SignedIn;
use super::merchant::Org;
use super::templates::{Layout, SettlementDay, SettlementsPage};
use super::{PortalError, page};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use ledgerport_core::access::LedgerAccess;
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{Currency, LedgerDate, Topic};
use ledgerport_store::{LedgerView, Store};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The longest period one page or download covers.
const MAX_DAYS: i64 = 92;
const PAGE: u32 = 1000;

#[derive(Deserialize, Default)]
pub struct PeriodQuery {
    #[serde(default)]
    ledger: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    personal: String,
}

/// The chosen ledger and period, checked: the organisation's ledger, `from <= to`, at most
/// [`MAX_DAYS`]. Without a choice: the organisation's first ledger, the last 14 days.
fn choose<'a>(
    org: &'a Org,
    q: &PeriodQuery,
    today: impl Fn(&LedgerView) -> Date,
) -> Result<Option<(&'a LedgerView, Date, Date)>, PortalError> {
    let view = match q.ledger.trim() {
        "" => match org.ledgers.first() {
            Some(v) => v,
            None => return Ok(None),
        },
        id => org.ledger(id)?,
    };
    let date = |name: &str, s: &str| {
        s.trim()
            .parse::<Date>()
            .map_err(|_| PortalError::BadRequest(format!("{name}: must be a date YYYY-MM-DD")))
    };
    let to = match q.to.trim() {
        "" => today(view),
        s => date("to", s)?,
    };
    let from = match q.from.trim() {
        "" => to
            .checked_sub(jiff::Span::new().days(13))
            .map_err(|e| PortalError::BadRequest(format!("to: {e}")))?,
        s => date("from", s)?,
    };
    if from > to {
        return Err(PortalError::BadRequest("from: must not be after to".into()));
    }
    let days = (to - from).get_days() as i64 + 1;
    if days > MAX_DAYS {
        return Err(PortalError::BadRequest(format!(
            "from: a period is at most {MAX_DAYS} days"
        )));
    }
    Ok(Some((view, from, to)))
}

/// Every entry of one ledger date on one topic, in sequence.
async fn date_entries(
    store: &dyn Store,
    access: &LedgerAccess,
    topic: Topic,
    date: LedgerDate,
) -> Result<Vec<Entry>, PortalError> {
    let mut out = vec![];
    let mut after = 0;
    loop {
        let page = store.date_page(access, topic, date, after, PAGE).await?;
        let n = page.len();
        if let Some(last) = page.last() {
            after = last.seq;
        }
        out.extend(page);
        if n < PAGE as usize {
            return Ok(out);
        }
    }
}

fn dates(from: Date, to: Date) -> Vec<Date> {
    let mut d = from;
    let mut out = vec![];
    while d <= to {
        out.push(d);
        match d.tomorrow() {
            Ok(n) => d = n,
            Err(_) => break,
        }
    }
    out
}

/// Minor units as a plain decimal amount of the currency, `-1234.56`, as a spreadsheet reads it
/// (no grouping), with the currency's own number of decimals.
pub fn decimal(currency: Currency, minor: i64) -> String {
    currency.decimal(i128::from(minor))
}

/// Minor units as `-1 234.56`.
pub fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push('\u{202f}');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

/// A fixed column: its label, whether it is shown even when empty, the (topic, entry type) pairs
/// it sums.
type ColumnDef = (&'static str, bool, &'static [(Topic, &'static str)]);

/// The table's amount columns in reading order: what came in, what went back, the fees and
/// what settled them; each sums one or more (topic, entry type) pairs. Sales, refunds, fees
/// and fees retained are always shown; the others only when the period has such entries. The
/// payout has its own column. The fees topic's `fees-retained` is the mirror of the funds
/// topic's (the fees account settled), so it is shown once, as "Fees retained" on funds; the
/// two were once summed into one column that was always zero.
const COLUMNS: &[ColumnDef] = &[
    ("Sales", true, &[(Topic::Funds, "capture")]),
    ("Refunds", true, &[(Topic::Funds, "refund")]),
    (
        "Fees",
        true,
        &[
            (Topic::Fees, "capture-fee"),
            (Topic::Fees, "service-fee"),
            (Topic::Fees, "credit-note"),
            (Topic::Fees, "correction"),
        ],
    ),
    ("Fees retained", true, &[(Topic::Funds, "fees-retained")]),
    ("Fees invoiced", false, &[(Topic::Fees, "fees-invoiced")]),
    (
        "Disputes withheld",
        false,
        &[(Topic::Funds, "retained-disputed-capture")],
    ),
    (
        "Disputes returned",
        false,
        &[(Topic::Funds, "returned-disputed-capture")],
    ),
    ("Top-ups", false, &[(Topic::Funds, "top-up")]),
    ("Credit notes", false, &[(Topic::Funds, "credit-note")]),
    ("Corrections", false, &[(Topic::Funds, "correction")]),
    (
        "Payouts returned",
        false,
        &[(Topic::Funds, "payout-aborted")],
    ),
];

/// Entry types with a place of their own outside [`COLUMNS`].
const OWN_PLACE: &[(Topic, &str)] = &[
    (Topic::Funds, "payout-scheduled"),
    (Topic::Fees, "fees-retained"),
];

/// One column of the table: its label and the (topic, entry type) pairs it sums.
struct Column {
    label: String,
    sums: Vec<(Topic, String)>,
}

impl Column {
    fn total(&self, d: &Day) -> Option<i64> {
        let mut found = false;
        let mut sum = 0i64;
        for key in &self.sums {
            if let Some(v) = d.totals.get(&(key.0.as_str(), key.1.clone())) {
                found = true;
                sum = sum.saturating_add(*v);
            }
        }
        found.then_some(sum)
    }
}

/// The columns for these days: the fixed ones that apply, then any entry type the page does
/// not know (clients must accept new types, and so must this page), named with its topic.
fn columns(days: &[Day]) -> Vec<Column> {
    let present = |topic: Topic, t: &str| {
        days.iter()
            .any(|d| d.totals.contains_key(&(topic.as_str(), t.to_owned())))
    };
    let mut out: Vec<Column> = COLUMNS
        .iter()
        .filter(|(_, always, sums)| *always || sums.iter().any(|(tp, t)| present(*tp, t)))
        .map(|(label, _, sums)| Column {
            label: (*label).to_owned(),
            sums: sums.iter().map(|(tp, t)| (*tp, (*t).to_owned())).collect(),
        })
        .collect();
    let known = |topic: &str, t: &str| {
        COLUMNS
            .iter()
            .flat_map(|(_, _, sums)| sums.iter())
            .chain(OWN_PLACE)
            .any(|(tp, kt)| tp.as_str() == topic && *kt == t)
    };
    let mut unknown: std::collections::BTreeSet<(&'static str, String)> = Default::default();
    for d in days {
        for (topic, t) in d.totals.keys() {
            if !known(topic, t) {
                unknown.insert((topic, t.clone()));
            }
        }
    }
    for (topic, t) in unknown {
        let tp = if topic == Topic::Fees.as_str() {
            Topic::Fees
        } else {
            Topic::Funds
        };
        out.push(Column {
            label: format!("{t} ({topic})"),
            sums: vec![(tp, t)],
        });
    }
    out
}

struct Day {
    date: Date,
    /// Totals per (topic, entry type): the topics are kept apart, as a type such as
    /// `fees-retained` moves the same amount out of one and into the other.
    totals: BTreeMap<(&'static str, String), i64>,
    /// The funds balance after the date's last entry.
    closing: Option<i64>,
    /// The fees balance after the date's last fees entry.
    fees_closing: Option<i64>,
    /// The date's `payout-scheduled` amount (negative on funds).
    payout: i64,
    /// The payout's `pspReference` (`<ledgerId>-<payoutNumber>`), if the date pays out.
    payout_reference: String,
    /// Entries on both topics.
    entries: usize,
    open: bool,
}

async fn days_of(
    state: &AppState,
    access: &LedgerAccess,
    view: &LedgerView,
    from: Date,
    to: Date,
) -> Result<Vec<Day>, PortalError> {
    let now = state.clock.now();
    let mut out = vec![];
    for d in dates(from, to) {
        let ld = LedgerDate::from_date(d);
        let funds = date_entries(state.store.as_ref(), access, Topic::Funds, ld).await?;
        let fees = date_entries(state.store.as_ref(), access, Topic::Fees, ld).await?;
        let mut totals: BTreeMap<(&'static str, String), i64> = BTreeMap::new();
        for (topic, entries) in [(Topic::Funds, &funds), (Topic::Fees, &fees)] {
            for e in entries {
                let t = totals
                    .entry((topic.as_str(), e.entry_type.clone()))
                    .or_insert(0);
                *t = t.saturating_add(e.amount);
            }
        }
        let payouts: Vec<&Entry> = funds
            .iter()
            .filter(|e| e.entry_type == "payout-scheduled")
            .collect();
        out.push(Day {
            date: d,
            closing: funds.last().map(|e| e.balance_after),
            fees_closing: fees.last().map(|e| e.balance_after),
            payout: payouts.iter().map(|e| e.amount).sum(),
            payout_reference: payouts
                .iter()
                .map(|e| e.psp_reference.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            entries: funds.len() + fees.len(),
            totals,
            open: view.ledger.is_open(ld, now),
        });
    }
    Ok(out)
}

/// The chart's series, named as the table's columns: sales, refunds and fees as the table sums
/// them, and the payout.
const CHART_SERIES: [(&str, &str); 4] = [
    ("Sales", "#2e7d32"),
    ("Refunds", "#c62828"),
    ("Fees", "#ef6c00"),
    ("Payout", "#1565c0"),
];

/// Grouped bars per day: sales, refunds, fees and payouts as magnitudes. Only numbers and fixed
/// words go into the markup, so it needs no escaping.
fn chart(days: &[Day], cols: &[Column]) -> String {
    let col = |label: &str| cols.iter().find(|c| c.label == label);
    let values: Vec<[i64; 4]> = days
        .iter()
        .map(|d| {
            let of = |label: &str| col(label).and_then(|c| c.total(d)).unwrap_or(0).abs();
            [of("Sales"), of("Refunds"), of("Fees"), d.payout.abs()]
        })
        .collect();
    let max = values.iter().flatten().copied().max().unwrap_or(0).max(1);
    let (w, h, left, bottom, top) = (800.0_f64, 260.0_f64, 70.0, 40.0, 30.0);
    let plot_h = h - bottom - top;
    let slot = (w - left - 10.0) / days.len().max(1) as f64;
    let bar = (slot * 0.8 / 4.0).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="Daily sales, refunds, fees and payout" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">"#
    );
    for i in 0..=4 {
        let y = top + plot_h * (1.0 - i as f64 / 4.0);
        let v = max as f64 * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e6ec"/><text x="{}" y="{:.1}" text-anchor="end" fill="#667085">{}</text>"##,
            w - 10.0,
            left - 6.0,
            y + 4.0,
            money(v as i64).split('.').next().unwrap_or("0")
        );
    }
    for (i, (d, v)) in days.iter().zip(&values).enumerate() {
        let x0 = left + slot * i as f64 + slot * 0.1;
        for (k, (_, colour)) in CHART_SERIES.iter().enumerate() {
            let bh = plot_h * v[k] as f64 / max as f64;
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{bh:.1}" fill="{colour}"/>"#,
                x0 + bar * k as f64,
                top + plot_h - bh
            );
        }
        let every = (days.len() / 10).max(1);
        if i % every == 0 {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#667085">{}</text>"##,
                x0 + bar * 2.0,
                h - bottom + 16.0,
                d.date.strftime("%d.%m")
            );
        }
    }
    for (k, (name, colour)) in CHART_SERIES.iter().enumerate() {
        let x = left + 110.0 * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="8" width="12" height="12" fill="{colour}"/><text x="{}" y="18">{name}</text>"#,
            x + 16.0
        );
    }
    s.push_str("</svg>");
    s
}

fn today_of(state: &AppState) -> impl Fn(&LedgerView) -> Date + '_ {
    move |v: &LedgerView| v.ledger.ledger_date_of(state.clock.now()).date()
}

pub async fn page_handler(
    state: &AppState,
    who: &SignedIn,
    q: &PeriodQuery,
) -> Result<Response, PortalError> {
    let org = Org::load(state, who).await?;
    let ledgers: Vec<(String, String)> = org
        .ledgers
        .iter()
        .map(|v| {
            (
                v.ledger.ledger_id.to_string(),
                format!(
                    "Ledger {} — {} ({})",
                    v.ledger.ledger_id,
                    v.units
                        .iter()
                        .map(|u| format!("{} ({})", u.name, u.handle))
                        .collect::<Vec<_>>()
                        .join(", "),
                    v.ledger.currency.as_str()
                ),
            )
        })
        .collect();
    let chosen = choose(&org, q, today_of(state))?;
    let (mut types, mut rows, mut svg) = (vec![], vec![], String::new());
    let (mut ledger, mut from, mut to, mut currency) =
        (String::new(), String::new(), String::new(), String::new());
    let mut decimals = 2;
    if let Some((view, f, t)) = chosen {
        let days = days_of(state, org.access_to(view)?, view, f, t).await?;
        let cols = columns(&days);
        svg = chart(&days, &cols);
        rows = days
            .iter()
            .rev()
            .map(|d| SettlementDay {
                date: d.date.to_string(),
                totals: cols
                    .iter()
                    .map(|c| c.total(d).map(money).unwrap_or_default())
                    .collect(),
                payout: if d.payout == 0 {
                    String::new()
                } else {
                    money(-d.payout)
                },
                payout_reference: d.payout_reference.clone(),
                entries: d.entries,
                closing: d.closing.map(money).unwrap_or_else(|| "—".into()),
                fees_closing: d.fees_closing.map(money).unwrap_or_else(|| "—".into()),
                open: d.open,
            })
            .collect();
        types = cols.into_iter().map(|c| c.label).collect();
        ledger = view.ledger.ledger_id.to_string();
        from = f.to_string();
        to = t.to_string();
        currency = view.ledger.currency.as_str().to_owned();
        decimals = view.ledger.currency.exponent();
    }
    Ok(page(
        who.flash.is_some(),
        &SettlementsPage {
            l: Layout::of(who, "/portal/merchant/settlements"),
            ledgers,
            ledger,
            from,
            to,
            currency,
            decimals,
            types,
            rows,
            chart: svg,
        },
    ))
}

pub async fn page_route(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, PortalError> {
    page_handler(&state, &who, &q).await
}

/// A CSV cell: quoted when it holds a separator, quote or line break; text a spreadsheet would
/// run as a formula gets a leading apostrophe.
pub(super) fn cell(s: &str, text: bool) -> String {
    let s = if text && s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub async fn csv(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let Some((view, from, to)) = choose(&org, &q, today_of(&state))? else {
        return Err(PortalError::NotFound);
    };
    let personal = !q.personal.is_empty();
    let access = org.access_to(view)?;
    let mut out = String::from(
        "topic,pspReference,time,ledgerDate,entryType,reference,currency,amount,balanceBefore,balanceAfter,recipientHandle",
    );
    if personal {
        out.push_str(",name,message,maskedPhoneNo");
    }
    out.push_str("\r\n");
    for d in dates(from, to) {
        for (topic, name) in [(Topic::Funds, "funds"), (Topic::Fees, "fees")] {
            for e in date_entries(
                state.store.as_ref(),
                access,
                topic,
                LedgerDate::from_date(d),
            )
            .await?
            {
                let _ = write!(
                    out,
                    "{name},{},{},{},{},{},{},{},{},{},{}",
                    cell(&e.psp_reference, true),
                    e.time,
                    e.ledger_date,
                    cell(&e.entry_type, true),
                    cell(&e.reference, true),
                    e.currency.as_str(),
                    decimal(e.currency, e.amount),
                    decimal(e.currency, e.balance_before),
                    decimal(e.currency, e.balance_after),
                    cell(&e.recipient_handle, true),
                );
                if personal {
                    let p = e.payer.as_ref();
                    let _ = write!(
                        out,
                        ",{},{},{}",
                        cell(p.map(|p| p.name.as_str()).unwrap_or(""), true),
                        cell(p.map(|p| p.message.as_str()).unwrap_or(""), true),
                        cell(p.map(|p| p.masked_phone_no.as_str()).unwrap_or(""), true),
                    );
                }
                out.push_str("\r\n");
            }
        }
    }
    let file = if from == to {
        format!("ledger-{}-{from}.csv", view.ledger.ledger_id)
    } else {
        format!("ledger-{}-{from}-to-{to}.csv", view.ledger.ledger_id)
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        out,
    )
        .into_response())
}

/// The period as a camt.053 statement (ISO 20022 `BankToCustomerStatementV08`). The ledger and
/// period are chosen and checked as for the page and the CSV (a 400 names `from` or `to`; another
/// organisation's ledger is 403), and the entries are read with this user's access.
pub async fn camt053(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let Some((view, from, to)) = choose(&org, &q, today_of(&state))? else {
        return Err(PortalError::NotFound);
    };
    let access = org.access_to(view)?;
    let doc = crate::statement::camt053(
        state.store.as_ref(),
        access,
        view,
        &org.merchant_name,
        LedgerDate::from_date(from),
        LedgerDate::from_date(to),
        state.clock.now(),
    )
    .await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/xml; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", doc.file_name()),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        doc.xml,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_keeps_the_sign() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(-175), "-1.75");
        assert_eq!(money(123_456_789), "1\u{202f}234\u{202f}567.89");
    }

    #[test]
    fn csv_amounts_are_plain_decimals_of_the_currency() {
        assert_eq!(decimal(Currency::NOK, 124_900), "1249.00");
        assert_eq!(decimal(Currency::DKK, -175), "-1.75");
        assert_eq!(decimal(Currency::EUR, 5), "0.05");
        assert_eq!(decimal(Currency::NOK, 12_345), "123.45");
        assert_eq!(decimal(Currency::NOK, i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("a,b", true), "\"a,b\"");
        assert_eq!(cell("say \"hi\"", true), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)", true), "'=HYPERLINK(1)");
        assert_eq!(cell("plain", true), "plain");
    }
}
