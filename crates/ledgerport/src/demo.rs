//! `ledgerport demo`: a believable world in a fresh database, its credentials, and curl commands
//! that work as printed.
//!
//! The history goes through the settlement engine like production payments do: the ledgers are
//! created on a manual clock set before the first day, each day's payment events (captures with
//! fees, refunds, disputes, a service fee, a big refund that leaves a balance negative and the
//! top-up that covers it) are ingested through the day in batches, each with the clock at its
//! events' time, and the clock moves on and closes the day's due periods.

use crate::ServeArgs;
use crate::replay::LedgerDates;
use anyhow::anyhow;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::entry::PayerDetails;
use ledgerport_core::ids::{BankAccount, BusinessId, Country, Currency, LedgerDate, LedgerId, Msn};
use ledgerport_core::world::{
    DEFAULT_PAGE_SIZE, FeePlan, GrantScope, KeyKind, KeyOwner, PartnerKind, PartnerState,
    PayoutFrequency, SalesUnitKind, SettlementMode, parse_cutoff,
};
use ledgerport_server::credentials::issue_keys;
use ledgerport_server::portal::auth::hash_password;
use ledgerport_store::{
    Actor, EventOutcome, NewLedger, NewMerchant, NewPartner, NewPortalUser, NewSalesUnit,
    PortalRole, Store,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// SQLite database file for the demo world; it is deleted and created afresh on every run.
    /// With `--database-url postgres://...` the demo uses that (empty) database instead.
    #[arg(
        long,
        env = "LEDGERPORT_DEMO_DATABASE",
        default_value = "ledgerport-demo.db"
    )]
    pub database: PathBuf,
    /// Days of history to create, ending today.
    #[arg(long, default_value_t = 60)]
    pub days: u32,
    /// Multiplies the number of payments per day.
    #[arg(long, default_value_t = 1)]
    pub size: u32,
    /// Build the world and print what to try, then exit without serving.
    #[arg(long)]
    pub no_serve: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// A tiny deterministic generator, so every demo world looks the same.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

const PAYERS: &[&str] = &[
    "Kari Nordmann",
    "Ola Hansen",
    "Ingrid Berg",
    "Mette Jensen",
    "Lars Nielsen",
    "Aino Virtanen",
];
const MESSAGES: &[&str] = &[
    "Takk for sist!",
    "Kaffe og bolle",
    "Medlemskap",
    "Tak for hjælpen",
    "Kiitos",
    "Loppemarked",
];

struct DemoUnit {
    msn: &'static str,
    name: &'static str,
    kind: SalesUnitKind,
    vm_number: Option<&'static str>,
}

struct DemoLedger {
    id: &'static str,
    units: &'static [&'static str],
    account: (&'static str, &'static str),
    cutoff: &'static str,
    payout: PayoutFrequency,
    fee_bp: i64,
    fee_fixed: i64,
}

struct DemoMerchant {
    scheme: &'static str,
    org: &'static str,
    name: &'static str,
    tz: &'static str,
    units: &'static [DemoUnit],
    ledgers: &'static [DemoLedger],
}

