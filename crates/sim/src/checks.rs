//! What must hold after every step, read through the store as the server and `ledgerport verify`
//! read it:
//!
//! - every rule of [`ledgerport_core::verify`] on every ledger;
//! - money is conserved: per ledger (one currency each), what the accepted events moved equals
//!   the balances plus what left by payouts and invoices ([`conservation`]);
//! - an entry, once read, never changes; a closed date's entries never change, and a date page
//!   of a closed date is that date's entries of the feed ([`closed_dates`]);
//! - every principal lists exactly the ledgers it may read, every listed ledger opens, a
//!   ledger it may not read answers as a missing one, and a scoped grant reads only its scope
//!   ([`access`]); revoked and regenerated credentials no longer authenticate.

use crate::run::{Failure, Sim};
use ledgerport_core::access::{self, Presented, Principal};
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use ledgerport_core::proof::DateProof;
use ledgerport_core::verify::{check_date_states, check_ledger, check_proofs};
use ledgerport_core::world::{ApiKey, KeyOwner, Ledger, PartnerState};
use ledgerport_store::{EventOutcome, Store};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

/// What the checks have seen so far.
#[derive(Debug, Default)]
pub struct Observed {
    /// Every entry read, per (ledger, topic code), in seq order.
    entries: HashMap<(String, u8), Vec<Entry>>,
    /// The entries of every closed date, as first read, per (ledger, topic code).
    closed: HashMap<(String, u8), BTreeMap<LedgerDate, Vec<Entry>>>,
    /// The completeness proof of every closed date, as first read, per (ledger, topic code).
    proofs: HashMap<(String, u8), BTreeMap<LedgerDate, DateProof>>,
    /// Payouts scheduled: ledger, pspReference, amount (positive); for payout-aborted events.
    pub payouts: Vec<(LedgerId, String, i64)>,
    /// A date the ledgers have closed, for grants limited to a period.
    pub some_date: Option<LedgerDate>,
    /// Keys as they were before their secret was replaced.
    pub old_keys: Vec<ApiKey>,
    /// A digest of all entries after each step.
    pub digests: Vec<u64>,
}

fn fail(step: usize, message: impl Into<String>) -> Failure {
    Failure {
        step,
        message: message.into(),
    }
}

/// The operator's view of one ledger: the ledger and both topics in feed order.
pub(crate) async fn read_ledger(
    s: &dyn Store,
    id: &LedgerId,
    step: usize,
) -> Result<(Ledger, Vec<Entry>, Vec<Entry>, Vec<(String, String)>), Failure> {
    let err = |e: ledgerport_store::StoreError| fail(step, format!("read ledger {id}: {e:?}"));
    let guarded = s.ledger(id).await.map_err(err)?;
    let (access, view) = access::open(&Principal::Operator { user_id: None }, guarded)
        .map_err(|r| fail(step, format!("the operator cannot open ledger {id}: {r:?}")))?;
    let funds = s
        .feed_page(&access, Topic::Funds, 0, u32::MAX)
        .await
        .map_err(err)?;
    let fees = s
        .feed_page(&access, Topic::Fees, 0, u32::MAX)
        .await
        .map_err(err)?;
    let refunds = s.refunded_captures(&access).await.map_err(err)?;
    Ok((view.ledger, funds, fees, refunds))
}

