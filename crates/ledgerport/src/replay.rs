//! Replaying history on its own clock (the demo, `import --replay`): events go to the engine in
//! batches that never span a payout point of any ledger, each applied with the clock at its
//! last event, so every event is booked on its own date and dates close as their time passes.

use jiff::Timestamp;
use jiff::civil::Time;
use ledgerport_core::ids::LedgerDate;
use ledgerport_core::world::{Ledger, ledger_date_at};

/// The ledger dates all ledgers show at an instant. Two instants with the same dates lie on the
/// same date of every ledger, so no ledger's cutoff (and so no payout point) lies between them.
pub struct LedgerDates {
    /// Every distinct (time zone, cutoff) of the ledgers.
    clocks: Vec<(String, Time)>,
}

impl LedgerDates {
    pub fn new<'a>(ledgers: impl IntoIterator<Item = &'a Ledger>) -> Self {
        let mut clocks: Vec<(String, Time)> = ledgers
            .into_iter()
            .map(|l| (l.time_zone.clone(), l.cutoff))
            .collect();
        clocks.sort();
        clocks.dedup();
        LedgerDates { clocks }
    }

    /// The date of every ledger clock at `t`.
    pub fn at(&self, t: Timestamp) -> Vec<LedgerDate> {
        self.clocks
            .iter()
            .map(|(tz, cutoff)| ledger_date_at(tz, *cutoff, t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerport_core::world::parse_cutoff;

    #[test]
    fn dates_change_at_every_ledgers_cutoff() {
        let oslo = (
            "Europe/Oslo".to_owned(),
            parse_cutoff("c", "00:00").expect("cutoff"),
        );
        let helsinki = (
            "Europe/Helsinki".to_owned(),
            parse_cutoff("c", "04:00").expect("cutoff"),
        );
        let d = LedgerDates {
            clocks: vec![oslo, helsinki],
        };
        let t = |s: &str| s.parse::<Timestamp>().expect("ts");
        // Oslo's midnight (22:00 UTC in June) separates 21:59 and 22:01.
        assert_ne!(
            d.at(t("2024-06-10T21:59:00Z")),
            d.at(t("2024-06-10T22:01:00Z"))
        );
        // Helsinki's 04:00 (01:00 UTC) separates 00:59 and 01:01.
        assert_ne!(
            d.at(t("2024-06-11T00:59:00Z")),
            d.at(t("2024-06-11T01:01:00Z"))
        );
        assert_eq!(
            d.at(t("2024-06-11T01:01:00Z")),
            d.at(t("2024-06-11T21:00:00Z"))
        );
    }
}
