//! `ledgerport-sim`: the simulator's command line (SIMULATION.md).
//!
//! ```text
//! ledgerport-sim replay  --seed N [--steps N] [--backend memory|file|postgres]
//! ledgerport-sim explore --budget-secs N [--steps N] [--backends memory,file,postgres] [--seed N]
//! ledgerport-sim kill    --seed N [--rounds N] [--steps N]
//! ledgerport-sim child   --seed N --db PATH [--steps N]     (run by `kill`)
//! ```
//!
//! `explore` runs new seeds (from the time, printed) until its budget is spent; `kill` runs a
//! seed's schedule in a child process on a SQLite file, kills it with SIGKILL at a random
//! moment, reopens the file, runs the schedule again over it and checks everything.

use ledgerport_sim::run::{Backend, Sim, Stats};
use ledgerport_sim::{
    DEFAULT_STEPS, plan, replay_command, report_failure, run_and_report, run_seed,
};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{name}: {v:?} is not a whole number")),
        }
    }
}

fn backend(name: &str, seed: u64) -> Result<Backend, String> {
    match name {
        "memory" => Ok(Backend::Memory),
        "file" => Ok(Backend::File(temp_db(seed))),
        "postgres" => {
            if ledgerport_testkit::testing::postgres_from_env().is_none() {
                return Err("--backend postgres: set DATABASE_URL to a PostgreSQL server".into());
            }
            Ok(Backend::Postgres)
        }
        other => Err(format!(
            "--backend: {other:?} is not memory, file or postgres"
        )),
    }
}

fn temp_db(seed: u64) -> PathBuf {
    std::env::temp_dir().join(format!("ledgerport-sim-{}-{seed}.db", std::process::id()))
}

