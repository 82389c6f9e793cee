//! Fault injection for the deterministic simulator (`crates/sim`), compiled only with the cargo
//! feature `fault-injection` (off by default; the binary never enables it).
//!
//! Every statement a write of the store runs (inside a write transaction, or written on its own)
//! and every commit passes [`FaultPlan::before`]. Armed, the plan makes the `n`th of them fail:
//! [`FaultKind::Before`] fails it before it runs, so its transaction rolls back as when a
//! connection drops mid-transaction; [`FaultKind::After`] lets it run and then fails, which on a
//! commit is the worst case of a crash: the work is committed, the caller never hears so and
//! will try again. Unarmed, the plan only counts, so the simulator can pick the `n`th among the
//! statements an operation really runs.

use crate::StoreError;
use crate::error::DbError;
use std::sync::Mutex;

/// When an armed fault strikes its statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Before the statement runs: the transaction's work so far is lost.
    Before,
    /// After it ran: its effect stays in the transaction (and a commit is committed), but the
    /// caller gets an error.
    After,
}

/// The countdown of one store handle (each opened store has its own).
#[derive(Debug, Default)]
pub struct FaultPlan {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Write statements (and commits) seen since the store was opened.
    seen: u64,
    /// The statement number that fails, and how.
    armed: Option<(u64, FaultKind)>,
    /// Where the last fault struck, until taken.
    fired: Option<String>,
}

impl FaultPlan {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms a fault at the `nth` write statement from now (1: the next one).
    pub fn arm(&self, nth: u64, kind: FaultKind) {
        let mut i = self.lock();
        i.armed = Some((i.seen + nth.max(1), kind));
    }

    /// Takes the fault back if it has not struck yet.
    pub fn disarm(&self) {
        self.lock().armed = None;
    }

    /// How many write statements and commits the store has run.
    pub fn statements(&self) -> u64 {
        self.lock().seen
    }

    /// The fault point (statement and kind) where the armed fault struck, once.
    pub fn take_fired(&self) -> Option<String> {
        self.lock().fired.take()
    }

    /// Counts a statement about to run; an error when the fault strikes before it, `true` when
    /// it strikes after it (the caller runs it, then calls [`FaultPlan::after`]).
    pub(crate) fn before(&self, sql: &str) -> Result<bool, StoreError> {
        let mut i = self.lock();
        i.seen += 1;
        match i.armed {
            Some((n, kind)) if n == i.seen => {
                i.armed = None;
                if kind == FaultKind::Before {
                    let point = point(sql, kind);
                    i.fired = Some(point.clone());
                    return Err(injected(&point));
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The error of a fault that strikes after its statement ran.
    pub(crate) fn after(&self, sql: &str) -> StoreError {
        let point = point(sql, FaultKind::After);
        self.lock().fired = Some(point.clone());
        injected(&point)
    }
}

/// A fault point: the statement's opening words and the kind of fault, e.g.
/// `after: INSERT INTO entries (ledger_id, topic`.
fn point(sql: &str, kind: FaultKind) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(6).collect();
    let kind = match kind {
        FaultKind::Before => "before",
        FaultKind::After => "after",
    };
    format!("{kind}: {}", words.join(" "))
}

fn injected(point: &str) -> StoreError {
    StoreError::Database(DbError(Box::new(std::io::Error::other(format!(
        "injected fault ({point})"
    )))))
}
