//! The rules a change to the world must pass before it is written: a sales unit's shape, the
//! units a ledger settles for, who may be granted a ledger, the partner's state changes, and
//! access requests (their message, their states, and that an approval only narrows). The
//! store calls these once, above its backends, with what it has read.

use crate::ids::{Country, LedgerDate, Msn, RecipientHandle};
use crate::world::{
    GrantScope, Partner, PartnerKind, PartnerState, RequestState, RowId, SalesUnitKind,
    ledger_date_at,
};
use jiff::Timestamp;
use jiff::civil::Time;

/// Why a change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Something the change names does not exist.
    NotFound(String),
    /// The change breaks a rule of the domain.
    Invalid(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotFound(what) => write!(f, "{what} not found"),
            Refusal::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Refusal {}

/// The handle of a new sales unit: an api unit is known by its MSN, a vm-number unit by
/// `<country>:<Vippsnummer>`, which it must have (and an api unit must not).
pub fn sales_unit_handle(
    kind: SalesUnitKind,
    msn: Msn,
    country: Country,
    vm_number: Option<&str>,
) -> Result<RecipientHandle, Refusal> {
    match (kind, vm_number) {
        (SalesUnitKind::Api, None) => Ok(RecipientHandle::Api(msn)),
        (SalesUnitKind::VmNumber, Some(n)) => {
            RecipientHandle::parse("vm_number", &format!("{country}:{n}"))
                .map_err(|e| Refusal::Invalid(e.to_string()))
        }
        (SalesUnitKind::Api, Some(_)) => Err(Refusal::Invalid(
            "an api sales unit has no Vippsnummer".into(),
        )),
        (SalesUnitKind::VmNumber, None) => Err(Refusal::Invalid(
            "a vm-number sales unit needs its Vippsnummer".into(),
        )),
    }
}

/// A new ledger settles for at least one sales unit, each existing and of the ledger's owner:
/// `units` pairs each MSN the ledger names with the merchant that owns it (`None`: no such unit).
pub fn check_ledger_units(owner: RowId, units: &[(Msn, Option<RowId>)]) -> Result<(), Refusal> {
    if units.is_empty() {
        return Err(Refusal::Invalid(
            "a ledger must settle for at least one sales unit".into(),
        ));
    }
    for (msn, merchant) in units {
        match merchant {
            None => return Err(Refusal::NotFound(format!("sales unit {msn}"))),
            Some(m) if *m != owner => {
                return Err(Refusal::Invalid(format!(
                    "sales unit {msn} belongs to another merchant"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The last date closed when a ledger is created at `now`: the day before its first ledger
/// date, so nothing before the ledger existed will ever be written.
pub fn first_closed_date(time_zone: &str, cutoff: Time, now: Timestamp) -> LedgerDate {
    let created = ledger_date_at(time_zone, cutoff, now);
    LedgerDate::from_date(created.date().yesterday().unwrap_or(created.date()))
}

/// Only an approved accounting partner may be granted a ledger.
pub fn check_grantee(partner: &Partner) -> Result<(), Refusal> {
    if partner.kind != PartnerKind::Accounting || partner.state != PartnerState::Approved {
        return Err(Refusal::Invalid(format!(
            "partner {} is not an approved accounting partner ({} {})",
            partner.id,
            partner.kind.as_str(),
            partner.state.as_str()
        )));
    }
    Ok(())
}

/// Moves partner `id` from `from` to `to` along the operator's paths
/// ([`PartnerState::may_become`]).
pub fn partner_transition(
    id: RowId,
    from: PartnerState,
    to: PartnerState,
) -> Result<PartnerState, Refusal> {
    if !from.may_become(to) {
        return Err(Refusal::Invalid(format!(
            "partner {id} is {} and cannot become {}",
            from.as_str(),
            to.as_str()
        )));
    }
    Ok(to)
}

/// The longest message an access request may carry, in characters.
pub const REQUEST_MESSAGE_MAX: usize = 1000;

/// An access request's message: at most [`REQUEST_MESSAGE_MAX`] characters, no control
/// characters but line breaks and tabs (it is shown to the merchant as written).
pub fn check_request_message(message: &str) -> Result<(), Refusal> {
    if message.chars().count() > REQUEST_MESSAGE_MAX {
        return Err(Refusal::Invalid(format!(
            "message: at most {REQUEST_MESSAGE_MAX} characters"
        )));
    }
    if message
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Refusal::Invalid(
            "message: must not hold control characters".into(),
        ));
    }
    Ok(())
}

/// Moves access request `id` from `from` to `to`: only a pending request is approved, declined
/// or withdrawn, and each of those is final.
pub fn request_transition(
    id: RowId,
    from: RequestState,
    to: RequestState,
) -> Result<RequestState, Refusal> {
    if from != RequestState::Pending || to == RequestState::Pending {
        return Err(Refusal::Invalid(format!(
            "access request {id} is {} and cannot become {}",
            from.as_str(),
            to.as_str()
        )));
    }
    Ok(to)
}

/// An approval may narrow the scope a partner proposed, never widen it: an expiry no later
/// (and one there if one was proposed), a period inside the proposed one, topics and personal
/// data only among those proposed. The refusal names the first field that widens.
pub fn check_narrowing(proposed: &GrantScope, approved: &GrantScope) -> Result<(), Refusal> {
    let widen = |field: &str, why: String| Err(Refusal::Invalid(format!("{field}: {why}")));
    if let Some(p) = proposed.expires_at
        && approved.expires_at.is_none_or(|a| a > p)
    {
        return widen(
            "expires_at",
            format!("the partner asked for access until {p}; an approval cannot go past it"),
        );
    }
    if let Some(p) = proposed.from
        && approved.from.is_none_or(|a| a < p)
    {
        return widen(
            "from",
            format!("the partner asked for dates from {p}; an approval cannot start earlier"),
        );
    }
    if let Some(p) = proposed.to
        && approved.to.is_none_or(|a| a > p)
    {
        return widen(
            "to",
            format!("the partner asked for dates up to {p}; an approval cannot end later"),
        );
    }
    if (approved.topics.funds && !proposed.topics.funds)
        || (approved.topics.fees && !proposed.topics.fees)
    {
        return widen(
            "topics",
            format!(
                "the partner asked for {} only; an approval cannot add a topic",
                proposed.topics.as_str()
            ),
        );
    }
    if approved.personal_data && !proposed.personal_data {
        return widen(
            "personal_data",
            "the partner did not ask for personal data; an approval cannot add it".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msn(n: u32) -> Msn {
        Msn::parse("msn", &n.to_string()).expect("msn")
    }

    #[test]
    fn a_sales_unit_has_a_vippsnummer_exactly_when_it_is_a_vm_number_unit() {
        let no = Country::parse("country", "NO").expect("country");
        assert_eq!(
            sales_unit_handle(SalesUnitKind::Api, msn(123456), no, None),
            Ok(RecipientHandle::Api(msn(123456)))
        );
        let vm =
            sales_unit_handle(SalesUnitKind::VmNumber, msn(123456), no, Some("57860")).expect("vm");
        assert_eq!(vm.to_string(), "NO:57860");
        assert!(matches!(
            sales_unit_handle(SalesUnitKind::Api, msn(123456), no, Some("57860")),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            sales_unit_handle(SalesUnitKind::VmNumber, msn(123456), no, None),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn a_ledger_settles_for_existing_units_of_its_owner_only() {
        assert!(check_ledger_units(1, &[(msn(123456), Some(1))]).is_ok());
        assert!(matches!(
            check_ledger_units(1, &[]),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            check_ledger_units(1, &[(msn(123456), None)]),
            Err(Refusal::NotFound(_))
        ));
        assert_eq!(
            check_ledger_units(1, &[(msn(123456), Some(1)), (msn(234567), Some(2))]),
            Err(Refusal::Invalid(
                "sales unit 234567 belongs to another merchant".into()
            ))
        );
    }

    #[test]
    fn partners_move_only_along_the_operators_paths() {
        use PartnerState::*;
        assert_eq!(partner_transition(7, Applied, Approved), Ok(Approved));
        assert_eq!(partner_transition(7, Suspended, Approved), Ok(Approved));
        assert_eq!(
            partner_transition(7, Rejected, Approved),
            Err(Refusal::Invalid(
                "partner 7 is rejected and cannot become approved".into()
            ))
        );
    }

    #[test]
    fn only_approved_accounting_partners_may_be_granted_a_ledger() {
        let mut p = Partner {
            id: 3,
            name: "Regnskap AS".into(),
            kind: PartnerKind::Accounting,
            state: PartnerState::Approved,
            business: None,
            contact_email: "a@example.com".into(),
            created_at: Timestamp::UNIX_EPOCH,
        };
        assert!(check_grantee(&p).is_ok());
        p.state = PartnerState::Suspended;
        assert!(check_grantee(&p).is_err());
        p.state = PartnerState::Approved;
        p.kind = PartnerKind::Integration;
        assert!(check_grantee(&p).is_err());
    }

    #[test]
    fn a_new_ledger_has_closed_the_day_before_its_first_date() {
        let now: Timestamp = "2024-04-02T10:00:00Z".parse().expect("now");
        let cutoff = Time::constant(0, 0, 0, 0);
        assert_eq!(
            first_closed_date("Europe/Oslo", cutoff, now),
            LedgerDate::parse("d", "2024-04-01").expect("date")
        );
    }

    fn scope(
        expires: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        topics: &str,
        pd: bool,
    ) -> GrantScope {
        let d = |s: &str| LedgerDate::parse("d", s).expect("date");
        GrantScope {
            expires_at: expires.map(|e| e.parse().expect("timestamp")),
            from: from.map(d),
            to: to.map(d),
            topics: crate::world::Topics::parse("topics", topics).expect("topics"),
            personal_data: pd,
        }
    }

    #[test]
    fn an_approval_may_narrow_the_proposed_scope_never_widen_it() {
        let proposed = scope(
            Some("2027-01-01T00:00:00Z"),
            Some("2026-01-01"),
            Some("2026-12-31"),
            "funds,fees",
            true,
        );
        assert_eq!(check_narrowing(&proposed, &proposed), Ok(()));
        let narrower = scope(
            Some("2026-12-01T00:00:00Z"),
            Some("2026-02-01"),
            Some("2026-06-30"),
            "funds",
            false,
        );
        assert_eq!(check_narrowing(&proposed, &narrower), Ok(()));
        let field = |approved: GrantScope| match check_narrowing(&proposed, &approved) {
            Err(Refusal::Invalid(why)) => why.split(':').next().unwrap_or_default().to_owned(),
            other => panic!("not refused: {other:?}"),
        };
        let mut w = narrower;
        w.expires_at = None;
        assert_eq!(field(w), "expires_at");
        w = narrower;
        w.expires_at = Some("2027-01-02T00:00:00Z".parse().expect("t"));
        assert_eq!(field(w), "expires_at");
        w = narrower;
        w.from = None;
        assert_eq!(field(w), "from");
        w = narrower;
        w.from = Some(LedgerDate::parse("d", "2025-12-31").expect("d"));
        assert_eq!(field(w), "from");
        w = narrower;
        w.to = None;
        assert_eq!(field(w), "to");
        w = narrower;
        w.to = Some(LedgerDate::parse("d", "2027-01-01").expect("d"));
        assert_eq!(field(w), "to");
        let funds_only = scope(None, None, None, "funds", false);
        assert_eq!(
            check_narrowing(&funds_only, &scope(None, None, None, "funds,fees", false)).map_err(
                |e| e
                    .to_string()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            ),
            Err("topics".to_owned())
        );
        assert_eq!(
            check_narrowing(&funds_only, &scope(None, None, None, "funds", true)).map_err(|e| e
                .to_string()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned()),
            Err("personal_data".to_owned())
        );
        // Nothing proposed for a limit: the merchant may set any.
        let open = scope(None, None, None, "funds,fees", true);
        assert_eq!(check_narrowing(&open, &narrower), Ok(()));
    }

    #[test]
    fn only_a_pending_request_is_decided_or_withdrawn_and_only_once() {
        use RequestState::*;
        for to in [Approved, Declined, Withdrawn] {
            assert_eq!(request_transition(1, Pending, to), Ok(to));
            for from in [Approved, Declined, Withdrawn] {
                assert!(
                    request_transition(1, from, to).is_err(),
                    "{from:?} -> {to:?}"
                );
            }
        }
        for from in [Pending, Approved, Declined, Withdrawn] {
            assert!(request_transition(1, from, Pending).is_err());
        }
    }

    #[test]
    fn a_request_message_is_bounded_and_plain() {
        assert_eq!(check_request_message("Hello,\nwe keep your books."), Ok(()));
        assert_eq!(
            check_request_message(&"é".repeat(REQUEST_MESSAGE_MAX)),
            Ok(())
        );
        assert!(check_request_message(&"a".repeat(REQUEST_MESSAGE_MAX + 1)).is_err());
        assert!(check_request_message("bell\u{7}").is_err());
    }
}
