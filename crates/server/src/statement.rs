//! A ledger's camt.053 statement for a period, for the portal's Settlements page and
//! `ledgerport admin statement`: read with the [`LedgerAccess`] the access policy gave the
//! reader, built by [`ledgerport_core::statement`] and written by [`ledgerport_core::camt053`].

use ledgerport_core::access::LedgerAccess;
use ledgerport_core::camt053;
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{LedgerDate, Topic};
use ledgerport_core::statement::{self, Statement, StatementFacts};
use ledgerport_store::{LedgerView, Store, StoreError};

/// Entries read per page.
const PAGE: u32 = 1000;

/// A statement and its camt.053 document.
pub struct Camt053 {
    pub statement: Statement,
    pub xml: String,
}

impl Camt053 {
    /// The download's file name: `camt053-<ledger>-<from>-to-<to>.xml`.
    pub fn file_name(&self) -> String {
        let s = &self.statement;
        format!("camt053-{}-{}-to-{}.xml", s.ledger_id, s.from, s.to)
    }
}

/// The statement of `view`'s ledger for the ledger dates `from..=to` (checked by the caller),
/// made at `now`. Balances that do not follow from the entries (a hand-edited database) or an
/// amount beyond camt.053's 18 digits are `Corrupt`: no statement is better than a wrong one.
pub async fn camt053(
    store: &dyn Store,
    access: &LedgerAccess,
    view: &LedgerView,
    owner_name: &str,
    from: LedgerDate,
    to: LedgerDate,
    now: jiff::Timestamp,
) -> Result<Camt053, StoreError> {
    let opening_funds = store
        .balance_before_date(access, Topic::Funds, from)
        .await?;
    let opening_fees = store.balance_before_date(access, Topic::Fees, from).await?;
    let mut entries = vec![];
    let mut last = [opening_funds, opening_fees];
    let mut date = from;
    loop {
        for (i, topic) in [Topic::Funds, Topic::Fees].into_iter().enumerate() {
            for e in date_entries(store, access, topic, date).await? {
                last[i] = e.balance_after;
                entries.push((topic, e));
            }
        }
        if date >= to {
            break;
        }
        match date.date().tomorrow() {
            Ok(d) => date = LedgerDate::from_date(d),
            Err(_) => break,
        }
    }
    let statement = statement::build(StatementFacts {
        ledger: &view.ledger,
        units: &view.units,
        owner_name,
        from,
        to,
        created: now,
        opening_funds,
        opening_fees,
        entries,
    });
    // The closing balance is the opening plus the lines; it must also be what the ledger's
    // chains say (their last balances in the period, or the opening where there was nothing).
    let chained = i128::from(last[0]) + i128::from(last[1]);
    if statement.closing != chained {
        return Err(StoreError::Corrupt(format!(
            "ledger {}: the entries of {from}..{to} sum to a closing balance of {} but the \
             balances read {chained}",
            view.ledger.ledger_id, statement.closing
        )));
    }
    let xml = camt053::document(&statement).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Camt053 { statement, xml })
}

/// Every entry of one ledger date on one topic, in sequence.
async fn date_entries(
    store: &dyn Store,
    access: &LedgerAccess,
    topic: Topic,
    date: LedgerDate,
) -> Result<Vec<Entry>, StoreError> {
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
