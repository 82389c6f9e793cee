//! A ledger's account statement for a period of ledger dates, as accounting systems import a
//! bank's: an opening and a closing balance and one line per movement of money between them
//! (what [`crate::camt053`] writes as an ISO 20022 camt.053 document).
//!
//! The statement's account is the ledger as the merchant sees it: what the merchant is owed, the
//! funds topic's balance plus the fees topic's (fees owed are negative). So a capture is a credit
//! of its whole amount, its capture fee a debit of its own, a refund and a payout debits, and
//! the two halves of a `fees-retained` (funds down, fees up by the same amount) cancel out and
//! are left out: they move money between the ledger's two topics, not in or out of it. Entries
//! of zero move nothing and are left out too. Whatever is left out sums to zero, so the opening
//! balance plus the lines is the closing balance.

use crate::ParseError;
use crate::engine::end_of_date;
use crate::entry::Entry;
use crate::ids::{BankAccount, Currency, LedgerDate, LedgerId, Topic};
use crate::world::{Ledger, SalesUnit};
use jiff::Timestamp;
use std::collections::HashMap;

/// The longest period one statement covers, in days.
pub const MAX_STATEMENT_DAYS: i64 = 366;

/// Checks a statement's period: `from` not after `to`, at most `max_days` days. Errors name the
/// field as the caller calls it (`from`, `--from`).
pub fn check_period(
    from_field: &'static str,
    from: LedgerDate,
    to: LedgerDate,
    max_days: i64,
) -> Result<(), ParseError> {
    if from > to {
        return Err(ParseError::new(from_field, "must not be after to"));
    }
    let days = i64::from(to.to_days()) - i64::from(from.to_days()) + 1;
    if days > max_days {
        return Err(ParseError::new(
            from_field,
            format!("a statement covers at most {max_days} days, this period has {days}"),
        ));
    }
    Ok(())
}

/// An ISO 20022 bank transaction code: domain, family and sub-family (the external code sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BankCode {
    pub domain: &'static str,
    pub family: &'static str,
    pub sub_family: &'static str,
}

const fn code(family: &'static str, sub_family: &'static str) -> BankCode {
    BankCode {
        domain: "PMNT",
        family,
        sub_family,
    }
}

/// The bank transaction code of an entry type (with the sign for those that go both ways):
/// sales and refunds as merchant card transactions (`MCRD`: point-of-sale payment,
/// reimbursement), fees as their fees, disputes and corrections as debit or credit adjustments,
/// a payout as an issued domestic credit transfer and its return as a reversal, a top-up as a
/// received one. A type Ledgerport does not know yet is `OTHR`.
pub fn bank_code(topic: Topic, entry_type: &str, amount: i64) -> BankCode {
    let adjustment = if amount >= 0 { "CAJT" } else { "DAJT" };
    match (topic, entry_type) {
        (Topic::Fees, _) | (Topic::Funds, "fees-retained") => code("MCRD", "FEES"),
        (Topic::Funds, "capture") => code("MCRD", "POSP"),
        (Topic::Funds, "refund") => code("MCRD", "RIMB"),
        (Topic::Funds, "payout-scheduled") => code("ICDT", "DMCT"),
        (Topic::Funds, "payout-aborted") => code("ICDT", "RRTN"),
        (Topic::Funds, "top-up") => code("RCDT", "DMCT"),
        (
            Topic::Funds,
            "retained-disputed-capture"
            | "returned-disputed-capture"
            | "correction"
            | "credit-note",
        ) => code("MCRD", adjustment),
        _ => code("MCRD", "OTHR"),
    }
}

/// What a line is, in words, for the statement's free text.
fn label(topic: Topic, entry_type: &str) -> String {
    match (topic, entry_type) {
        (Topic::Funds, "capture") => "Sale".into(),
        (Topic::Funds, "refund") => "Refund".into(),
        (Topic::Funds, "payout-scheduled") => "Payout".into(),
        (Topic::Funds, "payout-aborted") => "Payout returned".into(),
        (Topic::Funds, "retained-disputed-capture") => "Dispute withheld".into(),
        (Topic::Funds, "returned-disputed-capture") => "Dispute returned".into(),
        (Topic::Funds, "top-up") => "Top-up".into(),
        (Topic::Fees, "capture-fee") => "Fee".into(),
        (Topic::Fees, "service-fee") => "Service fee".into(),
        (Topic::Fees, "fees-invoiced") => "Fees invoiced".into(),
        (_, "fees-retained") => "Fees retained".into(),
        (_, "credit-note") => "Credit note".into(),
        (_, "correction") => "Correction".into(),
        (topic, other) => format!("{other} ({topic})"),
    }
}

