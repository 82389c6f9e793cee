//! Runs a schedule against real stores: two handles ("servers") on one database, a manual clock,
//! the fault plan of each handle, and the checks of `checks.rs` after every step.

use crate::checks::{self, Observed};
use crate::schedule::{AccessOp, EventSpec, Landmark, Rng, Setup, Step};
use jiff::{SignedDuration, Timestamp, ToSpan};
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::entry::PayerDetails;
use ledgerport_core::ids::{LedgerId, Msn, Topic};
use ledgerport_core::world::{GrantScope, KeyKind, PartnerState, RowId, Topics};
use ledgerport_store::faults::{FaultKind, FaultPlan};
use ledgerport_store::postgres::PostgresStore;
use ledgerport_store::sqlite::SqliteStore;
use ledgerport_store::{Actor, EventOutcome, Store, StoreError};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::TestDatabase;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// The database a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in memory: one connection, so both servers are one handle.
    Memory,
    /// A SQLite file (reopened after every crash), at this path.
    File(PathBuf),
    /// A fresh PostgreSQL database on the server `DATABASE_URL` names.
    Postgres,
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::File(_) => "file",
            Backend::Postgres => "postgres",
        }
    }
}

/// What went wrong, at which step.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The index of the step after which a check failed (or during which the store failed).
    pub step: usize,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "after step {}: {}", self.step, self.message)
    }
}

/// Counts of one run, for the benchmarks.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub steps: u64,
    /// Payment events posted (redeliveries and retries included).
    pub events: u64,
    /// Where injected faults struck.
    pub fault_points: BTreeSet<String>,
    pub faults: u64,
    /// Closing runs made.
    pub closings: u64,
}

#[derive(Clone)]
enum Handle {
    Sqlite(Arc<SqliteStore>),
    Pg(Arc<PostgresStore>),
}

impl Handle {
    fn store(&self) -> &dyn Store {
        match self {
            Handle::Sqlite(s) => &**s,
            Handle::Pg(s) => &**s,
        }
    }

    fn faults(&self) -> Arc<FaultPlan> {
        match self {
            Handle::Sqlite(s) => s.fault_plan(),
            Handle::Pg(s) => s.fault_plan(),
        }
    }
}

/// A sales unit of the world: its MSN, whether it is a vm-number unit, its ledger (index).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unit {
    pub msn: u32,
    pub vm: bool,
    pub ledger: usize,
}

/// One simulated deployment.
pub struct Sim {
    pub backend: Backend,
    url: String,
    _pg: Option<TestDatabase>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) now: Timestamp,
    servers: [Handle; 2],
    pub(crate) setup: Setup,
    pub(crate) ledger_ids: Vec<LedgerId>,
    pub(crate) units: Vec<Unit>,
    pub(crate) partners: Vec<RowId>,
    pub(crate) merchants: Vec<RowId>,
    pub(crate) keys: Vec<RowId>,
    /// Every batch posted, with the answers it got.
    pub(crate) batches: Vec<(Vec<PaymentEvent>, Vec<EventOutcome>)>,
    /// Every event posted, in order.
    posted: Vec<PaymentEvent>,
    /// The first answer of every event id.
    pub(crate) answers: HashMap<String, EventOutcome>,
    /// What the accepted events moved, per ledger (index), by the engine's rules
    /// ([`checks::event_effect`]).
    pub(crate) moved: HashMap<usize, i128>,
    pub(crate) observed: Observed,
    pub stats: Stats,
    next_id: u64,
    step: usize,
    /// Whether crashes are injected (a replay leaves them out).
    faults_on: bool,
    /// Write statements the last step of each kind ran without a fault ([`kind_of`]).
    statements_of: HashMap<&'static str, u64>,
    /// Over a database a killed child wrote (and in that child): the conservation check waits
    /// until the whole schedule has been posted again (the child's events are in the database
    /// before the simulator has seen their answers), and events are made from the schedule
    /// alone, not from the payouts the database holds, so parent and child make the same event
    /// of each id (payout aborts then name made-up payouts).
    pub(crate) conservation_deferred: bool,
}

/// Whether to say on stderr what every step asks of the store (`SIM_TRACE=1`).
fn trace() -> bool {
    std::env::var_os("SIM_TRACE").is_some()
}

