//! The structs behind the askama templates in `crates/server/templates/`. Every page extends
//! `base.html`, which reads its navigation, user and flash message from [`Layout`].

use super::auth::SignedIn;
use askama::Template;
use ledgerport_store::PortalRole;

/// The notifications page of merchant and partner users.
pub const NOTIFICATIONS: &str = "/portal/notifications";

/// What `base.html` needs: the navigation (href, label, current), who is signed in, the CSRF
/// token for the sign-out form, and the flash message.
pub struct Layout {
    pub nav: Vec<(&'static str, String, bool)>,
    pub email: Option<String>,
    pub csrf: String,
    pub flash: Option<(String, String)>,
}

impl Layout {
    /// For pages without a signed-in user; `csrf` is the pre-session token of the page's form.
    pub fn anonymous(csrf: &str) -> Layout {
        Layout {
            nav: vec![
                ("/portal/sign-in", "Sign in".into(), false),
                ("/portal/apply", "Become a partner".into(), false),
            ],
            email: None,
            csrf: csrf.to_owned(),
            flash: None,
        }
    }

    /// For error pages, which do not know who is asking: only the way home.
    pub fn error() -> Layout {
        Layout {
            nav: vec![("/portal", "Home".into(), false)],
            email: None,
            csrf: String::new(),
            flash: None,
        }
    }

