//! `ledgerport-bench`: the performance harness.
//!
//! Builds a world of a given size in a fresh database ([`world`]), starts the `ledgerport`
//! binary's `serve` on it as a child process ([`server`]), and measures over HTTP with many concurrent
//! connections ([`load`]): token issuance on both endpoints, the full feed download of one large
//! ledger, dates pages, ledger listings, concurrent readers, page latency on a small and a large
//! ledger, ingestion, and readers while ingestion runs, plus the server's peak memory. In the
//! same run it measures floors ([`floor`]): the same page bytes served from memory, and by
//! nginx where it is installed, so the table ([`report`]) shows Ledgerport's overhead as a
//! ratio. Targets are those of issue 14 ("the read path at the floor").

mod floor;
mod load;
mod page_scan;
mod phases;
mod report;
mod server;
mod world;
mod wrk;

use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// A small world and short phases: the whole run takes well under two minutes.
    #[arg(long)]
    pub quick: bool,
    /// Merchants (each owns ledgers in turn). [default: 2000; --quick: 100]
    #[arg(long)]
    pub merchants: Option<u32>,
    /// Ledgers, each with one api sales unit of its own. [default: 6000; --quick: 600]
    #[arg(long)]
    pub ledgers: Option<u32>,
    /// Accounting partners (at least 2). [default: 200; --quick: 20]
    #[arg(long)]
    pub partners: Option<u32>,
    /// Grants in all. [default: 20000; --quick: 2000]
    #[arg(long)]
    pub grants: Option<u64>,
    /// Grants of the partner with the most. [default: 5000; --quick: 500]
    #[arg(long)]
    pub big_partner_grants: Option<u64>,
    /// Grants of the partner with few. [default: 10]
    #[arg(long)]
    pub small_partner_grants: Option<u64>,
    /// Entries in all. [default: 5000000; --quick: 300000]
    #[arg(long)]
    pub entries: Option<u64>,
    /// Share of all entries on the one large ledger. [default: 0.5]
    #[arg(long)]
    pub large_share: Option<f64>,
    /// Entries of the small ledger. [default: 10000; --quick: 5000]
    #[arg(long)]
    pub small_ledger_entries: Option<u64>,
    /// Days of history the entries spread over. [default: 365; --quick: 60]
    #[arg(long)]
    pub days: Option<u32>,
    /// Concurrent connections of the concurrent phases. [default: 32]
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Seconds each timed phase runs. [default: 10; --quick: 3]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Events per ingestion request. [default: 1000]
    #[arg(long)]
    pub ingest_batch: Option<u32>,
    /// Only these phases (comma-separated); `readers` and `flatness` also run `feed`, whose
    /// pages and cursors they use. [default: all]
    #[arg(long, value_enum, value_delimiter = ',')]
    pub phases: Vec<Phase>,
    /// Write the result as JSON to this file too.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The `ledgerport` binary whose `serve` is measured. [default: `ledgerport` next to this
    /// binary, in the same target directory]
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
}

/// The measurements, in the order they run.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Token issuance on both endpoints.
    Tokens,
    /// The full feed download of the large ledger (and the floor).
    Feed,
    /// Dates pages of the large ledger.
    Dates,
    /// Ledger listings of partners with many and few grants.
    Listing,
    /// Concurrent readers on different ledgers (and the floor).
    Readers,
    /// Page latency on the small ledger against the large one.
    Flatness,
    /// Ingestion over HTTP.
    Ingest,
    /// Concurrent readers while ingestion runs at full speed, against each alone.
    Mixed,
}

/// The phases a run measures.
#[derive(Debug, Clone)]
pub struct Phases(Vec<Phase>);

impl Phases {
    pub fn has(&self, p: Phase) -> bool {
        self.0.is_empty() || self.0.contains(&p)
    }
}

/// The resolved size of a run.
#[derive(Debug, Clone)]
pub struct Size {
    pub merchants: u32,
    pub ledgers: u32,
    pub partners: u32,
    pub grants: u64,
    pub big_partner_grants: u64,
    pub small_partner_grants: u64,
    pub entries: u64,
    pub large_share: f64,
    pub small_ledger_entries: u64,
    pub days: u32,
    pub concurrency: u32,
    pub duration: Duration,
    pub ingest_batch: u32,
    pub phases: Phases,
}

