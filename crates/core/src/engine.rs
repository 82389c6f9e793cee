//! The settlement engine's decisions, free of I/O: what entries a payment event becomes, which
//! dates a clock reading closes, and what a closing writes.
//!
//! The store runs these inside its transactions (read state, decide here, write), so the rules
//! live in one place and every backend applies them alike.

use crate::ParseError;
use crate::entry::{NewEntry, PayerDetails, wire_time};
use crate::ids::{Country, Currency, LedgerDate, Msn, RecipientHandle, Topic};
use crate::world::{Ledger, PayoutFrequency, SalesUnit, SalesUnitKind, SettlementMode};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// How far ahead of the clock an event's time may lie (clock skew between payment systems).
pub const MAX_FUTURE: SignedDuration = SignedDuration::from_mins(5);

/// The first payout number of every ledger.
pub const FIRST_PAYOUT_NUMBER: i64 = 2_000_001;

/// Longest bank text a payout may carry.
pub const MAX_BANK_TEXT: usize = 35;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Capture,
    Refund,
    DisputeRetained,
    DisputeReturned,
    Correction,
    TopUp,
    ServiceFee,
    CreditNote,
    PayoutAborted,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::Capture,
        EventKind::Refund,
        EventKind::DisputeRetained,
        EventKind::DisputeReturned,
        EventKind::Correction,
        EventKind::TopUp,
        EventKind::ServiceFee,
        EventKind::CreditNote,
        EventKind::PayoutAborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Capture => "capture",
            EventKind::Refund => "refund",
            EventKind::DisputeRetained => "dispute-retained",
            EventKind::DisputeReturned => "dispute-returned",
            EventKind::Correction => "correction",
            EventKind::TopUp => "top-up",
            EventKind::ServiceFee => "service-fee",
            EventKind::CreditNote => "credit-note",
            EventKind::PayoutAborted => "payout-aborted",
        }
    }

    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            ParseError::new(
                field,
                "must be capture, refund, dispute-retained, dispute-returned, correction, top-up, \
                 service-fee, credit-note or payout-aborted",
            )
        })
    }

    /// Corrections and credit notes name their account and carry a signed amount; every other
    /// event carries a positive amount whose sign on the ledger follows from its kind.
    pub fn is_signed(self) -> bool {
        matches!(self, EventKind::Correction | EventKind::CreditNote)
    }

    /// Card disputes exist only for api (ePayment) sales units.
    pub fn api_only(self) -> bool {
        matches!(
            self,
            EventKind::DisputeRetained | EventKind::DisputeReturned
        )
    }
}

/// A payment event as the payment systems post it, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvent {
    /// Unique per event; posting it again changes nothing.
    pub event_id: String,
    pub kind: EventKind,
    pub msn: Msn,
    pub psp_reference: String,
    pub reference: String,
    pub amount: i64,
    pub currency: Currency,
    pub time: Timestamp,
    /// The account of a correction or credit note.
    pub topic: Option<Topic>,
    /// Payer of a vm-number payment.
    pub payer: Option<PayerDetails>,
}

/// Why an event was not applied: the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub field: &'static str,
    pub reason: String,
}

impl Rejection {
    /// The wire names of every field a rejection may name (the event's JSON fields).
    pub const FIELDS: [&'static str; 14] = [
        "event",
        "eventId",
        "type",
        "msn",
        "pspReference",
        "reference",
        "amount",
        "currency",
        "time",
        "topic",
        "payer",
        "payer.name",
        "payer.message",
        "payer.maskedPhoneNo",
    ];

    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Rejection {
            field,
            reason: reason.into(),
        }
    }

    /// A rejection read back from storage; a field name not in [`Rejection::FIELDS`] becomes
    /// `event` (the event as a whole).
    pub fn from_stored(field: &str, reason: impl Into<String>) -> Self {
        let field = Self::FIELDS
            .into_iter()
            .find(|f| *f == field)
            .unwrap_or("event");
        Rejection::new(field, reason)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// What a ledger has seen of one pspReference so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PaymentTotals {
    pub captured: i64,
    pub refunded: i64,
}

