//! `ledgerport demo`: a believable world in a fresh database, its credentials, and curl commands
//! that work as printed.
//!
//! Until the settlement engine exists, the history is written here directly through the store's
//! append operation: captures with their fees, refunds, and at each payout point the fees
//! retained and the payout of the whole positive balance.

use crate::ServeArgs;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use ledgerport_core::entry::{NewEntry, PayerDetails, wire_time};
use ledgerport_core::ids::{BankAccount, BusinessId, Country, LedgerDate, LedgerId, Msn, Topic};
use ledgerport_core::world::{
    DEFAULT_PAGE_SIZE, FeePlan, KeyKind, KeyOwner, Ledger, PartnerKind, PartnerState,
    PayoutFrequency, SalesUnitKind, SettlementMode, parse_cutoff,
};
use ledgerport_server::credentials::issue_keys;
use ledgerport_store::{Actor, NewLedger, NewMerchant, NewPartner, NewSalesUnit, Store};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Database file for the demo world; it is deleted and created afresh on every run.
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

fn demo_err(e: impl std::fmt::Display) -> String {
    format!("building the demo world: {e}")
}

/// What `run` prints: the keys that were issued.
struct Issued {
    unit_client_id: String,
    unit_secret: String,
    unit_sub_key: String,
    partner_client_id: String,
    partner_secret: String,
}

pub async fn run(args: DemoArgs) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = args.database.clone().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "removing the old demo database {}: {e}",
                    PathBuf::from(p).display()
                ));
            }
        }
    }
    let url = format!("sqlite://{}", args.database.display());
    let store = crate::store::open(&url).await?;
    eprintln!("building the demo world in {} ...", args.database.display());
    let issued = build_world(store.as_ref(), args.days, args.size.max(1)).await?;
    let yesterday = LedgerDate::from_date(
        TimeZone::get("Europe/Oslo")
            .unwrap_or(TimeZone::UTC)
            .to_datetime(Timestamp::now())
            .date()
            .yesterday()
            .map_err(demo_err)?,
    );
    let print = move |addr: SocketAddr| print_instructions(addr, &url, &issued, yesterday);
    if args.no_serve {
        print(args.serve.listen);
        return Ok(());
    }
    crate::run_server(store, &args.serve, print).await
}

