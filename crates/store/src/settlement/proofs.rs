//! Completeness proofs ([`ledgerport_core::proof`]) of the dates the engine closes, written in
//! the closing's transaction from the dates' digest states ([`super::digests`]), which booking
//! keeps: a closing reads no entries. And the states and proofs of the ledgers migration 15
//! lists in `proof_backfill` (every ledger that existed before form v2), built from their
//! entries when the store starts.
//!
//! Which dates have proofs: every date a closing closes, from the ledger's first date (the day
//! it was created, in its time zone) on. Dates before it close at creation with nothing in them
//! and get none. A proof is the date's `date_digests` row with its chain columns set.

use super::digests::{DateStates, STATE_COLUMNS, StateColumns, state_from_columns, stored_sum};
use super::{SettleSql, lock_ledgers, read_ledgers};
use crate::rows::{DateProofRow, entries_from_page_json, entry_columns};
use crate::sql::{Arg, SqlStore, Tx, args};
use crate::{Result, StoreError};
use ledgerport_core::changes::first_closed_date;
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use ledgerport_core::proof::{
    DateDigest, DateDigestState, DateProof, Digest, Previous, ProofEntry, prove_state,
};
use ledgerport_core::world::Ledger;
use std::collections::{BTreeMap, HashMap};

/// The columns of a proof in `date_digests`, in the order [`DateProofRow`] and [`proof_row`]
/// hold them.
pub(crate) const PROOF_COLUMNS: &str = "ledger_id, topic, ledger_date, entry_count, amount_sum, \
     opening_balance, closing_balance, digest, previous_chain_digest, chain_digest";

/// What makes an insert of proofs an upsert: the date's row (its state) becomes its proof.
const PROOF_UPSERT_TAIL: &str = " ON CONFLICT (ledger_id, topic, ledger_date) DO UPDATE SET \
     entry_count = excluded.entry_count, amount_sum = excluded.amount_sum, \
     opening_balance = excluded.opening_balance, closing_balance = excluded.closing_balance, \
     digest = excluded.digest, previous_chain_digest = excluded.previous_chain_digest, \
     chain_digest = excluded.chain_digest";

/// The stored rows of a ledger's dates from the day before a period through its end: the
/// period's states, and the proof the period's first date chains to.
pub(super) struct PeriodRows {
    after: LedgerDate,
    /// By topic code and date: the state, and the chain digest if the date is proved.
    rows: HashMap<(u8, LedgerDate), (DateDigestState, i64, Option<Digest>)>,
}

impl PeriodRows {
    /// The sum of the amounts of `topic` on the period's dates (after `after`).
    pub fn sum(&self, topic: Topic) -> Result<i64> {
        let total: i128 = self
            .rows
            .iter()
            .filter(|((t, d), _)| *t == topic.code() && *d > self.after)
            .map(|(_, (s, ..))| s.sum)
            .sum();
        i64::try_from(total).map_err(|_| {
            StoreError::Corrupt(format!("the period's {topic} amounts are out of range"))
        })
    }

    /// The proof before the period, as the period's first proof starts from it.
    fn previous(&self, topic: Topic) -> Option<Previous> {
        match self.rows.get(&(topic.code(), self.after)) {
            Some((_, closing, Some(chain))) => Some(Previous {
                balance: *closing,
                chain_digest: Some(*chain),
            }),
            _ => None,
        }
    }

    fn state(&self, topic: Topic, date: LedgerDate) -> DateDigestState {
        self.rows
            .get(&(topic.code(), date))
            .map_or(DateDigestState::EMPTY, |(s, ..)| *s)
    }
}

/// Reads the rows of `ledger`'s `topics` dated `after` through `through`, one statement.
pub(super) async fn read_period<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    ledger: &LedgerId,
    topics: &[Topic],
    after: LedgerDate,
    through: LedgerDate,
) -> Result<PeriodRows> {
    let codes: Vec<String> = topics.iter().map(|t| t.code().to_string()).collect();
    // `topic IN (...)` lets both backends walk the primary key's (ledger, topic, date) ranges.
    let sql = format!(
        "SELECT topic, ledger_date, entry_count, amount_sum, opening_balance, closing_balance, \
         digest, chain_digest FROM date_digests WHERE ledger_id = $1 AND topic IN ({}) \
         AND ledger_date >= $2 AND ledger_date <= $3",
        codes.join(", ")
    );
    type Row = (i64, String, i64, i64, i64, i64, String, Option<String>);
    let rows: Vec<Row> = tx
        .all(
            &sql,
            args![ledger.as_str(), after.to_string(), through.to_string()],
        )
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for (topic, date, count, sum, opening, closing, digest, chain) in rows {
        let code = u8::try_from(topic)
            .ok()
            .filter(|c| Topic::from_code(*c).is_some())
            .ok_or_else(|| StoreError::Corrupt(format!("date_digests topic {topic}")))?;
        let state = state_from_columns((count, sum, opening, closing, digest))?;
        let chain = chain
            .as_deref()
            .map(|c| Digest::parse("chain_digest", c))
            .transpose()?;
        out.insert(
            (code, LedgerDate::parse("ledger_date", &date)?),
            (state, closing, chain),
        );
    }
    Ok(PeriodRows { after, rows: out })
}

