//! The Report API: ledger listing, date pages and the feed, behind authentication and the access
//! log.

use super::wire::{
    GrantList, LedgerList, WireGrant, WireLedger, WireMerchant, WireProof, WireScope, date_body,
    feed_body, json_body,
};
use super::{QueryParams, check_system_headers, header};
use crate::cursor::Binding;
use crate::error::{INVALID_SUBSCRIPTION_KEY, MISSING_SUBSCRIPTION_KEY};
use crate::middleware::RequestId;
use crate::page_cache::{CachedPage, PageKey};
use crate::{AppError, AppState};
use axum::Json;
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ledgerport_core::access::{
    self, Decision, LedgerAccess, ListScope, NotAuthenticated, OutOfScope, Presented, Principal,
    Refusal,
};
use ledgerport_core::entry::wire_time;
use ledgerport_core::ids::{LedgerDate, LedgerId, Msn, RecipientHandle, Topic};
use ledgerport_core::statement::check_period;
use ledgerport_core::world::{ApiKey, KeyOwner};
use ledgerport_store::{LedgerView, NewAccessRecord};
use std::sync::{Arc, Mutex};

/// The authenticated caller of a Report API request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub key: ApiKey,
}

/// Turns the bearer token into a [`Caller`], checking on every request that the keys still stand:
/// not revoked, not regenerated since the token was issued, the partner still approved. So a
/// change takes effect on the next request, not when the token expires. Then the caller's key
/// must be within its rate limit ([`crate::limits`]), or the answer is 429.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let note = req.extensions().get::<AccessNote>().cloned();
    match caller(&state, req.headers()).await {
        Ok(caller) => {
            if let Err(e) = state.limits.report_request(caller.key.id) {
                // The access log still names who was refused.
                let mut res = e.into_response();
                res.extensions_mut().insert(caller);
                return res;
            }
            req.extensions_mut().insert(caller.clone());
            let mut res = next.run(req).await;
            res.extensions_mut().insert(caller);
            res
        }
        Err(e) => {
            if let Some(note) = note {
                note.result(match &e {
                    AppError::Unauthorized => "invalid token",
                    AppError::SubscriptionKey(_) => "invalid subscription key",
                    AppError::Forbidden(_) => {
                        "refused: Merchant-Serial-Number is not of these keys"
                    }
                    _ => "bad request",
                });
            }
            e.into_response()
        }
    }
}

async fn caller(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Caller, AppError> {
    check_system_headers(headers)?;
    let auth = header(headers, "Authorization").map_err(|_| AppError::Unauthorized)?;
    // `Bearer` is case-sensitive.
    let token = auth
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthorized)?;
    let claims = state
        .tokens
        .verify(token)
        .await
        .ok_or(AppError::Unauthorized)?;
    // The key and its partner's state in one read (a round trip to the store less than the key
    // and then its partner), found by the token's client id: a key of that client id but
    // another row is not the key the token was issued to.
    let (key, partner) = state
        .store
        .key_with_partner_state(&claims.sub)
        .await?
        .filter(|(key, _)| key.id == claims.key_id)
        .ok_or(AppError::Unauthorized)?;
    let principal = access::authenticate(
        &key,
        partner,
        Presented::Token {
            client_id: &claims.sub,
            key_type: &claims.key_type,
            generation: claims.generation,
        },
    )
    .map_err(|e| match e {
        NotAuthenticated::Refused => AppError::Unauthorized,
        NotAuthenticated::Inconsistent(why) => AppError::Internal(why),
    })?;
    if let Principal::SalesUnit { msn, .. } = principal {
        // A standard token travels with one of its unit's subscription keys.
        let presented = header(headers, "Ocp-Apim-Subscription-Key")?
            .filter(|k| !k.is_empty())
            .ok_or(AppError::SubscriptionKey(MISSING_SUBSCRIPTION_KEY))?;
        let own = key
            .subscription_keys
            .as_ref()
            .is_some_and(|ks| ks.iter().any(|k| k == presented));
        if !own {
            return Err(AppError::SubscriptionKey(INVALID_SUBSCRIPTION_KEY));
        }
        let claimed = header(headers, "Merchant-Serial-Number")?
            .map(|m| Msn::parse("Merchant-Serial-Number", m))
            .transpose()?;
        if claimed.is_some_and(|m| m != msn) {
            return Err(AppError::Forbidden(
                "Merchant-Serial-Number: does not match the sales unit of these keys".into(),
            ));
        }
    }
    Ok(Caller { principal, key })
}