/// One movement on the statement: one ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub topic: Topic,
    /// The entry's sequence number on its topic.
    pub seq: i64,
    pub entry_type: String,
    /// Minor units, positive for a credit (the merchant is owed more), negative for a debit.
    pub amount: i64,
    pub date: LedgerDate,
    pub psp_reference: String,
    /// The entry's `reference`: the merchant's order reference, or a payout's bank text.
    pub reference: String,
    pub code: BankCode,
    /// A payout's destination, the ledger's payout account.
    pub payout_to: Option<BankAccount>,
}

impl Line {
    /// The entry's identity on the ledger, `funds-12`: unique and stable, for importers that
    /// recognise a line they have seen.
    pub fn entry_ref(&self) -> String {
        format!("{}-{}", self.topic, self.seq)
    }

    /// The proprietary transaction code: topic and entry type, `funds:capture`.
    pub fn proprietary_code(&self) -> String {
        format!("{}:{}", self.topic, self.entry_type)
    }

    /// The line in words: `Sale 3343121302 (purchase-12)`, `Payout 100-2000001: Utb. 2000001
    /// Vippsnr 57860`.
    pub fn description(&self) -> String {
        let what = label(self.topic, &self.entry_type);
        match (self.reference.is_empty(), &self.payout_to) {
            (true, _) => format!("{what} {}", self.psp_reference),
            (false, Some(to)) => format!(
                "{what} {}: {} to {} {}",
                self.psp_reference, self.reference, to.scheme, to.id
            ),
            (false, None) => format!("{what} {} ({})", self.psp_reference, self.reference),
        }
    }
}

/// A statement of one ledger for the ledger dates `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub ledger_id: LedgerId,
    pub currency: Currency,
    /// The account's name: the ledger and its sales units.
    pub account_name: String,
    /// The merchant that owns the ledger.
    pub owner_name: String,
    /// Where the ledger pays out.
    pub payout_account: BankAccount,
    pub from: LedgerDate,
    pub to: LedgerDate,
    /// The first and last instant of the period's ledger dates (the ledger's zone and cutoff).
    pub from_time: Timestamp,
    pub to_time: Timestamp,
    pub created: Timestamp,
    /// What the merchant was owed at the start of `from` and at the end of `to` (funds plus
    /// fees), in minor units.
    pub opening: i128,
    pub closing: i128,
    pub lines: Vec<Line>,
}

impl Statement {
    /// The statement's id: ledger and period, `100-20240601-20240630`; the same period of the
    /// same ledger has the same id. Ledger ids longer than 17 digits get two-digit years, so the
    /// id stays within the 35 characters camt.053 allows.
    pub fn id(&self) -> String {
        let long = format!(
            "{}-{}-{}",
            self.ledger_id,
            self.from.date().strftime("%Y%m%d"),
            self.to.date().strftime("%Y%m%d")
        );
        if long.chars().count() <= 35 {
            return long;
        }
        format!(
            "{}-{}-{}",
            self.ledger_id,
            self.from.date().strftime("%y%m%d"),
            self.to.date().strftime("%y%m%d")
        )
    }

    /// The message's id, new for every document made: the ledger and the creation time in
    /// microseconds, base 36 (at most 34 characters).
    pub fn message_id(&self) -> String {
        let micros = self.created.as_microsecond().unsigned_abs();
        format!("{}-{}", self.ledger_id, base36(micros))
    }

