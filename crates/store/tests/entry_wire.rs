//! Each entry's Report API JSON is written by the store when the entry is (`wire_json`); the
//! entries stored before that got theirs from the migration that added the columns, written by
//! the database's JSON functions. Both must give the same bytes, or a page would change with the
//! age of its entries. Here entries whose text needs escaping are written by the store, the
//! migration's backfill is run over them again, and every row must be unchanged. On SQLite, and
//! on PostgreSQL when `DATABASE_URL` names a server (ignored otherwise).

use ledgerport_core::clock::ManualClock;
use ledgerport_core::entry::{NewEntry, PayerDetails};
use ledgerport_core::ids::{Currency, LedgerDate, LedgerId, Topic};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::contract::contract_now;
use ledgerport_testkit::testing::{TestDatabase, TestFile};
use sqlx::Connection;
use std::sync::Arc;

/// The backfill of a migration: its `UPDATE entries` statement.
fn backfill(migration: &str) -> String {
    let start = migration
        .find("UPDATE entries")
        .expect("the migration fills in the stored entries");
    let end = start + migration[start..].find(';').expect("the statement ends");
    migration[start..=end].to_owned()
}

/// Entries of `topic` with text that needs escaping in JSON, amounts beyond what a double holds,
/// and a payer on every other one.
fn entries(topic: Topic) -> Vec<NewEntry> {
    (0..8)
        .map(|i| NewEntry {
            psp_reference: format!("psp-{i} \"quoted\""),
            time: format!("2024-04-04T0{i}:00:00.000000Z"),
            ledger_date: LedgerDate::parse("date", "2024-04-04").expect("date"),
            entry_type: match topic {
                Topic::Funds => "capture",
                Topic::Fees => "capture-fee",
            }
            .into(),
            reference: format!("order \\{i}\n\t\u{1}\u{7f}\u{2028} å 💸 </script>"),
            currency: Currency::NOK,
            amount: if i == 3 {
                9_007_199_254_740_993
            } else {
                100 + i
            },
            recipient_handle: "api:123455".into(),
            payer: (i % 2 == 0).then(|| PayerDetails {
                name: format!("Kari \"K{i}\" Nordmann\\Ås"),
                message: "Kaffe ☕ og\nwienerbrød\r\u{8}\u{c}".into(),
                masked_phone_no: format!("xxxx 12{i:02}"),
            }),
        })
        .collect()
}

/// Makes a world on `url` and writes the entries through the store.
async fn store_entries(url: &str) {
    let clock = Arc::new(ManualClock::new(contract_now()));
    let store = ledgerport_store::open(url, clock).await.expect("open");
    WorldBuilder::new()
        .merchant("987654321", "ACME AS")
        .api_unit("123455")
        .ledger("100", &["123455"])
        .build(store.as_ref())
        .await
        .expect("world");
    let ledger = LedgerId::parse("ledger_id", "100").expect("ledger id");
    for topic in [Topic::Funds, Topic::Fees] {
        store
            .append_entries(&ledger, topic, entries(topic))
            .await
            .expect("append");
    }
}

const ROWS: &str = "SELECT wire, wire_payer FROM entries ORDER BY ledger_id, topic, seq";

fn check(before: &[(String, Option<String>)], after: &[(String, Option<String>)]) {
    assert_eq!(before.len(), 16, "every entry written");
    assert_eq!(
        before.iter().filter(|(_, p)| p.is_some()).count(),
        8,
        "the payers written"
    );
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        assert_eq!(
            b, a,
            "row {i}: the migration writes other bytes than the store"
        );
    }
    // What was written holds each field's marker once, in order (and the pages made of it are
    // held to the Report API's bytes by the server's `wire_bytes` test).
    let markers = |text: &str| -> Vec<u8> { text.bytes().filter(|b| *b < 0x20).collect() };
    for (head, payer) in before {
        assert_eq!(markers(head), (1..=10).collect::<Vec<u8>>(), "{head:?}");
        if let Some(p) = payer {
            assert_eq!(markers(p), [11, 12, 13], "{p:?}");
        }
    }
}

/// Runs the backfill `sql` over the entries `conn` holds: every row must be left as it was.
async fn backfill_changes_nothing<DB>(conn: &mut DB::Connection, sql: String)
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> (String, Option<String>): sqlx::FromRow<'r, DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let before: Vec<(String, Option<String>)> = sqlx::query_as(ROWS)
        .fetch_all(&mut *conn)
        .await
        .expect("rows");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .expect("the backfill");
    let after: Vec<(String, Option<String>)> = sqlx::query_as(ROWS)
        .fetch_all(&mut *conn)
        .await
        .expect("rows");
    check(&before, &after);
}

#[tokio::test]
async fn the_sqlite_migration_writes_the_stores_bytes() {
    let file = TestFile::new();
    store_entries(&file.url()).await;
    let mut conn = sqlx::SqliteConnection::connect(&file.url())
        .await
        .expect("connect");
    let sql = backfill(include_str!("../migrations/sqlite/0018_entry_wire.sql"));
    backfill_changes_nothing::<sqlx::Sqlite>(&mut conn, sql).await;
}

#[tokio::test]
#[ignore = "needs DATABASE_URL naming PostgreSQL"]
async fn the_postgres_migration_writes_the_stores_bytes() {
    let db = TestDatabase::create().await;
    store_entries(&db.url).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let sql = backfill(include_str!("../migrations/postgres/0018_entry_wire.sql"));
    backfill_changes_nothing::<sqlx::Postgres>(&mut conn, sql).await;
}
