//! The access policy: who may read which ledger, through the Report API, the portal or the
//! operator's tools.
//!
//! Three functions hold every rule:
//!
//! - [`authenticate`] turns a stored key (with its partner's state) and what was presented with
//!   it (a secret at a token endpoint, or a verified token) into a [`Principal`], or refuses.
//!   It is the only way from API credentials to a principal, and it only ever makes key
//!   principals: portal and operator principals are made by the code that signed their person in
//!   (a portal session, the local command line), never from a token.
//! - [`decide`] is the whole read rule, a pure function of the principal and the facts of one
//!   ledger. Its only way to say "yes" is a [`LedgerAccess`], which has no public constructor,
//!   and which every read of a ledger's entries takes as an argument.
//! - [`list_scope`] picks the keyset query a listing may run; every ledger it returns still goes
//!   through [`decide`].
//!
//! A grant carries a scope ([`GrantScope`]): an expiry, a ledger-date range, topics and whether
//! personal data may be read. [`decide`] holds those rules too: a grant that has expired when
//! the facts were read grants nothing (the same "no such ledger" as a ledger never granted), and
//! the "yes" carries the rest of the scope, which the read path applies
//! ([`LedgerAccess::check_topic`], [`LedgerAccess::check_date`], the store's feed by its date
//! range, [`LedgerAccess::personal_data`]).
//!
//! A ledger's own description (currency, units, account, owner) is read as a [`Guarded`] value
//! together with its facts, and only a decision opens it; so neither entries nor a ledger's
//! metadata can be read without one:
//!
//! ```
//! use ledgerport_core::access::{Guarded, LedgerFacts, Principal};
//! use ledgerport_core::ids::LedgerId;
//! let facts = LedgerFacts {
//!     ledger_id: LedgerId::parse("l", "100").unwrap(),
//!     owner_merchant_id: 1,
//!     settles_for: vec![],
//!     grants: vec![],
//!     as_of: jiff::Timestamp::UNIX_EPOCH,
//! };
//! let ledger = Guarded::new(facts, "the ledger's description");
//! let owner = Principal::MerchantLevel { key_id: 5, merchant_id: 1 };
//! let (access, description) = ledger.open(&owner).unwrap();
//! assert_eq!(description, "the ledger's description");
//! assert_eq!(access.ledger_id().as_str(), "100");
//! ```
//!
//! The same without a decision does not compile: the value has no public field or getter.
//!
//! ```compile_fail,E0616
//! use ledgerport_core::access::{Guarded, LedgerFacts};
//! use ledgerport_core::ids::LedgerId;
//! let facts = LedgerFacts {
//!     ledger_id: LedgerId::parse("l", "100").unwrap(),
//!     owner_merchant_id: 1,
//!     settles_for: vec![],
//!     grants: vec![],
//!     as_of: jiff::Timestamp::UNIX_EPOCH,
//! };
//! let ledger = Guarded::new(facts, "the ledger's description");
//! let description = ledger.value;
//! ```
//!
//! A [`LedgerAccess`] comes only from a decision ...
//!
//! ```
//! use ledgerport_core::access::{decide, Decision, LedgerAccess, LedgerFacts, Principal};
//! use ledgerport_core::ids::LedgerId;
//! let facts = LedgerFacts {
//!     ledger_id: LedgerId::parse("l", "100").unwrap(),
//!     owner_merchant_id: 1,
//!     settles_for: vec![],
//!     grants: vec![],
//!     as_of: jiff::Timestamp::UNIX_EPOCH,
//! };
//! let access: LedgerAccess = match decide(&Principal::Operator { user_id: None }, Some(&facts)) {
//!     Decision::Allow(a) => a,
//!     _ => unreachable!(),
//! };
//! ```
//!
//! ... and cannot be built outside this module: its fields are private and it has no
//! constructor.
//!
//! ```compile_fail,E0451
//! use ledgerport_core::access::{LedgerAccess, Principal};
//! use ledgerport_core::ids::LedgerId;
//! let access = LedgerAccess {
//!     ledger_id: LedgerId::parse("l", "100").unwrap(),
//!     reader: Principal::Operator { user_id: None },
//!     scope: ledgerport_core::world::GrantScope::EVERYTHING,
//! };
//! ```

use crate::ids::{LedgerDate, LedgerId, Msn, RecipientHandle, Topic};
use crate::world::{ApiKey, GrantScope, KeyKind, KeyOwner, PartnerState, RowId};
use jiff::Timestamp;