/// What the handlers of a request learned for its access-log row: the topic, date or feed
/// position asked for, whether personal data was given, why it was refused, the ledgers a
/// listing returned. [`access_log`] puts an empty one in the request; the handlers fill it in as
/// they go, so a refused request still says what it asked for.
#[derive(Debug, Clone, Default)]
pub struct AccessNote(Arc<Mutex<Noted>>);

#[derive(Debug, Default)]
struct Noted {
    topic: Option<Topic>,
    ledger_date: Option<LedgerDate>,
    feed_after: Option<i64>,
    personal_data: Option<&'static str>,
    result: Option<String>,
    listed: Option<Vec<String>>,
}

impl AccessNote {
    fn with(&self, f: impl FnOnce(&mut Noted)) {
        // A poisoned lock only loses detail of a row; the answer is never affected.
        if let Ok(mut n) = self.0.lock() {
            f(&mut n);
        }
    }
    fn topic(&self, t: Topic) {
        self.with(|n| n.topic = Some(t));
    }
    fn ledger_date(&self, d: LedgerDate) {
        self.with(|n| n.ledger_date = Some(d));
    }
    fn feed_after(&self, seq: i64) {
        self.with(|n| n.feed_after = Some(seq));
    }
    fn personal_data(&self, given: bool) {
        self.with(|n| n.personal_data = Some(if given { "given" } else { "withheld" }));
    }
    /// The result in words, when the status alone does not say it.
    fn result(&self, words: impl Into<String>) {
        let words = words.into();
        self.with(|n| n.result = Some(words));
    }
    fn listed(&self, ledgers: Vec<String>) {
        self.with(|n| n.listed = Some(ledgers));
    }
}

/// The result of a request in words, as a merchant or partner reads it in the access log: what a
/// handler noted, else what its status means.
fn result_words(status: u16, noted: Option<String>) -> String {
    if let Some(words) = noted {
        return words;
    }
    match status {
        200..=299 => "read",
        400 => "bad request",
        401 => "invalid token",
        // On a ledger that exists, the same answer as one never granted: expired, not granted
        // or another organisation's.
        404 => "not found or not granted",
        403 => "refused: these credentials may not use the Report API",
        410 => "refused: retired endpoint",
        429 => "refused: rate limit",
        500..=599 => "server error",
        _ => "refused",
    }
    .to_owned()
}

