//! Completeness proofs ([`ledgerport_core::proof`]) of the dates the engine closes, written in
//! the closing's transaction, and of the dates closed before proofs existed (the ledgers that
//! migration 13 lists in `proof_backfill`), written when the store starts.
//!
//! Which dates have proofs: every date a closing closes, from the ledger's first date (the day
//! it was created, in its time zone) on. Dates before it close at creation with nothing in them
//! and get none.

use super::{SettleSql, lock_ledgers, read_ledgers};
use crate::rows::{DateProofRow, entries_from_page_json, entry_columns};
use crate::sql::{Arg, SqlStore, WriteTx, args};
use crate::{Result, StoreError};
use ledgerport_core::changes::first_closed_date;
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use ledgerport_core::proof::{DateDigest, DateProof, Previous, ProofEntry};
use ledgerport_core::world::Ledger;
use sqlx::AssertSqlSafe;
use std::collections::HashMap;

/// The columns of `date_proofs`, in the order [`DateProofRow`] and [`proof_row`] hold them.
pub(crate) const PROOF_COLUMNS: &str = "ledger_id, topic, ledger_date, entry_count, amount_sum, \
     opening_balance, closing_balance, digest, previous_chain_digest, chain_digest";

/// A date's entry as a proof reads it: its topic and the wire fields ([`ProofEntry`]).
pub(super) struct PeriodEntry {
    pub topic: Topic,
    pub entry: Entry,
}

/// The entries of both topics of `ledger` dated after `after` through `through`, each topic in
/// sequence order (funds first). Read as one row per topic, its entries one JSON array (as date
/// pages are read): one row per entry, each its own hand-off from the connection (on SQLite from
/// its worker thread), cost closing more than everything else the proofs add.
pub(super) async fn read_period<DB: SettleSql>(
    tx: &mut WriteTx<DB>,
    ledger: &LedgerId,
    after: LedgerDate,
    through: LedgerDate,
) -> Result<Vec<PeriodEntry>> {
    let sql = format!(
        "SELECT p.topic, {} FROM (SELECT e.* FROM {}) p GROUP BY p.topic ORDER BY p.topic",
        DB::json_list(&format!("{}({})", DB::JSON_ROW, entry_columns!()), "seq"),
        DB::PERIOD_ENTRIES_FROM
    );
    let rows: Vec<(i64, String)> = tx
        .all(
            AssertSqlSafe(sql),
            args![ledger.as_str(), after.to_string(), through.to_string()],
        )
        .await?;
    let mut out = Vec::new();
    for (code, page) in rows {
        let topic = u8::try_from(code)
            .ok()
            .and_then(Topic::from_code)
            .ok_or_else(|| StoreError::Corrupt(format!("topic {code}")))?;
        out.extend(
            entries_from_page_json(&page)?
                .into_iter()
                .map(|entry| PeriodEntry { topic, entry }),
        );
    }
    Ok(out)
}

