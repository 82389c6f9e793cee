//! Who is told what when a grant changes: the one rule behind every portal notification and
//! mail about grants. The store calls [`grant_notices`] inside the transaction of the change (or
//! of the expiry notice it records) and writes one notification and one mail per user of each
//! side the notices name, so a notice exists exactly when its change does.

use crate::entry::wire_time;
use crate::world::GrantScope;
use jiff::{SignedDuration, Timestamp};

/// How long before its expiry both sides are told that a grant is about to expire.
pub const EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(7 * 24);

/// What happened to a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantChange {
    Created(GrantScope),
    /// The scope went from the first to the second.
    ScopeChanged(GrantScope, GrantScope),
    Removed,
    /// The grant expires at this instant, within [`EXPIRY_WARNING`].
    Expiring(Timestamp),
    /// The grant expired at this instant.
    Expired(Timestamp),
}

impl GrantChange {
    /// The notification's kind as stored and shown: `grant.created`, `grant.changed`,
    /// `grant.removed`, `grant.expiring`, `grant.expired`.
    pub fn kind(&self) -> &'static str {
        match self {
            GrantChange::Created(_) => "grant.created",
            GrantChange::ScopeChanged(..) => "grant.changed",
            GrantChange::Removed => "grant.removed",
            GrantChange::Expiring(_) => "grant.expiring",
            GrantChange::Expired(_) => "grant.expired",
        }
    }
}

/// The grant a change is about, in the names people know it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantParties {
    pub partner_name: String,
    pub merchant_name: String,
    pub ledger_id: String,
    /// The names of the sales units the ledger settles for.
    pub units: Vec<String>,
}

/// Which side of a grant a notice is for: every portal user of the merchant or of the partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Merchant,
    Partner,
}

/// One notice to the users of one side: the portal notification's text and the mail's subject
/// and body. `link` is the portal path where the side sees the grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub side: Side,
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub link: &'static str,
}

/// The scope in plain words: `funds and fees, every date, with personal data, no end date`.
pub fn scope_in_words(s: &GrantScope) -> String {
    let topics = match (s.topics.funds, s.topics.fees) {
        (true, true) => "funds and fees",
        (true, false) => "funds only",
        _ => "fees only",
    };
    let period = match (s.from, s.to) {
        (None, None) => "every ledger date".to_owned(),
        (Some(f), Some(t)) => format!("ledger dates {f} to {t}"),
        (Some(f), None) => format!("ledger dates from {f}"),
        (None, Some(t)) => format!("ledger dates up to {t}"),
    };
    let personal = if s.personal_data {
        "with personal data"
    } else {
        "without personal data"
    };
    let end = s.expires_at.map_or("no end date".to_owned(), |e| {
        format!("until {}", wire_time(e))
    });
    format!("{topics}, {period}, {personal}, {end}")
}

/// The notices a grant change gives: both sides are told of every change, each in its own
/// words (the merchant hears which partner, the partner which merchant), naming the ledger and
/// its units and, where a scope is involved, the scope.
pub fn grant_notices(change: &GrantChange, p: &GrantParties) -> Vec<Notice> {
    let ledger = if p.units.is_empty() {
        format!("ledger {}", p.ledger_id)
    } else {
        format!("ledger {} ({})", p.ledger_id, p.units.join(", "))
    };
    let (partner, merchant) = (&p.partner_name, &p.merchant_name);
    let (to_merchant, to_partner, subject) = match change {
        GrantChange::Created(s) => (
            format!(
                "{partner} was granted access to {ledger}: {}.",
                scope_in_words(s)
            ),
            format!(
                "{merchant} granted you access to {ledger}: {}.",
                scope_in_words(s)
            ),
            format!("Access granted: {ledger}"),
        ),
        GrantChange::ScopeChanged(from, to) => (
            format!(
                "The access of {partner} to {ledger} was changed from {} to {}.",
                scope_in_words(from),
                scope_in_words(to)
            ),
            format!(
                "{merchant} changed your access to {ledger} from {} to {}.",
                scope_in_words(from),
                scope_in_words(to)
            ),
            format!("Access changed: {ledger}"),
        ),
        GrantChange::Removed => (
            format!("The access of {partner} to {ledger} was removed."),
            format!("{merchant} removed your access to {ledger}."),
            format!("Access removed: {ledger}"),
        ),
        GrantChange::Expiring(at) => (
            format!(
                "The access of {partner} to {ledger} expires on {}.",
                wire_time(*at)
            ),
            format!(
                "Your access to {ledger} of {merchant} expires on {}.",
                wire_time(*at)
            ),
            format!("Access expires soon: {ledger}"),
        ),
        GrantChange::Expired(at) => (
            format!(
                "The access of {partner} to {ledger} has expired ({}).",
                wire_time(*at)
            ),
            format!(
                "Your access to {ledger} of {merchant} has expired ({}).",
                wire_time(*at)
            ),
            format!("Access expired: {ledger}"),
        ),
    };
    // A mail subject is one header line: names with a control character in them (a unit name
    // typed with a tab) must not make the change itself fail the outbox's check.
    let subject: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let kind = change.kind();
    vec![
        Notice {
            side: Side::Merchant,
            kind,
            subject: subject.clone(),
            text: to_merchant,
            link: "/portal/merchant/partners",
        },
        Notice {
            side: Side::Partner,
            kind,
            subject,
            text: to_partner,
            link: "/portal/partner",
        },
    ]
}

