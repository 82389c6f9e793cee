//! The benchmark's world: merchants, ledgers, partners, grants, keys and millions of entries,
//! written straight through the [`Store`] trait. Building it is set-up, not measured.
//!
//! Shape: every ledger settles for one api sales unit of its own; merchants own ledgers in turn.
//! Ledger 0 is the large ledger (a big share of all entries, for the full-feed download), ledger
//! 1 the small one (about 10,000 entries, for the flatness comparison), the next `readers`
//! ledgers share most of the remaining entries (so 32 readers each have whole 1000-entry pages
//! on a ledger of their own), and every other ledger gets a few. Partner 0 holds the big grant
//! set (every read goes through its token, so every page is read by a partner with thousands of
//! grants), partner 1 the small one, and the other partners share the remaining grants.

use super::Size;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use ledgerport_core::entry::{NewEntry, wire_time};
use ledgerport_core::ids::{Currency, LedgerDate, LedgerId, Msn, Topic};
use ledgerport_core::world::KeyKind;
use ledgerport_store::Store;
use ledgerport_testkit::WorldBuilder;
use std::time::Instant;

/// Entries per `append_entries` call while building (one transaction each).
const APPEND_BATCH: usize = 10_000;

/// Keys as the load generator presents them.
#[derive(Clone)]
pub struct SalesUnitCreds {
    pub client_id: String,
    pub secret: String,
    pub subscription_key: String,
}

#[derive(Clone)]
pub struct BasicCreds {
    pub client_id: String,
    pub secret: String,
}

/// What the measurements need to know about the world they run on.
pub struct World {
    pub ledgers: Vec<LedgerId>,
    pub msns: Vec<Msn>,
    pub large: LedgerId,
    pub large_entries: u64,
    pub small: LedgerId,
    pub small_entries: u64,
    /// The ledgers the concurrent readers read, one each.
    pub reader_ledgers: Vec<LedgerId>,
    /// Dates of the large ledger that have entries.
    pub large_dates: Vec<LedgerDate>,
    pub unit_keys: Vec<SalesUnitCreds>,
    pub accounting_keys: Vec<BasicCreds>,
    /// Partner 0: grants on `big_partner_grants` ledgers, including every ledger read here.
    pub big_partner: BasicCreds,
    pub big_partner_grants: u64,
    /// Partner 1: `small_partner_grants` grants.
    pub small_partner: BasicCreds,
    pub small_partner_grants: u64,
    pub service: BasicCreds,
    pub total_entries: u64,
    pub total_grants: u64,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("building the benchmark world: {e}")
}

/// How many entries each ledger gets, ledger 0 first.
pub fn entry_counts(size: &Size) -> Vec<u64> {
    let n = size.ledgers as usize;
    let mut counts = vec![0u64; n];
    let large = (size.entries as f64 * size.large_share) as u64;
    counts[0] = large;
    let small = size.small_ledger_entries.min(size.entries - large);
    counts[1] = small;
    let mut rest = size.entries - large - small;
    // A few entries on every tail ledger, the bulk on the readers' ledgers.
    let readers = (size.concurrency as usize).min(n - 2);
    let tail = n - 2 - readers;
    let per_tail = (rest / 10 / (tail.max(1) as u64)).min(20);
    for c in counts.iter_mut().skip(2 + readers) {
        *c = per_tail;
        rest -= per_tail;
    }
    if readers > 0 {
        for (i, c) in counts.iter_mut().skip(2).take(readers).enumerate() {
            *c = rest / readers as u64 + u64::from((i as u64) < rest % readers as u64);
        }
    } else {
        counts[0] += rest;
    }
    counts
}

/// Progress of the world builder: a line per kind of thing, every 100 (500 grants).
fn world_progress() -> impl FnMut(&str, u64, u64) + Send + 'static {
    let mut current = (String::new(), Instant::now());
    move |kind, done, total| {
        if current.0 != kind {
            current = (kind.to_owned(), Instant::now());
        }
        let every = if kind == "grants" { 500 } else { 100 };
        if done % every == 0 {
            progress(kind, done, total, current.1);
        }
    }
}

fn progress(what: &str, done: u64, total: u64, began: Instant) {
    let secs = began.elapsed().as_secs_f64();
    eprint!(
        "\r  world: {what} {done}/{total} ({:.0}/s)          ",
        done as f64 / secs.max(1e-9)
    );
}

