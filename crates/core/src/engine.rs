//! The settlement engine's decisions, free of I/O: what entries a payment event becomes, which
//! dates a clock reading closes, and what a closing writes.
//!
//! The store runs these inside its transactions (read state, decide here, write), so the rules
//! live in one place and every backend applies them alike.

use crate::ParseError;
use crate::entry::{NewEntry, PayerDetails, wire_time};
use crate::ids::{Country, Currency, LedgerDate, Msn, RecipientHandle, Topic};
use crate::world::{Ledger, PayoutFrequency, SalesUnit, SalesUnitKind, SettlementMode};
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
    /// A refund's capture, when the refund carries its own `psp_reference` (as the real API's
    /// refunds do); `None` when the refund's pspReference is its capture's. Refunds only.
    pub capture_psp_reference: Option<String>,
    pub reference: String,
    pub amount: i64,
    pub currency: Currency,
    pub time: Timestamp,
    /// The account of a correction or credit note.
    pub topic: Option<Topic>,
    /// Payer of a vm-number payment.
    pub payer: Option<PayerDetails>,
}

impl PaymentEvent {
    /// The pspReference of the payment the event concerns: for a refund that names its capture,
    /// that capture's; otherwise the event's own.
    pub fn payment_reference(&self) -> &str {
        self.capture_psp_reference
            .as_deref()
            .unwrap_or(&self.psp_reference)
    }

    /// A refund's own pspReference when it differs from its capture's: a new reference on the
    /// ledger, booked on the refund entry and linked to the capture.
    pub fn own_refund_reference(&self) -> Option<&str> {
        match &self.capture_psp_reference {
            Some(capture) if *capture != self.psp_reference => Some(&self.psp_reference),
            _ => None,
        }
    }
}

/// Why an event was not applied: the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub field: &'static str,
    pub reason: String,
}

impl Rejection {
    /// The wire names of every field a rejection may name (the event's JSON fields).
    pub const FIELDS: [&'static str; 15] = [
        "event",
        "eventId",
        "type",
        "msn",
        "pspReference",
        "capturePspReference",
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
    /// Retained in disputes (`retained-disputed-capture`), in all.
    pub disputed: i64,
    /// Given back of what disputes retained (`returned-disputed-capture`), in all.
    pub returned: i64,
    /// The pspReference is a refund's own, linked to the capture it refunds: it is no payment
    /// and may not be used again.
    pub is_refund: bool,
}

impl PaymentTotals {
    /// Whether the ledger knows the pspReference as a capture or a refund's own.
    fn in_use(&self) -> bool {
        self.captured != 0 || self.is_refund
    }
}

/// A payout of the ledger (`payout-scheduled`), as a `payout-aborted` event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayoutFacts {
    /// The amount paid out (positive).
    pub amount: i64,
    /// Whether it has come back already.
    pub aborted: bool,
}

/// What the ledger already holds that an event refers to; read by the store before the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seen {
    /// The totals of the event's payment ([`PaymentEvent::payment_reference`]).
    pub payment: PaymentTotals,
    /// For a refund with its own pspReference ([`PaymentEvent::own_refund_reference`]): what
    /// the ledger knows of that reference (it must be new).
    pub own: PaymentTotals,
    /// For a `payout-aborted`: the payout of the ledger whose pspReference it carries, if any.
    pub payout: Option<PayoutFacts>,
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
/// currency, time, amount and its sign, account, kind for the unit, payer, and that what it
/// reverses exists on the ledger ([`check_reversal`]; `seen` is what the ledger held before).
pub fn check_event(
    ledger: &Ledger,
    unit: &SalesUnit,
    ev: &PaymentEvent,
    seen: &Seen,
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
    check_reversal(ev, seen)
}