/// Computes and writes the proofs of `topics` of `ledger` for the dates after `after` through
/// `through`, from `entries` (those dates' entries, each topic in sequence order), each chained
/// to the proof of `after` (the chain starts where there is none).
pub(super) async fn write_proofs<DB: SettleSql>(
    tx: &mut WriteTx<DB>,
    ledger: &LedgerId,
    topics: &[Topic],
    after: LedgerDate,
    through: LedgerDate,
    entries: &[PeriodEntry],
) -> Result<()> {
    if through <= after {
        return Ok(());
    }
    let before: Vec<(i64, i64, String)> = tx
        .all(
            "SELECT topic, closing_balance, chain_digest FROM date_proofs \
             WHERE ledger_id = $1 AND ledger_date = $2",
            args![ledger.as_str(), after.to_string()],
        )
        .await?;
    let mut rows = Vec::new();
    for &topic in topics {
        let mut previous = match before.iter().find(|(t, ..)| *t == i64::from(topic.code())) {
            Some((_, balance, chain)) => Previous {
                balance: *balance,
                chain_digest: Some(ledgerport_core::proof::Digest::parse(
                    "chain_digest",
                    chain,
                )?),
            },
            None => Previous {
                balance: balance_through(tx, ledger, topic, after).await?,
                chain_digest: None,
            },
        };
        let mut by_date: HashMap<LedgerDate, DateDigest> = HashMap::new();
        for e in entries.iter().filter(|e| e.topic == topic) {
            by_date
                .entry(e.entry.ledger_date)
                .or_default()
                .add(&ProofEntry::from(&e.entry));
        }
        let mut date = after;
        while date < through {
            date = next_date(date)?;
            let proof = by_date
                .remove(&date)
                .unwrap_or_default()
                .finish(ledger, topic, date, previous)
                .map_err(|e| StoreError::Corrupt(format!("ledger {ledger} {topic}: {e}")))?;
            previous = proof.as_previous();
            rows.push(proof_row(&proof));
        }
    }
    tx.insert_rows(
        &format!("{} date_proofs ({PROOF_COLUMNS})", DB::INSERT),
        10,
        "",
        rows,
    )
    .await
}

/// The balance of `topic` after the last entry dated on or before `date` (0 without one): where
/// a chain of proofs starts.
async fn balance_through<DB: SettleSql>(
    tx: &mut WriteTx<DB>,
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
/// appended to it while dates from `earliest` on were closed already ([`super::append`]): the
/// proofs from `earliest` (or the ledger's first date, if later) through `closed_through` are
/// written anew from the entries, chained to the proof of the date before. Every later chain
/// digest changes with them, as a change to a closed date must show.
pub(super) async fn reprove_from<DB: SettleSql>(
    tx: &mut WriteTx<DB>,
    ledger: &Ledger,
    topic: Topic,
    earliest: LedgerDate,
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
    tx.execute(
        "DELETE FROM date_proofs WHERE ledger_id = $1 AND topic = $2 AND ledger_date > $3",
        args![id.as_str(), i64::from(topic.code()), after.to_string()],
    )
    .await?;
    let mut entries = read_period(tx, id, after, ledger.closed_through).await?;
    entries.retain(|e| e.topic == topic);
    write_proofs(tx, id, &[topic], after, ledger.closed_through, &entries).await
}

/// Proves the closed dates of the ledgers migration 13 listed, each in its own transaction under
/// its ledger's lock, which also takes it off the list; a start stopped half-way leaves the rest
/// to the next. Every proof of such a ledger is written anew from its first date, so proofs a
/// closing wrote meanwhile (another process already running this build) join the chain.
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
        let mut placing = super::Placing::default();
        if let Some(ctx) = read_ledgers(&mut tx, &mut placing, &ids).await?.remove(&id) {
            let l = &ctx.ledger;
            let before_first = first_closed_date(&l.time_zone, l.cutoff, l.created_at);
            tx.execute(
                "DELETE FROM date_proofs WHERE ledger_id = $1",
                args![id.as_str()],
            )
            .await?;
            let entries =
                read_period(&mut tx, &l.ledger_id, before_first, l.closed_through).await?;
            write_proofs(
                &mut tx,
                &l.ledger_id,
                &[Topic::Funds, Topic::Fees],
                before_first,
                l.closed_through,
                &entries,
            )
            .await?;
            tracing::info!(ledger = %l.ledger_id, through = %l.closed_through, "proved the dates closed before proofs existed");
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

/// The proofs of `ledger`'s `topic`: of one date, or (`date` `None`) all of them in date order.
pub(crate) fn proofs_query(one_date: bool) -> String {
    format!(
        "SELECT {PROOF_COLUMNS} FROM date_proofs WHERE ledger_id = $1 AND topic = $2{} \
         ORDER BY ledger_date",
        if one_date {
            " AND ledger_date = $3"
        } else {
            ""
        }
    )
}

impl DateProofRow {
    pub(crate) fn into_proof(self) -> Result<DateProof> {
        use ledgerport_core::proof::Digest;
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