/// Every check, after step `sim`'s current step; the access checks when `access_too`.
pub(crate) async fn after_step(sim: &mut Sim, access_too: bool) -> Result<(), Failure> {
    let step = sim.stats.steps as usize - 1;
    let mut digest = std::collections::hash_map::DefaultHasher::new();
    let mut payouts = Vec::new();
    for (i, id) in sim.ledger_ids.clone().iter().enumerate() {
        let (ledger, funds, fees, refunds) = read_ledger(sim.store(), id, step).await?;
        let violations = check_ledger(&ledger, &funds, &fees, &refunds);
        if !violations.is_empty() {
            let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
            return Err(fail(step, format!("verify: {}", list.join("; "))));
        }
        if !sim.conservation_deferred {
            conservation(sim, i, &ledger, &funds, &fees).map_err(|m| fail(step, m))?;
        }
        for (topic, entries) in [(Topic::Funds, &funds), (Topic::Fees, &fees)] {
            unchanged(&mut sim.observed, id, topic, entries).map_err(|m| fail(step, m))?;
            closed_dates(sim, &ledger, topic, entries, step).await?;
            for e in entries.iter() {
                (
                    e.seq,
                    e.amount,
                    e.balance_after,
                    &e.entry_type,
                    &e.psp_reference,
                )
                    .hash(&mut digest);
                (e.ledger_date.to_string(), &e.time, &e.reference).hash(&mut digest);
            }
        }
        for e in &funds {
            if e.entry_type == "payout-scheduled" {
                payouts.push((id.clone(), e.psp_reference.clone(), -e.amount));
            }
        }
        if ledger.closed_through
            > ledgerport_core::ids::LedgerDate::from_date(jiff::civil::date(2024, 1, 1))
        {
            sim.observed.some_date = Some(ledger.closed_through);
        }
    }
    sim.observed.payouts = payouts;
    sim.observed.digests.push(digest.finish());
    if access_too {
        access_checks(sim, step).await?;
    }
    Ok(())
}

/// The effect on the ledger's two balances together of one accepted event, derived from the
/// engine's rules independently of the entries: a capture less its fee (basis points rounded
/// half up, plus the fixed part); refunds and retained disputes out; returned disputes,
/// top-ups and aborted payouts in; service fees out; corrections and credit notes as signed.
pub(crate) fn event_effect(basis_points: i64, fixed_minor: i64, e: &PaymentEvent) -> i128 {
    let a = i128::from(e.amount);
    match e.kind {
        EventKind::Capture => {
            let bp = i128::from(basis_points);
            let fee = (a * bp + 5_000).div_euclid(10_000) + i128::from(fixed_minor);
            a - fee
        }
        EventKind::Refund | EventKind::DisputeRetained | EventKind::ServiceFee => -a,
        EventKind::DisputeReturned | EventKind::TopUp | EventKind::PayoutAborted => a,
        EventKind::Correction | EventKind::CreditNote => a,
    }
}

/// captures − fees − refunds − retained + returned − service fees + top-ups ± corrections ±
/// credit notes + aborted payouts = funds balance + fees balance + payouts − fees invoiced.
/// (`fees-retained` moves money between the two topics and adds nothing; a gross ledger's
/// invoiced fees are paid from outside.)
fn conservation(
    sim: &Sim,
    index: usize,
    ledger: &Ledger,
    funds: &[Entry],
    fees: &[Entry],
) -> Result<(), String> {
    let id = &ledger.ledger_id;
    let moved = sim.moved.get(&index).copied().unwrap_or(0);
    let balance = |entries: &[Entry]| i128::from(entries.last().map_or(0, |e| e.balance_after));
    let sum_of = |entries: &[Entry], kind: &str| -> i128 {
        entries
            .iter()
            .filter(|e| e.entry_type == kind)
            .map(|e| i128::from(e.amount))
            .sum()
    };
    let paid_out = -sum_of(funds, "payout-scheduled");
    let invoiced = sum_of(fees, "fees-invoiced");
    let held = balance(funds) + balance(fees) + paid_out - invoiced;
    if moved != held {
        return Err(format!(
            "money not conserved on ledger {id} ({}): the accepted events moved {moved}, but \
             funds {} + fees {} + paid out {paid_out} - invoiced {invoiced} = {held}",
            ledger.currency,
            balance(funds),
            balance(fees)
        ));
    }
    Ok(())
}

