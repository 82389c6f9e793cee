//! Prometheus metrics at `GET /metrics`, in the text exposition format 0.0.4.
//!
//! Hand-rolled: counters are atomics in a small registry ([`Metrics`]) that lives in
//! [`AppState`] (not a global, so two servers in one process, as in tests, count apart).
//! Counters are recorded where things happen: requests in [`crate::middleware`] (one place for
//! every request), tokens in `api::token::issue`, entries in the Report API handlers, events in
//! the ingestion endpoint. Gauges (closing lag per ledger, pool connections) are computed when
//! `/metrics` is scraped.
//!
//! Every label takes values from a small set: `route` is the matched path template (or
//! `unmatched`), never the raw path; `method` is a standard method or `other`. No label ever
//! carries a credential, a token or anything a payer wrote. OPERATIONS.md lists the metrics.

use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use ledgerport_core::engine::{due_period_ends, end_of_date};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the request duration histogram's buckets (Prometheus' defaults).
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Series of one metric, by label values. A series is created on first use and lives as long
/// as the registry; reads take a shared lock, only a new series takes the exclusive one.
struct Family<K, V> {
    series: RwLock<BTreeMap<K, Arc<V>>>,
}

impl<K: Ord + Clone, V: Default> Family<K, V> {
    fn new() -> Self {
        Family {
            series: RwLock::new(BTreeMap::new()),
        }
    }

    fn get(&self, key: K) -> Arc<V> {
        if let Some(v) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return v.clone();
        }
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }

    /// Every series, ordered by label values.
    fn snapshot(&self) -> Vec<(K, Arc<V>)> {
        self.series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A histogram of durations: a count per bucket (not cumulative; the last one is above every
/// bound) and the sum in microseconds.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The registry of counters and histograms. Cheap to record into from any task.
pub struct Metrics {
    /// (route, method, status)
    requests: Family<(String, &'static str, u16), AtomicU64>,
    /// route
    durations: Family<String, Histogram>,
    /// key type
    tokens_issued: Family<&'static str, AtomicU64>,
    /// topic
    entries_served: Family<&'static str, AtomicU64>,
    events_accepted: AtomicU64,
    events_rejected: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::new(),
            durations: Family::new(),
            tokens_issued: Family::new(),
            entries_served: Family::new(),
            events_accepted: AtomicU64::new(0),
            events_rejected: AtomicU64::new(0),
        }
    }
}

/// The `method` label: a standard method, or `other` (a client may send any token as method).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

impl Metrics {
    /// One answered request: `route` is the matched path template or [`UNMATCHED`].
    pub fn record_request(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        self.requests
            .get((route.to_owned(), method_label(method), status))
            .fetch_add(1, Ordering::Relaxed);
        self.durations.get(route.to_owned()).observe(elapsed);
    }

    /// A token was issued for keys of `key_type` (`KeyKind::as_str`).
    pub fn token_issued(&self, key_type: &'static str) {
        self.tokens_issued
            .get(key_type)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A Report API page served `n` entries of `topic`.
    pub fn entries_served(&self, topic: ledgerport_core::ids::Topic, n: usize) {
        self.entries_served
            .get(topic.as_str())
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// An ingested batch: how many of its events were accepted and rejected.
    pub fn events_ingested(&self, accepted: usize, rejected: usize) {
        self.events_accepted
            .fetch_add(accepted as u64, Ordering::Relaxed);
        self.events_rejected
            .fetch_add(rejected as u64, Ordering::Relaxed);
    }

    /// Payment events this process accepted and rejected since it started (the operator
    /// console shows them).
    pub fn events_counted(&self) -> (u64, u64) {
        (
            self.events_accepted.load(Ordering::Relaxed),
            self.events_rejected.load(Ordering::Relaxed),
        )
    }

    /// The exposition of the counters and histograms, then of `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();

        header(
            &mut out,
            "ledgerport_http_requests_total",
            "counter",
            "HTTP requests answered, by matched route template, method and status.",
        );
        for ((route, method, status), v) in self.requests.snapshot() {
            sample(
                &mut out,
                "ledgerport_http_requests_total",
                &[
                    ("route", &route),
                    ("method", method),
                    ("status", &status.to_string()),
                ],
                v.load(Ordering::Relaxed) as f64,
            );
        }

        let name = "ledgerport_http_request_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Time from a request's arrival to its answer, by matched route template.",
        );
        for (route, h) in self.durations.snapshot() {
            let mut cumulative = 0u64;
            for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                sample(
                    &mut out,
                    &format!("{name}_bucket"),
                    &[("route", &route), ("le", &bound.to_string())],
                    cumulative as f64,
                );
            }
            cumulative += h.buckets[DURATION_BUCKETS.len()].load(Ordering::Relaxed);
            sample(
                &mut out,
                &format!("{name}_bucket"),
                &[("route", &route), ("le", "+Inf")],
                cumulative as f64,
            );
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            sample(&mut out, &format!("{name}_sum"), &[("route", &route)], sum);
            sample(
                &mut out,
                &format!("{name}_count"),
                &[("route", &route)],
                cumulative as f64,
            );
        }

        header(
            &mut out,
            "ledgerport_tokens_issued_total",
            "counter",
            "Access tokens issued, by the type of the keys they were issued for.",
        );
        for (key_type, v) in self.tokens_issued.snapshot() {
            sample(
                &mut out,
                "ledgerport_tokens_issued_total",
                &[("key_type", key_type)],
                v.load(Ordering::Relaxed) as f64,
            );
        }

        header(
            &mut out,
            "ledgerport_report_entries_served_total",
            "counter",
            "Ledger entries served by the Report API (date pages and the feed), by topic.",
        );
        for (topic, v) in self.entries_served.snapshot() {
            sample(
                &mut out,
                "ledgerport_report_entries_served_total",
                &[("topic", topic)],
                v.load(Ordering::Relaxed) as f64,
            );
        }

        header(
            &mut out,
            "ledgerport_ingest_events_total",
            "counter",
            "Payment events posted to /ingest/v1/events, by outcome.",
        );
        for (result, v) in [
            ("accepted", &self.events_accepted),
            ("rejected", &self.events_rejected),
        ] {
            sample(
                &mut out,
                "ledgerport_ingest_events_total",
                &[("result", result)],
                v.load(Ordering::Relaxed) as f64,
            );
        }

        header(
            &mut out,
            "ledgerport_closing_lag_seconds",
            "gauge",
            "Seconds since the oldest unclosed payout point of each ledger passed; 0 when closed up to date.",
        );
        for (ledger_id, lag) in &gauges.closing_lag {
            sample(
                &mut out,
                "ledgerport_closing_lag_seconds",
                &[("ledger_id", ledger_id)],
                *lag,
            );
        }

        header(
            &mut out,
            "ledgerport_db_pool_connections",
            "gauge",
            "Open database connections of this process's pool, idle or lent out.",
        );
        let pool = gauges.pool;
        for (state, n) in [
            ("idle", pool.idle),
            ("in_use", pool.size.saturating_sub(pool.idle)),
        ] {
            sample(
                &mut out,
                "ledgerport_db_pool_connections",
                &[("state", state)],
                f64::from(n),
            );
        }
        out
    }
}