/// How long one step and its checks may take (`SIM_STEP_TIMEOUT_SECS`, 30 unless set); steps
/// take well under a second.
fn step_timeout() -> std::time::Duration {
    let secs = std::env::var("SIM_STEP_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    std::time::Duration::from_secs(secs)
}

fn fail(step: usize, message: impl Into<String>) -> Failure {
    Failure {
        step,
        message: message.into(),
    }
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

async fn open_handle(
    backend: &Backend,
    url: &str,
    clock: Arc<ManualClock>,
) -> Result<Handle, String> {
    match backend {
        Backend::Postgres => PostgresStore::open(url, clock)
            .await
            .map(|s| Handle::Pg(Arc::new(s)))
            .map_err(|e| format!("open {url}: {e:?}")),
        _ => SqliteStore::open(url, clock)
            .await
            .map(|s| Handle::Sqlite(Arc::new(s)))
            .map_err(|e| format!("open {url}: {e:?}")),
    }
}

impl Sim {
    /// A fresh database with the world of `setup`, clock at its start.
    pub async fn new(backend: Backend, setup: Setup, faults_on: bool) -> Result<Sim, Failure> {
        let start = t(setup.start);
        if trace() {
            eprintln!("sim: {setup:#?}");
        }
        let clock = Arc::new(ManualClock::new(start));
        let (url, pg) = match &backend {
            Backend::Memory => ("sqlite::memory:".to_owned(), None),
            Backend::File(path) => {
                for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                (format!("sqlite://{}", path.display()), None)
            }
            Backend::Postgres => {
                let db = TestDatabase::create().await;
                (db.url.clone(), Some(db))
            }
        };
        let first = open_handle(&backend, &url, clock.clone())
            .await
            .map_err(|e| fail(0, e))?;
        let second = match backend {
            Backend::Memory => first.clone(),
            _ => open_handle(&backend, &url, clock.clone())
                .await
                .map_err(|e| fail(0, e))?,
        };
        let mut sim = Sim {
            backend,
            url,
            _pg: pg,
            clock,
            now: start,
            servers: [first, second],
            setup,
            ledger_ids: Vec::new(),
            units: Vec::new(),
            partners: Vec::new(),
            merchants: Vec::new(),
            keys: Vec::new(),
            batches: Vec::new(),
            posted: Vec::new(),
            answers: HashMap::new(),
            moved: HashMap::new(),
            observed: Observed::default(),
            stats: Stats::default(),
            next_id: 0,
            step: 0,
            faults_on,
            statements_of: HashMap::new(),
            conservation_deferred: false,
        };
        sim.build_world().await?;
        Ok(sim)
    }

    /// Reopens a database the simulator did not make (the parent of a killed child): the
    /// world's ids are found again by building nothing.
    pub async fn reopen_existing(path: PathBuf, setup: Setup) -> Result<Sim, Failure> {
        let clock = Arc::new(ManualClock::new(t(setup.start)));
        let backend = Backend::File(path.clone());
        let url = format!("sqlite://{}", path.display());
        let first = open_handle(&backend, &url, clock.clone())
            .await
            .map_err(|e| fail(0, e))?;
        let second = open_handle(&backend, &url, clock.clone())
            .await
            .map_err(|e| fail(0, e))?;
        let mut sim = Sim {
            backend,
            url,
            _pg: None,
            clock,
            now: t(setup.start),
            servers: [first, second],
            setup,
            ledger_ids: Vec::new(),
            units: Vec::new(),
            partners: Vec::new(),
            merchants: Vec::new(),
            keys: Vec::new(),
            batches: Vec::new(),
            posted: Vec::new(),
            answers: HashMap::new(),
            moved: HashMap::new(),
            observed: Observed::default(),
            stats: Stats::default(),
            next_id: 0,
            step: 0,
            faults_on: false,
            statements_of: HashMap::new(),
            conservation_deferred: true,
        };
        sim.find_world().await?;
        Ok(sim)
    }

    /// Every check now, money conservation included: after a killed child's schedule has been
    /// run again whole.
    pub async fn check_all(&mut self) -> Result<(), Failure> {
        self.conservation_deferred = false;
        self.stats.steps += 1;
        checks::after_step(self, true).await
    }

    /// Server 0's store.
    pub(crate) fn store(&self) -> &dyn Store {
        self.servers[0].store()
    }

    fn world_builder(&self) -> WorldBuilder {
        let mut w = WorldBuilder::new().by("sim");
        for m in 0..self.setup.merchants {
            w = w.merchant(
                &format!("9{:08}", 10_000_000 + m * 7),
                &format!("Merchant {m}"),
            );
            w = w.merchant_keys(&format!("merchant-{m}"), KeyKind::MerchantLevel);
        }
        for l in &self.setup.ledgers {
            let org = format!("9{:08}", 10_000_000 + l.merchant * 7);
            w = w.of_merchant(&org);
            for (msn, vm) in &l.units {
                let m = msn.to_string();
                w = if *vm {
                    w.vm_unit(&m, &format!("{}", 50_000 + msn % 10_000))
                } else {
                    w.api_unit(&m)
                };
            }
            let msns: Vec<String> = l.units.iter().map(|(m, _)| m.to_string()).collect();
            let refs: Vec<&str> = msns.iter().map(String::as_str).collect();
            w = w
                .ledger(&l.id, &refs)
                .payout(l.frequency)
                .mode(l.mode)
                .cutoff(l.cutoff)
                .time_zone(l.time_zone)
                .currency(l.currency)
                .fees(l.basis_points, l.fixed_minor);
            for (msn, vm) in &l.units {
                if !vm {
                    w = w.unit_keys(&format!("unit-{msn}"), &msn.to_string());
                }
            }
        }
        for p in 0..self.setup.partners {
            w = w
                .partner(&format!("Partner {p}"))
                .partner_keys(&format!("partner-{p}-a"), KeyKind::Accounting)
                .partner_keys(&format!("partner-{p}-b"), KeyKind::Accounting);
        }
        w
    }

    async fn build_world(&mut self) -> Result<(), Failure> {
        let world = self
            .world_builder()
            .build(self.store())
            .await
            .map_err(|e| fail(0, format!("build the world: {e}")))?;
        self.merchants = world.merchants.iter().map(|m| m.id).collect();
        self.partners = world.partners.iter().map(|p| p.id).collect();
        self.find_world().await
    }

    /// The world's ids as stored.
    async fn find_world(&mut self) -> Result<(), Failure> {
        let s = self.servers[0].clone();
        let s = s.store();
        let err = |e: StoreError| fail(0, format!("read the world: {e}"));
        self.merchants = s
            .merchants()
            .await
            .map_err(err)?
            .iter()
            .map(|m| m.id)
            .collect();
        self.partners = s
            .partners()
            .await
            .map_err(err)?
            .iter()
            .map(|p| p.id)
            .collect();
        self.keys = s.keys().await.map_err(err)?.iter().map(|k| k.id).collect();
        self.ledger_ids = self
            .setup
            .ledgers
            .iter()
            .map(|l| LedgerId::parse("ledger", &l.id).map_err(|e| fail(0, e.to_string())))
            .collect::<Result<_, _>>()?;
        self.units = self
            .setup
            .ledgers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.units.iter().map(move |(msn, vm)| Unit {
                    msn: *msn,
                    vm: *vm,
                    ledger: i,
                })
            })
            .collect();
        Ok(())
    }

    /// Drops both handles and opens the database again, as a restarted server does. In memory
    /// the database is its connection, so the handle stays.
    async fn reopen(&mut self) -> Result<(), Failure> {
        if self.backend == Backend::Memory {
            return Ok(());
        }
        for i in 0..2 {
            self.servers[i] = open_handle(&self.backend, &self.url, self.clock.clone())
                .await
                .map_err(|e| fail(self.step, format!("reopen after a crash: {e}")))?;
        }
        Ok(())
    }

    fn set_clock(&mut self, to: Timestamp) {
        if to > self.now {
            self.now = to;
            self.clock.set(to);
        }
    }

    /// Runs one step and the checks after it.
    pub async fn step(&mut self, index: usize, step: &Step) -> Result<(), Failure> {
        self.step = index;
        self.stats.steps += 1;
        let limit = step_timeout();
        let access_too = matches!(step, Step::Access(_)) || index.is_multiple_of(4);
        let work = async {
            self.run_step(step, None).await?;
            checks::after_step(self, access_too).await
        };
        match tokio::time::timeout(limit, work).await {
            Ok(done) => done,
            // A step that never ends (a closing run that closes the same period again and again)
            // is a failure too.
            Err(_) => Err(fail(
                index,
                format!(
                    "the step did not finish within {}s: {step:?}",
                    limit.as_secs()
                ),
            )),
        }
    }

    /// Runs a step; `crash` arms a fault at that write statement of server 0 first.
    fn run_step<'a>(
        &'a mut self,
        step: &'a Step,
        crash: Option<(u64, FaultKind)>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Failure>> + 'a>> {
        Box::pin(async move {
            if let Some((nth, kind)) = crash {
                self.servers[0].faults().arm(nth, kind);
                self.servers[1].faults().arm(nth, kind);
            }
            let before = self.statements();
            let out = self.run_plain(step).await;
            for s in &self.servers {
                s.faults().disarm();
            }
            // How many write statements a step of this kind runs, learned from the last one
            // that ran without a fault (the handles are the same ones then).
            if crash.is_none() && !matches!(step, Step::Crash { .. }) && out.is_ok() {
                let after = self.statements();
                let ran = after
                    .iter()
                    .zip(before)
                    .map(|(a, b)| a.saturating_sub(b))
                    .max()
                    .unwrap_or(0);
                if ran > 0 {
                    self.statements_of.insert(kind_of(step), ran);
                }
            }
            out
        })
    }

    /// Write statements each server's handle has run (in memory both are one handle).
    fn statements(&self) -> [u64; 2] {
        [
            self.servers[0].faults().statements(),
            self.servers[1].faults().statements(),
        ]
    }

    async fn run_plain(&mut self, step: &Step) -> Result<(), Failure> {
        match step {
            Step::Advance { minutes } => {
                let to = self.now + SignedDuration::from_mins(*minutes);
                self.set_clock(to);
            }
            Step::Jump { to, offset_minutes } => {
                let target =
                    landmark_after(*to, self.now) + SignedDuration::from_mins(*offset_minutes);
                self.set_clock(target);
            }
            Step::Ingest {
                server,
                events,
                shuffle,
            } => {
                let batch = self.make_batch(events, *shuffle);
                self.ingest(usize::from(*server % 2), batch).await?;
            }
            Step::Redeliver { pick } => {
                if !self.batches.is_empty() {
                    let (events, first) = self.batches[*pick as usize % self.batches.len()].clone();
                    let again = self.ingest_raw(0, events.clone()).await?;
                    checks::same_answers(self.step, &events, &first, &again)?;
                }
            }
            Step::Close { server, ledger } => {
                let id = self.ledger_ids[usize::from(*ledger) % self.ledger_ids.len()].clone();
                self.close(usize::from(*server % 2), &id).await?;
            }
            Step::Race { events, shuffle } => {
                let batch = self.make_batch(events, *shuffle);
                if self.backend == Backend::Postgres {
                    self.race(batch).await?;
                } else {
                    // One writer per SQLite database: the two servers take turns.
                    self.ingest(0, batch).await?;
                    for id in self.ledger_ids.clone() {
                        self.close(1, &id).await?;
                    }
                }
            }
            Step::Crash { nth, after, then } => {
                let kind = if *after {
                    FaultKind::After
                } else {
                    FaultKind::Before
                };
                // The fault strikes among the statements a step of this kind really runs (as
                // many as the last one ran), so the last statements and the commit of a long
                // step are as likely to be hit as the first ones, and no crash is wasted on a
                // statement number the step never reaches.
                let nth = u64::from(*nth);
                let nth = match self.statements_of.get(kind_of(then)) {
                    Some(&n) if n > 0 => 1 + (nth - 1) % n,
                    _ => 1 + (nth - 1) % 40,
                };
                let crash = self.faults_on.then_some((nth, kind));
                self.run_step(then, crash).await?;
            }
            Step::Access(op) => self.access(*op).await?,
        }
        Ok(())
    }

    /// A store call on server `server`, again after a reopen whenever an injected fault made it
    /// fail (as a client posts a batch again, and the closing task runs again); any other
    /// error is a failure.
    async fn call<T, F>(&mut self, server: usize, what: &str, f: F) -> Result<T, Failure>
    where
        F: for<'s> Fn(
            &'s dyn Store,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = ledgerport_store::Result<T>> + Send + 's>,
        >,
    {
        loop {
            let handle = self.servers[server].clone();
            if trace() {
                eprintln!(
                    "sim: step {} server {server}: {what} at {}",
                    self.step, self.now
                );
            }
            match f(handle.store()).await {
                Ok(v) => return Ok(v),
                Err(e) => match handle.faults().take_fired() {
                    Some(point) => {
                        self.stats.faults += 1;
                        self.stats.fault_points.insert(point);
                        drop(handle);
                        self.reopen().await?;
                    }
                    None => return Err(fail(self.step, format!("{what}: {e:?}"))),
                },
            }
        }
    }

    async fn ingest_raw(
        &mut self,
        server: usize,
        events: Vec<PaymentEvent>,
    ) -> Result<Vec<EventOutcome>, Failure> {
        let now = self.now;
        self.stats.events += events.len() as u64;
        let outcomes = self
            .call(server, "ingest_events", |s| {
                let events = events.clone();
                Box::pin(async move { s.ingest_events(events, now).await })
            })
            .await?;
        if outcomes.len() != events.len() {
            return Err(fail(
                self.step,
                format!("{} events got {} answers", events.len(), outcomes.len()),
            ));
        }
        Ok(outcomes)
    }

    async fn ingest(&mut self, server: usize, events: Vec<PaymentEvent>) -> Result<(), Failure> {
        let outcomes = self.ingest_raw(server, events.clone()).await?;
        self.record(events, outcomes)
    }

    fn record(
        &mut self,
        events: Vec<PaymentEvent>,
        outcomes: Vec<EventOutcome>,
    ) -> Result<(), Failure> {
        for (e, o) in events.iter().zip(&outcomes) {
            if let Some(first) = self.answers.get(&e.event_id) {
                if first != o {
                    return Err(fail(
                        self.step,
                        format!(
                            "event {} answered {o:?}, the first time {first:?}",
                            e.event_id
                        ),
                    ));
                }
            } else {
                if let EventOutcome::Accepted { ledger_id, .. } = o {
                    let i = self
                        .ledger_ids
                        .iter()
                        .position(|l| l == ledger_id)
                        .ok_or_else(|| fail(self.step, format!("{o:?} names an unknown ledger")))?;
                    let of_unit = self
                        .units
                        .iter()
                        .find(|u| u.msn == e.msn.get())
                        .map(|u| u.ledger);
                    if of_unit != Some(i) {
                        return Err(fail(
                            self.step,
                            format!(
                                "event {} of unit {} was booked on ledger {ledger_id}",
                                e.event_id, e.msn
                            ),
                        ));
                    }
                    let l = &self.setup.ledgers[i];
                    *self.moved.entry(i).or_default() +=
                        checks::event_effect(l.basis_points, l.fixed_minor, e);
                }
                self.answers.insert(e.event_id.clone(), o.clone());
            }
        }
        self.posted.extend(events.iter().cloned());
        self.batches.push((events, outcomes));
        Ok(())
    }

    async fn close(&mut self, server: usize, id: &LedgerId) -> Result<(), Failure> {
        let now = self.now;
        self.stats.closings += 1;
        let owned = id.clone();
        self.call(server, "close_due", |s| {
            let id = owned.clone();
            Box::pin(async move { s.close_due(&id, now).await })
        })
        .await?;
        Ok(())
    }

    /// A batch on server 0 while server 1 closes every ledger, at once; then server 0 closes
    /// every ledger too, last first, so its closing runs meet server 1's on the same ledgers.
    async fn race(&mut self, events: Vec<PaymentEvent>) -> Result<(), Failure> {
        let now = self.now;
        let (a, b) = (self.servers[0].clone(), self.servers[1].clone());
        let ids = self.ledger_ids.clone();
        self.stats.events += events.len() as u64;
        self.stats.closings += 2 * ids.len() as u64;
        let ingest = async {
            let outcomes = a.store().ingest_events(events.clone(), now).await?;
            for id in ids.iter().rev() {
                a.store().close_due(id, now).await?;
            }
            Ok::<_, StoreError>(outcomes)
        };
        let closing = async {
            for id in &ids {
                b.store().close_due(id, now).await?;
            }
            Ok::<_, StoreError>(())
        };
        let (ingested, closed) = tokio::join!(ingest, closing);
        let fired = a.faults().take_fired().or(b.faults().take_fired());
        if let Some(point) = fired {
            self.stats.faults += 1;
            self.stats.fault_points.insert(point);
            self.reopen().await?;
            // Whatever failed is done again, one after the other.
            let outcomes = self.ingest_raw(0, events.clone()).await?;
            for id in &ids {
                self.close(1, id).await?;
            }
            return self.record(events, outcomes);
        }
        let outcomes = ingested.map_err(|e| {
            fail(
                self.step,
                format!("racing ingest and close on server 0: {e:?}"),
            )
        })?;
        closed.map_err(|e| fail(self.step, format!("racing close: {e:?}")))?;
        self.record(events, outcomes)
    }

    /// Turns specs into events: new ones a little (or, now and then, days) before the clock,
    /// or repeats of earlier events; then shuffles the batch.
    fn make_batch(&mut self, specs: &[EventSpec], shuffle: u64) -> Vec<PaymentEvent> {
        let payouts = if self.conservation_deferred {
            Vec::new()
        } else {
            self.observed.payouts.clone()
        };
        let mut out: Vec<PaymentEvent> = Vec::new();
        for spec in specs {
            if spec.duplicate && !(self.posted.is_empty() && out.is_empty()) {
                let n = self.posted.len() + out.len();
                let i = spec.pick as usize % n;
                let again = if i < self.posted.len() {
                    self.posted[i].clone()
                } else {
                    out[i - self.posted.len()].clone()
                };
                out.push(again);
                continue;
            }
            let ev = self.make_event(spec, &out, &payouts);
            out.push(ev);
        }
        let mut rng = Rng::new(shuffle);
        for i in (1..out.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            out.swap(i, j);
        }
        out
    }

    fn make_event(
        &mut self,
        spec: &EventSpec,
        batch: &[PaymentEvent],
        payouts: &[(LedgerId, String, i64)],
    ) -> PaymentEvent {
        let unit = self.units[usize::from(spec.unit) % self.units.len()];
        let ledger = &self.setup.ledgers[unit.ledger];
        let start = t(self.setup.start);
        let time = (self.now - SignedDuration::from_mins(spec.minutes_back)).max(start);
        let earlier = |kind: EventKind| -> Vec<&PaymentEvent> {
            self.posted
                .iter()
                .chain(batch.iter())
                .filter(|e| e.kind == kind && e.msn.get() == unit.msn)
                .collect()
        };
        let pick = spec.pick as usize;
        let captures = earlier(EventKind::Capture);
        let disputes = earlier(EventKind::DisputeRetained);
        let id = self.next_id;
        self.next_id += 1;
        let fresh = format!("psp-{id}");
        let captured = |fallback: &str| {
            if captures.is_empty() || pick.is_multiple_of(13) {
                fallback.to_owned()
            } else {
                captures[pick % captures.len()].psp_reference.clone()
            }
        };
        let (kind, psp, capture_psp, amount, topic) = match spec.kind {
            0..=8 => (EventKind::Capture, fresh.clone(), None, spec.amount, None),
            // A partial capture: another capture of an earlier payment.
            9 => (
                EventKind::Capture,
                captured(&fresh),
                None,
                spec.amount / 2 + 1,
                None,
            ),
            10..=11 => (
                EventKind::Refund,
                captured(&fresh),
                None,
                spec.amount / 3 + 1,
                None,
            ),
            12..=13 => (
                EventKind::Refund,
                format!("rf-{id}"),
                Some(captured(&fresh)),
                spec.amount / 3 + 1,
                None,
            ),
            14..=15 => (
                EventKind::DisputeRetained,
                captured(&fresh),
                None,
                spec.amount / 4 + 1,
                None,
            ),
            16 => match disputes.get(pick % disputes.len().max(1)) {
                Some(d) => (
                    EventKind::DisputeReturned,
                    d.psp_reference.clone(),
                    None,
                    spec.amount % d.amount + 1,
                    None,
                ),
                None => (
                    EventKind::DisputeReturned,
                    fresh.clone(),
                    None,
                    spec.amount,
                    None,
                ),
            },
            17 => (EventKind::TopUp, fresh.clone(), None, spec.amount, None),
            18 => (
                EventKind::ServiceFee,
                fresh.clone(),
                None,
                spec.amount / 10 + 1,
                None,
            ),
            19 => (
                EventKind::Correction,
                fresh.clone(),
                None,
                spec.amount - 100_000,
                Some(if pick.is_multiple_of(2) {
                    Topic::Funds
                } else {
                    Topic::Fees
                }),
            ),
            20 => (
                EventKind::CreditNote,
                fresh.clone(),
                None,
                spec.amount / 20 + 1,
                Some(if pick.is_multiple_of(3) {
                    Topic::Funds
                } else {
                    Topic::Fees
                }),
            ),
            _ => {
                let ledger_id = &self.ledger_ids[unit.ledger];
                let mine: Vec<&(LedgerId, String, i64)> =
                    payouts.iter().filter(|p| p.0 == *ledger_id).collect();
                match mine.get(pick % mine.len().max(1)) {
                    Some(p) if !pick.is_multiple_of(5) => {
                        (EventKind::PayoutAborted, p.1.clone(), None, p.2, None)
                    }
                    _ => (
                        EventKind::PayoutAborted,
                        format!("{ledger_id}-{}", 2_000_001 + pick % 4),
                        None,
                        spec.amount,
                        None,
                    ),
                }
            }
        };
        let payer = (unit.vm && kind == EventKind::Capture && pick.is_multiple_of(2)).then(|| {
            PayerDetails {
                name: format!("Payer {id}"),
                message: "takk".into(),
                masked_phone_no: "xxxx 1234".into(),
            }
        });
        PaymentEvent {
            event_id: format!("ev-{id}"),
            kind,
            msn: Msn::from_stored(i64::from(unit.msn)),
            psp_reference: psp,
            capture_psp_reference: capture_psp,
            reference: format!("ref-{id}"),
            amount,
            currency: ledger.currency,
            time,
            topic,
            payer,
        }
    }

    async fn access(&mut self, op: AccessOp) -> Result<(), Failure> {
        let by = Actor::new("sim");
        let now = self.now;
        let partner = |p: u8| self.partners[usize::from(p) % self.partners.len().max(1)];
        let ledger = |l: u8| self.ledger_ids[usize::from(l) % self.ledger_ids.len()].clone();
        let key = |k: u8| self.keys[usize::from(k) % self.keys.len().max(1)];
        // Refusals (a grant to a suspended partner, a grant that is there already, a state
        // change off the operator's paths) are answers, not failures.
        let refused = |r: ledgerport_store::Result<()>| match r {
            Err(StoreError::Database(e)) => Err(StoreError::Database(e)),
            _ => Ok(()),
        };
        match op {
            AccessOp::Grant {
                partner: p,
                ledger: l,
                scope,
            } => {
                let (p, l, scope) = (partner(p), ledger(l), scope_of(scope, now, &self.observed));
                self.call(0, "create_grant", |s| {
                    let (by, l) = (by.clone(), l.clone());
                    Box::pin(async move {
                        refused(s.create_grant(&by, p, &l, &scope).await.map(|_| ()))
                    })
                })
                .await
            }
            AccessOp::Rescope {
                partner: p,
                ledger: l,
                scope,
            } => {
                let (p, l, scope) = (partner(p), ledger(l), scope_of(scope, now, &self.observed));
                self.call(0, "set_grant_scope", |s| {
                    let (by, l) = (by.clone(), l.clone());
                    Box::pin(async move {
                        refused(s.set_grant_scope(&by, p, &l, &scope).await.map(|_| ()))
                    })
                })
                .await
            }
            AccessOp::Remove {
                partner: p,
                ledger: l,
            } => {
                let (p, l) = (partner(p), ledger(l));
                self.call(0, "remove_grant", |s| {
                    let (by, l) = (by.clone(), l.clone());
                    Box::pin(async move { refused(s.remove_grant(&by, p, &l).await.map(|_| ())) })
                })
                .await
            }
            AccessOp::Suspend { partner: p } | AccessOp::Reinstate { partner: p } => {
                let to = if matches!(op, AccessOp::Suspend { .. }) {
                    PartnerState::Suspended
                } else {
                    PartnerState::Approved
                };
                let p = partner(p);
                self.call(0, "set_partner_state", |s| {
                    let by = by.clone();
                    Box::pin(
                        async move { refused(s.set_partner_state(&by, p, to).await.map(|_| ())) },
                    )
                })
                .await
            }
            AccessOp::Regenerate { key: k } => {
                let k = key(k);
                let before = self
                    .store()
                    .key(k)
                    .await
                    .map_err(|e| fail(self.step, e.to_string()))?;
                let hash = [self.next_id as u8; 32];
                self.next_id += 1;
                self.call(0, "replace_secret", |s| {
                    let by = by.clone();
                    Box::pin(
                        async move { refused(s.replace_secret(&by, k, hash).await.map(|_| ())) },
                    )
                })
                .await?;
                if let Some(old) = before {
                    self.observed.old_keys.push(old);
                }
                Ok(())
            }
            AccessOp::Revoke { key: k } => {
                let k = key(k);
                self.call(0, "revoke_key", |s| {
                    let by = by.clone();
                    Box::pin(async move { refused(s.revoke_key(&by, k).await.map(|_| ())) })
                })
                .await
            }
        }
    }
}

