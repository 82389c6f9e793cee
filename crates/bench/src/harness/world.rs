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
use ledgerport_core::ids::{
    BankAccount, BusinessId, Country, Currency, LedgerDate, LedgerId, Msn, Topic,
};
use ledgerport_core::world::{
    DEFAULT_PAGE_SIZE, FeePlan, KeyKind, KeyOwner, PartnerKind, PartnerState, PayoutFrequency,
    SalesUnitKind, SettlementMode, parse_cutoff,
};
use ledgerport_server::credentials::issue_keys;
use ledgerport_store::{Actor, NewLedger, NewMerchant, NewPartner, NewSalesUnit, Store};
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

fn progress(what: &str, done: u64, total: u64, began: Instant) {
    let secs = began.elapsed().as_secs_f64();
    eprint!(
        "\r  world: {what} {done}/{total} ({:.0}/s)          ",
        done as f64 / secs.max(1e-9)
    );
}

pub async fn build(store: &dyn Store, size: &Size) -> Result<World, String> {
    let by = Actor::new("bench");
    let began = Instant::now();
    let n = size.ledgers as usize;
    let mut merchants = Vec::new();
    for i in 0..size.merchants {
        let m = store
            .create_merchant(
                &by,
                NewMerchant {
                    business: BusinessId::parse(
                        "org",
                        "business:NO:ORG",
                        &(900_000_000 + i).to_string(),
                    )
                    .map_err(err)?,
                    name: format!("Bench Merchant {i} AS"),
                },
            )
            .await
            .map_err(err)?;
        merchants.push(m.id);
        if i % 100 == 0 {
            progress("merchants", u64::from(i), u64::from(size.merchants), began);
        }
    }
    let mut ledgers = Vec::with_capacity(n);
    let mut msns = Vec::with_capacity(n);
    let began_ledgers = Instant::now();
    for i in 0..n {
        let owner = merchants[i % merchants.len()];
        let msn = Msn::parse("msn", &(1_000_000 + i).to_string()).map_err(err)?;
        store
            .create_sales_unit(
                &by,
                NewSalesUnit {
                    msn,
                    merchant_id: owner,
                    name: format!("Bench Unit {i}"),
                    kind: SalesUnitKind::Api,
                    country: Country::NO,
                    vm_number: None,
                },
            )
            .await
            .map_err(err)?;
        let id = LedgerId::parse("ledger", &(5_000_000 + i).to_string()).map_err(err)?;
        store
            .create_ledger(
                &by,
                NewLedger {
                    ledger_id: id.clone(),
                    currency: Currency::NOK,
                    payout_account: BankAccount::parse("account", "BBAN:NO", "86011117947")
                        .map_err(err)?,
                    owner_merchant_id: owner,
                    settles_for: vec![msn],
                    time_zone: "Europe/Oslo".into(),
                    cutoff: parse_cutoff("cutoff", "00:00").map_err(err)?,
                    payout_frequency: PayoutFrequency::Daily,
                    settlement_mode: SettlementMode::Net,
                    fee_plan: FeePlan {
                        basis_points: 175,
                        fixed_minor: 0,
                    },
                    page_size: DEFAULT_PAGE_SIZE,
                },
            )
            .await
            .map_err(err)?;
        ledgers.push(id);
        msns.push(msn);
        if i % 100 == 0 {
            progress("ledgers", i as u64, n as u64, began_ledgers);
        }
    }

    let mut partners = Vec::new();
    for i in 0..size.partners {
        let p = store
            .create_partner(
                &by,
                NewPartner {
                    name: format!("Bench Regnskap {i} AS"),
                    kind: PartnerKind::Accounting,
                    business: None,
                    contact_email: format!("api@partner{i}.example"),
                },
            )
            .await
            .map_err(err)?;
        store
            .set_partner_state(&by, p.id, PartnerState::Approved)
            .await
            .map_err(err)?;
        partners.push(p.id);
    }

    // Grants: partner 0 the big set (ledgers 0.., so every ledger read here), partner 1 the
    // small one, the other partners share the rest, each on distinct ledgers.
    let big = size.big_partner_grants.min(n as u64);
    let small = size.small_partner_grants.min(n as u64);
    let mut plan: Vec<(usize, Vec<usize>)> = vec![
        (0, (0..big as usize).collect()),
        (1, (0..small as usize).map(|j| (n - 1 - j) % n).collect()),
    ];
    let others = partners.len() - 2;
    let rest = size.grants.saturating_sub(big + small);
    for k in 0..others {
        let count =
            (rest / others as u64 + u64::from((k as u64) < rest % others as u64)).min(n as u64);
        let start = (k * 7919) % n;
        plan.push((
            2 + k,
            (0..count as usize).map(|j| (start + j) % n).collect(),
        ));
    }
    let total_grants: u64 = plan.iter().map(|(_, l)| l.len() as u64).sum();
    let began_grants = Instant::now();
    let mut done = 0u64;
    let merchant_user = Actor::new("bench:merchant-user");
    for (p, ls) in &plan {
        for &l in ls {
            store
                .create_grant(&merchant_user, partners[*p], &ledgers[l])
                .await
                .map_err(err)?;
            done += 1;
            if done % 500 == 0 {
                progress("grants", done, total_grants, began_grants);
            }
        }
    }

    // Keys: sales-unit keys for the first units, accounting keys for the first partners, one
    // operator service key.
    let key_count = (size.concurrency as usize).max(1);
    let mut unit_keys = Vec::new();
    for msn in msns.iter().take(key_count) {
        let (key, secret) = issue_keys(store, &by, KeyKind::SalesUnit, KeyOwner::SalesUnit(*msn))
            .await
            .map_err(err)?;
        let subscription_key = key
            .subscription_keys
            .as_ref()
            .map(|k| k[0].clone())
            .ok_or_else(|| err("sales-unit keys came without a subscription key"))?;
        unit_keys.push(SalesUnitCreds {
            client_id: key.client_id,
            secret: secret.reveal().to_owned(),
            subscription_key,
        });
    }
    let mut accounting_keys = Vec::new();
    for p in partners.iter().take(key_count.max(2)) {
        let (key, secret) = issue_keys(store, &by, KeyKind::Accounting, KeyOwner::Partner(*p))
            .await
            .map_err(err)?;
        accounting_keys.push(BasicCreds {
            client_id: key.client_id,
            secret: secret.reveal().to_owned(),
        });
    }
    let (svc, svc_secret) = issue_keys(store, &by, KeyKind::Service, KeyOwner::Operator)
        .await
        .map_err(err)?;
    let service = BasicCreds {
        client_id: svc.client_id,
        secret: svc_secret.reveal().to_owned(),
    };

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