const WORLD: &[DemoMerchant] = &[
    DemoMerchant {
        scheme: "business:NO:ORG",
        org: "987654321",
        name: "ACME Fitness AS",
        tz: "Europe/Oslo",
        units: &[
            DemoUnit {
                msn: "123455",
                name: "ACME Fitness Oslo",
                kind: SalesUnitKind::Api,
                vm_number: None,
            },
            DemoUnit {
                msn: "223344",
                name: "ACME Kiosk",
                kind: SalesUnitKind::VmNumber,
                vm_number: Some("57860"),
            },
        ],
        ledgers: &[
            DemoLedger {
                id: "302321",
                units: &["123455"],
                account: ("BBAN:NO", "86011117947"),
                cutoff: "00:00",
                payout: PayoutFrequency::Daily,
                fee_bp: 175,
                fee_fixed: 0,
            },
            DemoLedger {
                id: "302322",
                units: &["223344"],
                account: ("BBAN:NO", "86011117947"),
                cutoff: "04:00",
                payout: PayoutFrequency::Weekly,
                fee_bp: 100,
                fee_fixed: 100,
            },
        ],
    },
    DemoMerchant {
        scheme: "business:DK:CVR",
        org: "12345678",
        name: "Hygge Bageri ApS",
        tz: "Europe/Copenhagen",
        units: &[
            DemoUnit {
                msn: "654321",
                name: "Hygge Bageri Webshop",
                kind: SalesUnitKind::Api,
                vm_number: None,
            },
            DemoUnit {
                msn: "654322",
                name: "Hygge Bageri Disk",
                kind: SalesUnitKind::VmNumber,
                vm_number: Some("90601"),
            },
        ],
        // A legacy ledger settling for two units: not visible through one unit's keys.
        ledgers: &[DemoLedger {
            id: "402101",
            units: &["654321", "654322"],
            account: ("BBAN:DK", "30004004001234"),
            cutoff: "00:00",
            payout: PayoutFrequency::Daily,
            fee_bp: 150,
            fee_fixed: 50,
        }],
    },
    DemoMerchant {
        scheme: "business:FI:Y-tunnus",
        org: "1234567-8",
        name: "Sauna Oy",
        tz: "Europe/Helsinki",
        units: &[DemoUnit {
            msn: "765432",
            name: "Sauna Oy Helsinki",
            kind: SalesUnitKind::Api,
            vm_number: None,
        }],
        ledgers: &[DemoLedger {
            id: "502101",
            units: &["765432"],
            account: ("BBAN:FI", "FI2112345600000785"),
            cutoff: "00:00",
            payout: PayoutFrequency::Monthly,
            fee_bp: 120,
            fee_fixed: 0,
        }],
    },
];

fn demo_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("building the demo world: {e}")
}

/// What `run` prints: the keys that were issued.
struct Issued {
    unit_client_id: String,
    unit_secret: String,
    unit_sub_key: String,
    partner_client_id: String,
    partner_secret: String,
    /// Portal users as (kind, email, password): one merchant, one partner, one operator user.
    portal_users: Vec<(&'static str, &'static str, String)>,
}

pub async fn run(args: DemoArgs, config: &crate::config::Config) -> anyhow::Result<()> {
    // On PostgreSQL (`--database-url postgres://...`) the demo builds its world in that database,
    // which must be empty; otherwise in the `--database` SQLite file, made afresh.
    let postgres = config.database_url.starts_with("postgres://")
        || config.database_url.starts_with("postgresql://");
    if !postgres {
        for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
            let mut p = args.database.clone().into_os_string();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(anyhow!(
                        "removing the old demo database {}: {e}",
                        PathBuf::from(p).display()
                    ));
                }
            }
        }
    }
    let url = if postgres {
        config.database_url.clone()
    } else {
        format!("sqlite://{}", args.database.display())
    };
    let now = Timestamp::now();
    let days = args.days.max(1);
    // History is replayed on a manual clock that starts before the first day, so the ledgers
    // exist from then on and every date is closed by the engine as its payout point passes.
    let start = now
        .checked_sub(jiff::SignedDuration::from_hours(24 * (i64::from(days) + 1)))
        .map_err(demo_err)?;
    let clock = Arc::new(ManualClock::new(start));
    let history = crate::store::open_with_clock(&url, clock.clone()).await?;
    if postgres && !history.merchants().await.map_err(demo_err)?.is_empty() {
        return Err(demo_err(
            "the PostgreSQL database is not empty; give the demo a fresh one",
        ));
    }
    eprintln!(
        "building the demo world in {} ...",
        if postgres {
            "the PostgreSQL database".to_owned()
        } else {
            args.database.display().to_string()
        }
    );
    let issued = build_world(history.as_ref(), &clock, now, days, args.size.max(1)).await?;
    drop(history);
    let store = crate::store::open(&url).await?;
    let yesterday = LedgerDate::from_date(
        TimeZone::get("Europe/Oslo")
            .unwrap_or(TimeZone::UTC)
            .to_datetime(now)
            .date()
            .yesterday()
            .map_err(demo_err)?,
    );
    // The last seven closed dates, for the statement the partner is shown how to download.
    let week = LedgerDate::from_date(
        yesterday
            .date()
            .checked_sub(jiff::Span::new().days(6))
            .map_err(demo_err)?,
    );
    let print = move |addr: SocketAddr| print_instructions(addr, &url, &issued, week, yesterday);
    if args.no_serve {
        print(config.server.listen);
        return Ok(());
    }
    crate::run_server(store, config, print).await
}

