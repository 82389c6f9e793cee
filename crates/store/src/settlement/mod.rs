//! The settlement engine's transactions, once for both SQL backends: ingesting payment events,
//! closing periods, and appending entries. The rules are the core's
//! ([`ledgerport_core::engine`]; chain arithmetic in [`ledgerport_core::chain`]); this reads what
//! they need, asks them, and writes what they decide. A backend supplies only its SQL primitives
//! ([`SettleSql`]): the statements written differently on each, and the ledger locks.
//!
//! Two orderings make the feed order and the date order one sequence:
//!
//! - **Close before booking.** Before an event is booked, every period its ledger has passed by
//!   then (by the clock, or by the event's own time when it is otherwise valid) is closed in the
//!   same transaction.
//! - **Never book backwards.** An entry is never booked on a date earlier than the ledger's
//!   latest booked date (the engine's `plan_event` takes that date).
//!
//! Speed: a batch reads what it needs in a few queries (units, earlier answers, pspReference
//! totals, ledgers, chain ends with their dates' digest states), places entries in memory, and
//! writes entries, their dates' digest states ([`digests`]), event ids and totals with
//! multi-row INSERTs at the end, one transaction in all.

mod digests;
pub(crate) mod proofs;

use crate::rows::{LedgerCtxRow, PriorWithIdRow, UnitLedgerRow, ledger_columns};
use crate::sql::{Arg, Dialect, List, SqlStore, Tx, args, events, texts};
use crate::sqlite::direct_settle::on_own_thread;
use crate::{ClosedPeriod, EventOutcome, Result, SettlementStore, StoreError};
use async_trait::async_trait;
use jiff::Timestamp;
use ledgerport_core::chain::{BalanceOverflow, ChainEnd, Chains, DateRun};
use ledgerport_core::engine::{
    EventKind, PaymentEvent, PaymentTotals, PayoutFacts, PeriodFacts, Rejection, Seen, check_event,
    due_period_ends, payout_reference, plan_close, plan_event, seen_after,
};
use ledgerport_core::entry::{Entry, NewEntry, check_entry_type};
use ledgerport_core::ids::{Country, LedgerDate, LedgerId, Msn, RecipientHandle, Topic};
use ledgerport_core::world::{Ledger, SalesUnit};
use std::collections::HashMap;
use std::future::Future;

/// The SQL of the settlement engine that differs between backends.
pub trait SettleSql: Dialect {
    /// Locks the rows of the ledgers `$1` (a list) in ledger id order until the transaction
    /// ends, so whoever holds them is the only writer of their chains, totals and closings;
    /// `None` where the store's write turn already makes every write transaction the only one.
    const LOCK_LEDGERS: Option<&'static str>;
    /// How the engine's inserts begin (`INSERT INTO` or a variant).
    const INSERT: &'static str;
    /// What follows the values of rejected events' rows.
    const REJECTED_TAIL: &'static str;
    /// Head and tail of the statement that writes pspReference totals, new or changed: columns
    /// ledger_id, psp_reference, captured, refunded, disputed, returned, refund_of.
    const PAYMENTS_UPSERT: (&'static str, &'static str);
    /// Where the last entry of both topics of every ledger of the list `$1` is found: a FROM
    /// clause giving them as `e`.
    const CHAIN_ENDS_FROM: &'static str;
    /// The (ledger, pspReference) pairs [`SettleSql::pairs`] binds, as a table `k(l, p)`.
    const PAIRS: &'static str;
    /// Where the entries of a period are found: a FROM clause giving the ledger `$1`'s entries
    /// of both topics dated after `$2` up to and including `$3` as `e`.
    const PERIOD_ENTRIES_FROM: &'static str;

    /// The arguments of [`SettleSql::PAIRS`]: two lists, of ledgers and of pspReferences, unless
    /// the backend binds the pairs another way.
    fn pairs(pairs: &[(String, String)]) -> Vec<Arg> {
        let (ledgers, refs) = pairs.iter().cloned().unzip();
        vec![
            Arg::List(List::Texts(ledgers)),
            Arg::List(List::Texts(refs)),
        ]
    }

