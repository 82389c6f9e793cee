//! What one seed means: the world (ledgers of every frequency, cutoff, time zone and settlement
//! mode; units; partners and keys) and a schedule of steps (payment events, closing runs, clock
//! moves, faults, access churn). Steps name what they touch by index and resolve against the
//! state when they run, so any sub-list of a schedule is still a schedule: that is what
//! shrinking needs.

use ledgerport_core::ids::Currency;
use ledgerport_core::world::{PayoutFrequency, SettlementMode};

/// SplitMix64: small, fast, and the same numbers on every platform and in every version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One ledger of the world.
#[derive(Debug, Clone)]
pub struct LedgerPlan {
    pub id: String,
    /// The merchant (index) owning it.
    pub merchant: usize,
    /// Its units: (MSN, vm-number unit?).
    pub units: Vec<(u32, bool)>,
    pub frequency: PayoutFrequency,
    pub mode: SettlementMode,
    pub cutoff: &'static str,
    pub time_zone: &'static str,
    pub currency: Currency,
    pub basis_points: i64,
    pub fixed_minor: i64,
}

/// The world of a seed.
#[derive(Debug, Clone)]
pub struct Setup {
    /// When the world is made and the clock starts: a few days before a daylight-saving change,
    /// a month end or a year end.
    pub start: &'static str,
    pub merchants: usize,
    pub ledgers: Vec<LedgerPlan>,
    /// Accounting partners (each approved, with two accounting keys).
    pub partners: usize,
}

/// Starting points: before Europe's clocks go forward, before they go back, before a year end,
/// before a leap-year February ends.
const STARTS: [&str; 4] = [
    "2024-03-28T09:00:00Z",
    "2024-10-24T09:00:00Z",
    "2024-12-27T09:00:00Z",
    "2024-02-26T09:00:00Z",
];
const CUTOFFS: [&str; 4] = ["00:00", "04:00", "02:30", "23:30"];
const ZONES: [&str; 4] = [
    "Europe/Oslo",
    "Europe/Helsinki",
    "Europe/Copenhagen",
    "America/New_York",
];

impl Setup {
    pub fn of_seed(rng: &mut Rng) -> Setup {
        let start = *rng.pick(&STARTS);
        let merchants = rng.range(1, 3) as usize;
        let n = rng.range(3, 6) as usize;
        let mut ledgers = Vec::with_capacity(n);
        let mut msn = 200_000u32;
        for i in 0..n {
            // The first three cover every frequency; modes, cutoffs and zones vary.
            let frequency = match i {
                0 => PayoutFrequency::Daily,
                1 => PayoutFrequency::Weekly,
                2 => PayoutFrequency::Monthly,
                _ => *rng.pick(&[
                    PayoutFrequency::Daily,
                    PayoutFrequency::Weekly,
                    PayoutFrequency::Monthly,
                ]),
            };
            let mode = if i % 2 == 0 {
                SettlementMode::Net
            } else {
                SettlementMode::Gross
            };
            let unit_count = rng.range(1, 2) as usize;
            let mut units = Vec::new();
            for _ in 0..unit_count {
                msn += 1 + rng.below(5) as u32;
                units.push((msn, rng.chance(30)));
            }
            ledgers.push(LedgerPlan {
                id: format!("{}", 700_001 + i),
                merchant: i % merchants,
                units,
                frequency,
                mode,
                cutoff: CUTOFFS[rng.below(CUTOFFS.len() as u64) as usize],
                time_zone: ZONES[rng.below(ZONES.len() as u64) as usize],
                currency: *rng.pick(&[Currency::NOK, Currency::DKK, Currency::EUR]),
                basis_points: rng.range(0, 300),
                fixed_minor: rng.range(0, 2) * 100,
            });
        }
        Setup {
            start,
            merchants,
            ledgers,
            partners: rng.range(1, 3) as usize,
        }
    }
}

/// One payment event to make, resolved against what was posted before when it runs.
#[derive(Debug, Clone)]
pub struct EventSpec {
    /// Which kind (weighted: see `run::make_event`).
    pub kind: u8,
    /// Which unit, over all ledgers' units.
    pub unit: u16,
    pub amount: i64,
    /// How long before the clock the event happened: now and then days, so it lands on a
    /// closed date.
    pub minutes_back: i64,
    /// Which earlier capture, dispute or payout it refers to, or which earlier event it repeats.
    pub pick: u32,
    /// Delivered again: an earlier event, verbatim.
    pub duplicate: bool,
}

/// A change of the access world.
#[derive(Debug, Clone, Copy)]
pub enum AccessOp {
    /// Grant a ledger to a partner, within a scope (picked by `scope`).
    Grant {
        partner: u8,
        ledger: u8,
        scope: u8,
    },
    /// Change a grant's scope: narrower, wider, or expiring soon.
    Rescope {
        partner: u8,
        ledger: u8,
        scope: u8,
    },
    Remove {
        partner: u8,
        ledger: u8,
    },
    Suspend {
        partner: u8,
    },
    Reinstate {
        partner: u8,
    },
    Regenerate {
        key: u8,
    },
    Revoke {
        key: u8,
    },
}

