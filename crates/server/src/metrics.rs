//! Prometheus metrics, in the text exposition format 0.0.4, on their own listener.
//!
//! The registry ([`Metrics`], built on `prometheus-client`) lives in [`AppState`] (not a global,
//! so two servers in one process, as in tests, count apart). Counters are recorded where things
//! happen: requests in [`crate::middleware`] (one place for every request), tokens in
//! `api::token::issue`, entries in the Report API handlers, events in the ingestion endpoint.
//! Gauges (closing lag, pool connections) are measured when the metrics are scraped.
//!
//! `/metrics` is not a route of the public router: [`router`] serves it alone, on the address
//! `metrics_listen` names (loopback by default), because request counts and the state of the
//! closing task are the operator's business. No label says which ledgers exist: the closing lag
//! is exported as a count and a maximum over all ledgers, never per ledger.
//!
//! Every label takes values from a small set: `route` is the matched path template (or
//! `unmatched`), never the raw path; `method` is a standard method or `other`. No label ever
//! carries a credential, a token, a ledger id or anything a payer wrote. OPERATIONS.md lists the
//! metrics.

use crate::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledgerport_core::engine::{due_period_ends, end_of_date};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the request duration histogram's buckets (Prometheus' defaults).
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyTypeLabel {
    key_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    state: &'static str,
}

/// Makes each route's duration histogram with [`DURATION_BUCKETS`].
#[derive(Clone)]
struct DurationHistogram;