/// Whoever a read is made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Sales-unit keys of one api sales unit.
    SalesUnit { key_id: RowId, msn: Msn },
    /// An approved accounting partner's accounting keys.
    Accounting { key_id: RowId, partner_id: RowId },
    /// Merchant-level keys of an organisation.
    MerchantLevel { key_id: RowId, merchant_id: RowId },
    /// Integration partner keys: no Report API.
    Integration { key_id: RowId, partner_id: RowId },
    /// Management keys: no Report API.
    Management { key_id: RowId, partner_id: RowId },
    /// A merchant's user signed in to the portal: the ledgers its organisation owns. Made only
    /// from a portal session.
    PortalMerchant { user_id: RowId, merchant_id: RowId },
    /// An accounting partner's user signed in to the portal: the ledgers granted to its partner
    /// while the partner is approved. Made only from a portal session.
    PortalPartner { user_id: RowId, partner_id: RowId },
    /// A merchant's webhook endpoint when an event is delivered: as the merchant's portal users.
    /// Made only by the server's webhook sender.
    WebhookMerchant {
        endpoint_id: RowId,
        merchant_id: RowId,
    },
    /// A partner's webhook endpoint when an event is delivered: as the partner's portal users.
    /// Made only by the server's webhook sender.
    WebhookPartner {
        endpoint_id: RowId,
        partner_id: RowId,
    },
    /// Ledgerport's operator: every ledger. Made only by the command line on the operator's own
    /// machine (`user_id` None) and from an operator's portal session.
    Operator { user_id: Option<RowId> },
}

impl Principal {
    /// The API key a key principal stands for; None for portal users and the operator.
    pub fn key_id(&self) -> Option<RowId> {
        match self {
            Principal::SalesUnit { key_id, .. }
            | Principal::Accounting { key_id, .. }
            | Principal::MerchantLevel { key_id, .. }
            | Principal::Integration { key_id, .. }
            | Principal::Management { key_id, .. } => Some(*key_id),
            Principal::PortalMerchant { .. }
            | Principal::PortalPartner { .. }
            | Principal::WebhookMerchant { .. }
            | Principal::WebhookPartner { .. }
            | Principal::Operator { .. } => None,
        }
    }

    /// The portal user a portal principal stands for; None for keys and the command line.
    pub fn user_id(&self) -> Option<RowId> {
        match self {
            Principal::PortalMerchant { user_id, .. }
            | Principal::PortalPartner { user_id, .. } => Some(*user_id),
            Principal::Operator { user_id } => *user_id,
            _ => None,
        }
    }
}

/// What the policy needs to know about one ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerFacts {
    pub ledger_id: LedgerId,
    pub owner_merchant_id: RowId,
    pub settles_for: Vec<RecipientHandle>,
    /// The grants on this ledger of approved partners, with their scopes; expired ones may be
    /// among them (the decision leaves them out by `as_of`).
    pub grants: Vec<StandingGrant>,
    /// When these facts were read: the instant expiries are judged at. The store sets it from
    /// its clock with the same instant its listing queries leave expired grants out by, so a
    /// listing and a read agree.
    pub as_of: Timestamp,
}

/// One partner's grant on a ledger, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingGrant {
    pub partner_id: RowId,
    pub scope: GrantScope,
}

/// Proof that the policy allowed `reader` to read `ledger_id` within `scope`. Only [`decide`]
/// makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerAccess {
    ledger_id: LedgerId,
    reader: Principal,
    scope: GrantScope,
}

/// A read on a ledger the principal may read, but outside what its grant covers: a 403 that
/// names the scope (unlike an unreadable ledger, this reveals nothing the reader does not know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutOfScope {
    Topic(Topic),
    /// A ledger date outside the grant's period, given in words ([`GrantScope::period`]).
    Date {
        date: LedgerDate,
        period: String,
    },
}

impl std::fmt::Display for OutOfScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutOfScope::Topic(t) => write!(
                f,
                "topic: the grant on this ledger does not cover the topic {}",
                t.as_str()
            ),
            OutOfScope::Date { date, period } => write!(
                f,
                "ledgerDate: {date} is outside the grant's period ({period})"
            ),
        }
    }
}

impl LedgerAccess {
    pub fn ledger_id(&self) -> &LedgerId {
        &self.ledger_id
    }