pub async fn build(store: &dyn Store, size: &Size) -> Result<World, String> {
    let began = Instant::now();
    let n = size.ledgers as usize;
    let mut builder = WorldBuilder::new()
        .by("bench")
        .on_progress(world_progress());
    let org = |m: usize| (900_000_000 + m).to_string();
    for m in 0..size.merchants as usize {
        builder = builder.merchant(&org(m), &format!("Bench Merchant {m} AS"));
    }
    let mut ledgers = Vec::with_capacity(n);
    let mut msns = Vec::with_capacity(n);
    for i in 0..n {
        let id = LedgerId::parse("ledger", &(5_000_000 + i).to_string()).map_err(err)?;
        let msn = Msn::parse("msn", &(1_000_000 + i).to_string()).map_err(err)?;
        builder = builder
            .of_merchant(&org(i % size.merchants as usize))
            .api_unit(&msn.to_string())
            .unit_name(&format!("Bench Unit {i}"))
            .ledger(&id.to_string(), &[&msn.to_string()])
            .fees(175, 0);
        ledgers.push(id);
        msns.push(msn);
    }

    // Grants: partner 0 the big set (ledgers 0.., so every ledger read here), partner 1 the
    // small one, the other partners share the rest, each on distinct ledgers.
    let big = size.big_partner_grants.min(n as u64);
    let small = size.small_partner_grants.min(n as u64);
    let mut plan: Vec<Vec<usize>> = vec![
        (0..big as usize).collect(),
        (0..small as usize).map(|j| (n - 1 - j) % n).collect(),
    ];
    let others = size.partners as usize - 2;
    let rest = size.grants.saturating_sub(big + small);
    for k in 0..others {
        let count =
            (rest / others as u64 + u64::from((k as u64) < rest % others as u64)).min(n as u64);
        let start = (k * 7919) % n;
        plan.push((0..count as usize).map(|j| (start + j) % n).collect());
    }
    let total_grants: u64 = plan.iter().map(|l| l.len() as u64).sum();

    // Keys: sales-unit keys for the first units, accounting keys for the first partners, one
    // operator service key.
    let key_count = (size.concurrency as usize).max(1);
    for (p, ls) in plan.iter().enumerate() {
        builder = builder.partner(&format!("Bench Regnskap {p} AS"));
        if p < key_count.max(2) {
            builder = builder.partner_keys(&format!("partner-{p}"), KeyKind::Accounting);
        }
        for &l in ls {
            builder = builder.grant(&ledgers[l].to_string());
        }
    }
    for (i, msn) in msns.iter().take(key_count).enumerate() {
        builder = builder.unit_keys(&format!("unit-{i}"), &msn.to_string());
    }
    let built = builder
        .service_keys("service")
        .build(store)
        .await
        .map_err(err)?;
    let mut unit_keys = Vec::new();
    for i in 0..key_count.min(n) {
        let k = built.keys(&format!("unit-{i}"));
        let subscription_key = k
            .subscription_key
            .clone()
            .ok_or_else(|| err("sales-unit keys came without a subscription key"))?;
        unit_keys.push(SalesUnitCreds {
            client_id: k.client_id.clone(),
            secret: k.secret.clone(),
            subscription_key,
        });
    }
    let basic = |label: &str| {
        let k = built.keys(label);
        BasicCreds {
            client_id: k.client_id.clone(),
            secret: k.secret.clone(),
        }
    };
    let accounting_keys: Vec<BasicCreds> = (0..key_count.max(2).min(plan.len()))
        .map(|p| basic(&format!("partner-{p}")))
        .collect();
    let service = basic("service");

    // Entries, in big batches per ledger; dates run over `days` days ending yesterday.
    let counts = entry_counts(size);
    let today = TimeZone::UTC.to_datetime(Timestamp::now()).date();
    let first_day = today
        .checked_sub(jiff::Span::new().days(i64::from(size.days)))
        .map_err(err)?;
    let first_ts = TimeZone::UTC
        .to_timestamp(first_day.to_datetime(jiff::civil::Time::midnight()))
        .map_err(err)?;
    let total: u64 = counts.iter().sum();
    let began_entries = Instant::now();
    let mut written = 0u64;
    let mut last_print = Instant::now();
    let mut large_dates = Vec::new();
    for (li, &count) in counts.iter().enumerate() {
        let mut i = 0u64;
        while i < count {
            let end = (i + APPEND_BATCH as u64).min(count);
            let mut batch = Vec::with_capacity((end - i) as usize);
            for k in i..end {
                // Entries spread evenly over the days, in time order.
                let us = (u128::from(k) * u128::from(size.days) * 86_400_000_000
                    / u128::from(count)) as i64;
                let at = first_ts
                    .checked_add(jiff::SignedDuration::from_micros(us))
                    .map_err(err)?;
                let date = LedgerDate::from_date(TimeZone::UTC.to_datetime(at).date());
                if li == 0 && large_dates.last() != Some(&date) {
                    large_dates.push(date);
                }
                let refund = k % 10 == 9;
                batch.push(NewEntry {
                    psp_reference: format!("{}{k:09}", 10 + li),
                    time: wire_time(at),
                    ledger_date: date,
                    entry_type: if refund { "refund" } else { "capture" }.into(),
                    reference: format!("order-{li}-{k}"),
                    currency: Currency::NOK,
                    amount: if refund {
                        -500
                    } else {
                        1_000 + (k % 97) as i64 * 100
                    },
                    recipient_handle: format!("api:{}", msns[li]),
                    payer: None,
                });
            }
            written += batch.len() as u64;
            store
                .append_entries(&ledgers[li], Topic::Funds, batch)
                .await
                .map_err(err)?;
            i = end;
            if last_print.elapsed().as_millis() >= 500 {
                last_print = Instant::now();
                progress("entries", written, total, began_entries);
            }
        }
    }
    eprintln!(
        "\r  world: {} merchants, {n} ledgers, {} partners, {total_grants} grants, {total} entries, built in {:.1} s",
        size.merchants,
        size.partners,
        began.elapsed().as_secs_f64()
    );
    let readers = (size.concurrency as usize).min(n - 2);
    Ok(World {
        large: ledgers[0].clone(),
        large_entries: counts[0],
        small: ledgers[1].clone(),
        small_entries: counts[1],
        reader_ledgers: ledgers[2..2 + readers].to_vec(),
        large_dates,
        unit_keys,
        big_partner: accounting_keys[0].clone(),
        big_partner_grants: big,
        small_partner: accounting_keys[1].clone(),
        small_partner_grants: small,
        accounting_keys,
        service,
        total_entries: total,
        total_grants,
        ledgers,
        msns,
    })
}