/// No entry read before has changed or gone: what was read is a prefix of what is read now.
fn unchanged(
    obs: &mut Observed,
    id: &LedgerId,
    topic: Topic,
    entries: &[Entry],
) -> Result<(), String> {
    let seen = obs
        .entries
        .entry((id.as_str().to_owned(), topic.code()))
        .or_default();
    for (i, before) in seen.iter().enumerate() {
        match entries.get(i) {
            Some(now) if now == before => {}
            Some(now) => {
                return Err(format!(
                    "entry {id} {topic} seq {} changed: was {before:?}, is {now:?}",
                    before.seq
                ));
            }
            None => {
                return Err(format!(
                    "entry {id} {topic} seq {} is gone: was {before:?}",
                    before.seq
                ));
            }
        }
    }
    seen.extend(entries[seen.len()..].iter().cloned());
    Ok(())
}

/// A closed date's entries never change, and its date page is what the feed holds of it; its
/// completeness proof agrees with its entries and the previous date's proof (`verify`'s proof
/// rule) and never changes either.
async fn closed_dates(
    sim: &mut Sim,
    ledger: &Ledger,
    topic: Topic,
    entries: &[Entry],
    step: usize,
) -> Result<(), Failure> {
    let id = &ledger.ledger_id;
    let mut by_date: BTreeMap<LedgerDate, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        by_date.entry(e.ledger_date).or_default().push(e.clone());
    }
    let closed_through = ledger.closed_through;
    let first_read = sim
        .observed
        .closed
        .entry((id.as_str().to_owned(), topic.code()))
        .or_default();
    for (date, first) in first_read.iter() {
        let now = by_date.get(date).map(Vec::as_slice).unwrap_or_default();
        if now != first.as_slice() {
            return Err(fail(
                step,
                format!(
                    "closed date {date} of ledger {id} {topic} changed: had {} entries, has {} \
                     (first difference: {:?})",
                    first.len(),
                    now.len(),
                    first.iter().zip(now).find(|(a, b)| a != b)
                ),
            ));
        }
    }
    // The latest closed date with entries: its date page must be the feed's entries of it.
    let latest = by_date
        .range(..=closed_through)
        .next_back()
        .map(|(d, _)| *d);
    for (date, list) in by_date.range(..=closed_through) {
        first_read.entry(*date).or_insert_with(|| list.clone());
    }
    if let Some(date) = latest {
        let s = sim.store();
        let guarded = s
            .ledger(id)
            .await
            .map_err(|e| fail(step, format!("read ledger {id}: {e:?}")))?;
        let (access, _) = access::open(&Principal::Operator { user_id: None }, guarded)
            .map_err(|r| fail(step, format!("the operator cannot open {id}: {r:?}")))?;
        let page = s
            .date_page(&access, topic, date, 0, u32::MAX)
            .await
            .map_err(|e| fail(step, format!("date page {id} {topic} {date}: {e:?}")))?;
        if Some(&page) != by_date.get(&date) {
            return Err(fail(
                step,
                format!(
                    "the date page of closed date {date} of ledger {id} {topic} has {} entries, \
                     the feed {} on that date",
                    page.len(),
                    by_date.get(&date).map_or(0, Vec::len)
                ),
            ));
        }
    }
    closed_date_proofs(sim, ledger, topic, entries, step).await
}