    /// Who was allowed: the key, portal user or operator a read is attributed to.
    pub fn reader(&self) -> &Principal {
        &self.reader
    }

    /// What may be read: the grant's scope for a partner, [`GrantScope::EVERYTHING`] for
    /// everyone else.
    pub fn scope(&self) -> &GrantScope {
        &self.scope
    }

    pub fn check_topic(&self, topic: Topic) -> Result<(), OutOfScope> {
        if self.scope.topics.covers(topic) {
            Ok(())
        } else {
            Err(OutOfScope::Topic(topic))
        }
    }

    pub fn check_date(&self, date: LedgerDate) -> Result<(), OutOfScope> {
        if self.scope.covers_date(date) {
            Ok(())
        } else {
            Err(OutOfScope::Date {
                date,
                period: self.scope.period(),
            })
        }
    }

    /// Whether payers' personal data may be read; when not, it is withheld from every entry.
    pub fn personal_data(&self) -> bool {
        self.scope.personal_data
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(LedgerAccess),
    /// The ledger does not exist or may not be read; the two answer identically on the wire.
    NoSuchLedger,
    /// These credentials may never use the Report API.
    Forbidden,
}

/// The rule. `ledger` is `None` when no ledger has the requested id.
pub fn decide(p: &Principal, ledger: Option<&LedgerFacts>) -> Decision {
    // Credentials that may never read are refused whatever the ledger, even a missing one.
    if matches!(
        p,
        Principal::Integration { .. } | Principal::Management { .. }
    ) {
        return Decision::Forbidden;
    }
    let Some(l) = ledger else {
        return Decision::NoSuchLedger;
    };
    let everything = |allowed: bool| allowed.then_some(GrantScope::EVERYTHING);
    let scope = match p {
        // Only a ledger that settles for exactly this unit: a multi-unit ledger is not visible
        // through one unit's keys.
        Principal::SalesUnit { msn, .. } => {
            everything(l.settles_for.len() == 1 && l.settles_for[0] == RecipientHandle::Api(*msn))
        }
        // The partner's grant, unless it has expired: from its expiry on, the ledger is as if
        // it had never been granted. The rest of the grant's scope goes with the "yes".
        Principal::Accounting { partner_id, .. }
        | Principal::PortalPartner { partner_id, .. }
        | Principal::WebhookPartner { partner_id, .. } => l
            .grants
            .iter()
            .find(|g| g.partner_id == *partner_id && !g.scope.expired_at(l.as_of))
            .map(|g| g.scope),
        Principal::MerchantLevel { merchant_id, .. }
        | Principal::PortalMerchant { merchant_id, .. }
        | Principal::WebhookMerchant { merchant_id, .. } => {
            everything(l.owner_merchant_id == *merchant_id)
        }
        Principal::Operator { .. } => everything(true),
        Principal::Integration { .. } | Principal::Management { .. } => None,
    };
    match scope {
        Some(scope) => Decision::Allow(LedgerAccess {
            ledger_id: l.ledger_id.clone(),
            reader: p.clone(),
            scope,
        }),
        None => Decision::NoSuchLedger,
    }
}

/// Why a guarded ledger was not opened: [`Decision`]'s two refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoSuchLedger,
    Forbidden,
}

/// Something read about one ledger (its description, for instance) together with the ledger's
/// facts, which only an allowing [`decide`] opens: the store returns ledger metadata this way, so
/// that, like entries, it cannot be read without a decision.
#[derive(Debug, Clone)]
pub struct Guarded<T> {
    facts: LedgerFacts,
    value: T,
}

impl<T> Guarded<T> {
    /// Wraps what was read about the ledger `facts` describes. Wrapping grants nothing.
    pub fn new(facts: LedgerFacts, value: T) -> Self {
        Guarded { facts, value }
    }

    pub fn facts(&self) -> &LedgerFacts {
        &self.facts
    }

    /// Asks the policy; on "yes", the access and the value.
    pub fn open(self, p: &Principal) -> Result<(LedgerAccess, T), Refusal> {
        match decide(p, Some(&self.facts)) {
            Decision::Allow(a) => Ok((a, self.value)),
            Decision::NoSuchLedger => Err(Refusal::NoSuchLedger),
            Decision::Forbidden => Err(Refusal::Forbidden),
        }
    }
}

