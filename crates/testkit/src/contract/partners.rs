//! Partners and the operator's paths between their states.

use super::helpers::*;

pub async fn a_created_partner_starts_applied(s: &dyn Store) {
    // Arrange
    let accounting = NewPartner {
        name: "Regnskap AS".into(),
        kind: PartnerKind::Accounting,
        business: Some(org("923456789")),
        contact_email: "ops@regnskap.test".into(),
    };
    let integration = NewPartner {
        name: "Kasse Integrasjon".into(),
        kind: PartnerKind::Integration,
        business: None,
        contact_email: "dev@kasse.test".into(),
    };

    // Act
    let p = must(
        s.create_partner(&by(), accounting).await,
        "create accounting partner",
    );
    let q = must(
        s.create_partner(&by(), integration).await,
        "create integration partner",
    );

    // Assert
    assert_eq!(
        p,
        Partner {
            id: p.id,
            name: "Regnskap AS".into(),
            kind: PartnerKind::Accounting,
            state: PartnerState::Applied,
            business: Some(org("923456789")),
            contact_email: "ops@regnskap.test".into(),
            created_at: contract_now(),
        }
    );
    assert_eq!(
        q,
        Partner {
            id: q.id,
            name: "Kasse Integrasjon".into(),
            kind: PartnerKind::Integration,
            state: PartnerState::Applied,
            business: None,
            contact_email: "dev@kasse.test".into(),
            created_at: contract_now(),
        }
    );
    assert_ne!(p.id, q.id);
    assert_eq!(
        must(s.partners().await, "list partners"),
        vec![p.clone(), q]
    );
    assert_eq!(
        must(s.partner(p.id).await, "partner by id"),
        Some(p.clone())
    );
    assert_eq!(must(s.partner(p.id + 1000).await, "unknown partner"), None);
}

pub async fn partner_states_change_only_along_the_operator_paths(s: &dyn Store) {
    use PartnerState::*;
    let allowed = [
        (Applied, Approved),
        (Applied, Rejected),
        (Approved, Suspended),
        (Suspended, Approved),
    ];
    // How to reach each starting state from `applied`.
    let path = |from: PartnerState| -> Vec<PartnerState> {
        match from {
            Applied => vec![],
            Approved => vec![Approved],
            Rejected => vec![Rejected],
            Suspended => vec![Approved, Suspended],
        }
    };
    for from in [Applied, Approved, Rejected, Suspended] {
        for to in [Applied, Approved, Rejected, Suspended] {
            // Arrange
            let p = add_partner(
                s,
                &format!("P {} {}", from.as_str(), to.as_str()),
                PartnerKind::Accounting,
            )
            .await;
            for step in path(from) {
                must(
                    s.set_partner_state(&by(), p.id, step).await,
                    "bring partner to its starting state",
                );
            }

            // Act
            let r = s.set_partner_state(&by(), p.id, to).await;

            // Assert
            let now = some(
                must(s.partner(p.id).await, "read partner"),
                "partner exists",
            );
            if allowed.contains(&(from, to)) {
                let changed = must(
                    r,
                    &format!("{} -> {} is allowed", from.as_str(), to.as_str()),
                );
                assert_eq!(
                    changed,
                    Partner {
                        state: to,
                        ..p.clone()
                    }
                );
                assert_eq!(now.state, to);
            } else {
                assert_error(
                    r,
                    Expect::Invalid,
                    &format!("{} -> {}", from.as_str(), to.as_str()),
                );
                assert_eq!(
                    now.state, from,
                    "a refused change must leave the state as it was"
                );
            }
        }
    }
    let unknown = s.set_partner_state(&by(), 1_000_000, Approved).await;
    assert_error(
        unknown,
        Expect::NotFound,
        "a state change of an unknown partner",
    );
}
