//! Rate limits and the slow-down of repeated failed token requests.
//!
//! Token buckets: one per client id on the token endpoints, one per key on the Report API. A
//! bucket holds up to `burst` requests and refills at `per_second`; a request takes one, and a
//! request finding less than one is answered 429 with `Retry-After` (whole seconds until one is
//! back, at least 1). Time comes from the injected [`Clock`], so tests are deterministic.
//!
//! Memory is bounded: a map holds at most [`MAX_ENTRIES`] keys. Buckets that have refilled to full
//! carry no information and are swept out (every minute, and whenever a map is full). A new key
//! finding the map still full after a sweep is let through untracked: with that many clients
//! bursting at once the limit fails open rather than refusing clients it has never seen.
//!
//! The token endpoints' bucket is keyed by the presented client id *and* the client's address,
//! so someone who knows a client id (it is not a secret) cannot use up its owner's allowance.
//!
//! The slow-down: after `failed_token_slowdown_after` consecutive failed token requests for one
//! presented client id (known or not, so an unknown id and a wrong secret behave alike), every
//! further *failure* for that id is answered late (100 ms, doubling per failure, at most 2 s); a
//! success resets the count. The right secret is answered at once, so guesses by whoever holds a
//! client id never slow its owner down. Failures are also limited per client address
//! ([`Limits::token_failure_allowed`]), so guesses spread over fresh client ids are bounded too.
//!
//! The portal's unauthenticated forms: sign-in and the partner application are limited per
//! client address, applications also in total (each writes rows), and Argon2 runs at most one
//! hash per core at a time ([`Limits::hashing_permit`]), with a short bounded queue; a request
//! finding the queue full is answered 503 at once rather than waiting.
//!
//! Constants a deployment may want to tune (not configurable yet): [`SIGN_IN_PER_ADDRESS`],
//! [`APPLY_PER_ADDRESS`], [`APPLY_TOTAL`], [`FAILED_TOKENS_PER_ADDRESS`], [`HASH_QUEUE_PER_PERMIT`],
//! [`HASH_WAIT_MAX`].
//!
//! Also here: [`header_size_limit`], the 431 for requests whose headers together exceed
//! [`MAX_HEADER_BYTES`] (hyper itself stops reading a request head at about 400 KiB).

use crate::{AppError, LimitsConfig};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use jiff::Timestamp;
use ledgerport_core::clock::Clock;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most keys one map tracks.
pub const MAX_ENTRIES: usize = 100_000;
/// How often full buckets and stale failure counts are swept out, in seconds of clock time.
const SWEEP_EVERY_SECS: f64 = 60.0;
/// A failure count untouched this long (seconds) is forgotten.
const FAILURE_MEMORY_SECS: f64 = 15.0 * 60.0;
/// The first slow-down, doubled per further failure.
const SLOWDOWN_FIRST: Duration = Duration::from_millis(100);
/// The longest slow-down.
const SLOWDOWN_MAX: Duration = Duration::from_secs(2);

/// A rate as (burst, sustained per second).
pub struct Rate {
    pub burst: u32,
    pub per_second: f64,
}

/// Portal sign-ins from one client address: 20 at once, then 10 a minute.
pub const SIGN_IN_PER_ADDRESS: Rate = Rate {
    burst: 20,
    per_second: 10.0 / 60.0,
};
/// Partner applications from one client address: 5 at once, then 5 an hour.
pub const APPLY_PER_ADDRESS: Rate = Rate {
    burst: 5,
    per_second: 5.0 / 3600.0,
};
/// Partner applications from everyone together (each writes a partner and a user row): 50 at
/// once, then 100 an hour.
pub const APPLY_TOTAL: Rate = Rate {
    burst: 50,
    per_second: 100.0 / 3600.0,
};
/// Failed token requests from one client address, whatever client ids they name: 50 at once,
/// then one a second.
pub const FAILED_TOKENS_PER_ADDRESS: Rate = Rate {
    burst: 50,
    per_second: 1.0,
};
/// Requests that may wait for a hashing permit, per permit (besides those hashing); more are
/// answered 503.
pub const HASH_QUEUE_PER_PERMIT: usize = 4;
/// The longest a request waits for a hashing permit before it is answered 503.
pub const HASH_WAIT_MAX: Duration = Duration::from_secs(5);
/// `Retry-After` of a 503 for a full hashing queue, in seconds.
pub const HASH_BUSY_RETRY_SECS: u64 = 2;

fn seconds(t: Timestamp) -> f64 {
    t.as_nanosecond() as f64 / 1e9
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: f64,
}

/// Token buckets keyed by `K`.
struct Buckets<K> {
    per_second: f64,
    burst: f64,
    inner: Mutex<BucketMap<K>>,
}