impl Size {
    pub fn resolve(a: &BenchArgs) -> Result<Size, String> {
        let q = a.quick;
        let pick =
            |v: Option<u64>, full: u64, quick: u64| v.unwrap_or(if q { quick } else { full });
        let size = Size {
            merchants: pick(a.merchants.map(u64::from), 2000, 100) as u32,
            ledgers: pick(a.ledgers.map(u64::from), 6000, 600) as u32,
            partners: pick(a.partners.map(u64::from), 200, 20) as u32,
            grants: pick(a.grants, 20_000, 2_000),
            big_partner_grants: pick(a.big_partner_grants, 5_000, 500),
            small_partner_grants: pick(a.small_partner_grants, 10, 10),
            entries: pick(a.entries, 5_000_000, 300_000),
            large_share: a.large_share.unwrap_or(0.5),
            small_ledger_entries: pick(a.small_ledger_entries, 10_000, 5_000),
            days: pick(a.days.map(u64::from), 365, 60) as u32,
            concurrency: pick(a.concurrency.map(u64::from), 32, 32) as u32,
            // A negative, infinite or NaN number of seconds is no duration: refused below.
            duration: Duration::try_from_secs_f64(a.duration.unwrap_or(if q { 3.0 } else { 10.0 }))
                .unwrap_or(Duration::ZERO),
            ingest_batch: pick(a.ingest_batch.map(u64::from), 1000, 1000) as u32,
            phases: Phases(a.phases.clone()),
        };
        let bad = |field: &str, why: &str| Err(format!("bench: --{field}: {why}"));
        if size.merchants == 0 {
            return bad("merchants", "must be at least 1");
        }
        if size.ledgers < 3 || size.ledgers > 8_000_000 {
            return bad("ledgers", "must be from 3 to 8000000");
        }
        if size.partners < 2 {
            return bad(
                "partners",
                "must be at least 2 (one with many grants, one with few)",
            );
        }
        if size.big_partner_grants == 0 || size.big_partner_grants > u64::from(size.ledgers) {
            return bad(
                "big-partner-grants",
                "must be from 1 to the number of ledgers",
            );
        }
        if size.small_partner_grants == 0 || size.small_partner_grants > u64::from(size.ledgers) {
            return bad(
                "small-partner-grants",
                "must be from 1 to the number of ledgers",
            );
        }
        if !(size.large_share > 0.0 && size.large_share < 1.0) {
            return bad("large-share", "must be between 0 and 1");
        }
        if size.entries < 100 {
            return bad("entries", "must be at least 100");
        }
        if size.days == 0 {
            return bad("days", "must be at least 1");
        }
        if size.concurrency == 0 || size.concurrency > 1024 {
            return bad("concurrency", "must be from 1 to 1024");
        }
        if size.duration.is_zero() {
            return bad("duration", "must be more than 0 seconds");
        }
        if size.ingest_batch == 0 || size.ingest_batch > 10_000 {
            return bad("ingest-batch", "must be from 1 to 10000");
        }
        Ok(size)
    }
}

/// Runs the harness; `database_url` is the global `--database-url` flag only (never the
/// configuration file or environment: the benchmark writes a world into the database, so it
/// must be named on purpose). Without one, a fresh SQLite file in a temporary directory is used
/// and removed afterwards.
pub async fn run(args: BenchArgs, database_url: Option<String>) -> Result<(), String> {
    let size = Size::resolve(&args)?;
    let server_bin = server::binary(args.server_bin.as_deref())?;
    let temp = match &database_url {
        Some(_) => None,
        None => Some(TempDir::new()?),
    };
    let url = match (&database_url, &temp) {
        (Some(u), _) => u.clone(),
        (None, Some(t)) => format!("sqlite://{}", t.0.join("bench.db").display()),
        (None, None) => return Err("bench: no database".into()),
    };
    // On Ctrl-C or SIGTERM the run is dropped, and with it the server child (killed on drop).
    let report = tokio::select! {
        r = phases::run(&size, &url, &server_bin) => r?,
        () = ledgerport_server::shutdown_signal() => return Err("bench: interrupted".into()),
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("bench: --json: writing {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    drop(temp);
    Ok(())
}

/// A directory of our own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let dir = std::env::temp_dir().join(format!(
            "ledgerport-bench-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_microsecond()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("bench: creating {}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
