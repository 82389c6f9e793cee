//! A database made by the hand-written migration runner that came before sqlx's migrator (table
//! `schema_migrations`) opens with today's store: its migrations are recorded as the migrator's,
//! nothing is run twice, the old table is gone, its rows are intact and the store goes on
//! writing where they end. On SQLite always; on PostgreSQL when `DATABASE_URL` names a server (ignored otherwise).
//!
//! The old runner's databases stop at migration 5; the store's first start runs 6 on them, which
//! computes the dispute totals and the payouts of the entries already booked, so the rules of
//! returned disputes and aborted payouts hold for them too.
//!
//! They predate grant scopes too (migration 8), so the same upgrade also
//! shows that a grant made before scopes keeps its meaning: no expiry, every date, both topics,
//! personal data.

use jiff::Timestamp;
use ledgerport_core::access::{ListScope, Principal};
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::ids::{Currency, LedgerDate, LedgerId, Msn, Topic};
use ledgerport_core::proof::{ProofEntry, check_date, check_link};
use ledgerport_core::verify::{check_date_states, check_proofs};
use ledgerport_core::world::GrantScope;
use ledgerport_store::EventOutcome;
use ledgerport_store::postgres::PostgresStore;
use ledgerport_store::prelude::*;
use ledgerport_store::sqlite::SqliteStore;
use ledgerport_testkit::testing::TestDatabase;
use sqlx::migrate::{Migration, MigrationType};
use sqlx::{Connection, SqlSafeStr};
use std::borrow::Cow;
use std::sync::Arc;

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "world",
        include_str!("../migrations/sqlite/0001_world.sql"),
    ),
    (
        2,
        "rejected events",
        include_str!("../migrations/sqlite/0002_rejected_events.sql"),
    ),
    (
        3,
        "entry dates",
        include_str!("../migrations/sqlite/0003_entry_dates.sql"),
    ),
    (
        4,
        "portal",
        include_str!("../migrations/sqlite/0004_portal.sql"),
    ),
    (
        5,
        "leases",
        include_str!("../migrations/sqlite/0005_leases.sql"),
    ),
];

const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "world",
        include_str!("../migrations/postgres/0001_world.sql"),
    ),
    (
        2,
        "rejected events",
        include_str!("../migrations/postgres/0002_rejected_events.sql"),
    ),
    (
        4,
        "portal",
        include_str!("../migrations/postgres/0004_portal.sql"),
    ),
    (
        5,
        "leases",
        include_str!("../migrations/postgres/0005_leases.sql"),
    ),
];

/// The migrations this build adds to what the old runner applied.
const SQLITE_NEW: &[(i64, &str, &str)] = &[
    (
        6,
        "reversals",
        include_str!("../migrations/sqlite/0006_reversals.sql"),
    ),
    (
        7,
        "mail outbox",
        include_str!("../migrations/sqlite/0007_mail_outbox.sql"),
    ),
    (
        8,
        "grant scopes",
        include_str!("../migrations/sqlite/0008_grant_scopes.sql"),
    ),
    (
        9,
        "notifications",
        include_str!("../migrations/sqlite/0009_notifications.sql"),
    ),
    (
        10,
        "access requests",
        include_str!("../migrations/sqlite/0010_access_requests.sql"),
    ),
    (
        11,
        "access log detail",
        include_str!("../migrations/sqlite/0011_access_log_detail.sql"),
    ),
    (
        12,
        "mail give-up and invitations",
        include_str!("../migrations/sqlite/0012_mail_give_up_and_invitations.sql"),
    ),
    (
        13,
        "date proofs",
        include_str!("../migrations/sqlite/0013_date_proofs.sql"),
    ),
    (
        14,
        "webhooks",
        include_str!("../migrations/sqlite/0014_webhooks.sql"),
    ),
    (
        15,
        "date digests",
        include_str!("../migrations/sqlite/0015_date_digests.sql"),
    ),
    (
        17,
        "access log file",
        include_str!("../migrations/sqlite/0017_access_log_file.sql"),
    ),
];

