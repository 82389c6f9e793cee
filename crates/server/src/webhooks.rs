//! Webhooks after the Standard Webhooks specification: endpoint secrets, signatures, the checks
//! of where an endpoint may point, and the sender that delivers the store's domain events.
//!
//! Changes write their events and deliveries in their own transactions
//! ([`ledgerport_store::WebhookStore`]); the sender claims due deliveries for a while (so server
//! processes sharing a database never attempt one delivery at the same time, and a delivery
//! claimed by a process that died is taken again once its claim lapses, with the same
//! `webhook-id`), asks the access policy whether the endpoint's owner may see the event *now*,
//! signs and posts it, and records the attempt. A failure is retried after an exponential
//! backoff with jitter ([`backoff`]); a delivery failing for [`RETRY_PERIOD`] disables its
//! endpoint and tells its owner.

use crate::AppState;
use crate::api::wire::WireProof;
use crate::tokens::{SigningKeyProtection, TokenError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use ledgerport_core::access::{self, LedgerAccess, Principal};
use ledgerport_core::ids::Topic;
use ledgerport_store::{
    AttemptOutcome, AttemptRecord, DomainEvent, RETRY_PERIOD, Store, StoreError, WebhookDelivery,
    WebhookEndpoint, WebhookOwner,
};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The prefix of a webhook secret, as the specification writes them.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;
/// The most of an answer's body read (and kept as the error of a failed attempt).
const ERROR_BODY_LIMIT: usize = 200;

/// The sender's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// Whether this process delivers webhooks at all (events are written either way).
    pub deliver: bool,
    /// Networks endpoints may point into although they are loopback, private or link-local
    /// (e.g. `127.0.0.1/32` for tests, `10.0.0.0/8` for an operator's own receivers).
    pub allowed_networks: Vec<Network>,
    /// How often the sender looks for due deliveries.
    pub poll_interval: Duration,
    /// The longest one attempt may take (connecting, sending, the answer's head).
    pub timeout: Duration,
    /// The wait after the first failure; it doubles with each further one, up to an hour.
    pub first_retry: Duration,
    /// Deliveries attempted at once by one process.
    pub concurrency: usize,
    /// A PEM file of CA certificates trusted for https:// endpoints besides the system's roots
    /// (a private CA, or a test's self-signed certificate).
    pub extra_ca_file: Option<std::path::PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            deliver: true,
            allowed_networks: Vec::new(),
            poll_interval: Duration::from_millis(250),
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(5),
            concurrency: 64,
            extra_ca_file: None,
        }
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("expected an address or CIDR network, got {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("the prefix of {s:?} must be 0 to {max}"))?
        };
        Ok(Network { addr, prefix })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is an address of this machine or a private network: loopback, private,
/// shared (carrier-grade NAT), link-local, unique-local, unspecified, multicast or broadcast.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Where endpoints may point: anywhere public, and into the networks the operator allows.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<Network>,
}

impl AddressPolicy {
    pub fn new(allowed: Vec<Network>) -> Self {
        AddressPolicy { allowed }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allowed.iter().any(|n| n.contains(ip))
    }

    /// Resolves the host of `url` and checks every address it resolves to; an error says why
    /// the endpoint is refused, naming `url`.
    pub async fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("url: not a valid URL ({e}), got {url:?}"))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(format!(
                "url: must be an https:// (or http://) URL, got {url:?}"
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| format!("url: has no host, got {url:?}"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addrs = self.resolve(host, port).await?;
        if addrs.is_empty() {
            return Err(format!("url: {host} resolves to no address"));
        }
        Ok(())
    }

    /// The addresses `host` resolves to, all of them permitted; an error when any is not (a
    /// name that also points inside is refused as a whole).
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| format!("url: cannot resolve {host}: {e}"))?
                .collect(),
        };
        if let Some(bad) = addrs.iter().find(|a| !self.permits(a.ip())) {
            return Err(format!(
                "url: {host} resolves to {}, a loopback, private or link-local address, which \
                 the operator has not allowed (webhooks.allowed_networks)",
                bad.ip()
            ));
        }
        Ok(addrs)
    }
}

