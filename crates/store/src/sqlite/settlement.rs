//! The settlement engine's transactions on SQLite: ingesting payment events and closing periods.
//!
//! The rules are the engine's ([`ledgerport_core::engine`]); this module reads what they need,
//! asks them, and writes what they decide. Two orderings make the feed order and the date order
//! one sequence: before an event is booked, every period its ledger has passed by then (by the
//! clock or by the event's own time) is closed; and an entry is never booked on a date earlier
//! than the ledger's latest booked date.
//!
//! Speed: a batch reads what it needs in a few queries (earlier answers, units, ledgers, chain
//! ends, pspReference totals) and writes entries, event ids and totals with multi-row INSERTs at
//! the end, one transaction in all.

use super::rows::{LedgerRow, PriorEventRow, UnitLedgerRow};
use super::{LEDGER_COLUMNS, json_array};
use crate::{ClosedPeriod, EventOutcome, Result, StoreError};
use jiff::Timestamp;
use ledgerport_core::engine::{
    PaymentEvent, PaymentTotals, PeriodFacts, Rejection, check_event, due_period_ends, plan_close,
    plan_event, totals_after,
};
use ledgerport_core::entry::{Entry, NewEntry};
use ledgerport_core::ids::{Country, LedgerDate, LedgerId, Msn, RecipientHandle, Topic};
use ledgerport_core::world::{Ledger, SalesUnit};
use sqlx::{Sqlite, Transaction};
use std::collections::HashMap;

type Tx<'c> = Transaction<'c, Sqlite>;

/// A value for a multi-row INSERT.
enum Value {
    Int(i64),
    Text(String),
    Null,
}

