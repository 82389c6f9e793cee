//! The one Ledgerport binary. `main` only parses the command line, sets up logging and hands
//! over: `serve` to the server crate, `admin` to [`admin`], `demo` to [`demo`].

mod admin;
mod bench;
mod demo;
mod import;
mod store;
mod verify;

use clap::{Parser, Subcommand};
use ledgerport_core::clock::SystemClock;
use ledgerport_server::{AppState, ServerConfig};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ledgerport",
    version,
    about = "Settlement reporting: the Report API and Access Token API, wire-compatible with Vipps MobilePay"
)]
struct Cli {
    /// Database to use: `sqlite://PATH` (created if missing) or `sqlite::memory:`.
    #[arg(
        long,
        global = true,
        env = "LEDGERPORT_DATABASE_URL",
        default_value = "sqlite://ledgerport.db"
    )]
    database_url: String,

    /// Log filter, e.g. `info` or `ledgerport_server=debug`.
    #[arg(long, global = true, env = "LEDGERPORT_LOG", default_value = "info")]
    log: String,

    /// Log format: `pretty` for people, `json` for machines.
    #[arg(long, global = true, env = "LEDGERPORT_LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"])]
    log_format: String,

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
    /// engine; rejected events are reported, not a failure.
    Import(import::ImportArgs),
    /// Benchmark: ingest many payment events into a fresh SQLite database and report events/s
    /// and peak memory.
    BenchIngest(bench::BenchArgs),
    /// Check every ledger's invariants (balance chain, mirrored fees, payouts, closed dates,
    /// capture fees); exits 1 with one line per violation when one fails.
    Verify(verify::VerifyArgs),
}

#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LEDGERPORT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// `iss` of issued tokens.
    #[arg(long, env = "LEDGERPORT_ISSUER", default_value = "ledgerport")]
    pub issuer: String,
    /// `aud` of issued tokens.
    #[arg(
        long,
        env = "LEDGERPORT_AUDIENCE",
        default_value = "ledgerport-report-api"
    )]
    pub audience: String,
    /// Lifetime of /accesstoken/get tokens, in seconds.
    #[arg(
        long,
        env = "LEDGERPORT_STANDARD_TOKEN_LIFETIME",
        default_value_t = 86400
    )]
    pub standard_token_lifetime: u64,
    /// Lifetime of /miami/v1/token tokens, in seconds.
    #[arg(long, env = "LEDGERPORT_MIAMI_TOKEN_LIFETIME", default_value_t = 900)]
    pub miami_token_lifetime: u64,
    /// Requests running longer than this many seconds are abandoned with a 500.
    #[arg(long, env = "LEDGERPORT_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,
    /// Seconds between closing runs (due ledger dates closed, payouts scheduled); 0 turns the
    /// closing task off (then `admin close` or another server does it).
    #[arg(long, env = "LEDGERPORT_CLOSE_INTERVAL", default_value_t = 10)]
    pub close_interval: u64,
}

impl ServeArgs {
    fn config(&self) -> ServerConfig {
        ServerConfig {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            standard_token_lifetime: Duration::from_secs(self.standard_token_lifetime),
            miami_token_lifetime: Duration::from_secs(self.miami_token_lifetime),
            request_timeout: Duration::from_secs(self.request_timeout),
            close_interval: (self.close_interval > 0)
                .then(|| Duration::from_secs(self.close_interval)),
            ..ServerConfig::default()
        }
    }
}

fn init_logging(filter: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Starts the server on an opened store and serves until a shutdown signal.
pub async fn run_server(
    store: Arc<dyn ledgerport_store::Store>,
    args: &ServeArgs,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let state = AppState::load(store, Arc::new(SystemClock), args.config()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "serving");
    on_ready(addr);
    ledgerport_server::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            let store = store::open(&cli.database_url).await?;
            run_server(store, &args, |_| {}).await
        }
        Command::Migrate => {
            store::open(&cli.database_url).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Demo(args) => demo::run(args).await,
        Command::BenchIngest(args) => bench::run(args).await,
        Command::Admin(args) => {
            let store = store::open(&cli.database_url).await?;
            admin::run(store.as_ref(), args).await
        }
        Command::Import(args) => {
            let store = store::open(&cli.database_url).await?;
            import::run(store.as_ref(), args).await
        }
        Command::Verify(args) => {
            let store = store::open(&cli.database_url).await?;
            verify::run(store.as_ref(), args).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, &cli.log_format);
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