/// reqwest's resolver for the sender: the same check at every connection, so a name that
/// turned to an internal address after registration (DNS rebinding) is not connected to.
struct CheckedResolver(AddressPolicy);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = policy.resolve(&host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A new secret as shown once: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    format!("{SECRET_PREFIX}{}", B64.encode(key))
}

/// A new endpoint id: `ep_` and 16 random bytes in hex.
pub fn new_endpoint_uid() -> String {
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    format!(
        "ep_{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// The key bytes of a `whsec_` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    B64.decode(b64)
        .map_err(|_| "secret: expected whsec_ followed by base64".to_owned())
}

/// A secret as the store keeps it: sealed like the signing keys, bound to the endpoint's uid.
pub fn seal_secret(
    protection: &SigningKeyProtection,
    uid: &str,
    secret: &str,
) -> Result<Vec<u8>, TokenError> {
    protection.seal(&format!("webhook:{uid}"), secret.as_bytes())
}

/// The secret (`whsec_...`) from its stored bytes.
pub fn open_secret(
    protection: &SigningKeyProtection,
    uid: &str,
    stored: &[u8],
) -> Result<String, TokenError> {
    let bytes = protection.open(&format!("webhook:{uid}"), stored)?;
    String::from_utf8(bytes)
        .map_err(|_| TokenError::AtRest(format!("the secret of webhook endpoint {uid} is corrupt")))
}

/// `v1,` and the base64 HMAC-SHA256, keyed with the secret's bytes, of `id.timestamp.body`.
pub fn signature(key: &[u8], msg_id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The body of an event's webhook: `type`, `timestamp` (when the event happened) and `data`. The
/// same bytes on every attempt to an endpoint whose owner's access stays the same.
pub fn body(event: &DomainEvent) -> String {
    body_with(event, None)
}

/// [`body`], with `extra` (`"key":value` pairs, already JSON) added at the end of `data`.
fn body_with(event: &DomainEvent, extra: Option<&str>) -> String {
    let data = match extra {
        // `data` is a JSON object written by the store; the pairs go before its closing brace.
        Some(extra) if event.data.ends_with('}') => {
            let head = &event.data[..event.data.len() - 1];
            let comma = if head.trim_end().ends_with('{') {
                ""
            } else {
                ","
            };
            format!("{head}{comma}{extra}}}")
        }
        _ => event.data.clone(),
    };
    format!(
        r#"{{"type":{},"timestamp":{},"data":{}}}"#,
        serde_json::Value::from(event.event_type.as_str()),
        serde_json::Value::from(ledgerport_core::entry::wire_time(event.created_at)),
        data
    )
}

/// The body an endpoint is sent. A date-closed event also carries `proofs`: the completeness
/// proof of its `ledgerDate` for each topic the reader may see (the proof endpoint's JSON, whose
/// `chainDigest` covers every earlier date too), read through the same decision that let the
/// delivery go; a proof never changes, so retries send the same bytes.
async fn delivery_body(
    store: &dyn Store,
    event: &DomainEvent,
    access: Option<&LedgerAccess>,
) -> Result<String, StoreError> {
    let (Some(access), Some(date)) = (access, event.ledger_date) else {
        return Ok(body(event));
    };
    if event.event_type != ledgerport_store::LEDGER_DATE_CLOSED {
        return Ok(body(event));
    }
    let mut proofs = serde_json::Map::new();
    for topic in [Topic::Funds, Topic::Fees] {
        if let Some(proof) = store.date_proof(access, topic, date).await? {
            let wire = serde_json::to_value(WireProof::from(&proof))
                .map_err(|e| StoreError::Corrupt(format!("a proof as JSON: {e}")))?;
            proofs.insert(topic.as_str().to_owned(), wire);
        }
    }
    let extra = format!(r#""proofs":{}"#, serde_json::Value::Object(proofs));
    Ok(body_with(event, Some(&extra)))
}

/// The wait before the next attempt of a delivery whose `attempts`th attempt failed: the first
/// wait doubling, at most an hour, each between half and all of it (jitter, so many deliveries
/// failing together do not come back together).
pub fn backoff(first: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    let full = first
        .saturating_mul(1u32 << doublings)
        .min(Duration::from_secs(3600));
    let jitter: f64 = rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0);
    full.mul_f64(jitter)
}

/// The sender: an HTTP client that connects only where the policy permits.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: AddressPolicy,
    config: WebhookConfig,
}

impl Sender {
    pub fn new(config: &WebhookConfig) -> Result<Sender, String> {
        let policy = AddressPolicy::new(config.allowed_networks.clone());
        let extra = match &config.extra_ca_file {
            Some(path) => crate::http::read_ca_file(path)
                .map_err(|e| format!("webhooks.extra_ca_file: {e}"))?,
            None => Vec::new(),
        };
        let client = crate::http::client_builder_with(&extra)
            .map_err(|e| format!("webhooks: {e}"))?
            .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent("Ledgerport-Webhooks/1")
            .build()
            .map_err(|e| format!("webhooks: cannot build the HTTP client: {e}"))?;
        Ok(Sender {
            client,
            policy,
            config: config.clone(),
        })
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Posts one signed delivery; `Ok(status)` when the endpoint answered (any status),
    /// `Err` when it could not be reached.
    async fn post(
        &self,
        url: &str,
        msg_id: &str,
        timestamp: i64,
        signatures: &str,
        body: String,
    ) -> Result<(u16, String), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("url: {e}"))?;
        // An address written in the URL never meets the resolver: check it here.
        if let Some(host) = parsed.host_str() {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>()
                && !self.policy.permits(ip)
            {
                return Err(format!(
                    "{ip} is a loopback, private or link-local address the operator has not allowed"
                ));
            }
        }
        let answer = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures)
            .body(body)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = answer.status().as_u16();
        let text = if answer.status().is_success() {
            String::new()
        } else {
            let bytes = answer.bytes().await.unwrap_or_default();
            let end = bytes.len().min(ERROR_BODY_LIMIT);
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        };
        Ok((status, text))
    }
}

