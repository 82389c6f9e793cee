//! The measurements, in order, against one world and one running server.

use super::floor::{self, Floor};
use super::load::{self, Stats, body};
use super::page_scan::{self, PageSummary};
use super::report::{Check, Report, Row};
use super::server::{SERVE_FLAGS, Server};
use super::world::{self, BasicCreds, World};
use super::wrk;
use super::{Phase, Size};
use axum::body::Bytes;
use base64::Engine as _;
use ledgerport_core::ids::LedgerId;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Targets (issue 14, "the read path at the floor").
const FEED_ENTRIES_PER_SEC: f64 = 1_000_000.0;
const TOKENS_PER_SEC: f64 = 25_000.0;
const TOKEN_P99_MS: f64 = 5.0;
/// Feed pages at 32 connections: at least this share of a floor's rate.
const FLOOR_SHARE: f64 = 0.2;
const HTTP_INGEST_PER_SEC: f64 = 60_000.0;
/// Readers while ingestion runs: p99 at most this many times the idle p99, and ingestion at
/// least this share of its idle rate.
const MIXED_P99_RATIO: f64 = 2.0;
const MIXED_INGEST_SHARE: f64 = 0.8;
const PAGE_P99_MS: f64 = 20.0;
const FLAT_RATIO: f64 = 2.0;
const MEMORY_MIB: f64 = 200.0;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedPage {
    cursor: String,
    try_later: bool,
    items: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct Items {
    items: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

fn phase(name: &str) {
    eprintln!("  measuring: {name}");
}

/// The shared parts every request closure needs.
#[derive(Clone)]
struct Ctx {
    http: reqwest::Client,
    base: Arc<str>,
}

impl Ctx {
    async fn miami_token(&self, creds: &BasicCreds) -> Result<String, String> {
        let b = body(
            "POST /miami/v1/token",
            self.http
                .post(format!("{}/miami/v1/token", self.base))
                .basic_auth(&creds.client_id, Some(&creds.secret))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await?;
        let t: TokenAnswer =
            serde_json::from_slice(&b).map_err(|e| format!("token answer: {e}"))?;
        Ok(t.access_token)
    }

    async fn feed(
        &self,
        token: &str,
        ledger: &LedgerId,
        cursor: Option<&str>,
    ) -> Result<(PageSummary, Bytes), String> {
        let mut req = self
            .http
            .get(format!(
                "{}/report/v2/ledgers/{ledger}/funds/feed",
                self.base
            ))
            .bearer_auth(token);
        if let Some(c) = cursor {
            req = req.query(&[("cursor", c)]);
        }
        let b = body("feed page", req).await?;
        Ok((page_scan::scan(&b)?, b))
    }
}

fn ratio_note(ours: &Stats, floor: &Stats) -> String {
    format!(
        "{:.1}x floor p50, {:.2} of floor rate",
        ours.p50_ms / floor.p50_ms.max(1e-9),
        ours.units_per_sec() / floor.units_per_sec().max(1e-9)
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

pub async fn run(size: &Size, url: &str, server_bin: &Path) -> Result<Report, String> {
    eprintln!("bench: building the world in {url}");
    let store = crate::store::open(url)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if !store
        .merchants()
        .await
        .map_err(|e| format!("bench: reading {url}: {e}"))?
        .is_empty()
    {
        return Err(format!(
            "bench: the database {url} is not empty: the benchmark needs a fresh one"
        ));
    }
    let w = world::build(store.as_ref(), size).await?;
    drop(store);

    eprintln!("bench: starting the server");
    let server = Server::start(server_bin, url).await?;
    let result = measure(size, &w, &server).await;
    let mut report = Report {
        context: vec![
            (
                "machine".into(),
                format!(
                    "{} cores ({}), load average at the end {}; client and server share the cores",
                    std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(0),
                    cpu_model(),
                    load_average()
                ),
            ),
            (
                "build".into(),
                if cfg!(debug_assertions) {
                    "debug (figures are not representative)".into()
                } else {
                    "release".into()
                },
            ),
            (
                "database".into(),
                url.split("://").next().unwrap_or(url).to_owned(),
            ),
            (
                "world".into(),
                format!(
                    "{} merchants, {} ledgers, {} partners, {} grants, {} entries (large ledger {}, small ledger {})",
                    size.merchants,
                    w.ledgers.len(),
                    size.partners,
                    w.total_grants,
                    w.total_entries,
                    w.large_entries,
                    w.small_entries
                ),
            ),
            (
                "server".into(),
                format!("ledgerport serve {}", SERVE_FLAGS.join(" ")),
            ),
            (
                "load".into(),
                format!(
                    "{} connections, {:.1} s per timed phase",
                    size.concurrency,
                    size.duration.as_secs_f64()
                ),
            ),
        ],
        rows: Vec::new(),
    };
    let peak = server.peak_mib();
    let sampled = server.sampled_peak_mib();
    server.stop().await;
    report.rows = result?;
    // Two figures: the process's own memory (RssAnon: heap, stacks, SQLite's page caches),
    // which the target is about, and VmHWM, which also counts a memory-mapped database file's
    // pages, once per connection that maps them (page cache the kernel shares and may drop).
    let [rss, anon, file] = sampled;
    let mut own = Row::new("server peak memory: own (RssAnon, sampled every 100 ms)");
    own.note = format!("{anon:.1} MiB");
    own.check = Some(Check::below(anon, MEMORY_MIB, "< 200 MiB"));
    report.rows.push(own);
    let mut mem = Row::new("server peak memory: VmHWM, with mapped files");
    mem.note = match peak {
        Some(p) => {
            format!("{p:.1} MiB (sampled maxima: VmRSS {rss:.1}, RssFile {file:.1})")
        }
        None => "unknown: no /proc/<pid>/status".into(),
    };
    report.rows.push(mem);
    Ok(report)
}

async fn measure(size: &Size, w: &World, server: &Server) -> Result<Vec<Row>, String> {
    let c = size.concurrency;
    let d = size.duration;
    let ctx = Ctx {
        http: load::client(c)?,
        base: server.base.as_str().into(),
    };
    let mut rows = Vec::new();

    let sel = &size.phases;
    let need_feed = sel.has(Phase::Feed) || sel.has(Phase::Readers) || sel.has(Phase::Flatness);
    let mut cursors: Vec<String> = Vec::new();
    let mut floor: Option<Floor> = None;
    let mut floor_url: Arc<str> = Arc::from("");
    // The page the floors serve, and Ledgerport's full download, for the nginx floor's rows.
    let mut nginx: Option<Bytes> = None;
    let mut feed_one: Option<Stats> = None;
    if sel.has(Phase::Tokens) {
        // (a) token issuance on both endpoints.
        phase("tokens from /accesstoken/get");
        let keys = Arc::new(w.unit_keys.clone());
        let cx = ctx.clone();
        let s = load::run(c, d, move |wk, _| {
            let k = keys[wk as usize % keys.len()].clone();
            let cx = cx.clone();
            async move {
                body(
                    "POST /accesstoken/get",
                    cx.http
                        .post(format!("{}/accesstoken/get", cx.base))
                        .header("client_id", &k.client_id)
                        .header("client_secret", &k.secret)
                        .header("Ocp-Apim-Subscription-Key", &k.subscription_key),
                )
                .await?;
                Ok(1)
            }
        })
        .await?;
        rows.push(token_row(
            "tokens: POST /accesstoken/get (sales unit)",
            &s,
            c,
        ));

        phase("tokens from /miami/v1/token");
        let keys = Arc::new(w.accounting_keys.clone());
        let cx = ctx.clone();
        let s = load::run(c, d, move |wk, _| {
            let k = keys[wk as usize % keys.len()].clone();
            let cx = cx.clone();
            async move {
                cx.miami_token(&k).await?;
                Ok(1)
            }
        })
        .await?;
        rows.push(token_row(
            "tokens: POST /miami/v1/token (accounting)",
            &s,
            c,
        ));
        rows.extend(wrk_token_rows(w, &ctx.base, c, d).await?);
    }
    if need_feed {
        // (b) the full feed of the large ledger, one client following cursors.
        phase("full feed download of the large ledger");
        let token = ctx.miami_token(&w.big_partner).await?;
        let began = Instant::now();
        let mut lat = Vec::new();
        let mut cursor: Option<String> = None;
        let mut entries = 0u64;
        let mut sample_page: Option<Bytes> = None;
        loop {
            let t = Instant::now();
            let (page, bytes) = ctx.feed(&token, &w.large, cursor.as_deref()).await?;
            lat.push(t.elapsed().as_micros() as u32);
            entries += page.entries as u64;
            if sample_page.is_none() && page.entries == 1000 {
                // The scan's reading of this page, checked once against a full parse.
                let full: FeedPage =
                    serde_json::from_slice(&bytes).map_err(|e| format!("feed page: {e}"))?;
                if (full.cursor.as_str(), full.try_later, full.items.len())
                    != (page.cursor.as_str(), page.try_later, page.entries)
                {
                    return Err("feed page: the scan and the parser disagree".into());
                }
                sample_page = Some(bytes);
            }
            if page.try_later || page.entries == 0 {
                break;
            }
            cursors.push(page.cursor.clone());
            cursor = Some(page.cursor);
        }
        let feed = Stats::from_latencies(lat, entries, began.elapsed().as_secs_f64());
        if entries != w.large_entries {
            return Err(format!(
                "bench: the large ledger's feed gave {entries} entries, {} were written",
                w.large_entries
            ));
        }
        let sample_page =
            sample_page.ok_or("bench: the large ledger has no full 1000-entry page")?;

        // The floor for (b): the same page bytes, one client, read the same way (`page_scan`).
        let started = Floor::start(sample_page.clone())?;
        floor_url = format!("{}/page", started.base).into();
        floor = Some(started);
        let floor_one = floor_pages(&ctx, floor_url.clone(), 1, d).await?;
        nginx = Some(sample_page);
        let mut r = Row::new(format!(
            "feed: full download of the large ledger ({} pages)",
            feed.requests
        ));
        r.rate = Some((feed.units_per_sec(), "entries/s"));
        r.p50_ms = Some(feed.p50_ms);
        r.p99_ms = Some(feed.p99_ms);
        r.note = ratio_note(&feed, &floor_one);
        r.check = Some(Check::at_least(
            feed.units_per_sec(),
            FEED_ENTRIES_PER_SEC,
            ">= 1000000 entries/s",
        ));
        rows.push(r);
        feed_one = Some(feed);
        let mut r = Row::new("floor: the same page from memory, 1 client");
        r.rate = Some((floor_one.units_per_sec(), "entries/s"));
        r.p50_ms = Some(floor_one.p50_ms);
        r.p99_ms = Some(floor_one.p99_ms);
        rows.push(r);
    }
    if sel.has(Phase::Dates) {
        // (c) dates pages of the large ledger, concurrently.
        phase("dates pages");
        let token: Arc<str> = ctx.miami_token(&w.big_partner).await?.into();
        let dates = Arc::new(w.large_dates.clone());
        let large = w.large.clone();
        let cx = ctx.clone();
        let tk = token.clone();
        let s = load::run(c, d, move |wk, n| {
            let date = dates[((u64::from(wk) * 7919 + n * 31) % dates.len() as u64) as usize];
            let url = format!("{}/report/v2/ledgers/{large}/funds/dates/{date}", cx.base);
            let cx = cx.clone();
            let tk = tk.clone();
            async move {
                let b = body("dates page", cx.http.get(url).bearer_auth(&*tk)).await?;
                let p: Items = serde_json::from_slice(&b).map_err(|e| e.to_string())?;
                Ok(p.items.len() as u64)
            }
        })
        .await?;
        let mut r = Row::new(format!("dates pages of the large ledger, {c} connections"));
        r.rate = Some((s.per_sec(), "pages/s"));
        r.p50_ms = Some(s.p50_ms);
        r.p99_ms = Some(s.p99_ms);
        r.note = format!("{:.0} entries/s", s.units_per_sec());
        rows.push(r);
    }
    if sel.has(Phase::Listing) {
        // (d) ledger listings: thousands of grants against ten.
        phase("ledger listings");
        let token = ctx.miami_token(&w.big_partner).await?;
        let small_token = ctx.miami_token(&w.small_partner).await?;
        let listing = |tk: String, filter: Option<String>| {
            let cx = ctx.clone();
            load::run(1, d, move |_, _| {
                let mut req = cx
                    .http
                    .get(format!("{}/settlement/v1/ledgers", cx.base))
                    .bearer_auth(&tk);
                if let Some(f) = &filter {
                    req = req.query(&[("settlesForRecipientHandles", f.as_str())]);
                }
                async move {
                    let b = body("ledger listing", req).await?;
                    let p: Items = serde_json::from_slice(&b).map_err(|e| e.to_string())?;
                    Ok(p.items.len() as u64)
                }
            })
        };
        let big_first = listing(token.to_string(), None).await?;
        let small_first = listing(small_token.clone(), None).await?;
        // One ledger each, picked by handle: the same answer size, so only the partner's number
        // of grants differs. The small partner's grants are on the last ledgers, the big one's on
        // the first; both hold the ledger picked for them.
        let big_pick = format!("api:{}", w.msns[(w.big_partner_grants as usize - 1) / 2]);
        let small_pick = format!("api:{}", w.msns[w.msns.len() - 1]);
        let big_one = listing(token.to_string(), Some(big_pick)).await?;
        let small_one = listing(small_token, Some(small_pick)).await?;
        for (name, s) in [
            (
                format!(
                    "listing: partner with {} grants, first page",
                    w.big_partner_grants
                ),
                &big_first,
            ),
            (
                format!(
                    "listing: partner with {} grants, first page",
                    w.small_partner_grants
                ),
                &small_first,
            ),
        ] {
            let mut r = Row::new(name);
            r.rate = Some((s.per_sec(), "req/s"));
            r.p50_ms = Some(s.p50_ms);
            r.p99_ms = Some(s.p99_ms);
            r.note = format!(
                "{} ledgers a page, {:.1} us per listed ledger",
                s.units / s.requests.max(1),
                s.p50_ms * 1000.0 / (s.units / s.requests.max(1)).max(1) as f64
            );
            rows.push(r);
        }
        let flat = big_one.p50_ms / small_one.p50_ms.max(1e-9);
        for (name, s, check) in [
            (
                format!(
                    "listing: one ledger by handle, {} grants",
                    w.small_partner_grants
                ),
                &small_one,
                None,
            ),
            (
                format!(
                    "listing: one ledger by handle, {} grants",
                    w.big_partner_grants
                ),
                &big_one,
                Some(Check::below(
                    flat,
                    FLAT_RATIO,
                    &format!("within 2x of {} grants", w.small_partner_grants),
                )),
            ),
        ] {
            let mut r = Row::new(name);
            r.rate = Some((s.per_sec(), "req/s"));
            r.p50_ms = Some(s.p50_ms);
            r.p99_ms = Some(s.p99_ms);
            if check.is_some() {
                r.note = format!(
                    "p50 {flat:.2}x the {}-grant partner's",
                    w.small_partner_grants
                );
            }
            r.check = check;
            rows.push(r);
        }
    }
    if sel.has(Phase::Readers) {
        // (e) 1000-entry pages, one reader per ledger, each following its ledger's feed.
        phase("concurrent readers");
        let (readers, s) = readers(&ctx, w, c, d).await?;
        let floor_many = floor_pages(&ctx, floor_url.clone(), readers, d).await?;
        drop(floor.take());
        // The second floor, nginx serving the same bytes as a static file, where installed.
        let nginx_many = match (&nginx, floor::nginx_binary()) {
            (Some(page), Some(bin)) => {
                phase("nginx floor");
                let n = floor::Nginx::start(&bin, page)?;
                let s1 = floor_pages(&ctx, format!("{}/page", n.base).into(), 1, d).await?;
                let sn = floor_pages(&ctx, format!("{}/page", n.base).into(), readers, d).await?;
                drop(n);
                Some((s1, sn))
            }
            _ => None,
        };
        let mut r = Row::new(format!(
            "feed pages, {readers} readers on {readers} ledgers"
        ));
        r.rate = Some((s.per_sec(), "pages/s"));
        r.p50_ms = Some(s.p50_ms);
        r.p99_ms = Some(s.p99_ms);
        r.note = format!(
            "{:.0} entries/s, {:.1} entries a page; {}",
            s.units_per_sec(),
            s.units as f64 / s.requests.max(1) as f64,
            ratio_note(&s, &floor_many)
        );
        r.check = Some(
            Check::below(s.p99_ms, PAGE_P99_MS, "p99 < 20 ms").and(Check::at_least(
                s.units_per_sec() / floor_many.units_per_sec().max(1e-9),
                FLOOR_SHARE,
                ">= 1/5 of floor rate",
            )),
        );
        rows.push(r);
        let mut r = Row::new(format!(
            "floor: the same page from memory, {readers} clients"
        ));
        r.rate = Some((floor_many.per_sec(), "pages/s"));
        r.p50_ms = Some(floor_many.p50_ms);
        r.p99_ms = Some(floor_many.p99_ms);
        rows.push(r);
        match nginx_many {
            Some((one, many)) => {
                let mut r = Row::new("floor: nginx, the same page as a static file, 1 client");
                r.rate = Some((one.units_per_sec(), "entries/s"));
                r.p50_ms = Some(one.p50_ms);
                r.p99_ms = Some(one.p99_ms);
                if let Some(feed) = &feed_one {
                    r.note = format!("Ledgerport's full download: {}", ratio_note(feed, &one));
                }
                rows.push(r);
                let mut r = Row::new(format!(
                    "floor: nginx, the same page as a static file, {readers} clients"
                ));
                r.rate = Some((many.per_sec(), "pages/s"));
                r.p50_ms = Some(many.p50_ms);
                r.p99_ms = Some(many.p99_ms);
                let share = s.units_per_sec() / many.units_per_sec().max(1e-9);
                r.note = format!("Ledgerport's readers: {}", ratio_note(&s, &many));
                r.check = Some(Check::at_least(
                    share,
                    FLOOR_SHARE,
                    "readers >= 1/5 of nginx's rate",
                ));
                rows.push(r);
            }
            None => {
                let mut r = Row::new("floor: nginx, the same page as a static file");
                r.note = "skipped: no nginx on PATH or in /usr/sbin".into();
                rows.push(r);
            }
        }
    }
    if sel.has(Phase::Flatness) {
        // (f) one page deep in the large ledger against one in the small ledger, one client.
        phase("page latency: small ledger against the large one");
        let token: Arc<str> = ctx.miami_token(&w.big_partner).await?.into();
        let mut small_cursors = Vec::new();
        let mut cur: Option<String> = None;
        loop {
            let (page, _) = ctx.feed(&token, &w.small, cur.as_deref()).await?;
            if page.try_later || page.entries == 0 {
                break;
            }
            small_cursors.push(page.cursor.clone());
            cur = Some(page.cursor);
        }
        // The small ledger's last full page is fetched from the cursor before it.
        let small_cursors: Vec<Option<String>> = std::iter::once(None)
            .chain(small_cursors.into_iter().map(Some))
            .collect();
        let step = (cursors.len() / 20).max(1);
        let large_cursors: Vec<Option<String>> = std::iter::once(None)
            .chain(cursors.into_iter().step_by(step).map(Some))
            .collect();
        let mut by_ledger = Vec::new();
        for (ledger, cs) in [
            (w.small.clone(), small_cursors),
            (w.large.clone(), large_cursors),
        ] {
            let cs = Arc::new(cs);
            let cx = ctx.clone();
            let tk = token.clone();
            let s = load::run(1, d, move |_, n| {
                let cx = cx.clone();
                let tk = tk.clone();
                let cs = cs.clone();
                let ledger = ledger.clone();
                async move {
                    let c = &cs[n as usize % cs.len()];
                    let (page, _) = cx.feed(&tk, &ledger, c.as_deref()).await?;
                    Ok(page.entries as u64)
                }
            })
            .await?;
            by_ledger.push(s);
        }
        let flat = by_ledger[1].p50_ms / by_ledger[0].p50_ms.max(1e-9);
        for (i, s) in by_ledger.iter().enumerate() {
            let entries = if i == 0 {
                w.small_entries
            } else {
                w.large_entries
            };
            let mut r = Row::new(format!(
                "feed page of a ledger of {entries} entries, 1 client"
            ));
            r.rate = Some((s.per_sec(), "pages/s"));
            r.p50_ms = Some(s.p50_ms);
            r.p99_ms = Some(s.p99_ms);
            r.note = format!(
                "{:.0} entries a page, pages spread over the ledger",
                s.units as f64 / s.requests.max(1) as f64
            );
            if i == 1 {
                r.note
                    .push_str(&format!("; p50 {flat:.2}x the small ledger's"));
                r.check = Some(Check::below(
                    flat,
                    FLAT_RATIO,
                    "within 2x of the small ledger",
                ));
            }
            rows.push(r);
        }
    }
    if sel.has(Phase::Ingest) {
        // (g) ingestion over HTTP with an operator service key.
        phase("ingestion");
        let (s, rejected) = ingest(&ctx, w, size.ingest_batch, INGEST_CLIENTS, d).await?;
        let mut r = Row::new(format!(
            "ingestion: {} events a request, {INGEST_CLIENTS} clients",
            size.ingest_batch
        ));
        r.rate = Some((s.units_per_sec(), "events/s"));
        r.p50_ms = Some(s.p50_ms);
        r.p99_ms = Some(s.p99_ms);
        r.note = format!("{} accepted, {rejected} rejected", s.units);
        r.check = Some(Check::at_least(
            s.units_per_sec(),
            HTTP_INGEST_PER_SEC,
            ">= 60000 events/s",
        ));
        rows.push(r);
    }
    if sel.has(Phase::Mixed) {
        // (h) the readers of (e) while ingestion runs at full speed, against each alone,
        // measured one right after the other.
        phase("mixed: readers alone");
        let (n, idle) = readers(&ctx, w, c, d).await?;
        phase("mixed: ingestion alone");
        let (ingest_idle, _) = ingest(&ctx, w, size.ingest_batch, INGEST_CLIENTS, d).await?;
        phase("mixed: readers while ingestion runs");
        let ((_, mixed), ingest_mixed) = tokio::try_join!(
            readers(&ctx, w, c, d),
            ingest(&ctx, w, size.ingest_batch, INGEST_CLIENTS, d)
        )?;
        let (ingest_mixed, rejected) = ingest_mixed;
        let mut r = Row::new(format!("mixed: {n} readers, no ingestion"));
        r.rate = Some((idle.per_sec(), "pages/s"));
        r.p50_ms = Some(idle.p50_ms);
        r.p99_ms = Some(idle.p99_ms);
        rows.push(r);
        let mut r = Row::new(format!("mixed: {n} readers while ingestion runs"));
        r.rate = Some((mixed.per_sec(), "pages/s"));
        r.p50_ms = Some(mixed.p50_ms);
        r.p99_ms = Some(mixed.p99_ms);
        let p99_ratio = mixed.p99_ms / idle.p99_ms.max(1e-9);
        r.note = format!("p99 {p99_ratio:.2}x the idle p99");
        r.check = Some(Check::below(
            p99_ratio,
            MIXED_P99_RATIO + f64::EPSILON,
            "p99 <= 2x idle p99",
        ));
        rows.push(r);
        let mut r = Row::new(format!(
            "mixed: ingestion, {INGEST_CLIENTS} clients, no readers"
        ));
        r.rate = Some((ingest_idle.units_per_sec(), "events/s"));
        r.p50_ms = Some(ingest_idle.p50_ms);
        r.p99_ms = Some(ingest_idle.p99_ms);
        rows.push(r);
        let mut r = Row::new(format!(
            "mixed: ingestion, {INGEST_CLIENTS} clients, while {n} readers read"
        ));
        r.rate = Some((ingest_mixed.units_per_sec(), "events/s"));
        r.p50_ms = Some(ingest_mixed.p50_ms);
        r.p99_ms = Some(ingest_mixed.p99_ms);
        let share = ingest_mixed.units_per_sec() / ingest_idle.units_per_sec().max(1e-9);
        r.note = format!("{share:.2} of the idle rate, {rejected} rejected");
        r.check = Some(Check::at_least(
            share,
            MIXED_INGEST_SHARE,
            ">= 0.8 of idle rate",
        ));
        rows.push(r);
    }
    Ok(rows)
}

fn token_row(name: &str, s: &Stats, c: u32) -> Row {
    token_row_of(name, s.per_sec(), s.p50_ms, s.p99_ms, c)
}

/// A token phase's row against the token targets, whichever client measured it.
fn token_row_of(name: &str, per_sec: f64, p50_ms: f64, p99_ms: f64, c: u32) -> Row {
    let mut r = Row::new(format!("{name}, {c} connections"));
    r.rate = Some((per_sec, "tokens/s"));
    r.p50_ms = Some(p50_ms);
    r.p99_ms = Some(p99_ms);
    r.check = Some(
        Check::at_least(per_sec, TOKENS_PER_SEC, ">= 25000/s").and(Check::below(
            p99_ms,
            TOKEN_P99_MS,
            "p99 < 5 ms",
        )),
    );
    r
}

/// The token phases again with wrk as the client, where it is installed ([`wrk`]): one key per
/// endpoint on every connection (the limits are off), so each request is the same bytes.
async fn wrk_token_rows(w: &World, base: &str, c: u32, d: Duration) -> Result<Vec<Row>, String> {
    let Some(bin) = wrk::binary() else {
        let mut r = Row::new("tokens: wrk as the client");
        r.note = "skipped: no wrk on PATH".into();
        return Ok(vec![r]);
    };
    let unit = w
        .unit_keys
        .first()
        .ok_or("bench: the world has no unit keys")?;
    let partner = w
        .accounting_keys
        .first()
        .ok_or("bench: the world has no accounting keys")?;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", partner.client_id, partner.secret));
    let endpoints = [
        (
            "tokens: POST /accesstoken/get (sales unit), wrk as the client",
            "/accesstoken/get",
            wrk::Post {
                headers: vec![
                    ("client_id", unit.client_id.clone()),
                    ("client_secret", unit.secret.clone()),
                    ("Ocp-Apim-Subscription-Key", unit.subscription_key.clone()),
                ],
                body: String::new(),
            },
        ),
        (
            "tokens: POST /miami/v1/token (accounting), wrk as the client",
            "/miami/v1/token",
            wrk::Post {
                headers: vec![
                    ("Authorization", format!("Basic {basic}")),
                    (
                        "Content-Type",
                        "application/x-www-form-urlencoded".to_owned(),
                    ),
                ],
                body: "grant_type=client_credentials".to_owned(),
            },
        ),
    ];
    let mut rows = Vec::new();
    for (name, path, post) in endpoints {
        phase(name);
        let s = wrk::run(&bin, &format!("{base}{path}"), &post, c, d).await?;
        rows.push(token_row_of(name, s.per_sec, s.p50_ms, s.p99_ms, c));
    }
    Ok(rows)
}

/// Ingestion clients, each sending its next batch as soon as the last is answered.
const INGEST_CLIENTS: u32 = 2;

/// The same floor page fetched by `clients` connections for `d`, read as a feed page.
async fn floor_pages(
    ctx: &Ctx,
    url: Arc<str>,
    clients: u32,
    d: std::time::Duration,
) -> Result<Stats, String> {
    let cx = ctx.clone();
    load::run(clients, d, move |_, _| {
        let cx = cx.clone();
        let u = url.clone();
        async move {
            let b = body("floor page", cx.http.get(&*u)).await?;
            Ok(page_scan::scan(&b)?.entries as u64)
        }
    })
    .await
}

/// Up to `c` readers, one per reader ledger, each following its ledger's feed from the start
/// (and again from the start when caught up) for `d`: how many read, and what they measured.
async fn readers(
    ctx: &Ctx,
    w: &World,
    c: u32,
    d: std::time::Duration,
) -> Result<(u32, Stats), String> {
    let token: Arc<str> = ctx.miami_token(&w.big_partner).await?.into();
    let ledgers = Arc::new(w.reader_ledgers.clone());
    let cursors_of: Arc<Vec<tokio::sync::Mutex<Option<String>>>> = Arc::new(
        (0..ledgers.len())
            .map(|_| tokio::sync::Mutex::new(None))
            .collect(),
    );
    let cx = ctx.clone();
    let readers = (c as usize).min(ledgers.len()) as u32;
    let s = load::run(readers, d, move |wk, _| {
        let cx = cx.clone();
        let tk = token.clone();
        let ledgers = ledgers.clone();
        let cursors_of = cursors_of.clone();
        async move {
            let i = wk as usize % ledgers.len();
            let mut cur = cursors_of[i].lock().await;
            let (page, _) = cx.feed(&tk, &ledgers[i], cur.as_deref()).await?;
            // Caught up: start again from the beginning.
            *cur = (!page.try_later).then_some(page.cursor);
            Ok(page.entries as u64)
        }
    })
    .await?;
    Ok((readers, s))
}

/// Ingestion over HTTP for `d`: `clients` clients sending batches of `batch` capture events
/// (ids of their own for each call) to the ledgers no reader reads. The stats count accepted
/// events as units; the second figure is the events rejected.
async fn ingest(
    ctx: &Ctx,
    w: &World,
    batch: u32,
    clients: u32,
    d: std::time::Duration,
) -> Result<(Stats, u64), String> {
    let service = w.service.clone();
    let msns = Arc::new(w.msns[(2 + w.reader_ledgers.len()).min(w.msns.len() - 1)..].to_vec());
    let cx = ctx.clone();
    let run_id = jiff::Timestamp::now().as_microsecond();
    let time = ledgerport_core::entry::wire_time(jiff::Timestamp::now());
    let rejected = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let rej = rejected.clone();
    let s = load::run(clients, d, move |wk, n| {
        let mut events = Vec::with_capacity(batch as usize);
        for i in 0..batch {
            let k = (n * u64::from(batch) + u64::from(i)) * u64::from(clients) + u64::from(wk);
            let msn = msns[(k % msns.len() as u64) as usize];
            events.push(serde_json::json!({
                "eventId": format!("bench-{run_id}-{k}"),
                "type": "capture",
                "msn": msn.to_string(),
                "pspReference": format!("bench{run_id}{k}"),
                "reference": format!("order-{k}"),
                "amount": 1000 + (k % 97) * 100,
                "currency": "NOK",
                "time": time,
            }));
        }
        let req = cx
            .http
            .post(format!("{}/ingest/v1/events", cx.base))
            .basic_auth(&service.client_id, Some(&service.secret))
            .json(&serde_json::json!({ "events": events }));
        let rej = rej.clone();
        async move {
            let b = body("POST /ingest/v1/events", req).await?;
            let v: serde_json::Value = serde_json::from_slice(&b).map_err(|e| e.to_string())?;
            let accepted = v["accepted"].as_u64().unwrap_or(0);
            rej.fetch_add(
                v["rejected"].as_u64().unwrap_or(0),
                std::sync::atomic::Ordering::Relaxed,
            );
            Ok(accepted)
        }
    })
    .await?;
    let rejected = rejected.load(std::sync::atomic::Ordering::Relaxed);
    if s.units == 0 {
        return Err(format!(
            "bench: ingestion accepted no event ({rejected} rejected)"
        ));
    }
    Ok((s, rejected))
}
