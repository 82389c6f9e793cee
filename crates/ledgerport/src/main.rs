//! The one Ledgerport binary. `main` only parses the command line, sets up logging and hands
//! over: `serve` to the server crate, `admin` to [`admin`], `demo` to [`demo`].

/// mimalloc instead of glibc's malloc: a profile of ingestion showed about a fifth of the time in
/// glibc's malloc and free (many small, short-lived allocations across two threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod check_report;
pub mod config;
mod demo;
mod import;
mod log_queue;
mod replay;
mod store;
mod verify;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ledgerport_core::clock::{ManualClock, SystemClock};
use ledgerport_server::AppState;

pub use config::ServeArgs;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "ledgerport",
    version,
    about = "Settlement reporting: the Report API and Access Token API, wire-compatible with Vipps MobilePay"
)]
struct Cli {
    #[command(flatten)]
    global: config::GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (runs migrations first).
    Serve(ServeArgs),
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Create a fresh demo world in its own database, print credentials and curl commands, and serve it.
    Demo(demo::DemoArgs),
    /// Operator commands: merchants, sales units, ledgers, partners, keys, grants, logs.
    Admin(admin::AdminArgs),
    /// Import payment events from an NDJSON file (one event per line) through the settlement
    /// engine, now or (`--replay`) on their own clock; rejected events are reported, not a failure.
    Import(import::ImportArgs),
    /// Check every ledger's invariants (balance chain, mirrored fees, payouts, closed dates,
    /// capture fees); exits 1 with one line per violation when one fails.
    Verify(verify::VerifyArgs),
    /// A partner's check over the public HTTP API: downloads each closed date of the ledgers the
    /// keys read and verifies it against its completeness proof (count, sum, balances, digest,
    /// chain); exits 1 naming the first mismatch.
    CheckReport(check_report::CheckReportArgs),
    /// The configuration: `config print` shows the effective one (see CONFIGURATION.md).
    Config(config::ConfigArgs),
}

/// Logs to stderr: through a queue and a writing thread of its own when `queued` (the server,
/// which logs a line or two per request: see [`log_queue`]), directly otherwise. Returns the
/// queue, which `main` waits for before it exits.
fn init_logging(
    filter: &str,
    format: config::LogFormat,
    queued: bool,
) -> Option<log_queue::LogQueue> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let queue = if queued {
        log_queue::LogQueue::start()
            .map_err(|e| eprintln!("warning: logging without a writing thread: {e}"))
            .ok()
    } else {
        None
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (queue.clone(), format == config::LogFormat::Json) {
        (Some(q), true) => builder.with_writer(q).json().init(),
        (Some(q), false) => builder.with_writer(q).init(),
        (None, true) => builder.with_writer(std::io::stderr).json().init(),
        (None, false) => builder.with_writer(std::io::stderr).init(),
    }
    queue
}

/// Resolves on Ctrl-C or SIGTERM, saying so in the log.
async fn shutdown_signal() {
    ledgerport_server::shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
}

/// Starts the server on an opened store and serves until a shutdown signal: the public listener,
/// and the metrics listener unless `metrics_listen` is off.
pub async fn run_server(
    store: Arc<dyn ledgerport_store::Store>,
    config: &config::Config,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let mail = config.smtp()?;
    if mail.is_none() {
        tracing::warn!(
            "no SMTP server configured (mail.smtp_host): mails wait in the outbox until a server with one sends them"
        );
    }
    let server_config = ledgerport_server::ServerConfig {
        signing_keys: config.required_signing_keys()?,
        webhooks: config.webhooks()?,
        mail,
        ..config.server_config()
    };
    let state = AppState::load(store, Arc::new(SystemClock), server_config)
        .await
        .map_err(anyhow::Error::msg)?;
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let metrics = match config.metrics_listen() {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (server.metrics_listen)"))?;
            tracing::info!(addr = %listener.local_addr()?, "serving metrics");
            let state = state.clone();
            Some(tokio::spawn(ledgerport_server::serve_metrics(
                listener,
                state,
                std::future::pending(),
            )))
        }
        None => None,
    };
    tracing::info!(%addr, "serving");
    on_ready(addr);
    let served = ledgerport_server::serve(listener, state, shutdown_signal()).await;
    // A scrape is short and changes nothing: the metrics listener just stops with the server.
    if let Some(m) = metrics {
        m.abort();
    }
    Ok(served?)
}