/// An error with its causes, which say what actually failed (refused, timed out, ...).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The principal an endpoint's deliveries are decided for.
fn principal(endpoint: &WebhookEndpoint) -> Principal {
    match endpoint.owner {
        WebhookOwner::Merchant(merchant_id) => Principal::WebhookMerchant {
            endpoint_id: endpoint.id,
            merchant_id,
        },
        WebhookOwner::Partner(partner_id) => Principal::WebhookPartner {
            endpoint_id: endpoint.id,
            partner_id,
        },
    }
}

/// Whether the endpoint's owner may see `event` now: a partner's own events go to it; an
/// event about a ledger only through the access policy's decision on the ledger's facts read
/// now, within the grant's scope (a date-closed event's date in its period, a payout in the
/// funds topic).
pub async fn entitled(
    store: &dyn Store,
    endpoint: &WebhookEndpoint,
    event: &DomainEvent,
) -> Result<bool, StoreError> {
    Ok(!matches!(
        entitlement(store, endpoint, event).await?,
        Entitlement::Withheld
    ))
}

/// What [`entitled`] decided, with the decision's access for an event about a ledger.
enum Entitlement {
    Withheld,
    /// The partner's own event.
    Own,
    Ledger(LedgerAccess),
}

async fn entitlement(
    store: &dyn Store,
    endpoint: &WebhookEndpoint,
    event: &DomainEvent,
) -> Result<Entitlement, StoreError> {
    let Some(ledger) = &event.ledger_id else {
        return Ok(
            if matches!(endpoint.owner, WebhookOwner::Partner(p) if event.partner_id == Some(p)) {
                Entitlement::Own
            } else {
                Entitlement::Withheld
            },
        );
    };
    let guarded = store.ledger(ledger).await?;
    let Ok((access, _)) = access::open(&principal(endpoint), guarded) else {
        return Ok(Entitlement::Withheld);
    };
    if let Some(date) = event.ledger_date
        && access.check_date(date).is_err()
    {
        return Ok(Entitlement::Withheld);
    }
    if event.event_type == ledgerport_store::PAYOUT_SCHEDULED
        && access.check_topic(Topic::Funds).is_err()
    {
        return Ok(Entitlement::Withheld);
    }
    Ok(Entitlement::Ledger(access))
}

