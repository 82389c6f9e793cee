//! `ledgerport-bench` at a tiny size: the harness builds its world, starts the `ledgerport`
//! server next to it, measures every phase, prints the table with its targets, writes the JSON
//! and leaves no server behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `ledgerport` binary the harness starts. Cargo builds a package's own binaries for its
/// tests, not another package's: `cargo test --workspace` has built it already, but
/// `cargo test -p ledgerport-bench` alone may find it missing or older than its sources, and then
/// this test asks cargo to build it.
fn server_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bench = PathBuf::from(env!("CARGO_BIN_EXE_ledgerport-bench"));
        let bin = bench.with_file_name(format!("ledgerport{}", std::env::consts::EXE_SUFFIX));
        if !is_fresh(&bin) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args([
                "build",
                "--quiet",
                "-p",
                "ledgerport",
                "--bin",
                "ledgerport",
            ]);
            if bench
                .parent()
                .and_then(|d| d.file_name())
                .is_some_and(|p| p == "release")
            {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build -p ledgerport");
            assert!(status.success(), "cargo build -p ledgerport failed");
        }
        assert!(bin.is_file(), "no {} after building it", bin.display());
        bin
    })
}

/// Whether `bin` exists and is newer than every source file of the crates it is built from.
fn is_fresh(bin: &Path) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs: Vec<PathBuf> = ["core", "store", "server", "ledgerport"]
        .iter()
        .map(|c| root.join("crates").join(c))
        .collect();
    let mut newest = std::fs::metadata(root.join("Cargo.lock"))
        .and_then(|m| m.modified())
        .ok();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "tests") {
                    dirs.push(path);
                }
            } else if let Ok(m) = entry.metadata().and_then(|m| m.modified()) {
                newest = newest.max(Some(m));
            }
        }
    }
    newest.is_some_and(|n| n <= built)
}

/// `ledgerport-bench --log warn --server-bin <ledgerport>`.
fn bench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ledgerport-bench"));
    c.args(["--log", "warn", "--server-bin"]).arg(server_bin());
    c
}

/// A world of seconds: a large ledger of 2500 entries (3 feed pages), a small one of 1500.
const TINY: &[&str] = &[
    "--merchants",
    "3",
    "--ledgers",
    "12",
    "--partners",
    "3",
    "--grants",
    "20",
    "--big-partner-grants",
    "10",
    "--small-partner-grants",
    "2",
    "--entries",
    "5000",
    "--small-ledger-entries",
    "1500",
    "--days",
    "5",
    "--concurrency",
    "4",
    "--duration",
    "0.2",
    "--ingest-batch",
    "50",
];