/// Records every Report API request: who, which ledger, which endpoint, the status, the request
/// id, and what the handlers noted ([`AccessNote`]). A ledger listing records one row per ledger
/// it returned, so each ledger's owner sees the listing among the reads of its ledger. The rows
/// are written by the access log's one writer together with those of concurrent requests
/// ([`crate::access_writer`]); the answer goes out once they are written. A failure to record
/// is logged but does not fail the request that was already answered.
pub async fn access_log(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    // `/report/v2/ledgers/{ledgerId}/...` or `/ledgerport/v1/ledgers/{ledgerId}/...` (proofs):
    // the ledger as the client named it.
    let path = req.uri().path();
    let ledger_id = path
        .strip_prefix("/report/v2/ledgers/")
        .or_else(|| path.strip_prefix("/ledgerport/v1/ledgers/"))
        .and_then(|rest| rest.split('/').next())
        .filter(|id| LedgerId::parse("ledgerId", id).is_ok())
        .map(str::to_owned);
    let note = AccessNote::default();
    req.extensions_mut().insert(note.clone());
    let res = next.run(req).await;
    let caller = res.extensions().get::<Caller>();
    let noted = match note.0.lock() {
        Ok(mut n) => std::mem::take(&mut *n),
        Err(_) => Noted::default(),
    };
    let status = res.status().as_u16();
    let rec = NewAccessRecord {
        request_id,
        key_id: caller.map(|c| c.key.id),
        key_kind: caller.map(|c| c.key.kind),
        client_id: caller.map(|c| c.key.client_id.clone()),
        partner_id: caller.and_then(|c| match c.key.owner {
            KeyOwner::Partner(p) => Some(p),
            _ => None,
        }),
        merchant_id: caller.and_then(|c| match c.key.owner {
            KeyOwner::Merchant(m) => Some(m),
            _ => None,
        }),
        msn: caller.and_then(|c| match c.key.owner {
            KeyOwner::SalesUnit(m) => Some(m),
            _ => None,
        }),
        ledger_id,
        endpoint,
        status,
        topic: noted.topic.map(|t| t.as_str().to_owned()),
        ledger_date: noted.ledger_date.map(|d| d.to_string()),
        feed_after: noted.feed_after,
        personal_data: noted.personal_data.map(str::to_owned),
        result: result_words(status, noted.result),
    };
    let recs = match noted.listed {
        Some(ledgers) if !ledgers.is_empty() => ledgers
            .into_iter()
            .map(|l| NewAccessRecord {
                ledger_id: Some(l),
                ..rec.clone()
            })
            .collect(),
        _ => vec![rec],
    };
    if let Err(e) = state.access_log.record(recs).await {
        tracing::error!(error = %e, "could not record a Report API request in the access log");
    }
    res
}

pub async fn gone() -> AppError {
    AppError::Gone("/report/v1/ledgertransactions is retired: use /report/v2 and /settlement/v1")
}

fn page_size_header(n: u32) -> [(axum::http::HeaderName, HeaderValue); 1] {
    [(
        axum::http::HeaderName::from_static("vipps-feed-page-size"),
        HeaderValue::from(n),
    )]
}

pub async fn list_ledgers(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    axum::Extension(note): axum::Extension<AccessNote>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let scope = access::list_scope(&caller.principal).ok_or_else(forbidden)?;
    let q = QueryParams::parse(raw.as_deref())?;
    let filter_text = q
        .get("settlesForRecipientHandles")
        .filter(|s| !s.is_empty())
        .unwrap_or("");
    let filter = (!filter_text.is_empty())
        .then(|| RecipientHandle::parse("settlesForRecipientHandles", filter_text))
        .transpose()?;
    let binding = Binding::Ledgers {
        filter: filter_text,
    };
    let (opened, cursor) =
        opened_ledger_page(&state, &caller, &scope, filter.as_ref(), &binding, &q).await?;
    note.listed(
        opened
            .iter()
            .map(|(a, _)| a.ledger_id().to_string())
            .collect(),
    );
    let items = opened
        .iter()
        .map(|(_, view)| WireLedger::from(view))
        .collect();
    let limit = state.config.ledger_list_page_size;
    Ok((page_size_header(limit), Json(LedgerList { items, cursor })).into_response())
}