/// Money that moves back must have something to move back, on this ledger:
///
/// - a refund refunds a capture (its own pspReference's, or the one `capturePspReference`
///   names, in which case its own pspReference must be new on the ledger), never more than is
///   left of the captures;
/// - a dispute retains from a capture; a returned dispute gives back no more than its
///   pspReference's disputes still retain (retained minus returned);
/// - a `payout-aborted` brings back a payout of the ledger (pspReference
///   `<ledgerId>-<payoutNumber>`) whole and once;
/// - a capture may not reuse a refund's own pspReference, and no sum leaves 64 bits.
///
/// Sums are checked: an amount so large that a sum overflows is more than is left too.
pub fn check_reversal(ev: &PaymentEvent, seen: &Seen) -> Result<(), Rejection> {
    let totals = seen.payment;
    if ev.capture_psp_reference.is_some() && ev.kind != EventKind::Refund {
        return Err(Rejection::new(
            "capturePspReference",
            "only a refund names the capture it refunds",
        ));
    }
    // The field that names the payment: a refund's capturePspReference when it has one.
    let payment_field = if ev.capture_psp_reference.is_some() {
        "capturePspReference"
    } else {
        "pspReference"
    };
    match ev.kind {
        EventKind::Refund | EventKind::DisputeRetained if totals.captured == 0 => {
            Err(Rejection::new(
                payment_field,
                "no capture with this pspReference on the ledger",
            ))
        }
        EventKind::Refund if ev.own_refund_reference().is_some() && seen.own.in_use() => {
            Err(Rejection::new(
                "pspReference",
                "is already a capture's or a refund's pspReference on the ledger; a refund \
                 with its own pspReference needs a new one",
            ))
        }
        EventKind::Refund
            if totals
                .refunded
                .checked_add(ev.amount)
                .is_none_or(|refunded| refunded > totals.captured) =>
        {
            Err(Rejection::new(
                "amount",
                format!(
                    "refund of {} is more than what is left of the captures of this pspReference ({})",
                    ev.amount,
                    totals.captured.saturating_sub(totals.refunded)
                ),
            ))
        }
        EventKind::Capture if totals.is_refund => Err(Rejection::new(
            "pspReference",
            "is a refund's own pspReference on the ledger, not a new capture's",
        )),
        EventKind::Capture if totals.captured.checked_add(ev.amount).is_none() => {
            Err(Rejection::new(
                "amount",
                "would take the captures of this pspReference out of range",
            ))
        }
        EventKind::DisputeRetained if totals.disputed.checked_add(ev.amount).is_none() => {
            Err(Rejection::new(
                "amount",
                "would take the disputes of this pspReference out of range",
            ))
        }
        EventKind::DisputeReturned if totals.disputed == 0 => Err(Rejection::new(
            "pspReference",
            "no retained dispute with this pspReference on the ledger",
        )),
        EventKind::DisputeReturned
            if totals
                .returned
                .checked_add(ev.amount)
                .is_none_or(|returned| returned > totals.disputed) =>
        {
            Err(Rejection::new(
                "amount",
                format!(
                    "return of {} is more than the disputes of this pspReference still retain ({})",
                    ev.amount,
                    totals.disputed.saturating_sub(totals.returned)
                ),
            ))
        }
        EventKind::PayoutAborted => match seen.payout {
            None => Err(Rejection::new(
                "pspReference",
                "no payout with this pspReference on the ledger (a payout's is \
                 <ledgerId>-<payoutNumber>)",
            )),
            Some(p) if p.aborted => Err(Rejection::new(
                "pspReference",
                "this payout has been aborted already",
            )),
            // The whole amount, not at most it: a bank transfer fails or succeeds as a whole,
            // and a payout aborted once cannot come back again, so a part would strand the rest.
            Some(p) if p.amount != ev.amount => Err(Rejection::new(
                "amount",
                format!(
                    "must be the payout's amount ({}): a payout comes back whole",
                    p.amount
                ),
            )),
            Some(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Turns one event into entries on `ledger`, or says why not. `last_booked` is the latest date
/// booked on the ledger so far; `seen` is what the ledger held before this event (the caller
/// records [`seen_after`] once the entries are written).
pub fn plan_event(
    ledger: &Ledger,
    unit: &SalesUnit,
    ev: &PaymentEvent,
    last_booked: Option<LedgerDate>,
    seen: &Seen,
    now: Timestamp,
) -> Result<Vec<(Topic, NewEntry)>, Rejection> {
    check_event(ledger, unit, ev, seen, now)?;
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

/// What the ledger holds after `ev` was applied: its payment's totals, a refund's own
/// pspReference marked as taken, a payout marked as aborted. [`check_event`] has made sure the
/// sums fit; they saturate rather than wrap should they not.
pub fn seen_after(seen: &Seen, ev: &PaymentEvent) -> Seen {
    let t = seen.payment;
    let payment = match ev.kind {
        EventKind::Capture => PaymentTotals {
            captured: t.captured.saturating_add(ev.amount),
            ..t
        },
        EventKind::Refund => PaymentTotals {
            refunded: t.refunded.saturating_add(ev.amount),
            ..t
        },
        EventKind::DisputeRetained => PaymentTotals {
            disputed: t.disputed.saturating_add(ev.amount),
            ..t
        },
        EventKind::DisputeReturned => PaymentTotals {
            returned: t.returned.saturating_add(ev.amount),
            ..t
        },
        _ => t,
    };
    let own = match ev.own_refund_reference() {
        Some(_) => PaymentTotals {
            is_refund: true,
            ..seen.own
        },
        None => seen.own,
    };
    let payout = match ev.kind {
        EventKind::PayoutAborted => seen.payout.map(|p| PayoutFacts { aborted: true, ..p }),
        _ => seen.payout,
    };
    Seen {
        payment,
        own,
        payout,
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
    ledger
        .date_starts_at(next_date(date))
        .checked_sub(1.microsecond())
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

/// A payout's pspReference: `<ledgerId>-<payoutNumber>` (what a `payout-aborted` names).
pub fn payout_reference(ledger_id: &crate::ids::LedgerId, payout_number: i64) -> String {
    format!("{ledger_id}-{payout_number}")
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
                payout_reference(&ledger.ledger_id, n),
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

    fn event(kind: EventKind, psp: &str, amount: i64) -> PaymentEvent {
        PaymentEvent {
            event_id: "e".into(),
            kind,
            msn: crate::ids::Msn::parse("m", "123455").expect("msn"),
            psp_reference: psp.into(),
            capture_psp_reference: None,
            reference: String::new(),
            amount,
            currency: Currency::NOK,
            time: Timestamp::UNIX_EPOCH,
            topic: None,
            payer: None,
        }
    }

    fn totals(captured: i64, refunded: i64, disputed: i64, returned: i64) -> PaymentTotals {
        PaymentTotals {
            captured,
            refunded,
            disputed,
            returned,
            is_refund: false,
        }
    }

    fn paid(payment: PaymentTotals) -> Seen {
        Seen {
            payment,
            ..Seen::default()
        }
    }

    /// The field a rejection names, or `None` when the event passes.
    fn field(ev: &PaymentEvent, seen: Seen) -> Option<&'static str> {
        check_reversal(ev, &seen).err().map(|r| r.field)
    }

    #[test]
    fn a_returned_dispute_needs_a_retained_one_and_returns_no_more_than_it_still_retains() {
        let returned = |amount| event(EventKind::DisputeReturned, "p1", amount);
        // Nothing disputed: captured or not, there is nothing to give back (the attack).
        assert_eq!(field(&returned(500), Seen::default()), Some("pspReference"));
        assert_eq!(
            field(&returned(500), paid(totals(10_000, 0, 0, 0))),
            Some("pspReference")
        );
        // 3000 retained, 1000 returned already: 2000 may come back, not 2001.
        let seen = paid(totals(10_000, 0, 3_000, 1_000));
        assert_eq!(field(&returned(2_000), seen), None);
        assert_eq!(field(&returned(2_001), seen), Some("amount"));
        assert_eq!(field(&returned(i64::MAX), seen), Some("amount"));
        // All returned: nothing more.
        assert_eq!(
            field(&returned(1), paid(totals(10_000, 0, 3_000, 3_000))),
            Some("amount")
        );
        // What a return leaves for the next.
        let after = seen_after(&seen, &returned(2_000));
        assert_eq!(after.payment, totals(10_000, 0, 3_000, 3_000));
    }

    #[test]
    fn a_retained_dispute_is_counted_and_needs_a_capture() {
        let retained = event(EventKind::DisputeRetained, "p1", 3_000);
        assert_eq!(field(&retained, Seen::default()), Some("pspReference"));
        let seen = paid(totals(10_000, 0, 0, 0));
        assert_eq!(field(&retained, seen), None);
        assert_eq!(
            seen_after(&seen, &retained).payment,
            totals(10_000, 0, 3_000, 0)
        );
        assert_eq!(
            field(&retained, paid(totals(10_000, 0, i64::MAX - 10, 0))),
            Some("amount")
        );
    }

    #[test]
    fn a_payout_aborted_names_a_payout_of_the_ledger_comes_back_whole_and_once() {
        let aborted = |amount| event(EventKind::PayoutAborted, "12345-2000001", amount);
        let payout = |aborted| Seen {
            payout: Some(PayoutFacts {
                amount: 28_800,
                aborted,
            }),
            ..Seen::default()
        };
        // No payout (the attack), another amount, a second abort: refused.
        assert_eq!(
            field(&aborted(28_800), Seen::default()),
            Some("pspReference")
        );
        assert_eq!(field(&aborted(28_799), payout(false)), Some("amount"));
        assert_eq!(field(&aborted(28_801), payout(false)), Some("amount"));
        assert_eq!(field(&aborted(28_800), payout(true)), Some("pspReference"));
        // The payout's own amount, once.
        assert_eq!(field(&aborted(28_800), payout(false)), None);
        assert_eq!(seen_after(&payout(false), &aborted(28_800)), payout(true));
    }

    #[test]
    fn a_refund_with_its_own_psp_reference_refunds_the_capture_it_names() {
        let refund = |own: &str, capture: &str, amount| PaymentEvent {
            capture_psp_reference: Some(capture.into()),
            ..event(EventKind::Refund, own, amount)
        };
        let captured = paid(totals(10_000, 4_000, 0, 0));
        // The capture's totals limit it; its own reference must be new.
        assert_eq!(field(&refund("r1", "p1", 6_000), captured), None);
        assert_eq!(field(&refund("r1", "p1", 6_001), captured), Some("amount"));
        assert_eq!(
            field(&refund("r1", "nope", 1), Seen::default()),
            Some("capturePspReference")
        );
        for own in [
            totals(500, 0, 0, 0),
            PaymentTotals {
                is_refund: true,
                ..PaymentTotals::default()
            },
        ] {
            let seen = Seen { own, ..captured };
            assert_eq!(field(&refund("r1", "p1", 1), seen), Some("pspReference"));
        }
        // Applied: the capture's refunds grow and the own reference is taken.
        let after = seen_after(&captured, &refund("r1", "p1", 6_000));
        assert_eq!(after.payment, totals(10_000, 10_000, 0, 0));
        assert!(after.own.is_refund);
        // Naming its own pspReference as the capture is a refund as before.
        let same = refund("p1", "p1", 1);
        assert_eq!(same.own_refund_reference(), None);
        assert_eq!(same.payment_reference(), "p1");
        assert_eq!(field(&same, captured), None);
        assert!(!seen_after(&captured, &same).own.is_refund);
    }

    #[test]
    fn only_refunds_name_a_capture_and_captures_never_reuse_a_refunds_reference() {
        for kind in EventKind::ALL {
            if kind == EventKind::Refund {
                continue;
            }
            let ev = PaymentEvent {
                capture_psp_reference: Some("p1".into()),
                ..event(kind, "p2", 100)
            };
            assert_eq!(
                field(&ev, paid(totals(10_000, 0, 5_000, 0))),
                Some("capturePspReference"),
                "{kind:?}"
            );
        }
        let refund_ref = paid(PaymentTotals {
            is_refund: true,
            ..PaymentTotals::default()
        });
        assert_eq!(
            field(&event(EventKind::Capture, "r1", 100), refund_ref),
            Some("pspReference")
        );
        // A refund or a dispute of a refund's own reference finds no capture there.
        for kind in [
            EventKind::Refund,
            EventKind::DisputeRetained,
            EventKind::DisputeReturned,
        ] {
            assert_eq!(
                field(&event(kind, "r1", 100), refund_ref),
                Some("pspReference")
            );
        }
    }

    #[test]
    fn check_event_applies_the_reversal_rules() {
        use crate::world::{SalesUnit, SalesUnitKind};
        let l = ledger(PayoutFrequency::Daily, SettlementMode::Net, 0, 0);
        let unit = SalesUnit {
            msn: crate::ids::Msn::parse("m", "123455").expect("msn"),
            merchant_id: 1,
            name: "U".into(),
            kind: SalesUnitKind::Api,
            country: Country::NO,
            handle: RecipientHandle::parse("h", "api:123455").expect("handle"),
            created_at: Timestamp::UNIX_EPOCH,
        };
        let now: Timestamp = "2024-06-12T10:00:00Z".parse().expect("ts");
        let ev = event(EventKind::DisputeReturned, "p1", 500);
        let err = check_event(&l, &unit, &ev, &Seen::default(), now).expect_err("refused");
        assert_eq!(err.field, "pspReference");
        let err = plan_event(&l, &unit, &ev, None, &Seen::default(), now).expect_err("refused");
        assert_eq!(err.field, "pspReference");
        let ok = paid(totals(1_000, 0, 500, 0));
        let planned = plan_event(&l, &unit, &ev, None, &ok, now).expect("planned");
        assert_eq!(planned[0].1.entry_type, "returned-disputed-capture");
        assert_eq!(planned[0].1.amount, 500);
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