/// The proofs of the ledger's closed dates of `topic`: each one is what `verify` recomputes from
/// the entries, chained to the previous one, and equal to what was read the first time.
async fn closed_date_proofs(
    sim: &mut Sim,
    ledger: &Ledger,
    topic: Topic,
    entries: &[Entry],
    step: usize,
) -> Result<(), Failure> {
    let id = &ledger.ledger_id;
    let s = sim.store();
    let guarded = s
        .ledger(id)
        .await
        .map_err(|e| fail(step, format!("read ledger {id}: {e:?}")))?;
    let (access, _) = access::open(&Principal::Operator { user_id: None }, guarded)
        .map_err(|r| fail(step, format!("the operator cannot open {id}: {r:?}")))?;
    let proofs = s
        .date_proofs(&access, topic)
        .await
        .map_err(|e| fail(step, format!("proofs of {id} {topic}: {e:?}")))?;
    let states = s
        .date_digest_states(&access, topic)
        .await
        .map_err(|e| fail(step, format!("digest states of {id} {topic}: {e:?}")))?;
    let mut violations = check_proofs(ledger, topic, entries, &proofs);
    violations.extend(check_date_states(ledger, topic, entries, &states));
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
        return Err(fail(step, format!("verify: {}", list.join("; "))));
    }
    let first_read = sim
        .observed
        .proofs
        .entry((id.as_str().to_owned(), topic.code()))
        .or_default();
    for proof in proofs {
        match first_read.get(&proof.ledger_date) {
            Some(first) if *first != proof => {
                return Err(fail(
                    step,
                    format!(
                        "the proof of closed date {} of ledger {id} {topic} changed: was \
                         {first:?}, is {proof:?}",
                        proof.ledger_date
                    ),
                ));
            }
            Some(_) => {}
            None => {
                first_read.insert(proof.ledger_date, proof);
            }
        }
    }
    Ok(())
}

/// A batch delivered again answers as it did the first time.
pub(crate) fn same_answers(
    step: usize,
    events: &[PaymentEvent],
    first: &[EventOutcome],
    again: &[EventOutcome],
) -> Result<(), Failure> {
    for ((e, a), b) in events.iter().zip(first).zip(again) {
        // A rejected event was not recorded if a later one in its batch took its id; an
        // accepted one must answer the same.
        if matches!(a, EventOutcome::Accepted { .. }) && a != b {
            return Err(fail(
                step,
                format!(
                    "event {} delivered again answered {b:?}, first {a:?}",
                    e.event_id
                ),
            ));
        }
    }
    Ok(())
}

/// Every principal the world has: each key that authenticates (as a bearer token of its
/// current generation), and each merchant's and approved partner's portal user.
async fn principals(sim: &Sim, step: usize) -> Result<Vec<Principal>, Failure> {
    let s = sim.store();
    let err = |e: ledgerport_store::StoreError| fail(step, format!("read the world: {e:?}"));
    let partners: HashMap<_, _> = s
        .partners()
        .await
        .map_err(err)?
        .into_iter()
        .map(|p| (p.id, p.state))
        .collect();
    let mut out = vec![Principal::Operator { user_id: None }];
    for k in s.keys().await.map_err(err)? {
        let state = match k.owner {
            KeyOwner::Partner(p) => partners.get(&p).copied(),
            _ => None,
        };
        let presented = Presented::Token {
            client_id: &k.client_id,
            key_type: k.kind.as_str(),
            generation: k.generation,
        };
        match access::authenticate(&k, state, presented) {
            Ok(p) => {
                if k.revoked {
                    return Err(fail(step, format!("revoked key {} authenticates", k.id)));
                }
                out.push(p);
            }
            Err(_) => {
                let partner_ok = state.is_none_or(|s| s == PartnerState::Approved);
                if !k.revoked
                    && partner_ok
                    && !matches!(k.kind, ledgerport_core::world::KeyKind::Service)
                {
                    return Err(fail(
                        step,
                        format!(
                            "key {} ({}) of an approved owner does not authenticate",
                            k.id,
                            k.kind.as_str()
                        ),
                    ));
                }
            }
        }
    }
    // A replaced secret's tokens (its old generation) are refused.
    for old in &sim.observed.old_keys {
        let Some(current) = s.key(old.id).await.map_err(err)? else {
            continue;
        };
        let state = match current.owner {
            KeyOwner::Partner(p) => partners.get(&p).copied(),
            _ => None,
        };
        if current.generation != old.generation {
            let presented = Presented::Token {
                client_id: &old.client_id,
                key_type: old.kind.as_str(),
                generation: old.generation,
            };
            if access::authenticate(&current, state, presented).is_ok() {
                return Err(fail(
                    step,
                    format!(
                        "key {}: a token of generation {} still authenticates",
                        old.id, old.generation
                    ),
                ));
            }
        }
    }
    for (i, m) in sim.merchants.iter().enumerate() {
        out.push(Principal::PortalMerchant {
            user_id: 10_000 + i as i64,
            merchant_id: *m,
        });
    }
    for (i, p) in sim.partners.iter().enumerate() {
        if partners.get(p) == Some(&PartnerState::Approved) {
            out.push(Principal::PortalPartner {
                user_id: 20_000 + i as i64,
                partner_id: *p,
            });
        }
    }
    Ok(out)
}