/// `GET /ledgerport/v1/grants`, a Ledgerport extension: an accounting partner's grants, each
/// with its merchant, ledger, scope and expiry, so partner software can show what it may read.
/// It lists exactly what the policy lets the keys read now (the partner's listing scope, each
/// ledger through `decide`), so an expired grant is not there. Every other kind of key gets 403:
/// merchant-level keys read their own ledgers whole and see their grants in the portal; sales
/// unit, integration and management keys hold no grants.
pub async fn list_grants(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    axum::Extension(note): axum::Extension<AccessNote>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let scope = match (&caller.principal, access::list_scope(&caller.principal)) {
        (Principal::Accounting { .. }, Some(scope)) => scope,
        _ => {
            return Err(AppError::Forbidden(
                "Only an accounting partner's keys have grants to list.".into(),
            ));
        }
    };
    let q = QueryParams::parse(raw.as_deref())?;
    let binding = Binding::Grants;
    let (opened, cursor) = opened_ledger_page(&state, &caller, &scope, None, &binding, &q).await?;
    let mut merchants = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(opened.len());
    let mut listed = Vec::with_capacity(opened.len());
    for (access, view) in opened {
        let ledger = access.ledger_id().clone();
        let owner = view.ledger.owner_merchant_id;
        let name = match merchants.get(&owner) {
            Some(name) => String::clone(name),
            None => {
                let name = state
                    .store
                    .merchant(owner)
                    .await?
                    .map(|m| m.name)
                    .ok_or_else(|| AppError::Internal(format!("ledger {ledger} has no owner")))?;
                merchants.insert(owner, name.clone());
                name
            }
        };
        listed.push(ledger.to_string());
        let scope = access.scope();
        items.push(WireGrant {
            ledger_id: ledger.to_string(),
            merchant: WireMerchant {
                name,
                scheme: view.owner.scheme.as_str(),
                id: view.owner.id.clone(),
            },
            settles_for_recipient_handles: view
                .units
                .iter()
                .map(|u| u.handle.to_string())
                .collect(),
            scope: WireScope::from(scope),
            expires_at: scope.expires_at.map(wire_time),
        });
    }
    note.listed(listed);
    let limit = state.config.ledger_list_page_size;
    Ok((page_size_header(limit), Json(GrantList { items, cursor })).into_response())
}