/// [`Guarded::open`] for a ledger that may not exist: a missing ledger is refused like one the
/// principal may not read (or as forbidden, for credentials that may never read).
pub fn open<T>(p: &Principal, ledger: Option<Guarded<T>>) -> Result<(LedgerAccess, T), Refusal> {
    match ledger {
        Some(g) => g.open(p),
        None => match decide(p, None) {
            Decision::Forbidden => Err(Refusal::Forbidden),
            _ => Err(Refusal::NoSuchLedger),
        },
    }
}

/// Which ledgers a listing may look at for this principal; the store turns it into one keyset
/// query, and every ledger it returns still goes through [`decide`]. None: credentials that may
/// never read, and the operator, who reads the whole world through the store's own listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// Ledgers settling for exactly this one handle.
    SoleHandle(RecipientHandle),
    GrantedTo(RowId),
    OwnedBy(RowId),
}

pub fn list_scope(p: &Principal) -> Option<ListScope> {
    match p {
        Principal::SalesUnit { msn, .. } => Some(ListScope::SoleHandle(RecipientHandle::Api(*msn))),
        Principal::Accounting { partner_id, .. }
        | Principal::PortalPartner { partner_id, .. }
        | Principal::WebhookPartner { partner_id, .. } => Some(ListScope::GrantedTo(*partner_id)),
        Principal::MerchantLevel { merchant_id, .. }
        | Principal::PortalMerchant { merchant_id, .. }
        | Principal::WebhookMerchant { merchant_id, .. } => Some(ListScope::OwnedBy(*merchant_id)),
        Principal::Integration { .. }
        | Principal::Management { .. }
        | Principal::Operator { .. } => None,
    }
}

/// Where API credentials are being presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// The key's secret at `/accesstoken/get` (already checked against the stored hash).
    StandardTokenRequest,
    /// The key's secret at `/miami/v1/token` (already checked against the stored hash).
    MiamiTokenRequest,
    /// A bearer token whose signature, issuer, audience and times have been verified: what it
    /// says about the key it was issued from.
    Token {
        client_id: &'a str,
        key_type: &'a str,
        generation: i64,
    },
}

/// Why credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAuthenticated {
    /// Revoked, regenerated since the token, not this endpoint's kind of key, a partner not
    /// approved, a token that does not match its key, or keys that never get a token. All answer
    /// alike on the wire.
    Refused,
    /// The stored key's owner does not fit its kind: the database is inconsistent.
    Inconsistent(String),
}

