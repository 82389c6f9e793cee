//! Rows as both SQL backends return them, and their conversion into domain values. Stored text is parsed
//! with the same parsers as input from outside, so a bad row is reported, never trusted.

use crate::{
    AccessRecord, AuditRecord, LedgerView, NewAccessRecord, PortalRole, PortalUser, Result,
    SigningKeyRecord, StoreError,
};
use ledgerport_core::access::StandingGrant;
use ledgerport_core::entry::{Entry, PayerDetails};
use ledgerport_core::ids::{
    BankAccount, BusinessId, Country, Currency, LedgerDate, LedgerId, Msn, RecipientHandle,
};
use ledgerport_core::world::{
    ApiKey, FeePlan, Grant, GrantScope, KeyKind, KeyOwner, Ledger, Merchant, Partner, PartnerKind,
    PartnerState, PayoutFrequency, SalesUnit, SalesUnitKind, SettlementMode, Topics, parse_cutoff,
};

pub(crate) fn ts(s: &str) -> Result<jiff::Timestamp> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("timestamp {s}")))
}

#[derive(sqlx::FromRow)]
pub struct MerchantRow {
    pub id: i64,
    pub org_scheme: String,
    pub org_id: String,
    pub name: String,
    pub created_at: String,
}

impl MerchantRow {
    pub fn into_domain(self) -> Result<Merchant> {
        Ok(Merchant {
            id: self.id,
            business: BusinessId::parse("org", &self.org_scheme, &self.org_id)?,
            name: self.name,
            created_at: ts(&self.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SalesUnitRow {
    pub msn: i64,
    pub merchant_id: i64,
    pub name: String,
    pub kind: String,
    pub country: String,
    pub handle: String,
    pub created_at: String,
}

impl SalesUnitRow {
    pub fn into_domain(self) -> Result<SalesUnit> {
        Ok(SalesUnit {
            msn: Msn::from_stored(self.msn),
            merchant_id: self.merchant_id,
            name: self.name,
            kind: SalesUnitKind::parse("kind", &self.kind)?,
            country: Country::parse("country", &self.country)?,
            handle: RecipientHandle::parse("handle", &self.handle)?,
            created_at: ts(&self.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct LedgerRow {
    pub ledger_id: String,
    pub currency: String,
    pub payout_scheme: String,
    pub payout_account: String,
    pub owner_merchant_id: i64,
    pub time_zone: String,
    pub cutoff: String,
    pub payout_frequency: String,
    pub settlement_mode: String,
    pub fee_basis_points: i64,
    pub fee_fixed_minor: i64,
    pub page_size: i64,
    pub created_at: String,
    pub closed_through: String,
    pub next_payout_number: i64,
    pub org_scheme: String,
    pub org_id: String,
}

impl LedgerRow {
    pub fn into_view(self, units: Vec<SalesUnit>) -> Result<LedgerView> {
        Ok(LedgerView {
            owner: BusinessId::parse("org", &self.org_scheme, &self.org_id)?,
            ledger: Ledger {
                ledger_id: LedgerId::parse("ledger_id", &self.ledger_id)?,
                currency: Currency::parse("currency", &self.currency)?,
                payout_account: BankAccount::parse(
                    "payout",
                    &self.payout_scheme,
                    &self.payout_account,
                )?,
                owner_merchant_id: self.owner_merchant_id,
                time_zone: self.time_zone,
                cutoff: parse_cutoff("cutoff", &self.cutoff)?,
                payout_frequency: PayoutFrequency::parse(
                    "payout_frequency",
                    &self.payout_frequency,
                )?,
                settlement_mode: SettlementMode::parse("settlement_mode", &self.settlement_mode)?,
                fee_plan: FeePlan {
                    basis_points: self.fee_basis_points,
                    fixed_minor: self.fee_fixed_minor,
                },
                page_size: u32::try_from(self.page_size)
                    .map_err(|_| StoreError::Corrupt("page_size".into()))?,
                created_at: ts(&self.created_at)?,
                closed_through: LedgerDate::parse("closed_through", &self.closed_through)?,
                next_payout_number: self.next_payout_number,
            },
            units,
        })
    }
}

/// A sales unit row with the ledger it settles on, for loading the units of many ledgers at once.
#[derive(sqlx::FromRow)]
pub struct LedgerUnitRow {
    pub ledger_id: String,
    #[sqlx(flatten)]
    pub unit: SalesUnitRow,
}

/// A ledger row with its units as the JSON array the database builds (`json_array` of the
/// [`SalesUnitRow`] columns, in the ledger's order).
#[derive(sqlx::FromRow)]
pub struct LedgerWithUnitsRow {
    #[sqlx(flatten)]
    pub ledger: LedgerRow,
    pub units: String,
    /// The grants of approved partners, as a JSON array of [`GrantTuple`]s.
    pub granted: String,
}

impl LedgerWithUnitsRow {
    /// The ledger's description and the grants of approved partners.
    pub fn into_view(self) -> Result<(LedgerView, Vec<StandingGrant>)> {
        let granted: Vec<GrantTuple> = serde_json::from_str(&self.granted).map_err(|e| {
            StoreError::Corrupt(format!("grants of ledger {}: {e}", self.ledger.ledger_id))
        })?;
        let granted = granted
            .into_iter()
            .map(GrantTuple::into_domain)
            .collect::<Result<Vec<_>>>()?;
        type UnitTuple = (i64, i64, String, String, String, String, String);
        let tuples: Vec<UnitTuple> = serde_json::from_str(&self.units).map_err(|e| {
            StoreError::Corrupt(format!("units of ledger {}: {e}", self.ledger.ledger_id))
        })?;
        let units = tuples
            .into_iter()
            .map(
                |(msn, merchant_id, name, kind, country, handle, created_at)| {
                    SalesUnitRow {
                        msn,
                        merchant_id,
                        name,
                        kind,
                        country,
                        handle,
                        created_at,
                    }
                    .into_domain()
                },
            )
            .collect::<Result<Vec<_>>>()?;
        Ok((self.ledger.into_view(units)?, granted))
    }
}

#[derive(sqlx::FromRow)]
pub struct PartnerRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub state: String,
    pub org_scheme: Option<String>,
    pub org_id: Option<String>,
    pub contact_email: String,
    pub created_at: String,
}

impl PartnerRow {
    pub fn into_domain(self) -> Result<Partner> {
        let business = match (self.org_scheme, self.org_id) {
            (Some(s), Some(i)) => Some(BusinessId::parse("org", &s, &i)?),
            _ => None,
        };
        Ok(Partner {
            id: self.id,
            name: self.name,
            kind: PartnerKind::parse("kind", &self.kind)?,
            state: PartnerState::parse("state", &self.state)?,
            business,
            contact_email: self.contact_email,
            created_at: ts(&self.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct KeyRow {
    pub id: i64,
    pub kind: String,
    pub owner_msn: Option<i64>,
    pub owner_partner_id: Option<i64>,
    pub owner_merchant_id: Option<i64>,
    pub client_id: String,
    pub secret_hash: Vec<u8>,
    pub generation: i64,
    pub subscription_key_1: Option<String>,
    pub subscription_key_2: Option<String>,
    pub revoked: bool,
    pub created_at: String,
}

impl KeyRow {
    pub fn into_domain(self) -> Result<ApiKey> {
        let owner = match (
            self.owner_msn,
            self.owner_partner_id,
            self.owner_merchant_id,
        ) {
            (Some(m), None, None) => KeyOwner::SalesUnit(Msn::from_stored(m)),
            (None, Some(p), None) => KeyOwner::Partner(p),
            (None, None, Some(m)) => KeyOwner::Merchant(m),
            (None, None, None) if self.kind == "service" => KeyOwner::Operator,
            _ => return Err(StoreError::Corrupt(format!("owner of key {}", self.id))),
        };
        let secret_hash: [u8; 32] = self
            .secret_hash
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("secret hash of key {}", self.id)))?;
        let subscription_keys = match (self.subscription_key_1, self.subscription_key_2) {
            (Some(a), Some(b)) => Some([a, b]),
            _ => None,
        };
        Ok(ApiKey {
            id: self.id,
            kind: KeyKind::parse("kind", &self.kind)?,
            owner,
            client_id: self.client_id,
            secret_hash,
            generation: self.generation,
            subscription_keys,
            revoked: self.revoked,
            created_at: ts(&self.created_at)?,
        })
    }
}

/// The columns of a grant's scope as [`ScopeColumns`] reads them (`personal_data` as 0 or 1 on
/// both backends), after the alias `g` of the grants table.
macro_rules! scope_columns {
    () => {
        "g.expires_at, g.from_date, g.to_date, g.topics, \
         CASE WHEN g.personal_data THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END"
    };
}
pub(crate) use scope_columns;

/// A grant's scope as stored: see migration 0008.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct ScopeColumns {
    pub expires_at: Option<String>,
    pub from_date: Option<String>,
    pub to_date: Option<String>,
    pub topics: String,
    pub personal_data: i64,
}

impl ScopeColumns {
    pub fn into_domain(self) -> Result<GrantScope> {
        Ok(GrantScope {
            expires_at: self.expires_at.as_deref().map(ts).transpose()?,
            from: self
                .from_date
                .as_deref()
                .map(|d| LedgerDate::parse("from_date", d))
                .transpose()?,
            to: self
                .to_date
                .as_deref()
                .map(|d| LedgerDate::parse("to_date", d))
                .transpose()?,
            topics: Topics::parse("topics", &self.topics)?,
            personal_data: self.personal_data != 0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct GrantRow {
    pub partner_id: i64,
    pub ledger_id: String,
    pub created_at: String,
    pub created_by: String,
    #[sqlx(flatten)]
    pub scope: ScopeColumns,
}

impl GrantRow {
    pub fn into_domain(self) -> Result<Grant> {
        Ok(Grant {
            partner_id: self.partner_id,
            ledger_id: LedgerId::parse("ledger_id", &self.ledger_id)?,
            created_at: ts(&self.created_at)?,
            created_by: self.created_by,
            scope: self.scope.into_domain()?,
        })
    }
}

/// One grant of a ledger's JSON list of grants ([`crate::sql`]'s `ledger_with_units`): the
/// partner, then the [`scope_columns`] in order.
#[derive(serde::Deserialize)]
pub struct GrantTuple(
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i64,
);

impl GrantTuple {
    pub fn into_domain(self) -> Result<StandingGrant> {
        let GrantTuple(partner_id, expires_at, from_date, to_date, topics, personal_data) = self;
        Ok(StandingGrant {
            partner_id,
            scope: ScopeColumns {
                expires_at,
                from_date,
                to_date,
                topics,
                personal_data,
            }
            .into_domain()?,
        })
    }
}

/// One entry as an element of the JSON array the database builds for a whole page (see
/// [`entries_from_page_json`]): the columns of [`ENTRY_JSON`] in order.
#[derive(serde::Deserialize)]
struct EntryTuple<'a>(
    i64,
    String,
    String,
    &'a str,
    String,
    String,
    &'a str,
    i64,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The columns of one entry, each after the table prefix given (`entry_columns!("e.")`): in the
/// order [`EntryTuple`] reads, for a backend's JSON array function, and the order the Report
/// API's page writer reads (`crate::wire_json`). Dates and currency codes never need escaping,
/// so they are borrowed from the page's text; an escaped one is corrupt.
macro_rules! entry_columns {
    () => {
        $crate::rows::entry_columns!("")
    };
    ($p:literal) => {
        concat!(
            $p,
            "seq, ",
            $p,
            "psp_reference, ",
            $p,
            "time, ",
            $p,
            "ledger_date, ",
            $p,
            "entry_type, ",
            $p,
            "reference, ",
            $p,
            "currency, ",
            $p,
            "amount, ",
            $p,
            "balance_before, ",
            $p,
            "balance_after, ",
            $p,
            "recipient_handle, ",
            $p,
            "payer_name, ",
            $p,
            "payer_message, ",
            $p,
            "masked_phone_no"
        )
    };
}
pub(crate) use entry_columns;

/// The columns of a ledger row ([`LedgerRow`]), `l` the ledger and `m` its owner.
macro_rules! ledger_columns {
    () => {
        "l.ledger_id, l.currency, l.payout_scheme, l.payout_account, l.owner_merchant_id, \
         l.time_zone, l.cutoff, l.payout_frequency, l.settlement_mode, l.fee_basis_points, \
         l.fee_fixed_minor, l.page_size, l.created_at, l.closed_through, l.next_payout_number, \
         m.org_scheme, m.org_id"
    };
}
pub(crate) use ledger_columns;

/// A page of entries that the database handed back as one JSON array (one row instead of one row per
/// entry: sqlx's driver copies every column value and sends every row across threads, which
/// cost more than the query itself).
pub fn entries_from_page_json(page: &str) -> Result<Vec<Entry>> {
    let tuples: Vec<EntryTuple<'_>> =
        serde_json::from_str(page).map_err(|e| StoreError::Corrupt(format!("entry page: {e}")))?;
    tuples.into_iter().map(EntryTuple::into_domain).collect()
}

impl EntryTuple<'_> {
    fn into_domain(self) -> Result<Entry> {
        let EntryTuple(
            seq,
            psp_reference,
            time,
            ledger_date,
            entry_type,
            reference,
            currency,
            amount,
            balance_before,
            balance_after,
            recipient_handle,
            payer_name,
            payer_message,
            masked_phone_no,
        ) = self;
        let payer = match (payer_name, payer_message, masked_phone_no) {
            (Some(name), Some(message), Some(masked_phone_no)) => Some(PayerDetails {
                name,
                message,
                masked_phone_no,
            }),
            _ => None,
        };
        Ok(Entry {
            seq,
            psp_reference,
            time,
            ledger_date: LedgerDate::parse("ledger_date", ledger_date)?,
            entry_type,
            reference,
            currency: Currency::parse("currency", currency)?,
            amount,
            balance_before,
            balance_after,
            recipient_handle,
            payer,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub private_der: Vec<u8>,
    pub public_raw: Vec<u8>,
    pub created_at: String,
    pub retired_at: Option<String>,
}

impl From<SigningKeyRow> for SigningKeyRecord {
    fn from(r: SigningKeyRow) -> Self {
        SigningKeyRecord {
            kid: r.kid,
            private_der: r.private_der,
            public_raw: r.public_raw,
            created_at: r.created_at,
            retired_at: r.retired_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct AccessRow {
    pub id: i64,
    pub at: String,
    pub request_id: String,
    pub key_id: Option<i64>,
    pub key_kind: Option<String>,
    pub client_id: Option<String>,
    pub partner_id: Option<i64>,
    pub merchant_id: Option<i64>,
    pub msn: Option<i64>,
    pub ledger_id: Option<String>,
    pub endpoint: String,
    pub status: i64,
    pub topic: Option<String>,
    pub ledger_date: Option<String>,
    pub feed_after: Option<i64>,
    pub personal_data: Option<String>,
    pub result: String,
}

impl AccessRow {
    pub fn into_domain(self) -> Result<AccessRecord> {
        Ok(AccessRecord {
            id: self.id,
            at: self.at,
            rec: NewAccessRecord {
                request_id: self.request_id,
                key_id: self.key_id,
                key_kind: self
                    .key_kind
                    .as_deref()
                    .map(|k| KeyKind::parse("key_kind", k))
                    .transpose()?,
                client_id: self.client_id,
                partner_id: self.partner_id,
                merchant_id: self.merchant_id,
                msn: self.msn.map(Msn::from_stored),
                ledger_id: self.ledger_id,
                endpoint: self.endpoint,
                status: u16::try_from(self.status)
                    .map_err(|_| StoreError::Corrupt("status".into()))?,
                topic: self.topic,
                ledger_date: self.ledger_date,
                feed_after: self.feed_after,
                personal_data: self.personal_data,
                result: self.result,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            detail: r.detail,
        }
    }
}

/// A sales unit with the ledger it settles on, if any (a LEFT JOIN).
#[derive(sqlx::FromRow)]
pub struct UnitLedgerRow {
    pub ledger_id: Option<String>,
    #[sqlx(flatten)]
    pub unit: SalesUnitRow,
}

/// How an event id was answered before: applied (`ledger_id`, `entries`) or rejected
/// (`field`, `reason`).
#[derive(sqlx::FromRow)]
pub struct PriorEventRow {
    pub ledger_id: Option<String>,
    pub entries: Option<i64>,
    pub field: Option<String>,
    pub reason: Option<String>,
}

impl PriorEventRow {
    pub fn into_outcome(self, event_id: &str) -> Result<crate::EventOutcome> {
        match self {
            PriorEventRow {
                ledger_id: Some(ledger_id),
                entries: Some(entries),
                ..
            } => Ok(crate::EventOutcome::Accepted {
                event_id: event_id.to_owned(),
                ledger_id: LedgerId::parse("ledger_id", &ledger_id)?,
                entries: u32::try_from(entries)
                    .map_err(|_| StoreError::Corrupt(format!("event {event_id} entries")))?,
            }),
            PriorEventRow {
                field: Some(field),
                reason: Some(reason),
                ..
            } => Ok(crate::EventOutcome::Rejected {
                event_id: event_id.to_owned(),
                rejection: ledgerport_core::engine::Rejection::from_stored(&field, reason),
            }),
            _ => Err(StoreError::Corrupt(format!("event {event_id}"))),
        }
    }
}

/// A `portal_users` row.
#[derive(sqlx::FromRow)]
pub struct UserRow {
    id: i64,
    email: String,
    role: String,
    merchant_id: Option<i64>,
    partner_id: Option<i64>,
    password_hash: String,
    created_at: String,
}

impl UserRow {
    pub fn into_domain(self) -> Result<PortalUser> {
        let role = match (self.role.as_str(), self.merchant_id, self.partner_id) {
            ("merchant", Some(m), None) => PortalRole::Merchant(m),
            ("partner", None, Some(p)) => PortalRole::Partner(p),
            ("operator", None, None) => PortalRole::Operator,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "portal user {} role {}",
                    self.id, self.role
                )));
            }
        };
        Ok(PortalUser {
            id: self.id,
            email: self.email,
            role,
            password_hash: self.password_hash,
            created_at: ts(&self.created_at)?,
        })
    }
}

/// A key row with its partner's state (`None` for a key of no partner).
#[derive(sqlx::FromRow)]
pub struct KeyAndStateRow {
    #[sqlx(flatten)]
    pub key: KeyRow,
    pub partner_state: Option<String>,
}

/// An earlier answer with the event id it belongs to.
#[derive(sqlx::FromRow)]
pub struct PriorWithIdRow {
    pub event_id: String,
    #[sqlx(flatten)]
    pub prior: PriorEventRow,
}

/// A ledger row with what closing needs besides: carried balances and the first unit's handle.
#[derive(sqlx::FromRow)]
pub struct LedgerCtxRow {
    #[sqlx(flatten)]
    pub ledger: LedgerRow,
    pub closed_funds_balance: i64,
    pub closed_fees_balance: i64,
    pub first_handle: Option<String>,
    /// The latest date each topic has a `date_digests` row for (migration 15).
    pub last_funds_digest: Option<String>,
    pub last_fees_digest: Option<String>,
}

/// A proof: a row of `date_digests` with its chain digest (`settlement::proofs::PROOF_COLUMNS`).
#[derive(sqlx::FromRow)]
pub struct DateProofRow {
    pub ledger_id: String,
    pub topic: i64,
    pub ledger_date: String,
    pub entry_count: i64,
    pub amount_sum: i64,
    pub opening_balance: i64,
    pub closing_balance: i64,
    pub digest: String,
    pub previous_chain_digest: Option<String>,
    pub chain_digest: String,
}
