//! The shapes the store takes and returns beyond the core's world types.

use jiff::Timestamp;
use jiff::civil::Time;
use ledgerport_core::access::{Guarded, LedgerFacts, StandingGrant};
use ledgerport_core::ids::{BankAccount, BusinessId, Country, Currency, LedgerId, Msn};
use ledgerport_core::world::{
    FeePlan, KeyKind, KeyOwner, Ledger, PartnerKind, PayoutFrequency, RowId, SalesUnit,
    SalesUnitKind, SettlementMode,
};

#[derive(Debug, Clone)]
pub struct NewMerchant {
    pub business: BusinessId,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct NewSalesUnit {
    pub msn: Msn,
    pub merchant_id: RowId,
    pub name: String,
    pub kind: SalesUnitKind,
    pub country: Country,
    /// The Vippsnummer of a vm-number unit (its handle is `<country>:<number>`); `None` for api.
    pub vm_number: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewLedger {
    pub ledger_id: LedgerId,
    pub currency: Currency,
    pub payout_account: BankAccount,
    pub owner_merchant_id: RowId,
    /// Sales units the ledger settles for, in the order the ledger lists them.
    pub settles_for: Vec<Msn>,
    pub time_zone: String,
    pub cutoff: Time,
    pub payout_frequency: PayoutFrequency,
    pub settlement_mode: SettlementMode,
    pub fee_plan: FeePlan,
    pub page_size: u32,
    /// When the ledger came into being, for a ledger whose history starts in the past (a
    /// merchant's history imported with `import --replay`): its first open date is the ledger
    /// date of this time. `None`: now. Never later than now.
    pub created_at: Option<Timestamp>,
}

/// A ledger with the sales units it settles for, as listings show it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerView {
    pub ledger: Ledger,
    pub units: Vec<SalesUnit>,
    /// The owner's organisation, for `businessIdentifier` and `owner`.
    pub owner: BusinessId,
}

impl LedgerView {
    /// The view behind its facts, `granted` being the grants of approved partners, read at
    /// `as_of`.
    pub fn guarded(self, granted: Vec<StandingGrant>, as_of: Timestamp) -> Guarded<LedgerView> {
        let facts = LedgerFacts {
            ledger_id: self.ledger.ledger_id.clone(),
            owner_merchant_id: self.ledger.owner_merchant_id,
            settles_for: self.units.iter().map(|u| u.handle.clone()).collect(),
            grants: granted,
            as_of,
        };
        Guarded::new(facts, self)
    }
}

#[derive(Debug, Clone)]
pub struct NewPartner {
    pub name: String,
    pub kind: PartnerKind,
    pub business: Option<BusinessId>,
    pub contact_email: String,
}

#[derive(Debug, Clone)]
pub struct NewKey {
    pub kind: KeyKind,
    pub owner: KeyOwner,
    pub client_id: String,
    pub secret_hash: [u8; 32],
    pub subscription_keys: Option<[String; 2]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// PKCS#8 DER of the Ed25519 private key.
    pub private_der: Vec<u8>,
    pub public_raw: Vec<u8>,
    pub created_at: String,
    pub retired_at: Option<String>,
}

/// One Report API request, as the access log records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewAccessRecord {
    pub request_id: String,
    pub key_id: Option<RowId>,
    pub key_kind: Option<KeyKind>,
    pub client_id: Option<String>,
    pub partner_id: Option<RowId>,
    pub merchant_id: Option<RowId>,
    pub msn: Option<Msn>,
    pub ledger_id: Option<String>,
    pub endpoint: String,
    pub status: u16,
    /// The topic of a date or feed page (`funds`, `fees`), as the path named it.
    pub topic: Option<String>,
    /// The ledger date of a date page (`YYYY-MM-DD`).
    pub ledger_date: Option<String>,
    /// The position a feed page starts after: 0 for the first page, else the cursor's entry.
    pub feed_after: Option<i64>,
    /// Personal data, when the request asked for it: `given` or `withheld`.
    pub personal_data: Option<String>,
    /// The result in words (`read`, `not found`, `refused: ...`, `invalid token`, ...); empty on
    /// rows written before the log recorded it.
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    pub id: RowId,
    pub at: String,
    pub rec: NewAccessRecord,
}

