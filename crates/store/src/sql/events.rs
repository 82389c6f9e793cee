//! The domain events changes write ([`super::webhooks::NewEvent`]), one function per kind, each
//! giving the event's `data` as webhook payloads carry it (API.md, "Webhooks").

use super::webhooks::NewEvent;
use crate::webhook::*;
use ledgerport_core::entry::wire_time;
use ledgerport_core::ids::{Currency, LedgerDate, LedgerId};
use ledgerport_core::notices::GrantChange;
use ledgerport_core::world::{GrantScope, PartnerState, RowId};
use serde_json::{Value, json};

/// A ledger date closed: the settlement engine has closed the payout period ending `date`, so
/// the date's entries are final. What else a closed date's event carries belongs here.
pub(crate) fn ledger_date_closed(
    ledger: &LedgerId,
    date: LedgerDate,
    currency: Currency,
    funds_balance: i64,
    fees_balance: i64,
) -> NewEvent {
    NewEvent {
        event_type: LEDGER_DATE_CLOSED,
        ledger_id: Some(ledger.clone()),
        partner_id: None,
        ledger_date: Some(date),
        data: json!({
            "ledgerId": ledger.as_str(),
            "ledgerDate": date.to_string(),
            "currency": currency.as_str(),
            "closingBalances": { "funds": funds_balance, "fees": fees_balance },
        }),
    }
}

/// A payout scheduled by closing the period ending `date`.
pub(crate) fn payout_scheduled(
    ledger: &LedgerId,
    date: LedgerDate,
    currency: Currency,
    psp_reference: &str,
    amount: i64,
) -> NewEvent {
    NewEvent {
        event_type: PAYOUT_SCHEDULED,
        ledger_id: Some(ledger.clone()),
        partner_id: None,
        ledger_date: Some(date),
        data: json!({
            "ledgerId": ledger.as_str(),
            "ledgerDate": date.to_string(),
            "pspReference": psp_reference,
            "currency": currency.as_str(),
            "amount": amount,
        }),
    }
}

fn scope_json(s: &GrantScope) -> Value {
    json!({
        "topics": s.topics.as_str(),
        "from": s.from.map(|d| d.to_string()),
        "to": s.to.map(|d| d.to_string()),
        "expiresAt": s.expires_at.map(wire_time),
        "personalData": s.personal_data,
    })
}

/// A grant made, changed, removed or expired; `None` for a change that is no event (an
/// expiry warning is a notice only).
pub(crate) fn grant_event(
    partner: RowId,
    ledger: &LedgerId,
    change: &GrantChange,
) -> Option<NewEvent> {
    let (event_type, detail) = match change {
        GrantChange::Created(s) => (GRANT_CREATED, json!({ "scope": scope_json(s) })),
        GrantChange::ScopeChanged(before, after) => (
            GRANT_CHANGED,
            json!({ "scope": scope_json(after), "previousScope": scope_json(before) }),
        ),
        GrantChange::Removed => (GRANT_REMOVED, json!({})),
        GrantChange::Expired(at) => (GRANT_EXPIRED, json!({ "expiredAt": wire_time(*at) })),
        GrantChange::Expiring(_) => return None,
    };
    let mut data = json!({ "ledgerId": ledger.as_str(), "partnerId": partner });
    if let (Some(d), Value::Object(extra)) = (data.as_object_mut(), detail) {
        d.extend(extra);
    }
    Some(NewEvent {
        event_type,
        ledger_id: Some(ledger.clone()),
        partner_id: Some(partner),
        ledger_date: None,
        data,
    })
}

/// A partner approved or suspended; `None` for other states.
pub(crate) fn partner_event(partner: RowId, name: &str, to: PartnerState) -> Option<NewEvent> {
    let event_type = match to {
        PartnerState::Approved => PARTNER_APPROVED,
        PartnerState::Suspended => PARTNER_SUSPENDED,
        _ => return None,
    };
    Some(NewEvent {
        event_type,
        ledger_id: None,
        partner_id: Some(partner),
        ledger_date: None,
        data: json!({ "partnerId": partner, "name": name, "state": to.as_str() }),
    })
}