async fn build_world(store: &dyn Store, days: u32, size: u32) -> Result<Issued, String> {
    let by = Actor::new("demo");
    let mut rng = Rng(0x005e_ed1e_d9e7);
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
            store
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
                    },
                )
                .await
                .map_err(demo_err)?;
            let units: Vec<(String, bool, String)> = view
                .units
                .iter()
                .map(|u| {
                    (
                        u.handle.to_string(),
                        u.kind == SalesUnitKind::VmNumber,
                        u.handle
                            .to_string()
                            .rsplit(':')
                            .next()
                            .unwrap_or("")
                            .to_owned(),
                    )
                })
                .collect();
            write_history(store, &view.ledger, &units, days, size, &mut rng).await?;
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
            )
            .await
            .map_err(demo_err)?;
    }
    store
        .create_grant(
            &merchant_user,
            tili.id,
            &LedgerId::parse("l", "502101").map_err(demo_err)?,
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
    Ok(Issued {
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

/// Fee of one capture: basis points rounded half up, plus the fixed part.
fn capture_fee(plan: FeePlan, amount: i64) -> i64 {
    (amount * plan.basis_points + 5_000) / 10_000 + plan.fixed_minor
}

fn is_payout_day(freq: PayoutFrequency, date: Date) -> bool {
    let next = date.tomorrow().unwrap_or(date);
    match freq {
        PayoutFrequency::Daily => true,
        PayoutFrequency::Weekly => next.weekday() == jiff::civil::Weekday::Monday,
        PayoutFrequency::Monthly => next.day() == 1,
    }
}

async fn write_history(
    store: &dyn Store,
    ledger: &Ledger,
    units: &[(String, bool, String)],
    days: u32,
    size: u32,
    rng: &mut Rng,
) -> Result<(), String> {
    let tz = TimeZone::get(&ledger.time_zone).map_err(demo_err)?;
    let now = Timestamp::now();
    let today = ledger.ledger_date_of(now).date();
    let first = today.checked_sub((days as i64).days()).map_err(demo_err)?;
    let (mut funds_balance, mut period_fees) = (0i64, 0i64);
    let mut payout_number = 2_000_001i64;
    let mut psp = 3_343_121_302i64 + i64::from(rng.range(0, 1_000_000) as i32);
    let mut day = first;
    while day <= today {
        let date = LedgerDate::from_date(day);
        let (mut funds, mut fees) = (Vec::new(), Vec::new());
        let start = DateTime::from_parts(day, ledger.cutoff);
        let count = rng.range(4, 14) * i64::from(size);
        let mut captures: Vec<(i64, String, String, String)> = Vec::new();
        let mut times = Vec::new();
        for _ in 0..count {
            let at = start
                .checked_add(rng.range(6 * 60, 20 * 60).minutes())
                .map_err(demo_err)?
                .checked_add(rng.range(0, 59_999_999).microseconds())
                .map_err(demo_err)?;
            match tz.to_timestamp(at) {
                Ok(t) if t <= now => times.push(t),
                _ => {}
            }
        }
        // Entries of a date are in time order.
        times.sort();
        for t in times {
            let (handle, vm, _) = rng.pick(units).clone();
            let amount = rng.range(50, 1500) * 100;
            psp += 1;
            let reference = format!("order-{}", psp % 100_000);
            let payer = vm.then(|| PayerDetails {
                name: (*rng.pick(PAYERS)).into(),
                message: (*rng.pick(MESSAGES)).into(),
                masked_phone_no: format!("xxxx {:04}", rng.range(0, 9999)),
            });
            let time = wire_time(t);
            funds.push(entry(
                &psp.to_string(),
                &time,
                date,
                "capture",
                &reference,
                ledger,
                amount,
                &handle,
                payer,
            ));
            let fee = capture_fee(ledger.fee_plan, amount);
            fees.push(entry(
                &psp.to_string(),
                &time,
                date,
                "capture-fee",
                &reference,
                ledger,
                -fee,
                &handle,
                None,
            ));
            funds_balance += amount;
            period_fees += fee;
            captures.push((amount, psp.to_string(), reference, time));
        }
        // Now and then a customer gets part of a payment back.
        if let Some((amount, psp_ref, reference, time)) =
            captures.first().filter(|_| rng.range(0, 3) == 0)
        {
            let refund = -(amount / 2);
            let handle = units[0].0.clone();
            funds.push(entry(
                psp_ref, time, date, "refund", reference, ledger, refund, &handle, None,
            ));
            funds_balance += refund;
        }
        if day < today && is_payout_day(ledger.payout_frequency, day) {
            // The date's last microsecond, in the ledger's zone.
            let end = tz
                .to_timestamp(DateTime::from_parts(
                    day.tomorrow().map_err(demo_err)?,
                    ledger.cutoff,
                ))
                .map_err(demo_err)?
                .checked_sub(1.microsecond())
                .map_err(demo_err)?;
            let time = wire_time(end);
            let close_ref = format!("{}-{}", ledger.ledger_id, payout_number);
            if period_fees != 0 {
                funds.push(entry(
                    &close_ref,
                    &time,
                    date,
                    "fees-retained",
                    "fees-retained",
                    ledger,
                    -period_fees,
                    "",
                    None,
                ));
                fees.push(entry(
                    &close_ref,
                    &time,
                    date,
                    "fees-retained",
                    "fees-retained",
                    ledger,
                    period_fees,
                    "",
                    None,
                ));
                funds_balance -= period_fees;
                period_fees = 0;
            }
            if funds_balance > 0 {
                let number = units[0].2.clone();
                let text = format!("Utb. {payout_number} Vippsnr {number}");
                funds.push(entry(
                    &close_ref,
                    &time,
                    date,
                    "payout-scheduled",
                    &text,
                    ledger,
                    -funds_balance,
                    "",
                    None,
                ));
                funds_balance = 0;
                payout_number += 1;
            }
        }
        store
            .append_entries(&ledger.ledger_id, Topic::Funds, funds)
            .await
            .map_err(demo_err)?;
        store
            .append_entries(&ledger.ledger_id, Topic::Fees, fees)
            .await
            .map_err(demo_err)?;
        day = day.tomorrow().map_err(demo_err)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn entry(
    psp: &str,
    time: &str,
    date: LedgerDate,
    entry_type: &str,
    reference: &str,
    ledger: &Ledger,
    amount: i64,
    handle: &str,
    payer: Option<PayerDetails>,
) -> NewEntry {
    NewEntry {
        psp_reference: psp.into(),
        time: time.into(),
        ledger_date: date,
        entry_type: entry_type.into(),
        reference: reference.into(),
        currency: ledger.currency,
        amount,
        recipient_handle: handle.into(),
        payer,
    }
}

fn print_instructions(addr: SocketAddr, url: &str, k: &Issued, yesterday: LedgerDate) {
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

More: `ledgerport --database-url {url} admin --help` (e.g. `admin grant remove --partner 1 --ledger 302322 --for-merchant 987654321`,
then the last curl answers 404 on the very next request). Stop with Ctrl-C.
"#,
        cid = k.unit_client_id,
        secret = k.unit_secret,
        sub = k.unit_sub_key,
        pid = k.partner_client_id,
        psecret = k.partner_secret,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_fees_round_half_up() {
        let plan = FeePlan {
            basis_points: 175,
            fixed_minor: 0,
        };
        assert_eq!(capture_fee(plan, 10_000), 175);
        // 0.0175 * 1234 = 21.595 -> 22
        assert_eq!(capture_fee(plan, 1234), 22);
        assert_eq!(
            capture_fee(
                FeePlan {
                    basis_points: 100,
                    fixed_minor: 100
                },
                10_000
            ),
            200
        );
    }

    #[test]
    fn payout_days_follow_the_frequency() {
        let sunday = jiff::civil::date(2024, 6, 2);
        assert!(is_payout_day(PayoutFrequency::Weekly, sunday));
        assert!(!is_payout_day(
            PayoutFrequency::Weekly,
            jiff::civil::date(2024, 6, 3)
        ));
        assert!(is_payout_day(
            PayoutFrequency::Monthly,
            jiff::civil::date(2024, 6, 30)
        ));
        assert!(!is_payout_day(
            PayoutFrequency::Monthly,
            jiff::civil::date(2024, 6, 29)
        ));
    }
}
