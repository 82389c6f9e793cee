//! JSON shapes of the Report API, written straight from domain values without copies.

use crate::AppError;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::BusinessId;
use ledgerport_core::proof::DateProof;
use ledgerport_store::LedgerView;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireEntry<'a> {
    psp_reference: &'a str,
    time: &'a str,
    ledger_date: ledgerport_core::ids::LedgerDate,
    entry_type: &'a str,
    reference: &'a str,
    currency: &'static str,
    amount: i64,
    balance_before: i64,
    balance_after: i64,
    recipient_handle: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    masked_phone_no: Option<&'a str>,
}

impl<'a> WireEntry<'a> {
    /// Payer details go out only when asked for, and only vm-number payments have them.
    pub fn new(e: &'a Entry, include_gdpr: bool) -> Self {
        let payer = e.payer.as_ref().filter(|_| include_gdpr);
        WireEntry {
            psp_reference: &e.psp_reference,
            time: &e.time,
            ledger_date: e.ledger_date,
            entry_type: &e.entry_type,
            reference: &e.reference,
            currency: e.currency.as_str(),
            amount: e.amount,
            balance_before: e.balance_before,
            balance_after: e.balance_after,
            recipient_handle: &e.recipient_handle,
            name: payer.map(|p| p.name.as_str()),
            message: payer.map(|p| p.message.as_str()),
            masked_phone_no: payer.map(|p| p.masked_phone_no.as_str()),
        }
    }
}

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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatePage<'a> {
    pub items: Vec<WireEntry<'a>>,
    pub has_more: bool,
    pub try_later: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedPage<'a> {
    pub cursor: String,
    pub try_later: bool,
    pub items: Vec<WireEntry<'a>>,
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

/// What one entry takes on the wire, about: a page of 1000 entries is 250 KB.
const ENTRY_BYTES: usize = 256;

/// A page of `entries` entries as JSON bytes, written into a buffer sized for them up front:
/// axum's `Json` starts at 128 bytes and doubles, copying a 250 KB page about eleven times (the
/// single-client feed page profile showed the copies and the page faults).
pub fn page_body<T: Serialize>(entries: usize, page: &T) -> Result<Bytes, AppError> {
    let mut body = Vec::with_capacity(128 + entries * ENTRY_BYTES);
    serde_json::to_writer(&mut body, page)
        .map_err(|e| AppError::Internal(format!("writing a page: {e}")))?;
    Ok(Bytes::from(body))
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
