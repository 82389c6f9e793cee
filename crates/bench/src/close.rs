//! `ledgerport-bench close`: what closing a day costs, with completeness proofs and without them,
//! in one run on this machine.
//!
//! Each round builds the same world twice in a fresh SQLite file (`--ledgers` daily ledgers, each
//! with `--captures` captures and their fees booked on one day, nothing closed yet) and times one
//! `close_due` per ledger that closes that day: once with a store that closes as it did before
//! proofs existed (`SqlStore::measure_closing_without_proofs`: the period's sums in SQL, no
//! proofs, no digest states kept while booking), once as the product does (the period's digest
//! states read, every date and topic proved from them). The rounds alternate the two, and the
//! median of each is reported.
//!
//! With `--database-url postgres://…` each round's world goes into a new database on that server
//! instead, dropped after the round.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::ids::{Currency, LedgerId, Msn};
use ledgerport_store::postgres::PostgresStore;
use ledgerport_store::sqlite::SqliteStore;
use ledgerport_store::{EventOutcome, Store};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::TestDatabase;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct CloseArgs {
    /// Ledgers, each closing one day.
    #[arg(long, default_value_t = 200)]
    pub ledgers: u32,
    /// Captures per ledger on that day (each with its capture fee).
    #[arg(long, default_value_t = 100)]
    pub captures: u32,
    /// Rounds of each kind, alternating.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// SQLite database file, deleted and created afresh for every round (a name of its own for
    /// each, so no round meets the files of the one before while its connections close).
    /// Without `--database-url`.
    #[arg(long, default_value = "ledgerport-bench-close.db")]
    pub database: PathBuf,
}

/// Where the rounds' worlds go.
enum Target<'a> {
    Sqlite(&'a Path),
    /// The server: each round makes a database of its own on it.
    Postgres(&'a str),
}

fn err(e: impl std::fmt::Display) -> String {
    format!("bench close: {e}")
}

fn remove(db: &Path) {
    for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
        let mut p = db.to_path_buf().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(&p);
    }
}

pub async fn run(args: CloseArgs, database_url: Option<&str>) -> Result<(), String> {
    if args.ledgers == 0 || args.captures == 0 || args.rounds == 0 {
        return Err(err("--ledgers, --captures and --rounds must be at least 1"));
    }
    let target = match database_url {
        None => Target::Sqlite(&args.database),
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Target::Postgres(u)
        }
        Some(_) => {
            return Err(err(
                "--database-url: close takes a postgres:// server (SQLite: --database FILE)",
            ));
        }
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        // Alternate which goes first, so neither always gets the warmer machine.
        for proofs in if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            let secs = one_round(&args, &target, round, proofs).await?;
            eprintln!(
                "  round {}: {} proofs {:.1} ms",
                round + 1,
                if proofs { "with" } else { "without" },
                secs * 1000.0
            );
            if proofs {
                with.push(secs);
            } else {
                without.push(secs);
            }
        }
    }
    let (a, b) = (median(&mut without), median(&mut with));
    let per = |s: f64| s * 1000.0 / f64::from(args.ledgers);
    println!(
        "database            {}",
        match target {
            Target::Sqlite(p) => format!("sqlite file {}", p.display()),
            Target::Postgres(_) => "postgres, a new database each round".into(),
        }
    );
    println!(
        "closing             {} ledgers, one day each: {} captures and their fees ({} entries), then the closing's own",
        args.ledgers,
        args.captures,
        2 * args.captures
    );
    println!(
        "without proofs      median {:.1} ms of {} rounds ({:.3} ms a ledger)",
        a * 1000.0,
        args.rounds,
        per(a)
    );
    println!(
        "with proofs         median {:.1} ms of {} rounds ({:.3} ms a ledger)",
        b * 1000.0,
        args.rounds,
        per(b)
    );
    println!("proofs add          {:+.1} %", (b / a - 1.0) * 100.0);
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One round's store, and what to delete after it: its PostgreSQL database or SQLite file.
struct Fresh {
    store: Arc<dyn Store>,
    db: Option<TestDatabase>,
    file: Option<PathBuf>,
}