/// Inserts `rows` into `table (columns)` with as few statements as SQLite's parameter limit allows.
async fn insert_rows(
    tx: &mut Tx<'_>,
    head: &str,
    columns: usize,
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    // SQLite allows 32766 parameters per statement; stay well below.
    let per_statement = (8_000 / columns).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
        let one = format!("({})", vec!["?"; columns].join(", "));
        let sql = format!(
            "{head} VALUES {}",
            vec![one.as_str(); chunk.len()].join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in chunk.into_iter().flatten() {
            q = match v {
                Value::Int(i) => q.bind(i),
                Value::Text(s) => q.bind(s),
                Value::Null => q.bind(None::<String>),
            };
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The end of each (ledger, topic) chain written in one transaction, and the entries not yet
/// inserted. Sequence numbers and balances are assigned here, in memory; `flush` writes them.
#[derive(Default)]
pub(super) struct Chains {
    last: HashMap<(String, u8), (i64, i64, Option<LedgerDate>)>,
    pending: Vec<Vec<Value>>,
}

impl Chains {
    /// (seq, balance, ledger date) of the chain's last entry; (0, 0, None) for an empty chain.
    pub(super) async fn last(
        &mut self,
        tx: &mut Tx<'_>,
        ledger: &LedgerId,
        topic: Topic,
    ) -> Result<(i64, i64, Option<LedgerDate>)> {
        let key = (ledger.as_str().to_owned(), topic.code());
        if let Some(l) = self.last.get(&key) {
            return Ok(*l);
        }
        let row: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT seq, balance_after, ledger_date FROM entries WHERE ledger_id = ? AND topic = ? \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(ledger.as_str())
        .bind(i64::from(topic.code()))
        .fetch_optional(&mut **tx)
        .await?;
        let l = match row {
            Some((seq, balance, date)) => {
                (seq, balance, Some(LedgerDate::parse("ledger_date", &date)?))
            }
            None => (0, 0, None),
        };
        self.last.insert(key, l);
        Ok(l)
    }

    /// The latest date booked on either topic of the ledger.
    async fn last_booked(
        &mut self,
        tx: &mut Tx<'_>,
        ledger: &LedgerId,
    ) -> Result<Option<LedgerDate>> {
        let funds = self.last(tx, ledger, Topic::Funds).await?.2;
        let fees = self.last(tx, ledger, Topic::Fees).await?.2;
        Ok(funds.max(fees))
    }

    /// Places one entry at the end of its chain: the next sequence number, the balance carried.
    pub(super) async fn push(
        &mut self,
        tx: &mut Tx<'_>,
        ledger: &LedgerId,
        topic: Topic,
        e: NewEntry,
    ) -> Result<Entry> {
        let (seq, balance, _) = self.last(tx, ledger, topic).await?;
        let seq = seq + 1;
        let after = balance
            .checked_add(e.amount)
            .ok_or_else(|| StoreError::Invalid("balance would overflow".into()))?;
        let (name, message, phone) = match &e.payer {
            Some(p) => (
                Value::Text(p.name.clone()),
                Value::Text(p.message.clone()),
                Value::Text(p.masked_phone_no.clone()),
            ),
            None => (Value::Null, Value::Null, Value::Null),
        };
        self.pending.push(vec![
            Value::Text(ledger.as_str().to_owned()),
            Value::Int(i64::from(topic.code())),
            Value::Int(seq),
            Value::Text(e.psp_reference.clone()),
            Value::Text(e.time.clone()),
            Value::Text(e.ledger_date.to_string()),
            Value::Text(e.entry_type.clone()),
            Value::Text(e.reference.clone()),
            Value::Text(e.currency.as_str().to_owned()),
            Value::Int(e.amount),
            Value::Int(balance),
            Value::Int(after),
            Value::Text(e.recipient_handle.clone()),
            name,
            message,
            phone,
        ]);
        self.last.insert(
            (ledger.as_str().to_owned(), topic.code()),
            (seq, after, Some(e.ledger_date)),
        );
        Ok(Entry {
            seq,
            psp_reference: e.psp_reference,
            time: e.time,
            ledger_date: e.ledger_date,
            entry_type: e.entry_type,
            reference: e.reference,
            currency: e.currency,
            amount: e.amount,
            balance_before: balance,
            balance_after: after,
            recipient_handle: e.recipient_handle,
            payer: e.payer,
        })
    }

    /// Inserts the entries placed so far.
    pub(super) async fn flush(&mut self, tx: &mut Tx<'_>) -> Result<()> {
        let rows = std::mem::take(&mut self.pending);
        insert_rows(
            tx,
            "INSERT INTO entries (ledger_id, topic, seq, psp_reference, time, ledger_date, entry_type, reference, \
             currency, amount, balance_before, balance_after, recipient_handle, payer_name, payer_message, masked_phone_no)",
            16,
            rows,
        )
        .await
    }
}

/// What closing and booking need to know about one ledger, kept current within a transaction.
struct LedgerCtx {
    ledger: Ledger,
    country: Country,
    first_unit: RecipientHandle,
    /// Balances of the closed dates after their closing: what a period starts from.
    carried_funds: i64,
    carried_fees: i64,
}

async fn load_ctx(tx: &mut Tx<'_>, ledger_id: &str) -> Result<Option<LedgerCtx>> {
    let row: Option<LedgerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {LEDGER_COLUMNS} FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id WHERE l.ledger_id = ?"
    )))
    .bind(ledger_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (carried_funds, carried_fees): (i64, i64) = sqlx::query_as(
        "SELECT closed_funds_balance, closed_fees_balance FROM ledgers WHERE ledger_id = ?",
    )
    .bind(ledger_id)
    .fetch_one(&mut **tx)
    .await?;
    let first: Option<String> = sqlx::query_scalar(
        "SELECT su.handle FROM ledger_units lu JOIN sales_units su ON su.msn = lu.msn \
         WHERE lu.ledger_id = ? ORDER BY lu.position LIMIT 1",
    )
    .bind(ledger_id)
    .fetch_optional(&mut **tx)
    .await?;
    let first_unit = RecipientHandle::parse(
        "handle",
        &first.ok_or_else(|| {
            StoreError::Corrupt(format!("ledger {ledger_id} settles for no unit"))
        })?,
    )?;
    let view = row.into_view(Vec::new())?;
    Ok(Some(LedgerCtx {
        country: view.owner.scheme.country(),
        ledger: view.ledger,
        first_unit,
        carried_funds,
        carried_fees,
    }))
}

/// Closes the period of `ctx`'s ledger that ends `end`: its closing entries and the ledger's
/// progress. Entries placed in `chains` before are flushed first (the period's sums read them).
async fn close_period(
    tx: &mut Tx<'_>,
    ctx: &mut LedgerCtx,
    chains: &mut Chains,
    end: LedgerDate,
) -> Result<ClosedPeriod> {
    chains.flush(tx).await?;
    let id = ctx.ledger.ledger_id.clone();
    let (capture_fees, period_funds, period_fees): (i64, i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN entry_type = 'capture-fee' THEN amount END), 0), \
                COALESCE(SUM(CASE WHEN topic = 0 THEN amount END), 0), \
                COALESCE(SUM(CASE WHEN topic = 1 THEN amount END), 0) \
         FROM entries WHERE ledger_id = ? AND topic IN (0, 1) AND ledger_date > ? AND ledger_date <= ?",
    )
    .bind(id.as_str())
    .bind(ctx.ledger.closed_through.to_string())
    .bind(end.to_string())
    .fetch_one(&mut **tx)
    .await?;
    let funds_balance = ctx.carried_funds + period_funds;
    let fees_balance = ctx.carried_fees + period_fees;
    let next = ctx.ledger.next_payout_number;
    let facts = PeriodFacts {
        capture_fees,
        funds_balance,
        fees_balance,
        next_payout_number: next,
    };
    let plan = plan_close(&ctx.ledger, ctx.country, &ctx.first_unit, end, facts);
    let (mut payout, mut fees) = (None, 0);
    let (mut funds_after, mut fees_after) = (funds_balance, fees_balance);
    for (topic, e) in plan.entries {
        match topic {
            Topic::Funds => funds_after += e.amount,
            Topic::Fees => fees_after += e.amount,
        }
        match e.entry_type.as_str() {
            "payout-scheduled" => payout = Some((next, -e.amount)),
            "fees-invoiced" => fees = e.amount,
            "fees-retained" if topic == Topic::Fees => fees = e.amount,
            _ => {}
        }
        chains.push(tx, &id, topic, e).await?;
    }
    chains.flush(tx).await?;
    let next_after = next + i64::from(plan.used_payout_number);
    sqlx::query(
        "UPDATE ledgers SET closed_through = ?, next_payout_number = ?, closed_funds_balance = ?, \
         closed_fees_balance = ? WHERE ledger_id = ?",
    )
    .bind(end.to_string())
    .bind(next_after)
    .bind(funds_after)
    .bind(fees_after)
    .bind(id.as_str())
    .execute(&mut **tx)
    .await?;
    ctx.ledger.closed_through = end;
    ctx.ledger.next_payout_number = next_after;
    ctx.carried_funds = funds_after;
    ctx.carried_fees = fees_after;
    Ok(ClosedPeriod {
        ledger_id: id,
        end,
        payout,
        fees,
    })
}

