//! Merchants, sales units, ledgers, partners and grants.

use super::{
    Output, actor, fields, find_ledger, find_merchant, find_partner, non_empty, parse_business,
    parsed, short_time, store_err, store_err_on, table, time,
};
use anyhow::anyhow;
use clap::Subcommand;
use jiff::Timestamp;
use ledgerport_core::ids::{BankAccount, Country, Currency, LedgerDate, LedgerId, Msn};
use ledgerport_core::world::{
    DEFAULT_PAGE_SIZE, FeePlan, Grant, GrantScope, MAX_PAGE_SIZE, Merchant, Partner, PartnerKind,
    PartnerState, PayoutFrequency, RowId, SalesUnit, SalesUnitKind, SettlementMode, Topics,
    parse_cutoff, parse_time_zone,
};
use ledgerport_store::{
    Actor, LedgerView, NewLedger, NewMerchant, NewPartner, NewSalesUnit, Store, StoreError,
};
use serde_json::{Value, json};
use std::collections::HashMap;

// ---------------------------------------------------------------- merchants

#[derive(Subcommand)]
pub enum MerchantCmd {
    /// Create a merchant.
    Create {
        /// Organisation-number scheme: business:NO:ORG, business:DK:CVR or business:FI:Y-tunnus.
        #[arg(long)]
        scheme: String,
        /// Organisation number: 9 digits (NO), 8 digits (DK) or 1234567-8 (FI).
        #[arg(long)]
        org_id: String,
        /// The merchant's name, e.g. "ACME AS".
        #[arg(long)]
        name: String,
    },
    /// List all merchants.
    List,
    /// Show one merchant with its sales units and ledgers.
    Show {
        /// The merchant's organisation number.
        #[arg(value_name = "ORG-ID")]
        org_id: String,
    },
}

pub(super) async fn merchant(store: &dyn Store, cmd: MerchantCmd) -> anyhow::Result<Output> {
    match cmd {
        MerchantCmd::Create {
            scheme,
            org_id,
            name,
        } => {
            let business = parse_business("--scheme", "--org-id", &scheme, &org_id)?;
            let name = non_empty("--name", &name)?;
            if let Some(m) = store
                .merchant_by_org(&business.id)
                .await
                .map_err(store_err)?
            {
                return Err(anyhow!(
                    "--org-id: merchant {} ({}) already exists",
                    m.business,
                    m.name
                ));
            }
            let m = store
                .create_merchant(&actor(), NewMerchant { business, name })
                .await
                .map_err(store_err_on("--org-id"))?;
            Ok(Output::new(
                format!("created merchant\n{}", merchant_text(&m)),
                merchant_json(&m),
            ))
        }
        MerchantCmd::List => {
            let ms = store.merchants().await.map_err(store_err)?;
            let rows: Vec<Vec<String>> = ms
                .iter()
                .map(|m| {
                    vec![
                        m.business.id.clone(),
                        m.business.scheme.as_str().into(),
                        m.name.clone(),
                    ]
                })
                .collect();
            Ok(Output::new(
                table(&["ORG-ID", "SCHEME", "NAME"], &rows),
                Value::Array(ms.iter().map(merchant_json).collect()),
            ))
        }
        MerchantCmd::Show { org_id } => {
            let m = find_merchant(store, "ORG-ID", &org_id).await?;
            let units = store.sales_units(Some(m.id)).await.map_err(store_err)?;
            let ledgers: Vec<LedgerView> = store
                .ledgers()
                .await
                .map_err(store_err)?
                .into_iter()
                .filter(|l| l.ledger.owner_merchant_id == m.id)
                .collect();
            let settled_by = settled_by(&ledgers);
            let text = format!(
                "{}\nsales units:\n{}\nledgers:\n{}",
                merchant_text(&m),
                units_table(&units, Some(&settled_by), None),
                ledgers_table(&ledgers)
            );
            let mut j = merchant_json(&m);
            j["sales_units"] = units.iter().map(|u| unit_json(u, &m.business.id)).collect();
            j["ledgers"] = ledgers.iter().map(ledger_json).collect();
            Ok(Output::new(text, j))
        }
    }
}

fn merchant_json(m: &Merchant) -> Value {
    json!({
        "id": m.id, "scheme": m.business.scheme.as_str(), "org_id": m.business.id, "name": m.name,
        "country": m.business.scheme.country().as_str(), "created_at": time(m.created_at),
    })
}

fn merchant_text(m: &Merchant) -> String {
    fields(&[
        ("organisation", m.business.to_string()),
        ("name", m.name.clone()),
        ("created", short_time(&time(m.created_at))),
    ])
}

// ---------------------------------------------------------------- sales units

