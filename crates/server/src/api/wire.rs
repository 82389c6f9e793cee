//! JSON shapes of the Report API, written straight from domain values without copies.

use crate::AppError;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ledgerport_core::ids::BusinessId;
use ledgerport_core::proof::DateProof;
use ledgerport_store::{LedgerView, WirePage};
use serde::Serialize;

#[derive(Serialize)]
pub struct WireBusinessId {
    scheme: &'static str,
    id: String,
}

impl From<&BusinessId> for WireBusinessId {
    fn from(b: &BusinessId) -> Self {
        WireBusinessId {
            scheme: b.scheme.as_str(),
            id: b.id.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct WireAccount {
    scheme: String,
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireSalesUnit {
    name: String,
    recipient_handle: String,
    business_identifier: WireBusinessId,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireLedger {
    ledger_id: String,
    currency: &'static str,
    payout_bank_account: WireAccount,
    owner: WireBusinessId,
    settles_for_recipient_handles: Vec<String>,
    sales_units: Vec<WireSalesUnit>,
}

impl From<&LedgerView> for WireLedger {
    fn from(v: &LedgerView) -> Self {
        WireLedger {
            ledger_id: v.ledger.ledger_id.to_string(),
            currency: v.ledger.currency.as_str(),
            payout_bank_account: WireAccount {
                scheme: v.ledger.payout_account.scheme.clone(),
                id: v.ledger.payout_account.id.clone(),
            },
            owner: (&v.owner).into(),
            settles_for_recipient_handles: v.units.iter().map(|u| u.handle.to_string()).collect(),
            sales_units: v
                .units
                .iter()
                .map(|u| WireSalesUnit {
                    name: u.name.clone(),
                    recipient_handle: u.handle.to_string(),
                    business_identifier: (&v.owner).into(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
pub struct LedgerList {
    pub items: Vec<WireLedger>,
    pub cursor: String,
}

/// One grant as `GET /ledgerport/v1/grants` lists it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireGrant {
    pub ledger_id: String,
    pub merchant: WireMerchant,
    pub settles_for_recipient_handles: Vec<String>,
    pub scope: WireScope,
    /// `null`: no expiry.
    pub expires_at: Option<String>,
}

#[derive(Serialize)]
pub struct WireMerchant {
    pub name: String,
    pub scheme: &'static str,
    pub id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireScope {
    /// First ledger date, inclusive; `null`: no start.
    pub from: Option<ledgerport_core::ids::LedgerDate>,
    /// Last ledger date, inclusive; `null`: no end.
    pub to: Option<ledgerport_core::ids::LedgerDate>,
    pub topics: Vec<&'static str>,
    pub personal_data: bool,
}

impl From<&ledgerport_core::world::GrantScope> for WireScope {
    fn from(s: &ledgerport_core::world::GrantScope) -> Self {
        WireScope {
            from: s.from,
            to: s.to,
            topics: s.topics.list().into_iter().map(|t| t.as_str()).collect(),
            personal_data: s.personal_data,
        }
    }
}

#[derive(Serialize)]
pub struct GrantList {
    pub items: Vec<WireGrant>,
    pub cursor: String,
}

/// A feed page's body around entries the store rendered ([`ledgerport_store::WirePage`]),
/// without parsing or serialising an entry: `{"cursor":…,"tryLater":…,"items":[…]}`, no
/// whitespace, as the API always wrote it (`tests/wire_bytes.rs` holds every page to that).
pub fn feed_body(cursor: &str, try_later: bool, page: WirePage) -> Result<Bytes, AppError> {
    let mut open = Vec::with_capacity(64 + cursor.len());
    open.extend_from_slice(b"{\"cursor\":");
    json_string(&mut open, cursor)?;
    open.extend_from_slice(if try_later {
        b",\"tryLater\":true,\"items\":["
    } else {
        b",\"tryLater\":false,\"items\":["
    });
    Ok(body_around(page, &open, b"]}"))
}

/// A date page's body around entries the store rendered:
/// `{"items":[…],"hasMore":…,"tryLater":…}`, and `"cursor"` last when there is more.
pub fn date_body(
    page: WirePage,
    has_more: bool,
    try_later: bool,
    cursor: Option<&str>,
) -> Result<Bytes, AppError> {
    let mut close = Vec::with_capacity(96);
    close.extend_from_slice(if has_more {
        b"],\"hasMore\":true"
    } else {
        b"],\"hasMore\":false"
    });
    close.extend_from_slice(if try_later {
        b",\"tryLater\":true"
    } else {
        b",\"tryLater\":false"
    });
    if let Some(cursor) = cursor {
        close.extend_from_slice(b",\"cursor\":");
        json_string(&mut close, cursor)?;
    }
    close.push(b'}');
    Ok(body_around(page, b"{\"items\":[", &close))
}

/// `open`, the page's entries, `close`, in the entries' own buffer where it has room.
fn body_around(page: WirePage, open: &[u8], close: &[u8]) -> Bytes {
    let (buf, start) = page.into_body(open, close);
    Bytes::from(buf).slice(start..)
}

fn json_string(out: &mut Vec<u8>, text: &str) -> Result<(), AppError> {
    serde_json::to_writer(out, text).map_err(|e| AppError::Internal(format!("writing a page: {e}")))
}

/// JSON bytes as a response.
pub fn json_body(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A completeness proof of one closed (ledger, topic, date), as
/// `GET /ledgerport/v1/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}/proof` answers it; the one
/// JSON form of a proof, for whatever else carries one.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireProof {
    pub ledger_id: String,
    pub topic: &'static str,
    pub ledger_date: String,
    /// The canonical form the digests are made in ([`ledgerport_core::proof::FORM`]).
    pub form: &'static str,
    pub entry_count: u64,
    pub amount_sum: i64,
    pub opening_balance: i64,
    pub closing_balance: i64,
    pub digest: String,
    /// `null` at the start of the chain.
    pub previous_chain_digest: Option<String>,
    pub chain_digest: String,
}

impl From<&DateProof> for WireProof {
    fn from(p: &DateProof) -> Self {
        WireProof {
            ledger_id: p.ledger_id.to_string(),
            topic: p.topic.as_str(),
            ledger_date: p.ledger_date.to_string(),
            form: ledgerport_core::proof::FORM,
            entry_count: p.entry_count,
            amount_sum: p.amount_sum,
            opening_balance: p.opening_balance,
            closing_balance: p.closing_balance,
            digest: p.digest.hex(),
            previous_chain_digest: p.previous_chain_digest.map(|d| d.hex()),
            chain_digest: p.chain_digest.hex(),
        }
    }
}