const POSTGRES_NEW: &[(i64, &str, &str)] = &[
    (
        6,
        "reversals",
        include_str!("../migrations/postgres/0006_reversals.sql"),
    ),
    (
        7,
        "mail outbox",
        include_str!("../migrations/postgres/0007_mail_outbox.sql"),
    ),
    (
        8,
        "grant scopes",
        include_str!("../migrations/postgres/0008_grant_scopes.sql"),
    ),
    (
        9,
        "notifications",
        include_str!("../migrations/postgres/0009_notifications.sql"),
    ),
    (
        10,
        "access requests",
        include_str!("../migrations/postgres/0010_access_requests.sql"),
    ),
    (
        11,
        "access log detail",
        include_str!("../migrations/postgres/0011_access_log_detail.sql"),
    ),
    (
        12,
        "mail give-up and invitations",
        include_str!("../migrations/postgres/0012_mail_give_up_and_invitations.sql"),
    ),
    (
        13,
        "date proofs",
        include_str!("../migrations/postgres/0013_date_proofs.sql"),
    ),
    (
        14,
        "webhooks",
        include_str!("../migrations/postgres/0014_webhooks.sql"),
    ),
    (
        15,
        "date digests",
        include_str!("../migrations/postgres/0015_date_digests.sql"),
    ),
];

/// A small world on ledger 100001 as the old store wrote it: two captures, a dispute of 3000 on
/// p1 of which 1000 came back, and 2024-04-05 closed with a payout (2000001) that was aborted and
/// paid out again (2000002); and an entry appended by hand with the pspReference of the payout
/// the engine makes next (2000003); and a grant of it to Regnskap AS made before grants had scopes.
const ROWS: &str = "\
INSERT INTO merchants (org_scheme, org_id, name, created_at) \
  VALUES ('business:NO:ORG', '987654321', 'Kaffebaren AS', '2024-04-01T08:00:00.000000Z');
INSERT INTO sales_units (msn, merchant_id, name, kind, country, handle, created_at) \
  SELECT 123456, id, 'Kaffebaren', 'api', 'NO', 'api:123456', '2024-04-01T08:00:00.000000Z' FROM merchants;
INSERT INTO ledgers (ledger_id, currency, payout_scheme, payout_account, owner_merchant_id, time_zone, \
  cutoff, payout_frequency, settlement_mode, fee_basis_points, fee_fixed_minor, page_size, created_at, \
  closed_through) \
  SELECT '100001', 'NOK', 'BBAN:NO', '12345678903', id, 'Europe/Oslo', '00:00', 'daily', 'net', 150, 0, 100, \
  '2024-04-01T08:00:00.000000Z', '2024-04-05' FROM merchants;
UPDATE ledgers SET next_payout_number = 2000003;
INSERT INTO ledger_units (ledger_id, msn, position) VALUES ('100001', 123456, 0);
INSERT INTO entries VALUES ('100001', 0, 1, 'p1', '2024-04-05T07:00:00.000000Z', '2024-04-05', \
  'capture', 'r1', 'NOK', 10000, 0, 10000, 'api:123456', NULL, NULL, NULL);
INSERT INTO entries VALUES ('100001', 0, 2, 'p2', '2024-04-05T07:10:00.000000Z', '2024-04-05', \
  'capture', 'r2', 'NOK', 5000, 10000, 15000, 'api:123456', NULL, NULL, NULL);
INSERT INTO entries VALUES ('100001', 0, 3, 'p1', '2024-04-05T07:20:00.000000Z', '2024-04-05', \
  'retained-disputed-capture', 'r1', 'NOK', -3000, 15000, 12000, 'api:123456', NULL, NULL, NULL);