struct BucketMap<K> {
    map: HashMap<K, Bucket>,
    swept_at: f64,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(per_second: f64, burst: u32) -> Self {
        Buckets {
            per_second: if per_second.is_finite() && per_second > 0.0 {
                per_second
            } else {
                0.0
            },
            burst: f64::from(burst.max(1)),
            inner: Mutex::new(BucketMap {
                map: HashMap::new(),
                swept_at: f64::NEG_INFINITY,
            }),
        }
    }

    fn with_rate(rate: &Rate) -> Self {
        Self::new(rate.per_second, rate.burst)
    }

    /// Whether `key` has a request left, taking nothing; `Err` as for [`Buckets::take`].
    fn check(&self, key: &K, now: f64) -> Result<(), u64> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = m.map.get(key) else {
            return Ok(());
        };
        let tokens = self.refilled(*b, now);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.wait_secs(tokens))
        }
    }

    fn wait_secs(&self, tokens: f64) -> u64 {
        let wait = if self.per_second > 0.0 {
            ((1.0 - tokens) / self.per_second).ceil()
        } else {
            3600.0
        };
        (wait as u64).max(1)
    }

    fn refilled(&self, b: Bucket, now: f64) -> f64 {
        let elapsed = (now - b.at).max(0.0);
        (b.tokens + elapsed * self.per_second).min(self.burst)
    }

    fn sweep(&self, m: &mut BucketMap<K>, now: f64) {
        m.map.retain(|_, b| self.refilled(*b, now) < self.burst);
        m.swept_at = now;
    }

    /// Takes one request from `key`'s bucket, or says how many whole seconds until one is back.
    fn take(&self, key: &K, now: f64) -> Result<(), u64> {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if now - m.swept_at >= SWEEP_EVERY_SECS || now < m.swept_at {
            self.sweep(&mut m, now);
        }
        if !m.map.contains_key(key) && m.map.len() >= MAX_ENTRIES {
            self.sweep(&mut m, now);
            if m.map.len() >= MAX_ENTRIES {
                return Ok(());
            }
        }
        let b = m.map.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*b, now);
        if tokens >= 1.0 {
            *b = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *b = Bucket { tokens, at: now };
            Err(self.wait_secs(tokens))
        }
    }

    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    at: f64,
}

