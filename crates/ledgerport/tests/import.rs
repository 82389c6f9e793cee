//! `ledgerport import FILE`, run as the binary on a database of its own: NDJSON payment events go
//! through the settlement engine; bad lines and rejected events are summarised, not fatal.
//!
//! The world, made with `ledgerport admin`: merchant 987654321 with api unit 123455 on ledger
//! 12345 (a fixed fee of 400 per capture).

use ledgerport_core::access::{self, Principal};
use ledgerport_core::clock::SystemClock;
use ledgerport_core::ids::{LedgerId, Topic};
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
        self.admin(&[
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
        ]);
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, content).expect("write events");
        p
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