/// Fee of one capture: basis points rounded half up to minor units, plus the fixed part.
pub fn capture_fee(ledger: &Ledger, amount: i64) -> i64 {
    let pct =
        (i128::from(amount) * i128::from(ledger.fee_plan.basis_points) + 5_000).div_euclid(10_000);
    i64::try_from(pct)
        .unwrap_or(i64::MAX)
        .saturating_add(ledger.fee_plan.fixed_minor)
}

/// The date an entry at `time` is booked on: its own ledger date, but never a closed date (a late
/// event never changes a closed date) and never a date before the latest one already booked on
/// the ledger (so the feed order and the date order stay one sequence).
pub fn booking_date(
    ledger: &Ledger,
    time: Timestamp,
    last_booked: Option<LedgerDate>,
) -> LedgerDate {
    let own = ledger.ledger_date_of(time);
    let first_open = next_date(ledger.closed_through);
    own.max(first_open).max(last_booked.unwrap_or(first_open))
}

fn next_date(d: LedgerDate) -> LedgerDate {
    LedgerDate::from_date(d.date().tomorrow().unwrap_or(d.date()))
}

/// Whether the event may be applied to `ledger` at all, whatever date it would be booked on:
/// currency, time, amount and its sign, account, kind for the unit, payer, and refunds within
/// what was captured (`totals` are the pspReference's totals before this event).
pub fn check_event(
    ledger: &Ledger,
    unit: &SalesUnit,
    ev: &PaymentEvent,
    totals: PaymentTotals,
    now: Timestamp,
) -> Result<(), Rejection> {
    if ev.currency != ledger.currency {
        return Err(Rejection::new(
            "currency",
            format!(
                "{} is not the currency of ledger {} ({})",
                ev.currency, ledger.ledger_id, ledger.currency
            ),
        ));
    }
    if ev.time > now + MAX_FUTURE {
        return Err(Rejection::new("time", "lies in the future"));
    }
    if ev.kind.is_signed() {
        if ev.amount == 0 {
            return Err(Rejection::new("amount", "must not be zero"));
        }
        if ev.topic.is_none() {
            return Err(Rejection::new(
                "topic",
                format!("a {} names its account: funds or fees", ev.kind.as_str()),
            ));
        }
    } else {
        if ev.amount <= 0 {
            return Err(Rejection::new(
                "amount",
                format!(
                    "a {} carries a positive amount of minor units",
                    ev.kind.as_str()
                ),
            ));
        }
        if ev.topic.is_some() {
            return Err(Rejection::new(
                "topic",
                "only correction and credit-note events name an account",
            ));
        }
    }
    if ev.kind.api_only() && unit.kind == SalesUnitKind::VmNumber {
        return Err(Rejection::new(
            "type",
            format!("{} events exist only for api sales units", ev.kind.as_str()),
        ));
    }
    if ev.payer.is_some() && (unit.kind != SalesUnitKind::VmNumber || ev.kind != EventKind::Capture)
    {
        return Err(Rejection::new(
            "payer",
            "only captures of vm-number sales units carry payer details",
        ));
    }
    match ev.kind {
        EventKind::Refund | EventKind::DisputeRetained if totals.captured == 0 => {
            return Err(Rejection::new(
                "pspReference",
                "no capture with this pspReference on the ledger",
            ));
        }
        // Checked: a refund so large that the sum overflows is more than was captured too.
        EventKind::Refund
            if totals
                .refunded
                .checked_add(ev.amount)
                .is_none_or(|refunded| refunded > totals.captured) =>
        {
            return Err(Rejection::new(
                "amount",
                format!(
                    "refund of {} is more than what is left of the captures of this pspReference ({})",
                    ev.amount,
                    totals.captured.saturating_sub(totals.refunded)
                ),
            ));
        }
        EventKind::Capture if totals.captured.checked_add(ev.amount).is_none() => {
            return Err(Rejection::new(
                "amount",
                "would take the captures of this pspReference out of range",
            ));
        }
        _ => {}
    }

    Ok(())
}