INSERT INTO entries VALUES ('100001', 0, 4, 'p1', '2024-04-05T07:30:00.000000Z', '2024-04-05', \
  'returned-disputed-capture', 'r1', 'NOK', 1000, 12000, 13000, 'api:123456', NULL, NULL, NULL);
INSERT INTO entries VALUES ('100001', 0, 5, '100001-2000001', '2024-04-05T21:59:59.999999Z', '2024-04-05', \
  'payout-scheduled', 'Utb. 2000001', 'NOK', -13000, 13000, 0, '', NULL, NULL, NULL);
INSERT INTO entries VALUES ('100001', 0, 6, '100001-2000001', '2024-04-05T21:59:59.999999Z', '2024-04-05', \
  'payout-aborted', '', 'NOK', 13000, 0, 13000, '', NULL, NULL, NULL);
INSERT INTO entries VALUES ('100001', 0, 7, '100001-2000002', '2024-04-05T21:59:59.999999Z', '2024-04-05', \
  'payout-scheduled', 'Utb. 2000002', 'NOK', -13000, 13000, 0, '', NULL, NULL, NULL);
INSERT INTO entries VALUES ('100001', 0, 8, '100001-2000003', '2024-04-05T21:59:59.999999Z', '2024-04-05', \
  'payout-scheduled', 'appended by hand', 'NOK', 0, 0, 0, '', NULL, NULL, NULL);
INSERT INTO events (event_id, ledger_id, entries, received_at) \
  VALUES ('e1', '100001', 1, '2024-04-05T07:00:01.000000Z'), ('e2', '100001', 1, '2024-04-05T07:10:01.000000Z'), \
  ('e-d1', '100001', 1, '2024-04-05T07:20:01.000000Z'), ('e-d2', '100001', 1, '2024-04-05T07:30:01.000000Z');
INSERT INTO payments (ledger_id, psp_reference, captured, refunded) VALUES ('100001', 'p1', 10000, 0), \
  ('100001', 'p2', 5000, 0);
INSERT INTO partners (name, kind, state, org_scheme, org_id, contact_email, created_at) \
  VALUES ('Regnskap AS', 'accounting', 'approved', 'business:NO:ORG', '912345678', 'post@regnskap.test', \
  '2024-04-01T08:00:00.000000Z');
INSERT INTO grants (partner_id, ledger_id, created_at, created_by) \
  SELECT id, '100001', '2024-04-02T08:00:00.000000Z', 'portal:merchant:kari@kaffebaren.test' FROM partners;
INSERT INTO audit_log (at, actor, action, subject, detail) \
  VALUES ('2024-04-01T08:00:00.000000Z', 'cli', 'ledger.create', '100001', 'settles for 123456');";

trait ParseDate {
    fn parse_date(&self) -> LedgerDate;
}

impl ParseDate for str {
    fn parse_date(&self) -> LedgerDate {
        LedgerDate::parse("date", self).expect("date")
    }
}

fn now() -> Timestamp {
    "2024-04-05T08:00:00Z".parse().expect("now")
}

fn capture(id: &str, psp: &str, amount: i64) -> PaymentEvent {
    event(id, EventKind::Capture, psp, amount)
}

fn event(id: &str, kind: EventKind, psp: &str, amount: i64) -> PaymentEvent {
    PaymentEvent {
        event_id: id.into(),
        kind,
        msn: Msn::parse("msn", "123456").expect("msn"),
        psp_reference: psp.into(),
        capture_psp_reference: None,
        reference: format!("r-{psp}"),
        amount,
        currency: Currency::NOK,
        time: now(),
        topic: None,
        payer: None,
    }
}

/// What the migrator must hold afterwards: every version, applied, with its file's checksum.
fn expected_versions(
    old: &[(i64, &'static str, &'static str)],
    new: &[(i64, &'static str, &'static str)],
) -> Vec<(i64, bool, Vec<u8>)> {
    old.iter()
        .chain(new)
        .map(|(v, d, sql)| {
            let m = Migration::new(
                *v,
                Cow::Borrowed(*d),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            );
            (*v, true, m.checksum.to_vec())
        })
        .collect()
}

