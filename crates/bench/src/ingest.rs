//! `ledgerport-bench ingest`: how fast payment events become ledger entries on this machine.
//!
//! Builds a world of `--ledgers` ledgers in a fresh database, feeds `--events` events through the
//! same `Store::ingest_events` path as the ingestion endpoint and `import` (captures with their
//! fees; every tenth round each unit refunds part of its capture of the round before), each batch
//! arriving at its last event's time so that every day closes (fees retained, payout scheduled)
//! as the events pass it, then closes what is still due, and prints events per second and the
//! process's peak memory. Run it on a release build:
//! `cargo run --release -p ledgerport-bench -- ingest --events 1000000`. With `--database-url postgres://...`
//! it runs on that PostgreSQL database instead, which must be empty (`createdb` a fresh one).

use jiff::Timestamp;
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::ids::{Currency, LedgerId, Msn};
use ledgerport_store::{EventOutcome, Store};
use ledgerport_testkit::WorldBuilder;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Events to ingest.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Ledgers (one api sales unit each) the events spread over.
    #[arg(long, default_value_t = 100)]
    pub ledgers: u32,
    /// Events per `ingest_events` call (one transaction each).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Days of history the events spread over.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// SQLite database file; deleted and created afresh (unless `--database-url` names PostgreSQL).
    #[arg(long, default_value = "ledgerport-bench.db")]
    pub database: PathBuf,
    /// Then write the rows the run left in `events`, `payments` and `entries` again, by SQLite
    /// alone, into a fresh database beside it (`<database>-floor`), in the same batches, and
    /// print that rate as the floor of the engine's (SQLite only).
    #[arg(long)]
    pub floor: bool,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("bench: {e}")
}

/// Peak resident memory of this process, from /proc (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs on `database_url` when it names PostgreSQL, on the `--database` SQLite file otherwise.
pub async fn run(args: BenchArgs, database_url: &str) -> Result<(), String> {
    let postgres =
        database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
    if postgres && args.floor {
        return Err(err(
            "--floor measures SQLite only; leave out --database-url",
        ));
    }
    if !postgres {
        remove_database(&args.database);
    }
    let start: Timestamp = Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(
            24 * (i64::from(args.days) + 2),
        ))
        .map_err(err)?;
    let clock = Arc::new(ManualClock::new(start));
    let url = if postgres {
        database_url.to_owned()
    } else {
        format!("sqlite://{}", args.database.display())
    };
    let store = crate::store::open_with_clock(&url, clock.clone())
        .await
        .map_err(|e| format!("{e:#}"))?;
    if !store.merchants().await.map_err(err)?.is_empty() {
        return Err(err("the database is not empty; give the bench a fresh one"));
    }
    let ledger_ids = world(store.as_ref(), args.ledgers).await?;

    let first = start
        .checked_add(jiff::SignedDuration::from_hours(24))
        .map_err(err)?;
    let span_us = i64::from(args.days) * 86_400_000_000;
    let now = Timestamp::now();
    let began = Instant::now();
    let (mut accepted, mut rejected, mut done) = (0u64, 0u64, 0u64);
    let mut batch = Vec::with_capacity(args.batch);
    let mut last_report = Instant::now();
    while done < args.events {
        batch.clear();
        while batch.len() < args.batch && done < args.events {
            // Events in time order overall, spread evenly over the days and the ledgers.
            let i = done;
            let at = first
                .checked_add(jiff::SignedDuration::from_micros(
                    (i as i128 * span_us as i128 / args.events as i128) as i64,
                ))
                .map_err(err)?;
            let unit = 100_000 + (i % u64::from(args.ledgers)) as u32;
            let msn = Msn::parse("msn", &unit.to_string()).map_err(err)?;
            // Every tenth round, each unit refunds part of its capture of the round before.
            let refund = (i / u64::from(args.ledgers)) % 10 == 9;
            let psp = if refund {
                format!("p{}", i - u64::from(args.ledgers))
            } else {
                format!("p{i}")
            };
            batch.push(PaymentEvent {
                event_id: format!("e{i}"),
                kind: if refund {
                    EventKind::Refund
                } else {
                    EventKind::Capture
                },
                msn,
                psp_reference: psp,
                capture_psp_reference: None,
                reference: format!("order-{i}"),
                amount: if refund {
                    500
                } else {
                    1_000 + (i % 97) as i64 * 100
                },
                currency: Currency::NOK,
                time: at,
                topic: None,
                payer: None,
            });
            done += 1;
        }
        // The payment systems post events as they happen: the batch arrives at its last event's
        // time, so the days close one after another during ingestion, as in a live system.
        let arrived = batch.last().map_or(now, |e| e.time);
        for o in store
            .ingest_events(std::mem::take(&mut batch), arrived)
            .await
            .map_err(err)?
        {
            match o {
                EventOutcome::Accepted { .. } => accepted += 1,
                EventOutcome::Rejected { .. } => rejected += 1,
            }
        }
        if last_report.elapsed().as_millis() > 500 {
            last_report = Instant::now();
            let rate = done as f64 / began.elapsed().as_secs_f64();
            eprint!("\r  {done}/{} events, {rate:.0} events/s", args.events);
        }
    }
    let ingest_secs = began.elapsed().as_secs_f64();
    eprintln!();
    let close_began = Instant::now();
    let mut periods = 0;
    for l in &ledger_ids {
        periods += store.close_due(l, now).await.map_err(err)?.len();
    }
    let close_secs = close_began.elapsed().as_secs_f64();
    println!(
        "events ingested     {accepted} accepted, {rejected} rejected, in batches of {}",
        args.batch
    );
    println!("ingest time         {ingest_secs:.2} s");
    println!(
        "ingest rate         {:.0} events/s",
        done as f64 / ingest_secs
    );
    println!(
        "closing             {periods} periods of {} ledgers in {close_secs:.2} s",
        ledger_ids.len()
    );
    match peak_rss_mib() {
        Some(m) => println!("peak memory (RSS)   {m:.1} MiB"),
        None => println!("peak memory (RSS)   unknown (no /proc/self/status)"),
    }
    drop(store);
    if args.floor {
        let mut floor = args.database.clone().into_os_string();
        floor.push("-floor");
        let floor = PathBuf::from(floor);
        remove_database(&floor);
        // Migrated by the store, so the floor's tables are the engine's.
        crate::store::open_with_clock(&format!("sqlite://{}", floor.display()), clock.clone())
            .await
            .map_err(|e| format!("{e:#}"))?;
        let (rate, rows) = crate::ingest_floor::measure(&args.database, &floor, done, args.batch)?;
        println!(
            "floor (SQLite)      {rate:.0} events/s: the events' {rows} rows of events, payments \
             and entries written again by SQLite alone; the engine's rate is {:.2} of it",
            done as f64 / ingest_secs / rate
        );
        remove_database(&floor);
    }
    Ok(())
}

/// Removes every file of the SQLite database at `path`.
fn remove_database(path: &std::path::Path) {
    for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
        let mut p = path.to_owned().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(&p);
    }
}

async fn world(store: &dyn Store, ledgers: u32) -> Result<Vec<LedgerId>, String> {
    let mut world = WorldBuilder::new()
        .by("bench")
        .merchant("987654321", "Bench AS");
    for i in 0..ledgers {
        let msn = (100_000 + i).to_string();
        world = world
            .api_unit(&msn)
            .ledger(&(700_000 + i).to_string(), &[&msn]);
    }
    Ok(world.build(store).await.map_err(err)?.ledger_ids())
}
