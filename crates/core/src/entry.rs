//! Ledger entries: immutable once written, chained by balance on each (ledger, topic).

use crate::ParseError;
use crate::ids::{Currency, LedgerDate, Topic};

/// Entry types Ledgerport writes today. Clients must accept unknown ones, so the type travels as
/// text; this list is what the append operation accepts.
pub const ENTRY_TYPES: &[(&str, &[Topic])] = &[
    ("capture", &[Topic::Funds]),
    ("refund", &[Topic::Funds]),
    ("fees-retained", &[Topic::Funds, Topic::Fees]),
    ("payout-scheduled", &[Topic::Funds]),
    ("payout-aborted", &[Topic::Funds]),
    ("retained-disputed-capture", &[Topic::Funds]),
    ("returned-disputed-capture", &[Topic::Funds]),
    ("correction", &[Topic::Funds, Topic::Fees]),
    ("top-up", &[Topic::Funds]),
    ("capture-fee", &[Topic::Fees]),
    ("fees-invoiced", &[Topic::Fees]),
    ("service-fee", &[Topic::Fees]),
    ("credit-note", &[Topic::Funds, Topic::Fees]),
];

/// Checks that `entry_type` exists and belongs on `topic`.
pub fn check_entry_type(topic: Topic, entry_type: &str) -> Result<(), ParseError> {
    match ENTRY_TYPES.iter().find(|(name, _)| *name == entry_type) {
        None => Err(ParseError::new(
            "entryType",
            format!("unknown entry type {entry_type}"),
        )),
        Some((_, topics)) if !topics.contains(&topic) => Err(ParseError::new(
            "entryType",
            format!("{entry_type} does not belong on the {topic} topic"),
        )),
        Some(_) => Ok(()),
    }
}

/// Payer details of a vm-number payment, shown only with `includeGDPRSensitiveData=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerDetails {
    pub name: String,
    pub message: String,
    /// `xxxx 1234`
    pub masked_phone_no: String,
}

/// An entry before the store has placed it: no sequence number and no balances yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub psp_reference: String,
    /// RFC 3339 UTC with 6 fractional digits, as it goes on the wire.
    pub time: String,
    pub ledger_date: LedgerDate,
    pub entry_type: String,
    pub reference: String,
    pub currency: Currency,
    pub amount: i64,
    pub recipient_handle: String,
    pub payer: Option<PayerDetails>,
}

/// A written entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position on its (ledger, topic), from 1, gap-free; the feed's and the dates' order.
    pub seq: i64,
    pub psp_reference: String,
    pub time: String,
    pub ledger_date: LedgerDate,
    pub entry_type: String,
    pub reference: String,
    pub currency: Currency,
    pub amount: i64,
    pub balance_before: i64,
    pub balance_after: i64,
    pub recipient_handle: String,
    pub payer: Option<PayerDetails>,
}

/// Formats a timestamp the way the wire wants it: UTC, 6 fractional digits, `Z`.
pub fn wire_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_time_has_six_fractional_digits_and_z() {
        let t: jiff::Timestamp = "2024-04-05T07:19:26.528092Z".parse().expect("ts");
        assert_eq!(wire_time(t), "2024-04-05T07:19:26.528092Z");
        let t: jiff::Timestamp = "2024-04-05T07:19:26Z".parse().expect("ts");
        assert_eq!(wire_time(t), "2024-04-05T07:19:26.000000Z");
    }

    #[test]
    fn entry_types_are_checked_against_their_topic() {
        assert!(check_entry_type(Topic::Funds, "capture").is_ok());
        assert!(check_entry_type(Topic::Fees, "capture").is_err());
        assert!(check_entry_type(Topic::Fees, "fees-retained").is_ok());
        assert!(check_entry_type(Topic::Funds, "surprise").is_err());
    }
}