#[derive(Subcommand)]
pub enum SalesUnitCmd {
    /// Create a sales unit of a merchant.
    Create {
        /// Merchant serial number, 5 to 7 digits.
        #[arg(long)]
        msn: String,
        /// Organisation number of the merchant the unit belongs to.
        #[arg(long, value_name = "ORG-ID")]
        merchant: String,
        /// The unit's name, e.g. "ACME Oslo".
        #[arg(long)]
        name: String,
        /// api (ePayment / recurring; has API keys) or vm-number (Vippsnummer / MyShop; no keys).
        #[arg(long)]
        kind: String,
        /// NO, DK or FI [default: the merchant's country].
        #[arg(long)]
        country: Option<String>,
        /// The Vippsnummer of a vm-number unit (its handle becomes <country>:<number>).
        #[arg(long)]
        vm_number: Option<String>,
    },
    /// List sales units.
    List {
        /// Only the units of this merchant (organisation number).
        #[arg(long, value_name = "ORG-ID")]
        merchant: Option<String>,
    },
    /// Show one sales unit.
    Show {
        /// The unit's merchant serial number.
        #[arg(value_name = "MSN")]
        msn: String,
    },
}

pub(super) async fn sales_unit(store: &dyn Store, cmd: SalesUnitCmd) -> anyhow::Result<Output> {
    match cmd {
        SalesUnitCmd::Create {
            msn,
            merchant,
            name,
            kind,
            country,
            vm_number,
        } => {
            let msn = parsed(Msn::parse("--msn", &msn))?;
            let name = non_empty("--name", &name)?;
            let kind = parsed(SalesUnitKind::parse("--kind", &kind))?;
            let m = find_merchant(store, "--merchant", &merchant).await?;
            let country = match country {
                Some(c) => parsed(Country::parse("--country", &c))?,
                None => m.business.scheme.country(),
            };
            let vm_number = match (kind, vm_number) {
                (SalesUnitKind::Api, Some(_)) => {
                    return Err(anyhow!("--vm-number: an api sales unit has no Vippsnummer"));
                }
                (SalesUnitKind::VmNumber, None) => {
                    return Err(anyhow!(
                        "--vm-number: a vm-number sales unit needs its Vippsnummer"
                    ));
                }
                (SalesUnitKind::VmNumber, Some(n))
                    if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    return Err(anyhow!("--vm-number: must be 1 to 10 digits"));
                }
                (_, n) => n,
            };
            if let Some(u) = store.sales_unit(msn).await.map_err(store_err)? {
                return Err(anyhow!(
                    "--msn: sales unit {msn} already exists ({})",
                    u.name
                ));
            }
            if let Some(n) = &vm_number {
                let handle = format!("{country}:{n}");
                let all = store.sales_units(None).await.map_err(store_err)?;
                if let Some(u) = all.iter().find(|u| u.handle.to_string() == handle) {
                    return Err(anyhow!(
                        "--vm-number: {handle} already belongs to sales unit {}",
                        u.msn
                    ));
                }
            }
            let new = NewSalesUnit {
                msn,
                merchant_id: m.id,
                name,
                kind,
                country,
                vm_number,
            };
            let u = store
                .create_sales_unit(&actor(), new)
                .await
                .map_err(store_err_on("--msn"))?;
            Ok(Output::new(
                format!("created sales unit\n{}", unit_text(&u, &m, None)),
                unit_json(&u, &m.business.id),
            ))
        }
        SalesUnitCmd::List { merchant } => {
            let only = match merchant {
                Some(org) => Some(find_merchant(store, "--merchant", &org).await?.id),
                None => None,
            };
            let units = store.sales_units(only).await.map_err(store_err)?;
            let orgs = org_ids(store).await?;
            let settled_by = settled_by(&store.ledgers().await.map_err(store_err)?);
            let json = units
                .iter()
                .map(|u| unit_json(u, org_of(&orgs, u.merchant_id)))
                .collect();
            Ok(Output::new(
                units_table(&units, Some(&settled_by), Some(&orgs)),
                json,
            ))
        }
        SalesUnitCmd::Show { msn } => {
            let msn = parsed(Msn::parse("MSN", &msn))?;
            let u = store
                .sales_unit(msn)
                .await
                .map_err(store_err)?
                .ok_or_else(|| anyhow!("MSN: no sales unit {msn}"))?;
            let m = store
                .merchant(u.merchant_id)
                .await
                .map_err(store_err)?
                .ok_or_else(|| anyhow!("sales unit {msn} has no merchant {}", u.merchant_id))?;
            let ledgers = store.ledgers().await.map_err(store_err)?;
            let ledger = settled_by(&ledgers).remove(&msn);
            let mut j = unit_json(&u, &m.business.id);
            j["ledger_id"] = json!(ledger);
            Ok(Output::new(unit_text(&u, &m, ledger.as_deref()), j))
        }
    }
}

fn unit_json(u: &SalesUnit, org_id: &str) -> Value {
    json!({
        "msn": u.msn, "merchant_org_id": org_id, "name": u.name, "kind": u.kind.as_str(),
        "country": u.country.as_str(), "handle": u.handle.to_string(), "created_at": time(u.created_at),
    })
}

fn unit_text(u: &SalesUnit, m: &Merchant, ledger: Option<&str>) -> String {
    fields(&[
        ("msn", u.msn.to_string()),
        ("name", u.name.clone()),
        ("kind", u.kind.as_str().into()),
        ("handle", u.handle.to_string()),
        ("merchant", format!("{} ({})", m.business, m.name)),
        ("ledger", ledger.unwrap_or("(none yet)").into()),
        ("created", short_time(&time(u.created_at))),
    ])
}

