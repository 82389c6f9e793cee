//! The digest state of each (ledger, topic, date) ([`DateDigestState`], table `date_digests`,
//! migration 15), carried forward as the engine books entries: a transaction knows the states of
//! the dates its chains end on (read with the chain ends) and extends them in memory as it
//! places entries; [`DateStates::extend`] runs when placed entries are written and the changed
//! states are written with them in one multi-row upsert. So a closing finds every date's state
//! stored and never reads the entries back.
//!
//! A date's state is only extended from what is stored for it: the state read with the chain
//! end, one this transaction wrote, or nothing stored at all, which holds for every date after
//! the latest date the (ledger, topic) has a row for. Any other date (entries appended on an
//! earlier date) is read first, one statement each: that happens only for appended entries.

use super::SettleSql;
use crate::sql::{Arg, Tx, args};
use crate::{Result, StoreError};
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use ledgerport_core::proof::{DateDigest, DateDigestState, Digest, ProofEntry};
use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};

/// One (ledger, topic, date).
pub(super) type DateKey = (LedgerId, Topic, LedgerDate);

/// The columns of `date_digests` that hold a date's state, in [`state_row`]'s order.
pub(super) const STATE_COLUMNS: &str = "ledger_id, topic, ledger_date, entry_count, amount_sum, \
     opening_balance, closing_balance, digest";

/// What makes an insert of `date_digests` an upsert: a state written again replaces the stored
/// one, unless the date is proved: a proof changes only when it is proved again, with its state
/// (entries appended on a closed date, [`super::proofs::reprove_from`], in the same transaction,
/// from the state this transaction holds).
const STATE_UPSERT_TAIL: &str = " ON CONFLICT (ledger_id, topic, ledger_date) DO UPDATE SET \
     entry_count = excluded.entry_count, amount_sum = excluded.amount_sum, \
     opening_balance = excluded.opening_balance, closing_balance = excluded.closing_balance, \
     digest = excluded.digest WHERE date_digests.chain_digest IS NULL";

/// The states one transaction knows, and which of them it changed since they were written.
#[derive(Default)]
pub(super) struct DateStates {
    states: HashMap<DateKey, DateDigestState>,
    /// Per chain whose rows were looked at: the latest date it has a row for (`None`: no row).
    /// Every later date has no entries. A chain not here knows nothing beyond `states`.
    latest_row: HashMap<(LedgerId, Topic), Option<LedgerDate>>,
    dirty: HashSet<DateKey>,
}

impl DateStates {
    /// Notes the latest date the chain has a row for, as read.
    pub fn set_latest_row(&mut self, ledger: LedgerId, topic: Topic, date: Option<LedgerDate>) {
        self.latest_row.insert((ledger, topic), date);
    }

    /// Notes a date's stored state, as read.
    pub fn set_stored(&mut self, key: DateKey, state: DateDigestState) {
        self.states.insert(key, state);
    }

    /// The state of a date, if this transaction knows it.
    pub fn known(&self, key: &DateKey) -> Option<DateDigestState> {
        if let Some(s) = self.states.get(key) {
            return Some(*s);
        }
        match self.latest_row.get(&(key.0.clone(), key.1)) {
            Some(None) => Some(DateDigestState::EMPTY),
            Some(Some(latest)) if key.2 > *latest => Some(DateDigestState::EMPTY),
            _ => None,
        }
    }

    /// Extends the states of the entries' dates by the entries (each chain's in sequence order),
    /// reading first the stored state of any date this transaction does not know.
    pub async fn extend<DB: SettleSql>(
        &mut self,
        tx: &mut impl Tx<DB>,
        entries: &[(LedgerId, Topic, Entry)],
    ) -> Result<()> {
        for (ledger, topic, e) in entries {
            let key = (ledger.clone(), *topic, e.ledger_date);
            if self.known(&key).is_none() {
                let state = read_state(tx, &key).await?;
                self.states.insert(key, state);
            }
        }
        let mut digests: HashMap<DateKey, DateDigest> = HashMap::new();
        for (ledger, topic, e) in entries {
            let key = (ledger.clone(), *topic, e.ledger_date);
            let digest = match digests.entry(key) {
                Slot::Occupied(o) => o.into_mut(),
                Slot::Vacant(v) => {
                    let start = self.known(v.key()).unwrap_or(DateDigestState::EMPTY);
                    v.insert(DateDigest::resume(start))
                }
            };
            digest.add(&ProofEntry::from(e));
        }
        for (key, digest) in digests {
            self.states.insert(key.clone(), digest.state());
            self.dirty.insert(key);
        }
        Ok(())
    }