/// One page of the ledgers of `scope` (those settling for `filter`, when given) after the
/// request's cursor, each opened by the policy as the caller, and the next page's cursor (empty
/// on the last page): what the ledger listing and the grant listing both page through.
async fn opened_ledger_page(
    state: &AppState,
    caller: &Caller,
    scope: &ListScope,
    filter: Option<&RecipientHandle>,
    binding: &Binding<'_>,
    q: &QueryParams,
) -> Result<(Vec<(LedgerAccess, LedgerView)>, String), AppError> {
    let after = match q.cursor() {
        None => None,
        Some(c) => {
            let bytes = state.cursors.decode(binding, c).map_err(|_| bad_cursor())?;
            let text = String::from_utf8(bytes).map_err(|_| bad_cursor())?;
            Some(LedgerId::parse("cursor", &text).map_err(|_| bad_cursor())?)
        }
    };
    let limit = state.config.ledger_list_page_size;
    let mut rows = state
        .store
        .ledgers_in_scope(scope, filter, after.as_ref(), limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let cursor = match (more, rows.last()) {
        (true, Some(last)) => state
            .cursors
            .encode(binding, last.facts().ledger_id.as_str().as_bytes()),
        _ => String::new(),
    };
    let mut opened = Vec::with_capacity(rows.len());
    for guarded in rows {
        let ledger = guarded.facts().ledger_id.clone();
        // The scope query and the policy must agree; if they ever do not, the policy wins.
        match guarded.open(&caller.principal) {
            Ok(o) => opened.push(o),
            Err(refusal) => {
                tracing::error!(%ledger, ?refusal, "listing scope returned a ledger the policy refuses")
            }
        }
    }
    Ok((opened, cursor))
}

/// A read outside the caller's grant on a ledger it may read: 403, naming the topic or period.
fn out_of_scope(note: &AccessNote, e: OutOfScope) -> AppError {
    note.result(match &e {
        OutOfScope::Topic(_) => "refused: topic not in the grant",
        OutOfScope::Date { .. } => "refused: date outside the grant's period",
    });
    AppError::Forbidden(e.to_string())
}

/// Whether a page carries payers' personal data: only when asked for and the grant allows it.
/// When asked for and withheld, the answer still succeeds (clients that always ask keep
/// working) and says so in `Ledgerport-Personal-Data: withheld`.
fn personal_data(
    access: &LedgerAccess,
    asked: bool,
) -> (bool, Option<[(HeaderName, HeaderValue); 1]>) {
    if asked && !access.personal_data() {
        (
            false,
            Some([(
                HeaderName::from_static(PERSONAL_DATA_HEADER),
                HeaderValue::from_static("withheld"),
            )]),
        )
    } else {
        (asked, None)
    }
}

/// The response header that says personal data asked for was withheld.
pub const PERSONAL_DATA_HEADER: &str = "ledgerport-personal-data";

fn forbidden() -> AppError {
    AppError::Forbidden("These credentials may not use the Report API.".into())
}

/// The position a page starts after: the cursor's, or 0 without one.
fn after_seq(state: &AppState, binding: &Binding<'_>, q: &QueryParams) -> Result<i64, AppError> {
    match q.cursor() {
        None => Ok(0),
        Some(c) => state
            .cursors
            .decode_seq(binding, c)
            .map_err(|_| bad_cursor()),
    }
}

fn bad_cursor() -> AppError {
    AppError::bad("cursor", "is not a cursor of this ledger, topic and query")
}

/// Credentials that may never read get 403 before anything of the request is looked at: the
/// policy's answer for them whatever the ledger, asked here without one.
fn refuse_never_readers(caller: &Caller) -> Result<(), AppError> {
    match access::decide(&caller.principal, None) {
        Decision::Forbidden => Err(forbidden()),
        Decision::Allow(_) | Decision::NoSuchLedger => Ok(()),
    }
}

/// The last step of the ledger endpoints' checks, after the request's own fields are parsed
/// (so bad input is a 400 on any ledger, as it always was): read the ledger named in the path
/// and ask the policy. An id that cannot be a ledger id names no ledger, the same 404 as any
/// other. Returns the access capability and the ledger.
async fn open_ledger(
    state: &AppState,
    caller: &Caller,
    ledger_id: &str,
) -> Result<(LedgerAccess, LedgerView), AppError> {
    let ledger = match LedgerId::parse("ledgerId", ledger_id) {
        Ok(id) => state.store.ledger(&id).await?,
        Err(_) => None,
    };
    access::open(&caller.principal, ledger).map_err(|refusal| match refusal {
        Refusal::NoSuchLedger => AppError::NoSuchLedger,
        Refusal::Forbidden => forbidden(),
    })
}

pub async fn date_page(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    axum::Extension(note): axum::Extension<AccessNote>,
    path: Result<Path<(String, String, String)>, axum::extract::rejection::PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let Path((ledger_id, topic, date)) = path.map_err(|_| AppError::bad("path", "is not valid"))?;
    refuse_never_readers(&caller)?;
    let date = LedgerDate::parse("ledgerDate", &date)?;
    note.ledger_date(date);
    let q = QueryParams::parse(raw.as_deref())?;
    let gdpr = q.flag("includeGDPRSensitiveData")?;
    let gdpr_asked = gdpr;
    let topic = Topic::parse("topic", &topic)?;
    note.topic(topic);
    let (access, view) = open_ledger(&state, &caller, &ledger_id).await?;
    // On a ledger the caller may read, its grant's topics and period: a 403 naming them.
    access
        .check_topic(topic)
        .map_err(|e| out_of_scope(&note, e))?;
    access
        .check_date(date)
        .map_err(|e| out_of_scope(&note, e))?;
    let binding = Binding::Date {
        ledger: access.ledger_id(),
        topic,
        date,
    };
    let after = after_seq(&state, &binding, &q)?;
    let limit = view.ledger.page_size;
    let (gdpr, withheld) = personal_data(&access, gdpr);
    if gdpr_asked {
        note.personal_data(gdpr);
    }
    let try_later = view.ledger.is_open(date, state.clock.now());
    let key = PageKey::Date {
        ledger: access.ledger_id().clone(),
        topic,
        date,
        after,
        limit,
        personal_data: gdpr,
    };
    if !try_later && let Some(hit) = state.pages.get(&key) {
        state.metrics.page_answered(true);
        state.metrics.entries_served(topic, hit.page.entries);
        return Ok(cached_response(limit, withheld, hit.page));
    }
    // The entries come rendered by the store, so the page is spliced, not serialised.
    let wire = state
        .store
        .date_page_wire(&access, topic, date, after, limit, gdpr)
        .await?;
    let has_more = wire.more;
    let cursor = match (has_more, wire.last_seq) {
        (true, Some(last)) => Some(state.cursors.encode_seq(&binding, last)),
        _ => None,
    };
    state.metrics.page_answered(false);
    state.metrics.entries_served(topic, wire.entries);
    let (entries, position) = (wire.entries, wire.last_seq.unwrap_or(after));
    let page = CachedPage {
        body: date_body(wire, has_more, try_later, cursor.as_deref())?,
        entries,
        position,
    };
    // A closed date never changes.
    if !try_later {
        state.pages.put(key, page.clone());
    }
    Ok(cached_response(limit, withheld, page))
}

/// `GET /ledgerport/v1/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}/proof`, a Ledgerport
/// extension: the completeness proof of a closed date ([`WireProof`]). The date page's rules
/// exactly: 403 for keys that may never read, 400 naming a bad date or topic, the same 404 for a
/// ledger that is unknown or not the caller's, 403 for a topic or date outside the grant. Then a
/// date not closed yet is 409 (its proof comes when it closes), and a closed date without a
/// proof (before the ledger's first date) a 404 that names `ledgerDate`.
pub async fn date_proof(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    axum::Extension(note): axum::Extension<AccessNote>,
    path: Result<Path<(String, String, String)>, axum::extract::rejection::PathRejection>,
) -> Result<Response, AppError> {
    let Path((ledger_id, topic, date)) = path.map_err(|_| AppError::bad("path", "is not valid"))?;
    refuse_never_readers(&caller)?;
    let date = LedgerDate::parse("ledgerDate", &date)?;
    note.ledger_date(date);
    let topic = Topic::parse("topic", &topic)?;
    note.topic(topic);
    let (access, view) = open_ledger(&state, &caller, &ledger_id).await?;
    access
        .check_topic(topic)
        .map_err(|e| out_of_scope(&note, e))?;
    access
        .check_date(date)
        .map_err(|e| out_of_scope(&note, e))?;
    if view.ledger.is_open(date, state.clock.now()) {
        note.result("refused: date not closed yet");
        return Err(AppError::Conflict(format!(
            "ledgerDate: {date} is not closed yet; its proof is written when it closes"
        )));
    }
    match state.store.date_proof(&access, topic, date).await? {
        Some(proof) => Ok(Json(WireProof::from(&proof)).into_response()),
        None => {
            note.result("no proof: before the ledger's first date");
            Err(AppError::NoProof(format!(
                "ledgerDate: {date} has no proof; proofs begin with the ledger's first date"
            )))
        }
    }
}

/// The longest period one `GET .../statements/camt053` covers, in ledger dates: the portal's
/// limit, about a quarter, so one answer stays a document an accounting system imports at once.
pub const MAX_STATEMENT_API_DAYS: i64 = 92;

/// `GET /ledgerport/v1/ledgers/{ledgerId}/statements/camt053?from=YYYY-MM-DD&to=YYYY-MM-DD`, a
/// Ledgerport extension: the ledger's closed dates `from..=to` as an ISO 20022 camt.053 bank
/// statement, the very document the portal's Settlements page gives for them
/// ([`crate::statement::camt053`]). The date page's rules: 403 for keys that may never read, 400
/// naming `from` or `to` (missing, not a date, `from` after `to`, longer than
/// [`MAX_STATEMENT_API_DAYS`]), the same 404 for a ledger that is unknown or not the caller's,
/// 403 for a grant without both topics (a statement is of both) or a period reaching outside the
/// grant's. Then a period reaching an open date is 409 naming `to`: a statement of a date that
/// may still change would not be the statement of that date.
pub async fn camt053_statement(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    axum::Extension(note): axum::Extension<AccessNote>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let Path(ledger_id) = path.map_err(|_| AppError::bad("path", "is not valid"))?;
    refuse_never_readers(&caller)?;
    let q = QueryParams::parse(raw.as_deref())?;
    let date = |field: &'static str| -> Result<LedgerDate, AppError> {
        match q.get(field).map(str::trim).filter(|v| !v.is_empty()) {
            None => Err(AppError::bad(
                field,
                "is required: a ledger date YYYY-MM-DD",
            )),
            Some(v) => Ok(LedgerDate::parse(field, v)?),
        }
    };
    let (from, to) = (date("from")?, date("to")?);
    note.ledger_date(from);
    check_period("from", from, to, MAX_STATEMENT_API_DAYS)?;
    let (access, view) = open_ledger(&state, &caller, &ledger_id).await?;
    for topic in [Topic::Funds, Topic::Fees] {
        access
            .check_topic(topic)
            .map_err(|e| out_of_scope(&note, e))?;
    }
    // A grant's period is one run of dates: the period asked for is within it when both ends are.
    for (field, d) in [("from", from), ("to", to)] {
        match access.check_date(d) {
            Ok(()) => {}
            Err(OutOfScope::Date { date, period }) => {
                note.result("refused: date outside the grant's period");
                return Err(AppError::Forbidden(format!(
                    "{field}: {date} is outside the grant's period ({period})"
                )));
            }
            Err(e) => return Err(out_of_scope(&note, e)),
        }
    }
    let now = state.clock.now();
    if view.ledger.is_open(to, now) {
        note.result("refused: period not closed yet");
        return Err(AppError::Conflict(format!(
            "to: {to} is not closed yet; a statement covers closed dates only (the last closed \
             date is {})",
            view.ledger.closed_through.min(last_closed_by(&view, now))
        )));
    }
    let owner = state
        .store
        .merchant(view.ledger.owner_merchant_id)
        .await?
        .map(|m| m.name)
        .unwrap_or_default();
    let doc =
        crate::statement::camt053(state.store.as_ref(), &access, &view, &owner, from, to, now)
            .await?;
    note.result(format!("read: camt.053 statement of {from} to {to}"));
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/xml; charset=utf-8".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", doc.file_name()),
            ),
        ],
        doc.xml,
    )
        .into_response())
}