/// Checks the world through the store and goes on writing: a repeated old event answers as it
/// did, a new one continues the funds chain after the old entries.
async fn check_the_store_works_on(store: &dyn Store) {
    store
        .ping()
        .await
        .expect("ping: schema as this build migrates it");
    let merchant = store
        .merchant_by_org("987654321")
        .await
        .expect("read")
        .expect("the old merchant");
    assert_eq!(merchant.name, "Kaffebaren AS");
    let ledger_id = LedgerId::parse("ledger_id", "100001").expect("ledger id");
    let (_, view) = store
        .ledger(&ledger_id)
        .await
        .expect("read")
        .expect("the old ledger")
        .open(&ledgerport_core::access::Principal::Operator { user_id: None })
        .expect("the operator reads every ledger");
    assert_eq!(view.units.len(), 1);
    assert_eq!(view.ledger.owner_merchant_id, merchant.id);

    // Migrations 13 and 15: the dates closed before proofs existed (the ledger's first,
    // 2024-04-01, through 2024-04-05) were proved when the store started (form v2), each topic's
    // chain from the first, and every date with entries got its digest state.
    let (operator, _) = store
        .ledger(&ledger_id)
        .await
        .expect("read")
        .expect("the old ledger")
        .open(&Principal::Operator { user_id: None })
        .expect("the operator reads every ledger");
    for topic in [Topic::Funds, Topic::Fees] {
        let proofs = store.date_proofs(&operator, topic).await.expect("proofs");
        let dates: Vec<String> = proofs.iter().map(|p| p.ledger_date.to_string()).collect();
        assert_eq!(
            dates,
            [
                "2024-04-01",
                "2024-04-02",
                "2024-04-03",
                "2024-04-04",
                "2024-04-05"
            ],
            "{topic}"
        );
        assert_eq!(proofs[0].previous_chain_digest, None);
        for pair in proofs.windows(2) {
            assert!(
                check_link(&pair[0], &pair[1]).is_empty(),
                "{topic} {pair:?}"
            );
        }
        for p in &proofs {
            let entries = store
                .date_page(&operator, topic, p.ledger_date, 0, 1000)
                .await
                .expect("date page");
            let found = check_date(p, entries.iter().map(ProofEntry::from));
            assert!(found.is_empty(), "{topic} {}: {found:?}", p.ledger_date);
        }
        let all = store
            .feed_page(&operator, topic, 0, 1000)
            .await
            .expect("the topic's entries");
        let states = store
            .date_digest_states(&operator, topic)
            .await
            .expect("digest states");
        let found = check_date_states(&view.ledger, topic, &all, &states);
        assert!(found.is_empty(), "{topic}: {found:?}");
        let found = check_proofs(&view.ledger, topic, &all, &proofs);
        assert!(found.is_empty(), "{topic}: {found:?}");
        assert_eq!(
            proofs.iter().map(|p| p.entry_count).sum::<u64>(),
            all.len() as u64,
            "{topic}: every entry is on a closed date"
        );
    }
    let funds_05 = store
        .date_proof(&operator, Topic::Funds, "2024-04-05".parse_date())
        .await
        .expect("read")
        .expect("the proof of 2024-04-05");
    assert_eq!(
        (
            funds_05.entry_count,
            funds_05.opening_balance,
            funds_05.closing_balance
        ),
        (8, 0, 0)
    );

    // The grant made before scopes existed means what it meant: everything, for good.
    let grants = store.grants(None, None).await.expect("grants");
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].scope, GrantScope::EVERYTHING);
    let reader = Principal::Accounting {
        key_id: 1,
        partner_id: grants[0].partner_id,
    };
    let (access, _) = store
        .ledger(&ledger_id)
        .await
        .expect("read")
        .expect("the old ledger")
        .open(&reader)
        .expect("the partner granted before scopes still reads the ledger");
    assert_eq!(access.scope(), &GrantScope::EVERYTHING);
    let listed = store
        .ledgers_in_scope(&ListScope::GrantedTo(grants[0].partner_id), None, None, 10)
        .await
        .expect("listing");
    assert_eq!(listed.len(), 1, "the old grant is listed");

    let outcomes = store
        .ingest_events(
            vec![capture("e1", "p1", 10000), capture("e3", "p3", 2000)],
            now(),
        )
        .await
        .expect("ingest");
    assert_eq!(
        outcomes,
        vec![
            EventOutcome::Accepted {
                event_id: "e1".into(),
                ledger_id: ledger_id.clone(),
                entries: 1
            },
            EventOutcome::Accepted {
                event_id: "e3".into(),
                ledger_id: ledger_id.clone(),
                entries: 2
            },
        ]
    );

    // Migration 6 counted the old dispute (2000 of p1's 3000 still retained) and the old
    // payouts (2000001 aborted, 2000002 not).
    let outcomes = store
        .ingest_events(
            vec![
                event("g1", EventKind::DisputeReturned, "p1", 2001),
                event("g2", EventKind::DisputeReturned, "p2", 1),
                event("g3", EventKind::DisputeReturned, "p1", 2000),
                event("a1", EventKind::PayoutAborted, "100001-2000001", 13000),
                event("a2", EventKind::PayoutAborted, "100001-2000002", 13000),
            ],
            now(),
        )
        .await
        .expect("ingest");
    let answers: Vec<(&str, Option<&str>)> = outcomes
        .iter()
        .map(|o| match o {
            EventOutcome::Accepted { event_id, .. } => (event_id.as_str(), None),
            EventOutcome::Rejected {
                event_id,
                rejection,
            } => (event_id.as_str(), Some(rejection.field)),
        })
        .collect();
    assert_eq!(
        answers,
        vec![
            ("g1", Some("amount")),
            ("g2", Some("pspReference")),
            ("g3", None),
            ("a1", Some("pspReference")),
            ("a2", None),
        ]
    );
    // The next closing pays out 2000003 though a hand-appended entry had that pspReference.
    let closed = store
        .close_due(&ledger_id, "2024-04-07T06:00:00Z".parse().expect("time"))
        .await
        .expect("close 2024-04-06");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].payout, Some((2_000_003, 16_970)));
    // The closing's proof continues the backfilled chain.
    let funds_06 = store
        .date_proof(&operator, Topic::Funds, "2024-04-06".parse_date())
        .await
        .expect("read")
        .expect("the proof of 2024-04-06");
    assert_eq!(
        funds_06.previous_chain_digest,
        Some(funds_05.chain_digest),
        "chained to the backfilled 2024-04-05"
    );
    let outcomes = store
        .ingest_events(
            vec![event(
                "a3",
                EventKind::PayoutAborted,
                "100001-2000003",
                16_970,
            )],
            "2024-04-07T07:00:00Z".parse().expect("time"),
        )
        .await
        .expect("ingest");
    assert!(
        matches!(outcomes[0], EventOutcome::Accepted { .. }),
        "{outcomes:?}"
    );
}

