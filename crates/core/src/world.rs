//! The world: merchants, sales units, ledgers, partners, keys and grants.

use crate::ParseError;
use crate::ids::{
    BankAccount, BusinessId, Country, Currency, LedgerDate, LedgerId, Msn, RecipientHandle, Topic,
};
use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;

/// Row id of a merchant, partner or key inside Ledgerport (never on the Report API wire).
pub type RowId = i64;

#[derive(Debug, Clone, PartialEq)]
pub struct Merchant {
    pub id: RowId,
    pub business: BusinessId,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesUnitKind {
    /// ePayment / recurring: has API keys.
    Api,
    /// Vippsnummer / MyShop: no API keys at all.
    VmNumber,
}

impl SalesUnitKind {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "api" => Ok(SalesUnitKind::Api),
            "vm-number" => Ok(SalesUnitKind::VmNumber),
            _ => Err(ParseError::new(field, "must be api or vm-number")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SalesUnitKind::Api => "api",
            SalesUnitKind::VmNumber => "vm-number",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SalesUnit {
    pub msn: Msn,
    pub merchant_id: RowId,
    pub name: String,
    pub kind: SalesUnitKind,
    pub country: Country,
    pub handle: RecipientHandle,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutFrequency {
    Daily,
    /// At Monday's cutoff.
    Weekly,
    /// At the cutoff of the 1st.
    Monthly,
}

impl PayoutFrequency {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "daily" => Ok(Self::Daily),
            "weekly" => Ok(Self::Weekly),
            "monthly" => Ok(Self::Monthly),
            _ => Err(ParseError::new(field, "must be daily, weekly or monthly")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementMode {
    /// Fees retained from funds at each payout.
    Net,
    /// Fees invoiced monthly.
    Gross,
}

impl SettlementMode {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "net" => Ok(Self::Net),
            "gross" => Ok(Self::Gross),
            _ => Err(ParseError::new(field, "must be net or gross")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Net => "net",
            Self::Gross => "gross",
        }
    }
}

/// What a capture costs: a percentage in basis points plus a fixed amount in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeePlan {
    pub basis_points: i64,
    pub fixed_minor: i64,
}

/// Page sizes the Report API allows per ledger.
pub const DEFAULT_PAGE_SIZE: u32 = 1000;
pub const MAX_PAGE_SIZE: u32 = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    pub ledger_id: LedgerId,
    pub currency: Currency,
    pub payout_account: BankAccount,
    pub owner_merchant_id: RowId,
    pub time_zone: String,
    /// Start of a ledger date in the ledger's time zone (default 00:00).
    pub cutoff: Time,
    pub payout_frequency: PayoutFrequency,
    pub settlement_mode: SettlementMode,
    pub fee_plan: FeePlan,
    pub page_size: u32,
    pub created_at: Timestamp,
    /// The last ledger date the settlement engine has closed (at creation: the day before the
    /// ledger's first date). Dates after it are open until their period's payout point passes.
    pub closed_through: LedgerDate,
    /// The number the ledger's next payout gets.
    pub next_payout_number: i64,
}

/// The ledger date `t` falls on for a ledger in `time_zone` with `cutoff`: the civil date there,
/// moved back one day when `t` is before that date's cutoff instant.
///
/// A date runs from its cutoff instant to the next one ([`date_starts_at`]), so the date of a
/// later instant is never an earlier date. Comparing the local clock time with the cutoff would
/// not do that: when the clocks go back across the cutoff (02:30 on the last Sunday of October
/// in Europe), 02:15 of the repeated hour comes after 02:30 of the first one, and the date would
/// fall back a day for a quarter of an hour, after dates booked on and periods closed by it.
pub fn ledger_date_at(time_zone: &str, cutoff: Time, t: Timestamp) -> LedgerDate {
    let tz = TimeZone::get(time_zone).unwrap_or(TimeZone::UTC);
    let local = tz.to_datetime(t).date();
    let date = if t < date_starts_at(&tz, cutoff, local) {
        local.yesterday().unwrap_or(local)
    } else {
        local
    };
    LedgerDate::from_date(date)
}

/// The instant a ledger date begins: its cutoff in the ledger's zone. A cutoff the clocks skip
/// begins the date when they resume (the first local time at or after the cutoff); a cutoff
/// they pass twice, the first time.
pub fn date_starts_at(tz: &TimeZone, cutoff: Time, date: jiff::civil::Date) -> Timestamp {
    let at = jiff::civil::DateTime::from_parts(date, cutoff);
    let ambiguous = tz.to_ambiguous_timestamp(at);
    let start = match ambiguous.offset() {
        // Read with the offset after the gap, the cutoff lies before the gap: the zone's next
        // transition from there is the instant the clocks resume.
        jiff::tz::AmbiguousOffset::Gap { after, .. } => after
            .to_timestamp(at)
            .ok()
            .and_then(|before_gap| tz.following(before_gap).next())
            .map(|transition| transition.timestamp()),
        _ => ambiguous.earlier().ok(),
    };
    start.unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Ledger {
    /// The ledger date `t` falls on ([`ledger_date_at`]).
    pub fn ledger_date_of(&self, t: Timestamp) -> LedgerDate {
        ledger_date_at(&self.time_zone, self.cutoff, t)
    }

    /// The instant `date` begins on this ledger: its cutoff in the ledger's zone
    /// ([`date_starts_at`]).
    pub fn date_starts_at(&self, date: LedgerDate) -> Timestamp {
        let tz = TimeZone::get(&self.time_zone).unwrap_or(TimeZone::UTC);
        date_starts_at(&tz, self.cutoff, date.date())
    }

    /// Open dates are not complete yet: today's and later ones, and past dates whose payout
    /// period the engine has not closed yet.
    pub fn is_open(&self, date: LedgerDate, now: Timestamp) -> bool {
        date > self.closed_through || date >= self.ledger_date_of(now)
    }
}

/// Checks a time zone name against the time zone database.
pub fn parse_time_zone(field: &'static str, s: &str) -> Result<String, ParseError> {
    TimeZone::get(s)
        .map(|_| s.to_owned())
        .map_err(|_| ParseError::new(field, format!("{s} is not a known time zone")))
}

/// Parses a cutoff `HH:MM`.
pub fn parse_cutoff(field: &'static str, s: &str) -> Result<Time, ParseError> {
    let b = s.as_bytes();
    let bad = || ParseError::new(field, "must be a time of day HH:MM");
    if b.len() != 5
        || b[2] != b':'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return Err(bad());
    }
    let h = (b[0] - b'0') * 10 + (b[1] - b'0');
    let m = (b[3] - b'0') * 10 + (b[4] - b'0');
    Time::new(h as i8, m as i8, 0, 0).map_err(|_| bad())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerKind {
    /// Reads ledgers that merchants grant it, with accounting keys.
    Accounting,
    /// Integrates on merchants' behalf; never reads the Report API.
    Integration,
    /// Management keys; never reads the Report API.
    Management,
}

impl PartnerKind {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "accounting" => Ok(Self::Accounting),
            "integration" => Ok(Self::Integration),
            "management" => Ok(Self::Management),
            _ => Err(ParseError::new(
                field,
                "must be accounting, integration or management",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accounting => "accounting",
            Self::Integration => "integration",
            Self::Management => "management",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerState {
    Applied,
    Approved,
    Rejected,
    Suspended,
}

impl PartnerState {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "applied" => Ok(Self::Applied),
            "approved" => Ok(Self::Approved),
            "rejected" => Ok(Self::Rejected),
            "suspended" => Ok(Self::Suspended),
            _ => Err(ParseError::new(
                field,
                "must be applied, approved, rejected or suspended",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Suspended => "suspended",
        }
    }

    /// The operator's state changes: approve or reject an application, suspend an approved
    /// partner, reinstate a suspended one. Anything else is refused.
    pub fn may_become(self, next: PartnerState) -> bool {
        use PartnerState::*;
        matches!(
            (self, next),
            (Applied, Approved)
                | (Applied, Rejected)
                | (Approved, Suspended)
                | (Suspended, Approved)
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Partner {
    pub id: RowId,
    pub name: String,
    pub kind: PartnerKind,
    pub state: PartnerState,
    pub business: Option<BusinessId>,
    pub contact_email: String,
    pub created_at: Timestamp,
}

/// What a set of credentials belongs to, and so which token endpoint and which reads it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Bound to one api sales unit; `/accesstoken/get`.
    SalesUnit,
    /// An approved accounting partner's keys; `/miami/v1/token`.
    Accounting,
    /// Merchant-level keys of an organisation; `/miami/v1/token`.
    MerchantLevel,
    /// An integration partner's keys; `/accesstoken/get`; no Report API.
    Integration,
    /// Management keys; `/miami/v1/token`; no Report API.
    Management,
    /// The operator's service keys: post payment events to ingestion; no token, no Report API.
    Service,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SalesUnit => "sales-unit",
            Self::Accounting => "accounting",
            Self::MerchantLevel => "merchant-level",
            Self::Integration => "integration",
            Self::Management => "management",
            Self::Service => "service",
        }
    }

    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "service" => Ok(Self::Service),
            "sales-unit" => Ok(Self::SalesUnit),
            "accounting" => Ok(Self::Accounting),
            "merchant-level" => Ok(Self::MerchantLevel),
            "integration" => Ok(Self::Integration),
            "management" => Ok(Self::Management),
            _ => Err(ParseError::new(
                field,
                "must be sales-unit, accounting, merchant-level, integration, management or service",
            )),
        }
    }

    /// Keys of these kinds are exchanged at `/accesstoken/get` and carry subscription keys.
    pub fn uses_standard_token_endpoint(self) -> bool {
        matches!(self, Self::SalesUnit | Self::Integration)
    }
}

/// The owner of a set of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    SalesUnit(Msn),
    Partner(RowId),
    Merchant(RowId),
    /// The operator itself (service keys).
    Operator,
}

/// A set of credentials as stored: the secret only as a hash.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: RowId,
    pub kind: KeyKind,
    pub owner: KeyOwner,
    pub client_id: String,
    pub secret_hash: [u8; 32],
    /// Rises each time the secret is regenerated; tokens carry it, so older tokens die at once.
    pub generation: i64,
    /// Subscription keys (standard-endpoint keys only). Not secret: the portal shows them.
    pub subscription_keys: Option<[String; 2]>,
    pub revoked: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub partner_id: RowId,
    pub ledger_id: LedgerId,
    pub created_at: Timestamp,
    pub created_by: String,
    pub scope: GrantScope,
}

/// Where an access request stands: pending until the merchant approves or declines it, or the
/// partner withdraws it ([`crate::changes::request_transition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    Pending,
    Approved,
    Declined,
    Withdrawn,
}

impl RequestState {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "pending" => Ok(Self::Pending),
            "approved" => Ok(Self::Approved),
            "declined" => Ok(Self::Declined),
            "withdrawn" => Ok(Self::Withdrawn),
            _ => Err(ParseError::new(
                field,
                "must be pending, approved, declined or withdrawn",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Declined => "declined",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// A partner's request for access to a merchant's ledgers. `merchant_id` is `None` when the
/// organisation number named no merchant: the request is kept (the partner sees it pending, as
/// any other) but no merchant ever sees it, so asking reveals nothing about who is a merchant.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRequest {
    pub id: RowId,
    pub partner_id: RowId,
    /// The organisation number as the partner typed it.
    pub org_id: String,
    pub merchant_id: Option<RowId>,
    /// The sales units asked for; empty: all of the merchant's units.
    pub units: Vec<Msn>,
    pub scope: GrantScope,
    pub message: String,
    pub state: RequestState,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    /// Who approved, declined or withdrew it.
    pub decided_by: Option<String>,
    /// Made by a merchant answering the partner's invitation link (and so decided at once).
    pub invitation: bool,
}

/// The topics a grant covers: at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Topics {
    pub funds: bool,
    pub fees: bool,
}

impl Topics {
    pub const BOTH: Topics = Topics {
        funds: true,
        fees: true,
    };