/// What one pass of the sender did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pass {
    pub delivered: usize,
    pub failed: usize,
    pub withheld: usize,
}

/// Attempts the deliveries due now as `holder`, up to the configured number at once, until none
/// is due; returns what happened.
pub async fn deliver_due(
    state: &AppState,
    sender: &Sender,
    holder: &str,
) -> Result<Pass, StoreError> {
    let mut pass = Pass::default();
    // A claim outlasts an attempt by far, so only a process that died loses one.
    let claim = SignedDuration::try_from(sender.config.timeout.saturating_mul(2))
        .unwrap_or(SignedDuration::MAX)
        .saturating_add(SignedDuration::from_secs(5));
    let limit = u32::try_from(sender.config.concurrency.max(1)).unwrap_or(64);
    loop {
        let now = state.clock.now();
        let until = now.checked_add(claim).unwrap_or(Timestamp::MAX);
        let batch = state
            .store
            .claim_webhook_deliveries(holder, now, until, limit)
            .await?;
        if batch.is_empty() {
            return Ok(pass);
        }
        let mut endpoints: HashMap<i64, Option<WebhookEndpoint>> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        for delivery in batch {
            let endpoint = match endpoints.get(&delivery.endpoint_id) {
                Some(e) => e.clone(),
                None => {
                    let e = state
                        .store
                        .webhook_endpoint_by_id(delivery.endpoint_id)
                        .await?;
                    endpoints.insert(delivery.endpoint_id, e.clone());
                    e
                }
            };
            // Deleted meanwhile: its deliveries went with it.
            let Some(endpoint) = endpoint else { continue };
            let (state, sender) = (state.clone(), sender.clone());
            tasks.spawn(async move { attempt(&state, &sender, &endpoint, delivery).await });
        }
        // Attempts are recorded as they finish, those finished meanwhile together in one
        // transaction: one commit (on PostgreSQL one flush to disk) for many deliveries.
        while let Some(first) = tasks.join_next().await {
            let mut finished = vec![first];
            while let Some(more) = tasks.try_join_next() {
                finished.push(more);
            }
            let mut records = Vec::with_capacity(finished.len());
            for done in finished {
                match done {
                    Ok(Ok(record)) => records.push(record),
                    Ok(Err(e)) => return Err(e),
                    Err(e) => tracing::error!(error = %e, "a webhook delivery task failed"),
                }
            }
            state
                .store
                .record_webhook_attempts(holder, &records)
                .await?;
            for (_, record) in &records {
                match record.outcome {
                    AttemptOutcome::Delivered => pass.delivered += 1,
                    AttemptOutcome::Withheld => pass.withheld += 1,
                    _ => pass.failed += 1,
                }
            }
        }
    }
}