/// The last date that is closed by the clock alone: the day before today (in the ledger's time
/// zone and cutoff).
fn last_closed_by(view: &LedgerView, now: jiff::Timestamp) -> LedgerDate {
    let today = view.ledger.ledger_date_of(now);
    today
        .date()
        .yesterday()
        .map(LedgerDate::from_date)
        .unwrap_or(today)
}

pub async fn feed_page(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    axum::Extension(note): axum::Extension<AccessNote>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let Path((ledger_id, topic)) = path.map_err(|_| AppError::bad("path", "is not valid"))?;
    refuse_never_readers(&caller)?;
    let q = QueryParams::parse(raw.as_deref())?;
    let gdpr = q.flag("includeGDPRSensitiveData")?;
    let gdpr_asked = gdpr;
    let topic = Topic::parse("topic", &topic)?;
    note.topic(topic);
    if q.cursor().is_none() {
        // The first page; a cursor's position is known once the ledger is open.
        note.feed_after(0);
    }
    let (access, view) = open_ledger(&state, &caller, &ledger_id).await?;
    access
        .check_topic(topic)
        .map_err(|e| out_of_scope(&note, e))?;
    let binding = Binding::Feed {
        ledger: access.ledger_id(),
        topic,
    };
    let after = after_seq(&state, &binding, &q)?;
    note.feed_after(after);
    let limit = view.ledger.page_size;
    let (gdpr, withheld) = personal_data(&access, gdpr);
    if gdpr_asked {
        note.personal_data(gdpr);
    }
    let key = PageKey::Feed {
        ledger: access.ledger_id().clone(),
        topic,
        after,
        limit,
        personal_data: gdpr,
        from: access.scope().from,
        to: access.scope().to,
    };
    let hit = state.pages.get_or_wait(&key).await;
    state.metrics.page_answered(hit.is_some());
    let (page, read_next) = match hit {
        Some(hit) => (hit.page, hit.read_ahead),
        None => {
            let (page, fin) = read_feed_page(&state, &access, topic, after, limit, gdpr).await?;
            if fin {
                state.pages.put(key.clone(), page.clone());
            }
            // A final page read for its request: its client is likely to ask for the next.
            (page, fin)
        }
    };
    if read_next {
        read_feed_ahead(&state, &access, &key, page.position);
    }
    state.metrics.entries_served(topic, page.entries);
    Ok(cached_response(limit, withheld, page))
}