/// Sales units as a table, with the ledger settling each and its merchant when given.
fn units_table(
    units: &[SalesUnit],
    settled_by: Option<&HashMap<Msn, String>>,
    orgs: Option<&HashMap<RowId, String>>,
) -> String {
    let mut headers = vec!["MSN", "KIND", "HANDLE"];
    headers.extend(orgs.map(|_| "MERCHANT"));
    headers.extend(settled_by.map(|_| "LEDGER"));
    headers.push("NAME");
    let rows: Vec<Vec<String>> = units
        .iter()
        .map(|u| {
            let mut row = vec![
                u.msn.to_string(),
                u.kind.as_str().into(),
                u.handle.to_string(),
            ];
            row.extend(orgs.map(|o| org_of(o, u.merchant_id).to_owned()));
            row.extend(settled_by.map(|s| s.get(&u.msn).cloned().unwrap_or_else(|| "-".into())));
            row.push(u.name.clone());
            row
        })
        .collect();
    table(&headers, &rows)
}

/// Which ledger settles for each sales unit.
fn settled_by(ledgers: &[LedgerView]) -> HashMap<Msn, String> {
    ledgers
        .iter()
        .flat_map(|l| {
            l.units
                .iter()
                .map(|u| (u.msn, l.ledger.ledger_id.to_string()))
        })
        .collect()
}

async fn org_ids(store: &dyn Store) -> anyhow::Result<HashMap<RowId, String>> {
    Ok(store
        .merchants()
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|m| (m.id, m.business.id))
        .collect())
}

fn org_of(orgs: &HashMap<RowId, String>, id: RowId) -> &str {
    orgs.get(&id).map(String::as_str).unwrap_or("?")
}

// ---------------------------------------------------------------- ledgers

#[derive(Subcommand)]
pub enum LedgerCmd {
    /// Create a ledger that settles one or more sales units of a merchant.
    Create(Box<LedgerCreate>),
    /// List all ledgers.
    List,
    /// Show one ledger with its sales units and grants.
    Show {
        /// The ledger's id.
        #[arg(value_name = "LEDGER-ID")]
        ledger_id: String,
    },
}

#[derive(clap::Args)]
pub struct LedgerCreate {
    /// The ledger's id: 1 to 20 digits, stable forever.
    #[arg(long)]
    ledger_id: String,
    /// Organisation number of the merchant that owns the ledger.
    #[arg(long, value_name = "ORG-ID")]
    merchant: String,
    /// MSNs of the merchant's sales units the ledger settles for, comma-separated.
    #[arg(long, value_name = "MSN,...", value_delimiter = ',', required = true)]
    units: Vec<String>,
    /// NOK, DKK or EUR [default: the merchant's country's currency].
    #[arg(long)]
    currency: Option<String>,
    /// Payout account scheme: BBAN:NO, BBAN:DK, BBAN:FI or IBAN.
    #[arg(long)]
    account_scheme: String,
    /// Payout account number, 4 to 34 letters or digits.
    #[arg(long)]
    account: String,
    /// Time zone of ledger dates.
    #[arg(long, default_value = "Europe/Oslo")]
    time_zone: String,
    /// Local time of day a ledger date starts, HH:MM.
    #[arg(long, default_value = "00:00")]
    cutoff: String,
    /// Payout frequency: daily, weekly (Mondays) or monthly (the 1st).
    #[arg(long, default_value = "daily")]
    payout: String,
    /// Settlement mode: net (fees retained from funds) or gross (fees invoiced monthly).
    #[arg(long, default_value = "net")]
    settlement: String,
    /// Capture fee in basis points (175 = 1.75 %).
    #[arg(long, default_value_t = 0)]
    fee_basis_points: i64,
    /// Fixed capture fee in minor units (øre, cents).
    #[arg(long, default_value_t = 0)]
    fee_fixed: i64,
    /// Report API page size for this ledger's entries, 1 to 10000.
    #[arg(long, default_value_t = DEFAULT_PAGE_SIZE)]
    page_size: u32,
    /// First ledger date, YYYY-MM-DD, for a ledger whose history starts in the past (to import
    /// it with `import --replay`): the ledger counts as created at that date's cutoff in its
    /// time zone. Not after today [default: today].
    #[arg(long, value_name = "YYYY-MM-DD")]
    opened_on: Option<String>,
}

pub(super) async fn ledger(store: &dyn Store, cmd: LedgerCmd) -> anyhow::Result<Output> {
    match cmd {
        LedgerCmd::Create(a) => create_ledger(store, *a).await,
        LedgerCmd::List => {
            let ls = store.ledgers().await.map_err(store_err)?;
            Ok(Output::new(
                ledgers_table(&ls),
                ls.iter().map(ledger_json).collect(),
            ))
        }
        LedgerCmd::Show { ledger_id } => {
            let l = find_ledger(store, "LEDGER-ID", &ledger_id).await?;
            let grants = store
                .grants(None, Some(&l.ledger.ledger_id))
                .await
                .map_err(store_err)?;
            let partners = partners_by_id(store).await?;
            let mut text = ledger_text(&l);
            text.push_str(&format!(
                "\nsales units:\n{}",
                units_table(&l.units, None, None)
            ));
            text.push_str(&format!("\ngrants:\n{}", grants_table(&grants, &partners)));
            let mut j = ledger_json(&l);
            j["units"] = l.units.iter().map(|u| unit_json(u, &l.owner.id)).collect();
            j["grants"] = grants.iter().map(|g| grant_json(g, &partners)).collect();
            Ok(Output::new(text, j))
        }
    }
}