async fn build_world(
    store: &dyn Store,
    clock: &ManualClock,
    now: Timestamp,
    days: u32,
    size: u32,
) -> anyhow::Result<Issued> {
    let by = Actor::new("demo");
    let mut units: Vec<DemoPayee> = Vec::new();
    let mut ledger_ids = Vec::new();
    for m in WORLD {
        let business = BusinessId::parse("org", m.scheme, m.org).map_err(demo_err)?;
        let country = business.scheme.country();
        let merchant = store
            .create_merchant(
                &by,
                NewMerchant {
                    business,
                    name: m.name.into(),
                },
            )
            .await
            .map_err(demo_err)?;
        for u in m.units {
            let unit = store
                .create_sales_unit(
                    &by,
                    NewSalesUnit {
                        msn: Msn::parse("msn", u.msn).map_err(demo_err)?,
                        merchant_id: merchant.id,
                        name: u.name.into(),
                        kind: u.kind,
                        country,
                        vm_number: u.vm_number.map(str::to_owned),
                    },
                )
                .await
                .map_err(demo_err)?;
            units.push(DemoPayee {
                msn: unit.msn,
                vm: u.kind == SalesUnitKind::VmNumber,
                currency: country.currency(),
                captures: Vec::new(),
            });
        }
        for l in m.ledgers {
            let view = store
                .create_ledger(
                    &by,
                    NewLedger {
                        ledger_id: LedgerId::parse("ledger", l.id).map_err(demo_err)?,
                        currency: country.currency(),
                        payout_account: BankAccount::parse("account", l.account.0, l.account.1)
                            .map_err(demo_err)?,
                        owner_merchant_id: merchant.id,
                        settles_for: l
                            .units
                            .iter()
                            .map(|u| Msn::parse("msn", u))
                            .collect::<Result<_, _>>()
                            .map_err(demo_err)?,
                        time_zone: m.tz.into(),
                        cutoff: parse_cutoff("cutoff", l.cutoff).map_err(demo_err)?,
                        payout_frequency: l.payout,
                        settlement_mode: SettlementMode::Net,
                        fee_plan: FeePlan {
                            basis_points: l.fee_bp,
                            fixed_minor: l.fee_fixed,
                        },
                        page_size: DEFAULT_PAGE_SIZE,
                        created_at: None,
                    },
                )
                .await
                .map_err(demo_err)?;
            ledger_ids.push(view.ledger.ledger_id);
        }
        if country == Country::NO {
            // Merchant-level keys of the Norwegian merchant, to show the third kind of reader.
            issue_keys(
                store,
                &by,
                KeyKind::MerchantLevel,
                KeyOwner::Merchant(merchant.id),
            )
            .await
            .map_err(demo_err)?;
        }
    }
    replay_history(store, clock, now, days, size, &mut units, &ledger_ids).await?;

    let approved = |name: &str, kind: PartnerKind, email: &str| NewPartner {
        name: name.into(),
        kind,
        business: None,
        contact_email: email.into(),
    };
    let regnskap = store
        .create_partner(
            &by,
            approved(
                "Regnskap AS",
                PartnerKind::Accounting,
                "api@regnskap.example",
            ),
        )
        .await
        .map_err(demo_err)?;
    store
        .set_partner_state(&by, regnskap.id, PartnerState::Approved)
        .await
        .map_err(demo_err)?;
    let tili = store
        .create_partner(
            &by,
            approved(
                "Tilimestari Oy",
                PartnerKind::Accounting,
                "tuki@tilimestari.example",
            ),
        )
        .await
        .map_err(demo_err)?;
    store
        .set_partner_state(&by, tili.id, PartnerState::Approved)
        .await
        .map_err(demo_err)?;
    store
        .create_partner(
            &by,
            approved(
                "Nye Tall AS",
                PartnerKind::Accounting,
                "hei@nyetall.example",
            ),
        )
        .await
        .map_err(demo_err)?;
    let kassa = store
        .create_partner(
            &by,
            approved(
                "Kassa Integrasjon AS",
                PartnerKind::Integration,
                "dev@kassa.example",
            ),
        )
        .await
        .map_err(demo_err)?;
    store
        .set_partner_state(&by, kassa.id, PartnerState::Approved)
        .await
        .map_err(demo_err)?;

    let merchant_user = Actor::new("demo:merchant-user");
    for l in ["302321", "302322", "402101"] {
        store
            .create_grant(
                &merchant_user,
                regnskap.id,
                &LedgerId::parse("l", l).map_err(demo_err)?,
                &GrantScope::EVERYTHING,
            )
            .await
            .map_err(demo_err)?;
    }
    store
        .create_grant(
            &merchant_user,
            tili.id,
            &LedgerId::parse("l", "502101").map_err(demo_err)?,
            &GrantScope::EVERYTHING,
        )
        .await
        .map_err(demo_err)?;
    issue_keys(
        store,
        &by,
        KeyKind::Integration,
        KeyOwner::Partner(kassa.id),
    )
    .await
    .map_err(demo_err)?;
    issue_keys(store, &by, KeyKind::Accounting, KeyOwner::Partner(tili.id))
        .await
        .map_err(demo_err)?;
    issue_keys(store, &by, KeyKind::Service, KeyOwner::Operator)
        .await
        .map_err(demo_err)?;

    let (unit_key, unit_secret) = issue_keys(
        store,
        &by,
        KeyKind::SalesUnit,
        KeyOwner::SalesUnit(Msn::parse("msn", "123455").map_err(demo_err)?),
    )
    .await
    .map_err(demo_err)?;
    let (partner_key, partner_secret) = issue_keys(
        store,
        &by,
        KeyKind::Accounting,
        KeyOwner::Partner(regnskap.id),
    )
    .await
    .map_err(demo_err)?;

    // One portal user of each kind, with passwords made now and printed once.
    let acme = store
        .merchant_by_org("987654321")
        .await
        .map_err(demo_err)?
        .ok_or_else(|| anyhow!("the demo merchant 987654321 is missing"))?;
    let mut portal_users = vec![];
    for (kind, email, role) in [
        (
            "merchant",
            "merchant@acme.example",
            PortalRole::Merchant(acme.id),
        ),
        (
            "partner",
            "api@regnskap.example",
            PortalRole::Partner(regnskap.id),
        ),
        (
            "operator",
            "operator@ledgerport.example",
            PortalRole::Operator,
        ),
    ] {
        // Letters and digits only, so it copies cleanly from a terminal.
        let password: String = ledgerport_server::portal::csrf::new_token()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
        let password_hash = hash_password(password.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        store
            .create_portal_user(
                &by,
                NewPortalUser {
                    email: email.into(),
                    role,
                    password_hash,
                },
            )
            .await
            .map_err(demo_err)?;
        portal_users.push((kind, email, password));
    }
    Ok(Issued {
        portal_users,
        unit_sub_key: unit_key
            .subscription_keys
            .as_ref()
            .map(|k| k[0].clone())
            .unwrap_or_default(),
        unit_client_id: unit_key.client_id,
        unit_secret: unit_secret.reveal().to_owned(),
        partner_client_id: partner_key.client_id,
        partner_secret: partner_secret.reveal().to_owned(),
    })
}

/// A sales unit that gets paid in the demo, and its captures so far (for refunds and disputes).
struct DemoPayee {
    msn: Msn,
    vm: bool,
    currency: Currency,
    captures: Vec<(String, i64)>,
}

/// Feeds `days` of payment events to the engine, a day at a time, closing each day's due
/// periods as the clock passes them, the way a running server would.
async fn replay_history(
    store: &dyn Store,
    clock: &ManualClock,
    now: Timestamp,
    days: u32,
    size: u32,
    payees: &mut [DemoPayee],
    ledgers: &[LedgerId],
) -> anyhow::Result<()> {
    let views: Vec<_> = store
        .ledgers()
        .await
        .map_err(demo_err)?
        .into_iter()
        .map(|v| v.ledger)
        .filter(|l| ledgers.contains(&l.ledger_id))
        .collect();
    let dates = LedgerDates::new(&views);
    let mut rng = Rng(0x005e_ed1e_d9e7);
    let mut psp = 3_343_121_302i64;
    let mut event_no = 0u64;
    // Days run from UTC midnight. Payments happen 06:00–20:00 UTC, inside the same local date in
    // Oslo, Copenhagen and Helsinki, and arrive through the day (see `day_batches`); closing
    // runs at 05:00 and 23:30 UTC, after every cutoff (00:00 or 04:00 local) of the night
    // before, so each date is closed before the next date's payments arrive and every payout is
    // its date's last entry with nothing after it.
    let today = TimeZone::UTC.to_datetime(now).date();
    let (mut accepted, mut rejected) = (0usize, 0usize);
    for day in 0..=days {
        let date = today
            .checked_sub(jiff::Span::new().days(i64::from(days - day)))
            .map_err(demo_err)?;
        let day_start = TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map_err(demo_err)?;
        let hours = |h: i64| {
            day_start
                .checked_add(jiff::SignedDuration::from_mins(h))
                .map_err(demo_err)
        };
        let morning = hours(5 * 60)?.min(now);
        clock.set(morning);
        for l in ledgers {
            store.close_due(l, morning).await.map_err(demo_err)?;
        }
        let mut events = Vec::new();
        for (i, p) in payees.iter_mut().enumerate() {
            let count = rng.range(3, 12) * i64::from(size);
            let mut times: Vec<Timestamp> = (0..count)
                .filter_map(|_| {
                    day_start
                        .checked_add(jiff::SignedDuration::from_secs(
                            rng.range(6 * 3600, 20 * 3600),
                        ))
                        .ok()
                })
                .filter(|t| *t <= now)
                .collect();
            times.sort();
            for t in times {
                psp += 1;
                event_no += 1;
                let amount = rng.range(50, 1500) * 100;
                let payer = p.vm.then(|| PayerDetails {
                    name: (*rng.pick(PAYERS)).into(),
                    message: (*rng.pick(MESSAGES)).into(),
                    masked_phone_no: format!("xxxx {:04}", rng.range(0, 9999)),
                });
                events.push(demo_event(
                    event_no,
                    EventKind::Capture,
                    p,
                    &psp.to_string(),
                    amount,
                    t,
                    payer,
                ));
                p.captures.push((psp.to_string(), amount));
            }
            // Now and then a customer gets money back, a card payment is disputed, a service
            // fee is charged; once a big refund drives a balance negative and is topped up.
            let Some(last) = events.last().map(|e: &PaymentEvent| e.time) else {
                continue;
            };
            let later = |mins: i64| {
                last.checked_add(jiff::SignedDuration::from_mins(mins))
                    .ok()
                    .filter(|t| *t <= now)
            };
            if let (Some((ref_psp, amount)), Some(t)) = (p.captures.first().cloned(), later(3))
                && rng.range(0, 2) == 0
            {
                event_no += 1;
                events.push(demo_event(
                    event_no,
                    EventKind::Refund,
                    p,
                    &ref_psp,
                    amount / 2,
                    t,
                    None,
                ));
                p.captures[0].1 -= amount / 2;
            }
            if !p.vm
                && rng.range(0, 9) == 0
                && let (Some((d_psp, amount)), Some(t)) = (p.captures.last().cloned(), later(4))
            {
                event_no += 1;
                events.push(demo_event(
                    event_no,
                    EventKind::DisputeRetained,
                    p,
                    &d_psp,
                    amount,
                    t,
                    None,
                ));
                if let Some(t2) = later(6) {
                    event_no += 1;
                    events.push(demo_event(
                        event_no,
                        EventKind::DisputeReturned,
                        p,
                        &d_psp,
                        amount,
                        t2,
                        None,
                    ));
                }
            }
            if day == days / 2
                && i == 0
                && let Some(t) = later(5)
            {
                // Every capture of the day refunded in full: after the day's fees are
                // retained, the balance is negative and nothing is paid out.
                for (c_psp, amount) in p.captures.clone() {
                    event_no += 1;
                    events.push(demo_event(
                        event_no,
                        EventKind::Refund,
                        p,
                        &c_psp,
                        amount,
                        t,
                        None,
                    ));
                }
                if let Some(t2) = t
                    .checked_add(jiff::SignedDuration::from_mins(1))
                    .ok()
                    .filter(|x| *x <= now)
                {
                    event_no += 1;
                    events.push(demo_event(
                        event_no,
                        EventKind::ServiceFee,
                        p,
                        &format!("svc-{event_no}"),
                        29_900,
                        t2,
                        None,
                    ));
                }
            }
            if day == days / 2 + 1
                && i == 0
                && let Some(t) = day_start
                    .checked_add(jiff::SignedDuration::from_hours(9))
                    .ok()
                    .filter(|x| *x <= now)
            {
                event_no += 1;
                events.push(demo_event(
                    event_no,
                    EventKind::TopUp,
                    p,
                    &format!("topup-{event_no}"),
                    50_000,
                    t,
                    None,
                ));
            }
            // Captures are refunded at most once each in this story.
            p.captures.retain(|_| false);
        }
        // As a payment system would: the day's events arrive in batches through the day, each
        // at its last event's time and never across a ledger's cutoff, so every event is booked
        // on its own ledger date before that date closes.
        events.sort_by_key(|e| e.time);
        for batch in day_batches(events, &dates) {
            let Some(at) = batch.last().map(|e| e.time) else {
                continue;
            };
            clock.set(at);
            for o in store.ingest_events(batch, at).await.map_err(demo_err)? {
                match o {
                    EventOutcome::Accepted { .. } => accepted += 1,
                    EventOutcome::Rejected {
                        event_id,
                        rejection,
                    } => {
                        rejected += 1;
                        tracing::debug!(%event_id, %rejection, "demo event rejected");
                    }
                }
            }
        }
        let day_end = hours(23 * 60 + 30)?.min(now);
        clock.set(day_end);
        for l in ledgers {
            store.close_due(l, day_end).await.map_err(demo_err)?;
        }
        eprint!("\r  {date}  day {day:>3}/{days}: {accepted} events accepted, {rejected} rejected");
    }
    eprintln!();
    Ok(())
}

/// Cuts a day's events (in time order) into batches of at most an hour's events that lie on
/// one ledger date of every ledger.
fn day_batches(events: Vec<PaymentEvent>, dates: &LedgerDates) -> Vec<Vec<PaymentEvent>> {
    let mut batches: Vec<Vec<PaymentEvent>> = Vec::new();
    let mut first: Option<(Timestamp, Vec<ledgerport_core::ids::LedgerDate>)> = None;
    for e in events {
        let on = dates.at(e.time);
        let same = first.as_ref().is_some_and(|(t, d)| {
            *d == on && e.time.duration_since(*t) < jiff::SignedDuration::from_hours(1)
        });
        match batches.last_mut() {
            Some(b) if same => b.push(e),
            _ => {
                first = Some((e.time, on));
                batches.push(vec![e]);
            }
        }
    }
    batches
}

fn demo_event(
    n: u64,
    kind: EventKind,
    p: &DemoPayee,
    psp: &str,
    amount: i64,
    time: Timestamp,
    payer: Option<PayerDetails>,
) -> PaymentEvent {
    PaymentEvent {
        event_id: format!("demo-{n}"),
        kind,
        msn: p.msn,
        psp_reference: psp.into(),
        capture_psp_reference: None,
        reference: format!(
            "order-{}",
            psp.chars()
                .rev()
                .take(5)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        ),
        amount,
        currency: p.currency,
        time,
        topic: None,
        payer,
    }
}

fn print_instructions(
    addr: SocketAddr,
    url: &str,
    k: &Issued,
    week: LedgerDate,
    yesterday: LedgerDate,
) {
    let base = format!("http://{addr}");
    let extract = r#"sed -E 's/.*"access_token":"([^"]+)".*/\1/'"#;
    println!(
        r#"
Ledgerport demo: {base}  (database {url})

Sales-unit keys of ACME Fitness Oslo (MSN 123455, ledger 302321). The secret is shown only now.
  client_id:                 {cid}
  client_secret:             {secret}
  Ocp-Apim-Subscription-Key: {sub}

Try, in another shell:
  TOKEN=$(curl -s -X POST {base}/accesstoken/get -H 'client_id: {cid}' -H 'client_secret: {secret}' -H 'Ocp-Apim-Subscription-Key: {sub}' | {extract})
  curl -s {base}/settlement/v1/ledgers -H "Authorization: Bearer $TOKEN" -H 'Ocp-Apim-Subscription-Key: {sub}'
  curl -s {base}/report/v2/ledgers/302321/funds/dates/{yesterday} -H "Authorization: Bearer $TOKEN" -H 'Ocp-Apim-Subscription-Key: {sub}'
  curl -s {base}/report/v2/ledgers/302321/fees/feed -H "Authorization: Bearer $TOKEN" -H 'Ocp-Apim-Subscription-Key: {sub}'

Accounting keys of the partner Regnskap AS (granted ledgers 302321, 302322 and 402101):
  client_id:     {pid}
  client_secret: {psecret}

  PTOKEN=$(curl -s -X POST {base}/miami/v1/token -u '{pid}:{psecret}' -d grant_type=client_credentials | {extract})
  curl -s {base}/settlement/v1/ledgers -H "Authorization: Bearer $PTOKEN"
  curl -s '{base}/report/v2/ledgers/302322/funds/feed?includeGDPRSensitiveData=true' -H "Authorization: Bearer $PTOKEN"
  curl -s {base}/ledgerport/v1/ledgers/302321/funds/dates/{yesterday}/proof -H "Authorization: Bearer $PTOKEN"
  curl -s '{base}/ledgerport/v1/ledgers/302321/statements/camt053?from={week}&to={yesterday}' -H "Authorization: Bearer $PTOKEN" -o camt053-302321.xml

The last two: the completeness proof of a closed date, and a week of closed dates as a camt.053
bank statement. To check every closed date of the ledger against its proof, as a partner would:
  cargo run -q -- check-report --base-url {base} --client-id {pid} --client-secret {psecret} --ledger 302321

Portal (a browser, no JavaScript needed): {base}/portal/sign-in
{portal}
More, from the source directory: `cargo run -- --database-url {url} admin --help` (with an installed
binary: `ledgerport --database-url {url} admin --help`), e.g. `admin grant remove --partner 1 --ledger 302322
--for-merchant 987654321`, then the last curl answers 404 on the very next request. Stop with Ctrl-C.
"#,
        cid = k.unit_client_id,
        secret = k.unit_secret,
        sub = k.unit_sub_key,
        pid = k.partner_client_id,
        psecret = k.partner_secret,
        portal = k
            .portal_users
            .iter()
            .map(|(kind, email, pw)| format!("  {kind:<9} {email:<28} password {pw}\n"))
            .collect::<String>(),
    );
}