/// Turns one event into entries on `ledger`, or says why not. `last_booked` is the latest date
/// booked on the ledger so far; `totals` are the pspReference's totals before this event (the
/// caller adds [`totals_after`] once the entries are written).
pub fn plan_event(
    ledger: &Ledger,
    unit: &SalesUnit,
    ev: &PaymentEvent,
    last_booked: Option<LedgerDate>,
    totals: PaymentTotals,
    now: Timestamp,
) -> Result<Vec<(Topic, NewEntry)>, Rejection> {
    check_event(ledger, unit, ev, totals, now)?;
    let date = booking_date(ledger, ev.time, last_booked);
    let handle = unit.handle.to_string();
    let time = wire_time(ev.time);
    let entry =
        |entry_type: &str, amount: i64, handle: &str, payer: Option<PayerDetails>| NewEntry {
            psp_reference: ev.psp_reference.clone(),
            time: time.clone(),
            ledger_date: date,
            entry_type: entry_type.into(),
            reference: ev.reference.clone(),
            currency: ledger.currency,
            amount,
            recipient_handle: handle.into(),
            payer,
        };
    let topic = ev.topic.unwrap_or(Topic::Funds);
    Ok(match ev.kind {
        EventKind::Capture => {
            let mut out = vec![(
                Topic::Funds,
                entry("capture", ev.amount, &handle, ev.payer.clone()),
            )];
            let fee = capture_fee(ledger, ev.amount);
            if fee != 0 {
                out.push((Topic::Fees, entry("capture-fee", -fee, &handle, None)));
            }
            out
        }
        EventKind::Refund => vec![(Topic::Funds, entry("refund", -ev.amount, &handle, None))],
        EventKind::DisputeRetained => {
            vec![(
                Topic::Funds,
                entry("retained-disputed-capture", -ev.amount, &handle, None),
            )]
        }
        EventKind::DisputeReturned => {
            vec![(
                Topic::Funds,
                entry("returned-disputed-capture", ev.amount, &handle, None),
            )]
        }
        EventKind::Correction => vec![(topic, entry("correction", ev.amount, "", None))],
        EventKind::TopUp => vec![(Topic::Funds, entry("top-up", ev.amount, "", None))],
        EventKind::ServiceFee => {
            vec![(Topic::Fees, entry("service-fee", -ev.amount, &handle, None))]
        }
        EventKind::CreditNote => vec![(topic, entry("credit-note", ev.amount, &handle, None))],
        EventKind::PayoutAborted => {
            vec![(Topic::Funds, entry("payout-aborted", ev.amount, "", None))]
        }
    })
}

/// A pspReference's totals after `ev` was applied. [`check_event`] has made sure the sums fit;
/// they saturate rather than wrap should they not.
pub fn totals_after(totals: PaymentTotals, ev: &PaymentEvent) -> PaymentTotals {
    match ev.kind {
        EventKind::Capture => PaymentTotals {
            captured: totals.captured.saturating_add(ev.amount),
            ..totals
        },
        EventKind::Refund => PaymentTotals {
            refunded: totals.refunded.saturating_add(ev.amount),
            ..totals
        },
        _ => totals,
    }
}

/// Whether `date` is the last date of a payout period: every date for daily payouts, the Sunday
/// before Monday's payout point for weekly, the last day of the month for monthly.
pub fn ends_period(freq: PayoutFrequency, date: LedgerDate) -> bool {
    let next = next_date(date).date();
    match freq {
        PayoutFrequency::Daily => true,
        PayoutFrequency::Weekly => next.weekday() == jiff::civil::Weekday::Monday,
        PayoutFrequency::Monthly => next.day() == 1,
    }
}

/// The period ends that `now` has passed and that are not closed yet, oldest first: every date
/// E after `closed_through` and before the current ledger date that ends a period.
pub fn due_period_ends(
    ledger: &Ledger,
    closed_through: LedgerDate,
    now: Timestamp,
) -> Vec<LedgerDate> {
    let today = ledger.ledger_date_of(now);
    let mut out = Vec::new();
    let mut d = next_date(closed_through);
    while d < today {
        if ends_period(ledger.payout_frequency, d) {
            out.push(d);
        }
        d = next_date(d);
    }
    out
}