async fn create_ledger(store: &dyn Store, a: LedgerCreate) -> anyhow::Result<Output> {
    let ledger_id = parsed(LedgerId::parse("--ledger-id", &a.ledger_id))?;
    let m = find_merchant(store, "--merchant", &a.merchant).await?;
    let mut settles_for = Vec::new();
    for s in &a.units {
        let msn = parsed(Msn::parse("--units", s.trim()))?;
        if settles_for.contains(&msn) {
            return Err(anyhow!("--units: {msn} is listed twice"));
        }
        settles_for.push(msn);
    }
    let currency = match &a.currency {
        Some(c) => parsed(Currency::parse("--currency", c))?,
        None => m.business.scheme.country().currency(),
    };
    // The scheme first, so a bad scheme is blamed on --account-scheme.
    parsed(BankAccount::parse(
        "--account-scheme",
        &a.account_scheme,
        "0000",
    ))?;
    let payout_account = parsed(BankAccount::parse(
        "--account",
        &a.account_scheme,
        &a.account,
    ))?;
    let time_zone = parsed(parse_time_zone("--time-zone", &a.time_zone))?;
    let cutoff = parsed(parse_cutoff("--cutoff", &a.cutoff))?;
    let payout_frequency = parsed(PayoutFrequency::parse("--payout", &a.payout))?;
    let settlement_mode = parsed(SettlementMode::parse("--settlement", &a.settlement))?;
    if !(0..=10_000).contains(&a.fee_basis_points) {
        return Err(anyhow!("--fee-basis-points: must be 0 to 10000"));
    }
    if a.fee_fixed < 0 {
        return Err(anyhow!("--fee-fixed: must not be negative"));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&a.page_size) {
        return Err(anyhow!("--page-size: must be 1 to {MAX_PAGE_SIZE}"));
    }
    let created_at = match &a.opened_on {
        None => None,
        Some(d) => Some(opening_time(d, &time_zone, cutoff)?),
    };
    if store.ledger(&ledger_id).await.map_err(store_err)?.is_some() {
        return Err(anyhow!("--ledger-id: ledger {ledger_id} already exists"));
    }
    let existing = settled_by(&store.ledgers().await.map_err(store_err)?);
    for msn in &settles_for {
        let u = store
            .sales_unit(*msn)
            .await
            .map_err(store_err)?
            .ok_or_else(|| anyhow!("--units: no sales unit {msn}"))?;
        if u.merchant_id != m.id {
            return Err(anyhow!(
                "--units: sales unit {msn} belongs to another merchant than {}",
                m.business.id
            ));
        }
        if let Some(l) = existing.get(msn) {
            return Err(anyhow!(
                "--units: sales unit {msn} is already settled by ledger {l}"
            ));
        }
    }
    let new = NewLedger {
        ledger_id,
        currency,
        payout_account,
        owner_merchant_id: m.id,
        settles_for,
        time_zone,
        cutoff,
        payout_frequency,
        settlement_mode,
        fee_plan: FeePlan {
            basis_points: a.fee_basis_points,
            fixed_minor: a.fee_fixed,
        },
        page_size: a.page_size,
        created_at,
    };
    let l = store
        .create_ledger(&actor(), new)
        .await
        .map_err(store_err_on("--units"))?;
    Ok(Output::new(
        format!("created ledger\n{}", ledger_text(&l)),
        ledger_json(&l),
    ))
}

/// When a ledger opened on `date` starts: the date's cutoff in the ledger's time zone.
fn opening_time(
    date: &str,
    time_zone: &str,
    cutoff: jiff::civil::Time,
) -> anyhow::Result<Timestamp> {
    let date = parsed(LedgerDate::parse("--opened-on", date))?;
    let tz = jiff::tz::TimeZone::get(time_zone).map_err(|e| anyhow!("--time-zone: {e}"))?;
    let start = tz
        .to_timestamp(date.date().to_datetime(cutoff))
        .map_err(|e| anyhow!("--opened-on: {e}"))?;
    if start > Timestamp::now() {
        return Err(anyhow!(
            "--opened-on: {date} has not begun yet in {time_zone} (a ledger's history cannot start in the future)"
        ));
    }
    Ok(start)
}

fn cutoff_str(l: &LedgerView) -> String {
    format!(
        "{:02}:{:02}",
        l.ledger.cutoff.hour(),
        l.ledger.cutoff.minute()
    )
}

fn handles(l: &LedgerView) -> Vec<String> {
    l.units.iter().map(|u| u.handle.to_string()).collect()
}