    pub fn covers(self, topic: Topic) -> bool {
        match topic {
            Topic::Funds => self.funds,
            Topic::Fees => self.fees,
        }
    }

    /// `funds`, `fees` or `funds,fees` (the stored and command-line form; `fees,funds` too).
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        let mut t = Topics {
            funds: false,
            fees: false,
        };
        for part in s.split(',').map(str::trim) {
            match part {
                "funds" => t.funds = true,
                "fees" => t.fees = true,
                _ => {
                    return Err(ParseError::new(field, "must be funds, fees or funds,fees"));
                }
            }
        }
        Ok(t)
    }

    /// The stored and command-line form; empty when none is covered (which no grant may be).
    pub fn as_str(self) -> &'static str {
        match (self.funds, self.fees) {
            (true, true) => "funds,fees",
            (true, false) => "funds",
            (false, true) => "fees",
            (false, false) => "",
        }
    }

    pub fn list(self) -> Vec<Topic> {
        [Topic::Funds, Topic::Fees]
            .into_iter()
            .filter(|t| self.covers(*t))
            .collect()
    }
}

/// What a grant lets its partner read, as the merchant chose it: until when, which ledger dates
/// (both ends inclusive, either open), which topics, and whether personal data. A grant made
/// before scopes existed has [`GrantScope::EVERYTHING`], the meaning it always had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantScope {
    /// From this instant on the grant is as if it had never been made.
    pub expires_at: Option<Timestamp>,
    pub from: Option<LedgerDate>,
    pub to: Option<LedgerDate>,
    pub topics: Topics,
    /// Whether payers' names, messages and masked phone numbers may be read.
    pub personal_data: bool,
}