/// One attempt of one delivery; returns what to record of it (the caller records it).
async fn attempt(
    state: &AppState,
    sender: &Sender,
    endpoint: &WebhookEndpoint,
    delivery: WebhookDelivery,
) -> Result<(ledgerport_core::world::RowId, AttemptRecord), StoreError> {
    let store = state.store.as_ref();
    let started = state.clock.now();
    let record = |status, error, latency_ms, outcome| AttemptRecord {
        at: started,
        status,
        error,
        latency_ms,
        outcome,
    };
    let entitlement = entitlement(store, endpoint, &delivery.event).await?;
    if let Entitlement::Withheld = entitlement {
        return Ok((delivery.id, record(None, None, 0, AttemptOutcome::Withheld)));
    }
    let msg_id = delivery.message_id();
    let timestamp = started.as_second();
    let access = match &entitlement {
        Entitlement::Ledger(access) => Some(access),
        _ => None,
    };
    let body = delivery_body(store, &delivery.event, access).await?;
    let result = match signatures(state, endpoint, &msg_id, timestamp, &body, started) {
        Ok(sigs) => {
            let clock = Instant::now();
            let r = sender
                .post(&endpoint.url, &msg_id, timestamp, &sigs, body)
                .await;
            (r, clock.elapsed())
        }
        Err(e) => (Err(e), Duration::ZERO),
    };
    let (answer, took) = result;
    let latency_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let (status, error, ok) = match answer {
        Ok((status, _)) if (200..300).contains(&status) => (Some(status), None, true),
        Ok((status, text)) => (
            Some(status),
            Some(format!("answered {status}: {}", text.trim())),
            false,
        ),
        Err(e) => (None, Some(e), false),
    };
    let outcome = if ok {
        AttemptOutcome::Delivered
    } else {
        let retry_at = started
            .checked_add(
                SignedDuration::try_from(backoff(sender.config.first_retry, delivery.attempts))
                    .unwrap_or(SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MAX);
        let given_up_at = delivery
            .retry_since
            .checked_add(RETRY_PERIOD)
            .unwrap_or(Timestamp::MAX);
        if started >= given_up_at {
            AttemptOutcome::GiveUp
        } else {
            // The last retry falls at the end of the period, not beyond it.
            AttemptOutcome::RetryAt(retry_at.min(given_up_at))
        }
    };
    if let Some(e) = &error {
        tracing::warn!(
            endpoint = %endpoint.uid,
            webhook_id = %msg_id,
            attempts = delivery.attempts,
            error = %e,
            "a webhook delivery failed"
        );
    }
    Ok((delivery.id, record(status, error, latency_ms, outcome)))
}

/// The `webhook-signature` value: the current secret's signature and, during a rotation's
/// overlap, the previous secret's, separated by a space.
fn signatures(
    state: &AppState,
    endpoint: &WebhookEndpoint,
    msg_id: &str,
    timestamp: i64,
    body: &str,
    now: Timestamp,
) -> Result<String, String> {
    let protection = &state.config.signing_keys;
    let key = |stored: &[u8]| -> Result<Vec<u8>, String> {
        let secret = open_secret(protection, &endpoint.uid, stored).map_err(|e| e.to_string())?;
        secret_key(&secret)
    };
    let mut out = signature(&key(&endpoint.secret)?, msg_id, timestamp, body);
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
        && now < until
    {
        out.push(' ');
        out.push_str(&signature(&key(previous)?, msg_id, timestamp, body));
    }
    Ok(out)
}

/// Delivers due webhooks every poll interval, and at once when this process has written an
/// event (the store says so), so a delivery does not wait for the next poll; events written by
/// other servers on the database, and retries falling due, are found by the poll.
pub async fn sender_loop(state: AppState, sender: Sender) {
    let written = state.store.webhook_events_written();
    run_sender(state, sender, written).await;
}

/// The sender as it was before it was woken by writes: the poll alone. Only for
/// `ledgerport-bench webhooks --poll-only`, which measures what waking saves, in one run.
#[doc(hidden)]
pub async fn sender_loop_polling_only(state: AppState, sender: Sender) {
    run_sender(state, sender, None).await;
}

async fn run_sender(state: AppState, sender: Sender, written: Option<Arc<tokio::sync::Notify>>) {
    let holder = format!("webhooks-{}", uuid::Uuid::new_v4());
    let mut tick = tokio::time::interval(sender.config.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match &written {
            Some(written) => {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = written.notified() => {}
                }
            }
            None => {
                tick.tick().await;
            }
        }
        match deliver_due(&state, &sender, &holder).await {
            Ok(p) if p == Pass::default() => {}
            Ok(p) => tracing::debug!(
                delivered = p.delivered,
                failed = p.failed,
                withheld = p.withheld,
                "webhook deliveries"
            ),
            Err(e) => tracing::error!(error = %e, "delivering webhooks failed; will retry"),
        }
    }
}

/// How long the previous secret keeps signing after a rotation, unless told otherwise.
pub const DEFAULT_ROTATION_OVERLAP: SignedDuration = SignedDuration::from_hours(24);
/// The longest overlap a rotation may ask for.
pub const MAX_ROTATION_OVERLAP: SignedDuration = SignedDuration::from_hours(24 * 7);