/// The listing agrees with the decisions, refusals look like absences, scopes hold.
async fn access_checks(sim: &mut Sim, step: usize) -> Result<(), Failure> {
    let s = sim.store();
    let missing = LedgerId::parse("ledger", "999999999").map_err(|e| fail(step, e.to_string()))?;
    for p in principals(sim, step).await? {
        let mut readable = Vec::new();
        let absent = format!(
            "{:?}",
            access::open(
                &p,
                s.ledger(&missing)
                    .await
                    .map_err(|e| fail(step, format!("{e:?}")))?
            )
            .err()
        );
        for id in &sim.ledger_ids {
            let guarded = s
                .ledger(id)
                .await
                .map_err(|e| fail(step, format!("{e:?}")))?;
            match access::open(&p, guarded) {
                Ok((a, _)) => {
                    readable.push(id.clone());
                    scoped_reads(s, &a, step).await?;
                }
                Err(r) => {
                    let refused = format!("{:?}", Err::<(), _>(r).err());
                    if refused != absent {
                        return Err(fail(
                            step,
                            format!(
                                "{p:?} refused ledger {id} as {refused}, a missing one as {absent}"
                            ),
                        ));
                    }
                }
            }
        }
        let Some(scope) = access::list_scope(&p) else {
            continue;
        };
        let mut listed = Vec::new();
        let mut after: Option<LedgerId> = None;
        loop {
            let page = s
                .ledgers_in_scope(&scope, None, after.as_ref(), 2)
                .await
                .map_err(|e| fail(step, format!("list {scope:?}: {e:?}")))?;
            let n = page.len();
            for g in page {
                let id = g.facts().ledger_id.clone();
                after = Some(id.clone());
                if g.open(&p).is_err() {
                    return Err(fail(
                        step,
                        format!(
                            "{p:?}: the listing returned ledger {id}, which the policy refuses"
                        ),
                    ));
                }
                listed.push(id);
            }
            if n < 2 {
                break;
            }
        }
        if listed != readable {
            return Err(fail(
                step,
                format!(
                    "{p:?} lists {:?} but may read {:?}",
                    listed.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
                    readable.iter().map(|l| l.as_str()).collect::<Vec<_>>()
                ),
            ));
        }
    }
    Ok(())
}

/// A read with a grant's access returns only the dates of its period and, without personal
/// data in the scope, no payer.
async fn scoped_reads(
    s: &dyn Store,
    a: &ledgerport_core::access::LedgerAccess,
    step: usize,
) -> Result<(), Failure> {
    for topic in [Topic::Funds, Topic::Fees] {
        if a.check_topic(topic).is_err() {
            continue;
        }
        let entries = s
            .feed_page(a, topic, 0, u32::MAX)
            .await
            .map_err(|e| fail(step, format!("{e:?}")))?;
        for e in &entries {
            if !a.scope().covers_date(e.ledger_date) {
                return Err(fail(
                    step,
                    format!(
                        "{:?} read {} {topic} seq {} of {} outside its grant ({})",
                        a.reader(),
                        a.ledger_id(),
                        e.seq,
                        e.ledger_date,
                        a.scope().period()
                    ),
                ));
            }
        }
    }
    Ok(())
}