/// The last microsecond of a ledger date in the ledger's zone: when its closing entries happen.
pub fn end_of_date(ledger: &Ledger, date: LedgerDate) -> Timestamp {
    let tz = TimeZone::get(&ledger.time_zone).unwrap_or(TimeZone::UTC);
    let next_start = DateTime::from_parts(next_date(date).date(), ledger.cutoff);
    tz.to_timestamp(next_start)
        .ok()
        .and_then(|t| t.checked_sub(1.microsecond()).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// What a period's closing needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodFacts {
    /// The funds balance before the closing entries.
    pub funds_balance: i64,
    /// The fees balance before the closing entries.
    pub fees_balance: i64,
    /// The payout number the next payout gets.
    pub next_payout_number: i64,
}

/// A period's closing entries, in order, and whether a payout number was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosePlan {
    pub entries: Vec<(Topic, NewEntry)>,
    pub used_payout_number: bool,
}

/// The bank text of a payout, at most [`MAX_BANK_TEXT`] characters.
pub fn bank_text(country: Country, payout_number: i64, unit_number: &str) -> String {
    let text = match country {
        Country::NO => format!("Utb. {payout_number} Vippsnr {unit_number}"),
        Country::DK => format!("Udb. {payout_number} MobilePay {unit_number}"),
        Country::FI => format!("Maksu {payout_number} MobilePay {unit_number}"),
    };
    text.chars().take(MAX_BANK_TEXT).collect()
}

/// The number a payout's bank text names: the first unit's Vippsnummer, or its MSN.
pub fn unit_number(handle: &RecipientHandle) -> String {
    match handle {
        RecipientHandle::Api(msn) => msn.to_string(),
        RecipientHandle::VmNumber { number, .. } => number.clone(),
    }
}

