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

/// Two processes looking for expiry notices at the same moment write each notice once: the
/// conditional record on the grant lets only one of them write it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DATABASE_URL naming PostgreSQL"]
async fn expiry_notices_looked_for_by_two_processes_at_once_are_written_once() {
    use ledgerport_core::world::{GrantScope, PartnerKind};
    use ledgerport_store::{NewPortalUser, PortalRole};
    use ledgerport_testkit::world::WorldBuilder;

    // Arrange: ten grants ending in three days, one user on each side.
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
    let ends = GrantScope {
        expires_at: Some(contract_now() + jiff::SignedDuration::from_hours(72)),
        ..GrantScope::EVERYTHING
    };
    let mut b = WorldBuilder::new()
        .merchant("987654321", "Kaffe AS")
        .partner_of_kind("Regnskap AS", PartnerKind::Accounting, true);
    for i in 0..10 {
        let msn = format!("10000{i}");
        b = b
            .of_merchant("987654321")
            .api_unit(&msn)
            .ledger(&format!("10{i}"), &[msn.as_str()])
            .grant_scoped(&format!("10{i}"), ends);
    }
    let w = b.build(&*one).await.expect("world");
    let by = ledgerport_store::Actor::new("test");
    for (email, role) in [
        (
            "kari@kaffe.test",
            PortalRole::Merchant(w.merchant("987654321")),
        ),
        (
            "ola@regnskap.test",
            PortalRole::Partner(w.partner("Regnskap AS")),
        ),
    ] {
        one.create_portal_user(
            &by,
            NewPortalUser {
                email: email.into(),
                role,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            },
        )
        .await
        .expect("user");
    }

    // Act: both look, several times, at once.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        for s in [&one, &two] {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.notify_grant_expiries(contract_now())
                    .await
                    .expect("notify")
            }));
        }
    }
    let mut written = 0;
    for t in tasks {
        written += t.await.expect("task");
    }

    // Assert: one notice per grant and user, whoever wrote it.
    assert_eq!(written, 20);
    for user in one.portal_users().await.expect("users") {
        let got = one
            .notifications(user.id, None, 100)
            .await
            .expect("notifications");
        assert_eq!(got.len(), 10, "{}", user.email);
        assert!(got.iter().all(|n| n.kind == "grant.expiring"));
    }
}