/// Reads a feed page from the store and renders its body; `true` when the page is final
/// (followed by more entries, so it can never change).
async fn read_feed_page(
    state: &AppState,
    access: &LedgerAccess,
    topic: Topic,
    after: i64,
    limit: u32,
    personal_data: bool,
) -> Result<(CachedPage, bool), AppError> {
    // The entries come rendered by the store, so the page is spliced, not serialised.
    let wire = state
        .store
        .feed_page_wire(access, topic, after, limit, personal_data)
        .await?;
    // Nothing beyond this page: the client has caught up and should come back later.
    let try_later = !wire.more;
    let position = wire.last_seq.unwrap_or(after);
    let binding = Binding::Feed {
        ledger: access.ledger_id(),
        topic,
    };
    let cursor = state.cursors.encode_seq(&binding, position);
    let page = CachedPage {
        entries: wire.entries,
        body: feed_body(&cursor, try_later, wire)?,
        position,
    };
    Ok((page, !try_later))
}

/// Starts reading the page of the feed `key` names that starts after `position` (the next
/// page), in a task of its own, unless it is kept or being read already; kept if final
/// ([`crate::page_cache`] on read-ahead). `access` is the capability of the request that read
/// `key`'s page, and the new page's key holds everything its rendering depends on, so it is only
/// ever sent to a reader the same rendering is for, after that reader's own access check.
fn read_feed_ahead(state: &AppState, access: &LedgerAccess, key: &PageKey, position: i64) {
    // The same key but for where the page starts.
    let mut next = key.clone();
    let PageKey::Feed {
        topic,
        after,
        limit,
        personal_data,
        ..
    } = &mut next
    else {
        return;
    };
    *after = position;
    let (topic, limit, personal_data) = (*topic, *limit, *personal_data);
    let Some(reading) = state.pages.start_reading(next) else {
        return;
    };
    let state = state.clone();
    let access = access.clone();
    tokio::spawn(async move {
        let read = read_feed_page(&state, &access, topic, position, limit, personal_data).await;
        // Counted before the reading ends, so that its request sees it counted.
        state.metrics.page_read_ahead(matches!(read, Ok((_, true))));
        match read {
            Ok((page, true)) => reading.keep(page),
            // May still grow: its request reads it when it comes.
            Ok((_, false)) => {}
            // Its request reads it again and answers with the error.
            Err(e) => tracing::debug!(error = %e, "reading a feed page ahead failed"),
        }
    });
}

/// A page's response: its body (kept or just rendered) with the page-size header, and the
/// header that says personal data was withheld.
fn cached_response(
    limit: u32,
    withheld: Option<[(HeaderName, HeaderValue); 1]>,
    page: CachedPage,
) -> Response {
    (page_size_header(limit), withheld, json_body(page.body)).into_response()
}