/// Values measured when `/metrics` is scraped.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// (ledger id, seconds) for every ledger, ordered by ledger id.
    pub closing_lag: Vec<(String, f64)>,
    pub pool: ledgerport_store::PoolStats,
}

/// How long ago the oldest payout point of `ledger` that is not closed yet passed, in seconds;
/// 0 when every passed period is closed.
pub fn closing_lag(ledger: &ledgerport_core::world::Ledger, now: jiff::Timestamp) -> f64 {
    match due_period_ends(ledger, ledger.closed_through, now).first() {
        None => 0.0,
        Some(&oldest) => {
            let passed = end_of_date(ledger, oldest);
            let micros = now.as_microsecond() - passed.as_microsecond();
            (micros.max(0) as f64) / 1e6
        }
    }
}

/// Measures the gauges. A store that cannot list its ledgers leaves the closing lag out (and
/// says so in the log) rather than failing the scrape.
pub async fn gauges(state: &AppState) -> Gauges {
    // The pool before the ledger query below borrows a connection.
    let pool = state.store.pool_stats();
    let now = state.clock.now();
    let closing_lag = match state.store.ledgers().await {
        Ok(views) => {
            let mut lag: Vec<(String, f64)> = views
                .iter()
                .map(|v| {
                    (
                        v.ledger.ledger_id.as_str().to_owned(),
                        closing_lag(&v.ledger, now),
                    )
                })
                .collect();
            lag.sort_by(|a, b| a.0.cmp(&b.0));
            lag
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not list ledgers for the closing lag");
            Vec::new()
        }
    };
    Gauges { closing_lag, pool }
}

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(&gauges(&state).await);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", format_value(value));
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_histogram_is_cumulative_and_counts_every_observation() {
        let m = Metrics::default();
        for ms in [1, 7, 7, 300, 20_000] {
            m.record_request("/x", &Method::GET, 200, Duration::from_millis(ms));
        }
        let text = m.render(&Gauges::default());
        let line = |s: &str| {
            assert!(text.lines().any(|l| l == s), "missing {s:?} in\n{text}");
        };
        line("ledgerport_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.005\"} 1");
        line("ledgerport_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.01\"} 3");
        line("ledgerport_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.5\"} 4");
        line("ledgerport_http_request_duration_seconds_bucket{route=\"/x\",le=\"10\"} 4");
        line("ledgerport_http_request_duration_seconds_bucket{route=\"/x\",le=\"+Inf\"} 5");
        line("ledgerport_http_request_duration_seconds_count{route=\"/x\"} 5");
        line("ledgerport_http_request_duration_seconds_sum{route=\"/x\"} 20.315");
        line("ledgerport_http_requests_total{route=\"/x\",method=\"GET\",status=\"200\"} 5");
    }

    #[test]
    fn unusual_methods_share_one_label() {
        let m = Metrics::default();
        let odd = Method::from_bytes(b"BREW").expect("method");
        m.record_request(UNMATCHED, &odd, 404, Duration::ZERO);
        let text = m.render(&Gauges::default());
        assert!(
            text.contains(
                "ledgerport_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 1"
            ),
            "{text}"
        );
    }
}