/// Computes and writes (one upsert) the proofs of `topics` of `ledger` for the dates after
/// `after` through `through`, each chained to the proof of `after` (the chain starts where there
/// is none). A date's state is the one `states` holds if this transaction changed it (the
/// closing's own entries), else the stored one in `period`.
pub(super) async fn write_proofs<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    ledger: &LedgerId,
    topics: &[Topic],
    period: &PeriodRows,
    through: LedgerDate,
    states: &mut DateStates,
) -> Result<()> {
    let after = period.after;
    if through <= after {
        return Ok(());
    }
    let mut rows = Vec::new();
    for &topic in topics {
        let mut dates = Vec::new();
        let mut date = after;
        while date < through {
            date = next_date(date)?;
            let key = (ledger.clone(), topic, date);
            let state = states
                .take_for_writing(&key)
                .unwrap_or_else(|| period.state(topic, date));
            dates.push((date, state));
        }
        let previous = match period.previous(topic) {
            Some(p) => p,
            None => chain_start(tx, ledger, topic, after, &dates).await?,
        };
        for proof in prove_dates(ledger, topic, previous, &dates)? {
            rows.push(proof_row(&proof));
        }
        for (date, state) in dates {
            states.written((ledger.clone(), topic, date), state);
        }
    }
    insert_at_once(
        tx,
        &format!("INSERT INTO date_digests ({PROOF_COLUMNS})"),
        10,
        PROOF_UPSERT_TAIL,
        rows,
    )
    .await
}

/// Writes a closing's few rows in one statement: [`Tx::insert_rows`] writes rows in
/// batches of the sizes it keeps prepared (on SQLite two rows are two statements, each a
/// hand-off to the connection's worker, which is what a closing's cost is mostly made of).
async fn insert_at_once<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    head: &str,
    columns: usize,
    tail: &str,
    rows: Vec<Vec<Arg>>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    if DB::INSERT_BY_COLUMNS || rows.len() > 64 {
        return tx.insert_rows(head, columns, tail, rows).await;
    }
    let sql = crate::sql::values_statement::<DB>(head, rows.len(), columns, tail);
    tx.execute(&sql, rows.into_iter().flatten().collect())
        .await?;
    Ok(())
}

/// Where a chain of proofs starts when the date before has none: its first date's entries give
/// the opening balance; a first date without entries opens with the balance after the last
/// entry dated on or before `after` (0 without one), read only then.
async fn chain_start<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    ledger: &LedgerId,
    topic: Topic,
    after: LedgerDate,
    dates: &[(LedgerDate, DateDigestState)],
) -> Result<Previous> {
    let balance = match dates.first() {
        Some((_, s)) if s.count > 0 => 0,
        _ => balance_through(tx, ledger, topic, after).await?,
    };
    Ok(Previous {
        balance,
        chain_digest: None,
    })
}

/// The proofs of consecutive dates of one topic from their states, the first following
/// `previous`.
fn prove_dates(
    ledger: &LedgerId,
    topic: Topic,
    mut previous: Previous,
    dates: &[(LedgerDate, DateDigestState)],
) -> Result<Vec<DateProof>> {
    let mut out = Vec::with_capacity(dates.len());
    for (date, state) in dates {
        let proof = prove_state(ledger, topic, *date, state, previous)
            .map_err(|e| StoreError::Corrupt(format!("ledger {ledger} {topic}: {e}")))?;
        previous = proof.as_previous();
        out.push(proof);
    }
    Ok(out)
}

/// The balance of `topic` after the last entry dated on or before `date` (0 without one): where
/// a chain of proofs starts.
async fn balance_through<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    ledger: &LedgerId,
    topic: Topic,
    date: LedgerDate,
) -> Result<i64> {
    let last: Option<(i64,)> = tx
        .opt(
            "SELECT balance_after FROM entries WHERE ledger_id = $1 AND topic = $2 \
             AND ledger_date <= $3 ORDER BY seq DESC LIMIT 1",
            args![ledger.as_str(), i64::from(topic.code()), date.to_string()],
        )
        .await?;
    Ok(last.map_or(0, |(b,)| b))
}

fn next_date(d: LedgerDate) -> Result<LedgerDate> {
    d.date()
        .tomorrow()
        .map(LedgerDate::from_date)
        .map_err(|_| StoreError::Corrupt(format!("no date after {d}")))
}