    /// Records which entries each date holds, where the backend keeps that apart from the
    /// entries (runs of consecutive sequence numbers). A backend whose dates are served by an
    /// index of the entries keeps nothing.
    fn write_runs(
        tx: &mut impl Tx<Self>,
        runs: Vec<DateRun>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (tx, runs);
        async { Ok(()) }
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

/// The entries one transaction places, from the chain ends it has read, until they are written,
/// and the digest states of their dates.
struct Placing {
    chains: Chains,
    pending: Vec<(LedgerId, Topic, Entry)>,
    digests: digests::DateStates,
    /// Whether the digest states are read, extended and written: always, but for the store that
    /// measures closing as it was before proofs ([`SqlStore::measure_closing_without_proofs`]),
    /// which keeps none, as the store did then.
    track: bool,
}

impl Placing {
    fn new(track: bool) -> Self {
        Placing {
            chains: Chains::default(),
            pending: Vec::new(),
            digests: digests::DateStates::default(),
            track,
        }
    }

    /// Places one entry at the end of its chain.
    fn place(&mut self, ledger: &LedgerId, topic: Topic, e: NewEntry) -> Result<()> {
        let entry = self
            .chains
            .place(ledger, topic, e)
            .map_err(|overflow| StoreError::Invalid(overflow.to_string()))?;
        self.pending.push((ledger.clone(), topic, entry));
        Ok(())
    }

    /// Places the entries of one event, all or none; returns how many.
    fn place_event(
        &mut self,
        ledger: &LedgerId,
        entries: Vec<(Topic, NewEntry)>,
    ) -> std::result::Result<u32, BalanceOverflow> {
        let placed = self.chains.place_all(ledger, entries)?;
        let n = placed.len() as u32;
        self.pending.extend(
            placed
                .into_iter()
                .map(|(topic, e)| (ledger.clone(), topic, e)),
        );
        Ok(n)
    }

    /// Writes the entries placed so far, the date runs they make and their dates' digest states.
    async fn flush<DB: SettleSql>(&mut self, tx: &mut impl Tx<DB>) -> Result<()> {
        self.flush_entries(tx).await?;
        if self.track {
            self.digests.write(tx).await?;
        }
        Ok(())
    }

    /// Writes the entries placed so far and the date runs they make; their dates' digest states
    /// are extended in memory, left for the caller to write ([`digests::DateStates`]).
    async fn flush_entries<DB: SettleSql>(&mut self, tx: &mut impl Tx<DB>) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.track {
            self.digests.extend(tx, &self.pending).await?;
        }
        let rows = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(ledger, topic, e)| entry_row(ledger, topic, e))
            .collect();
        tx.insert_rows(
            &format!(
                "{} entries (ledger_id, topic, seq, psp_reference, time, ledger_date, entry_type, \
                 reference, currency, amount, balance_before, balance_after, recipient_handle, \
                 payer_name, payer_message, masked_phone_no)",
                DB::INSERT
            ),
            16,
            "",
            rows,
        )
        .await?;
        DB::write_runs(tx, self.chains.take_runs()).await
    }
}

fn entry_row(ledger: LedgerId, topic: Topic, e: Entry) -> Vec<Arg> {
    let (name, message, phone) = match e.payer {
        Some(p) => (
            Arg::Text(p.name),
            Arg::Text(p.message),
            Arg::Text(p.masked_phone_no),
        ),
        None => (Arg::NullText, Arg::NullText, Arg::NullText),
    };
    vec![
        Arg::Text(ledger.as_str().to_owned()),
        Arg::Int(i64::from(topic.code())),
        Arg::Int(e.seq),
        Arg::Text(e.psp_reference),
        Arg::Text(e.time),
        Arg::Text(e.ledger_date.to_string()),
        Arg::Text(e.entry_type),
        Arg::Text(e.reference),
        Arg::Text(e.currency.as_str().to_owned()),
        Arg::Int(e.amount),
        Arg::Int(e.balance_before),
        Arg::Int(e.balance_after),
        Arg::Text(e.recipient_handle),
        name,
        message,
        phone,
    ]
}

async fn lock_ledgers<DB: SettleSql>(tx: &mut impl Tx<DB>, ids: &[String]) -> Result<()> {
    if let Some(sql) = DB::LOCK_LEDGERS {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        tx.execute(sql, vec![texts(&ids)]).await?;
    }
    Ok(())
}

/// Loads the contexts of the given ledgers and the ends of their chains, one query each.
async fn load_ledgers<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    placing: &mut Placing,
    ids: &[String],
) -> Result<HashMap<String, LedgerCtx>> {
    let out = read_ledgers(tx, placing, ids).await?;
    read_chain_ends(tx, placing, ids).await?;
    Ok(out)
}