    /// (count, sum of amounts) of the credit lines and of the debit lines (the sums positive).
    pub fn totals(&self) -> ((usize, i128), (usize, i128)) {
        let mut credit = (0, 0i128);
        let mut debit = (0, 0i128);
        for l in &self.lines {
            let t = if l.amount > 0 {
                &mut credit
            } else {
                &mut debit
            };
            t.0 += 1;
            t.1 += i128::from(l.amount).abs();
        }
        (credit, debit)
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![];
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// What a statement is made of, as read from the store.
pub struct StatementFacts<'a> {
    pub ledger: &'a Ledger,
    pub units: &'a [SalesUnit],
    pub owner_name: &'a str,
    pub from: LedgerDate,
    pub to: LedgerDate,
    pub created: Timestamp,
    /// The funds and fees balances at the start of `from`.
    pub opening_funds: i64,
    pub opening_fees: i64,
    /// Every entry of the period's dates on both topics.
    pub entries: Vec<(Topic, Entry)>,
}

/// The statement of these facts: the lines in booking order (date, time, funds before fees,
/// sequence), without the `fees-retained` pairs that cancel out and without entries of zero.
pub fn build(f: StatementFacts<'_>) -> Statement {
    // A closing writes `fees-retained` on both topics with one pspReference; a pair whose
    // amounts cancel is the ledger moving money between its own topics.
    let mut retained: HashMap<&str, (i128, bool, bool)> = HashMap::new();
    for (topic, e) in &f.entries {
        if e.entry_type == "fees-retained" {
            let r = retained
                .entry(e.psp_reference.as_str())
                .or_insert((0, false, false));
            r.0 += i128::from(e.amount);
            match topic {
                Topic::Funds => r.1 = true,
                Topic::Fees => r.2 = true,
            }
        }
    }
    let internal = |e: &Entry| {
        e.entry_type == "fees-retained"
            && retained
                .get(e.psp_reference.as_str())
                .is_some_and(|&(sum, funds, fees)| sum == 0 && funds && fees)
    };
    let mut lines: Vec<(String, Line)> = f
        .entries
        .iter()
        .filter(|(_, e)| e.amount != 0 && !internal(e))
        .map(|(topic, e)| {
            (
                e.time.clone(),
                Line {
                    topic: *topic,
                    seq: e.seq,
                    entry_type: e.entry_type.clone(),
                    amount: e.amount,
                    date: e.ledger_date,
                    psp_reference: e.psp_reference.clone(),
                    reference: e.reference.clone(),
                    code: bank_code(*topic, &e.entry_type, e.amount),
                    payout_to: (*topic == Topic::Funds && e.entry_type == "payout-scheduled")
                        .then(|| f.ledger.payout_account.clone()),
                },
            )
        })
        .collect();
    lines.sort_by(|(ta, a), (tb, b)| {
        (a.date, ta, a.topic.code(), a.seq).cmp(&(b.date, tb, b.topic.code(), b.seq))
    });
    let lines: Vec<Line> = lines.into_iter().map(|(_, l)| l).collect();
    let opening = i128::from(f.opening_funds) + i128::from(f.opening_fees);
    let closing = opening + lines.iter().map(|l| i128::from(l.amount)).sum::<i128>();
    let ledger = f.ledger;
    let from_time = ledger.date_starts_at(f.from);
    let units = f
        .units
        .iter()
        .map(|u| format!("{} ({})", u.name, u.handle))
        .collect::<Vec<_>>()
        .join(", ");
    Statement {
        ledger_id: ledger.ledger_id.clone(),
        currency: ledger.currency,
        account_name: if units.is_empty() {
            format!("Ledger {}", ledger.ledger_id)
        } else {
            format!("Ledger {}: {units}", ledger.ledger_id)
        },
        owner_name: f.owner_name.to_owned(),
        payout_account: ledger.payout_account.clone(),
        from: f.from,
        to: f.to,
        from_time,
        to_time: end_of_date(ledger, f.to),
        created: f.created,
        opening,
        closing,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Currency;
    use crate::world::{FeePlan, PayoutFrequency, SettlementMode};

    fn d(s: &str) -> LedgerDate {
        LedgerDate::parse("d", s).expect("date")
    }

    fn ledger() -> Ledger {
        Ledger {
            ledger_id: LedgerId::parse("l", "100").expect("id"),
            currency: Currency::NOK,
            payout_account: BankAccount::parse("a", "BBAN:NO", "12345678903").expect("acct"),
            owner_merchant_id: 1,
            time_zone: "Europe/Oslo".into(),
            cutoff: jiff::civil::time(0, 0, 0, 0),
            payout_frequency: PayoutFrequency::Daily,
            settlement_mode: SettlementMode::Net,
            fee_plan: FeePlan {
                basis_points: 0,
                fixed_minor: 0,
            },
            page_size: 100,
            created_at: Timestamp::UNIX_EPOCH,
            closed_through: d("2024-05-31"),
            next_payout_number: 2_000_001,
        }
    }

    fn entry(seq: i64, date: &str, time: &str, t: &str, psp: &str, amount: i64) -> Entry {
        Entry {
            seq,
            psp_reference: psp.into(),
            time: format!("{date}T{time}.000000Z"),
            ledger_date: d(date),
            entry_type: t.into(),
            reference: format!("ref-{seq}"),
            currency: Currency::NOK,
            amount,
            balance_before: 0,
            balance_after: 0,
            recipient_handle: String::new(),
            payer: None,
        }
    }

    #[test]
    fn a_period_is_checked_naming_the_field() {
        assert!(check_period("from", d("2024-06-01"), d("2024-06-01"), 1).is_ok());
        let e = check_period("--from", d("2024-06-02"), d("2024-06-01"), 366).expect_err("order");
        assert_eq!(e.field, "--from");
        let e = check_period("from", d("2024-01-01"), d("2025-01-01"), 366).expect_err("long");
        assert!(e.reason.contains("367"), "{e}");
    }

    #[test]
    fn the_fees_retained_pair_cancels_and_the_balances_add_up() {
        let l = ledger();
        let entries = vec![
            (
                Topic::Funds,
                entry(1, "2024-06-01", "10:00:00", "capture", "p1", 10_000),
            ),
            (
                Topic::Fees,
                entry(1, "2024-06-01", "10:00:00", "capture-fee", "p1", -175),
            ),
            (
                Topic::Fees,
                entry(2, "2024-06-01", "10:00:01", "capture-fee", "p2", 0),
            ),
            (
                Topic::Funds,
                entry(2, "2024-06-01", "11:00:00", "refund", "p1", -2_500),
            ),
            (
                Topic::Funds,
                entry(
                    3,
                    "2024-06-01",
                    "21:59:59",
                    "fees-retained",
                    "100-2024-06-01",
                    -175,
                ),
            ),
            (
                Topic::Fees,
                entry(
                    3,
                    "2024-06-01",
                    "21:59:59",
                    "fees-retained",
                    "100-2024-06-01",
                    175,
                ),
            ),
            (
                Topic::Funds,
                entry(
                    4,
                    "2024-06-01",
                    "21:59:59",
                    "payout-scheduled",
                    "100-2000001",
                    -7_325,
                ),
            ),
        ];
        let s = build(StatementFacts {
            ledger: &l,
            units: &[],
            owner_name: "Shop",
            from: d("2024-06-01"),
            to: d("2024-06-01"),
            created: Timestamp::UNIX_EPOCH,
            opening_funds: 0,
            opening_fees: 0,
            entries,
        });
        let kinds: Vec<String> = s.lines.iter().map(Line::proprietary_code).collect();
        assert_eq!(
            kinds,
            [
                "funds:capture",
                "fees:capture-fee",
                "funds:refund",
                "funds:payout-scheduled"
            ]
        );
        assert_eq!((s.opening, s.closing), (0, 0));
        assert_eq!(s.totals(), ((1, 10_000), (3, 10_000)));
        let payout = &s.lines[3];
        assert_eq!(payout.code, code("ICDT", "DMCT"));
        assert_eq!(payout.payout_to, Some(l.payout_account.clone()));
        assert_eq!(
            payout.description(),
            "Payout 100-2000001: ref-4 to BBAN:NO 12345678903"
        );
        assert_eq!(s.lines[0].description(), "Sale p1 (ref-1)");
        assert_eq!(s.id(), "100-20240601-20240601");
        // Oslo is UTC+2 in June: the date runs from 22:00 the day before.
        assert_eq!(s.from_time.to_string(), "2024-05-31T22:00:00Z");
        assert_eq!(s.to_time.to_string(), "2024-06-01T21:59:59.999999Z");
    }

    #[test]
    fn a_fees_retained_that_does_not_cancel_stays_on_the_statement() {
        let l = ledger();
        let s = build(StatementFacts {
            ledger: &l,
            units: &[],
            owner_name: "Shop",
            from: d("2024-06-01"),
            to: d("2024-06-01"),
            created: Timestamp::UNIX_EPOCH,
            opening_funds: 500,
            opening_fees: -100,
            entries: vec![(
                Topic::Funds,
                entry(1, "2024-06-01", "21:00:00", "fees-retained", "x", -100),
            )],
        });
        assert_eq!(s.lines.len(), 1);
        assert_eq!((s.opening, s.closing), (400, 300));
    }

    #[test]
    fn ids_fit_35_characters() {
        let mut l = ledger();
        l.ledger_id = LedgerId::parse("l", "12345678901234567890").expect("id");
        let s = build(StatementFacts {
            ledger: &l,
            units: &[],
            owner_name: "",
            from: d("2024-06-01"),
            to: d("2024-06-30"),
            created: "2024-07-01T08:00:00.123456Z".parse().expect("ts"),
            opening_funds: 0,
            opening_fees: 0,
            entries: vec![],
        });
        assert_eq!(s.id(), "12345678901234567890-240601-240630");
        assert!(
            s.id().len() <= 35 && s.message_id().len() <= 35,
            "{}",
            s.message_id()
        );
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36 * 36 + 35), "10z");
    }
}