    /// For a signed-in user; `here` is the current page's path.
    pub fn of(who: &SignedIn, here: &str) -> Layout {
        let items: &[(&'static str, &'static str)] = match who.user.role {
            PortalRole::Merchant(_) => &[
                ("/portal/merchant/partners", "Accounting partners"),
                ("/portal/merchant/requests", "Access requests"),
                ("/portal/merchant/settlements", "Settlements"),
                ("/portal/merchant/keys", "API keys"),
                ("/portal/merchant/access-log", "Access log"),
                ("/portal/merchant/webhooks", "Webhooks"),
            ],
            PortalRole::Partner(_) => &[
                ("/portal/partner", "Overview"),
                ("/portal/partner/requests", "Access requests"),
                ("/portal/partner/access-log", "Access log"),
                ("/portal/partner/webhooks", "Webhooks"),
            ],
            PortalRole::Operator => &[
                ("/portal/operator", "Partners"),
                ("/portal/operator/world", "Merchants"),
                ("/portal/operator/status", "Ingestion & closing"),
            ],
        };
        let mut nav: Vec<(&'static str, String, bool)> = items
            .iter()
            .map(|(h, t)| (*h, (*t).to_owned(), *h == here))
            .collect();
        if let Some(unread) = who.unread {
            let label = match unread {
                0 => "Notifications".to_owned(),
                n => format!("Notifications ({n} unread)"),
            };
            nav.push((NOTIFICATIONS, label, here == NOTIFICATIONS));
        }
        Layout {
            nav,
            email: Some(who.user.email.clone()),
            csrf: who.csrf.clone(),
            flash: who.flash.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub l: Layout,
    pub heading: &'a str,
    pub text: String,
    pub back: &'a str,
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub l: Layout,
    pub heading: String,
    pub text: String,
    pub action: &'static str,
    pub fields: Vec<(&'static str, String)>,
    pub button: &'static str,
    pub back: &'static str,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub l: Layout,
    pub email: String,
}

#[derive(Default, Clone)]
pub struct ApplyForm {
    pub company: String,
    /// `NO`, `DK` or `FI`: which country's organisation numbers `org_number` is.
    pub country: String,
    pub org_number: String,
    pub email: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "apply.html")]
pub struct ApplyPage {
    pub l: Layout,
    pub form: ApplyForm,
    pub errors: Vec<String>,
}

impl ApplyPage {
    /// The country choices: (value, label).
    pub fn countries(&self) -> [(&'static str, &'static str); 3] {
        [
            ("NO", "Norway (organisasjonsnummer, 9 digits)"),
            ("DK", "Denmark (CVR number, 8 digits)"),
            ("FI", "Finland (Y-tunnus, 1234567-8)"),
        ]
    }
}

pub struct GrantedPartner {
    pub id: i64,
    pub name: String,
    pub since: String,
    /// The grant's scope in words ([`super::scope_words`]).
    pub scope: String,
    /// Expired: the partner reads nothing of this ledger until the merchant extends it.
    pub expired: bool,
}

pub struct UnitRow {
    pub name: String,
    pub msn: String,
    pub kind: &'static str,
    /// The recipient handle entries and the Report API name the unit by (`api:123455`,
    /// `NO:57860`).
    pub handle: String,
    pub currency: String,
    pub account: String,
    /// Empty when the unit has no ledger yet.
    pub ledger: String,
    pub partners: Vec<GrantedPartner>,
}

#[derive(Template)]
#[template(path = "merchant_partners.html")]
pub struct MerchantPartnersPage {
    pub l: Layout,
    pub org: String,
    pub units: Vec<UnitRow>,
}

pub struct UnitChoice {
    pub name: String,
    pub msn: String,
    pub kind: &'static str,
    pub handle: String,
    pub ledger: String,
    pub ticked: bool,
}

#[derive(Template)]
#[template(path = "merchant_edit_access.html")]
pub struct EditAccessPage {
    pub l: Layout,
    pub q: String,
    /// (id, name, organisation number)
    pub results: Vec<(i64, String, String)>,
    pub selected_id: i64,
    pub selected_name: Option<String>,
    pub units: Vec<UnitChoice>,
    pub scope: ScopeChoice,
}

/// The scope fields of the partner access form, as shown: the partner's current scope on the
/// organisation's ledgers, or nothing chosen for a partner without grants (personal data is
/// never ticked in advance for a new grant).
#[derive(Default)]
pub struct ScopeChoice {
    /// `YYYY-MM-DD` or empty.
    pub expires_on: String,
    pub from: String,
    pub to: String,
    pub funds: bool,
    pub fees: bool,
    pub personal_data: bool,
    /// Set when the partner's grants on the organisation's ledgers differ in scope.
    pub differs: bool,
}

impl ScopeChoice {
    /// The form's fields holding `s`.
    pub fn of(s: &ledgerport_core::world::GrantScope) -> ScopeChoice {
        ScopeChoice {
            expires_on: s
                .expires_at
                .map(|e| e.strftime("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            from: s.from.map(|d| d.to_string()).unwrap_or_default(),
            to: s.to.map(|d| d.to_string()).unwrap_or_default(),
            funds: s.topics.funds,
            fees: s.topics.fees,
            personal_data: s.personal_data,
            differs: false,
        }
    }
}

pub struct KeyRow {
    pub id: i64,
    pub owner: String,
    pub client_id: String,
    pub subscription: Vec<String>,
    pub revoked: bool,
    pub issued: String,
}

#[derive(Template)]
#[template(path = "merchant_keys.html")]
pub struct MerchantKeysPage {
    pub l: Layout,
    pub keys: Vec<KeyRow>,
    /// (client id, secret) of a secret just regenerated: shown this once.
    pub shown: Option<(String, String)>,
}

/// One access-log row in the reader's words ([`super::access_log`]).
pub struct AccessRow {
    pub id: i64,
    pub at: String,
    pub credentials: String,
    pub ledger: String,
    pub topic: String,
    /// The ledger date, the feed position or the listing asked for.
    pub asked: String,
    pub personal_data: String,
    pub result: String,
}

/// The access log of a merchant (`merchant`) or a partner.
#[derive(Template)]
#[template(path = "access_log.html")]
pub struct AccessLogPage {
    pub l: Layout,
    /// The page's own path, which the filter form is sent to.
    pub action: &'static str,
    pub merchant: bool,
    /// The merchant's ledgers, to filter by.
    pub ledgers: Vec<String>,
    pub ledger: String,
    /// The partners to filter by (merchants only).
    pub partners: Vec<(i64, String)>,
    pub partner: i64,
    pub from: String,
    pub to: String,
    pub rows: Vec<AccessRow>,
    /// Requests without valid credentials on the merchant's ledgers in the period.
    pub unauthenticated: Option<u64>,
    /// The next (older) page's address, when there is one.
    pub older: Option<String>,
    /// The CSV export of the filtered rows.
    pub csv: String,
}

pub struct GrantRow {
    pub merchant: String,
    pub ledger: String,
    pub units: String,
    pub since: String,
    /// What the grant covers, in words; empty when the ledger is not readable now.
    pub scope: String,
}

#[derive(Template)]
#[template(path = "partner_home.html")]
pub struct PartnerPage {
    pub l: Layout,
    pub name: String,
    pub state: &'static str,
    pub grants: Vec<GrantRow>,
    pub keys: Vec<KeyRow>,
    pub shown: Option<(String, String)>,
}

pub struct PartnerRow {
    pub id: i64,
    pub name: String,
    pub kind: &'static str,
    pub org: String,
    pub email: String,
    pub state: &'static str,
    pub since: String,
    /// (target state, button label)
    pub actions: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "operator_partners.html")]
pub struct OperatorPartnersPage {
    pub l: Layout,
    pub applications: Vec<PartnerRow>,
    pub partners: Vec<PartnerRow>,
}

pub struct MerchantBlock {
    pub name: String,
    pub org: String,
    pub units: Vec<String>,
    pub ledgers: Vec<String>,
}

#[derive(Template)]
#[template(path = "operator_world.html")]
pub struct OperatorWorldPage {
    pub l: Layout,
    pub merchants: Vec<MerchantBlock>,
    /// (row id, label) of every merchant, for the forms' merchant choice.
    pub choices: Vec<(i64, String)>,
}

/// One ledger's progress on the operator's status page.
pub struct StatusLedger {
    pub ledger: String,
    pub merchant: String,
    pub payout: &'static str,
    /// The ledger date the clock is in now.
    pub today: String,
    pub closed_through: String,
    pub lag: String,
    pub behind: bool,
}

#[derive(Template)]
#[template(path = "operator_status.html")]
pub struct OperatorStatusPage {
    pub l: Layout,
    /// Payment events this process accepted and rejected since it started.
    pub accepted: u64,
    pub rejected: u64,
    /// Who closes dates, in a sentence.
    pub closing: String,
    /// How many ledgers have a passed payout point not closed yet.
    pub behind: usize,
    pub ledgers: Vec<StatusLedger>,
    /// Who sends mails, in a sentence.
    pub mail_sender: String,
    /// Mails not sent yet, the oldest one's enqueue time, and the latest failure.
    pub mail_pending: u64,
    /// Mails the sender gave up on.
    pub mail_failed: u64,
    pub mail_oldest: String,
    pub mail_last_error: String,
}

pub struct SettlementDay {
    pub date: String,
    /// Totals in the order of [`SettlementsPage::types`]; empty where the date has none.
    pub totals: Vec<String>,
    pub payout: String,
    /// The payout's pspReference; empty when the date pays nothing out.
    pub payout_reference: String,
    /// Entries of the date on both topics.
    pub entries: usize,
    pub closing: String,
    pub fees_closing: String,
    pub open: bool,
}

#[derive(Template)]
#[template(path = "settlements.html")]
pub struct SettlementsPage {
    pub l: Layout,
    /// (ledger id, label) of the organisation's ledgers.
    pub ledgers: Vec<(String, String)>,
    pub ledger: String,
    pub from: String,
    pub to: String,
    pub currency: String,
    /// Digits after the point in the currency's amounts (the CSV's).
    pub decimals: u32,
    /// The labels of the table's amount columns, in order.
    pub types: Vec<String>,
    /// Newest date first.
    pub rows: Vec<SettlementDay>,
    /// Server-rendered SVG (numbers and fixed words only).
    pub chart: String,
}

/// One access request as the merchant's and the partner's request pages show it.
pub struct RequestRow {
    pub id: i64,
    /// The partner's name (merchant page) or the organisation number asked (partner page).
    pub who: String,
    pub units: String,
    /// The ledgers an approval grants (merchant page only).
    pub ledgers: String,
    pub scope: String,
    /// The proposed scope in the approval form's fields.
    pub choice: ScopeChoice,
    /// Made by answering the partner's invitation link.
    pub invitation: bool,
    pub message: String,
    pub state: &'static str,
    pub created: String,
    pub decided: String,
}

#[derive(Template)]
#[template(path = "merchant_requests.html")]
pub struct MerchantRequestsPage {
    pub l: Layout,
    pub org: String,
    pub pending: Vec<RequestRow>,
    pub decided: Vec<RequestRow>,
}

#[derive(Template)]
#[template(path = "partner_requests.html")]
pub struct PartnerRequestsPage {
    pub l: Layout,
    /// Only an approved accounting partner may ask.
    pub may_ask: bool,
    pub requests: Vec<RequestRow>,
    /// The new request form's scope fields (nothing chosen).
    pub scope: ScopeChoice,
}

/// One notification as the notifications page shows it.
pub struct NotificationRow {
    pub id: i64,
    pub when: String,
    pub text: String,
    pub link: Option<String>,
    pub unread: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
pub struct NotificationsPage {
    pub l: Layout,
    pub rows: Vec<NotificationRow>,
    pub unread: u64,
    /// The id to page on from (the oldest shown), when there may be older ones.
    pub older: Option<i64>,
}

/// A partner's new invitation link, shown once made (it is not stored: the link is the
/// invitation).
#[derive(Template)]
#[template(path = "invitation_made.html")]
pub struct InvitationMadePage {
    pub l: Layout,
    pub link: String,
    pub scope: String,
    pub expires: String,
}

/// What a partner's invitation link shows: to a merchant user, the proposal with the form to
/// grant (possibly narrowed) or decline; to someone not signed in, the way to sign in first.
#[derive(Template)]
#[template(path = "invitation.html")]
pub struct InvitationPage {
    pub l: Layout,
    pub partner: String,
    pub proposed: String,
    pub expires: String,
    /// The link's text, posted back with the answer.
    pub token: String,
    /// Set for a signed-in merchant user: the organisation's name.
    pub org: Option<String>,
    /// Set when the partner may no longer be granted access: why.
    pub refused: Option<String>,
    pub units: Vec<UnitChoice>,
    pub scope: ScopeChoice,
}