/// The contexts of the given ledgers, each chain starting empty in `placing` until
/// [`read_chain_ends`] reads where it stands.
async fn read_ledgers<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    placing: &mut Placing,
    ids: &[String],
) -> Result<HashMap<String, LedgerCtx>> {
    // The latest date with a digest state of each topic: every later date has no entries.
    let last_digests = if placing.track {
        "(SELECT MAX(dd.ledger_date) FROM date_digests dd WHERE dd.ledger_id = l.ledger_id \
          AND dd.topic = 0) AS last_funds_digest, \
         (SELECT MAX(dd.ledger_date) FROM date_digests dd WHERE dd.ledger_id = l.ledger_id \
          AND dd.topic = 1) AS last_fees_digest"
    } else {
        "CAST(NULL AS TEXT) AS last_funds_digest, CAST(NULL AS TEXT) AS last_fees_digest"
    };
    let sql = format!(
        "SELECT {}, l.closed_funds_balance, l.closed_fees_balance, \
         (SELECT su.handle FROM ledger_units lu JOIN sales_units su ON su.msn = lu.msn \
          WHERE lu.ledger_id = l.ledger_id ORDER BY lu.position LIMIT 1) AS first_handle, {} \
         FROM ledgers l JOIN merchants m ON m.id = l.owner_merchant_id WHERE {}",
        ledger_columns!(),
        last_digests,
        DB::in_list("l.ledger_id", "$1")
    );
    let rows: Vec<LedgerCtxRow> = tx.all(&sql, vec![texts(ids)]).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let id = r.ledger.ledger_id.clone();
        let first = r
            .first_handle
            .ok_or_else(|| StoreError::Corrupt(format!("ledger {id} settles for no unit")))?;
        let view = r.ledger.into_view(Vec::new())?;
        for (topic, last) in [
            (Topic::Funds, &r.last_funds_digest),
            (Topic::Fees, &r.last_fees_digest),
        ] {
            let lid = view.ledger.ledger_id.clone();
            placing.chains.set_end(lid.clone(), topic, ChainEnd::EMPTY);
            let last = last
                .as_deref()
                .map(|d| LedgerDate::parse("ledger_date", d))
                .transpose()?;
            placing.digests.set_latest_row(lid, topic, last);
        }
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

/// Where each chain of the given ledgers ends, with the digest state of the date it ends on,
/// into `placing`.
async fn read_chain_ends<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    placing: &mut Placing,
    ids: &[String],
) -> Result<()> {
    let sql = if placing.track {
        format!(
            "SELECT e.ledger_id, e.topic, e.seq, e.balance_after, e.ledger_date, s.entry_count, \
             s.amount_sum, s.opening_balance, s.closing_balance, s.digest FROM {} \
             LEFT JOIN date_digests s ON s.ledger_id = e.ledger_id AND s.topic = e.topic \
             AND s.ledger_date = e.ledger_date",
            DB::CHAIN_ENDS_FROM
        )
    } else {
        format!(
            "SELECT e.ledger_id, e.topic, e.seq, e.balance_after, e.ledger_date, \
             CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
             CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM {}",
            DB::CHAIN_ENDS_FROM
        )
    };
    let ends: Vec<ChainEndRow> = tx.all(&sql, vec![texts(ids)]).await?;
    for (ledger, topic, seq, balance, date, count, sum, opening, closing, digest) in ends {
        let topic = u8::try_from(topic)
            .ok()
            .and_then(Topic::from_code)
            .ok_or_else(|| StoreError::Corrupt(format!("topic {topic}")))?;
        let ledger = LedgerId::parse("ledger_id", &ledger)?;
        let date = LedgerDate::parse("ledger_date", &date)?;
        let end = ChainEnd {
            seq,
            balance,
            date: Some(date),
        };
        placing.chains.set_end(ledger.clone(), topic, end);
        if !placing.track {
            continue;
        }
        let (Some(count), Some(sum), Some(opening), Some(closing), Some(digest)) =
            (count, sum, opening, closing, digest)
        else {
            return Err(StoreError::Corrupt(format!(
                "ledger {ledger} {topic}: no digest state for {date}, which has entries (the \
                 store's start builds them for the ledgers listed in proof_backfill)"
            )));
        };
        let state = digests::state_from_columns((count, sum, opening, closing, digest))?;
        placing.digests.set_stored((ledger, topic, date), state);
    }
    Ok(())
}

