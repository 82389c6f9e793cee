//! Where entries go at the end of their chains: each (ledger, topic) is one chain of gap-free
//! sequence numbers with the balance carried from entry to entry. [`Chains`] places entries in
//! memory, starting from the chain ends a store has read, and notes the runs of consecutive
//! entries of one ledger date it makes (a store may keep those instead of an index per entry).
//! Pure arithmetic: the store reads the ends, asks, and writes what was placed.

use crate::entry::{Entry, NewEntry};
use crate::ids::{LedgerDate, LedgerId, Topic};
use std::collections::HashMap;

/// The last entry of a chain: its sequence number, balance after it and ledger date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainEnd {
    pub seq: i64,
    pub balance: i64,
    /// `None` for an empty chain.
    pub date: Option<LedgerDate>,
}

impl ChainEnd {
    /// The chain of a ledger that has no entries on the topic yet.
    pub const EMPTY: ChainEnd = ChainEnd {
        seq: 0,
        balance: 0,
        date: None,
    };
}

/// An entry that would take a chain's balance out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceOverflow {
    pub ledger_id: LedgerId,
    pub topic: Topic,
}

impl std::fmt::Display for BalanceOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} balance of ledger {} would overflow",
            self.topic.as_str(),
            self.ledger_id
        )
    }
}

impl std::error::Error for BalanceOverflow {}

/// A run of consecutive entries of one chain on one ledger date, placed since the last
/// [`Chains::take_runs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRun {
    pub ledger_id: LedgerId,
    pub topic: Topic,
    pub date: LedgerDate,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Whether it continues the run that ended at `first_seq - 1` before (same date, no gap),
    /// which is already stored: extend that one instead of starting another.
    pub continues_stored: bool,
}

/// The ends of the chains one transaction writes, kept current as entries are placed.
#[derive(Debug, Default)]
pub struct Chains {
    ends: HashMap<(LedgerId, Topic), ChainEnd>,
    runs: Vec<DateRun>,
    /// The index in `runs` of each chain's run still being extended.
    open_run: HashMap<(LedgerId, Topic), usize>,
}

impl Chains {
    /// The end of a chain, if it is known (read or placed) in this transaction.
    pub fn end(&self, ledger: &LedgerId, topic: Topic) -> Option<ChainEnd> {
        self.ends.get(&(ledger.clone(), topic)).copied()
    }

    /// Records the end a store read for a chain.
    pub fn set_end(&mut self, ledger: LedgerId, topic: Topic, end: ChainEnd) {
        self.ends.insert((ledger, topic), end);
    }

    /// The latest date booked on either topic of the ledger, from known ends.
    pub fn last_booked(&self, ledger: &LedgerId) -> Option<LedgerDate> {
        let date = |t| self.end(ledger, t).and_then(|e| e.date);
        date(Topic::Funds).max(date(Topic::Fees))
    }