fn ledger_json(l: &LedgerView) -> Value {
    let g = &l.ledger;
    json!({
        "ledger_id": g.ledger_id, "currency": g.currency.as_str(),
        "owner": {"scheme": l.owner.scheme.as_str(), "id": l.owner.id},
        "payout_bank_account": {"scheme": g.payout_account.scheme, "id": g.payout_account.id},
        "settles_for_recipient_handles": handles(l),
        "time_zone": g.time_zone, "cutoff": cutoff_str(l),
        "payout_frequency": g.payout_frequency.as_str(), "settlement_mode": g.settlement_mode.as_str(),
        "fee_basis_points": g.fee_plan.basis_points, "fee_fixed_minor": g.fee_plan.fixed_minor,
        "page_size": g.page_size, "created_at": time(g.created_at),
    })
}

fn ledger_text(l: &LedgerView) -> String {
    let g = &l.ledger;
    fields(&[
        ("ledger", g.ledger_id.to_string()),
        ("owner", l.owner.to_string()),
        ("currency", g.currency.as_str().into()),
        (
            "payout account",
            format!("{} {}", g.payout_account.scheme, g.payout_account.id),
        ),
        ("settles for", handles(l).join(", ")),
        ("time zone", g.time_zone.clone()),
        ("cutoff", cutoff_str(l)),
        ("payout", g.payout_frequency.as_str().into()),
        ("settlement", g.settlement_mode.as_str().into()),
        (
            "fees",
            format!(
                "{} bp + {} minor units",
                g.fee_plan.basis_points, g.fee_plan.fixed_minor
            ),
        ),
        ("page size", g.page_size.to_string()),
        ("created", short_time(&time(g.created_at))),
    ])
}

fn ledgers_table(ls: &[LedgerView]) -> String {
    let rows: Vec<Vec<String>> = ls
        .iter()
        .map(|l| {
            vec![
                l.ledger.ledger_id.to_string(),
                l.ledger.currency.as_str().into(),
                l.owner.id.clone(),
                handles(l).join(","),
                format!(
                    "{}/{}",
                    l.ledger.payout_frequency.as_str(),
                    l.ledger.settlement_mode.as_str()
                ),
                format!(
                    "{} {}",
                    l.ledger.payout_account.scheme, l.ledger.payout_account.id
                ),
            ]
        })
        .collect();
    table(
        &[
            "LEDGER",
            "CURRENCY",
            "OWNER",
            "SETTLES FOR",
            "PAYOUT",
            "ACCOUNT",
        ],
        &rows,
    )
}

// ---------------------------------------------------------------- partners

#[derive(Subcommand)]
pub enum PartnerCmd {
    /// Register a partner; it starts as `applied` and must be approved before it gets keys.
    Create {
        /// The partner's name, e.g. "Regnskap AS".
        #[arg(long)]
        name: String,
        /// accounting (reads granted ledgers), integration or management (never read the Report API).
        #[arg(long)]
        kind: String,
        /// Contact email address.
        #[arg(long)]
        email: String,
        /// Organisation-number scheme of the partner, if it has one (needs --org-id).
        #[arg(long, requires = "org_id")]
        scheme: Option<String>,
        /// Organisation number of the partner (needs --scheme).
        #[arg(long, requires = "scheme")]
        org_id: Option<String>,
    },
    /// List all partners.
    List,
    /// Show one partner with its keys and grants.
    Show {
        /// The partner's id.
        #[arg(value_name = "ID")]
        id: RowId,
    },
    /// Approve an applied partner.
    Approve {
        /// The partner's id.
        #[arg(value_name = "ID")]
        id: RowId,
    },
    /// Reject an applied partner.
    Reject {
        /// The partner's id.
        #[arg(value_name = "ID")]
        id: RowId,
    },
    /// Suspend an approved partner: its keys read nothing from the next request on.
    Suspend {
        /// The partner's id.
        #[arg(value_name = "ID")]
        id: RowId,
    },
    /// Reinstate a suspended partner (back to approved).
    Reinstate {
        /// The partner's id.
        #[arg(value_name = "ID")]
        id: RowId,
    },
}