/// Why managing an endpoint failed: bad input naming the field, or the store.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TokenError> for ManageError {
    fn from(e: TokenError) -> Self {
        ManageError::Store(StoreError::Invalid(e.to_string()))
    }
}

/// Registers an endpoint for `owner`: checks where the URL points ([`AddressPolicy`]), makes a
/// secret, keeps it sealed; returns the endpoint and the secret, which is shown this once.
pub async fn register_endpoint(
    store: &dyn Store,
    protection: &SigningKeyProtection,
    policy: &AddressPolicy,
    by: &ledgerport_store::Actor,
    owner: WebhookOwner,
    url: &str,
    event_types: Vec<String>,
) -> Result<(WebhookEndpoint, String), ManageError> {
    let url = url.trim();
    policy.check_url(url).await.map_err(ManageError::Invalid)?;
    let uid = new_endpoint_uid();
    let secret = new_secret();
    let sealed = seal_secret(protection, &uid, &secret)?;
    let endpoint = store
        .create_webhook_endpoint(
            by,
            ledgerport_store::NewWebhookEndpoint {
                uid,
                owner,
                url: url.to_owned(),
                event_types,
                secret: sealed,
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Invalid(why) => ManageError::Invalid(why),
            other => ManageError::Store(other),
        })?;
    Ok((endpoint, secret))
}

/// Gives an endpoint a new secret; the previous one keeps signing for `overlap` (at most
/// [`MAX_ROTATION_OVERLAP`]). Returns the endpoint and the new secret, shown this once.
pub async fn rotate_secret(
    store: &dyn Store,
    protection: &SigningKeyProtection,
    by: &ledgerport_store::Actor,
    uid: &str,
    now: Timestamp,
    overlap: SignedDuration,
) -> Result<(WebhookEndpoint, String), ManageError> {
    if overlap.is_negative() || overlap > MAX_ROTATION_OVERLAP {
        return Err(ManageError::Invalid(format!(
            "overlap: must be 0 to {} hours",
            MAX_ROTATION_OVERLAP.as_hours()
        )));
    }
    let secret = new_secret();
    let sealed = seal_secret(protection, uid, &secret)?;
    let until = now.checked_add(overlap).unwrap_or(Timestamp::MAX);
    let endpoint = store.rotate_webhook_secret(by, uid, sealed, until).await?;
    Ok((endpoint, secret))
}

/// Event types from a list separated by commas or spaces; each must be known, or the error
/// names `field`.
pub fn parse_event_types(field: &str, text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for t in text
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|t| !t.is_empty())
    {
        if t == "*" {
            continue;
        }
        if !ledgerport_store::EVENT_TYPES.contains(&t) {
            return Err(format!(
                "{field}: unknown event type {t:?} (known: {})",
                ledgerport_store::EVENT_TYPES.join(", ")
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_specifications_example() {
        // The example of the Standard Webhooks specification.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let none = AddressPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!none.permits(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert!(none.permits(ip.parse().unwrap()), "{ip}");
        }
        let local = AddressPolicy::new(vec![
            "127.0.0.1".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]);
        assert!(local.permits("127.0.0.1".parse().unwrap()));
        assert!(local.permits("10.200.0.1".parse().unwrap()));
        assert!(!local.permits("127.0.0.2".parse().unwrap()));
        assert!(!local.permits("192.168.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("nonsense".parse::<Network>().is_err());
    }

    #[test]
    fn the_backoff_doubles_with_jitter_up_to_an_hour() {
        let first = Duration::from_secs(5);
        for attempts in 1..30 {
            let full = first
                .saturating_mul(1 << attempts.min(21) >> 1)
                .min(Duration::from_secs(3600));
            let b = backoff(first, attempts);
            assert!(b <= full && b >= full / 2, "{attempts}: {b:?} of {full:?}");
        }
    }

    #[test]
    fn secrets_are_whsec_and_at_least_24_bytes() {
        let s = new_secret();
        assert!(s.starts_with("whsec_"));
        assert!(secret_key(&s).unwrap().len() >= 24);
        assert_ne!(s, new_secret());
    }
}
