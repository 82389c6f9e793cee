//! The portal's sign-in failures on one PostgreSQL database shared by two stores, as two `serve`
//! processes hold it: failures recorded at once are all counted, and each caller is told its own
//! count (the lock-out decides on it). Ignored unless run with `DATABASE_URL`
//! naming a PostgreSQL server.

use ledgerport_core::clock::ManualClock;
use ledgerport_store::Store;
use ledgerport_store::postgres::PostgresStore;
use ledgerport_testkit::contract::contract_now;
use ledgerport_testkit::testing::TestDatabase;
use std::sync::Arc;

const PER_STORE: u32 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DATABASE_URL naming PostgreSQL"]
async fn failed_sign_ins_recorded_by_two_processes_at_once_are_each_counted_once() {
    // Arrange: two stores (two pools, like two processes) on one database.
    let db = TestDatabase::create().await;
    let clock = Arc::new(ManualClock::new(contract_now()));
    let one: Arc<dyn Store> = Arc::new(
        PostgresStore::open(&db.url, clock.clone())
            .await
            .expect("open one"),
    );
    let two: Arc<dyn Store> = Arc::new(
        PostgresStore::open(&db.url, clock.clone())
            .await
            .expect("open two"),
    );

    // Act: both record failures for one email (typed in two ways) at the same time.
    let mut tasks = Vec::new();
    for i in 0..PER_STORE {
        for (s, email) in [(&one, "kari@example.com"), (&two, " KARI@example.com")] {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.record_sign_in_failure(email)
                    .await
                    .unwrap_or_else(|e| panic!("failure {i}: {e:?}"))
            }));
        }
    }
    let mut told = Vec::new();
    for t in tasks {
        told.push(t.await.expect("task").count);
    }

    // Assert: every failure counted, and no two callers told the same count.
    told.sort_unstable();
    assert_eq!(told, (1..=2 * PER_STORE).collect::<Vec<_>>());
    let total = one
        .sign_in_failures("kari@example.com")
        .await
        .expect("read");
    assert_eq!(total.count, 2 * PER_STORE);
    assert_eq!(total.last_at, Some(contract_now()));
}