async fn run(cli: Cli, loaded: config::Loaded) -> anyhow::Result<()> {
    let config = &loaded.config;
    match cli.command {
        Command::Serve(_) => {
            let store = store::open(&config.database_url).await?;
            run_server(store, config, |_| {}).await
        }
        Command::Config(_) => {
            print!("{}", loaded.to_toml());
            Ok(())
        }
        Command::Migrate => {
            store::open(&config.database_url).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Demo(args) => demo::run(args, &demo_config(&loaded)).await,
        Command::Admin(args) => {
            let store = store::open(&config.database_url).await?;
            admin::run(store.as_ref(), args, config).await
        }
        Command::Import(args) if args.replay => {
            // Replaying, the store runs on the events' clock (the times it records, such as an
            // event's receipt, are the replayed ones).
            let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
            let store = store::open_with_clock(&config.database_url, clock.clone()).await?;
            let replay = import::Replay::new(store.as_ref(), clock)
                .await
                .map_err(|e| anyhow::anyhow!("reading the ledgers: {e}"))?;
            import::run(store.as_ref(), args, Some(replay)).await
        }
        Command::Import(args) => {
            let store = store::open(&config.database_url).await?;
            import::run(store.as_ref(), args, None).await
        }
        Command::CheckReport(args) => check_report::run(args).await,
        Command::Verify(args) => {
            let store = store::open(&config.database_url).await?;
            verify::run(store.as_ref(), args).await
        }
    }
}

/// The demo's configuration: without a signing key encryption key of the operator's, one made
/// for this run (the demo's database is made afresh on every run, so nothing needs it later);
/// no metrics listener unless one was asked for, so a second demo or a server on the machine
/// does not stop it.
fn demo_config(loaded: &config::Loaded) -> config::Config {
    let mut config = loaded.config.clone();
    if config.signing_keys().is_none() {
        config.signing_key_encryption_key =
            Some(ledgerport_server::tokens::KeyEncryptionKey::generate().to_base64());
    }
    if loaded
        .sources
        .get("server.metrics_listen")
        .map(String::as_str)
        == Some("default")
    {
        config.server.metrics_listen = "off".into();
    }
    config
}

/// Transparent huge pages off for this process. Where the kernel backs fresh memory with 2 MiB
/// pages ("always", as on the machines of BENCHMARKS.md), it zeroes a whole one on the first touch
/// of any byte in it. Report pages are fresh memory (a body of about 250 KB each, kept by the page
/// cache): during the full feed download a quarter of the server's samples were the kernel
/// zeroing huge pages (`clear_page_erms`), and without them the download went from about 500,000
/// to about 750,000 entries/s, while in-process ingestion measured the same either way. Failing
/// to set it (an older kernel, a sandbox that forbids prctl) only costs that speed.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}

fn main() -> ExitCode {
    no_huge_pages();
    let cli = Cli::parse();
    let serve_flags = match &cli.command {
        Command::Serve(args) => Some(args),
        Command::Demo(args) => Some(&args.serve),
        Command::Config(args) => match &args.command {
            config::ConfigCommand::Print(args) => Some(args),
        },
        _ => None,
    };
    let loaded = match config::load(&cli.global, serve_flags) {
        // `serve` stores signing keys: it needs to know how before it starts.
        Ok(loaded) => match (&cli.command, loaded.config.required_signing_keys()) {
            (Command::Serve(_), Err(e)) => {
                eprintln!("error: configuration: {e}");
                return ExitCode::from(2);
            }
            _ => loaded,
        },
        Err(e) => {
            eprintln!("error: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, Command::Serve(_) | Command::Demo(_));
    let log_queue = init_logging(&loaded.config.log.level, loaded.config.log.format, serving);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli, loaded));
    // Every line logged so far goes out before the process ends (and before its last error).
    if let Some(queue) = log_queue {
        queue.wait_written(std::time::Duration::from_secs(5));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
