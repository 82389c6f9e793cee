//! `ledgerport import FILE`, run as the binary on a database of its own: NDJSON payment events go
//! through the settlement engine; bad lines and rejected events are summarised, not fatal.
//!
//! The world, made with `ledgerport admin`: merchant 987654321 with api unit 123455 on ledger
//! 12345 (a fixed fee of 400 per capture).

use jiff::{Timestamp, ToSpan};
use ledgerport_core::access::{self, Principal};
use ledgerport_core::clock::SystemClock;
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use ledgerport_core::world::Ledger;
use ledgerport_store::prelude::*;
use ledgerport_store::sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// What a run of the binary gave back.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A temporary directory with a database, removed at the end.
struct Place {
    dir: PathBuf,
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Place {
    fn new(name: &str) -> Place {
        let dir =
            std::env::temp_dir().join(format!("ledgerport-import-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Place { dir }
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.join("ledgerport.db").display())
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_ledgerport"))
            .args(["--log", "warn", "--database-url", &self.url()])
            .args(args)
            .output()
            .expect("run ledgerport");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs an admin command that must succeed.
    fn admin(&self, args: &[&str]) {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        let r = self.run(&all);
        assert_eq!(r.code, Some(0), "{args:?}: {}{}", r.stdout, r.stderr);
    }

    fn world(&self) {
        self.world_opened_on(None);
    }

    /// The world, its ledger opened on `opened_on` (a ledger whose history starts then).
    fn world_opened_on(&self, opened_on: Option<&str>) {
        self.admin(&[
            "merchant",
            "create",
            "--scheme",
            "business:NO:ORG",
            "--org-id",
            "987654321",
            "--name",
            "ACME AS",
        ]);
        self.admin(&[
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
        self.admin(
            &[
                "ledger",
                "create",
                "--ledger-id",
                "12345",
                "--merchant",
                "987654321",
                "--units",
                "123455",
                "--account-scheme",
                "BBAN:NO",
                "--account",
                "86011117947",
                "--fee-fixed",
                "400",
            ]
            .into_iter()
            .chain(opened_on.map(|d| ["--opened-on", d]).into_iter().flatten())
            .collect::<Vec<_>>(),
        );
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, content).expect("write events");
        p
    }

    /// Every entry of ledger 12345's topic as (type, time, ledger date), and the ledger.
    async fn dated_entries(&self, topic: Topic) -> (Ledger, Vec<(String, Timestamp, LedgerDate)>) {
        let store = SqliteStore::open(&self.url(), Arc::new(SystemClock))
            .await
            .expect("open the database");
        let id = LedgerId::parse("l", "12345").expect("id");
        let (access, view) = access::open(
            &Principal::Operator { user_id: None },
            store.ledger(&id).await.expect("read ledger"),
        )
        .expect("the operator reads every ledger");
        let entries = store
            .feed_page(&access, topic, 0, 10_000)
            .await
            .expect("feed")
            .into_iter()
            .map(|e| (e.entry_type, e.time.parse().expect("time"), e.ledger_date))
            .collect();
        (view.ledger, entries)
    }

    /// Every entry of ledger 12345's topic, read with the store.
    async fn entries(&self, topic: Topic) -> Vec<(String, String, i64, i64)> {
        let store = SqliteStore::open(&self.url(), Arc::new(SystemClock))
            .await
            .expect("open the database");
        let id = LedgerId::parse("l", "12345").expect("id");
        let (access, _) = access::open(
            &Principal::Operator { user_id: None },
            store.ledger(&id).await.expect("read ledger"),
        )
        .expect("the operator reads every ledger");
        store
            .feed_page(&access, topic, 0, 1000)
            .await
            .expect("feed")
            .into_iter()
            .map(|e| (e.entry_type, e.psp_reference, e.amount, e.balance_after))
            .collect()
    }
}

/// Seven lines: three good events, a blank line, a zero amount, a line that is not JSON and an
/// event without an amount.
const EVENTS: &str = r#"{"eventId":"e-1","type":"capture","msn":"123455","pspReference":"1001","reference":"purchase-1","amount":10000,"currency":"NOK","time":"2022-10-01T08:00:00Z"}

{"eventId":"e-2","type":"capture","msn":"123455","pspReference":"1002","amount":0,"currency":"NOK","time":"2022-10-01T09:00:00Z"}
this is not json
{"eventId":"e-3","type":"refund","msn":"123455","pspReference":"1001","amount":2500,"currency":"NOK","time":"2022-10-01T10:00:00Z"}
{"eventId":"e-4","type":"capture","msn":"123455","pspReference":"1004","currency":"NOK","time":"2022-10-01T11:00:00Z"}
{"eventId":"e-5","type":"capture","msn":123455,"pspReference":"1005","amount":20000,"currency":"NOK","time":"2022-10-01T12:00:00Z"}
"#;

/// The summary without the two lines that depend on the machine's speed.
fn steady_lines(summary: &str) -> Vec<&str> {
    summary
        .lines()
        .filter(|l| !l.starts_with("elapsed:") && !l.starts_with("events/s:"))
        .collect()
}

fn expected_summary(file: &Path) -> Vec<String> {
    [
        format!("imported {}", file.display()),
        "lines:     7 (1 blank)".into(),
        "events:    6".into(),
        "accepted:  3".into(),
        "rejected:  3 (amount 2, line 1)".into(),
        "rejections:".into(),
        "  line 3: event e-2: amount: a capture carries a positive amount of minor units".into(),
        "  line 4: is not JSON (expected ident at line 1 column 2)".into(),
        "  line 6: event e-4: amount: is required: must be an integer number of minor units (a JSON \
         number without fraction, within ±9223372036854775807)"
            .into(),
        "rejected events were not applied (and are not a failure of the import); an event the engine \
         rejected answers the same rejection when posted again, so post a corrected event under a new \
         eventId"
            .into(),
    ]
    .into()
}

#[tokio::test]
async fn importing_a_file_applies_its_good_events_and_summarises_the_bad_lines() {
    // Arrange
    let place = Place::new("summary");
    place.world();
    let file = place.file("events.ndjson", EVENTS);

    // Act: batches of two, so events and rejections span several transactions.
    let run = place.run(&["import", file.to_str().expect("path"), "--batch", "2"]);

    // Assert: success despite the rejections, and the summary.
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_eq!(steady_lines(&run.stdout), expected_summary(&file));
    let elapsed = run
        .stdout
        .lines()
        .find(|l| l.starts_with("elapsed:"))
        .expect("elapsed line");
    assert!(elapsed.ends_with(" s"), "{elapsed}");
    assert!(
        run.stdout.lines().any(|l| l.starts_with("events/s:  ")),
        "{}",
        run.stdout
    );

    // Assert: the good events are on the ledger, with their fees.
    assert_eq!(
        place.entries(Topic::Funds).await,
        vec![
            ("capture".into(), "1001".into(), 10000, 10000),
            ("refund".into(), "1001".into(), -2500, 7500),
            ("capture".into(), "1005".into(), 20000, 27500),
        ]
    );
    assert_eq!(
        place.entries(Topic::Fees).await,
        vec![
            ("capture-fee".into(), "1001".into(), -400, -400),
            ("capture-fee".into(), "1005".into(), -400, -800),
        ]
    );
}

#[tokio::test]
async fn importing_the_same_file_again_answers_the_same_and_changes_nothing() {
    // Arrange
    let place = Place::new("again");
    place.world();
    let file = place.file("events.ndjson", EVENTS);
    let first = place.run(&["import", file.to_str().expect("path")]);
    let funds = place.entries(Topic::Funds).await;

    // Act
    let again = place.run(&["import", file.to_str().expect("path")]);

    // Assert
    assert_eq!(first.code, Some(0));
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(steady_lines(&again.stdout), expected_summary(&file));
    assert_eq!(funds.len(), 3);
    assert_eq!(place.entries(Topic::Funds).await, funds);
}

#[tokio::test]
async fn the_json_summary_carries_the_same_counts() {
    // Arrange
    let place = Place::new("json");
    place.world();
    let file = place.file("events.ndjson", EVENTS);

    // Act
    let run = place.run(&["import", file.to_str().expect("path"), "--json"]);

    // Assert
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON summary");
    assert_eq!(v["lines"], 7);
    assert_eq!(v["blankLines"], 1);
    assert_eq!(v["events"], 6);
    assert_eq!(v["accepted"], 3);
    assert_eq!(v["rejected"], 3);
    assert_eq!(
        v["rejectedByField"],
        serde_json::json!({"amount": 2, "line": 1})
    );
    assert_eq!(
        v["firstRejections"][1],
        serde_json::json!({
            "line": 4, "eventId": null, "field": "line",
            "reason": "is not JSON (expected ident at line 1 column 2)",
        })
    );
    assert_eq!(v["firstRejections"][2]["eventId"], "e-4");
}

#[test]
fn a_file_that_cannot_be_read_fails_the_import() {
    // Arrange
    let place = Place::new("missing");
    let missing = place.dir.join("no-such-file.ndjson");

    // Act
    let run = place.run(&["import", missing.to_str().expect("path")]);

    // Assert
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains(&format!("error: cannot read {}: ", missing.display())),
        "{}",
        run.stderr
    );
}

/// Sixty days of history in time order: three captures a day at 09:00, 12:00 and 15:00 in Oslo,
/// and on every fifth day a refund of half the first capture at 16:00. Returns the file's text
/// and the number of events.
fn sixty_days(first: jiff::civil::Date) -> (String, usize) {
    let oslo = jiff::tz::TimeZone::get("Europe/Oslo").expect("zone");
    let mut out = String::new();
    let mut n = 0;
    for day in 0..60i64 {
        let date = first.checked_add(day.days()).expect("date");
        let at = |h: i8| {
            oslo.to_timestamp(date.at(h, 0, 0, 0))
                .expect("time")
                .to_string()
        };
        for (i, h) in [9, 12, 15].into_iter().enumerate() {
            n += 1;
            out.push_str(&format!(
                "{{\"eventId\":\"h-{day}-{i}\",\"type\":\"capture\",\"msn\":\"123455\",\"pspReference\":\"{day}0{i}\",\"reference\":\"order-{day}-{i}\",\"amount\":10000,\"currency\":\"NOK\",\"time\":\"{}\"}}\n",
                at(h)
            ));
        }
        if day % 5 == 0 {
            n += 1;
            out.push_str(&format!(
                "{{\"eventId\":\"h-{day}-r\",\"type\":\"refund\",\"msn\":\"123455\",\"pspReference\":\"{day}00\",\"amount\":5000,\"currency\":\"NOK\",\"time\":\"{}\"}}\n",
                at(16)
            ));
        }
    }
    (out, n)
}

#[tokio::test]
async fn replaying_history_books_each_event_on_its_own_date_and_pays_out_the_closed_dates() {
    // Arrange: a ledger opened 60 days ago (Oslo dates, cutoff 00:00) and its 60 days of events.
    let oslo = jiff::tz::TimeZone::get("Europe/Oslo").expect("zone");
    let today = oslo.to_datetime(Timestamp::now()).date();
    let opened = today.checked_sub(60.days()).expect("date");
    let (history, events) = sixty_days(opened);
    let place = Place::new("replay");
    place.world_opened_on(Some(&opened.to_string()));
    let file = place.file("history.ndjson", &history);

    // Act
    let run = place.run(&[
        "import",
        file.to_str().expect("path"),
        "--replay",
        "--batch",
        "50",
    ]);

    // Assert: everything accepted, nothing wrong, every capture on its own date, and every
    // date the replay's clock passed (all but yesterday, the last event's date) closed with a
    // payout.
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!("accepted:  {events}\n")),
        "{}",
        run.stdout
    );
    let verify = place.run(&["verify"]);
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
    let (ledger, funds) = place.dated_entries(Topic::Funds).await;
    let captures: Vec<_> = funds.iter().filter(|(t, _, _)| t == "capture").collect();
    assert_eq!(captures.len(), 180);
    for (_, time, date) in &captures {
        assert_eq!(*date, ledger.ledger_date_of(*time), "capture at {time}");
    }
    let payouts = |funds: &[(String, Timestamp, LedgerDate)]| -> Vec<String> {
        funds
            .iter()
            .filter(|(t, _, _)| t == "payout-scheduled")
            .map(|(_, _, d)| d.to_string())
            .collect()
    };
    let dates: Vec<String> = (0..60i64)
        .map(|d| opened.checked_add(d.days()).expect("date").to_string())
        .collect();
    assert_eq!(
        payouts(&funds),
        dates[..59],
        "one payout per closed date, in order"
    );
    assert_eq!(ledger.closed_through.to_string(), dates[58]);

    // Act + Assert: closing as of now closes yesterday too, and all is still well.
    place.admin(&["close"]);
    let (ledger, funds) = place.dated_entries(Topic::Funds).await;
    assert_eq!(payouts(&funds), dates);
    assert_eq!(ledger.closed_through.to_string(), dates[59]);
    let verify = place.run(&["verify"]);
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
}

#[tokio::test]
async fn without_replay_history_is_still_booked_on_the_first_open_date() {
    // Arrange: the same ledger and history as the replay.
    let oslo = jiff::tz::TimeZone::get("Europe/Oslo").expect("zone");
    let today = oslo.to_datetime(Timestamp::now()).date();
    let opened = today.checked_sub(60.days()).expect("date");
    let (history, events) = sixty_days(opened);
    let place = Place::new("no-replay");
    place.world_opened_on(Some(&opened.to_string()));
    let file = place.file("history.ndjson", &history);

    // Act
    let run = place.run(&["import", file.to_str().expect("path")]);

    // Assert: accepted as before, all on today's date (the first open one), no payout yet.
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!("accepted:  {events}\n")),
        "{}",
        run.stdout
    );
    let (ledger, funds) = place.dated_entries(Topic::Funds).await;
    let today = ledger.ledger_date_of(Timestamp::now());
    assert_eq!(funds.iter().filter(|(t, _, _)| t == "capture").count(), 180);
    assert!(funds.iter().all(|(_, _, d)| *d == today), "{funds:?}");
}

#[test]
fn a_ledger_cannot_open_in_the_future() {
    let place = Place::new("future");
    let r = place.run(&[
        "admin",
        "merchant",
        "create",
        "--scheme",
        "business:NO:ORG",
        "--org-id",
        "987654321",
        "--name",
        "ACME AS",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    place.admin(&[
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
    let r = place.run(&[
        "admin",
        "ledger",
        "create",
        "--ledger-id",
        "12345",
        "--merchant",
        "987654321",
        "--units",
        "123455",
        "--account-scheme",
        "BBAN:NO",
        "--account",
        "86011117947",
        "--opened-on",
        "2999-01-01",
    ]);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--opened-on"), "{}", r.stderr);
}