/// The address a request came from, as the limits key it: an IPv6 address by its /64 (one
/// subscriber's share), so one client cannot take fresh buckets by walking its own prefix.
/// Without connection info (a router served without it) every request is one unknown client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientAddr(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    ClientAddr(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
            v4 => ClientAddr(v4),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| ClientAddr::of(c.0.ip()))
            .unwrap_or(ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// Leave to run one password hash: held until the hash is done (it moves into the blocking
/// task), so at most one hash per permit runs whatever the clients do.
pub struct HashPermit {
    _permit: OwnedSemaphorePermit,
}

/// The rate limits and failure counts of one server process.
pub struct Limits {
    config: LimitsConfig,
    clock: Arc<dyn Clock>,
    token: Buckets<(String, ClientAddr)>,
    report: Buckets<i64>,
    failures: Mutex<(HashMap<String, Failures>, f64)>,
    failed_tokens: Buckets<ClientAddr>,
    sign_in: Buckets<ClientAddr>,
    apply: Buckets<ClientAddr>,
    apply_total: Buckets<()>,
    /// One permit per concurrent password hash.
    hashing: Arc<Semaphore>,
    /// Places in the queue for a hashing permit (holding one is being in the queue).
    hash_queue: Arc<Semaphore>,
}

impl Limits {
    pub fn new(config: LimitsConfig, clock: Arc<dyn Clock>) -> Self {
        // One hash per core: Argon2 is pure CPU (and 19 MiB each), so more at once only makes
        // every one of them, and everything else on the machine, slower.
        let permits = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limits {
            token: Buckets::new(config.token_per_second, config.token_burst),
            report: Buckets::new(config.report_per_second, config.report_burst),
            failures: Mutex::new((HashMap::new(), f64::NEG_INFINITY)),
            failed_tokens: Buckets::with_rate(&FAILED_TOKENS_PER_ADDRESS),
            sign_in: Buckets::with_rate(&SIGN_IN_PER_ADDRESS),
            apply: Buckets::with_rate(&APPLY_PER_ADDRESS),
            apply_total: Buckets::with_rate(&APPLY_TOTAL),
            hashing: Arc::new(Semaphore::new(permits)),
            hash_queue: Arc::new(Semaphore::new(permits * HASH_QUEUE_PER_PERMIT)),
            config,
            clock,
        }
    }

    /// Leave to hash a password, waiting in a bounded queue; `Err` (answer 503 with
    /// `Retry-After`) when the queue is full or the wait passes [`HASH_WAIT_MAX`].
    pub async fn hashing_permit(&self) -> Result<HashPermit, u64> {
        let Ok(place) = self.hash_queue.clone().try_acquire_owned() else {
            return Err(HASH_BUSY_RETRY_SECS);
        };
        let permit = tokio::time::timeout(HASH_WAIT_MAX, self.hashing.clone().acquire_owned())
            .await
            .map_err(|_| HASH_BUSY_RETRY_SECS)?
            .map_err(|_| HASH_BUSY_RETRY_SECS)?;
        drop(place);
        Ok(HashPermit { _permit: permit })
    }

    /// One portal sign-in from `addr`: `Err(seconds)` when over [`SIGN_IN_PER_ADDRESS`].
    pub fn sign_in_request(&self, addr: ClientAddr) -> Result<(), u64> {
        if !self.config.enabled {
            return Ok(());
        }
        self.sign_in.take(&addr, self.now())
    }

    /// One partner application from `addr`: `Err(seconds)` when over [`APPLY_PER_ADDRESS`] or
    /// [`APPLY_TOTAL`].
    pub fn apply_request(&self, addr: ClientAddr) -> Result<(), u64> {
        if !self.config.enabled {
            return Ok(());
        }
        let now = self.now();
        // Checked before taking, so a refusal by one bucket does not use up the other.
        self.apply.check(&addr, now)?;
        self.apply_total.take(&(), now)?;
        self.apply.take(&addr, now)
    }

    /// Whether `addr` may make a token request: `Err(429)` once its failed token requests
    /// passed [`FAILED_TOKENS_PER_ADDRESS`], whatever client id it names.
    pub fn token_failure_allowed(&self, addr: ClientAddr) -> Result<(), AppError> {
        if !self.config.enabled {
            return Ok(());
        }
        self.failed_tokens.check(&addr, self.now()).map_err(|secs| {
            AppError::too_many_requests(
                secs,
                "failed token requests from this client address: rate limit exceeded",
            )
        })
    }

    /// Counts a failed token request against `addr`.
    pub fn token_failure_from(&self, addr: ClientAddr) {
        if self.config.enabled {
            // A refusal here only means the address is already over; the next request sees it.
            let _ = self.failed_tokens.take(&addr, self.now());
        }
    }

    fn now(&self) -> f64 {
        seconds(self.clock.now())
    }

    /// One token request for `client_id` from `addr`: `Err(429)` when over its limit.
    pub fn token_request(&self, client_id: &str, addr: ClientAddr) -> Result<(), AppError> {
        if !self.config.enabled {
            return Ok(());
        }
        let key = (bounded_key(client_id), addr);
        self.token.take(&key, self.now()).map_err(|secs| {
            AppError::too_many_requests(
                secs,
                "token requests for this client_id: rate limit exceeded",
            )
        })
    }

    /// One Report API request by the key `key_id`: `Err(429)` when over its limit.
    pub fn report_request(&self, key_id: i64) -> Result<(), AppError> {
        if !self.config.enabled {
            return Ok(());
        }
        self.report.take(&key_id, self.now()).map_err(|secs| {
            AppError::too_many_requests(
                secs,
                "Report API requests for these credentials: rate limit exceeded",
            )
        })
    }

    /// How long a failed attempt for `client_id` is held before it is answered.
    pub fn failure_delay(&self, client_id: &str) -> Duration {
        let after = self.config.failed_token_slowdown_after;
        if !self.config.enabled || after == 0 {
            return Duration::ZERO;
        }
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = f.0.get(&bounded_key(client_id)).map_or(0, |f| f.count);
        if count < after {
            return Duration::ZERO;
        }
        let doublings = (count - after).min(10);
        SLOWDOWN_FIRST
            .saturating_mul(1u32 << doublings)
            .min(SLOWDOWN_MAX)
    }

    /// Records the outcome of a credential check for `client_id`.
    pub fn token_outcome(&self, client_id: &str, success: bool) {
        if !self.config.enabled || self.config.failed_token_slowdown_after == 0 {
            return;
        }
        let now = self.now();
        let mut guard = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (map, swept_at) = &mut *guard;
        let key = bounded_key(client_id);
        if success {
            map.remove(&key);
            return;
        }
        if now - *swept_at >= SWEEP_EVERY_SECS || now < *swept_at {
            map.retain(|_, f| now - f.at < FAILURE_MEMORY_SECS);
            *swept_at = now;
        }
        if !map.contains_key(&key) && map.len() >= MAX_ENTRIES {
            map.retain(|_, f| now - f.at < FAILURE_MEMORY_SECS);
            *swept_at = now;
            if map.len() >= MAX_ENTRIES {
                return;
            }
        }
        let f = map.entry(key).or_insert(Failures { count: 0, at: now });
        f.count = f.count.saturating_add(1);
        f.at = now;
    }

    /// How many keys the maps track (token buckets, Report API buckets, failure counts).
    pub fn tracked(&self) -> (usize, usize, usize) {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .len();
        (self.token.len(), self.report.len(), failures)
    }
}

/// A client id as a map key: ids longer than any real one (a uuid) are cut, so a flood of huge
/// ids cannot make the maps large.
fn bounded_key(client_id: &str) -> String {
    const MAX: usize = 128;
    let mut end = client_id.len().min(MAX);
    while !client_id.is_char_boundary(end) {
        end -= 1;
    }
    client_id[..end].to_owned()
}

/// Most bytes a request's header names and values may take together.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Answers 431 to a request whose headers are larger than [`MAX_HEADER_BYTES`].
pub async fn header_size_limit(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        return AppError::HeadersTooLarge(format!(
            "headers: larger than {MAX_HEADER_BYTES} bytes together"
        ))
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use ledgerport_core::clock::ManualClock;

    fn local() -> ClientAddr {
        ClientAddr(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    fn limits(config: LimitsConfig) -> (Limits, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(
            "2024-04-05T12:00:00Z".parse().expect("time"),
        ));
        (Limits::new(config, clock.clone()), clock)
    }

    #[test]
    fn an_ipv6_client_is_one_address_per_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ClientAddr::of(a), ClientAddr::of(b));
        assert_ne!(ClientAddr::of(a), ClientAddr::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(
            ClientAddr::of(mapped),
            ClientAddr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
    }

    #[tokio::test]
    async fn hashing_permits_queue_a_few_and_refuse_the_rest_at_once() {
        let (l, _) = limits(LimitsConfig::default());
        let permits = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut held = vec![];
        for _ in 0..permits {
            held.push(l.hashing_permit().await.expect("a free permit"));
        }
        // Every permit taken: the queue fills, then one more is refused without waiting.
        let l = Arc::new(l);
        let mut waiting = vec![];
        for _ in 0..permits * HASH_QUEUE_PER_PERMIT {
            let l = l.clone();
            waiting.push(tokio::spawn(
                async move { l.hashing_permit().await.is_ok() },
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        assert_eq!(l.hashing_permit().await.err(), Some(HASH_BUSY_RETRY_SECS));
        assert!(started.elapsed() < Duration::from_millis(500));
        // The queued ones get theirs as permits come back.
        drop(held);
        for w in waiting {
            assert!(w.await.expect("task"));
        }
    }

    #[test]
    fn applications_are_limited_per_address_without_using_up_the_total() {
        let (l, _) = limits(LimitsConfig::default());
        for _ in 0..APPLY_PER_ADDRESS.burst {
            l.apply_request(local())
                .expect("within the address's burst");
        }
        assert!(l.apply_request(local()).is_err());
        // The refusals took nothing from everyone's allowance.
        let other = ClientAddr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        l.apply_request(other).expect("another address");
    }

    #[test]
    fn full_buckets_are_swept_out() {
        let (l, clock) = limits(LimitsConfig {
            token_per_second: 1.0,
            token_burst: 2,
            ..LimitsConfig::default()
        });
        for i in 0..1000 {
            l.token_request(&format!("c{i}"), local())
                .expect("within burst");
        }
        assert_eq!(l.tracked().0, 1000);
        clock.advance(SignedDuration::from_secs(61));
        l.token_request("other", local()).expect("within burst");
        assert_eq!(l.tracked().0, 1);
    }

    #[test]
    fn the_slow_down_doubles_up_to_its_cap_and_resets() {
        let (l, _) = limits(LimitsConfig {
            failed_token_slowdown_after: 2,
            ..LimitsConfig::default()
        });
        let delays: Vec<u128> = (0..9)
            .map(|_| {
                let d = l.failure_delay("x").as_millis();
                l.token_outcome("x", false);
                d
            })
            .collect();
        assert_eq!(delays, [0, 0, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(l.failure_delay("other").as_millis(), 0);
        l.token_outcome("x", true);
        assert_eq!(l.failure_delay("x").as_millis(), 0);
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let (l, _) = limits(LimitsConfig {
            report_per_second: 100.0,
            report_burst: 1,
            ..LimitsConfig::default()
        });
        l.report_request(1).expect("first");
        match l.report_request(1) {
            Err(AppError::TooManyRequests {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        let (slow, _) = limits(LimitsConfig {
            report_per_second: 0.1,
            report_burst: 1,
            ..LimitsConfig::default()
        });
        slow.report_request(1).expect("first");
        match slow.report_request(1) {
            Err(AppError::TooManyRequests {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 10),
            other => panic!("expected 429, got {other:?}"),
        }
    }
}