pub(super) async fn partner(store: &dyn Store, cmd: PartnerCmd) -> anyhow::Result<Output> {
    let (id, change) = match cmd {
        PartnerCmd::Create {
            name,
            kind,
            email,
            scheme,
            org_id,
        } => {
            let name = non_empty("--name", &name)?;
            let kind = parsed(PartnerKind::parse("--kind", &kind))?;
            let email = email.trim().to_owned();
            let ok = email
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.contains('@'))
                && !email.chars().any(char::is_whitespace);
            if !ok {
                return Err(anyhow!("--email: must be an email address such as a@b.no"));
            }
            let business = match (scheme, org_id) {
                (Some(s), Some(o)) => Some(parse_business("--scheme", "--org-id", &s, &o)?),
                _ => None,
            };
            let p = store
                .create_partner(
                    &actor(),
                    NewPartner {
                        name,
                        kind,
                        business,
                        contact_email: email,
                    },
                )
                .await
                .map_err(store_err)?;
            let text = format!(
                "created partner (approve it with `admin partner approve {}`)\n{}",
                p.id,
                partner_text(&p)
            );
            return Ok(Output::new(text, partner_json(&p)));
        }
        PartnerCmd::List => {
            let ps = store.partners().await.map_err(store_err)?;
            let rows: Vec<Vec<String>> = ps
                .iter()
                .map(|p| {
                    vec![
                        p.id.to_string(),
                        p.kind.as_str().into(),
                        p.state.as_str().into(),
                        p.business
                            .as_ref()
                            .map(|b| b.id.clone())
                            .unwrap_or_else(|| "-".into()),
                        p.contact_email.clone(),
                        p.name.clone(),
                    ]
                })
                .collect();
            let text = table(&["ID", "KIND", "STATE", "ORG-ID", "EMAIL", "NAME"], &rows);
            return Ok(Output::new(text, ps.iter().map(partner_json).collect()));
        }
        PartnerCmd::Show { id } => {
            let p = find_partner(store, "ID", id).await?;
            let keys: Vec<_> = store
                .keys()
                .await
                .map_err(store_err)?
                .into_iter()
                .filter(|k| k.owner == ledgerport_core::world::KeyOwner::Partner(p.id))
                .collect();
            let grants = store.grants(Some(p.id), None).await.map_err(store_err)?;
            let partners = HashMap::from([(p.id, p.clone())]);
            let key_rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.to_string(),
                        k.kind.as_str().into(),
                        k.client_id.clone(),
                        super::keys::key_state(k),
                    ]
                })
                .collect();
            let text = format!(
                "{}\nkeys:\n{}\ngrants:\n{}",
                partner_text(&p),
                table(&["KEY", "KIND", "CLIENT ID", "STATE"], &key_rows),
                grants_table(&grants, &partners)
            );
            let mut j = partner_json(&p);
            j["keys"] = keys.iter().map(super::keys::key_json).collect();
            j["grants"] = grants.iter().map(|g| grant_json(g, &partners)).collect();
            return Ok(Output::new(text, j));
        }
        PartnerCmd::Approve { id } => (id, Change::Approve),
        PartnerCmd::Reject { id } => (id, Change::To(PartnerState::Rejected)),
        PartnerCmd::Suspend { id } => (id, Change::To(PartnerState::Suspended)),
        PartnerCmd::Reinstate { id } => (id, Change::Reinstate),
    };
    let before = find_partner(store, "ID", id).await?;
    // Approving and reinstating both lead to `approved`; each only from its own state.
    let to = match (change, before.state) {
        (Change::Approve, PartnerState::Suspended) => {
            return Err(anyhow!(
                "partner {id} is suspended: use `admin partner reinstate {id}`"
            ));
        }
        (Change::Reinstate, s) if s != PartnerState::Suspended => {
            return Err(anyhow!(
                "partner {id} is {}, not suspended, so it cannot be reinstated",
                s.as_str()
            ));
        }
        (Change::Approve | Change::Reinstate, _) => PartnerState::Approved,
        (Change::To(s), _) => s,
    };
    let p = store
        .set_partner_state(&actor(), id, to)
        .await
        .map_err(store_err)?;
    let mut text = format!(
        "partner {} ({}): {} -> {}\n",
        p.id,
        p.name,
        before.state.as_str(),
        p.state.as_str()
    );
    if matches!(
        before.state,
        PartnerState::Approved | PartnerState::Suspended
    ) {
        text.push_str("this takes effect on the partner's next Report API request\n");
    }
    let mut j = partner_json(&p);
    j["previous_state"] = json!(before.state.as_str());
    Ok(Output::new(text, j))
}

/// A state change the operator asks for.
#[derive(Clone, Copy)]
enum Change {
    Approve,
    Reinstate,
    To(PartnerState),
}

fn partner_json(p: &Partner) -> Value {
    json!({
        "id": p.id, "name": p.name, "kind": p.kind.as_str(), "state": p.state.as_str(),
        "org": p.business.as_ref().map(|b| json!({"scheme": b.scheme.as_str(), "id": b.id})),
        "email": p.contact_email, "created_at": time(p.created_at),
    })
}

fn partner_text(p: &Partner) -> String {
    fields(&[
        ("partner", p.id.to_string()),
        ("name", p.name.clone()),
        ("kind", p.kind.as_str().into()),
        ("state", p.state.as_str().into()),
        (
            "organisation",
            p.business
                .as_ref()
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("email", p.contact_email.clone()),
        ("created", short_time(&time(p.created_at))),
    ])
}

async fn partners_by_id(store: &dyn Store) -> anyhow::Result<HashMap<RowId, Partner>> {
    Ok(store
        .partners()
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|p| (p.id, p))
        .collect())
}

// ---------------------------------------------------------------- grants