/// The kind of a step, for counting the write statements such a step runs.
fn kind_of(step: &Step) -> &'static str {
    match step {
        Step::Advance { .. } | Step::Jump { .. } => "clock",
        Step::Ingest { .. } => "ingest",
        Step::Redeliver { .. } => "redeliver",
        Step::Close { .. } => "close",
        Step::Race { .. } => "race",
        Step::Crash { then, .. } => kind_of(then),
        Step::Access(_) => "access",
    }
}

/// A grant's scope: everything, one topic, a period of dates around what is closed, or an
/// expiry minutes to days away (which the clock will pass).
fn scope_of(pick: u8, now: Timestamp, observed: &Observed) -> GrantScope {
    let everything = GrantScope::EVERYTHING;
    let whole_micros = |t: Timestamp| {
        Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(Timestamp::UNIX_EPOCH)
    };
    match pick % 8 {
        0 | 1 => everything,
        2 => GrantScope {
            topics: Topics {
                funds: true,
                fees: false,
            },
            ..everything
        },
        3 => GrantScope {
            topics: Topics {
                funds: false,
                fees: true,
            },
            personal_data: false,
            ..everything
        },
        4 => GrantScope {
            from: observed.some_date,
            to: observed.some_date.map(|d| {
                ledgerport_core::ids::LedgerDate::from_date(
                    d.date().checked_add(3.days()).unwrap_or(d.date()),
                )
            }),
            ..everything
        },
        5 => GrantScope {
            expires_at: Some(whole_micros(now + SignedDuration::from_mins(30))),
            ..everything
        },
        6 => GrantScope {
            expires_at: Some(whole_micros(now + SignedDuration::from_hours(30))),
            ..everything
        },
        _ => GrantScope {
            expires_at: Some(whole_micros(now)),
            ..everything
        },
    }
}