fn remove_db(path: &std::path::Path) {
    for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn main() -> ExitCode {
    let args = Args(std::env::args().skip(1).collect());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ledgerport-sim: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.0.first().map(String::as_str) {
        Some("replay") => rt.block_on(replay(&args)),
        Some("explore") => rt.block_on(explore(&args)),
        Some("kill") => rt.block_on(kill(&args)),
        Some("child") => rt.block_on(child(&args)),
        _ => Err(
            "usage: ledgerport-sim replay|explore|kill|child [options] (see SIMULATION.md)".into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            eprintln!("{report}");
            ExitCode::FAILURE
        }
    }
}

async fn replay(args: &Args) -> Result<(), String> {
    let seed = args
        .value("--seed")
        .ok_or("--seed: which seed to replay")?
        .parse::<u64>()
        .map_err(|_| "--seed: a whole number")?;
    let steps = args.number("--steps", DEFAULT_STEPS as u64)? as usize;
    let b = backend(args.value("--backend").unwrap_or("memory"), seed)?;
    let out = run_and_report(&b, seed, steps).await;
    if let Backend::File(p) = &b {
        remove_db(p);
    }
    let stats = out?;
    println!(
        "seed {seed} on {}: {} steps, {} events, {} faults at {} points: all checks held",
        b.name(),
        stats.steps,
        stats.events,
        stats.faults,
        stats.fault_points.len()
    );
    Ok(())
}

/// New seeds until the budget is spent, round the backends.
async fn explore(args: &Args) -> Result<(), String> {
    let budget = Duration::from_secs(args.number("--budget-secs", 180)?);
    let steps = args.number("--steps", DEFAULT_STEPS as u64)? as usize;
    let first = match args.value("--seed") {
        Some(s) => s.parse::<u64>().map_err(|_| "--seed: a whole number")?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    let mut names: Vec<String> = args
        .value("--backends")
        .unwrap_or("memory,file")
        .split(',')
        .map(str::to_owned)
        .collect();
    if args.value("--backends").is_none()
        && ledgerport_testkit::testing::postgres_from_env().is_some()
    {
        names.push("postgres".into());
    }
    println!(
        "ledgerport-sim explore: seeds from {first} on, {steps} steps each, on {} for {}s",
        names.join(", "),
        budget.as_secs()
    );
    let started = Instant::now();
    let mut total = Stats::default();
    let mut points = BTreeSet::new();
    let mut seeds = 0u64;
    let mut per_backend: Vec<(String, u64, u64, Duration)> = Vec::new();
    while started.elapsed() < budget {
        let seed = first.wrapping_add(seeds);
        let name = &names[(seeds % names.len() as u64) as usize];
        let b = backend(name, seed)?;
        let t0 = Instant::now();
        let out = run_seed(&b, seed, steps).await;
        let stats = match out {
            Ok(stats) => stats,
            Err(first) => {
                let found = started.elapsed();
                let report = report_failure(&b, seed, steps, first).await;
                if let Backend::File(p) = &b {
                    remove_db(p);
                }
                return Err(format!(
                    "{report}found in {:.1}s, after {seeds} seeds passed",
                    found.as_secs_f64()
                ));
            }
        };
        if let Backend::File(p) = &b {
            remove_db(p);
        }
        let took = t0.elapsed();
        match per_backend.iter_mut().find(|(n, ..)| n == name) {
            Some(e) => {
                e.1 += 1;
                e.2 += stats.events;
                e.3 += took;
            }
            None => per_backend.push((name.clone(), 1, stats.events, took)),
        }
        total.events += stats.events;
        total.steps += stats.steps;
        total.faults += stats.faults;
        total.closings += stats.closings;
        points.extend(stats.fault_points);
        seeds += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ledgerport-sim explore: {seeds} seeds passed in {secs:.0}s: {} steps, {} events ({:.0} events/s), \
         {} closing runs, {} faults injected at {} distinct fault points",
        total.steps,
        total.events,
        total.events as f64 / secs.max(0.001),
        total.closings,
        total.faults,
        points.len()
    );
    for (name, n, events, took) in per_backend {
        println!(
            "  {name}: {n} seeds, {events} events in {:.1}s ({:.0} events/s)",
            took.as_secs_f64(),
            events as f64 / took.as_secs_f64().max(0.001)
        );
    }
    if std::env::var_os("SIM_LIST_FAULT_POINTS").is_some() {
        for p in points {
            println!("  fault point: {p}");
        }
    }
    Ok(())
}

/// The child of `kill`: runs the seed's schedule on an existing database file until killed.
async fn child(args: &Args) -> Result<(), String> {
    let seed = args.number("--seed", 1)?;
    let steps = args.number("--steps", DEFAULT_STEPS as u64)? as usize;
    let db = PathBuf::from(args.value("--db").ok_or("--db: the database file")?);
    let (setup, schedule) = plan(seed, steps);
    let mut sim = Sim::reopen_existing(db, setup)
        .await
        .map_err(|f| f.to_string())?;
    for (i, s) in schedule.iter().enumerate() {
        sim.step(i, s).await.map_err(|f| f.to_string())?;
    }
    Ok(())
}

/// Kills a child running the seed at a random moment, `--rounds` times, and checks the file.
async fn kill(args: &Args) -> Result<(), String> {
    let seed = args.number("--seed", 1)?;
    let rounds = args.number("--rounds", 3)?;
    let steps = args.number("--steps", DEFAULT_STEPS as u64)? as usize;
    for round in 0..rounds {
        let s = seed.wrapping_add(round);
        let path = temp_db(s);
        kill_round(s, steps, &path).await.map_err(|e| {
            format!(
                "{e}\nreplay: cargo run -p ledgerport-sim -- kill --seed {s} --rounds 1 --steps {steps}"
            )
        })?;
        remove_db(&path);
    }
    println!("ledgerport-sim kill: {rounds} rounds from seed {seed}: every killed database held");
    Ok(())
}

pub async fn kill_round(seed: u64, steps: usize, path: &std::path::Path) -> Result<(), String> {
    let (setup, schedule) = plan(seed, steps);
    // The world is built before the child starts, so a kill finds it whole.
    drop(
        Sim::new(Backend::File(path.to_path_buf()), setup.clone(), false)
            .await
            .map_err(|f| format!("seed {seed}: build the world: {f}"))?,
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .args([
            "child",
            "--seed",
            &seed.to_string(),
            "--steps",
            &steps.to_string(),
            "--db",
        ])
        .arg(path)
        .spawn()
        .map_err(|e| format!("start the child: {e}"))?;
    let wait_ms = 50 + ledgerport_sim::schedule::Rng::new(seed).below(1_500);
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    // SIGKILL: no destructor, no rollback, no flush runs in the child.
    let _ = child.kill();
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        println!("seed {seed}: the child finished before the kill at {wait_ms} ms");
    } else if status.code().is_some() {
        return Err(format!(
            "seed {seed}: the child failed by itself ({status}); replay: {}",
            replay_command(&Backend::File(path.to_path_buf()), seed, steps)
        ));
    }
    // What the killed child left must hold, and running the whole schedule again over it (every
    // batch posted again, every closing run again) must hold after every step.
    let mut sim = Sim::reopen_existing(path.to_path_buf(), setup)
        .await
        .map_err(|f| format!("seed {seed}: reopen after the kill at {wait_ms} ms: {f}"))?;
    for (i, s) in schedule.iter().enumerate() {
        sim.step(i, s)
            .await
            .map_err(|f| format!("seed {seed}, killed at {wait_ms} ms, then {f}"))?;
    }
    sim.check_all()
        .await
        .map_err(|f| format!("seed {seed}, killed at {wait_ms} ms, at the end: {f}"))
}