    /// Places `e` at the end of its chain (whose end must be known; an unknown chain counts
    /// as empty): the next sequence number and the balance carried. Nothing changes when the
    /// balance would overflow.
    pub fn place(
        &mut self,
        ledger: &LedgerId,
        topic: Topic,
        e: NewEntry,
    ) -> Result<Entry, BalanceOverflow> {
        let key = (ledger.clone(), topic);
        let end = self.ends.get(&key).copied().unwrap_or(ChainEnd::EMPTY);
        let after = end
            .balance
            .checked_add(e.amount)
            .ok_or_else(|| BalanceOverflow {
                ledger_id: ledger.clone(),
                topic,
            })?;
        let seq = end.seq + 1;
        let same_date = end.date == Some(e.ledger_date);
        match self.open_run.get(&key) {
            Some(&i) if same_date => self.runs[i].last_seq = seq,
            _ => {
                self.open_run.insert(key.clone(), self.runs.len());
                self.runs.push(DateRun {
                    ledger_id: ledger.clone(),
                    topic,
                    date: e.ledger_date,
                    first_seq: seq,
                    last_seq: seq,
                    continues_stored: same_date,
                });
            }
        }
        self.ends.insert(
            key,
            ChainEnd {
                seq,
                balance: after,
                date: Some(e.ledger_date),
            },
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
            balance_before: end.balance,
            balance_after: after,
            recipient_handle: e.recipient_handle,
            payer: e.payer,
        })
    }

    /// Places the entries of one event, all or none: when one would take its chain's balance
    /// out of range, nothing is placed.
    pub fn place_all(
        &mut self,
        ledger: &LedgerId,
        entries: Vec<(Topic, NewEntry)>,
    ) -> Result<Vec<(Topic, Entry)>, BalanceOverflow> {
        let mut balances: HashMap<Topic, i64> = HashMap::new();
        for (topic, e) in &entries {
            let balance = balances
                .entry(*topic)
                .or_insert_with(|| self.end(ledger, *topic).unwrap_or(ChainEnd::EMPTY).balance);
            *balance = balance
                .checked_add(e.amount)
                .ok_or_else(|| BalanceOverflow {
                    ledger_id: ledger.clone(),
                    topic: *topic,
                })?;
        }
        entries
            .into_iter()
            .map(|(topic, e)| Ok((topic, self.place(ledger, topic, e)?)))
            .collect()
    }

    /// The date runs placed since the last call, in order; runs placed later start afresh
    /// (continuing what is then stored).
    pub fn take_runs(&mut self) -> Vec<DateRun> {
        self.open_run.clear();
        std::mem::take(&mut self.runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Currency;

    fn ledger() -> LedgerId {
        LedgerId::parse("ledger_id", "100001").expect("ledger id")
    }

    fn date(s: &str) -> LedgerDate {
        LedgerDate::parse("date", s).expect("date")
    }

    fn entry(amount: i64, on: &str) -> NewEntry {
        NewEntry {
            psp_reference: "p".into(),
            time: "2024-04-01T10:00:00.000000Z".into(),
            ledger_date: date(on),
            entry_type: "capture".into(),
            reference: "r".into(),
            currency: Currency::parse("currency", "NOK").expect("currency"),
            amount,
            recipient_handle: "h".into(),
            payer: None,
        }
    }

    #[test]
    fn an_empty_chain_starts_at_one_and_carries_the_balance() {
        let mut chains = Chains::default();
        let a = chains
            .place(&ledger(), Topic::Funds, entry(100, "2024-04-01"))
            .expect("a");
        let b = chains
            .place(&ledger(), Topic::Funds, entry(-30, "2024-04-01"))
            .expect("b");
        assert_eq!((a.seq, a.balance_before, a.balance_after), (1, 0, 100));
        assert_eq!((b.seq, b.balance_before, b.balance_after), (2, 100, 70));
    }

    #[test]
    fn a_chain_continues_from_the_end_read_and_topics_are_separate() {
        let mut chains = Chains::default();
        let end = ChainEnd {
            seq: 41,
            balance: 500,
            date: Some(date("2024-04-01")),
        };
        chains.set_end(ledger(), Topic::Funds, end);
        let funds = chains
            .place(&ledger(), Topic::Funds, entry(5, "2024-04-02"))
            .expect("funds");
        let fees = chains
            .place(&ledger(), Topic::Fees, entry(-1, "2024-04-02"))
            .expect("fees");
        assert_eq!((funds.seq, funds.balance_after), (42, 505));
        assert_eq!(
            (fees.seq, fees.balance_before, fees.balance_after),
            (1, 0, -1)
        );
        assert_eq!(chains.last_booked(&ledger()), Some(date("2024-04-02")));
    }

    #[test]
    fn an_overflowing_balance_is_refused_and_changes_nothing() {
        let mut chains = Chains::default();
        chains
            .place(&ledger(), Topic::Funds, entry(i64::MAX, "2024-04-01"))
            .expect("max");
        let err = chains
            .place(&ledger(), Topic::Funds, entry(1, "2024-04-01"))
            .expect_err("overflow");
        assert_eq!(err.topic, Topic::Funds);
        let end = chains.end(&ledger(), Topic::Funds).expect("end");
        assert_eq!((end.seq, end.balance), (1, i64::MAX));
    }

    #[test]
    fn an_event_whose_second_entry_overflows_places_neither() {
        let mut chains = Chains::default();
        chains
            .place(&ledger(), Topic::Fees, entry(i64::MIN + 1, "2024-04-01"))
            .expect("fees near the bottom");
        let err = chains
            .place_all(
                &ledger(),
                vec![
                    (Topic::Funds, entry(100, "2024-04-01")),
                    (Topic::Fees, entry(-2, "2024-04-01")),
                ],
            )
            .expect_err("fees overflow");
        assert_eq!(err.topic, Topic::Fees);
        assert_eq!(chains.end(&ledger(), Topic::Funds), None);
        assert_eq!(chains.end(&ledger(), Topic::Fees).map(|e| e.seq), Some(1));
    }

    #[test]
    fn runs_group_consecutive_entries_of_a_date_and_note_what_continues_the_stored_run() {
        let mut chains = Chains::default();
        chains.set_end(
            ledger(),
            Topic::Funds,
            ChainEnd {
                seq: 3,
                balance: 0,
                date: Some(date("2024-04-01")),
            },
        );
        for on in ["2024-04-01", "2024-04-01", "2024-04-02", "2024-04-02"] {
            chains
                .place(&ledger(), Topic::Funds, entry(1, on))
                .expect("place");
        }
        let runs = chains.take_runs();
        let shape: Vec<_> = runs
            .iter()
            .map(|r| (r.date, r.first_seq, r.last_seq, r.continues_stored))
            .collect();
        assert_eq!(
            shape,
            vec![
                (date("2024-04-01"), 4, 5, true),
                (date("2024-04-02"), 6, 7, false)
            ]
        );
        // After the runs are taken (written), the next entry of the date continues the stored run.
        chains
            .place(&ledger(), Topic::Funds, entry(1, "2024-04-02"))
            .expect("place");
        let runs = chains.take_runs();
        assert_eq!(runs.len(), 1);
        assert!(runs[0].continues_stored);
        assert_eq!((runs[0].first_seq, runs[0].last_seq), (8, 8));
    }
}
