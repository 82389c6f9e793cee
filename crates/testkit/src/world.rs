//! One builder of test worlds: merchants, sales units, ledgers, partners, grants, keys and
//! entries, written through the [`Store`] trait in the order they were described.
//!
//! ```text
//! let world = WorldBuilder::new()
//!     .merchant("987654321", "ACME AS")
//!     .api_unit("123455")
//!     .ledger("302321", &["123455"])
//!     .fees(100, 0)
//!     .partner("Books AS")
//!     .grant("302321")
//!     .partner_keys("books", KeyKind::Accounting)
//!     .service_keys("service")
//!     .build(store)
//!     .await?;
//! let partner = world.partner("Books AS");
//! let keys = world.keys("books");
//! ```
//!
//! Sales units and ledgers belong to the last merchant added (or the one `of_merchant` names);
//! grants and partner keys to the last
//! partner; the ledger settings (`fees`, `page_size`, `payout`, ...) change the last ledger. A
//! ledger is NOK, Europe/Oslo, cutoff 00:00, daily net payouts, 175 bp capture fee, pages of 1000
//! unless changed. Values are parsed when the world is built, so a bad one is an error naming it.

use ledgerport_core::entry::NewEntry;
use ledgerport_core::ids::{BankAccount, BusinessId, Country, Currency, LedgerId, Msn, Topic};
use ledgerport_core::world::{
    DEFAULT_PAGE_SIZE, FeePlan, GrantScope, KeyKind, KeyOwner, Merchant, Partner, PartnerKind,
    PartnerState, PayoutFrequency, RowId, SalesUnit, SalesUnitKind, SettlementMode, parse_cutoff,
};
use ledgerport_server::credentials::issue_keys;
use ledgerport_store::{
    Actor, LedgerView, NewLedger, NewMerchant, NewPartner, NewSalesUnit, Store,
};
use std::collections::BTreeMap;

/// Credentials as issued: what a client would hold.
#[derive(Clone, Debug)]
pub struct Keys {
    pub key_id: RowId,
    pub client_id: String,
    pub secret: String,
    pub subscription_key: Option<String>,
}

/// Called while building, after each merchant, ledger, partner, grant and set of keys, with the
/// kind ("merchants", "ledgers", ...), how many of that kind are done and how many there are.
pub type Progress = Box<dyn FnMut(&str, u64, u64) + Send>;

/// The description of a world; [`WorldBuilder::build`] writes it.
pub struct WorldBuilder {
    by: Actor,
    steps: Vec<Step>,
    merchants: usize,
    /// The merchant new units and ledgers belong to (an index into the merchants).
    current_merchant: Option<usize>,
    merchant_by_org: BTreeMap<String, usize>,
    partners: usize,
    last_ledger: Option<usize>,
    last_unit: Option<usize>,
    progress: Option<Progress>,
}

enum Step {
    Merchant {
        org: String,
        name: String,
    },
    Unit {
        merchant: Option<usize>,
        msn: String,
        name: String,
        vm_number: Option<String>,
        country: Country,
    },
    Ledger(Box<LedgerSpec>),
    Partner {
        name: String,
        kind: PartnerKind,
        approve: bool,
    },
    Grant {
        partner: Option<usize>,
        ledger: String,
        scope: GrantScope,
    },
    Keys {
        label: String,
        kind: KeyKind,
        owner: Owner,
    },
    Entries {
        ledger: String,
        topic: Topic,
        entries: Vec<NewEntry>,
    },
}

struct LedgerSpec {
    merchant: Option<usize>,
    id: String,
    units: Vec<String>,
    currency: Currency,
    time_zone: String,
    cutoff: String,
    frequency: PayoutFrequency,
    mode: SettlementMode,
    fees: FeePlan,
    page_size: u32,
}

enum Owner {
    Unit(String),
    Partner(Option<usize>),
    Merchant(Option<usize>),
    Operator,
}

/// A world as written: what was created, in order, and the keys by label.
#[derive(Debug, Default)]
pub struct World {
    pub merchants: Vec<Merchant>,
    pub units: Vec<SalesUnit>,
    pub ledgers: Vec<LedgerView>,
    pub partners: Vec<Partner>,
    keys: BTreeMap<String, Keys>,
}

impl World {
    /// The id of the merchant with this organisation number.
    #[track_caller]
    pub fn merchant(&self, org: &str) -> RowId {
        match self.merchants.iter().find(|m| m.business.id == org) {
            Some(m) => m.id,
            None => panic!("the world has no merchant {org}"),
        }
    }

    /// The id of the partner called `name`.
    #[track_caller]
    pub fn partner(&self, name: &str) -> RowId {
        match self.partners.iter().find(|p| p.name == name) {
            Some(p) => p.id,
            None => panic!("the world has no partner {name:?}"),
        }
    }

