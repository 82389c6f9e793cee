//! The invariants of a ledger's entries, checked after the fact (`ledgerport verify`).
//!
//! [`check_ledger`] reads one ledger's two topics in feed order and names every entry that breaks a
//! rule. It is pure: the command line reads the entries, this decides. Each rule has a stable short
//! name ([`RULES`]) that reports and scripts can match on.

use crate::engine::capture_fee;
use crate::entry::Entry;
use crate::ids::{LedgerDate, LedgerId, Topic};
use crate::world::Ledger;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

/// Balances chain on each topic: seq runs 1, 2, 3… without gaps, the first `balanceBefore` is 0,
/// each `balanceBefore` is the previous `balanceAfter`, and `balanceAfter = balanceBefore + amount`.
pub const CHAIN: &str = "chain";
/// Every `fees-retained` of −X on funds has exactly one `fees-retained` of +X on fees with the same
/// pspReference and ledgerDate, and the other way round.
pub const FEES_RETAINED_MIRROR: &str = "fees-retained-mirror";
/// A `payout-scheduled` is the last funds entry of its ledgerDate (no later funds entry has the same
/// or an earlier date) and leaves a balance of 0.
pub const PAYOUT_LAST: &str = "payout-last";
/// Once a date is closed (a closing entry on date E at seq s), no later entry of the same topic has
/// a ledgerDate on or before E. Closing entries: `fees-retained` and `payout-scheduled` on funds,
/// `fees-retained` and `fees-invoiced` on fees.
pub const CLOSED_DATE: &str = "closed-date";
/// Every capture whose fee under the ledger's fee plan is not zero has a `capture-fee` of minus that
/// fee with the same pspReference and reference (one per capture), and every `capture-fee` belongs
/// to such a capture.
pub const CAPTURE_FEE: &str = "capture-fee";
/// Entry types (API.md, Entries) carry the sign of their effect on the account; `correction` and
/// `credit-note` may have either sign but not zero. Unknown types are not checked.
pub const AMOUNT_SIGN: &str = "amount-sign";

/// Along the funds topic, the refunds of a pspReference never add up to more than its captures
/// so far. A refund booked with its own pspReference counts against the capture it names (the
/// store's record of such refunds, `refunded_captures`).
pub const REFUND_LIMIT: &str = "refund-limit";

/// Feed order and date order are one sequence: along each topic, in seq order, the ledgerDate
/// never goes back.
pub const DATE_ORDER: &str = "date-order";

/// Every date the engine has closed, from the ledger's first date through `closed_through`, has
/// a completeness proof on each topic ([`crate::proof`]) that its entries still give (count, sum,
/// balances, digest, chain digest), each chained to the date before; no other date has one. And
/// the digest state the store carries for each date ([`crate::proof::DateDigestState`], what a
/// date's proof is made from when it closes) is what the date's entries give.
pub const PROOF: &str = "proof";

/// Every rule, in the order reports list a single entry's violations.
pub const RULES: [&str; 9] = [
    CHAIN,
    DATE_ORDER,
    AMOUNT_SIGN,
    CLOSED_DATE,
    PAYOUT_LAST,
    FEES_RETAINED_MIRROR,
    CAPTURE_FEE,
    REFUND_LIMIT,
    PROOF,
];

/// Checks the [`PROOF`] rule on one topic: `entries` is the whole topic in feed order, `proofs`
/// the topic's stored proofs in date order. Each violation names the date in its detail.
pub fn check_proofs(
    ledger: &Ledger,
    topic: Topic,
    entries: &[Entry],
    proofs: &[crate::proof::DateProof],
) -> Vec<Violation> {
    use crate::proof::{check_date, check_link};
    let violation = |date: LedgerDate, what: String| Violation {
        ledger_id: ledger.ledger_id.clone(),
        topic: Some(topic),
        seq: None,
        rule: PROOF,
        detail: format!("ledgerDate {date}: {what}"),
    };
    let mut out = Vec::new();
    // The dates the engine closed: after the day before the ledger's first through
    // `closed_through` (none while it has closed nothing).
    let before_first =
        crate::changes::first_closed_date(&ledger.time_zone, ledger.cutoff, ledger.created_at);
    let mut by_date: HashMap<LedgerDate, Vec<&Entry>> = HashMap::new();
    for e in entries {
        by_date.entry(e.ledger_date).or_default().push(e);
    }
    let mut stored = proofs.iter().peekable();
    let mut previous: Option<&crate::proof::DateProof> = None;
    let mut date = before_first;
    while date < ledger.closed_through {
        let Some(next) = date.date().tomorrow().ok().map(LedgerDate::from_date) else {
            break;
        };
        date = next;
        while let Some(p) = stored.next_if(|p| p.ledger_date < date) {
            out.push(violation(
                p.ledger_date,
                "a proof of a date the engine has not closed".into(),
            ));
        }
        let Some(proof) = stored.next_if(|p| p.ledger_date == date) else {
            out.push(violation(date, "closed, but has no proof".into()));
            previous = None;
            continue;
        };
        let found = by_date.remove(&date).unwrap_or_default();
        for m in check_date(proof, found.into_iter().map(crate::proof::ProofEntry::from)) {
            out.push(violation(date, m.to_string()));
        }
        match previous {
            Some(p) => {
                for m in check_link(p, proof) {
                    out.push(violation(date, m.to_string()));
                }
            }
            None if date > next_day(before_first) => {}
            None => {
                if let Some(d) = proof.previous_chain_digest {
                    out.push(violation(
                        date,
                        format!("the first proof names a previous chain digest ({d})"),
                    ));
                }
            }
        }
        previous = Some(proof);
    }
    for p in stored {
        out.push(violation(
            p.ledger_date,
            "a proof of a date the engine has not closed".into(),
        ));
    }
    out
}

