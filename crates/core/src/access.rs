//! The access policy: who may read which ledger through the Report API.
//!
//! [`decide`] is the whole rule, a pure function of the authenticated principal and the facts of
//! one ledger. Its only way to say "yes" is a [`LedgerAccess`], which cannot be built anywhere
//! else, and which every reporting query of the store takes as an argument: a read without a
//! decision does not compile.
//!
//! Whether the credentials themselves are still good (not revoked, secret not regenerated, the
//! partner still approved) is settled before this, when the request is authenticated, on every
//! request.

use crate::ids::{LedgerId, Msn, RecipientHandle};
use crate::world::{KeyKind, RowId};

/// Whoever a valid token speaks for.
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
}

impl Principal {
    pub fn key_id(&self) -> RowId {
        match self {
            Principal::SalesUnit { key_id, .. }
            | Principal::Accounting { key_id, .. }
            | Principal::MerchantLevel { key_id, .. }
            | Principal::Integration { key_id, .. }
            | Principal::Management { key_id, .. } => *key_id,
        }
    }

    pub fn kind(&self) -> KeyKind {
        match self {
            Principal::SalesUnit { .. } => KeyKind::SalesUnit,
            Principal::Accounting { .. } => KeyKind::Accounting,
            Principal::MerchantLevel { .. } => KeyKind::MerchantLevel,
            Principal::Integration { .. } => KeyKind::Integration,
            Principal::Management { .. } => KeyKind::Management,
        }
    }
}

/// What the policy needs to know about one ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerFacts {
    pub ledger_id: LedgerId,
    pub owner_merchant_id: RowId,
    pub settles_for: Vec<RecipientHandle>,
    /// Partners holding a standing grant on this ledger.
    pub granted_partners: Vec<RowId>,
}

/// Proof that the policy allowed `principal_key_id` to read `ledger_id`. Only [`decide`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerAccess {
    ledger_id: LedgerId,
    principal_key_id: RowId,
}

impl LedgerAccess {
    /// Access for the operator's own tools (`ledgerport verify`, the console): never reachable
    /// with Report API credentials, which only ever get access through [`decide`].
    pub fn for_operator(ledger_id: LedgerId) -> Self {
        LedgerAccess {
            ledger_id,
            principal_key_id: 0,
        }
    }

    pub fn ledger_id(&self) -> &LedgerId {
        &self.ledger_id
    }

    pub fn principal_key_id(&self) -> RowId {
        self.principal_key_id
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

/// Whether credentials of this kind may use the Report API at all.
pub fn may_use_report_api(p: &Principal) -> bool {
    !matches!(
        p,
        Principal::Integration { .. } | Principal::Management { .. }
    )
}

/// The rule. `ledger` is `None` when no ledger has the requested id.
pub fn decide(p: &Principal, ledger: Option<&LedgerFacts>) -> Decision {
    if !may_use_report_api(p) {
        return Decision::Forbidden;
    }
    let Some(l) = ledger else {
        return Decision::NoSuchLedger;
    };
    let allowed = match p {
        // Only a ledger that settles for exactly this unit: a multi-unit ledger is not visible
        // through one unit's keys.
        Principal::SalesUnit { msn, .. } => {
            l.settles_for.len() == 1 && l.settles_for[0] == RecipientHandle::Api(*msn)
        }
        Principal::Accounting { partner_id, .. } => l.granted_partners.contains(partner_id),
        Principal::MerchantLevel { merchant_id, .. } => l.owner_merchant_id == *merchant_id,
        Principal::Integration { .. } | Principal::Management { .. } => false,
    };
    if allowed {
        Decision::Allow(LedgerAccess {
            ledger_id: l.ledger_id.clone(),
            principal_key_id: p.key_id(),
        })
    } else {
        Decision::NoSuchLedger
    }
}

/// Which ledgers a listing may look at for this principal; the store turns it into one keyset
/// query, and the handler still runs [`decide`] on every ledger it returns.
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
        Principal::Accounting { partner_id, .. } => Some(ListScope::GrantedTo(*partner_id)),
        Principal::MerchantLevel { merchant_id, .. } => Some(ListScope::OwnedBy(*merchant_id)),
        Principal::Integration { .. } | Principal::Management { .. } => None,
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
            granted_partners: grants.to_vec(),
        }
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
        ];
        let ledgers = [Some(&single), Some(&multi), Some(&vm), Some(&other), None];
        for (p, expected) in table {
            let got: String = ledgers
                .iter()
                .map(|l| match decide(p, *l) {
                    Decision::Allow(a) => {
                        assert_eq!(a.principal_key_id(), p.key_id());
                        assert_eq!(Some(a.ledger_id()), l.map(|l| &l.ledger_id));
                        'A'
                    }
                    Decision::NoSuchLedger => 'N',
                    Decision::Forbidden => 'F',
                })
                .collect();
            assert_eq!(&got, expected, "{p:?}");
        }
    }

    #[test]
    fn a_removed_grant_is_no_access() {
        let acc = Principal::Accounting {
            key_id: 3,
            partner_id: 7,
        };
        let before = facts("100", 1, &["api:123455"], &[7, 8]);
        let after = facts("100", 1, &["api:123455"], &[8]);
        assert!(matches!(decide(&acc, Some(&before)), Decision::Allow(_)));
        assert_eq!(decide(&acc, Some(&after)), Decision::NoSuchLedger);
    }

    #[test]
    fn listing_scopes_follow_the_principal() {
        assert_eq!(
            list_scope(&Principal::Management {
                key_id: 1,
                partner_id: 1
            }),
            None
        );
        assert_eq!(
            list_scope(&Principal::Accounting {
                key_id: 1,
                partner_id: 4
            }),
            Some(ListScope::GrantedTo(4))
        );
    }
}