/// What happened to an access request (or an invitation, answered at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEvent {
    /// The partner asked.
    Made,
    /// The merchant approved within this scope, granting this many ledgers anew.
    Approved(GrantScope, usize),
    Declined,
    /// The partner took the request back.
    Withdrawn,
}

impl RequestEvent {
    /// The notification's kind: `request.made`, `request.approved`, `request.declined`,
    /// `request.withdrawn`.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestEvent::Made => "request.made",
            RequestEvent::Approved(..) => "request.approved",
            RequestEvent::Declined => "request.declined",
            RequestEvent::Withdrawn => "request.withdrawn",
        }
    }
}

/// The request an event is about, in the names people know it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestParties {
    pub partner_name: String,
    pub merchant_name: String,
    /// The sales units asked for, by MSN; none: all of the merchant's.
    pub units: Vec<String>,
    /// The scope the partner proposed.
    pub proposed: GrantScope,
    /// The request came from the partner's invitation link, answered by the merchant.
    pub invitation: bool,
}

/// The notices a request event gives. The side that acted knows; the other side is told: a
/// request made or withdrawn tells the merchant, an answer tells the partner, in words about
/// the request (the grants an approval makes tell both sides on their own, [`grant_notices`]).
pub fn request_notices(event: &RequestEvent, p: &RequestParties) -> Vec<Notice> {
    let units = if p.units.is_empty() {
        "all sales units".to_owned()
    } else {
        format!("sales units {}", p.units.join(", "))
    };
    let (partner, merchant) = (&p.partner_name, &p.merchant_name);
    let what = if p.invitation {
        "invitation"
    } else {
        "access request"
    };
    let to_merchant = |text: String, subject: String| Notice {
        side: Side::Merchant,
        kind: event.kind(),
        subject,
        text,
        link: "/portal/merchant/requests",
    };
    let to_partner = |text: String, subject: String| Notice {
        side: Side::Partner,
        kind: event.kind(),
        subject,
        text,
        link: "/portal/partner/requests",
    };
    let notice = match event {
        RequestEvent::Made => to_merchant(
            format!(
                "{partner} asks for access to {units}: {}. Approve, narrow or decline it under \
                 Access requests.",
                scope_in_words(&p.proposed)
            ),
            format!("Access request from {partner}"),
        ),
        RequestEvent::Withdrawn => to_merchant(
            format!("{partner} withdrew its access request for {units}."),
            format!("Access request withdrawn by {partner}"),
        ),
        RequestEvent::Approved(scope, granted) => to_partner(
            format!(
                "{merchant} approved your {what} for {units}: {granted} ledger(s) granted, {}.",
                scope_in_words(scope)
            ),
            format!("{merchant} approved your {what}"),
        ),
        RequestEvent::Declined => to_partner(
            format!("{merchant} declined your {what} for {units}. Nothing was granted."),
            format!("{merchant} declined your {what}"),
        ),
    };
    vec![one_line_subject(notice)]
}

/// A mail subject is one header line: names with a control character in them (a unit name
/// typed with a tab) must not make the change itself fail the outbox's check.
fn one_line_subject(mut n: Notice) -> Notice {
    n.subject = n
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    n
}

