//! The store contract (`ledgerport_testkit::contract`) on the PostgreSQL backend, one fresh
//! database per test on the server `DATABASE_URL` names. Without `DATABASE_URL` every test is
//! ignored (a machine with only the Rust toolchain runs the SQLite suite); run with
//! `--include-ignored` but without it, each fails saying what to set.

use ledgerport_core::clock::ManualClock;
use ledgerport_testkit::contract::contract_now;
use ledgerport_testkit::testing::{TestStore, fresh_postgres_store};
use std::sync::Arc;

async fn fresh_store() -> TestStore {
    fresh_postgres_store(Arc::new(ManualClock::new(contract_now()))).await
}

ledgerport_testkit::store_contract_tests!(
    fresh_store(),
    #[ignore = "needs DATABASE_URL naming PostgreSQL"]
);
