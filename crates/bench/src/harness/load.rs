//! The load generator: many concurrent connections, each sending its next request as soon as
//! the last one is answered, and the latency of every request.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One HTTP client for every measurement (and the floor), so they all pay the same client cost.
/// HTTP/1.1 keep-alive, one connection per concurrent worker.
pub fn client(concurrency: u32) -> Result<reqwest::Client, String> {
    ledgerport_server::http::client_builder()?
        .pool_max_idle_per_host(concurrency as usize + 4)
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: u64,
    /// Units of work done (entries, tokens, events) where that is not one per request.
    pub units: u64,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }

    pub fn units_per_sec(&self) -> f64 {
        self.units as f64 / self.secs.max(1e-9)
    }

    pub fn from_latencies(mut lat_us: Vec<u32>, units: u64, secs: f64) -> Stats {
        lat_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if lat_us.is_empty() {
                return 0.0;
            }
            let i = ((lat_us.len() as f64 * p).ceil() as usize).clamp(1, lat_us.len()) - 1;
            f64::from(lat_us[i]) / 1000.0
        };
        Stats {
            requests: lat_us.len() as u64,
            units,
            secs,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
        }
    }
}

/// Runs `concurrency` workers for `duration`; each calls `request(worker, n)` in a loop, where
/// `n` counts its own requests, and the request returns the units of work it got done. The
/// first error stops the run and is returned.
pub async fn run<F, Fut>(concurrency: u32, duration: Duration, request: F) -> Result<Stats, String>
where
    F: Fn(u32, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, String>> + Send,
{
    let request = Arc::new(request);
    let began = Instant::now();
    let deadline = began + duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let request = request.clone();
        workers.spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut units = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                units += request(w, n).await?;
                lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                n += 1;
            }
            Ok::<_, String>((lat, units))
        });
    }
    let mut all = Vec::new();
    let mut units = 0;
    while let Some(done) = workers.join_next().await {
        let (lat, u) = done.map_err(|e| format!("a load worker failed: {e}"))??;
        all.extend(lat);
        units += u;
    }
    Ok(Stats::from_latencies(
        all,
        units,
        began.elapsed().as_secs_f64(),
    ))
}

/// Sends a request and returns its body, or an error naming what was asked and what came back.
pub async fn body(what: &str, req: reqwest::RequestBuilder) -> Result<axum::body::Bytes, String> {
    let res = req.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = res.status();
    let body = res.bytes().await.map_err(|e| format!("{what}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{what}: HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    Ok(body)
}