impl GrantScope {
    /// No expiry, every date, both topics, personal data: a grant without limits (and what the
    /// owner, its sales units and the operator read with).
    pub const EVERYTHING: GrantScope = GrantScope {
        expires_at: None,
        from: None,
        to: None,
        topics: Topics::BOTH,
        personal_data: true,
    };

    /// Whether the grant has expired at `now`: its expiry is `now` or earlier.
    pub fn expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    pub fn covers_date(&self, date: LedgerDate) -> bool {
        self.from.is_none_or(|f| f <= date) && self.to.is_none_or(|t| date <= t)
    }

    /// The ledger-date period in words, for messages: `2024-01-01 to 2024-03-31`,
    /// `2024-01-01 on`, `up to 2024-03-31` or `every date`.
    pub fn period(&self) -> String {
        match (self.from, self.to) {
            (Some(f), Some(t)) => format!("{f} to {t}"),
            (Some(f), None) => format!("{f} on"),
            (None, Some(t)) => format!("up to {t}"),
            (None, None) => "every date".to_owned(),
        }
    }

    /// The rules every scope must pass before it is stored, each error naming its field: at
    /// least one topic, `from` not after `to`, an expiry with whole microseconds between the
    /// years 2000 and 9999 (the precision and range times are stored and compared in).
    pub fn check(&self) -> Result<(), ParseError> {
        if !self.topics.funds && !self.topics.fees {
            return Err(ParseError::new("topics", "choose funds, fees or both"));
        }
        if let (Some(f), Some(t)) = (self.from, self.to)
            && f > t
        {
            return Err(ParseError::new(
                "from",
                format!("{f} is after the end of the period ({t})"),
            ));
        }
        if let Some(e) = self.expires_at {
            if e.subsec_nanosecond() % 1000 != 0 {
                return Err(ParseError::new(
                    "expires_at",
                    "must be a time in whole microseconds",
                ));
            }
            let year = TimeZone::UTC.to_datetime(e).year();
            if !(2000..=9999).contains(&year) {
                return Err(ParseError::new(
                    "expires_at",
                    "must be a time between the years 2000 and 9999",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(tz: &str, cutoff: &str) -> Ledger {
        Ledger {
            ledger_id: LedgerId::parse("l", "1").expect("id"),
            currency: Currency::NOK,
            payout_account: BankAccount::parse("a", "BBAN:NO", "86011117947").expect("acct"),
            owner_merchant_id: 1,
            time_zone: tz.into(),
            cutoff: parse_cutoff("c", cutoff).expect("cutoff"),
            payout_frequency: PayoutFrequency::Daily,
            settlement_mode: SettlementMode::Net,
            fee_plan: FeePlan::default(),
            page_size: DEFAULT_PAGE_SIZE,
            created_at: Timestamp::UNIX_EPOCH,
            closed_through: LedgerDate::parse("d", "1970-01-01").expect("date"),
            next_payout_number: 2_000_001,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn a_ledger_date_starts_at_the_cutoff_in_the_ledgers_zone() {
        let l = ledger("Europe/Oslo", "04:00");
        // 03:59 local on 2 October (UTC+2) is still 1 October's ledger date.
        assert_eq!(
            l.ledger_date_of(at("2022-10-02T01:59:00Z")).to_string(),
            "2022-10-01"
        );
        assert_eq!(
            l.ledger_date_of(at("2022-10-02T02:00:00Z")).to_string(),
            "2022-10-02"
        );
        // Midnight cutoff in UTC+1 winter time.
        let m = ledger("Europe/Oslo", "00:00");
        assert_eq!(
            m.ledger_date_of(at("2022-12-31T23:00:00Z")).to_string(),
            "2023-01-01"
        );
        assert_eq!(
            m.ledger_date_of(at("2022-12-31T22:59:59Z")).to_string(),
            "2022-12-31"
        );
    }

    #[test]
    fn the_cutoff_follows_daylight_saving_changes() {
        let l = ledger("Europe/Oslo", "04:00");
        // 2024-03-31: clocks go from 02:00 to 03:00; 04:00 local is 02:00Z.
        assert_eq!(
            l.ledger_date_of(at("2024-03-31T01:59:59Z")).to_string(),
            "2024-03-30"
        );
        assert_eq!(
            l.ledger_date_of(at("2024-03-31T02:00:00Z")).to_string(),
            "2024-03-31"
        );
        // 2024-10-27: clocks go from 03:00 back to 02:00; 04:00 local is 03:00Z.
        assert_eq!(
            l.ledger_date_of(at("2024-10-27T02:59:59Z")).to_string(),
            "2024-10-26"
        );
        assert_eq!(
            l.ledger_date_of(at("2024-10-27T03:00:00Z")).to_string(),
            "2024-10-27"
        );
    }

    #[test]
    fn a_cutoff_in_the_repeated_hour_begins_the_date_once() {
        // 2024-10-27 in Copenhagen: 03:00 CEST (01:00Z) becomes 02:00 CET, so 02:00-03:00 local
        // happens twice. With a 02:30 cutoff the date begins at the first 02:30 (00:30Z); the
        // repeated hour's 02:15 (01:15Z) is later and stays on 2024-10-27.
        let l = ledger("Europe/Copenhagen", "02:30");
        let date = |t: &str| l.ledger_date_of(at(t)).to_string();
        assert_eq!(date("2024-10-27T00:29:59Z"), "2024-10-26");
        assert_eq!(date("2024-10-27T00:30:00Z"), "2024-10-27");
        assert_eq!(date("2024-10-27T01:15:00Z"), "2024-10-27");
        assert_eq!(date("2024-10-27T01:30:00Z"), "2024-10-27");
        assert_eq!(date("2024-10-28T01:29:59Z"), "2024-10-27");
        assert_eq!(date("2024-10-28T01:30:00Z"), "2024-10-28");
        // Minute by minute through the change, the date never goes back.
        let mut t = at("2024-10-26T20:00:00Z");
        let mut last = l.ledger_date_of(t);
        for _ in 0..(10 * 60) {
            t += jiff::SignedDuration::from_mins(1);
            let d = l.ledger_date_of(t);
            assert!(d >= last, "{t}: {d} after {last}");
            last = d;
        }
        // A cutoff the clocks skip (2024-03-31, 02:00 becomes 03:00) begins the date at 03:00,
        // and the date before ends there.
        assert_eq!(date("2024-03-31T00:59:59Z"), "2024-03-30");
        assert_eq!(date("2024-03-31T01:00:00Z"), "2024-03-31");
        let d = |s: &str| LedgerDate::parse("d", s).expect("date");
        assert_eq!(
            l.date_starts_at(d("2024-03-31")),
            at("2024-03-31T01:00:00Z")
        );
        assert_eq!(
            l.date_starts_at(d("2024-10-27")),
            at("2024-10-27T00:30:00Z")
        );
        assert_eq!(
            l.date_starts_at(d("2024-10-28")),
            at("2024-10-28T01:30:00Z")
        );
    }

    #[test]
    fn partners_change_state_only_along_the_operator_paths() {
        use PartnerState::*;
        assert!(Applied.may_become(Approved));
        assert!(Approved.may_become(Suspended));
        assert!(Suspended.may_become(Approved));
        assert!(!Rejected.may_become(Approved));
        assert!(!Applied.may_become(Suspended));
    }

    #[test]
    fn a_scope_is_checked_field_by_field() {
        let d = |s: &str| LedgerDate::parse("d", s).expect("date");
        let all = GrantScope::EVERYTHING;
        assert_eq!(all.check(), Ok(()));
        let none = GrantScope {
            topics: Topics {
                funds: false,
                fees: false,
            },
            ..all
        };
        assert_eq!(none.check().map_err(|e| e.field), Err("topics"));
        let backwards = GrantScope {
            from: Some(d("2024-03-01")),
            to: Some(d("2024-02-29")),
            ..all
        };
        assert_eq!(backwards.check().map_err(|e| e.field), Err("from"));
        let one_day = GrantScope {
            from: Some(d("2024-02-29")),
            to: Some(d("2024-02-29")),
            ..all
        };
        assert_eq!(one_day.check(), Ok(()));
        let nanos = GrantScope {
            expires_at: Some("2030-01-01T00:00:00.000000001Z".parse().expect("ts")),
            ..all
        };
        assert_eq!(nanos.check().map_err(|e| e.field), Err("expires_at"));
        let ancient = GrantScope {
            expires_at: Some(Timestamp::UNIX_EPOCH),
            ..all
        };
        assert_eq!(ancient.check().map_err(|e| e.field), Err("expires_at"));
    }

    #[test]
    fn topics_read_and_print_alike() {
        for s in ["funds", "fees", "funds,fees"] {
            assert_eq!(Topics::parse("topics", s).expect("topics").as_str(), s);
        }
        assert_eq!(
            Topics::parse("topics", "fees,funds").expect("topics"),
            Topics::BOTH
        );
        for bad in ["", "funds,", "payouts", "funds;fees"] {
            assert_eq!(
                Topics::parse("topics", bad).map_err(|e| e.field),
                Err("topics"),
                "{bad}"
            );
        }
    }
}