/// A chain end and its date's digest state (`None`s when the date has no state row).
type ChainEndRow = (
    String,
    i64,
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

/// Closes the period of `ctx`'s ledger that ends `end`: its closing entries, the proofs of its
/// dates and the ledger's progress. Entries placed before are written first (with their dates'
/// digest states, which give the period's sums and proofs: no entry is read back).
async fn close_period<DB: SettleSql>(
    at: &str,
    tx: &mut impl Tx<DB>,
    ctx: &mut LedgerCtx,
    placing: &mut Placing,
    end: LedgerDate,
    prove: bool,
) -> Result<ClosedPeriod> {
    placing.flush(tx).await?;
    let id = ctx.ledger.ledger_id.clone();
    let after = ctx.ledger.closed_through;
    let overflow = || StoreError::Corrupt(format!("the balances of ledger {id} are out of range"));
    // The period's digest states and the proof before it, one statement: their sums make the
    // closing, and with the closing's own entries they make the dates' proofs.
    let topics = [Topic::Funds, Topic::Fees];
    let mut period = None;
    let (period_funds, period_fees): (i64, i64);
    if prove {
        let rows = proofs::read_period(tx, &id, &topics, after, end).await?;
        (period_funds, period_fees) = (rows.sum(Topic::Funds)?, rows.sum(Topic::Fees)?);
        period = Some(rows);
    } else {
        // Closing as it was before proofs, for measuring what they cost
        // ([`SqlStore::measure_closing_without_proofs`]).
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN e.topic = 0 THEN e.amount END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN e.topic = 1 THEN e.amount END), 0) AS BIGINT) FROM {}",
            DB::PERIOD_ENTRIES_FROM
        );
        (period_funds, period_fees) = tx
            .one(&sql, args![id.as_str(), after.to_string(), end.to_string()])
            .await?;
    }
    let funds_balance = ctx
        .carried_funds
        .checked_add(period_funds)
        .ok_or_else(overflow)?;
    let fees_balance = ctx
        .carried_fees
        .checked_add(period_fees)
        .ok_or_else(overflow)?;
    let next = ctx.ledger.next_payout_number;
    let facts = PeriodFacts {
        funds_balance,
        fees_balance,
        next_payout_number: next,
    };
    let plan = plan_close(&ctx.ledger, ctx.country, &ctx.first_unit, end, facts);
    let (mut payout, mut fees) = (None, 0);
    let mut payout_reference = None;
    let (mut funds_after, mut fees_after) = (funds_balance, fees_balance);
    for (topic, e) in plan.entries {
        let balance = match topic {
            Topic::Funds => &mut funds_after,
            Topic::Fees => &mut fees_after,
        };
        *balance = balance.checked_add(e.amount).ok_or_else(overflow)?;
        match e.entry_type.as_str() {
            "payout-scheduled" => {
                payout = Some((next, -e.amount));
                payout_reference = Some(e.psp_reference.clone());
                // What a payout-aborted may later bring back (whole, once). A row of the same
                // pspReference can only come from entries appended by hand before migration 6
                // recorded them; the engine's own payout is the one an abort names.
                tx.execute(
                    "DELETE FROM payouts WHERE ledger_id = $1 AND psp_reference = $2",
                    args![id.as_str(), e.psp_reference.clone()],
                )
                .await?;
                tx.execute(
                    &format!(
                        "{} payouts (ledger_id, psp_reference, amount, aborted) VALUES ($1, $2, $3, 0)",
                        DB::INSERT
                    ),
                    args![id.as_str(), e.psp_reference.clone(), -e.amount],
                )
                .await?;
            }
            "fees-invoiced" => fees = e.amount,
            "fees-retained" if topic == Topic::Fees => fees = e.amount,
            _ => {}
        }
        placing.place(&id, topic, e)?;
    }
    // The closing's entries, with the end date's digest states extended by them in memory:
    // the proofs' upsert writes those states.
    placing.flush_entries(tx).await?;
    match &period {
        Some(period) => {
            proofs::write_proofs(tx, &id, &topics, period, end, &mut placing.digests).await?;
            // Nothing is left unless the closing placed entries off its period: no statement.
            placing.digests.write(tx).await?;
        }
        None => placing.digests.discard_changes(),
    }
    let next_after = next
        .checked_add(i64::from(plan.used_payout_number))
        .ok_or_else(overflow)?;
    tx.execute(
        "UPDATE ledgers SET closed_through = $1, next_payout_number = $2, closed_funds_balance = $3, \
         closed_fees_balance = $4 WHERE ledger_id = $5",
        args![end.to_string(), next_after, funds_after, fees_after, id.as_str()],
    )
    .await?;
    // The events of the closing, in its transaction: the payout first, then the date, whose
    // entries are final from here on.
    let currency = ctx.ledger.currency;
    if let (Some((_, amount)), Some(reference)) = (payout, payout_reference) {
        tx.record_event(
            at,
            events::payout_scheduled(&id, end, currency, &reference, amount),
        )
        .await?;
    }
    tx.record_event(
        at,
        events::ledger_date_closed(&id, end, currency, funds_after, fees_after),
    )
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