fn proof_row(p: &DateProof) -> Vec<Arg> {
    vec![
        Arg::Text(p.ledger_id.as_str().to_owned()),
        Arg::Int(i64::from(p.topic.code())),
        Arg::Text(p.ledger_date.to_string()),
        // Counts are entries of one date: far below i64::MAX.
        Arg::Int(i64::try_from(p.entry_count).unwrap_or(i64::MAX)),
        Arg::Int(p.amount_sum),
        Arg::Int(p.opening_balance),
        Arg::Int(p.closing_balance),
        Arg::Text(p.digest.hex()),
        p.previous_chain_digest
            .map_or(Arg::NullText, |d| Arg::Text(d.hex())),
        Arg::Text(p.chain_digest.hex()),
    ]
}

/// Keeps the proofs of `ledger`'s `topic` true after entries dated `earliest` or later were
/// appended to it while dates from `earliest` on were closed already ([`super::append`], after
/// the entries and their dates' states are written): the proofs from `earliest` (or the
/// ledger's first date, if later) through `closed_through` are written anew from the states,
/// chained to the proof of the date before. Every later chain digest changes with them, as a
/// change to a closed date must show.
pub(super) async fn reprove_from<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    ledger: &Ledger,
    topic: Topic,
    earliest: LedgerDate,
    states: &mut DateStates,
) -> Result<()> {
    let before_first = first_closed_date(&ledger.time_zone, ledger.cutoff, ledger.created_at);
    let day_before = earliest
        .date()
        .yesterday()
        .map(LedgerDate::from_date)
        .map_err(|_| StoreError::Corrupt(format!("no date before {earliest}")))?;
    let after = day_before.max(before_first);
    if after >= ledger.closed_through {
        // Only open dates (or dates before the first, which have no proofs) were touched.
        return Ok(());
    }
    let id = &ledger.ledger_id;
    let period = read_period(tx, id, &[topic], after, ledger.closed_through).await?;
    write_proofs(tx, id, &[topic], &period, ledger.closed_through, states).await
}

/// How many entries the backfill reads at once.
const BACKFILL_PAGE: i64 = 10_000;