/// Closes the period ending `end`. Net settlement: the whole fees balance owed (capture fees,
/// service fees, credit notes, fee corrections, and what earlier periods carried) is retained
/// from the funds (`fees-retained` on both topics), so the fees topic is back at zero; a fees
/// balance in the merchant's favour is not retained (the entry's sign is fixed) and carries over.
/// Then a positive funds balance is paid out whole as the date's last entry. Gross settlement: no fees are retained; at a month's end the fees owed are
/// invoiced (`fees-invoiced`). A zero or negative balance pays nothing and carries over.
pub fn plan_close(
    ledger: &Ledger,
    country: Country,
    first_unit: &RecipientHandle,
    end: LedgerDate,
    f: PeriodFacts,
) -> ClosePlan {
    let time = wire_time(end_of_date(ledger, end));
    let entry = |psp: String, entry_type: &str, reference: String, amount: i64| NewEntry {
        psp_reference: psp,
        time: time.clone(),
        ledger_date: end,
        entry_type: entry_type.into(),
        reference,
        currency: ledger.currency,
        amount,
        recipient_handle: String::new(),
        payer: None,
    };
    let mut entries = Vec::new();
    let mut funds = f.funds_balance;
    let period_ref = format!("{}-{}", ledger.ledger_id, end);
    match ledger.settlement_mode {
        SettlementMode::Net => {
            let retained = -f.fees_balance.min(0);
            if retained != 0 {
                entries.push((
                    Topic::Funds,
                    entry(
                        period_ref.clone(),
                        "fees-retained",
                        period_ref.clone(),
                        -retained,
                    ),
                ));
                entries.push((
                    Topic::Fees,
                    entry(
                        period_ref.clone(),
                        "fees-retained",
                        period_ref.clone(),
                        retained,
                    ),
                ));
                funds = funds.saturating_sub(retained);
            }
        }
        SettlementMode::Gross => {
            let month_ends = ends_period(PayoutFrequency::Monthly, end);
            if month_ends && f.fees_balance < 0 {
                entries.push((
                    Topic::Fees,
                    entry(
                        period_ref.clone(),
                        "fees-invoiced",
                        period_ref.clone(),
                        -f.fees_balance,
                    ),
                ));
            }
        }
    }
    let used_payout_number = funds > 0;
    if used_payout_number {
        let n = f.next_payout_number;
        let text = bank_text(country, n, &unit_number(first_unit));
        entries.push((
            Topic::Funds,
            entry(
                format!("{}-{n}", ledger.ledger_id),
                "payout-scheduled",
                text,
                -funds,
            ),
        ));
    }
    ClosePlan {
        entries,
        used_payout_number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BankAccount, LedgerId};
    use crate::world::{FeePlan, parse_cutoff};

    fn ledger(freq: PayoutFrequency, mode: SettlementMode, bp: i64, fixed: i64) -> Ledger {
        Ledger {
            ledger_id: LedgerId::parse("l", "12345").expect("id"),
            currency: Currency::NOK,
            payout_account: BankAccount::parse("a", "BBAN:NO", "86011117947").expect("acct"),
            owner_merchant_id: 1,
            time_zone: "Europe/Oslo".into(),
            cutoff: parse_cutoff("c", "00:00").expect("cutoff"),
            payout_frequency: freq,
            settlement_mode: mode,
            fee_plan: FeePlan {
                basis_points: bp,
                fixed_minor: fixed,
            },
            page_size: 1000,
            created_at: Timestamp::UNIX_EPOCH,
            closed_through: d("1970-01-01"),
            next_payout_number: FIRST_PAYOUT_NUMBER,
        }
    }

    fn d(s: &str) -> LedgerDate {
        LedgerDate::parse("d", s).expect("date")
    }

    #[test]
    fn a_stored_rejection_keeps_its_field_name_and_an_unknown_one_becomes_event() {
        for field in Rejection::FIELDS {
            assert_eq!(
                Rejection::from_stored(field, "why"),
                Rejection::new(field, "why")
            );
        }
        assert_eq!(
            Rejection::from_stored("colour", "why"),
            Rejection::new("event", "why")
        );
    }

    #[test]
    fn capture_fees_round_half_up_and_add_the_fixed_part() {
        let l = ledger(PayoutFrequency::Daily, SettlementMode::Net, 175, 0);
        assert_eq!(capture_fee(&l, 10_000), 175);
        assert_eq!(capture_fee(&l, 1_234), 22); // 21.595
        assert_eq!(capture_fee(&l, 200), 4); // 3.5 rounds up
        assert_eq!(
            capture_fee(
                &ledger(PayoutFrequency::Daily, SettlementMode::Net, 100, 100),
                10_000
            ),
            200
        );
        assert_eq!(
            capture_fee(
                &ledger(PayoutFrequency::Daily, SettlementMode::Net, 400, 0),
                10_000
            ),
            400
        );
    }

    #[test]
    fn period_ends_follow_the_payout_frequency() {
        assert!(ends_period(PayoutFrequency::Daily, d("2024-06-04")));
        assert!(ends_period(PayoutFrequency::Weekly, d("2024-06-02"))); // a Sunday
        assert!(!ends_period(PayoutFrequency::Weekly, d("2024-06-03")));
        assert!(ends_period(PayoutFrequency::Monthly, d("2024-02-29")));
        assert!(!ends_period(PayoutFrequency::Monthly, d("2024-02-28")));
    }

    #[test]
    fn due_period_ends_are_the_passed_unclosed_ones() {
        let l = ledger(PayoutFrequency::Weekly, SettlementMode::Net, 0, 0);
        let now: Timestamp = "2024-06-12T10:00:00Z".parse().expect("ts"); // a Wednesday
        assert_eq!(
            due_period_ends(&l, d("2024-05-20"), now),
            vec![d("2024-05-26"), d("2024-06-02"), d("2024-06-09")]
        );
        assert_eq!(due_period_ends(&l, d("2024-06-09"), now), vec![]);
        let daily = ledger(PayoutFrequency::Daily, SettlementMode::Net, 0, 0);
        assert_eq!(
            due_period_ends(&daily, d("2024-06-09"), now),
            vec![d("2024-06-10"), d("2024-06-11")]
        );
    }

    #[test]
    fn a_late_event_is_booked_on_the_first_open_date() {
        let mut l = ledger(PayoutFrequency::Daily, SettlementMode::Net, 0, 0);
        let t: Timestamp = "2024-06-10T10:00:00Z".parse().expect("ts");
        l.closed_through = d("2024-06-09");
        assert_eq!(booking_date(&l, t, None), d("2024-06-10"));
        l.closed_through = d("2024-06-11");
        assert_eq!(booking_date(&l, t, None), d("2024-06-12"));
    }

    #[test]
    fn an_event_is_never_booked_before_the_latest_booked_date() {
        let mut l = ledger(PayoutFrequency::Weekly, SettlementMode::Net, 0, 0);
        l.closed_through = d("2024-06-09");
        let tuesday: Timestamp = "2024-06-11T10:00:00Z".parse().expect("ts");
        assert_eq!(
            booking_date(&l, tuesday, Some(d("2024-06-10"))),
            d("2024-06-11")
        );
        assert_eq!(
            booking_date(&l, tuesday, Some(d("2024-06-12"))),
            d("2024-06-12")
        );
    }

    #[test]
    fn bank_texts_fit_35_characters() {
        assert_eq!(
            bank_text(Country::NO, 2_000_001, "57860"),
            "Utb. 2000001 Vippsnr 57860"
        );
        assert!(
            bank_text(Country::FI, 2_000_001, "12345678901234567890")
                .chars()
                .count()
                <= MAX_BANK_TEXT
        );
    }

    #[test]
    fn net_closing_retains_fees_and_pays_out_the_rest() {
        let l = ledger(PayoutFrequency::Daily, SettlementMode::Net, 0, 0);
        let h = RecipientHandle::parse("h", "NO:57860").expect("handle");
        let f = PeriodFacts {
            funds_balance: 30_000,
            fees_balance: -1200,
            next_payout_number: 2_000_001,
        };
        let plan = plan_close(&l, Country::NO, &h, d("2022-10-01"), f);
        let got: Vec<(Topic, &str, i64)> = plan
            .entries
            .iter()
            .map(|(t, e)| (*t, e.entry_type.as_str(), e.amount))
            .collect();
        assert_eq!(
            got,
            vec![
                (Topic::Funds, "fees-retained", -1200),
                (Topic::Fees, "fees-retained", 1200),
                (Topic::Funds, "payout-scheduled", -28_800)
            ]
        );
        let payout = &plan.entries[2].1;
        assert_eq!(payout.psp_reference, "12345-2000001");
        assert_eq!(payout.reference, "Utb. 2000001 Vippsnr 57860");
        assert_eq!(payout.time, "2022-10-01T21:59:59.999999Z");
        assert!(plan.used_payout_number);
    }

    #[test]
    fn a_negative_balance_pays_nothing() {
        let l = ledger(PayoutFrequency::Daily, SettlementMode::Net, 0, 0);
        let h = RecipientHandle::parse("h", "api:123455").expect("handle");
        let f = PeriodFacts {
            funds_balance: -500,
            fees_balance: 0,
            next_payout_number: 2_000_001,
        };
        let plan = plan_close(&l, Country::NO, &h, d("2022-10-01"), f);
        assert!(plan.entries.is_empty());
        assert!(!plan.used_payout_number);
    }

    #[test]
    fn gross_closing_invoices_fees_at_the_month_end_only() {
        let l = ledger(PayoutFrequency::Daily, SettlementMode::Gross, 0, 0);
        let h = RecipientHandle::parse("h", "api:123455").expect("handle");
        let f = PeriodFacts {
            funds_balance: 10_000,
            fees_balance: -900,
            next_payout_number: 2_000_005,
        };
        let mid = plan_close(&l, Country::NO, &h, d("2024-06-14"), f);
        assert_eq!(
            mid.entries
                .iter()
                .map(|(_, e)| e.entry_type.as_str())
                .collect::<Vec<_>>(),
            vec!["payout-scheduled"]
        );
        assert_eq!(mid.entries[0].1.amount, -10_000);
        let end = plan_close(&l, Country::NO, &h, d("2024-06-30"), f);
        let got: Vec<(Topic, &str, i64)> = end
            .entries
            .iter()
            .map(|(t, e)| (*t, e.entry_type.as_str(), e.amount))
            .collect();
        assert_eq!(
            got,
            vec![
                (Topic::Fees, "fees-invoiced", 900),
                (Topic::Funds, "payout-scheduled", -10_000)
            ]
        );
    }
}