/// Closes the ledger's due periods as of `now`, each in its own transaction (taken by `begin`).
pub(super) async fn close_due(
    store: &super::SqliteStore,
    ledger: &LedgerId,
    now: Timestamp,
) -> Result<Vec<ClosedPeriod>> {
    let mut closed = Vec::new();
    loop {
        let _w = store.write_lock.lock().await;
        let mut tx = store.pool.begin().await?;
        let mut ctx = load_ctx(&mut tx, ledger.as_str())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("ledger {ledger}")))?;
        let Some(end) = due_period_ends(&ctx.ledger, ctx.ledger.closed_through, now)
            .into_iter()
            .next()
        else {
            return Ok(closed);
        };
        let mut chains = Chains::default();
        closed.push(close_period(&mut tx, &mut ctx, &mut chains, end).await?);
        tx.commit().await?;
    }
}

/// Applies a batch of events in one transaction (see the module's notes).
pub(super) async fn ingest(
    store: &super::SqliteStore,
    events: Vec<PaymentEvent>,
    now: Timestamp,
) -> Result<Vec<EventOutcome>> {
    let _w = store.write_lock.lock().await;
    let mut tx = store.pool.begin().await?;
    let received_at = store.now();

    // Earlier answers, for every id in the batch at once.
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let prior_rows: Vec<(String, PriorEventRow)> = sqlx::query_as::<_, PriorWithId>(
        "SELECT event_id, ledger_id, entries, NULL AS field, NULL AS reason FROM events \
         WHERE event_id IN (SELECT value FROM json_each(?1)) \
         UNION ALL SELECT event_id, NULL, NULL, field, reason FROM rejected_events \
         WHERE event_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_array(&ids))
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.event_id, r.prior))
    .collect();
    let mut answered: HashMap<String, EventOutcome> = HashMap::new();
    for (id, row) in prior_rows {
        let o = row.into_outcome(&id)?;
        answered.insert(id, o);
    }

    let mut units: HashMap<Msn, Option<(SalesUnit, Option<String>)>> = HashMap::new();
    let mut ledgers: HashMap<String, LedgerCtx> = HashMap::new();
    let mut totals: HashMap<(String, String), PaymentTotals> = HashMap::new();
    let mut touched: Vec<(String, String)> = Vec::new();
    let mut chains = Chains::default();
    let (mut accepted_rows, mut rejected_rows) = (Vec::new(), Vec::new());
    let mut outcomes = Vec::with_capacity(events.len());

    for ev in events {
        if let Some(o) = answered.get(&ev.event_id) {
            outcomes.push(o.clone());
            continue;
        }
        let reject = |field: &'static str, reason: &str| EventOutcome::Rejected {
            event_id: ev.event_id.clone(),
            rejection: Rejection::new(field, reason),
        };
        if !units.contains_key(&ev.msn) {
            let row: Option<UnitLedgerRow> = sqlx::query_as(
                "SELECT lu.ledger_id, su.msn, su.merchant_id, su.name, su.kind, su.country, su.handle, su.created_at \
                 FROM sales_units su LEFT JOIN ledger_units lu ON lu.msn = su.msn WHERE su.msn = ?",
            )
            .bind(i64::from(ev.msn.get()))
            .fetch_optional(&mut *tx)
            .await?;
            let unit = row
                .map(|r| Ok::<_, StoreError>((r.unit.into_domain()?, r.ledger_id)))
                .transpose()?;
            units.insert(ev.msn, unit);
        }
        let outcome = match &units[&ev.msn] {
            None => reject("msn", "no sales unit has this MSN"),
            Some((_, None)) => reject("msn", "the sales unit settles on no ledger"),
            Some((unit, Some(ledger_id))) => {
                if !ledgers.contains_key(ledger_id) {
                    let ctx = load_ctx(&mut tx, ledger_id).await?.ok_or_else(|| {
                        StoreError::Corrupt(format!("ledger {ledger_id} of unit {}", ev.msn))
                    })?;
                    ledgers.insert(ledger_id.clone(), ctx);
                }
                let ctx = ledgers
                    .get_mut(ledger_id)
                    .ok_or_else(|| StoreError::Corrupt("ledger context".into()))?;
                let id = ctx.ledger.ledger_id.clone();
                let key = (ledger_id.clone(), ev.psp_reference.clone());
                let before = match totals.get(&key) {
                    Some(t) => *t,
                    None => {
                        let t: Option<(i64, i64)> = sqlx::query_as(
                            "SELECT captured, refunded FROM payments WHERE ledger_id = ? AND psp_reference = ?",
                        )
                        .bind(ledger_id)
                        .bind(&ev.psp_reference)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let t = t
                            .map(|(captured, refunded)| PaymentTotals { captured, refunded })
                            .unwrap_or_default();
                        totals.insert(key.clone(), t);
                        t
                    }
                };
                // A good event's own time counts as the clock (within the allowed skew): the
                // periods it has passed close before it is booked.
                if check_event(&ctx.ledger, unit, &ev, before, now).is_ok() {
                    for end in
                        due_period_ends(&ctx.ledger, ctx.ledger.closed_through, now.max(ev.time))
                    {
                        close_period(&mut tx, ctx, &mut chains, end).await?;
                    }
                }
                let last_booked = chains.last_booked(&mut tx, &id).await?;
                match plan_event(&ctx.ledger, unit, &ev, last_booked, before, now) {
                    Err(rejection) => EventOutcome::Rejected {
                        event_id: ev.event_id.clone(),
                        rejection,
                    },
                    Ok(entries) => {
                        let n = entries.len() as u32;
                        for (topic, e) in entries {
                            chains.push(&mut tx, &id, topic, e).await?;
                        }
                        let after = totals_after(before, &ev);
                        if after != before {
                            totals.insert(key.clone(), after);
                            touched.push(key);
                        }
                        accepted_rows.push(vec![
                            Value::Text(ev.event_id.clone()),
                            Value::Text(id.as_str().to_owned()),
                            Value::Int(i64::from(n)),
                            Value::Text(received_at.clone()),
                        ]);
                        EventOutcome::Accepted {
                            event_id: ev.event_id.clone(),
                            ledger_id: id,
                            entries: n,
                        }
                    }
                }
            }
        };
        if let EventOutcome::Rejected { rejection, .. } = &outcome {
            rejected_rows.push(vec![
                Value::Text(ev.event_id.clone()),
                Value::Text(rejection.field.to_owned()),
                Value::Text(rejection.reason.clone()),
                Value::Text(received_at.clone()),
            ]);
        }
        answered.insert(ev.event_id.clone(), outcome.clone());
        outcomes.push(outcome);
    }

    chains.flush(&mut tx).await?;
    insert_rows(
        &mut tx,
        "INSERT INTO events (event_id, ledger_id, entries, received_at)",
        4,
        accepted_rows,
    )
    .await?;
    insert_rows(
        &mut tx,
        "INSERT INTO rejected_events (event_id, field, reason, received_at)",
        4,
        rejected_rows,
    )
    .await?;
    touched.sort();
    touched.dedup();
    let payment_rows = touched
        .into_iter()
        .map(|key| {
            let t = totals[&key];
            vec![
                Value::Text(key.0),
                Value::Text(key.1),
                Value::Int(t.captured),
                Value::Int(t.refunded),
            ]
        })
        .collect();
    insert_rows(
        &mut tx,
        "INSERT OR REPLACE INTO payments (ledger_id, psp_reference, captured, refunded)",
        4,
        payment_rows,
    )
    .await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// An earlier answer with the event id it belongs to.
#[derive(sqlx::FromRow)]
struct PriorWithId {
    event_id: String,
    #[sqlx(flatten)]
    prior: PriorEventRow,
}