    /// Takes a date's state out of those to write: the caller writes it (with its proof).
    pub fn take_for_writing(&mut self, key: &DateKey) -> Option<DateDigestState> {
        self.dirty.remove(key);
        self.known(key)
    }

    /// Notes a state the caller has written.
    pub fn written(&mut self, key: DateKey, state: DateDigestState) {
        self.dirty.remove(&key);
        self.states.insert(key, state);
    }

    /// Forgets which states changed without writing them: only for closing as it was before
    /// proofs ([`crate::sql::SqlStore::measure_closing_without_proofs`]).
    pub fn discard_changes(&mut self) {
        self.dirty.clear();
    }

    /// Writes the states changed since the last write in one multi-row upsert.
    pub async fn write<DB: SettleSql>(&mut self, tx: &mut impl Tx<DB>) -> Result<()> {
        let mut keys: Vec<DateKey> = self.dirty.drain().collect();
        // In key order, so concurrent writers on PostgreSQL take the rows' locks in one order.
        keys.sort_by(|a, b| (&a.0, a.1.code(), a.2).cmp(&(&b.0, b.1.code(), b.2)));
        let rows = keys
            .iter()
            .map(|k| state_row(k, &self.states[k]))
            .collect::<Result<Vec<_>>>()?;
        tx.insert_rows(
            &format!("INSERT INTO date_digests ({STATE_COLUMNS})"),
            8,
            STATE_UPSERT_TAIL,
            rows,
        )
        .await
    }
}

/// The stored state of one date (empty when it has no row).
async fn read_state<DB: SettleSql>(tx: &mut impl Tx<DB>, key: &DateKey) -> Result<DateDigestState> {
    let row: Option<StateColumns> = tx
        .opt(
            "SELECT entry_count, amount_sum, opening_balance, closing_balance, digest \
             FROM date_digests WHERE ledger_id = $1 AND topic = $2 AND ledger_date = $3",
            args![key.0.as_str(), i64::from(key.1.code()), key.2.to_string()],
        )
        .await?;
    row.map_or(Ok(DateDigestState::EMPTY), state_from_columns)
}

/// A row's state columns: entry_count, amount_sum, opening_balance, closing_balance, digest.
pub(super) type StateColumns = (i64, i64, i64, i64, String);

/// The state a row holds; the balances only count when the date has entries.
pub(super) fn state_from_columns(
    (count, sum, opening, closing, digest): StateColumns,
) -> Result<DateDigestState> {
    let count = u64::try_from(count)
        .map_err(|_| StoreError::Corrupt(format!("date_digests entry_count {count}")))?;
    let with_entries = count > 0;
    Ok(DateDigestState {
        digest: Digest::parse("digest", &digest)?,
        count,
        sum: i128::from(sum),
        first_before: with_entries.then_some(opening),
        last_after: with_entries.then_some(closing),
    })
}

/// The sum of a state as a stored amount.
pub(super) fn stored_sum(key: &DateKey, state: &DateDigestState) -> Result<i64> {
    i64::try_from(state.sum).map_err(|_| {
        StoreError::Invalid(format!(
            "the amounts of ledger {} {} on {} would add up beyond the range of an amount",
            key.0, key.1, key.2
        ))
    })
}

/// A date's state as the values of [`STATE_COLUMNS`] (only dates with entries are written so).
fn state_row(key: &DateKey, s: &DateDigestState) -> Result<Vec<Arg>> {
    Ok(vec![
        Arg::Text(key.0.as_str().to_owned()),
        Arg::Int(i64::from(key.1.code())),
        Arg::Text(key.2.to_string()),
        // Counts are entries of one date: far below i64::MAX.
        Arg::Int(i64::try_from(s.count).unwrap_or(i64::MAX)),
        Arg::Int(stored_sum(key, s)?),
        Arg::Int(s.first_before.unwrap_or(0)),
        Arg::Int(s.last_after.unwrap_or(0)),
        Arg::Text(s.digest.hex()),
    ])
}
