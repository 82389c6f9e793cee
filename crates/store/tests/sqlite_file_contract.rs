//! The store contract (`ledgerport_testkit::contract`) on the SQLite backend, one fresh database
//! file per test: on a file the hot reads (keys, ledgers, pages) are stepped on the caller's
//! thread (`sqlite::direct`), on `sqlite::memory:` (`sqlite_contract.rs`) they go through sqlx.

use ledgerport_core::clock::ManualClock;
use ledgerport_testkit::contract::contract_now;
use ledgerport_testkit::testing::{TestStore, fresh_sqlite_file_store};
use std::sync::Arc;

async fn fresh_store() -> TestStore {
    fresh_sqlite_file_store(Arc::new(ManualClock::new(contract_now()))).await
}

ledgerport_testkit::store_contract_tests!(fresh_store());