/// The store of one round in a fresh database, closing with proofs or (the baseline) without.
async fn fresh_store(
    target: &Target<'_>,
    round: u32,
    clock: Arc<ManualClock>,
    proofs: bool,
) -> Result<Fresh, String> {
    match target {
        Target::Sqlite(base) => {
            let mut name = base.as_os_str().to_owned();
            name.push(format!(
                ".{}-{round}",
                if proofs { "with" } else { "without" }
            ));
            let file = PathBuf::from(name);
            remove(&file);
            let url = format!("sqlite://{}", file.display());
            let mut store = SqliteStore::open(&url, clock).await.map_err(err)?;
            if !proofs {
                store.measure_closing_without_proofs();
            }
            Ok(Fresh {
                store: Arc::new(store),
                db: None,
                file: Some(file),
            })
        }
        Target::Postgres(server) => {
            let db = TestDatabase::create_on((*server).to_owned())
                .await
                .map_err(err)?;
            let mut store = PostgresStore::open(&db.url, clock).await.map_err(err)?;
            if !proofs {
                store.measure_closing_without_proofs();
            }
            Ok(Fresh {
                store: Arc::new(store),
                db: Some(db),
                file: None,
            })
        }
    }
}

/// Builds the world in a fresh database and times closing its day; returns the seconds.
async fn one_round(
    args: &CloseArgs,
    target: &Target<'_>,
    round: u32,
    proofs: bool,
) -> Result<f64, String> {
    let oslo = TimeZone::get("Europe/Oslo").map_err(err)?;
    // The day closed: the day before yesterday in Oslo, so every time below is in the past.
    let day = oslo
        .to_datetime(Timestamp::now())
        .date()
        .checked_sub(jiff::Span::new().days(2))
        .map_err(err)?;
    let at = |h: i8, us: i64| -> Result<Timestamp, String> {
        let t = oslo.to_timestamp(day.at(h, 0, 0, 0)).map_err(err)?;
        t.checked_add(jiff::SignedDuration::from_micros(us))
            .map_err(err)
    };
    let clock = Arc::new(ManualClock::new(at(0, 1)?));
    let Fresh { store, db, file } = fresh_store(target, round, clock.clone(), proofs).await?;
    let ledgers = world(store.as_ref(), args.ledgers).await?;
    // The captures, spread over 01:00 to 21:00, each batch arriving at its last event's time
    // (within the day, so nothing closes yet).
    let total = u64::from(args.ledgers) * u64::from(args.captures);
    let span_us: i64 = 20 * 3_600_000_000;
    let mut batch = Vec::with_capacity(1000);
    for i in 0..total {
        let unit = 100_000 + (i % u64::from(args.ledgers)) as u32;
        batch.push(PaymentEvent {
            event_id: format!("e{i}"),
            kind: EventKind::Capture,
            msn: Msn::parse("msn", &unit.to_string()).map_err(err)?,
            psp_reference: format!("p{i}"),
            capture_psp_reference: None,
            reference: format!("order-{i}"),
            amount: 1_000 + (i % 97) as i64 * 100,
            currency: Currency::NOK,
            time: at(1, (i as i128 * span_us as i128 / total as i128) as i64)?,
            topic: None,
            payer: None,
        });
        if batch.len() == 1000 || i + 1 == total {
            let arrived = batch.last().map_or(clock_now(&clock), |e| e.time);
            clock.set(arrived);
            for o in store
                .ingest_events(std::mem::take(&mut batch), arrived)
                .await
                .map_err(err)?
            {
                if let EventOutcome::Rejected { rejection, .. } = o {
                    return Err(err(format!("an event was rejected: {rejection:?}")));
                }
            }
        }
    }
    // A minute into the next day: exactly the one day is due.
    let next = day.tomorrow().map_err(err)?;
    let close_at = oslo.to_timestamp(next.at(0, 1, 0, 0)).map_err(err)?;
    clock.set(close_at);
    let began = Instant::now();
    let mut periods = 0;
    for l in &ledgers {
        periods += store.close_due(l, close_at).await.map_err(err)?.len();
    }
    let secs = began.elapsed().as_secs_f64();
    if periods != ledgers.len() {
        return Err(err(format!(
            "{periods} periods closed, expected one per ledger ({})",
            ledgers.len()
        )));
    }
    drop(store);
    // The PostgreSQL database goes with `db`; the SQLite files once the pool has let go.
    drop(db);
    if let Some(file) = file {
        remove(&file);
    }
    Ok(secs)
}

fn clock_now(clock: &ManualClock) -> Timestamp {
    use ledgerport_core::clock::Clock;
    clock.now()
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