#[test]
fn the_harness_measures_every_phase_at_a_tiny_size_and_writes_json() {
    let (dir, _cleanup) = test_dir("ledgerport-bench-test");
    let json = dir.join("bench-result.json");
    let db = dir.join("bench.db");
    let out = bench()
        .args(["--database-url", &format!("sqlite://{}", db.display())])
        .args(["--merchants", "3", "--ledgers", "12", "--partners", "3"])
        .args([
            "--grants",
            "20",
            "--big-partner-grants",
            "10",
            "--small-partner-grants",
            "2",
        ])
        .args([
            "--entries",
            "5000",
            "--small-ledger-entries",
            "1500",
            "--days",
            "5",
        ])
        .args([
            "--concurrency",
            "4",
            "--duration",
            "0.2",
            "--ingest-batch",
            "50",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run ledgerport-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");

    for row in [
        "tokens: POST /accesstoken/get",
        "tokens: POST /miami/v1/token",
        "feed: full download of the large ledger",
        "floor: the same page from memory, 1 client",
        "dates pages of the large ledger",
        "listing: partner with 10 grants",
        "listing: partner with 2 grants",
        "feed pages, 4 readers on 4 ledgers",
        "feed page of a ledger of 1500 entries",
        "feed page of a ledger of 2500 entries",
        "ingestion: 50 events a request",
        "mixed: 4 readers, no ingestion",
        "mixed: 4 readers while ingestion runs",
        "mixed: ingestion, 2 clients, no readers",
        "mixed: ingestion, 2 clients, while 4 readers read",
        // Measured where nginx is installed, else a row saying it was skipped.
        "floor: nginx, the same page as a static file",
        // The token phases again with wrk where it is installed, else a row saying so.
        "wrk as the client",
        "server peak memory: own (RssAnon",
        "server peak memory: VmHWM",
    ] {
        assert!(stdout.contains(row), "no row {row:?} in:\n{stdout}");
    }
    assert!(stdout.contains(">= 25000/s, p99 < 5 ms"), "{stdout}");

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    let rows = v["results"].as_array().expect("results");
    let row = |prefix: &str| {
        rows.iter()
            .find(|r| r["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no {prefix} in {v}"))
    };
    // The whole large ledger came through the feed, and every timed phase did work.
    assert!(
        row("feed: full download")["name"]
            .as_str()
            .expect("name")
            .contains("(3 pages)")
    );
    for prefix in [
        "tokens: POST /accesstoken",
        "tokens: POST /miami",
        "dates pages",
        "feed pages",
        "ingestion",
        "mixed: 4 readers while ingestion runs",
        "mixed: ingestion, 2 clients, while",
    ] {
        assert!(
            row(prefix)["rate"].as_f64().expect("rate") > 0.0,
            "{prefix}: {v}"
        );
        assert!(
            row(prefix)["p99Ms"].as_f64().expect("p99") > 0.0,
            "{prefix}: {v}"
        );
    }
    assert!(
        row("ingestion")["note"]
            .as_str()
            .expect("note")
            .contains(" 0 rejected"),
        "{v}"
    );
    assert!(row("server peak memory: own")["met"].is_boolean(), "{v}");
    assert!(
        row("server peak memory: VmHWM")["note"]
            .as_str()
            .expect("note")
            .contains("MiB")
    );
    assert_eq!(v["context"]["database"], "sqlite");

    // A second run on the same database is refused: the benchmark needs a fresh one.
    let again = bench()
        .args(["--database-url", &format!("sqlite://{}", db.display())])
        .args(TINY)
        .output()
        .expect("run ledgerport-bench again");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

#[test]
fn bad_sizes_are_refused_naming_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerport-bench"))
        .args(["--partners", "1"])
        .output()
        .expect("run ledgerport-bench");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--partners"));
}

/// A new directory of this test process, and what removes it also when an assertion fails.
fn test_dir(name: &str) -> (PathBuf, RemoveOnDrop) {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("make the test's directory");
    (dir.clone(), RemoveOnDrop(dir))
}

/// Removes the test's directory also when an assertion fails.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ingest --floor` writes every row the run's events left (not the closings' entries) again by
/// SQLite alone, prints its rate against the engine's, and removes its database.
#[test]
fn the_ingestion_floor_writes_again_every_row_of_the_runs_events() {
    let (dir, _cleanup) = test_dir("ledgerport-bench-floor");
    let db = dir.join("ingest.db");
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerport-bench"))
        .args([
            "ingest",
            "--log",
            "warn",
            "--events",
            "300",
            "--ledgers",
            "3",
        ])
        .args(["--batch", "100", "--floor", "--database"])
        .arg(&db)
        .output()
        .expect("run ledgerport-bench ingest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 300 events over 3 ledgers: 270 captures (an event row, a payment row, an entry and its
    // fee's entry each) and 30 refunds (an event row and an entry each).
    assert!(
        stdout.contains("the events' 1140 rows of events, payments and entries"),
        "{stdout}"
    );
    assert!(stdout.contains("the engine's rate is"), "{stdout}");
    let mut floor = db.clone().into_os_string();
    floor.push("-floor");
    assert!(
        !std::path::Path::new(&floor).exists(),
        "the floor's database is removed"
    );
}
