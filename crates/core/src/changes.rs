//! The rules a change to the world must pass before it is written: a sales unit's shape, the
//! units a ledger settles for, who may be granted a ledger, and the partner's state changes. The
//! store calls these once, above its backends, with what it has read.

use crate::ids::{Country, LedgerDate, Msn, RecipientHandle};
use crate::world::{Partner, PartnerKind, PartnerState, RowId, SalesUnitKind, ledger_date_at};
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
}