/// Checks the digest states a store keeps for one topic (the [`PROOF`] rule): `entries` is the
/// whole topic in feed order, `states` the stored states by date. Every date the engine has not
/// closed (open dates, and dates before the ledger's first) with entries has a state equal to
/// what they give; a stored state of such a date without entries is empty. A closed date's state
/// is its proof, which [`check_proofs`] checks field by field.
pub fn check_date_states(
    ledger: &Ledger,
    topic: Topic,
    entries: &[Entry],
    states: &[(LedgerDate, crate::proof::DateDigestState)],
) -> Vec<Violation> {
    use crate::proof::{DateDigest, DateDigestState, ProofEntry};
    let before_first =
        crate::changes::first_closed_date(&ledger.time_zone, ledger.cutoff, ledger.created_at);
    let open = |d: &LedgerDate| *d <= before_first || *d > ledger.closed_through;
    let states: Vec<(LedgerDate, DateDigestState)> =
        states.iter().filter(|(d, _)| open(d)).copied().collect();
    let mut found: HashMap<LedgerDate, DateDigest> = HashMap::new();
    for e in entries.iter().filter(|e| open(&e.ledger_date)) {
        found
            .entry(e.ledger_date)
            .or_default()
            .add(&ProofEntry::from(e));
    }
    let mut found: Vec<(LedgerDate, DateDigestState)> =
        found.into_iter().map(|(d, g)| (d, g.state())).collect();
    found.sort_by_key(|(d, _)| *d);
    let stored: HashMap<LedgerDate, DateDigestState> = states.iter().copied().collect();
    let mut out = Vec::new();
    let mut violation = |date: LedgerDate, what: String| {
        out.push(Violation {
            ledger_id: ledger.ledger_id.clone(),
            topic: Some(topic),
            seq: None,
            rule: PROOF,
            detail: format!("ledgerDate {date}: {what}"),
        })
    };
    let show =
        |s: &DateDigestState| format!("{} entries, sum {}, digest {}", s.count, s.sum, s.digest);
    for (date, want) in &found {
        match stored.get(date) {
            None => violation(*date, "has entries but no stored digest state".into()),
            Some(got) if got != want => violation(
                *date,
                format!(
                    "the stored digest state says {}, the entries give {}",
                    show(got),
                    show(want)
                ),
            ),
            Some(_) => {}
        }
    }
    let mut extra: Vec<&(LedgerDate, DateDigestState)> = states
        .iter()
        .filter(|(d, s)| {
            *s != DateDigestState::EMPTY && found.binary_search_by_key(d, |(f, _)| *f).is_err()
        })
        .collect();
    extra.sort_by_key(|(d, _)| *d);
    for (date, s) in extra {
        violation(
            *date,
            format!(
                "the stored digest state says {}, the date has no entries",
                show(s)
            ),
        );
    }
    out
}

fn next_day(d: LedgerDate) -> LedgerDate {
    d.date().tomorrow().map(LedgerDate::from_date).unwrap_or(d)
}

/// One broken invariant: where (ledger, topic, seq) and which rule, with what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub ledger_id: LedgerId,
    /// The topic of the entry at fault; `None` for a fault of the ledger as a whole.
    pub topic: Option<Topic>,
    /// The entry at fault; `None` for a fault of a whole topic.
    pub seq: Option<i64>,
    /// One of [`RULES`].
    pub rule: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    /// `ledger 12345 funds seq 7: chain: balanceAfter 10001 is not balanceBefore 0 + amount 10000`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ledger {}", self.ledger_id)?;
        if let Some(t) = self.topic {
            write!(f, " {t}")?;
        }
        if let Some(s) = self.seq {
            write!(f, " seq {s}")?;
        }
        write!(f, ": {}: {}", self.rule, self.detail)
    }
}

/// Checks every rule of [`RULES`] on one ledger. `funds` and `fees` are the whole topics in feed
/// (seq) order. Violations come sorted by topic (funds first), seq and rule.
///
/// `refunded_captures` links each refund booked with its own pspReference to the capture it
/// refunds (refund's pspReference, capture's), which the entries themselves do not show.
pub fn check_ledger(
    ledger: &Ledger,
    funds: &[Entry],
    fees: &[Entry],
    refunded_captures: &[(String, String)],
) -> Vec<Violation> {
    let mut r = Report {
        ledger_id: &ledger.ledger_id,
        out: Vec::new(),
    };
    for (topic, entries) in [(Topic::Funds, funds), (Topic::Fees, fees)] {
        check_chain(&mut r, topic, entries);
        check_date_order(&mut r, topic, entries);
        check_amount_signs(&mut r, topic, entries);
        check_closed_dates(&mut r, topic, entries);
    }
    check_payouts_last(&mut r, funds);
    check_fees_retained_mirror(&mut r, funds, fees);
    check_capture_fees(&mut r, ledger, funds, fees);
    check_refund_limits(&mut r, funds, refunded_captures);
    let rank = |rule: &str| RULES.iter().position(|r| *r == rule).unwrap_or(RULES.len());
    r.out
        .sort_by_key(|v| (v.topic.map(Topic::code), v.seq, rank(v.rule)));
    r.out
}

struct Report<'a> {
    ledger_id: &'a LedgerId,
    out: Vec<Violation>,
}

impl Report<'_> {
    fn add(&mut self, topic: Topic, e: &Entry, rule: &'static str, detail: String) {
        self.out.push(Violation {
            ledger_id: self.ledger_id.clone(),
            topic: Some(topic),
            seq: Some(e.seq),
            rule,
            detail,
        });
    }
}

fn check_date_order(r: &mut Report<'_>, topic: Topic, entries: &[Entry]) {
    for pair in entries.windows(2) {
        let (p, e) = (&pair[0], &pair[1]);
        if e.ledger_date < p.ledger_date {
            let detail = format!(
                "ledgerDate {} comes after {} of seq {}: the feed order is not the date order",
                e.ledger_date, p.ledger_date, p.seq
            );
            r.add(topic, e, DATE_ORDER, detail);
        }
    }
}