/// Builds the date states and proves the closed dates of the ledgers migration 15 listed, each
/// in its own transaction under its ledger's lock, which also takes it off the list; a start
/// stopped half-way leaves the rest to the next. Everything of such a ledger is written anew
/// from its entries, so what a process already running this build wrote meanwhile is replaced
/// by the same.
pub(crate) async fn backfill<DB: SettleSql>(store: &SqlStore<DB>) -> Result<()> {
    let listed: Vec<(String,)> = store
        .all(
            "SELECT ledger_id FROM proof_backfill ORDER BY ledger_id",
            args![],
        )
        .await?;
    for (id,) in listed {
        let ids = [id.clone()];
        let mut tx = store.begin_settling().await?;
        lock_ledgers(&mut tx, &ids).await?;
        let still: Option<(String,)> = tx
            .opt(
                "SELECT ledger_id FROM proof_backfill WHERE ledger_id = $1",
                args![id.as_str()],
            )
            .await?;
        if still.is_none() {
            // Another process proved it first.
            continue;
        }
        let mut placing = super::Placing::new(true);
        if let Some(ctx) = read_ledgers(&mut tx, &mut placing, &ids).await?.remove(&id) {
            backfill_ledger(&mut tx, &ctx.ledger).await?;
        }
        tx.execute(
            "DELETE FROM proof_backfill WHERE ledger_id = $1",
            args![id.as_str()],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Writes one ledger's date states and proofs anew from its entries.
async fn backfill_ledger<DB: SettleSql>(tx: &mut impl Tx<DB>, l: &Ledger) -> Result<()> {
    let id = &l.ledger_id;
    let before_first = first_closed_date(&l.time_zone, l.cutoff, l.created_at);
    tx.execute(
        "DELETE FROM date_digests WHERE ledger_id = $1",
        args![id.as_str()],
    )
    .await?;
    let mut rows = Vec::new();
    let mut state_rows = Vec::new();
    for topic in [Topic::Funds, Topic::Fees] {
        let by_date = states_from_entries(tx, id, topic).await?;
        let mut dates = Vec::new();
        let mut date = before_first;
        while date < l.closed_through {
            date = next_date(date)?;
            dates.push((date, by_date.get(&date).copied().unwrap_or_default()));
        }
        let previous = chain_start(tx, id, topic, before_first, &dates).await?;
        for proof in prove_dates(id, topic, previous, &dates)? {
            rows.push(proof_row(&proof));
        }
        // The dates with entries that have no proof: open ones, and any before the first.
        for (date, state) in by_date {
            if date <= before_first || date > l.closed_through {
                let key = (id.clone(), topic, date);
                state_rows.push(vec![
                    Arg::Text(id.as_str().to_owned()),
                    Arg::Int(i64::from(topic.code())),
                    Arg::Text(date.to_string()),
                    Arg::Int(i64::try_from(state.count).unwrap_or(i64::MAX)),
                    Arg::Int(stored_sum(&key, &state)?),
                    Arg::Int(state.first_before.unwrap_or(0)),
                    Arg::Int(state.last_after.unwrap_or(0)),
                    Arg::Text(state.digest.hex()),
                ]);
            }
        }
    }
    tx.insert_rows(
        &format!("INSERT INTO date_digests ({PROOF_COLUMNS})"),
        10,
        "",
        rows,
    )
    .await?;
    tx.insert_rows(
        &format!("INSERT INTO date_digests ({STATE_COLUMNS})"),
        8,
        "",
        state_rows,
    )
    .await?;
    tracing::info!(ledger = %id, through = %l.closed_through, "built the date digests and proofs of form v2");
    Ok(())
}

/// The digest state of every date of one topic, from its entries in sequence order (read in
/// pages, each one JSON array as date pages are read).
async fn states_from_entries<DB: SettleSql>(
    tx: &mut impl Tx<DB>,
    ledger: &LedgerId,
    topic: Topic,
) -> Result<BTreeMap<LedgerDate, DateDigestState>> {
    let sql = format!(
        "SELECT {} FROM (SELECT e.* FROM entries e WHERE e.ledger_id = $1 AND e.topic = $2 \
         AND e.seq > $3 ORDER BY e.seq LIMIT $4) p",
        DB::json_list(&format!("{}({})", DB::JSON_ROW, entry_columns!()), "seq"),
    );
    let mut digests: HashMap<LedgerDate, DateDigest> = HashMap::new();
    let mut after = 0i64;
    loop {
        let (page,): (String,) = tx
            .one(
                &sql,
                args![
                    ledger.as_str(),
                    i64::from(topic.code()),
                    after,
                    BACKFILL_PAGE
                ],
            )
            .await?;
        let entries = entries_from_page_json(&page)?;
        for e in &entries {
            digests
                .entry(e.ledger_date)
                .or_default()
                .add(&ProofEntry::from(e));
        }
        match entries.last() {
            Some(last) if entries.len() as i64 == BACKFILL_PAGE => after = last.seq,
            _ => break,
        }
    }
    Ok(digests.into_iter().map(|(d, g)| (d, g.state())).collect())
}

/// The proofs of `ledger`'s `topic`: of one date, or (`date` `None`) all of them in date order.
/// A row without a chain digest is an open date's state, not a proof.
pub(crate) fn proofs_query(one_date: bool) -> String {
    format!(
        "SELECT {PROOF_COLUMNS} FROM date_digests WHERE ledger_id = $1 AND topic = $2{} \
         AND chain_digest IS NOT NULL ORDER BY ledger_date",
        if one_date {
            " AND ledger_date = $3"
        } else {
            ""
        }
    )
}

/// Every stored date state of `ledger`'s `topic` in date order, for `verify`.
pub(crate) const STATES_QUERY: &str = "SELECT ledger_date, entry_count, amount_sum, \
     opening_balance, closing_balance, digest FROM date_digests WHERE ledger_id = $1 \
     AND topic = $2 ORDER BY ledger_date";

/// A row of [`STATES_QUERY`] as a date and its state.
pub(crate) fn state_of_row(
    (date, count, sum, opening, closing, digest): (String, i64, i64, i64, i64, String),
) -> Result<(LedgerDate, DateDigestState)> {
    let columns: StateColumns = (count, sum, opening, closing, digest);
    Ok((
        LedgerDate::parse("ledger_date", &date)?,
        state_from_columns(columns)?,
    ))
}

impl DateProofRow {
    pub(crate) fn into_proof(self) -> Result<DateProof> {
        let topic = u8::try_from(self.topic)
            .ok()
            .and_then(Topic::from_code)
            .ok_or_else(|| StoreError::Corrupt(format!("proof topic {}", self.topic)))?;
        Ok(DateProof {
            ledger_id: LedgerId::parse("ledger_id", &self.ledger_id)?,
            topic,
            ledger_date: LedgerDate::parse("ledger_date", &self.ledger_date)?,
            entry_count: u64::try_from(self.entry_count)
                .map_err(|_| StoreError::Corrupt("proof entry_count".into()))?,
            amount_sum: self.amount_sum,
            opening_balance: self.opening_balance,
            closing_balance: self.closing_balance,
            digest: Digest::parse("digest", &self.digest)?,
            previous_chain_digest: self
                .previous_chain_digest
                .as_deref()
                .map(|d| Digest::parse("previous_chain_digest", d))
                .transpose()?,
            chain_digest: Digest::parse("chain_digest", &self.chain_digest)?,
        })
    }
}