/// The first instant of the landmark after `now`: the next European DST change (last Sunday
/// of March or October, 01:00 UTC), the next month's first day or the next year's, 00:00 in
/// Oslo.
fn landmark_after(to: Landmark, now: Timestamp) -> Timestamp {
    use jiff::civil::{Time, Weekday, date, time};
    use jiff::tz::TimeZone;
    let oslo = TimeZone::get("Europe/Oslo").unwrap_or(TimeZone::UTC);
    let here = oslo.to_datetime(now).date();
    let midnight = |d: jiff::civil::Date| {
        oslo.to_timestamp(d.to_datetime(Time::midnight()))
            .unwrap_or(now)
    };
    match to {
        Landmark::MonthEnd => midnight(here.last_of_month().tomorrow().unwrap_or(here)),
        Landmark::YearEnd => midnight(here.last_of_year().tomorrow().unwrap_or(here)),
        Landmark::DstChange => {
            let mut candidates = Vec::new();
            for year in [here.year(), here.year() + 1] {
                for month in [3, 10] {
                    let sunday = date(year, month, 1).nth_weekday_of_month(-1, Weekday::Sunday);
                    if let Ok(at) = sunday
                        .and_then(|d| TimeZone::UTC.to_timestamp(d.to_datetime(time(1, 0, 0, 0))))
                    {
                        candidates.push(at);
                    }
                }
            }
            candidates
                .into_iter()
                .filter(|c| *c > now)
                .min()
                .unwrap_or(now)
        }
    }
}
