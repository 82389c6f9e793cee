//! The deterministic simulator of settlement and access (SIMULATION.md).
//!
//! One `u64` seed makes a world ([`schedule::Setup`]) and a schedule of steps
//! ([`schedule::Step`]): batches of payment events of every kind, duplicated, reordered and late;
//! closing runs on two store handles ("servers") on one database; clock moves across
//! daylight-saving changes, month and year ends; a crash at a chosen write statement of a step
//! (the store's `fault-injection` hook), after which the database is reopened and the step done
//! again; and access churn. [`run::Sim`] runs it against the real store and engine, and
//! [`checks`] checks everything after every step. A failure is shrunk to a short schedule
//! ([`shrink`]) and reported with the one command that replays it ([`replay_command`]).

pub mod checks;
pub mod run;
pub mod schedule;

use run::{Backend, Failure, Sim, Stats};
use schedule::{Rng, Setup, Step};

/// Steps of a seed's schedule unless told otherwise.
pub const DEFAULT_STEPS: usize = 120;

/// The world and schedule of `seed`.
pub fn plan(seed: u64, steps: usize) -> (Setup, Vec<Step>) {
    let mut rng = Rng::new(seed);
    let setup = Setup::of_seed(&mut rng);
    let schedule = schedule::schedule(&mut rng, &setup, steps);
    (setup, schedule)
}

/// Runs `schedule` on a fresh database; the first failure, or the run's counts.
pub async fn run_schedule(
    backend: &Backend,
    setup: &Setup,
    schedule: &[Step],
    faults: bool,
) -> Result<(Stats, Vec<u64>), Failure> {
    let mut sim = Sim::new(backend.clone(), setup.clone(), faults).await?;
    for (i, step) in schedule.iter().enumerate() {
        sim.step(i, step).await?;
    }
    Ok((sim.stats.clone(), std::mem::take(&mut sim.observed.digests)))
}

/// A schedule with its crashes taken out and its races run one after the other: what the same
/// steps must come to without faults.
fn without_faults(schedule: &[Step]) -> Vec<Step> {
    schedule
        .iter()
        .map(|s| match s {
            Step::Crash { then, .. } => (**then).clone(),
            other => other.clone(),
        })
        .collect()
}

/// Runs a seed: the schedule with its faults, then a prefix of it again on a fresh database
/// in memory without faults, which must come to the same entries after every step of the
/// prefix (replaying any prefix of the log gives the same state; a crash changes nothing).
pub async fn run_seed(backend: &Backend, seed: u64, steps: usize) -> Result<Stats, Failure> {
    let (setup, schedule) = plan(seed, steps);
    check_schedule(backend, &setup, &schedule, seed).await
}

/// [`run_seed`] for a given schedule (shrinking runs sub-schedules).
pub async fn check_schedule(
    backend: &Backend,
    setup: &Setup,
    schedule: &[Step],
    seed: u64,
) -> Result<Stats, Failure> {
    let (stats, digests) = run_schedule(backend, setup, schedule, true).await?;
    if schedule.is_empty() {
        return Ok(stats);
    }
    let k = 1 + Rng::new(seed ^ 0x5EED).below(schedule.len() as u64) as usize;
    let (_, again) = run_schedule(
        &Backend::Memory,
        setup,
        &without_faults(&schedule[..k]),
        false,
    )
    .await?;
    for (i, (a, b)) in digests.iter().zip(&again).enumerate() {
        if a != b {
            return Err(Failure {
                step: i,
                message: format!(
                    "replaying the first {k} steps without faults on a fresh database gives \
                     other entries after step {i}"
                ),
            });
        }
    }
    Ok(stats)
}

/// How long shrinking may take (`SIM_SHRINK_SECS`, 120 unless set).
fn shrink_time() -> std::time::Duration {
    let secs = std::env::var("SIM_SHRINK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    std::time::Duration::from_secs(secs)
}

/// Drops steps while the schedule still fails (halves, then quarters, ... then single steps),
/// at most `tries` runs; the shortest failing schedule and its failure.
pub async fn shrink(
    backend: &Backend,
    setup: &Setup,
    schedule: Vec<Step>,
    seed: u64,
    first: Failure,
    tries: usize,
) -> (Vec<Step>, Failure) {
    // Nothing after the failing step matters.
    let mut best: Vec<Step> = schedule.into_iter().take(first.step + 1).collect();
    let mut failure = first;
    let mut runs = 0;
    let mut chunk = best.len().div_ceil(2).max(1);
    // A budget of time as well as of runs: a failure that is a hang costs a step timeout a run.
    let deadline = std::time::Instant::now() + shrink_time();
    let more = |runs: usize| runs < tries && std::time::Instant::now() < deadline;
    while chunk >= 1 && more(runs) {
        let mut start = 0;
        let mut shrunk = false;
        while start < best.len() && more(runs) {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.len());
            candidate.drain(start..end);
            runs += 1;
            match check_schedule(backend, setup, &candidate, seed).await {
                Err(f) => {
                    best = candidate.into_iter().take(f.step + 1).collect();
                    failure = f;
                    shrunk = true;
                }
                Ok(_) => start += chunk,
            }
        }
        if !shrunk {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    (best, failure)
}

/// The one command that replays a seed.
pub fn replay_command(backend: &Backend, seed: u64, steps: usize) -> String {
    let db = match backend {
        Backend::Postgres => "DATABASE_URL=postgres://postgres@127.0.0.1:5432/test ",
        _ => "",
    };
    format!(
        "{db}cargo run -p ledgerport-sim -- replay --seed {seed} --steps {steps} --backend {}",
        backend.name()
    )
}

/// Runs a seed and, on failure, shrinks it and says how to replay it: the report to print.
pub async fn run_and_report(backend: &Backend, seed: u64, steps: usize) -> Result<Stats, String> {
    match run_seed(backend, seed, steps).await {
        Ok(stats) => Ok(stats),
        Err(first) => Err(report_failure(backend, seed, steps, first).await),
    }
}

/// Shrinks a failing seed's schedule; the report: the failure, the command that replays the
/// seed, and the shrunk schedule.
pub async fn report_failure(backend: &Backend, seed: u64, steps: usize, first: Failure) -> String {
    let (setup, schedule) = plan(seed, steps);
    let (short, failure) = shrink(backend, &setup, schedule, seed, first.clone(), 60).await;
    let mut report = format!(
        "simulation failed: seed {seed} on {} {first}\nreplay: {}\nshrunk to {} steps, {failure}:\n",
        backend.name(),
        replay_command(backend, seed, steps),
        short.len()
    );
    for (i, s) in short.iter().enumerate() {
        report.push_str(&format!("  {i:3} {s:?}\n"));
    }
    report
}
