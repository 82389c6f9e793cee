//! The store contract ([`ledgerport_store::contract`]) on the PostgreSQL backend, one fresh
//! database per test on the server `DATABASE_URL` names. Without `DATABASE_URL` each test says
//! it was skipped and passes: a machine with only the Rust toolchain runs the SQLite suite.

use ledgerport_core::clock::ManualClock;
use ledgerport_store::contract::contract_now;
use ledgerport_store::testing::{TestStore, fresh_postgres_store};
use std::sync::Arc;

/// A fresh PostgreSQL store, or a SQLite one standing in when there is no PostgreSQL (the
/// contract is then already run by `sqlite_contract`; this keeps the test bodies one shape).
async fn fresh_store() -> TestStore {
    let clock = Arc::new(ManualClock::new(contract_now()));
    match fresh_postgres_store(clock.clone(), "postgres_contract").await {
        Some(s) => s,
        None => ledgerport_store::testing::fresh_store(clock).await,
    }
}

ledgerport_store::store_contract_tests!(fresh_store());