/// Where the clock jumps: just before or after a landmark.
#[derive(Debug, Clone, Copy)]
pub enum Landmark {
    /// The next change of daylight-saving time in Europe.
    DstChange,
    MonthEnd,
    YearEnd,
}

/// One step of a schedule.
#[derive(Debug, Clone)]
pub enum Step {
    /// The clock moves on.
    Advance {
        minutes: i64,
    },
    /// The clock jumps to a landmark, `offset_minutes` around it (never backwards).
    Jump {
        to: Landmark,
        offset_minutes: i64,
    },
    /// A batch of payment events, shuffled, through server 0 or 1.
    Ingest {
        server: u8,
        events: Vec<EventSpec>,
        shuffle: u64,
    },
    /// An earlier batch delivered again, whole: its answers must be the first ones.
    Redeliver {
        pick: u32,
    },
    /// A closing run of one ledger through server 0 or 1.
    Close {
        server: u8,
        ledger: u8,
    },
    /// Both servers at once: a batch, then every ledger's closing run (last ledger first), on
    /// one, and every ledger's closing run on the other, so closing meets ingestion and
    /// closing meets closing on the same ledgers (PostgreSQL; on SQLite they take turns).
    Race {
        events: Vec<EventSpec>,
        shuffle: u64,
    },
    /// A write statement (or commit) of the step `then` fails (`after`: once it has run; on a
    /// commit, committed but unanswered); the store is reopened and the step retried. Which
    /// one: the `nth`, counted round as many statements as the last step of its kind ran
    /// without a fault (`run::Sim`), so every statement of a step, its commit included, can be
    /// hit.
    Crash {
        nth: u8,
        after: bool,
        then: Box<Step>,
    },
    Access(AccessOp),
}

fn event_spec(rng: &mut Rng, units: usize) -> EventSpec {
    EventSpec {
        kind: rng.below(24) as u8,
        unit: rng.below(units as u64) as u16,
        amount: rng.range(1, 200_000),
        minutes_back: if rng.chance(8) {
            rng.range(1_440, 8_000)
        } else {
            rng.range(0, 600)
        },
        pick: rng.next_u64() as u32,
        duplicate: rng.chance(10),
    }
}

fn events(rng: &mut Rng, units: usize) -> Vec<EventSpec> {
    let n = if rng.chance(10) {
        rng.range(20, 60)
    } else {
        rng.range(0, 10)
    };
    (0..n).map(|_| event_spec(rng, units)).collect()
}

fn plain_step(rng: &mut Rng, setup: &Setup, units: usize) -> Step {
    let ledgers = setup.ledgers.len() as u64;
    match rng.below(100) {
        0..=39 => Step::Ingest {
            server: rng.below(2) as u8,
            events: events(rng, units),
            shuffle: rng.next_u64(),
        },
        40..=56 => Step::Advance {
            minutes: if rng.chance(75) {
                rng.range(0, 240)
            } else {
                rng.range(240, 3_000)
            },
        },
        57..=59 => Step::Jump {
            to: *rng.pick(&[Landmark::DstChange, Landmark::MonthEnd, Landmark::YearEnd]),
            offset_minutes: rng.range(-180, 180),
        },
        60..=69 => Step::Close {
            server: rng.below(2) as u8,
            ledger: rng.below(ledgers) as u8,
        },
        70..=73 => Step::Redeliver {
            pick: rng.next_u64() as u32,
        },
        74..=79 => Step::Race {
            events: events(rng, units),
            shuffle: rng.next_u64(),
        },
        _ => Step::Access(access_op(rng, setup)),
    }
}

fn access_op(rng: &mut Rng, setup: &Setup) -> AccessOp {
    let partner = rng.below(setup.partners as u64) as u8;
    let ledger = rng.below(setup.ledgers.len() as u64) as u8;
    let scope = rng.below(8) as u8;
    match rng.below(12) {
        0..=3 => AccessOp::Grant {
            partner,
            ledger,
            scope,
        },
        4..=5 => AccessOp::Rescope {
            partner,
            ledger,
            scope,
        },
        6..=7 => AccessOp::Remove { partner, ledger },
        8 => AccessOp::Suspend { partner },
        9 => AccessOp::Reinstate { partner },
        10 => AccessOp::Regenerate {
            key: rng.below(32) as u8,
        },
        _ => AccessOp::Revoke {
            key: rng.below(32) as u8,
        },
    }
}

/// The schedule of a seed: `len` steps, about one in eight with a crash at one of its writes.
pub fn schedule(rng: &mut Rng, setup: &Setup, len: usize) -> Vec<Step> {
    let units: usize = setup.ledgers.iter().map(|l| l.units.len()).sum();
    (0..len)
        .map(|_| {
            let step = plain_step(rng, setup, units);
            if rng.chance(12) && !matches!(step, Step::Advance { .. } | Step::Jump { .. }) {
                Step::Crash {
                    nth: rng.range(1, 255) as u8,
                    after: rng.chance(50),
                    then: Box::new(step),
                }
            } else {
                step
            }
        })
        .collect()
}