#[derive(Subcommand)]
pub enum GrantCmd {
    /// Let an approved accounting partner read a ledger, on the ledger owner's instruction.
    ///
    /// Grants are the merchant's consent: only the merchant may give or take them. This command
    /// records the operator as acting for the merchant named by --for-merchant, which must own
    /// the ledger. The portal users of the merchant and of the partner are told (a portal
    /// notification and a mail each), as for every grant change.
    Create {
        /// The partner's id.
        #[arg(long, value_name = "ID")]
        partner: RowId,
        /// The ledger's id.
        #[arg(long, value_name = "LEDGER-ID")]
        ledger: String,
        /// Organisation number of the merchant that owns the ledger and asked for the grant.
        #[arg(long, value_name = "ORG-ID")]
        for_merchant: String,
        /// What the grant covers; without these options, everything (no expiry, every date,
        /// both topics, personal data).
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Change the scope of a partner's grant on a ledger, on the owner's instruction: only the
    /// options given change; the partner's next request is decided by the new scope. Both
    /// sides' portal users are told of a scope that differs from the one before.
    Scope {
        /// The partner's id.
        #[arg(long, value_name = "ID")]
        partner: RowId,
        /// The ledger's id.
        #[arg(long, value_name = "LEDGER-ID")]
        ledger: String,
        /// Organisation number of the merchant that owns the ledger and asked for the change.
        #[arg(long, value_name = "ORG-ID")]
        for_merchant: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Remove a partner's grant on a ledger, on the owner's instruction; takes effect on the
    /// partner's next request. Both sides' portal users are told.
    Remove {
        /// The partner's id.
        #[arg(long, value_name = "ID")]
        partner: RowId,
        /// The ledger's id.
        #[arg(long, value_name = "LEDGER-ID")]
        ledger: String,
        /// Organisation number of the merchant that owns the ledger and asked for the removal.
        #[arg(long, value_name = "ORG-ID")]
        for_merchant: String,
    },
    /// List grants.
    List {
        /// Only this partner's grants.
        #[arg(long, value_name = "ID")]
        partner: Option<RowId>,
        /// Only grants on this ledger.
        #[arg(long, value_name = "LEDGER-ID")]
        ledger: Option<String>,
    },
}

/// A grant's scope on the command line; each option left out keeps what it was (for a new
/// grant: no limit).
#[derive(clap::Args, Debug, Default)]
pub struct ScopeArgs {
    /// When the grant ends (RFC 3339, e.g. 2027-01-01T00:00:00Z); from then on the partner reads
    /// the ledger as if it had never been granted. `never`: no expiry.
    #[arg(long, value_name = "TIME|never")]
    expires_at: Option<String>,
    /// First ledger date the partner may read (YYYY-MM-DD, inclusive). `none`: no start.
    #[arg(long, value_name = "DATE|none")]
    from: Option<String>,
    /// Last ledger date the partner may read (YYYY-MM-DD, inclusive). `none`: no end.
    #[arg(long, value_name = "DATE|none")]
    to: Option<String>,
    /// The topics the partner may read: funds, fees or funds,fees.
    #[arg(long, value_name = "TOPICS")]
    topics: Option<String>,
    /// Withhold payers' names, messages and masked phone numbers from the partner.
    #[arg(long, conflicts_with = "personal_data")]
    no_personal_data: bool,
    /// Let the partner read payers' personal data (the default of a new grant).
    #[arg(long)]
    personal_data: bool,
}

impl ScopeArgs {
    /// `base` with the options given applied, checked whole; an error names its option.
    pub(super) fn apply(self, base: GrantScope) -> anyhow::Result<GrantScope> {
        let date = |flag: &'static str, v: Option<String>, was: Option<LedgerDate>| match v {
            None => Ok(was),
            Some(v) if v == "none" => Ok(None),
            Some(v) => parsed(LedgerDate::parse(flag, &v)).map(Some),
        };
        let expires_at = match self.expires_at {
            None => base.expires_at,
            Some(v) if v == "never" => None,
            Some(v) => Some(v.parse::<Timestamp>().map_err(|_| {
                anyhow!("--expires-at: {v:?} is not an RFC 3339 time (e.g. 2027-01-01T00:00:00Z)")
            })?),
        };
        let scope = GrantScope {
            expires_at,
            from: date("--from", self.from, base.from)?,
            to: date("--to", self.to, base.to)?,
            topics: match self.topics {
                None => base.topics,
                Some(t) => parsed(Topics::parse("--topics", &t))?,
            },
            personal_data: if self.no_personal_data {
                false
            } else {
                self.personal_data || base.personal_data
            },
        };
        scope.check().map_err(|e| {
            let flag = match e.field {
                "expires_at" => "--expires-at",
                "from" => "--from",
                _ => "--topics",
            };
            anyhow!("{flag}: {}", e.reason)
        })?;
        Ok(scope)
    }
}

/// The actor of a grant change: the operator, acting for the merchant that owns the ledger.
fn acting_for_owner(l: &LedgerView, org_id: &str) -> anyhow::Result<Actor> {
    if l.owner.id != org_id {
        return Err(anyhow!(
            "--for-merchant: ledger {} belongs to {}, and only its owner may grant or remove access",
            l.ledger.ledger_id,
            l.owner
        ));
    }
    Ok(Actor::new(format!(
        "{} for merchant {}",
        actor().0,
        l.owner
    )))
}

pub(super) async fn grant(store: &dyn Store, cmd: GrantCmd) -> anyhow::Result<Output> {
    match cmd {
        GrantCmd::Create {
            partner,
            ledger,
            for_merchant,
            scope,
        } => {
            let l = find_ledger(store, "--ledger", &ledger).await?;
            let by = acting_for_owner(&l, &for_merchant)?;
            let p = find_partner(store, "--partner", partner).await?;
            let scope = scope.apply(GrantScope::EVERYTHING)?;
            let g = store
                .create_grant(&by, p.id, &l.ledger.ledger_id, &scope)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(_) => {
                        anyhow!(
                            "--ledger: partner {} already has a grant on ledger {}",
                            p.id,
                            l.ledger.ledger_id
                        )
                    }
                    e => store_err_on("--partner")(e),
                })?;
            let text = format!(
                "partner {} ({}) may now read ledger {} of {}: {}\n",
                p.id,
                p.name,
                l.ledger.ledger_id,
                l.owner,
                scope_text(&g.scope)
            );
            Ok(Output::new(
                text,
                grant_json(&g, &HashMap::from([(p.id, p)])),
            ))
        }
        GrantCmd::Scope {
            partner,
            ledger,
            for_merchant,
            scope,
        } => {
            let l = find_ledger(store, "--ledger", &ledger).await?;
            let by = acting_for_owner(&l, &for_merchant)?;
            let ledger_id = l.ledger.ledger_id.clone();
            let current = store
                .grants(Some(partner), Some(&ledger_id))
                .await
                .map_err(store_err)?
                .pop()
                .ok_or_else(|| {
                    anyhow!("--partner: partner {partner} has no grant on ledger {ledger_id}")
                })?;
            let scope = scope.apply(current.scope)?;
            let g = store
                .set_grant_scope(&by, partner, &ledger_id, &scope)
                .await
                .map_err(store_err)?;
            let partners = partners_by_id(store).await?;
            let text = format!(
                "the grant of ledger {ledger_id} to partner {partner} now covers: {}; it takes effect on the partner's next request\n",
                scope_text(&g.scope)
            );
            Ok(Output::new(text, grant_json(&g, &partners)))
        }
        GrantCmd::Remove {
            partner,
            ledger,
            for_merchant,
        } => {
            let l = find_ledger(store, "--ledger", &ledger).await?;
            let by = acting_for_owner(&l, &for_merchant)?;
            let ledger_id = l.ledger.ledger_id.clone();
            let removed = store
                .remove_grant(&by, partner, &ledger_id)
                .await
                .map_err(store_err)?;
            let text = if removed {
                format!(
                    "removed the grant of ledger {ledger_id} to partner {partner}; it takes effect on the partner's next request\n"
                )
            } else {
                format!("partner {partner} had no grant on ledger {ledger_id}; nothing changed\n")
            };
            Ok(Output::new(
                text,
                json!({"partner_id": partner, "ledger_id": ledger_id, "removed": removed}),
            ))
        }
        GrantCmd::List { partner, ledger } => {
            let ledger_id = ledger
                .map(|l| parsed(LedgerId::parse("--ledger", &l)))
                .transpose()?;
            if let Some(p) = partner {
                find_partner(store, "--partner", p).await?;
            }
            let grants = store
                .grants(partner, ledger_id.as_ref())
                .await
                .map_err(store_err)?;
            let partners = partners_by_id(store).await?;
            let text = grants_table(&grants, &partners);
            Ok(Output::new(
                text,
                grants.iter().map(|g| grant_json(g, &partners)).collect(),
            ))
        }
    }
}

