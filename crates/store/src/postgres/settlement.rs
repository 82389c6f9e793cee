//! The settlement engine's transactions on PostgreSQL: ingesting payment events and closing
//! periods. The same steps as the SQLite backend's, with the ledgers' row locks taken first.
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

use super::{LEDGER_COLUMNS, owned};
use crate::sqlite::rows::{LedgerRow, PriorEventRow, UnitLedgerRow};
use crate::{ClosedPeriod, EventOutcome, Result, StoreError};
use jiff::Timestamp;
use ledgerport_core::engine::{
    PaymentEvent, PaymentTotals, PeriodFacts, Rejection, check_event, due_period_ends, plan_close,
    plan_event, totals_after,
};
use ledgerport_core::entry::{Entry, NewEntry};
use ledgerport_core::ids::{Country, LedgerDate, LedgerId, Msn, RecipientHandle, Topic};
use ledgerport_core::world::{Ledger, SalesUnit};
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;

type Tx<'c> = Transaction<'c, Postgres>;

/// A value for a multi-row INSERT.
enum Value {
    Int(i64),
    Text(String),
    Null,
}

/// Inserts `rows` into `table (columns)` with as few statements as the parameter limit allows.
async fn insert_rows(
    tx: &mut Tx<'_>,
    head: &str,
    columns: usize,
    tail: &str,
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    // PostgreSQL allows 65535 parameters per statement; stay well below.
    let per_statement = (8_000 / columns).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
        let mut sql = format!("{head} VALUES ");
        for r in 0..chunk.len() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..columns {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", r * columns + c + 1));
            }
            sql.push(')');
        }
        sql.push_str(tail);
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
            "SELECT seq, balance_after, ledger_date FROM entries WHERE ledger_id = $1 AND topic = $2 \
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

    /// Reads the ends of both chains of every ledger given, in one query.
    async fn preload(&mut self, tx: &mut Tx<'_>, ledger_ids: &[&str]) -> Result<()> {
        let rows: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT e.ledger_id, e.topic, e.seq, e.balance_after, e.ledger_date \
             FROM unnest($1::text[]) AS k(l) CROSS JOIN (VALUES (0::bigint), (1::bigint)) AS tt(t) \
             CROSS JOIN LATERAL (SELECT x.ledger_id, x.topic, x.seq, x.balance_after, x.ledger_date FROM entries x \
              WHERE x.ledger_id = k.l AND x.topic = tt.t ORDER BY x.seq DESC LIMIT 1) e",
        )
        .bind(owned(ledger_ids))
        .fetch_all(&mut **tx)
        .await?;
        for id in ledger_ids {
            for topic in [0u8, 1] {
                self.last.insert(((*id).to_owned(), topic), (0, 0, None));
            }
        }
        for (ledger, topic, seq, balance, date) in rows {
            let topic =
                u8::try_from(topic).map_err(|_| StoreError::Corrupt(format!("topic {topic}")))?;
            self.last.insert(
                (ledger, topic),
                (seq, balance, Some(LedgerDate::parse("ledger_date", &date)?)),
            );
        }
        Ok(())
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
            "",
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

/// A ledger row with what closing needs besides: carried balances and the first unit's handle.
#[derive(sqlx::FromRow)]
struct CtxRow {
    #[sqlx(flatten)]
    ledger: LedgerRow,
    closed_funds_balance: i64,
    closed_fees_balance: i64,
    first_handle: Option<String>,
}

/// Loads the contexts of the given ledgers in one query.
async fn load_ctxs(tx: &mut Tx<'_>, ledger_ids: &[&str]) -> Result<HashMap<String, LedgerCtx>> {
    let rows: Vec<CtxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {LEDGER_COLUMNS}, l.closed_funds_balance, l.closed_fees_balance, \
         (SELECT su.handle FROM ledger_units lu JOIN sales_units su ON su.msn = lu.msn \
          WHERE lu.ledger_id = l.ledger_id ORDER BY lu.position LIMIT 1) AS first_handle \
         FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id \
         WHERE l.ledger_id = ANY($1)"
    )))
    .bind(owned(ledger_ids))
    .fetch_all(&mut **tx)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let id = r.ledger.ledger_id.clone();
        let first = r
            .first_handle
            .ok_or_else(|| StoreError::Corrupt(format!("ledger {id} settles for no unit")))?;
        let view = r.ledger.into_view(Vec::new())?;
        out.insert(
            id,
            LedgerCtx {
                country: view.owner.scheme.country(),
                ledger: view.ledger,
                first_unit: RecipientHandle::parse("handle", &first)?,
                carried_funds: r.closed_funds_balance,
                carried_fees: r.closed_fees_balance,
            },
        );
    }
    Ok(out)
}

