//! `ledgerport check-report` against the demo world, as a partner would run it: every closed
//! date matches its proof with accounting keys and with sales-unit keys; after an entry is
//! altered in the database behind the server's back, it fails naming the ledger, topic and date,
//! and so does the operator's `verify`. Bad input and an unreachable server are clear errors.
//! Over https:// (a TLS proxy with a test CA's certificate in front of the demo) it passes with
//! `--ca-file` naming that CA and refuses the server's certificate without it.

mod tls;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the demo printed: its base URL and the keys it issued.
struct Demo {
    base: String,
    partner_id: String,
    partner_secret: String,
    unit_id: String,
    unit_secret: String,
    unit_sub: String,
}

/// The value after `label` on the first line (after `from`) that starts with it.
fn value_after(lines: &[String], from: usize, label: &str) -> String {
    lines[from..]
        .iter()
        .map(|l| l.trim())
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in:\n{}", lines.join("\n")))
        .trim()
        .to_owned()
}

fn start_demo(db: &Path) -> (KillOnDrop, Demo) {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_ledgerport"))
            .args([
                "--log",
                "warn",
                "demo",
                "--days",
                "6",
                "--listen",
                "127.0.0.1:0",
                "--database",
            ])
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start demo"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let done = line.contains("Stop with Ctrl-C");
        lines.push(line);
        if done {
            break;
        }
    }
    let base = value_after(&lines, 0, "Ledgerport demo:")
        .split_whitespace()
        .next()
        .expect("base url")
        .to_owned();
    let partner_at = lines
        .iter()
        .position(|l| l.starts_with("Accounting keys"))
        .expect("the partner's keys");
    let demo = Demo {
        base,
        unit_id: value_after(&lines, 0, "client_id:"),
        unit_secret: value_after(&lines, 0, "client_secret:"),
        unit_sub: value_after(&lines, 0, "Ocp-Apim-Subscription-Key:"),
        partner_id: value_after(&lines, partner_at, "client_id:"),
        partner_secret: value_after(&lines, partner_at, "client_secret:"),
    };
    (child, demo)
}

