//! The store contract (`ledgerport_testkit::contract`) on the SQLite backend, one fresh in-memory
//! database per test.

use ledgerport_core::clock::ManualClock;
use ledgerport_store::sqlite::SqliteStore;
use ledgerport_testkit::contract::contract_now;
use std::sync::Arc;

async fn fresh_store() -> SqliteStore {
    let clock = Arc::new(ManualClock::new(contract_now()));
    match SqliteStore::open("sqlite::memory:", clock).await {
        Ok(store) => store,
        Err(e) => panic!("open an in-memory SQLite store: {e:?}"),
    }
}

ledgerport_testkit::store_contract_tests!(fresh_store());