async fn load_ctx(tx: &mut Tx<'_>, ledger_id: &str) -> Result<Option<LedgerCtx>> {
    Ok(load_ctxs(tx, &[ledger_id]).await?.remove(ledger_id))
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
        "SELECT COALESCE(SUM(CASE WHEN entry_type = 'capture-fee' THEN amount END), 0)::BIGINT, \
                COALESCE(SUM(CASE WHEN topic = 0 THEN amount END), 0)::BIGINT, \
                COALESCE(SUM(CASE WHEN topic = 1 THEN amount END), 0)::BIGINT \
         FROM entries WHERE ledger_id = $1 AND topic IN (0, 1) AND ledger_date > $2 AND ledger_date <= $3",
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
        "UPDATE ledgers SET closed_through = $1, next_payout_number = $2, closed_funds_balance = $3, \
         closed_fees_balance = $4 WHERE ledger_id = $5",
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
    store: &super::PostgresStore,
    ledger: &LedgerId,
    now: Timestamp,
) -> Result<Vec<ClosedPeriod>> {
    let mut closed = Vec::new();
    loop {
        let mut tx = store.pool.begin().await?;
        lock_ledgers(&mut tx, &[ledger.as_str()]).await?;
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

/// Locks the rows of the given ledgers until the transaction ends, in ledger id order: whoever
/// holds them is the only writer of those ledgers' chains, totals and closings.
async fn lock_ledgers(tx: &mut Tx<'_>, ledger_ids: &[&str]) -> Result<()> {
    let mut ids = owned(ledger_ids);
    ids.sort_unstable();
    ids.dedup();
    sqlx::query(
        "SELECT ledger_id FROM ledgers WHERE ledger_id = ANY($1) ORDER BY ledger_id FOR UPDATE",
    )
    .bind(ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies a batch of events in one transaction (see the module's notes). The batch's ledgers
/// are locked before anything they hold is read, so earlier answers, totals and chain ends are
/// those of every batch committed before.
pub(super) async fn ingest(
    store: &super::PostgresStore,
    events: Vec<PaymentEvent>,
    now: Timestamp,
) -> Result<Vec<EventOutcome>> {
    let mut tx = store.pool.begin().await?;
    let received_at = store.now();

    let mut units: HashMap<Msn, Option<(SalesUnit, Option<String>)>> = HashMap::new();
    let mut totals: HashMap<(String, String), PaymentTotals> = HashMap::new();
    let mut touched: Vec<(String, String)> = Vec::new();
    let mut chains = Chains::default();
    let (mut accepted_rows, mut rejected_rows) = (Vec::new(), Vec::new());
    let mut outcomes = Vec::with_capacity(events.len());

    // The units of the batch, and the pspReference totals the batch's events refer to, each in
    // one query rather than one per event.
    let mut msns: Vec<i64> = events.iter().map(|e| i64::from(e.msn.get())).collect();
    msns.sort_unstable();
    msns.dedup();
    let unit_rows: Vec<UnitLedgerRow> = sqlx::query_as(
        "SELECT lu.ledger_id, su.msn, su.merchant_id, su.name, su.kind, su.country, su.handle, su.created_at \
         FROM sales_units su LEFT JOIN ledger_units lu ON lu.msn = su.msn \
         WHERE su.msn = ANY($1)",
    )
    .bind(msns.clone())
    .fetch_all(&mut *tx)
    .await?;
    for r in unit_rows {
        let unit = r.unit.into_domain()?;
        units.insert(unit.msn, Some((unit, r.ledger_id)));
    }
    for m in msns {
        units.entry(Msn::from_stored(m)).or_insert(None);
    }
    let mut ledger_ids: Vec<&str> = units
        .values()
        .filter_map(|u| u.as_ref().and_then(|(_, l)| l.as_deref()))
        .collect();
    ledger_ids.sort_unstable();
    ledger_ids.dedup();
    lock_ledgers(&mut tx, &ledger_ids).await?;

    // Earlier answers, for every id in the batch at once.
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let prior_rows: Vec<(String, PriorEventRow)> = sqlx::query_as::<_, PriorWithId>(
        "SELECT event_id, ledger_id, entries, NULL AS field, NULL AS reason FROM events \
         WHERE event_id = ANY($1) \
         UNION ALL SELECT event_id, NULL, NULL, field, reason FROM rejected_events \
         WHERE event_id = ANY($1)",
    )
    .bind(owned(&ids))
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
    let pairs: Vec<[&str; 2]> = events
        .iter()
        .filter(|e| !answered.contains_key(&e.event_id))
        .filter_map(|e| match units.get(&e.msn) {
            Some(Some((_, Some(l)))) => Some([l.as_str(), e.psp_reference.as_str()]),
            _ => None,
        })
        .collect();
    let (pair_ledgers, pair_refs): (Vec<String>, Vec<String>) = pairs
        .iter()
        .map(|[l, p]| ((*l).to_owned(), (*p).to_owned()))
        .unzip();
    let known: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT DISTINCT pm.ledger_id, pm.psp_reference, pm.captured, pm.refunded \
         FROM unnest($1::text[], $2::text[]) AS k(l, p) \
         JOIN payments pm ON pm.ledger_id = k.l AND pm.psp_reference = k.p",
    )
    .bind(pair_ledgers)
    .bind(pair_refs)
    .fetch_all(&mut *tx)
    .await?;
    for (l, p, captured, refunded) in known {
        totals.insert((l, p), PaymentTotals { captured, refunded });
    }
    // The ledgers of the batch and the ends of their chains, in one query each.
    let mut ledgers = load_ctxs(&mut tx, &ledger_ids).await?;
    chains.preload(&mut tx, &ledger_ids).await?;

    for ev in events {
        if let Some(o) = answered.get(&ev.event_id) {
            outcomes.push(o.clone());
            continue;
        }
        let reject = |field: &'static str, reason: &str| EventOutcome::Rejected {
            event_id: ev.event_id.clone(),
            rejection: Rejection::new(field, reason),
        };
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
                // Loaded above; a pspReference the ledger has not seen has no totals yet.
                let before = totals.get(&key).copied().unwrap_or_default();
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
        "",
        accepted_rows,
    )
    .await?;
    insert_rows(
        &mut tx,
        "INSERT INTO rejected_events (event_id, field, reason, received_at)",
        4,
        // An unknown MSN locks no ledger: two processes may reject the same event at once.
        " ON CONFLICT (event_id) DO NOTHING",
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
        "INSERT INTO payments (ledger_id, psp_reference, captured, refunded)",
        4,
        " ON CONFLICT (ledger_id, psp_reference) DO UPDATE SET captured = EXCLUDED.captured, \
         refunded = EXCLUDED.refunded",
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
