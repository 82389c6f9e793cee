//! `ledgerport-bench`: the performance harness ([`harness`]) and the ingestion benchmark
//! ([`ingest`]), a binary of their own so that the product binary `ledgerport` carries no load
//! generator. The harness starts `ledgerport serve` as a child process: the `ledgerport` binary
//! next to this one (the same target directory), or the one `--server-bin` names.

/// The same allocator as the `ledgerport` binary, so `ingest` measures what the product does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod close;
mod harness;
mod ingest;
mod ingest_floor;
mod store;
mod webhooks;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ledgerport-bench",
    version,
    about = "Performance harness: builds a world of a given size in a fresh database (a temporary SQLite file unless `--database-url` names one), starts `ledgerport serve` on it and measures it over HTTP; prints a table with the targets (see BENCHMARKS.md). `ingest` measures ingestion in-process.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Database to build the world in: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB` (it
    /// must be empty). Only this flag names it: never the environment or a configuration file,
    /// since the benchmark writes a world into it.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,

    /// Log filter of this process (the server child logs at `info` to its own pipe).
    #[arg(long, global = true, default_value = "info", value_name = "FILTER")]
    log: String,

    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    harness: harness::BenchArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest many payment events into a fresh database in-process and report events/s and peak
    /// memory.
    Ingest(ingest::BenchArgs),
    /// Close one day of many ledgers in a fresh database (SQLite, or PostgreSQL with
    /// `--database-url`), with completeness proofs and without them (alternating rounds), and
    /// report both medians: what proofs add to closing.
    Close(close::CloseArgs),
    /// Webhook delivery on loopback in-process: deliveries per second to one receiver, and the
    /// latency from a date's closing to its receipt (p50, p99).
    Webhooks(webhooks::BenchArgs),
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Some(Command::Ingest(args)) => {
            ingest::run(args, cli.database_url.as_deref().unwrap_or_default()).await
        }
        Some(Command::Close(args)) => close::run(args, cli.database_url.as_deref()).await,
        Some(Command::Webhooks(args)) => webhooks::run(args, cli.database_url.as_deref()).await,
        None => harness::run(cli.harness, cli.database_url).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
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