    /// The keys issued under `label`.
    #[track_caller]
    pub fn keys(&self, label: &str) -> &Keys {
        match self.keys.get(label) {
            Some(k) => k,
            None => panic!("the world has no keys {label:?}"),
        }
    }

    /// Every ledger id, in creation order.
    pub fn ledger_ids(&self) -> Vec<LedgerId> {
        self.ledgers
            .iter()
            .map(|l| l.ledger.ledger_id.clone())
            .collect()
    }
}

impl Default for WorldBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WorldBuilder {
    /// An empty world, written by the actor `test`.
    pub fn new() -> WorldBuilder {
        WorldBuilder {
            by: Actor::new("test"),
            steps: Vec::new(),
            merchants: 0,
            current_merchant: None,
            merchant_by_org: BTreeMap::new(),
            partners: 0,
            last_ledger: None,
            last_unit: None,
            progress: None,
        }
    }

    /// The actor the audit log records for every change.
    pub fn by(mut self, actor: &str) -> Self {
        self.by = Actor::new(actor);
        self
    }

    /// Reports progress while building (large worlds of the benchmark).
    pub fn on_progress(mut self, progress: impl FnMut(&str, u64, u64) + Send + 'static) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }

    /// A merchant with a Norwegian organisation number; the units and ledgers after it are its.
    pub fn merchant(mut self, org: &str, name: &str) -> Self {
        self.steps.push(Step::Merchant {
            org: org.into(),
            name: name.into(),
        });
        self.merchant_by_org.insert(org.into(), self.merchants);
        self.current_merchant = Some(self.merchants);
        self.merchants += 1;
        self
    }

    /// Makes the units and ledgers after this belong to the merchant with organisation number
    /// `org`, added before.
    pub fn of_merchant(mut self, org: &str) -> Self {
        self.current_merchant = self.merchant_by_org.get(org).copied();
        self
    }

    fn unit(mut self, msn: &str, vm_number: Option<&str>) -> Self {
        self.last_unit = Some(self.steps.len());
        self.steps.push(Step::Unit {
            merchant: self.current_merchant,
            msn: msn.into(),
            name: format!("Unit {msn}"),
            vm_number: vm_number.map(str::to_owned),
            country: Country::NO,
        });
        self
    }

    /// An api sales unit of the last merchant, called "Unit MSN".
    pub fn api_unit(self, msn: &str) -> Self {
        self.unit(msn, None)
    }

    /// A Norwegian vm-number sales unit of the last merchant (handle `NO:VM_NUMBER`).
    pub fn vm_unit(self, msn: &str, vm_number: &str) -> Self {
        self.unit(msn, Some(vm_number))
    }

    /// Renames the last sales unit.
    pub fn unit_name(mut self, name: &str) -> Self {
        if let Some(Step::Unit { name: n, .. }) = self.last_unit.and_then(|i| self.steps.get_mut(i))
        {
            *n = name.into();
        }
        self
    }

    /// A ledger of the last merchant settling for `units` (MSNs), with the default settings.
    pub fn ledger(mut self, id: &str, units: &[&str]) -> Self {
        self.last_ledger = Some(self.steps.len());
        self.steps.push(Step::Ledger(Box::new(LedgerSpec {
            merchant: self.current_merchant,
            id: id.into(),
            units: units.iter().map(|u| (*u).to_owned()).collect(),
            currency: Currency::NOK,
            time_zone: "Europe/Oslo".into(),
            cutoff: "00:00".into(),
            frequency: PayoutFrequency::Daily,
            mode: SettlementMode::Net,
            fees: FeePlan {
                basis_points: 175,
                fixed_minor: 0,
            },
            page_size: DEFAULT_PAGE_SIZE,
        })));
        self
    }

    fn last_ledger(mut self, change: impl FnOnce(&mut LedgerSpec)) -> Self {
        if let Some(Step::Ledger(l)) = self.last_ledger.and_then(|i| self.steps.get_mut(i)) {
            change(l);
        }
        self
    }

    /// The last ledger's capture fee: `basis_points` of the amount plus `fixed_minor`.
    pub fn fees(self, basis_points: i64, fixed_minor: i64) -> Self {
        self.last_ledger(|l| {
            l.fees = FeePlan {
                basis_points,
                fixed_minor,
            }
        })
    }

    /// The last ledger's page size.
    pub fn page_size(self, page_size: u32) -> Self {
        self.last_ledger(|l| l.page_size = page_size)
    }

    /// The last ledger's payout frequency.
    pub fn payout(self, frequency: PayoutFrequency) -> Self {
        self.last_ledger(|l| l.frequency = frequency)
    }

    /// The last ledger's settlement mode.
    pub fn mode(self, mode: SettlementMode) -> Self {
        self.last_ledger(|l| l.mode = mode)
    }

    /// The last ledger's time zone (an IANA name, checked when the world is built).
    pub fn time_zone(self, time_zone: &str) -> Self {
        let time_zone = time_zone.to_owned();
        self.last_ledger(|l| l.time_zone = time_zone)
    }

    /// The last ledger's currency.
    pub fn currency(self, currency: Currency) -> Self {
        self.last_ledger(|l| l.currency = currency)
    }

    /// The last ledger's cutoff, `HH:MM`.
    pub fn cutoff(self, cutoff: &str) -> Self {
        let cutoff = cutoff.to_owned();
        self.last_ledger(|l| l.cutoff = cutoff)
    }

    /// An approved accounting partner; grants and partner keys after it are its.
    pub fn partner(self, name: &str) -> Self {
        self.partner_of_kind(name, PartnerKind::Accounting, true)
    }

    /// A partner of `kind`, approved or left as applied.
    pub fn partner_of_kind(mut self, name: &str, kind: PartnerKind, approve: bool) -> Self {
        self.steps.push(Step::Partner {
            name: name.into(),
            kind,
            approve,
        });
        self.partners += 1;
        self
    }

    /// A grant of `ledger` to the last partner, without limits.
    pub fn grant(self, ledger: &str) -> Self {
        self.grant_scoped(ledger, GrantScope::EVERYTHING)
    }

    /// A grant of `ledger` to the last partner within `scope`.
    pub fn grant_scoped(mut self, ledger: &str, scope: GrantScope) -> Self {
        self.steps.push(Step::Grant {
            partner: self.partners.checked_sub(1),
            ledger: ledger.into(),
            scope,
        });
        self
    }

    fn keys(mut self, label: &str, kind: KeyKind, owner: Owner) -> Self {
        self.steps.push(Step::Keys {
            label: label.into(),
            kind,
            owner,
        });
        self
    }

    /// Sales-unit keys of the api unit `msn`, under `label`.
    pub fn unit_keys(self, label: &str, msn: &str) -> Self {
        self.keys(label, KeyKind::SalesUnit, Owner::Unit(msn.into()))
    }

    /// Keys of `kind` (accounting or integration) of the last partner, under `label`.
    pub fn partner_keys(self, label: &str, kind: KeyKind) -> Self {
        let owner = Owner::Partner(self.partners.checked_sub(1));
        self.keys(label, kind, owner)
    }

    /// Keys of `kind` (merchant-level or management) of the last merchant, under `label`.
    pub fn merchant_keys(self, label: &str, kind: KeyKind) -> Self {
        let owner = Owner::Merchant(self.current_merchant);
        self.keys(label, kind, owner)
    }

    /// The operator's service keys (for posting payment events), under `label`.
    pub fn service_keys(self, label: &str) -> Self {
        self.keys(label, KeyKind::Service, Owner::Operator)
    }

    /// Entries appended to a topic of `ledger`, as given (in one `append_entries` call).
    pub fn entries(mut self, ledger: &str, topic: Topic, entries: Vec<NewEntry>) -> Self {
        self.steps.push(Step::Entries {
            ledger: ledger.into(),
            topic,
            entries,
        });
        self
    }

    /// Writes the world into `store`, in the order described. An error names the step.
    pub async fn build(mut self, store: &dyn Store) -> Result<World, String> {
        let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
        for step in &self.steps {
            *totals.entry(step.kind()).or_default() += 1;
        }
        let mut done: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut world = World::default();
        let by = self.by.clone();
        for step in std::mem::take(&mut self.steps) {
            let kind = step.kind();
            step.write(store, &by, &mut world).await?;
            let n = done.entry(kind).or_default();
            *n += 1;
            if let Some(progress) = self.progress.as_mut() {
                progress(kind, *n, totals.get(kind).copied().unwrap_or(0));
            }
        }
        Ok(world)
    }
}

fn merchant_of(world: &World, index: Option<usize>, what: &str) -> Result<RowId, String> {
    index
        .and_then(|i| world.merchants.get(i))
        .map(|m| m.id)
        .ok_or_else(|| format!("{what}: add a merchant first"))
}

fn partner_of(world: &World, index: Option<usize>, what: &str) -> Result<RowId, String> {
    index
        .and_then(|i| world.partners.get(i))
        .map(|p| p.id)
        .ok_or_else(|| format!("{what}: add a partner first"))
}

fn parse_msn(s: &str) -> Result<Msn, String> {
    Msn::parse("msn", s).map_err(|e| format!("sales unit {s}: {e}"))
}

fn parse_ledger_id(s: &str) -> Result<LedgerId, String> {
    LedgerId::parse("ledgerId", s).map_err(|e| format!("ledger {s}: {e}"))
}

impl Step {
    fn kind(&self) -> &'static str {
        match self {
            Step::Merchant { .. } => "merchants",
            Step::Unit { .. } => "sales units",
            Step::Ledger(_) => "ledgers",
            Step::Partner { .. } => "partners",
            Step::Grant { .. } => "grants",
            Step::Keys { .. } => "keys",
            Step::Entries { .. } => "entries",
        }
    }