async fn run_the_old_runner_sqlite(conn: &mut sqlx::SqliteConnection) {
    // Exactly as the runner before sqlx's migrator did it.
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .expect("schema_migrations");
    for (version, name, sql) in SQLITE {
        let mut tx = conn.begin().await.expect("begin");
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .expect("old migration");
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(version)
            .bind(name)
            .bind("2024-04-01T07:00:00.000000Z")
            .execute(&mut *tx)
            .await
            .expect("record");
        tx.commit().await.expect("commit");
    }
    sqlx::raw_sql(ROWS).execute(&mut *conn).await.expect("rows");
    sqlx::raw_sql(
        "INSERT INTO entry_dates (ledger_id, topic, ledger_date, first_seq, last_seq) VALUES ('100001', 0, '2024-04-05', 1, 8)",
    )
    .execute(&mut *conn)
    .await
    .expect("date runs");
}

#[tokio::test]
async fn a_sqlite_database_of_the_old_migration_runner_upgrades_cleanly() {
    // Arrange: a database file made as the old runner made it, with rows.
    let path = std::env::temp_dir().join(format!(
        "ledgerport-upgrade-{}-{}.db",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    run_the_old_runner_sqlite(&mut conn).await;
    conn.close().await.expect("close");

    // Act: today's store opens it, twice (the second start finds nothing to do).
    let clock = Arc::new(ManualClock::new(now()));
    let store = SqliteStore::open(&url, clock.clone())
        .await
        .expect("upgrade");
    check_the_store_works_on(&store).await;
    drop(store);
    let store = SqliteStore::open(&url, clock).await.expect("second start");
    store.ping().await.expect("ping after the second start");
    drop(store);

    // Assert: the migrator's table, the old table gone, the rows intact and continued.
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let versions: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .expect("migrator's table");
    assert_eq!(versions, expected_versions(SQLITE, SQLITE_NEW));
    let old: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("tables");
    assert_eq!(old, 0, "schema_migrations is left behind");
    let funds: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT seq, balance_before, balance_after FROM entries WHERE ledger_id = '100001' AND topic = 0 ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .expect("entries");
    assert_eq!(
        funds,
        vec![
            (1, 0, 10000),
            (2, 10000, 15000),
            (3, 15000, 12000),
            (4, 12000, 13000),
            (5, 13000, 0),
            (6, 0, 13000),
            (7, 13000, 0),
            (8, 0, 0),
            (9, 0, 2000),
            (10, 2000, 4000),
            (11, 4000, 17000),
            (12, 17000, 16970),
            (13, 16970, 0),
            (14, 0, 16970)
        ]
    );
    let runs: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT topic, ledger_date, first_seq, last_seq FROM entry_dates ORDER BY topic, ledger_date",
    )
    .fetch_all(&mut conn)
    .await
    .expect("runs");
    assert_eq!(
        runs,
        vec![
            (0, "2024-04-05".into(), 1, 8),
            (0, "2024-04-06".into(), 9, 13),
            (0, "2024-04-07".into(), 14, 14),
            (1, "2024-04-06".into(), 1, 2)
        ]
    );
    conn.close().await.expect("close");
    for suffix in ledgerport_store::sqlite::access_log::FILE_SUFFIXES {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
#[ignore = "needs DATABASE_URL naming PostgreSQL"]
async fn a_postgres_database_of_the_old_migration_runner_upgrades_cleanly() {
    let db = TestDatabase::create().await;

    // Arrange: migrated as the old runner did (each version in its own transaction under its
    // advisory lock), with rows.
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    for (version, name, sql) in POSTGRES {
        let mut tx = conn.begin().await.expect("begin");
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(0x4c50_4d49_4752_i64)
            .execute(&mut *tx)
            .await
            .expect("lock");
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .expect("schema_migrations");
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .expect("old migration");
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind("2024-04-01T07:00:00.000000Z")
        .execute(&mut *tx)
        .await
        .expect("record");
        tx.commit().await.expect("commit");
    }
    sqlx::raw_sql(ROWS).execute(&mut conn).await.expect("rows");

    // Act: two processes start on it at once, then one more.
    let clock = Arc::new(ManualClock::new(now()));
    let (one, two) = tokio::join!(
        PostgresStore::open(&db.url, clock.clone()),
        PostgresStore::open(&db.url, clock.clone())
    );
    let (one, two) = (one.expect("upgrade one"), two.expect("upgrade two"));
    check_the_store_works_on(&one).await;
    two.ping().await.expect("ping two");
    let three = PostgresStore::open(&db.url, clock)
        .await
        .expect("a later start");
    three.ping().await.expect("ping three");

    // Assert
    let versions: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .expect("migrator's table");
    assert_eq!(versions, expected_versions(POSTGRES, POSTGRES_NEW));
    let old: Option<String> = sqlx::query_scalar("SELECT to_regclass('schema_migrations')::text")
        .fetch_one(&mut conn)
        .await
        .expect("tables");
    assert_eq!(old, None, "schema_migrations is left behind");
    let funds: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT seq, balance_before, balance_after FROM entries WHERE ledger_id = '100001' AND topic = 0 ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .expect("entries");
    assert_eq!(
        funds,
        vec![
            (1, 0, 10000),
            (2, 10000, 15000),
            (3, 15000, 12000),
            (4, 12000, 13000),
            (5, 13000, 0),
            (6, 0, 13000),
            (7, 13000, 0),
            (8, 0, 0),
            (9, 0, 2000),
            (10, 2000, 4000),
            (11, 4000, 17000),
            (12, 17000, 16970),
            (13, 16970, 0),
            (14, 0, 16970)
        ]
    );
    conn.close().await.expect("close");
}

/// Form-v1 proofs of ledger 100001's closed dates as migration 13's backfill wrote them (their
/// values do not matter: migration 15 drops them), and the ledger off the backfill list.
const V1_PROOFS: &str = "\
INSERT INTO date_proofs (ledger_id, topic, ledger_date, entry_count, amount_sum, opening_balance, \
  closing_balance, digest, previous_chain_digest, chain_digest) VALUES \
  ('100001', 0, '2024-04-05', 8, 0, 0, 0, \
   '8ca26a0f1fab34df838b0e227c6465511e60469c54098417211499306d9dc5cf', NULL, \
   'a823d73cf57be152300db4d5c783af2c832d09ec5e8cc251d2e09b7db69a8b11');
DELETE FROM proof_backfill;";

/// The migrator of `migrations` up to and including version 14.
fn migrator_through_14(
    migrations: &[&[(i64, &'static str, &'static str)]],
) -> sqlx::migrate::Migrator {
    sqlx::migrate::Migrator::with_migrations(
        migrations
            .iter()
            .flat_map(|m| m.iter())
            .filter(|(v, ..)| *v <= 14)
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*d),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// After a store at migration 14 (form-v1 proofs, no digest states) starts with this build:
/// every proof is form v2, equal to what a client computes from the date pages alone, every
/// date's digest state is what its entries give, and nothing is left to backfill.
async fn check_the_v2_upgrade(store: &dyn Store) {
    use ledgerport_core::proof::{DateProof, Previous, prove_date};
    let ledger_id = LedgerId::parse("ledger_id", "100001").expect("ledger id");
    let (operator, view) = store
        .ledger(&ledger_id)
        .await
        .expect("read")
        .expect("the ledger")
        .open(&Principal::Operator { user_id: None })
        .expect("the operator reads every ledger");
    for topic in [Topic::Funds, Topic::Fees] {
        let proofs = store.date_proofs(&operator, topic).await.expect("proofs");
        assert_eq!(proofs.len(), 5, "{topic}: 2024-04-01 to 05 proved");
        let mut previous: Option<&DateProof> = None;
        for p in &proofs {
            let entries = store
                .date_page(&operator, topic, p.ledger_date, 0, 1000)
                .await
                .expect("date page");
            let start = previous.map_or(Previous::START, DateProof::as_previous);
            let fresh = prove_date(
                &ledger_id,
                topic,
                p.ledger_date,
                entries.iter().map(ProofEntry::from),
                start,
            )
            .expect("prove");
            assert_eq!(p, &fresh, "{topic} {}", p.ledger_date);
            previous = Some(p);
        }
        let all = store
            .feed_page(&operator, topic, 0, 1000)
            .await
            .expect("entries");
        let states = store
            .date_digest_states(&operator, topic)
            .await
            .expect("states");
        assert!(check_date_states(&view.ledger, topic, &all, &states).is_empty());
        assert!(check_proofs(&view.ledger, topic, &all, &proofs).is_empty());
    }
    let funds_05 = store
        .date_proof(&operator, Topic::Funds, "2024-04-05".parse_date())
        .await
        .expect("read")
        .expect("the proof of 2024-04-05");
    assert_ne!(
        funds_05.chain_digest.hex(),
        "a823d73cf57be152300db4d5c783af2c832d09ec5e8cc251d2e09b7db69a8b11",
        "the form-v1 proof is gone"
    );
    assert_eq!(funds_05.entry_count, 8);
    // Booking goes on from the rebuilt state: the next closing's proof still holds.
    store
        .ingest_events(vec![capture("v2-1", "p-v2", 2000)], now())
        .await
        .expect("ingest");
    store
        .close_due(&ledger_id, "2024-04-07T06:00:00Z".parse().expect("time"))
        .await
        .expect("close");
    for topic in [Topic::Funds, Topic::Fees] {
        let all = store
            .feed_page(&operator, topic, 0, 1000)
            .await
            .expect("entries");
        let (operator, view) = store
            .ledger(&ledger_id)
            .await
            .expect("read")
            .expect("the ledger")
            .open(&Principal::Operator { user_id: None })
            .expect("operator");
        let proofs = store.date_proofs(&operator, topic).await.expect("proofs");
        assert_eq!(proofs.len(), 6, "{topic}: 2024-04-06 closed too");
        let states = store
            .date_digest_states(&operator, topic)
            .await
            .expect("states");
        assert!(check_date_states(&view.ledger, topic, &all, &states).is_empty());
        assert!(check_proofs(&view.ledger, topic, &all, &proofs).is_empty());
    }
}

#[tokio::test]
async fn a_sqlite_database_with_proofs_of_form_v1_upgrades_to_form_v2() {
    // Arrange: a database at migration 14 with entries, closed dates and a form-v1 proof.
    let path = std::env::temp_dir().join(format!(
        "ledgerport-upgrade-v2-{}-{}.db",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    migrator_through_14(&[SQLITE, SQLITE_NEW])
        .run(&mut conn)
        .await
        .expect("migrations 1 to 14");
    sqlx::raw_sql(ROWS).execute(&mut conn).await.expect("rows");
    sqlx::raw_sql(
        "INSERT INTO entry_dates (ledger_id, topic, ledger_date, first_seq, last_seq) VALUES ('100001', 0, '2024-04-05', 1, 8)",
    )
    .execute(&mut conn)
    .await
    .expect("date runs");
    sqlx::raw_sql(V1_PROOFS)
        .execute(&mut conn)
        .await
        .expect("v1 proofs");
    conn.close().await.expect("close");

    // Act
    let clock = Arc::new(ManualClock::new(now()));
    let store = SqliteStore::open(&url, clock).await.expect("upgrade");

    // Assert
    check_the_v2_upgrade(&store).await;
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
#[ignore = "needs DATABASE_URL naming PostgreSQL"]
async fn a_postgres_database_with_proofs_of_form_v1_upgrades_to_form_v2() {
    // Arrange
    let db = TestDatabase::create().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    migrator_through_14(&[POSTGRES, POSTGRES_NEW])
        .run(&mut conn)
        .await
        .expect("migrations 1 to 14");
    sqlx::raw_sql(ROWS).execute(&mut conn).await.expect("rows");
    sqlx::raw_sql(V1_PROOFS)
        .execute(&mut conn)
        .await
        .expect("v1 proofs");

    // Act
    let clock = Arc::new(ManualClock::new(now()));
    let store = PostgresStore::open(&db.url, clock).await.expect("upgrade");

    // Assert
    check_the_v2_upgrade(&store).await;
}