fn grant_json(g: &Grant, partners: &HashMap<RowId, Partner>) -> Value {
    let s = &g.scope;
    json!({
        "partner_id": g.partner_id, "partner_name": partners.get(&g.partner_id).map(|p| p.name.clone()),
        "ledger_id": g.ledger_id, "created_at": time(g.created_at), "created_by": g.created_by,
        "expires_at": s.expires_at.map(time),
        "from": s.from.map(|d| d.to_string()), "to": s.to.map(|d| d.to_string()),
        "topics": s.topics.list().iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "personal_data": s.personal_data,
    })
}

/// A scope in one line: topics, dates, personal data, expiry.
pub(super) fn scope_text(s: &GrantScope) -> String {
    format!(
        "{}; {}; personal data {}; {}",
        s.topics.as_str(),
        s.period(),
        if s.personal_data { "yes" } else { "no" },
        s.expires_at
            .map_or("no expiry".to_owned(), |e| format!("expires {}", time(e)))
    )
}

fn grants_table(grants: &[Grant], partners: &HashMap<RowId, Partner>) -> String {
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            let p = partners.get(&g.partner_id);
            vec![
                g.ledger_id.to_string(),
                g.partner_id.to_string(),
                p.map(|p| p.state.as_str().to_owned()).unwrap_or_default(),
                p.map(|p| p.name.clone()).unwrap_or_default(),
                short_time(&time(g.created_at)),
                g.created_by.clone(),
                scope_text(&g.scope),
            ]
        })
        .collect();
    table(
        &[
            "LEDGER",
            "PARTNER",
            "STATE",
            "PARTNER NAME",
            "CREATED",
            "BY",
            "SCOPE",
        ],
        &rows,
    )
}