/// Which expiry notice a grant with this expiry is due at `now`, if any: `Expired` once it has
/// expired, `Expiring` within [`EXPIRY_WARNING`] before. Whether it was sent already is the
/// store's record, not this rule's.
pub fn expiry_notice_due(expires_at: Option<Timestamp>, now: Timestamp) -> Option<GrantChange> {
    let e = expires_at?;
    if e <= now {
        Some(GrantChange::Expired(e))
    } else if e.duration_since(now) <= EXPIRY_WARNING {
        Some(GrantChange::Expiring(e))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Topics;

    fn parties() -> GrantParties {
        GrantParties {
            partner_name: "Regnskap AS".into(),
            merchant_name: "Kaffe AS".into(),
            ledger_id: "100".into(),
            units: vec!["Shop".into()],
        }
    }

    #[test]
    fn both_sides_are_told_in_their_own_words() {
        let scope = GrantScope {
            topics: Topics {
                funds: true,
                fees: false,
            },
            personal_data: false,
            ..GrantScope::EVERYTHING
        };
        let n = grant_notices(&GrantChange::Created(scope), &parties());
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].side, Side::Merchant);
        assert_eq!(
            n[0].text,
            "Regnskap AS was granted access to ledger 100 (Shop): funds only, every ledger date, \
             without personal data, no end date."
        );
        assert_eq!(n[1].side, Side::Partner);
        assert!(
            n[1].text
                .starts_with("Kaffe AS granted you access to ledger 100 (Shop)")
        );
        assert!(n.iter().all(|x| x.kind == "grant.created"));
        let removed = grant_notices(&GrantChange::Removed, &parties());
        assert_eq!(
            removed[1].text,
            "Kaffe AS removed your access to ledger 100 (Shop)."
        );
    }

    #[test]
    fn a_request_tells_the_merchant_and_an_answer_the_partner_in_words_about_the_request() {
        let mut p = RequestParties {
            partner_name: "Regnskap AS".into(),
            merchant_name: "Kaffe AS".into(),
            units: vec!["123456".into()],
            proposed: GrantScope::EVERYTHING,
            invitation: false,
        };
        let made = request_notices(&RequestEvent::Made, &p);
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].side, Side::Merchant);
        assert_eq!(made[0].kind, "request.made");
        assert_eq!(made[0].subject, "Access request from Regnskap AS");
        assert!(
            made[0].text.starts_with(
                "Regnskap AS asks for access to sales units 123456: funds and fees, every \
                 ledger date, with personal data, no end date."
            ),
            "{}",
            made[0].text
        );
        let narrow = GrantScope {
            personal_data: false,
            ..GrantScope::EVERYTHING
        };
        let approved = request_notices(&RequestEvent::Approved(narrow, 1), &p);
        assert_eq!(approved[0].side, Side::Partner);
        assert_eq!(
            approved[0].text,
            "Kaffe AS approved your access request for sales units 123456: 1 ledger(s) \
             granted, funds and fees, every ledger date, without personal data, no end date."
        );
        p.units.clear();
        p.invitation = true;
        let declined = request_notices(&RequestEvent::Declined, &p);
        assert_eq!(
            (declined[0].side, declined[0].subject.as_str()),
            (Side::Partner, "Kaffe AS declined your invitation")
        );
        assert_eq!(
            declined[0].text,
            "Kaffe AS declined your invitation for all sales units. Nothing was granted."
        );
        p.merchant_name = "Kaffe\tAS".into();
        let withdrawn = request_notices(&RequestEvent::Withdrawn, &p);
        assert_eq!(withdrawn[0].side, Side::Merchant);
        assert!(
            !request_notices(&RequestEvent::Declined, &p)[0]
                .subject
                .contains('\t')
        );
    }

    #[test]
    fn expiry_notices_fall_due_seven_days_before_and_at_the_expiry() {
        let e: Timestamp = "2025-01-10T00:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(expiry_notice_due(None, at("2025-01-09T00:00:00Z")), None);
        assert_eq!(expiry_notice_due(Some(e), at("2025-01-02T23:59:59Z")), None);
        assert_eq!(
            expiry_notice_due(Some(e), at("2025-01-03T00:00:00Z")),
            Some(GrantChange::Expiring(e))
        );
        assert_eq!(
            expiry_notice_due(Some(e), at("2025-01-10T00:00:00Z")),
            Some(GrantChange::Expired(e))
        );
    }
}