    async fn write(self, store: &dyn Store, by: &Actor, world: &mut World) -> Result<(), String> {
        match self {
            Step::Merchant { org, name } => {
                let business = BusinessId::parse("org", "business:NO:ORG", &org)
                    .map_err(|e| format!("merchant {org}: {e}"))?;
                let m = store
                    .create_merchant(by, NewMerchant { business, name })
                    .await
                    .map_err(|e| format!("create merchant {org}: {e}"))?;
                world.merchants.push(m);
            }
            Step::Unit {
                merchant,
                msn,
                name,
                vm_number,
                country,
            } => {
                let what = format!("sales unit {msn}");
                let unit = NewSalesUnit {
                    msn: parse_msn(&msn)?,
                    merchant_id: merchant_of(world, merchant, &what)?,
                    name,
                    kind: if vm_number.is_some() {
                        SalesUnitKind::VmNumber
                    } else {
                        SalesUnitKind::Api
                    },
                    country,
                    vm_number,
                };
                let u = store
                    .create_sales_unit(by, unit)
                    .await
                    .map_err(|e| format!("create {what}: {e}"))?;
                world.units.push(u);
            }
            Step::Ledger(l) => {
                let what = format!("ledger {}", l.id);
                let ledger = NewLedger {
                    ledger_id: parse_ledger_id(&l.id)?,
                    currency: l.currency,
                    payout_account: BankAccount::parse("payoutAccount", "BBAN:NO", "86011117947")
                        .map_err(|e| format!("{what}: {e}"))?,
                    owner_merchant_id: merchant_of(world, l.merchant, &what)?,
                    settles_for: l
                        .units
                        .iter()
                        .map(|u| parse_msn(u))
                        .collect::<Result<_, _>>()?,
                    time_zone: l.time_zone,
                    cutoff: parse_cutoff("cutoff", &l.cutoff)
                        .map_err(|e| format!("{what}: {e}"))?,
                    payout_frequency: l.frequency,
                    settlement_mode: l.mode,
                    fee_plan: l.fees,
                    page_size: l.page_size,
                    created_at: None,
                };
                let view = store
                    .create_ledger(by, ledger)
                    .await
                    .map_err(|e| format!("create {what}: {e}"))?;
                world.ledgers.push(view);
            }
            Step::Partner {
                name,
                kind,
                approve,
            } => {
                let contact_email =
                    format!("{}@partner.test", name.to_lowercase().replace(' ', "-"));
                let mut p = store
                    .create_partner(
                        by,
                        NewPartner {
                            name: name.clone(),
                            kind,
                            business: None,
                            contact_email,
                        },
                    )
                    .await
                    .map_err(|e| format!("create partner {name:?}: {e}"))?;
                if approve {
                    p = store
                        .set_partner_state(by, p.id, PartnerState::Approved)
                        .await
                        .map_err(|e| format!("approve partner {name:?}: {e}"))?;
                }
                world.partners.push(p);
            }
            Step::Grant {
                partner,
                ledger,
                scope,
            } => {
                let what = format!("grant of ledger {ledger}");
                let partner = partner_of(world, partner, &what)?;
                store
                    .create_grant(by, partner, &parse_ledger_id(&ledger)?, &scope)
                    .await
                    .map_err(|e| format!("create {what}: {e}"))?;
            }
            Step::Keys { label, kind, owner } => {
                let what = format!("keys {label:?}");
                let owner = match owner {
                    Owner::Unit(msn) => KeyOwner::SalesUnit(parse_msn(&msn)?),
                    Owner::Partner(p) => KeyOwner::Partner(partner_of(world, p, &what)?),
                    Owner::Merchant(m) => KeyOwner::Merchant(merchant_of(world, m, &what)?),
                    Owner::Operator => KeyOwner::Operator,
                };
                let (key, secret) = issue_keys(store, by, kind, owner)
                    .await
                    .map_err(|e| format!("issue {what}: {e}"))?;
                let keys = Keys {
                    key_id: key.id,
                    client_id: key.client_id,
                    secret: secret.reveal().to_owned(),
                    subscription_key: key.subscription_keys.map(|k| k[0].clone()),
                };
                world.keys.insert(label, keys);
            }
            Step::Entries {
                ledger,
                topic,
                entries,
            } => {
                store
                    .append_entries(&parse_ledger_id(&ledger)?, topic, entries)
                    .await
                    .map_err(|e| format!("append entries to ledger {ledger}: {e}"))?;
            }
        }
        Ok(())
    }
}