fn check_chain(r: &mut Report<'_>, topic: Topic, entries: &[Entry]) {
    let mut prev: Option<&Entry> = None;
    for e in entries {
        let want_seq = prev.map_or(1, |p| p.seq.saturating_add(1));
        if e.seq != want_seq {
            let detail = match prev {
                None => format!("the first entry has seq {}, not 1", e.seq),
                Some(p) => format!("seq {} follows seq {}, not {want_seq}", e.seq, p.seq),
            };
            r.add(topic, e, CHAIN, detail);
        }
        let want_before = prev.map_or(0, |p| p.balance_after);
        if e.balance_before != want_before {
            let detail = match prev {
                None => format!(
                    "balanceBefore {} of the first entry is not 0",
                    e.balance_before
                ),
                Some(p) => format!(
                    "balanceBefore {} is not balanceAfter {} of seq {}",
                    e.balance_before, p.balance_after, p.seq
                ),
            };
            r.add(topic, e, CHAIN, detail);
        }
        if e.balance_before.checked_add(e.amount) != Some(e.balance_after) {
            r.add(
                topic,
                e,
                CHAIN,
                format!(
                    "balanceAfter {} is not balanceBefore {} + amount {}",
                    e.balance_after, e.balance_before, e.amount
                ),
            );
        }
        prev = Some(e);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Positive,
    Negative,
    NonZero,
}

/// The sign API.md's table of entry types gives an entry type on a topic; `None` for types it does not know.
fn expected_sign(topic: Topic, entry_type: &str) -> Option<Sign> {
    use Sign::*;
    Some(match entry_type {
        "capture" | "top-up" | "returned-disputed-capture" | "payout-aborted" | "fees-invoiced" => {
            Positive
        }
        "refund"
        | "capture-fee"
        | "payout-scheduled"
        | "service-fee"
        | "retained-disputed-capture" => Negative,
        "fees-retained" if topic == Topic::Funds => Negative,
        "fees-retained" => Positive,
        "correction" | "credit-note" => NonZero,
        _ => return None,
    })
}

fn check_amount_signs(r: &mut Report<'_>, topic: Topic, entries: &[Entry]) {
    for e in entries {
        let Some(sign) = expected_sign(topic, &e.entry_type) else {
            continue;
        };
        let (ok, want) = match sign {
            Sign::Positive => (e.amount > 0, "positive"),
            Sign::Negative => (e.amount < 0, "negative"),
            Sign::NonZero => (e.amount != 0, "non-zero"),
        };
        if !ok {
            r.add(
                topic,
                e,
                AMOUNT_SIGN,
                format!(
                    "{} on {topic} has amount {}; it must be {want}",
                    e.entry_type, e.amount
                ),
            );
        }
    }
}

/// Entries that close their date on a topic.
fn is_closing(topic: Topic, entry_type: &str) -> bool {
    match topic {
        Topic::Funds => matches!(entry_type, "fees-retained" | "payout-scheduled"),
        Topic::Fees => matches!(entry_type, "fees-retained" | "fees-invoiced"),
    }
}

fn check_closed_dates(r: &mut Report<'_>, topic: Topic, entries: &[Entry]) {
    // The latest date closed so far on this topic and the first closing entry of that date.
    let mut closed: Option<(LedgerDate, &Entry)> = None;
    for e in entries {
        let closing = is_closing(topic, &e.entry_type);
        if let Some((date, by)) = closed {
            // The closing entries of one date follow each other; anything else must be later.
            let allowed = if closing {
                e.ledger_date >= date
            } else {
                e.ledger_date > date
            };
            if !allowed {
                r.add(
                    topic,
                    e,
                    CLOSED_DATE,
                    format!(
                        "{} on {} comes after {date} was closed by {} at seq {}",
                        e.entry_type, e.ledger_date, by.entry_type, by.seq
                    ),
                );
            }
        }
        if closing && closed.is_none_or(|(date, _)| e.ledger_date > date) {
            closed = Some((e.ledger_date, e));
        }
    }
}

fn check_payouts_last(r: &mut Report<'_>, funds: &[Entry]) {
    // earliest_after[i]: the earliest ledgerDate among the entries after index i.
    let mut earliest_after: Vec<Option<LedgerDate>> = vec![None; funds.len()];
    let mut earliest: Option<LedgerDate> = None;
    for (i, e) in funds.iter().enumerate().rev() {
        earliest_after[i] = earliest;
        earliest = Some(earliest.map_or(e.ledger_date, |d| d.min(e.ledger_date)));
    }
    for (i, e) in funds.iter().enumerate() {
        if e.entry_type != "payout-scheduled" {
            continue;
        }
        if e.balance_after != 0 {
            r.add(
                Topic::Funds,
                e,
                PAYOUT_LAST,
                format!(
                    "payout-scheduled of {} on {} leaves a balance of {}, not 0",
                    e.amount, e.ledger_date, e.balance_after
                ),
            );
        }
        if earliest_after[i].is_some_and(|d| d <= e.ledger_date)
            && let Some(later) = funds[i + 1..]
                .iter()
                .find(|l| l.ledger_date <= e.ledger_date)
        {
            r.add(
                Topic::Funds,
                e,
                PAYOUT_LAST,
                format!(
                    "payout-scheduled on {} is not the last entry of its date: seq {} ({} on {}) follows",
                    e.ledger_date, later.seq, later.entry_type, later.ledger_date
                ),
            );
        }
    }
}

/// Matches `wanted` against `available` as multisets: each key of `wanted` takes one seq of
/// `available` with that key, oldest first. Returns the entries of `wanted` left without a partner
/// and the seqs of `available` that nobody took.
fn match_multiset<'a, K: std::hash::Hash + Eq>(
    wanted: impl Iterator<Item = (K, &'a Entry)>,
    available: impl Iterator<Item = (K, &'a Entry)>,
) -> (Vec<&'a Entry>, HashSet<i64>) {
    let mut pool: HashMap<K, VecDeque<i64>> = HashMap::new();
    let mut untaken = HashSet::new();
    for (k, e) in available {
        pool.entry(k).or_default().push_back(e.seq);
        untaken.insert(e.seq);
    }
    let mut unmatched = Vec::new();
    for (k, e) in wanted {
        match pool.get_mut(&k).and_then(VecDeque::pop_front) {
            Some(seq) => {
                untaken.remove(&seq);
            }
            None => unmatched.push(e),
        }
    }
    (unmatched, untaken)
}

/// The `fees-retained` entries of a topic keyed by (pspReference, ledgerDate, amount × `sign`).
fn retained(
    entries: &[Entry],
    sign: i64,
) -> impl Iterator<Item = ((&str, LedgerDate, i64), &Entry)> {
    entries
        .iter()
        .filter(|e| e.entry_type == "fees-retained")
        .map(move |e| {
            (
                (
                    e.psp_reference.as_str(),
                    e.ledger_date,
                    e.amount.saturating_mul(sign),
                ),
                e,
            )
        })
}

fn check_fees_retained_mirror(r: &mut Report<'_>, funds: &[Entry], fees: &[Entry]) {
    // Keyed by the fees side's amount: +X on fees mirrors −X on funds.
    let (unmatched, untaken) = match_multiset(retained(funds, -1), retained(fees, 1));
    for e in unmatched {
        r.add(
            Topic::Funds,
            e,
            FEES_RETAINED_MIRROR,
            format!(
                "fees-retained of {} ({}, {}) has no fees-retained of {} on fees",
                e.amount,
                e.psp_reference,
                e.ledger_date,
                e.amount.saturating_neg()
            ),
        );
    }
    for e in fees
        .iter()
        .filter(|e| e.entry_type == "fees-retained" && untaken.contains(&e.seq))
    {
        r.add(
            Topic::Fees,
            e,
            FEES_RETAINED_MIRROR,
            format!(
                "fees-retained of {} ({}, {}) has no fees-retained of {} on funds",
                e.amount,
                e.psp_reference,
                e.ledger_date,
                e.amount.saturating_neg()
            ),
        );
    }
}

/// What a capture and its fee share: pspReference, reference and the fee's amount.
fn fee_key(e: &Entry, amount: i64) -> (&str, &str, i64) {
    (e.psp_reference.as_str(), e.reference.as_str(), amount)
}

fn check_refund_limits(
    r: &mut Report<'_>,
    funds: &[Entry],
    refunded_captures: &[(String, String)],
) {
    let capture_of: HashMap<&str, &str> = refunded_captures
        .iter()
        .map(|(refund, capture)| (refund.as_str(), capture.as_str()))
        .collect();
    // Sums in i128: amounts that overflow i64 together are exactly what this rule is for.
    let mut totals: HashMap<&str, (i128, i128)> = HashMap::new();
    for e in funds {
        let psp = e.psp_reference.as_str();
        match e.entry_type.as_str() {
            "capture" => totals.entry(psp).or_default().0 += i128::from(e.amount),
            "refund" => {
                let payment = capture_of.get(psp).copied().unwrap_or(psp);
                let (captured, refunded) = totals.entry(payment).or_default();
                *refunded += -i128::from(e.amount);
                if *refunded > *captured {
                    let of = if payment == psp {
                        String::new()
                    } else {
                        format!(" (refunds of capture {payment})")
                    };
                    let detail = format!(
                        "refunds of pspReference {}{of} add up to {refunded}, more than its captures ({captured})",
                        e.psp_reference
                    );
                    r.add(Topic::Funds, e, REFUND_LIMIT, detail);
                }
            }
            _ => {}
        }
    }
}

fn check_capture_fees(r: &mut Report<'_>, ledger: &Ledger, funds: &[Entry], fees: &[Entry]) {
    let captures = funds
        .iter()
        .filter(|e| e.entry_type == "capture")
        .map(|e| (e, capture_fee(ledger, e.amount)))
        .filter(|(_, fee)| *fee != 0)
        .map(|(e, fee)| (fee_key(e, fee.saturating_neg()), e));
    let capture_fees = fees
        .iter()
        .filter(|e| e.entry_type == "capture-fee")
        .map(|e| (fee_key(e, e.amount), e));
    let (unmatched, untaken) = match_multiset(captures, capture_fees);
    for e in unmatched {
        r.add(
            Topic::Funds,
            e,
            CAPTURE_FEE,
            format!(
                "capture of {} ({}, reference {:?}) has no capture-fee of {} on fees",
                e.amount,
                e.psp_reference,
                e.reference,
                capture_fee(ledger, e.amount).saturating_neg()
            ),
        );
    }
    for e in fees
        .iter()
        .filter(|e| e.entry_type == "capture-fee" && untaken.contains(&e.seq))
    {
        r.add(
            Topic::Fees,
            e,
            CAPTURE_FEE,
            format!(
                "capture-fee of {} ({}, reference {:?}) belongs to no capture with that fee",
                e.amount, e.psp_reference, e.reference
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{
        EventKind, FIRST_PAYOUT_NUMBER, PaymentEvent, PeriodFacts, Seen, due_period_ends,
        plan_close, plan_event, seen_after,
    };
    use crate::entry::NewEntry;
    use crate::ids::{BankAccount, Country, Currency, Msn, RecipientHandle};
    use crate::world::{
        FeePlan, PayoutFrequency, SalesUnit, SalesUnitKind, SettlementMode, parse_cutoff,
    };
    use jiff::Timestamp;

    fn d(s: &str) -> LedgerDate {
        LedgerDate::parse("d", s).expect("date")
    }

    /// Ledger 12345 of the worked example: daily, net, a fixed fee of 400 per capture.
    fn ledger(mode: SettlementMode) -> Ledger {
        Ledger {
            ledger_id: LedgerId::parse("l", "12345").expect("id"),
            currency: Currency::NOK,
            payout_account: BankAccount::parse("a", "BBAN:NO", "86011117947").expect("acct"),
            owner_merchant_id: 1,
            time_zone: "Europe/Oslo".into(),
            cutoff: parse_cutoff("c", "00:00").expect("cutoff"),
            payout_frequency: PayoutFrequency::Daily,
            settlement_mode: mode,
            fee_plan: FeePlan {
                basis_points: 0,
                fixed_minor: 400,
            },
            page_size: 1000,
            created_at: Timestamp::UNIX_EPOCH,
            closed_through: d("2022-09-30"),
            next_payout_number: FIRST_PAYOUT_NUMBER,
        }
    }

    /// Two topics written the way the store writes them: next seq, balances carried.
    #[derive(Default, Clone)]
    struct Book {
        funds: Vec<Entry>,
        fees: Vec<Entry>,
    }

    impl Book {
        fn topic(&mut self, topic: Topic) -> &mut Vec<Entry> {
            match topic {
                Topic::Funds => &mut self.funds,
                Topic::Fees => &mut self.fees,
            }
        }

        fn push(&mut self, topic: Topic, date: &str, entry_type: &str, psp: &str, amount: i64) {
            let t = self.topic(topic);
            let before = t.last().map_or(0, |e| e.balance_after);
            let seq = t.len() as i64 + 1;
            t.push(Entry {
                seq,
                psp_reference: psp.into(),
                time: format!("{date}T12:00:00.000000Z"),
                ledger_date: d(date),
                entry_type: entry_type.into(),
                reference: format!("ref-{psp}"),
                currency: Currency::NOK,
                amount,
                balance_before: before,
                balance_after: before + amount,
                recipient_handle: String::new(),
                payer: None,
            });
        }

        fn capture(&mut self, date: &str, psp: &str, amount: i64) {
            self.push(Topic::Funds, date, "capture", psp, amount);
            self.push(Topic::Fees, date, "capture-fee", psp, -400);
        }

        /// Net closing of one date: fees retained on both topics, the rest paid out.
        fn close(&mut self, date: &str, retained: i64, payout_number: i64) {
            let period = format!("12345-{date}");
            self.push(Topic::Funds, date, "fees-retained", &period, -retained);
            self.push(Topic::Fees, date, "fees-retained", &period, retained);
            let balance = self.funds.last().map_or(0, |e| e.balance_after);
            self.push(
                Topic::Funds,
                date,
                "payout-scheduled",
                &format!("12345-{payout_number}"),
                -balance,
            );
        }

        /// Rewrites every balance from the amounts, as if the store had written the entries so.
        fn rechain(mut self) -> Self {
            for t in [&mut self.funds, &mut self.fees] {
                let mut balance = 0;
                for (i, e) in t.iter_mut().enumerate() {
                    e.seq = i as i64 + 1;
                    e.balance_before = balance;
                    balance += e.amount;
                    e.balance_after = balance;
                }
            }
            self
        }

        /// As [`Book::rechain`], with balances wrapping as an unchecked store's would.
        fn rechain_wrapping(mut self) -> Self {
            for t in [&mut self.funds, &mut self.fees] {
                let mut balance: i64 = 0;
                for (i, e) in t.iter_mut().enumerate() {
                    e.seq = i as i64 + 1;
                    e.balance_before = balance;
                    balance = balance.wrapping_add(e.amount);
                    e.balance_after = balance;
                }
            }
            self
        }

        fn entry(&mut self, topic: Topic, seq: i64) -> &mut Entry {
            let t = self.topic(topic);
            let i = t
                .iter()
                .position(|e| e.seq == seq)
                .expect("an entry with that seq");
            &mut t[i]
        }
    }

    /// The worked example on 2022-10-01, then a second day with a top-up, a service fee and a
    /// correction; both dates closed.
    fn good_book() -> Book {
        let mut b = Book::default();
        b.capture("2022-10-01", "3343121302", 10_000);
        b.capture("2022-10-01", "3343121303", 10_000);
        b.capture("2022-10-01", "3343121304", 20_000);
        b.push(Topic::Funds, "2022-10-01", "refund", "3343121302", -10_000);
        b.close("2022-10-01", 1200, 2_000_001);
        b.capture("2022-10-02", "3343121305", 5_000);
        b.push(
            Topic::Fees,
            "2022-10-02",
            "service-fee",
            "sub-2022-10",
            -9_900,
        );
        b.push(Topic::Funds, "2022-10-02", "correction", "c-1", -100);
        b.push(Topic::Fees, "2022-10-02", "credit-note", "cn-1", 900);
        b.close("2022-10-02", 400, 2_000_002);
        b.capture("2022-10-03", "3343121306", 7_000);
        b
    }

    fn check(b: &Book) -> Vec<Violation> {
        check_ledger(&ledger(SettlementMode::Net), &b.funds, &b.fees, &[])
    }

    /// (topic, seq, rule) of each violation.
    fn found(v: &[Violation]) -> Vec<(Option<Topic>, Option<i64>, &'static str)> {
        v.iter().map(|v| (v.topic, v.seq, v.rule)).collect()
    }

    #[test]
    fn a_correct_ledger_has_no_violations() {
        let b = good_book();

        let v = check(&b);

        assert_eq!(v, vec![]);
        // The example's numbers, so the fixture is the worked example itself.
        assert_eq!(b.funds[4].entry_type, "fees-retained");
        assert_eq!(b.funds[4].balance_after, 28_800);
        assert_eq!(b.funds[5].amount, -28_800);
        assert_eq!(b.fees[3].balance_after, 0);
    }

    #[test]
    fn refunds_beyond_the_captures_of_a_payment_break_the_refund_limit() {
        let mut b = good_book();
        // 7000 captured on 2022-10-03 (funds seq 11): refunds of 5000 and then 2001.
        b.push(Topic::Funds, "2022-10-03", "refund", "3343121306", -5_000);
        b.push(Topic::Funds, "2022-10-03", "refund", "3343121306", -2_001);

        let v = check(&b);

        assert_eq!(
            found(&v),
            vec![(Some(Topic::Funds), Some(13), REFUND_LIMIT)]
        );
    }

    #[test]
    fn a_refund_with_its_own_psp_reference_counts_against_the_capture_it_names() {
        let mut b = good_book();
        // 7000 captured on 2022-10-03 (funds seq 11): refunds r-1 of 5000 and r-2 of 2001.
        b.push(Topic::Funds, "2022-10-03", "refund", "r-1", -5_000);
        b.push(Topic::Funds, "2022-10-03", "refund", "r-2", -2_001);
        let links = [
            ("r-1".to_owned(), "3343121306".to_owned()),
            ("r-2".to_owned(), "3343121306".to_owned()),
        ];

        let v = check_ledger(&ledger(SettlementMode::Net), &b.funds, &b.fees, &links);

        assert_eq!(
            found(&v),
            vec![(Some(Topic::Funds), Some(13), REFUND_LIMIT)]
        );
        assert!(
            v[0].detail.contains("capture 3343121306"),
            "{}",
            v[0].detail
        );
        // Within the capture: no violation; without the links, refunds of nothing.
        b.funds.pop();
        let ok = check_ledger(&ledger(SettlementMode::Net), &b.funds, &b.fees, &links[..1]);
        assert_eq!(ok, vec![]);
        assert_eq!(
            found(&check(&b)),
            vec![(Some(Topic::Funds), Some(12), REFUND_LIMIT)]
        );
    }

    #[test]
    fn a_refund_that_wrapped_a_stored_total_negative_breaks_the_refund_limit() {
        let mut b = good_book();
        // The attack of an unchecked sum: capture 100, refund 50, refund i64::MAX - 9.
        b.capture("2022-10-03", "p-attack", 100);
        b.push(Topic::Funds, "2022-10-03", "refund", "p-attack", -50);
        b.funds.push(Entry {
            amount: -(i64::MAX - 9),
            ..b.funds[b.funds.len() - 1].clone()
        });
        let b = b.rechain_wrapping();

        let v = check(&b);

        assert!(
            found(&v).contains(&(Some(Topic::Funds), Some(14), REFUND_LIMIT)),
            "{v:?}"
        );
    }

    #[test]
    fn an_entry_booked_on_an_earlier_date_than_the_one_before_breaks_the_date_order() {
        let mut b = good_book();
        // A capture after 2022-10-03's (funds seq 12, fees seq 10) that claims 2022-10-02, which
        // its payout (funds seq 10) had closed.
        b.capture("2022-10-02", "3343121307", 1_000);

        let v = check(&b);

        assert_eq!(
            found(&v),
            vec![
                (Some(Topic::Funds), Some(10), PAYOUT_LAST),
                (Some(Topic::Funds), Some(12), DATE_ORDER),
                (Some(Topic::Funds), Some(12), CLOSED_DATE),
                (Some(Topic::Fees), Some(10), DATE_ORDER),
                (Some(Topic::Fees), Some(10), CLOSED_DATE),
            ]
        );
        assert_eq!(
            v[1].to_string(),
            "ledger 12345 funds seq 12: date-order: ledgerDate 2022-10-02 comes after 2022-10-03 of seq 11: \
             the feed order is not the date order"
        );
    }

    #[test]
    fn a_ledger_without_entries_has_no_violations() {
        assert_eq!(check(&Book::default()), vec![]);
    }

    #[test]
    fn a_violation_reads_as_one_line_with_ledger_topic_seq_rule_and_detail() {
        let v = Violation {
            ledger_id: LedgerId::parse("l", "12345").expect("id"),
            topic: Some(Topic::Fees),
            seq: Some(7),
            rule: CHAIN,
            detail: "balanceAfter 1 is not balanceBefore 0 + amount 2".into(),
        };
        let whole = Violation {
            topic: None,
            seq: None,
            ..v.clone()
        };

        assert_eq!(
            v.to_string(),
            "ledger 12345 fees seq 7: chain: balanceAfter 1 is not balanceBefore 0 + amount 2"
        );
        assert_eq!(
            whole.to_string(),
            "ledger 12345: chain: balanceAfter 1 is not balanceBefore 0 + amount 2"
        );
    }

    #[test]
    fn an_amount_changed_after_writing_breaks_the_chain_at_that_entry() {
        let mut b = good_book();
        // The refund (funds seq 4) loses a krone but keeps its balances.
        b.entry(Topic::Funds, 4).amount = -9_900;

        let v = check(&b);

        assert_eq!(found(&v), vec![(Some(Topic::Funds), Some(4), CHAIN)]);
        assert_eq!(
            v[0].to_string(),
            "ledger 12345 funds seq 4: chain: balanceAfter 30000 is not balanceBefore 40000 + amount -9900"
        );
    }

    #[test]
    fn a_balance_before_that_is_not_the_previous_balance_after_breaks_the_chain() {
        let mut b = good_book();
        // The service fee (fees seq 6) starts from -399 instead of -400 and ends where it did.
        let e = b.entry(Topic::Fees, 6);
        e.balance_before = -399;
        e.amount = -9_901;

        let v = check(&b);

        assert_eq!(found(&v), vec![(Some(Topic::Fees), Some(6), CHAIN)]);
        assert_eq!(
            v[0].detail,
            "balanceBefore -399 is not balanceAfter -400 of seq 5"
        );
    }

    #[test]
    fn a_first_entry_that_does_not_start_from_zero_breaks_the_chain() {
        let mut b = good_book();
        for e in &mut b.fees {
            e.balance_before += 5;
            e.balance_after += 5;
        }

        let v = check(&b);

        assert_eq!(found(&v), vec![(Some(Topic::Fees), Some(1), CHAIN)]);
        assert_eq!(v[0].detail, "balanceBefore 5 of the first entry is not 0");
    }

    #[test]
    fn a_gap_in_the_sequence_breaks_the_chain_at_the_entry_after_it() {
        let mut b = good_book();
        for e in &mut b.fees[3..] {
            e.seq += 1;
        }

        let v = check(&b);

        assert_eq!(found(&v), vec![(Some(Topic::Fees), Some(5), CHAIN)]);
        assert_eq!(v[0].detail, "seq 5 follows seq 3, not 4");
    }

    #[test]
    fn a_funds_fees_retained_without_its_fees_mirror_is_reported_on_funds() {
        let mut b = good_book();
        // The fees side of 2022-10-01's retention (fees seq 4) goes missing.
        b.fees.remove(3);
        let b = b.rechain();

        let v = check(&b);

        assert_eq!(
            found(&v),
            vec![(Some(Topic::Funds), Some(5), FEES_RETAINED_MIRROR)]
        );
        assert_eq!(
            v[0].detail,
            "fees-retained of -1200 (12345-2022-10-01, 2022-10-01) has no fees-retained of 1200 on fees"
        );
    }

    #[test]
    fn a_fees_retained_with_another_amount_than_its_funds_side_is_reported_on_both_topics() {
        let mut b = good_book();
        b.entry(Topic::Fees, 4).amount = 1_100;
        let b = b.rechain();

        let v = check(&b);

        assert_eq!(
            found(&v),
            vec![
                (Some(Topic::Funds), Some(5), FEES_RETAINED_MIRROR),
                (Some(Topic::Fees), Some(4), FEES_RETAINED_MIRROR)
            ]
        );
        assert_eq!(
            v[1].detail,
            "fees-retained of 1100 (12345-2022-10-01, 2022-10-01) has no fees-retained of -1100 on funds"
        );
    }

    #[test]
    fn a_fees_retained_mirrored_once_but_written_twice_is_reported_once() {
        let mut b = good_book();
        let copy = b.fees[3].clone();
        b.fees.insert(4, copy);
        // Keep the fees account consistent with the extra entry, as a correction would not.
        let b = b.rechain();

        let v = check(&b);

        assert_eq!(
            found(&v),
            vec![(Some(Topic::Fees), Some(5), FEES_RETAINED_MIRROR)]
        );
    }

    #[test]
    fn a_payout_that_leaves_money_on_the_account_is_reported() {
        let mut b = good_book();
        // 2022-10-01's payout (funds seq 6) pays 100 too little.
        b.entry(Topic::Funds, 6).amount = -28_700;
        b.entry(Topic::Funds, 10).amount = -4_600; // 2022-10-02's payout takes the 100 along
        let b = b.rechain();

        let v = check(&b);

        assert_eq!(found(&v), vec![(Some(Topic::Funds), Some(6), PAYOUT_LAST)]);
        assert_eq!(
            v[0].detail,
            "payout-scheduled of -28700 on 2022-10-01 leaves a balance of 100, not 0"
        );
    }

    #[test]
    fn an_entry_after_a_payout_on_the_paid_date_is_reported_by_payout_last_and_closed_date() {
        let mut b = good_book();
        // The last capture (funds seq 11, 2022-10-03) and its fee (fees seq 9) are dated back onto
        // the paid-out 2022-10-02.
        b.entry(Topic::Funds, 11).ledger_date = d("2022-10-02");
        b.entry(Topic::Fees, 9).ledger_date = d("2022-10-02");

        let v = check(&b);

        assert_eq!(
            found(&v),
            vec![
                (Some(Topic::Funds), Some(10), PAYOUT_LAST),
                (Some(Topic::Funds), Some(11), CLOSED_DATE),
                (Some(Topic::Fees), Some(9), CLOSED_DATE)
            ]
        );
        assert_eq!(
            v[0].detail,
            "payout-scheduled on 2022-10-02 is not the last entry of its date: seq 11 (capture on 2022-10-02) follows"
        );
        assert_eq!(
            v[1].detail,
            "capture on 2022-10-02 comes after 2022-10-02 was closed by fees-retained at seq 9"
        );
    }

    #[test]
    fn an_entry_on_a_closed_date_after_its_closing_is_reported() {
        let mut b = good_book();
        // A service fee dated 2022-10-01 written after that date's closing on fees.
        b.push(Topic::Fees, "2022-10-01", "service-fee", "late", -500);

        let v = check(&b);

        assert_eq!(
            found(&v),
            vec![
                (Some(Topic::Fees), Some(10), DATE_ORDER),
                (Some(Topic::Fees), Some(10), CLOSED_DATE)
            ]
        );
        assert_eq!(
            v[1].detail,
            "service-fee on 2022-10-01 comes after 2022-10-02 was closed by fees-retained at seq 8"
        );
    }

    #[test]
    fn a_closing_of_an_earlier_date_after_a_later_closing_is_reported() {
        let mut b = good_book();
        // A gross-style invoice for 2022-09-30 after 2022-10-02 was closed on fees.
        b.push(
            Topic::Fees,
            "2022-09-30",
            "fees-invoiced",
            "12345-2022-09-30",
            100,
        );

        let v = check(&b);

        assert_eq!(
            found(&v),
            vec![
                (Some(Topic::Fees), Some(10), DATE_ORDER),
                (Some(Topic::Fees), Some(10), CLOSED_DATE)
            ]
        );
    }

    #[test]
    fn a_capture_without_its_fee_is_reported_on_the_capture() {
        let mut b = good_book();
        // The fee of the 20000 capture (funds seq 3, fees seq 3) is missing; retention adjusted.
        b.fees.remove(2);
        b.entry(Topic::Funds, 5).amount = -800;
        b.entry(Topic::Fees, 4).amount = 800;
        b.entry(Topic::Funds, 6).amount = -29_200;
        let b = b.rechain();

        let v = check(&b);

        assert_eq!(found(&v), vec![(Some(Topic::Funds), Some(3), CAPTURE_FEE)]);
        assert_eq!(
            v[0].detail,
            "capture of 20000 (3343121304, reference \"ref-3343121304\") has no capture-fee of -400 on fees"
        );
    }

    #[test]
    fn two_captures_of_one_psp_reference_need_two_fees() {
        let mut b = Book::default();
        b.capture("2022-10-01", "p", 10_000);
        b.push(Topic::Funds, "2022-10-01", "capture", "p", 10_000);

        let v = check(&b);

        assert_eq!(found(&v), vec![(Some(Topic::Funds), Some(2), CAPTURE_FEE)]);
    }

    #[test]
    fn a_capture_fee_of_the_wrong_amount_is_reported_on_the_capture_and_the_fee() {
        let mut b = good_book();
        b.entry(Topic::Fees, 1).amount = -401;
        b.entry(Topic::Fees, 4).amount = 1_201;
        b.entry(Topic::Funds, 5).amount = -1_201;
        b.entry(Topic::Funds, 6).amount = -28_799;
        let b = b.rechain();

        let v = check(&b);

        assert_eq!(
            found(&v),
            vec![
                (Some(Topic::Funds), Some(1), CAPTURE_FEE),
                (Some(Topic::Fees), Some(1), CAPTURE_FEE)
            ]
        );
        assert_eq!(
            v[1].detail,
            "capture-fee of -401 (3343121302, reference \"ref-3343121302\") belongs to no capture with that fee"
        );
    }

    #[test]
    fn a_capture_without_a_fee_under_the_plan_needs_no_capture_fee() {
        let mut free = ledger(SettlementMode::Net);
        free.fee_plan = FeePlan::default();
        let mut b = Book::default();
        b.push(Topic::Funds, "2022-10-01", "capture", "p", 10_000);

        assert_eq!(check_ledger(&free, &b.funds, &b.fees, &[]), vec![]);
    }

    #[test]
    fn an_amount_with_the_wrong_sign_for_its_type_is_reported() {
        let mut b = good_book();
        // The refund (funds seq 4) is written as money in; the balances follow it.
        b.entry(Topic::Funds, 4).amount = 10_000;
        b.entry(Topic::Funds, 6).amount = -48_800;
        let b = b.rechain();

        let v = check(&b);

        assert_eq!(found(&v), vec![(Some(Topic::Funds), Some(4), AMOUNT_SIGN)]);
        assert_eq!(
            v[0].detail,
            "refund on funds has amount 10000; it must be negative"
        );
    }

    #[test]
    fn fees_retained_is_negative_on_funds_and_positive_on_fees() {
        assert_eq!(
            expected_sign(Topic::Funds, "fees-retained"),
            Some(Sign::Negative)
        );
        assert_eq!(
            expected_sign(Topic::Fees, "fees-retained"),
            Some(Sign::Positive)
        );
        assert_eq!(
            expected_sign(Topic::Fees, "credit-note"),
            Some(Sign::NonZero)
        );
        assert_eq!(expected_sign(Topic::Funds, "something-new"), None);
    }

    #[test]
    fn a_zero_correction_is_reported_and_unknown_types_are_not_checked() {
        let mut b = good_book();
        b.entry(Topic::Funds, 8).amount = 0; // the correction of 2022-10-02
        b.entry(Topic::Funds, 10).amount = -4_600; // so the payout takes the 100 along
        let mut b = b.rechain();
        b.push(Topic::Funds, "2022-10-03", "something-new", "x", 0);

        let v = check(&b);

        assert_eq!(found(&v), vec![(Some(Topic::Funds), Some(8), AMOUNT_SIGN)]);
        assert_eq!(
            v[0].detail,
            "correction on funds has amount 0; it must be non-zero"
        );
    }

    #[test]
    fn a_gross_ledger_with_its_month_invoiced_has_no_violations() {
        let mut b = Book::default();
        b.capture("2022-10-31", "p", 10_000);
        b.push(
            Topic::Funds,
            "2022-10-31",
            "payout-scheduled",
            "12345-2000001",
            -10_000,
        );
        b.push(
            Topic::Fees,
            "2022-10-31",
            "fees-invoiced",
            "12345-2022-10-31",
            400,
        );
        b.capture("2022-11-01", "q", 1_000);

        let v = check_ledger(&ledger(SettlementMode::Gross), &b.funds, &b.fees, &[]);

        assert_eq!(v, vec![]);
    }

    /// Runs events through the engine's own decisions the way the store does (book, then close
    /// each passed period with the period's facts) and returns the two topics.
    fn through_the_engine(
        l: &Ledger,
        events: &[(&str, EventKind, &str, i64)],
        until: &str,
    ) -> Book {
        let unit = SalesUnit {
            msn: Msn::parse("m", "57860").expect("msn"),
            merchant_id: 1,
            name: "Kiosk".into(),
            kind: SalesUnitKind::Api,
            country: Country::NO,
            handle: RecipientHandle::parse("h", "api:57860").expect("handle"),
            created_at: Timestamp::UNIX_EPOCH,
        };
        let mut l = l.clone();
        let mut b = Book::default();
        let mut totals: HashMap<String, Seen> = HashMap::new();
        let write = |b: &mut Book, topic: Topic, e: NewEntry| {
            let t = b.topic(topic);
            let before = t.last().map_or(0, |x| x.balance_after);
            t.push(Entry {
                seq: t.len() as i64 + 1,
                psp_reference: e.psp_reference,
                time: e.time,
                ledger_date: e.ledger_date,
                entry_type: e.entry_type,
                reference: e.reference,
                currency: e.currency,
                amount: e.amount,
                balance_before: before,
                balance_after: before + e.amount,
                recipient_handle: e.recipient_handle,
                payer: e.payer,
            });
        };
        let close = |b: &mut Book, l: &mut Ledger, now: Timestamp| {
            for end in due_period_ends(l, l.closed_through, now) {
                let facts = PeriodFacts {
                    funds_balance: b.funds.last().map_or(0, |e| e.balance_after),
                    fees_balance: b.fees.last().map_or(0, |e| e.balance_after),
                    next_payout_number: l.next_payout_number,
                };
                let plan = plan_close(l, Country::NO, &unit.handle, end, facts);
                for (topic, e) in plan.entries {
                    write(b, topic, e);
                }
                l.closed_through = end;
                l.next_payout_number += i64::from(plan.used_payout_number);
            }
        };
        for (i, (time, kind, psp, amount)) in events.iter().enumerate() {
            let now: Timestamp = time.parse().expect("time");
            close(&mut b, &mut l, now);
            let ev = PaymentEvent {
                event_id: format!("e{i}"),
                kind: *kind,
                msn: unit.msn,
                psp_reference: (*psp).into(),
                capture_psp_reference: None,
                reference: format!("order-{psp}"),
                amount: *amount,
                currency: Currency::NOK,
                time: now,
                topic: None,
                payer: None,
            };
            let before = totals.get(*psp).copied().unwrap_or_default();
            let last_booked = b.funds.last().map(|e| e.ledger_date);
            let planned =
                plan_event(&l, &unit, &ev, last_booked, &before, now).expect("an accepted event");
            for (topic, e) in planned {
                write(&mut b, topic, e);
            }
            totals.insert((*psp).into(), seen_after(&before, &ev));
        }
        close(&mut b, &mut l, until.parse().expect("until"));
        b
    }

    #[test]
    fn what_the_engine_writes_over_several_periods_has_no_violations() {
        use EventKind::*;
        let events = [
            ("2022-10-01T08:00:00Z", Capture, "a", 10_000),
            ("2022-10-01T09:00:00Z", Capture, "b", 12_345),
            ("2022-10-01T21:59:59Z", Refund, "a", 4_000),
            ("2022-10-02T10:00:00Z", DisputeRetained, "b", 12_345),
            ("2022-10-02T11:00:00Z", Refund, "a", 6_000),
            ("2022-10-03T11:00:00Z", TopUp, "t", 500),
            ("2022-10-03T12:00:00Z", Capture, "c", 999),
            ("2022-10-03T12:30:00Z", ServiceFee, "s", 2_500),
            ("2022-10-04T12:00:00Z", DisputeReturned, "b", 12_345),
            ("2022-10-04T13:00:00Z", Capture, "c", 1),
            ("2022-10-05T13:00:00Z", Capture, "d", 50_000),
        ];
        for (mode, freq) in [
            (SettlementMode::Net, PayoutFrequency::Daily),
            (SettlementMode::Net, PayoutFrequency::Weekly),
            (SettlementMode::Gross, PayoutFrequency::Daily),
        ] {
            let mut l = ledger(mode);
            l.payout_frequency = freq;
            l.fee_plan = FeePlan {
                basis_points: 175,
                fixed_minor: 100,
            };

            let b = through_the_engine(&l, &events, "2022-11-02T12:00:00Z");

            assert_eq!(
                check_ledger(&l, &b.funds, &b.fees, &[]),
                vec![],
                "{mode:?} {freq:?}"
            );
            assert!(
                b.funds.iter().any(|e| e.entry_type == "payout-scheduled"),
                "{mode:?} {freq:?} paid out"
            );
        }
    }

    #[test]
    fn stored_digest_states_must_be_what_the_entries_give() {
        use crate::proof::{DateDigest, DateDigestState, ProofEntry};
        let mut b = Book::default();
        b.capture("2022-10-01", "p1", 10000);
        b.capture("2022-10-01", "p2", 500);
        b.capture("2022-10-02", "p3", 700);
        let l = ledger(SettlementMode::Net);
        let state_of = |date: &str| {
            let mut g = DateDigest::new();
            for e in b.funds.iter().filter(|e| e.ledger_date == d(date)) {
                g.add(&ProofEntry::from(e));
            }
            g.state()
        };
        let good = vec![
            (d("2022-10-01"), state_of("2022-10-01")),
            (d("2022-10-02"), state_of("2022-10-02")),
            // A closed date without entries keeps an empty state.
            (d("2022-10-03"), DateDigestState::EMPTY),
        ];
        assert!(check_date_states(&l, Topic::Funds, &b.funds, &good).is_empty());

        let mut changed = b.clone();
        changed.funds[1].reference = "altered".into();
        let v = check_date_states(&l, Topic::Funds, &changed.funds, &good);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].rule, PROOF);
        assert!(
            v[0].detail
                .starts_with("ledgerDate 2022-10-01: the stored digest state says 2 entries"),
            "{}",
            v[0].detail
        );

        let missing = &good[..1];
        let v = check_date_states(&l, Topic::Funds, &b.funds, missing);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].detail
                .contains("2022-10-02: has entries but no stored digest state")
        );

        let v = check_date_states(&l, Topic::Funds, &b.funds[..2], &good);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].detail
                .contains("2022-10-02: the stored digest state says 1 entries, sum 700"),
            "{}",
            v[0].detail
        );
        assert!(v[0].detail.ends_with("the date has no entries"));

        // A closed date's state is its proof, which check_proofs checks instead.
        let mut closed = l.clone();
        closed.closed_through = d("2022-10-01");
        assert!(check_date_states(&closed, Topic::Funds, &changed.funds, &good).is_empty());
    }
}