impl MetricConstructor<Histogram> for DurationHistogram {
    fn new_metric(&self) -> Histogram {
        Histogram::new(DURATION_BUCKETS)
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The registry and handles to its metrics. Cheap to record into from any task.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabel, Histogram, DurationHistogram>,
    tokens_issued: Family<KeyTypeLabel, Counter>,
    entries_served: Family<TopicLabel, Counter>,
    pages: Family<SourceLabel, Counter>,
    read_ahead: Family<ResultLabel, Counter>,
    events: Family<ResultLabel, Counter>,
    closing_lag: FloatGauge,
    ledgers_behind: Gauge,
    pool: Family<PoolLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::default();
        let durations = Family::new_with_constructor(DurationHistogram);
        let tokens_issued = Family::default();
        let entries_served = Family::default();
        let pages: Family<SourceLabel, Counter> = Family::default();
        let read_ahead: Family<ResultLabel, Counter> = Family::default();
        let events: Family<ResultLabel, Counter> = Family::default();
        let closing_lag = FloatGauge::default();
        let ledgers_behind = Gauge::default();
        let pool = Family::default();
        // Both outcomes are shown from the start, so a rate over them is never "no data".
        for result in ["accepted", "rejected"] {
            let _ = events.get_or_create(&ResultLabel { result });
        }
        for source in ["cache", "database"] {
            let _ = pages.get_or_create(&SourceLabel { source });
        }
        for result in ["kept", "dropped"] {
            let _ = read_ahead.get_or_create(&ResultLabel { result });
        }
        let mut r = Registry::default();
        // `prometheus-client` adds `_total` to counters' names and a full stop to help texts.
        r.register(
            "ledgerport_http_requests",
            "HTTP requests answered, by matched route template, method and status",
            requests.clone(),
        );
        r.register(
            "ledgerport_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by matched route template",
            durations.clone(),
        );
        r.register(
            "ledgerport_tokens_issued",
            "Access tokens issued, by the type of the keys they were issued for",
            tokens_issued.clone(),
        );
        r.register(
            "ledgerport_report_entries_served",
            "Ledger entries served by the Report API (date pages and the feed), by topic",
            entries_served.clone(),
        );
        r.register(
            "ledgerport_report_pages",
            "Report API date and feed pages answered, by where the body came from: cache (kept, or read ahead) or database (read for the request)",
            pages.clone(),
        );
        r.register(
            "ledgerport_report_pages_read_ahead",
            "Feed pages read ahead of their request, by outcome: kept (final, in the cache) or dropped (may still grow, or the read failed)",
            read_ahead.clone(),
        );
        r.register(
            "ledgerport_ingest_events",
            "Payment events posted to /ingest/v1/events, by outcome",
            events.clone(),
        );
        r.register(
            "ledgerport_closing_lag_seconds",
            "Seconds since the oldest unclosed payout point of any ledger passed; 0 when every ledger is closed up to date",
            closing_lag.clone(),
        );
        r.register(
            "ledgerport_ledgers_behind",
            "Ledgers with a passed payout point that is not closed yet",
            ledgers_behind.clone(),
        );
        r.register(
            "ledgerport_db_pool_connections",
            "Open database connections of this process's pool, idle or lent out",
            pool.clone(),
        );
        Metrics {
            registry: r,
            requests,
            durations,
            tokens_issued,
            entries_served,
            pages,
            read_ahead,
            events,
            closing_lag,
            ledgers_behind,
            pool,
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
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method_label(method),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A token was issued for keys of `key_type` (`KeyKind::as_str`).
    pub fn token_issued(&self, key_type: &'static str) {
        self.tokens_issued
            .get_or_create(&KeyTypeLabel { key_type })
            .inc();
    }

    /// A Report API page served `n` entries of `topic`.
    pub fn entries_served(&self, topic: ledgerport_core::ids::Topic, n: usize) {
        self.entries_served
            .get_or_create(&TopicLabel {
                topic: topic.as_str(),
            })
            .inc_by(n as u64);
    }

    /// A Report API page answered, its body from the page cache or read for the request.
    pub fn page_answered(&self, from_cache: bool) {
        let source = if from_cache { "cache" } else { "database" };
        self.pages.get_or_create(&SourceLabel { source }).inc();
    }

    /// A feed page read ahead of its request, and kept or not.
    pub fn page_read_ahead(&self, kept: bool) {
        let result = if kept { "kept" } else { "dropped" };
        self.read_ahead.get_or_create(&ResultLabel { result }).inc();
    }

    /// An ingested batch: how many of its events were accepted and rejected.
    pub fn events_ingested(&self, accepted: usize, rejected: usize) {
        for (result, n) in [("accepted", accepted), ("rejected", rejected)] {
            self.events
                .get_or_create(&ResultLabel { result })
                .inc_by(n as u64);
        }
    }

    /// Payment events this process accepted and rejected since it started (the operator
    /// console shows them).
    pub fn events_counted(&self) -> (u64, u64) {
        let count = |result| self.events.get_or_create(&ResultLabel { result }).get();
        (count("accepted"), count("rejected"))
    }

    /// The exposition, with the gauges set to `gauges` first.
    pub fn render(&self, gauges: &Gauges) -> String {
        self.closing_lag.set(gauges.closing_lag_max);
        self.ledgers_behind
            .set(i64::try_from(gauges.ledgers_behind).unwrap_or(i64::MAX));
        let pool = gauges.pool;
        for (state, n) in [
            ("idle", pool.idle),
            ("in_use", pool.size.saturating_sub(pool.idle)),
        ] {
            self.pool
                .get_or_create(&PoolLabel { state })
                .set(i64::from(n));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Values measured when the metrics are scraped.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// The largest closing lag of any ledger, in seconds (0 without ledgers).
    pub closing_lag_max: f64,
    /// How many ledgers have a closing lag above 0.
    pub ledgers_behind: usize,
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

/// Measures the gauges. A store that cannot list its ledgers leaves the closing lag at 0 (and
/// says so in the log) rather than failing the scrape.
pub async fn gauges(state: &AppState) -> Gauges {
    // The pool before the ledger query below borrows a connection.
    let pool = state.store.pool_stats();
    let now = state.clock.now();
    let mut g = Gauges {
        pool,
        ..Gauges::default()
    };
    match state.store.ledgers().await {
        Ok(views) => {
            for v in &views {
                let lag = closing_lag(&v.ledger, now);
                if lag > 0.0 {
                    g.ledgers_behind += 1;
                    g.closing_lag_max = g.closing_lag_max.max(lag);
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not list ledgers for the closing lag");
        }
    }
    g
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

/// The metrics listener's application: `GET /metrics` and nothing else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(serve))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.parse().ok())
        })
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
        let series = |name: &str| value(&text, &format!("{name}{{route=\"/x\"}}"));
        assert_eq!(
            series("ledgerport_http_request_duration_seconds_count"),
            Some(5.0)
        );
        let sum = series("ledgerport_http_request_duration_seconds_sum").expect("sum");
        assert!((sum - 20.315).abs() < 1e-9, "{sum}");
        assert_eq!(
            value(
                &text,
                "ledgerport_http_requests_total{route=\"/x\",method=\"GET\",status=\"200\"}"
            ),
            Some(5.0),
            "{text}"
        );
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

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.record_request("a\"b\\c\nd", &Method::GET, 200, Duration::ZERO);
        let text = m.render(&Gauges::default());
        assert!(text.contains("route=\"a\\\"b\\\\c\\nd\""), "{text}");
    }
}