fn ledgerport(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ledgerport"))
        .args(args)
        .env_remove("LEDGERPORT_CLIENT_SECRET")
        .env_remove("LEDGERPORT_CLIENT_ID")
        .env_remove("LEDGERPORT_SUBSCRIPTION_KEY")
        .output()
        .expect("run ledgerport")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn check_report_passes_on_the_demo_and_names_the_date_of_an_altered_entry() {
    let dir = std::env::temp_dir().join(format!("ledgerport-check-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("demo.db");
    let (demo_process, demo) = start_demo(&db);

    // The entry to alter later: a capture on ledger 302321's latest closed date. A server keeps
    // the pages of closed dates it has served (they never change), so the passing runs below
    // stop the day before: the altered date's page is first served after the alteration.
    let url = format!("sqlite://{}", db.display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("open the demo's database");
    let (seq, altered_date, day_before): (i64, String, String) = sqlx::query_as(
        "SELECT seq, ledger_date, date(ledger_date, '-1 day') FROM entries \
         WHERE ledger_id = '302321' AND topic = 0 AND entry_type = 'capture' \
         AND ledger_date = (SELECT closed_through FROM ledgers WHERE ledger_id = '302321') \
         ORDER BY seq LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("a capture on the latest closed date");

    // The partner's accounting keys: every ledger it is granted, both topics.
    let partner = ledgerport(&[
        "check-report",
        "--base-url",
        &demo.base,
        "--client-id",
        &demo.partner_id,
        "--client-secret",
        &demo.partner_secret,
        "--to",
        &day_before,
    ]);
    let out = text(&partner);
    assert!(partner.status.success(), "{out}");
    assert!(out.contains("3 ledgers,"), "{out}");
    assert!(out.contains("every date matches its proof"), "{out}");
    assert!(out.contains("ledger 302321 funds: "), "{out}");
    assert!(out.contains(" dates from "), "{out}");

    // The sales unit's keys: its one ledger.
    let unit = ledgerport(&[
        "check-report",
        "--base-url",
        &demo.base,
        "--client-id",
        &demo.unit_id,
        "--client-secret",
        &demo.unit_secret,
        "--subscription-key",
        &demo.unit_sub,
        "--to",
        &day_before,
    ]);
    let out = text(&unit);
    assert!(unit.status.success(), "{out}");
    assert!(out.contains("1 ledger,"), "{out}");

    // Alter it (its reference only: count, sum and balances still agree), behind the server's
    // back.
    sqlx::query(
        "UPDATE entries SET reference = reference || '-altered' \
         WHERE ledger_id = '302321' AND topic = 0 AND seq = ?",
    )
    .bind(seq)
    .execute(&mut conn)
    .await
    .expect("alter the entry");
    drop(conn);

    let after = ledgerport(&[
        "check-report",
        "--base-url",
        &demo.base,
        "--client-id",
        &demo.partner_id,
        "--client-secret",
        &demo.partner_secret,
        "--ledger",
        "302321",
    ]);
    let out = text(&after);
    assert_eq!(after.status.code(), Some(1), "{out}");
    let expected = format!("mismatch: ledger 302321 funds {altered_date}: digest: the proof says");
    assert!(out.contains(&expected), "expected {expected:?} in {out}");

    // The operator's verify finds it too, naming the date.
    let verify = ledgerport(&["--database-url", &url, "verify", "--ledger", "302321"]);
    let out = text(&verify);
    assert_eq!(verify.status.code(), Some(1), "{out}");
    let expected = format!("ledger 302321 funds: proof: ledgerDate {altered_date}: digest:");
    assert!(out.contains(&expected), "expected {expected:?} in {out}");

    drop(demo_process);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_and_an_unreachable_server_are_errors_naming_what_failed() {
    let common = ["--client-id", "id", "--client-secret", "secret"];
    let cases: [(&[&str], &str); 5] = [
        (&["--base-url", "not a url"], "--base-url"),
        (&["--base-url", "ftp://example.com"], "--base-url"),
        (
            &["--base-url", "http://127.0.0.1:9", "--from", "2024-02-30"],
            "--from",
        ),
        (&["--base-url", "http://127.0.0.1:9"], "cannot reach"),
        (
            &[
                "--base-url",
                "https://127.0.0.1:9",
                "--ca-file",
                "/nonexistent/ca.pem",
            ],
            "--ca-file: /nonexistent/ca.pem",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["check-report"];
        all.extend_from_slice(args);
        all.extend_from_slice(&common);
        let o = ledgerport(&all);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(expected),
            "{args:?}: expected {expected:?} in {out}"
        );
    }
}

#[test]
fn over_https_it_trusts_the_ca_file_and_refuses_an_unknown_certificate() {
    let dir = std::env::temp_dir().join(format!(
        "ledgerport-check-report-tls-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (demo_process, demo) = start_demo(&dir.join("demo.db"));
    let port: u16 = demo
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("the demo's port");
    let ca = tls::TestCa::new("check-report");
    let proxy = tls::TlsProxy::start(&ca, port);
    let base = format!("https://127.0.0.1:{}", proxy.port);
    let ca_file = ca.ca().display().to_string();
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = vec![
            "check-report",
            "--base-url",
            &base,
            "--client-id",
            &demo.partner_id,
            "--client-secret",
            &demo.partner_secret,
        ];
        args.extend_from_slice(extra);
        ledgerport(&args)
    };

    let trusted = run(&["--ca-file", &ca_file]);
    let out = text(&trusted);
    assert!(trusted.status.success(), "{out}");
    assert!(out.contains("every date matches its proof"), "{out}");

    // The system's roots alone do not know the test CA: the handshake fails, saying why.
    let unknown = run(&[]);
    let out = text(&unknown);
    assert_eq!(unknown.status.code(), Some(1), "{out}");
    assert!(out.contains("cannot reach"), "{out}");
    assert!(out.contains("certificate"), "{out}");

    drop(proxy);
    drop(demo_process);
    let _ = std::fs::remove_dir_all(&dir);
}