/// The one rule for API credentials. `key` is the stored key the credentials name (read afresh
/// on every request, so a revocation, regeneration or suspension counts at once); `partner` is
/// the state of its partner, for a partner's key (None when the partner is unknown or the key has
/// none).
pub fn authenticate(
    key: &ApiKey,
    partner: Option<PartnerState>,
    presented: Presented<'_>,
) -> Result<Principal, NotAuthenticated> {
    use NotAuthenticated::Refused;
    if key.revoked {
        return Err(Refused);
    }
    let fits = match presented {
        Presented::StandardTokenRequest => key.kind.uses_standard_token_endpoint(),
        Presented::MiamiTokenRequest => matches!(
            key.kind,
            KeyKind::Accounting | KeyKind::MerchantLevel | KeyKind::Management
        ),
        Presented::Token {
            client_id,
            key_type,
            generation,
        } => {
            key.generation == generation
                && key.client_id == client_id
                && key.kind.as_str() == key_type
        }
    };
    if !fits {
        return Err(Refused);
    }
    let key_id = key.id;
    match (key.kind, key.owner) {
        (KeyKind::SalesUnit, KeyOwner::SalesUnit(msn)) => Ok(Principal::SalesUnit { key_id, msn }),
        (KeyKind::MerchantLevel, KeyOwner::Merchant(merchant_id)) => Ok(Principal::MerchantLevel {
            key_id,
            merchant_id,
        }),
        (
            kind @ (KeyKind::Accounting | KeyKind::Integration | KeyKind::Management),
            KeyOwner::Partner(partner_id),
        ) => {
            if partner != Some(PartnerState::Approved) {
                return Err(Refused);
            }
            Ok(match kind {
                KeyKind::Accounting => Principal::Accounting { key_id, partner_id },
                KeyKind::Integration => Principal::Integration { key_id, partner_id },
                _ => Principal::Management { key_id, partner_id },
            })
        }
        // Service keys post events to ingestion; they never get a token, so a token naming one
        // (signed by us, so made by hand from our key) is refused like any bad token.
        (KeyKind::Service, KeyOwner::Operator) => Err(Refused),
        (kind, owner) => Err(NotAuthenticated::Inconsistent(format!(
            "key {} of kind {} has the owner {owner:?}",
            key.id,
            kind.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msn(s: &str) -> Msn {
        Msn::parse("msn", s).expect("msn")
    }

    fn facts(id: &str, owner: RowId, handles: &[&str], grants: &[RowId]) -> LedgerFacts {
        LedgerFacts {
            ledger_id: LedgerId::parse("l", id).expect("id"),
            owner_merchant_id: owner,
            settles_for: handles
                .iter()
                .map(|h| RecipientHandle::parse("h", h).expect("h"))
                .collect(),
            grants: grants
                .iter()
                .map(|&partner_id| StandingGrant {
                    partner_id,
                    scope: GrantScope::EVERYTHING,
                })
                .collect(),
            as_of: Timestamp::UNIX_EPOCH,
        }
    }

    fn date(s: &str) -> LedgerDate {
        LedgerDate::parse("d", s).expect("date")
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    /// A grant's scope against what a partner's principal may do on the ledger, one row per
    /// scope: the decision (A allow, N no such ledger), then for the allowed ones the topics
    /// funds and fees, the dates 2024-01-01, 2024-02-15 and 2024-12-31 (Y covered, S out of
    /// scope), and personal data (P allowed, W withheld). The facts are read at 2024-06-01.
    #[test]
    fn the_scope_table() {
        use crate::world::Topics;
        let as_of = at("2024-06-01T00:00:00Z");
        let all = GrantScope::EVERYTHING;
        let table: &[(&str, GrantScope, &str)] = &[
            ("no limits", all, "A YY YYY P"),
            (
                "expired a microsecond ago",
                GrantScope {
                    expires_at: Some(at("2024-05-31T23:59:59.999999Z")),
                    ..all
                },
                "N",
            ),
            (
                "expiring at the very instant",
                GrantScope {
                    expires_at: Some(as_of),
                    ..all
                },
                "N",
            ),
            (
                "expiring a microsecond later",
                GrantScope {
                    expires_at: Some(at("2024-06-01T00:00:00.000001Z")),
                    ..all
                },
                "A YY YYY P",
            ),
            (
                "from February 15th",
                GrantScope {
                    from: Some(date("2024-02-15")),
                    ..all
                },
                "A YY SYY P",
            ),
            (
                "up to February 15th",
                GrantScope {
                    to: Some(date("2024-02-15")),
                    ..all
                },
                "A YY YYS P",
            ),
            (
                "February 15th only",
                GrantScope {
                    from: Some(date("2024-02-15")),
                    to: Some(date("2024-02-15")),
                    ..all
                },
                "A YY SYS P",
            ),
            (
                "funds only",
                GrantScope {
                    topics: Topics {
                        funds: true,
                        fees: false,
                    },
                    ..all
                },
                "A YS YYY P",
            ),
            (
                "fees only, no personal data",
                GrantScope {
                    topics: Topics {
                        funds: false,
                        fees: true,
                    },
                    personal_data: false,
                    ..all
                },
                "A SY YYY W",
            ),
        ];
        let dates = [date("2024-01-01"), date("2024-02-15"), date("2024-12-31")];
        let yes = |r: Result<(), OutOfScope>| if r.is_ok() { 'Y' } else { 'S' };
        for (name, scope, expected) in table {
            let mut l = facts("100", 1, &["api:123455"], &[]);
            l.as_of = as_of;
            l.grants = vec![
                StandingGrant {
                    partner_id: 7,
                    scope: *scope,
                },
                // Another partner's grant lends nothing.
                StandingGrant {
                    partner_id: 8,
                    scope: all,
                },
            ];
            for p in [
                Principal::Accounting {
                    key_id: 3,
                    partner_id: 7,
                },
                Principal::PortalPartner {
                    user_id: 3,
                    partner_id: 7,
                },
            ] {
                let got = match decide(&p, Some(&l)) {
                    Decision::Allow(a) => {
                        assert_eq!(a.scope(), scope);
                        let topics: String = [Topic::Funds, Topic::Fees]
                            .into_iter()
                            .map(|t| yes(a.check_topic(t)))
                            .collect();
                        let days: String = dates.iter().map(|d| yes(a.check_date(*d))).collect();
                        let pd = if a.personal_data() { 'P' } else { 'W' };
                        format!("A {topics} {days} {pd}")
                    }
                    Decision::NoSuchLedger => "N".to_owned(),
                    Decision::Forbidden => "F".to_owned(),
                };
                assert_eq!(&got, expected, "{name}, {p:?}");
            }
            // The owner, its unit and the operator read everything whatever the grants say.
            for p in [
                Principal::MerchantLevel {
                    key_id: 5,
                    merchant_id: 1,
                },
                Principal::SalesUnit {
                    key_id: 1,
                    msn: msn("123455"),
                },
                Principal::Operator { user_id: None },
            ] {
                match decide(&p, Some(&l)) {
                    Decision::Allow(a) => assert_eq!(a.scope(), &all, "{name}, {p:?}"),
                    other => panic!("{name}, {p:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn an_expired_grant_answers_as_one_never_made() {
        let p = Principal::Accounting {
            key_id: 3,
            partner_id: 7,
        };
        let mut expired = facts("100", 1, &["api:123455"], &[7]);
        expired.grants[0].scope.expires_at = Some(at("2024-01-01T00:00:00Z"));
        expired.as_of = at("2024-01-01T00:00:00Z");
        let never = facts("100", 1, &["api:123455"], &[]);
        assert_eq!(decide(&p, Some(&expired)), decide(&p, Some(&never)));
        assert_eq!(decide(&p, Some(&expired)), decide(&p, None));
        expired.as_of = at("2023-12-31T23:59:59Z");
        assert!(matches!(decide(&p, Some(&expired)), Decision::Allow(_)));
    }

    #[test]
    fn out_of_scope_messages_name_the_field_and_the_scope() {
        let topic = OutOfScope::Topic(Topic::Fees).to_string();
        assert!(
            topic.starts_with("topic: ") && topic.contains("fees"),
            "{topic}"
        );
        let d = OutOfScope::Date {
            date: date("2024-01-01"),
            period: GrantScope {
                from: Some(date("2024-02-01")),
                to: Some(date("2024-02-29")),
                ..GrantScope::EVERYTHING
            }
            .period(),
        }
        .to_string();
        assert_eq!(
            d,
            "ledgerDate: 2024-01-01 is outside the grant's period (2024-02-01 to 2024-02-29)"
        );
    }

    /// One row per (principal, ledger) pair: the expected answer, as a letter.
    #[test]
    fn the_policy_table() {
        let single = facts("100", 1, &["api:123455"], &[7]);
        let multi = facts("200", 1, &["api:123455", "NO:57860"], &[7]);
        let vm = facts("300", 1, &["NO:57860"], &[]);
        let other = facts("400", 2, &["api:222222"], &[8]);
        let su = Principal::SalesUnit {
            key_id: 1,
            msn: msn("123455"),
        };
        let su_other = Principal::SalesUnit {
            key_id: 2,
            msn: msn("222222"),
        };
        let acc = Principal::Accounting {
            key_id: 3,
            partner_id: 7,
        };
        let acc_none = Principal::Accounting {
            key_id: 4,
            partner_id: 9,
        };
        let ml = Principal::MerchantLevel {
            key_id: 5,
            merchant_id: 1,
        };
        let ml_other = Principal::MerchantLevel {
            key_id: 6,
            merchant_id: 3,
        };
        let int = Principal::Integration {
            key_id: 10,
            partner_id: 7,
        };
        let mgmt = Principal::Management {
            key_id: 11,
            partner_id: 7,
        };
        let pm = Principal::PortalMerchant {
            user_id: 20,
            merchant_id: 1,
        };
        let pm_other = Principal::PortalMerchant {
            user_id: 21,
            merchant_id: 2,
        };
        let pp = Principal::PortalPartner {
            user_id: 22,
            partner_id: 7,
        };
        let pp_none = Principal::PortalPartner {
            user_id: 23,
            partner_id: 9,
        };
        let cli = Principal::Operator { user_id: None };
        let console = Principal::Operator { user_id: Some(24) };
        // A = allow, N = no such ledger, F = forbidden. Columns: single, multi, vm, other, missing.
        let table: &[(&Principal, &str)] = &[
            (&su, "ANNNN"),
            (&su_other, "NNNAN"),
            (&acc, "AANNN"),
            (&acc_none, "NNNNN"),
            (&ml, "AAANN"),
            (&ml_other, "NNNNN"),
            (&int, "FFFFF"),
            (&mgmt, "FFFFF"),
            // A merchant's portal user sees every ledger its organisation owns, multi-unit and
            // vm-number ones included, like its merchant-level keys.
            (&pm, "AAANN"),
            (&pm_other, "NNNAN"),
            // A partner's portal user sees what its partner's accounting keys see.
            (&pp, "AANNN"),
            (&pp_none, "NNNNN"),
            // The operator sees every ledger that exists.
            (&cli, "AAAAN"),
            (&console, "AAAAN"),
        ];
        let ledgers = [Some(&single), Some(&multi), Some(&vm), Some(&other), None];
        for (p, expected) in table {
            let got: String = ledgers
                .iter()
                .map(|l| {
                    let letter = match decide(p, *l) {
                        Decision::Allow(a) => {
                            assert_eq!(a.reader(), *p);
                            assert_eq!(Some(a.ledger_id()), l.map(|l| &l.ledger_id));
                            'A'
                        }
                        Decision::NoSuchLedger => 'N',
                        Decision::Forbidden => 'F',
                    };
                    // Opening a guarded ledger is the same decision.
                    let opened = match open(p, l.map(|f| Guarded::new(f.clone(), ()))) {
                        Ok(_) => 'A',
                        Err(Refusal::NoSuchLedger) => 'N',
                        Err(Refusal::Forbidden) => 'F',
                    };
                    assert_eq!(letter, opened, "{p:?} {l:?}");
                    letter
                })
                .collect();
            assert_eq!(&got, expected, "{p:?}");
        }
    }

    #[test]
    fn a_removed_grant_is_no_access() {
        let before = facts("100", 1, &["api:123455"], &[7, 8]);
        let after = facts("100", 1, &["api:123455"], &[8]);
        for p in [
            Principal::Accounting {
                key_id: 3,
                partner_id: 7,
            },
            Principal::PortalPartner {
                user_id: 3,
                partner_id: 7,
            },
            Principal::WebhookPartner {
                endpoint_id: 3,
                partner_id: 7,
            },
        ] {
            assert!(matches!(decide(&p, Some(&before)), Decision::Allow(_)));
            assert_eq!(decide(&p, Some(&after)), Decision::NoSuchLedger);
        }
    }

    #[test]
    fn a_merchants_webhook_endpoint_sees_its_own_ledgers_only() {
        let own = facts("100", 1, &["api:123455"], &[7]);
        let other = facts("101", 2, &["api:123456"], &[7]);
        let p = Principal::WebhookMerchant {
            endpoint_id: 5,
            merchant_id: 1,
        };
        assert!(matches!(decide(&p, Some(&own)), Decision::Allow(_)));
        assert_eq!(decide(&p, Some(&other)), Decision::NoSuchLedger);
        assert_eq!(p.key_id(), None);
        assert_eq!(p.user_id(), None);
    }

    #[test]
    fn listing_scopes_follow_the_principal() {
        let cases = [
            (
                Principal::Management {
                    key_id: 1,
                    partner_id: 1,
                },
                None,
            ),
            (
                Principal::Integration {
                    key_id: 1,
                    partner_id: 1,
                },
                None,
            ),
            (
                Principal::Accounting {
                    key_id: 1,
                    partner_id: 4,
                },
                Some(ListScope::GrantedTo(4)),
            ),
            (
                Principal::PortalPartner {
                    user_id: 1,
                    partner_id: 4,
                },
                Some(ListScope::GrantedTo(4)),
            ),
            (
                Principal::MerchantLevel {
                    key_id: 1,
                    merchant_id: 5,
                },
                Some(ListScope::OwnedBy(5)),
            ),
            (
                Principal::PortalMerchant {
                    user_id: 1,
                    merchant_id: 5,
                },
                Some(ListScope::OwnedBy(5)),
            ),
            (
                Principal::SalesUnit {
                    key_id: 1,
                    msn: msn("123455"),
                },
                Some(ListScope::SoleHandle(RecipientHandle::Api(msn("123455")))),
            ),
            (Principal::Operator { user_id: None }, None),
        ];
        for (p, scope) in cases {
            assert_eq!(list_scope(&p), scope, "{p:?}");
        }
    }

    fn key(kind: KeyKind, owner: KeyOwner) -> ApiKey {
        ApiKey {
            id: 42,
            kind,
            owner,
            client_id: "client".into(),
            secret_hash: [0; 32],
            generation: 3,
            subscription_keys: None,
            revoked: false,
            created_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn token(k: &ApiKey) -> Presented<'static> {
        Presented::Token {
            client_id: "client",
            key_type: k.kind.as_str(),
            generation: k.generation,
        }
    }

    /// Every key kind against every way of presenting it: the principal, `R` refused, or `I`
    /// inconsistent. Partner keys are checked with an approved partner here; see below for the
    /// others.
    #[test]
    fn authentication_table() {
        let unit = key(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")));
        let acc = key(KeyKind::Accounting, KeyOwner::Partner(7));
        let ml = key(KeyKind::MerchantLevel, KeyOwner::Merchant(1));
        let int = key(KeyKind::Integration, KeyOwner::Partner(8));
        let mgmt = key(KeyKind::Management, KeyOwner::Partner(9));
        let service = key(KeyKind::Service, KeyOwner::Operator);
        let letter = |r: Result<Principal, NotAuthenticated>| match r {
            Ok(Principal::SalesUnit { key_id: 42, .. }) => "S",
            Ok(Principal::Accounting {
                key_id: 42,
                partner_id: 7,
            }) => "A",
            Ok(Principal::MerchantLevel {
                key_id: 42,
                merchant_id: 1,
            }) => "M",
            Ok(Principal::Integration {
                key_id: 42,
                partner_id: 8,
            }) => "N",
            Ok(Principal::Management {
                key_id: 42,
                partner_id: 9,
            }) => "G",
            Ok(other) => panic!("authenticate made {other:?}"),
            Err(NotAuthenticated::Refused) => "R",
            Err(NotAuthenticated::Inconsistent(_)) => "I",
        };
        // Columns: /accesstoken/get, /miami/v1/token, a token.
        let table = [
            (&unit, "SRS"),
            (&acc, "RAA"),
            (&ml, "RMM"),
            (&int, "NRN"),
            (&mgmt, "RGG"),
            // Service keys get no token anywhere, and a token naming one is refused.
            (&service, "RRR"),
        ];
        for (k, expected) in table {
            let partner = matches!(k.owner, KeyOwner::Partner(_)).then_some(PartnerState::Approved);
            let got: String = [
                Presented::StandardTokenRequest,
                Presented::MiamiTokenRequest,
                token(k),
            ]
            .into_iter()
            .map(|p| letter(authenticate(k, partner, p)))
            .collect();
            assert_eq!(got, expected, "{:?}", k.kind);
        }
    }

    #[test]
    fn revoked_regenerated_mismatched_or_unapproved_credentials_are_refused() {
        let acc = key(KeyKind::Accounting, KeyOwner::Partner(7));
        let approved = Some(PartnerState::Approved);
        assert!(authenticate(&acc, approved, token(&acc)).is_ok());
        let revoked = ApiKey {
            revoked: true,
            ..acc.clone()
        };
        for p in [
            Presented::StandardTokenRequest,
            Presented::MiamiTokenRequest,
            token(&acc),
        ] {
            assert_eq!(
                authenticate(&revoked, approved, p),
                Err(NotAuthenticated::Refused)
            );
        }
        let wrong = [
            Presented::Token {
                client_id: "client",
                key_type: "accounting",
                generation: 2,
            },
            Presented::Token {
                client_id: "other",
                key_type: "accounting",
                generation: 3,
            },
            Presented::Token {
                client_id: "client",
                key_type: "merchant-level",
                generation: 3,
            },
        ];
        for p in wrong {
            assert_eq!(
                authenticate(&acc, approved, p),
                Err(NotAuthenticated::Refused),
                "{p:?}"
            );
        }
        for state in [
            None,
            Some(PartnerState::Applied),
            Some(PartnerState::Rejected),
            Some(PartnerState::Suspended),
        ] {
            assert_eq!(
                authenticate(&acc, state, token(&acc)),
                Err(NotAuthenticated::Refused),
                "{state:?}"
            );
            assert_eq!(
                authenticate(&acc, state, Presented::MiamiTokenRequest),
                Err(NotAuthenticated::Refused),
                "{state:?}"
            );
        }
        let odd = key(KeyKind::MerchantLevel, KeyOwner::Partner(7));
        assert!(matches!(
            authenticate(&odd, approved, token(&odd)),
            Err(NotAuthenticated::Inconsistent(_))
        ));
    }
}