#[derive(Debug, Clone, Default)]
pub struct AccessLogFilter {
    pub ledger_id: Option<LedgerId>,
    pub partner_id: Option<RowId>,
    /// Only requests on ledgers this merchant owns.
    pub owner_merchant_id: Option<RowId>,
    /// Only requests made with credentials (`true`) or only those without (`false`).
    pub authenticated: Option<bool>,
    /// Only requests at or after this instant (the log's time format, e.g. `wire_time`).
    pub from: Option<String>,
    /// Only requests before this instant.
    pub until: Option<String>,
    /// Only records older than this one (the page after one ending here).
    pub before_id: Option<RowId>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: RowId,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

/// Owner columns of a key row, in one place so the backends agree.
pub fn key_owner_columns(owner: KeyOwner) -> (Option<i64>, Option<RowId>, Option<RowId>) {
    match owner {
        KeyOwner::SalesUnit(msn) => (Some(i64::from(msn.get())), None, None),
        KeyOwner::Partner(p) => (None, Some(p), None),
        KeyOwner::Merchant(m) => (None, None, Some(m)),
        KeyOwner::Operator => (None, None, None),
    }
}

/// What became of one posted payment event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Applied (now or, for a repeated event id, the first time): its entries are on `ledger_id`.
    Accepted {
        event_id: String,
        ledger_id: LedgerId,
        entries: u32,
    },
    /// Not applied; nothing of it was written.
    Rejected {
        event_id: String,
        rejection: ledgerport_core::engine::Rejection,
    },
}

impl EventOutcome {
    pub fn event_id(&self) -> &str {
        match self {
            EventOutcome::Accepted { event_id, .. } | EventOutcome::Rejected { event_id, .. } => {
                event_id
            }
        }
    }
}

/// One payout period a closing run closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedPeriod {
    pub ledger_id: LedgerId,
    /// The period's last date.
    pub end: ledgerport_core::ids::LedgerDate,
    /// Payout number and amount (positive), if the period paid out.
    pub payout: Option<(i64, i64)>,
    /// Fees retained (net) or invoiced (gross), positive.
    pub fees: i64,
}

/// Bytes kept free in front of a [`WirePage`]'s entries, so that the server writes the page's
/// opening (`{"cursor":"…","tryLater":false,"items":[`, about 110 bytes with the API's cursors)
/// into the entries' own buffer ([`WirePage::into_body`]) instead of copying the entries (about
/// 250 KB for 1000) into a new one behind it.
pub const WIRE_HEAD_ROOM: usize = 160;

/// One page of entries as the Report API writes them: the store writes each entry's JSON object
/// from its row into one buffer (`wire_json`), so the server splices these bytes into the page's
/// body without parsing or serialising an entry ([`crate::ReportStore::feed_page_wire`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePage {
    /// [`WIRE_HEAD_ROOM`] spaces, then the entries ([`WirePage::items`]).
    text: String,
    /// How many entries [`WirePage::items`] holds.
    pub entries: usize,
    /// The seq of the page's last entry; `None` for an empty page.
    pub last_seq: Option<i64>,
    /// Whether the reader may read entries beyond this page (in its grant's period, and of
    /// the same date for a date page).
    pub more: bool,
}

impl WirePage {
    /// A page without entries, and nothing beyond it.
    pub fn empty() -> WirePage {
        WirePage::from_text(" ".repeat(WIRE_HEAD_ROOM), 0, None, false)
    }

    /// A page from `text`: [`WIRE_HEAD_ROOM`] spaces, then the entries.
    pub(crate) fn from_text(
        text: String,
        entries: usize,
        last_seq: Option<i64>,
        more: bool,
    ) -> WirePage {
        debug_assert!(text.as_bytes()[..WIRE_HEAD_ROOM].iter().all(|b| *b == b' '));
        WirePage {
            text,
            entries,
            last_seq,
            more,
        }
    }

    /// The page's entries as JSON objects joined by commas (the inside of the page's `items`
    /// array; empty for none): each entry an object with the Report API's fields in its
    /// schema's order (`pspReference`, `time`, `ledgerDate`, `entryType`, `reference`,
    /// `currency`, `amount`, `balanceBefore`, `balanceAfter`, `recipientHandle`, then `name`,
    /// `message`, `maskedPhoneNo` when personal data was asked for and the payment has them), no
    /// whitespace, strings escaped as `serde_json` escapes them.
    pub fn items(&self) -> &str {
        // The room is ASCII, so this is a character boundary.
        &self.text[WIRE_HEAD_ROOM..]
    }

    /// The page's body, `open`, the items, then `close`: the buffer, and where in it the body
    /// starts. Written in the items' own buffer when `open` fits in the room in front of them,
    /// so the entries are not copied.
    pub fn into_body(self, open: &[u8], close: &[u8]) -> (Vec<u8>, usize) {
        let mut buf = self.text.into_bytes();
        match WIRE_HEAD_ROOM.checked_sub(open.len()) {
            Some(start) => {
                buf[start..WIRE_HEAD_ROOM].copy_from_slice(open);
                buf.extend_from_slice(close);
                (buf, start)
            }
            // An opening longer than the room: the entries are copied behind it once.
            None => {
                let items = &buf[WIRE_HEAD_ROOM..];
                let mut body = Vec::with_capacity(open.len() + items.len() + close.len());
                body.extend_from_slice(open);
                body.extend_from_slice(items);
                body.extend_from_slice(close);
                (body, 0)
            }
        }
    }
}