/// A sales unit of the batch and the ledger it settles on, if any.
type UnitOf = Option<(SalesUnit, Option<String>)>;

/// A `payments` row: ledger, pspReference, captured, refunded, disputed, returned, refund_of.
type PaymentRow = (String, String, i64, i64, i64, i64, Option<String>);

/// What the store keeps of one pspReference: the engine's totals and, for a refund's own
/// pspReference, the capture it refunds.
#[derive(Default)]
struct Payment {
    totals: PaymentTotals,
    refund_of: Option<String>,
}

/// Applies a batch of events in one transaction (see the module's notes). The batch's ledgers
/// are locked before anything they hold is read, so earlier answers, totals and chain ends are
/// those of every batch committed before.
async fn ingest<DB: SettleSql>(
    store: &SqlStore<DB>,
    events: Vec<PaymentEvent>,
    now: Timestamp,
) -> Result<Vec<EventOutcome>> {
    match &store.direct_settle {
        Some(direct) => {
            on_own_thread(async {
                let tx = direct.begin(store).await?;
                ingest_in(store, tx, events, now).await
            })
            .await
        }
        None => ingest_in(store, store.begin_settling().await?, events, now).await,
    }
}

/// [`ingest`] in the transaction `tx`.
async fn ingest_in<DB: SettleSql>(
    store: &SqlStore<DB>,
    mut tx: impl Tx<DB>,
    events: Vec<PaymentEvent>,
    now: Timestamp,
) -> Result<Vec<EventOutcome>> {
    let received_at = store.now();

    // The units of the batch and their ledgers, locked before anything else is read.
    let mut msns: Vec<i64> = events.iter().map(|e| i64::from(e.msn.get())).collect();
    msns.sort_unstable();
    msns.dedup();
    let sql = format!(
        "SELECT lu.ledger_id, su.msn, su.merchant_id, su.name, su.kind, su.country, su.handle, su.created_at \
         FROM sales_units su LEFT JOIN ledger_units lu ON lu.msn = su.msn WHERE {}",
        DB::in_list("su.msn", "$1")
    );
    let unit_rows: Vec<UnitLedgerRow> = tx
        .all(&sql, vec![Arg::List(List::Ints(msns.clone()))])
        .await?;
    let mut units: HashMap<Msn, UnitOf> = HashMap::new();
    for r in unit_rows {
        let unit = r.unit.into_domain()?;
        units.insert(unit.msn, Some((unit, r.ledger_id)));
    }
    for m in msns {
        units.entry(Msn::from_stored(m)).or_insert(None);
    }
    let mut ledger_ids: Vec<String> = units
        .values()
        .filter_map(|u| u.as_ref().and_then(|(_, l)| l.clone()))
        .collect();
    ledger_ids.sort_unstable();
    ledger_ids.dedup();
    lock_ledgers(&mut tx, &ledger_ids).await?;

    // Earlier answers, for every id in the batch at once.
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let sql = format!(
        "SELECT event_id, ledger_id, entries, NULL AS field, NULL AS reason FROM events WHERE {} \
         UNION ALL SELECT event_id, NULL, NULL, field, reason FROM rejected_events WHERE {}",
        DB::in_list("event_id", "$1"),
        DB::in_list("event_id", "$1")
    );
    let prior: Vec<PriorWithIdRow> = tx.all(&sql, vec![texts(&ids)]).await?;
    let mut answered: HashMap<String, EventOutcome> = HashMap::new();
    for r in prior {
        let o = r.prior.into_outcome(&r.event_id)?;
        answered.insert(r.event_id, o);
    }

    // The pspReference totals the batch's new events refer to: each event's own, and the
    // capture a refund names.
    let ledger_of = |e: &PaymentEvent| match units.get(&e.msn) {
        Some(Some((_, Some(l)))) => Some(l.clone()),
        _ => None,
    };
    let new_events = || {
        events
            .iter()
            .filter(|e| !answered.contains_key(&e.event_id))
            .filter_map(|e| ledger_of(e).map(|l| (l, e)))
    };
    let pairs: Vec<(String, String)> = new_events()
        .flat_map(|(l, e)| {
            let capture = e.capture_psp_reference.clone().map(|c| (l.clone(), c));
            std::iter::once((l, e.psp_reference.clone())).chain(capture)
        })
        .collect();
    let sql = format!(
        "SELECT DISTINCT pm.ledger_id, pm.psp_reference, pm.captured, pm.refunded, pm.disputed, \
         pm.returned, pm.refund_of FROM {} \
         JOIN payments pm ON pm.ledger_id = k.l AND pm.psp_reference = k.p",
        DB::PAIRS
    );
    let known: Vec<PaymentRow> = tx.all(&sql, DB::pairs(&pairs)).await?;
    let mut totals: HashMap<(String, String), Payment> = HashMap::new();
    for (l, p, captured, refunded, disputed, returned, refund_of) in known {
        let totals_of = PaymentTotals {
            captured,
            refunded,
            disputed,
            returned,
            is_refund: refund_of.is_some(),
        };
        totals.insert(
            (l, p),
            Payment {
                totals: totals_of,
                refund_of,
            },
        );
    }

    // The payouts that payout-aborted events name (closings in this batch add theirs below).
    let payout_pairs: Vec<(String, String)> = new_events()
        .filter(|(_, e)| e.kind == EventKind::PayoutAborted)
        .map(|(l, e)| (l, e.psp_reference.clone()))
        .collect();
    let mut payouts: HashMap<(String, String), PayoutFacts> = HashMap::new();
    if !payout_pairs.is_empty() {
        let sql = format!(
            "SELECT DISTINCT po.ledger_id, po.psp_reference, po.amount, po.aborted FROM {} \
             JOIN payouts po ON po.ledger_id = k.l AND po.psp_reference = k.p",
            DB::PAIRS
        );
        let rows: Vec<(String, String, i64, i64)> = tx.all(&sql, DB::pairs(&payout_pairs)).await?;
        for (l, p, amount, aborted) in rows {
            payouts.insert(
                (l, p),
                PayoutFacts {
                    amount,
                    aborted: aborted != 0,
                },
            );
        }
    }
    let mut aborted_payouts: Vec<(String, String)> = Vec::new();

    let mut placing = Placing::new(store.proofs);
    let mut ledgers = load_ledgers(&mut tx, &mut placing, &ledger_ids).await?;
    let mut touched: Vec<(String, String)> = Vec::new();
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
        let outcome = match &units[&ev.msn] {
            None => reject("msn", "no sales unit has this MSN"),
            Some((_, None)) => reject("msn", "the sales unit settles on no ledger"),
            Some((unit, Some(ledger_id))) => {
                let ctx = ledgers.get_mut(ledger_id).ok_or_else(|| {
                    StoreError::Corrupt(format!("ledger {ledger_id} of unit {}", ev.msn))
                })?;
                let id = ctx.ledger.ledger_id.clone();
                let key = |psp: &str| (ledger_id.clone(), psp.to_owned());
                let payment_key = key(ev.payment_reference());
                let own_key = ev.own_refund_reference().map(key);
                let payout_key = key(&ev.psp_reference);
                // Loaded above; a pspReference the ledger has not seen has no totals yet.
                let totals_of =
                    |k: &(String, String)| totals.get(k).map(|p| p.totals).unwrap_or_default();
                let seen = Seen {
                    payment: totals_of(&payment_key),
                    own: own_key.as_ref().map(totals_of).unwrap_or_default(),
                    payout: if ev.kind == EventKind::PayoutAborted {
                        payouts.get(&payout_key).copied()
                    } else {
                        None
                    },
                };
                // A good event's own time counts as the clock (within the allowed skew): the
                // periods it has passed close before it is booked. (A payout-aborted of a payout
                // those closings schedule is not good yet, so its time closes nothing: it is
                // refused, as it would have been had it come before the closing.)
                if check_event(&ctx.ledger, unit, &ev, &seen, now).is_ok() {
                    for end in
                        due_period_ends(&ctx.ledger, ctx.ledger.closed_through, now.max(ev.time))
                    {
                        let closed = close_period(
                            &received_at,
                            &mut tx,
                            ctx,
                            &mut placing,
                            end,
                            store.proofs,
                        )
                        .await?;
                        if let Some((number, amount)) = closed.payout {
                            payouts.insert(
                                key(&payout_reference(&id, number)),
                                PayoutFacts {
                                    amount,
                                    aborted: false,
                                },
                            );
                        }
                    }
                }
                let last_booked = placing.chains.last_booked(&id);
                match plan_event(&ctx.ledger, unit, &ev, last_booked, &seen, now) {
                    Err(rejection) => EventOutcome::Rejected {
                        event_id: ev.event_id.clone(),
                        rejection,
                    },
                    Ok(entries) => match placing.place_event(&id, entries) {
                        // One event must not fail its batch: it is refused, the rest applied.
                        Err(overflow) => EventOutcome::Rejected {
                            event_id: ev.event_id.clone(),
                            rejection: Rejection::new("amount", format!("would make {overflow}")),
                        },
                        Ok(n) => {
                            let after = seen_after(&seen, &ev);
                            if after.payment != seen.payment {
                                let p = totals.entry(payment_key.clone()).or_default();
                                p.totals = after.payment;
                                touched.push(payment_key);
                            }
                            if let Some(own_key) = own_key
                                && after.own != seen.own
                            {
                                totals.insert(
                                    own_key.clone(),
                                    Payment {
                                        totals: after.own,
                                        refund_of: ev.capture_psp_reference.clone(),
                                    },
                                );
                                touched.push(own_key);
                            }
                            if let Some(p) = after.payout
                                && after.payout != seen.payout
                            {
                                payouts.insert(payout_key.clone(), p);
                                aborted_payouts.push(payout_key);
                            }
                            accepted_rows.push(vec![
                                Arg::Text(ev.event_id.clone()),
                                Arg::Text(id.as_str().to_owned()),
                                Arg::Int(i64::from(n)),
                                Arg::Text(received_at.clone()),
                            ]);
                            EventOutcome::Accepted {
                                event_id: ev.event_id.clone(),
                                ledger_id: id,
                                entries: n,
                            }
                        }
                    },
                }
            }
        };
        if let EventOutcome::Rejected { rejection, .. } = &outcome {
            rejected_rows.push(vec![
                Arg::Text(ev.event_id.clone()),
                Arg::Text(rejection.field.to_owned()),
                Arg::Text(rejection.reason.clone()),
                Arg::Text(received_at.clone()),
            ]);
        }
        answered.insert(ev.event_id.clone(), outcome.clone());
        outcomes.push(outcome);
    }

    placing.flush(&mut tx).await?;
    let events_head = format!(
        "{} events (event_id, ledger_id, entries, received_at)",
        DB::INSERT
    );
    tx.insert_rows(&events_head, 4, "", accepted_rows).await?;
    let rejected_head = format!(
        "{} rejected_events (event_id, field, reason, received_at)",
        DB::INSERT
    );
    tx.insert_rows(&rejected_head, 4, DB::REJECTED_TAIL, rejected_rows)
        .await?;
    touched.sort();
    touched.dedup();
    let payment_rows = touched
        .into_iter()
        .map(|key| {
            let p = &totals[&key];
            let t = p.totals;
            vec![
                Arg::Text(key.0),
                Arg::Text(key.1),
                Arg::Int(t.captured),
                Arg::Int(t.refunded),
                Arg::Int(t.disputed),
                Arg::Int(t.returned),
                p.refund_of.clone().map_or(Arg::NullText, Arg::Text),
            ]
        })
        .collect();
    let (head, tail) = DB::PAYMENTS_UPSERT;
    tx.insert_rows(head, 7, tail, payment_rows).await?;
    // Aborts are rare: one statement each.
    for (ledger, psp) in aborted_payouts {
        tx.execute(
            "UPDATE payouts SET aborted = 1 WHERE ledger_id = $1 AND psp_reference = $2",
            args![ledger, psp],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Closes the ledger's due periods as of `now`, each in its own transaction.
async fn close_due<DB: SettleSql>(
    store: &SqlStore<DB>,
    ledger: &LedgerId,
    now: Timestamp,
) -> Result<Vec<ClosedPeriod>> {
    let mut closed = Vec::new();
    loop {
        let next = match &store.direct_settle {
            Some(direct) => {
                on_own_thread(async {
                    close_next(store, direct.begin(store).await?, ledger, now).await
                })
                .await?
            }
            None => close_next(store, store.begin_settling().await?, ledger, now).await?,
        };
        match next {
            Some(period) => closed.push(period),
            None => return Ok(closed),
        }
    }
}

/// Closes the ledger's first due period as of `now` in the transaction `tx`, if one is due.
async fn close_next<DB: SettleSql>(
    store: &SqlStore<DB>,
    mut tx: impl Tx<DB>,
    ledger: &LedgerId,
    now: Timestamp,
) -> Result<Option<ClosedPeriod>> {
    let ids = [ledger.as_str().to_owned()];
    lock_ledgers(&mut tx, &ids).await?;
    let mut placing = Placing::new(store.proofs);
    let mut ctx = read_ledgers(&mut tx, &mut placing, &ids)
        .await?
        .remove(ledger.as_str())
        .ok_or_else(|| StoreError::NotFound(format!("ledger {ledger}")))?;
    let Some(end) = due_period_ends(&ctx.ledger, ctx.ledger.closed_through, now)
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    // The chains are read only when a period is due: the closing task asks every ledger on
    // every pass, and most have nothing to close.
    read_chain_ends(&mut tx, &mut placing, &ids).await?;
    let closed = close_period(
        &store.now(),
        &mut tx,
        &mut ctx,
        &mut placing,
        end,
        store.proofs,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(closed))
}

/// Appends entries to one chain in one transaction, as given (no engine rules beyond the
/// entry type of the topic and the ledger's currency). Entries dated on closed dates change what
/// those dates held, so their proofs and every later one of the topic are written anew in the
/// same transaction: a proof always tells what its date holds, and the changed chain digests
/// show the change to anyone who kept the old ones.
async fn append<DB: SettleSql>(
    store: &SqlStore<DB>,
    ledger: &LedgerId,
    topic: Topic,
    entries: Vec<NewEntry>,
) -> Result<Vec<Entry>> {
    let ids = [ledger.as_str().to_owned()];
    let mut tx = store.begin().await?;
    lock_ledgers(&mut tx, &ids).await?;
    let mut placing = Placing::new(store.proofs);
    let ctx = load_ledgers(&mut tx, &mut placing, &ids)
        .await?
        .remove(ledger.as_str())
        .ok_or_else(|| StoreError::NotFound(format!("ledger {ledger}")))?;
    let currency = ctx.ledger.currency;
    let earliest = entries.iter().map(|e| e.ledger_date).min();
    for e in entries {
        check_entry_type(topic, &e.entry_type)
            .map_err(|err| StoreError::Invalid(err.to_string()))?;
        if e.currency != currency {
            return Err(StoreError::Invalid(format!(
                "entry currency {} is not the ledger's {currency}",
                e.currency
            )));
        }
        placing.place(ledger, topic, e)?;
    }
    let written: Vec<Entry> = placing.pending.iter().map(|(_, _, e)| e.clone()).collect();
    placing.flush(&mut tx).await?;
    if let Some(earliest) = earliest
        && store.proofs
        && earliest <= ctx.ledger.closed_through
    {
        proofs::reprove_from(&mut tx, &ctx.ledger, topic, earliest, &mut placing.digests).await?;
    }
    tx.commit().await?;
    Ok(written)
}

#[async_trait]
impl<DB: SettleSql> SettlementStore for SqlStore<DB> {
    async fn append_entries(
        &self,
        ledger: &LedgerId,
        topic: Topic,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<Entry>> {
        append(self, ledger, topic, entries).await
    }

    async fn ingest_events(
        &self,
        events: Vec<PaymentEvent>,
        now: Timestamp,
    ) -> Result<Vec<EventOutcome>> {
        ingest(self, events, now).await
    }

    async fn close_due(&self, ledger: &LedgerId, now: Timestamp) -> Result<Vec<ClosedPeriod>> {
        close_due(self, ledger, now).await
    }
}
