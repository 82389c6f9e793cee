//! `ledgerport admin users`: the portal's first users, with the password read from standard
//! input and never printed.

use std::io::Write;
use std::process::{Command, Stdio};

struct Db {
    dir: std::path::PathBuf,
    url: String,
}

impl Db {
    fn new() -> Db {
        let dir = std::env::temp_dir().join(format!(
            "ledgerport-portal-users-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("ledgerport.db").display());
        Db { dir, url }
    }

    /// Runs `ledgerport admin <args>` with `stdin` as standard input.
    fn admin(&self, args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledgerport"))
            .args(["--log", "warn", "--database-url", &self.url, "admin"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ledgerport");
        // A command that fails before reading may close its input first: not an error here.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes());
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const PASSWORD: &str = "a long enough secret\n";

#[test]
fn users_of_each_kind_are_created_with_the_password_from_stdin_and_listed() {
    let db = Db::new();
    let ok = |args: &[&str], stdin: &str| {
        let (code, out, err) = db.admin(args, stdin);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(!out.contains("a long enough secret") && !err.contains("a long enough secret"));
        out
    };
    ok(
        &[
            "merchant",
            "create",
            "--scheme",
            "business:NO:ORG",
            "--org-id",
            "987654321",
            "--name",
            "ACME AS",
        ],
        "",
    );
    ok(
        &[
            "partner",
            "create",
            "--name",
            "Regnskap AS",
            "--kind",
            "accounting",
            "--email",
            "a@r.example",
        ],
        "",
    );

    ok(
        &[
            "users",
            "create",
            "--kind",
            "operator",
            "--email",
            "Ops@Example.com",
            "--password-stdin",
        ],
        PASSWORD,
    );
    ok(
        &[
            "users",
            "create",
            "--kind",
            "merchant",
            "--org",
            "987654321",
            "--email",
            "kari@acme.example",
            "--password-stdin",
        ],
        PASSWORD,
    );
    ok(
        &[
            "users",
            "create",
            "--kind",
            "partner",
            "--partner",
            "1",
            "--email",
            "p@r.example",
            "--password-stdin",
        ],
        PASSWORD,
    );

    let listed: serde_json::Value =
        serde_json::from_str(&ok(&["--json", "users", "list"], "")).expect("json");
    let rows: Vec<(String, String, String)> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|u| {
            (
                u["email"].as_str().expect("email").to_owned(),
                u["kind"].as_str().expect("kind").to_owned(),
                u["of"].as_str().expect("of").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("ops@example.com".into(), "operator".into(), "".into()),
            (
                "kari@acme.example".into(),
                "merchant".into(),
                "merchant 1".into()
            ),
            ("p@r.example".into(), "partner".into(), "partner 1".into()),
        ]
    );
}

#[test]
fn bad_users_are_refused_naming_what_is_wrong() {
    let db = Db::new();
    for (args, stdin, says) in [
        (
            vec![
                "users",
                "create",
                "--kind",
                "operator",
                "--email",
                "o@x.example",
                "--password-stdin",
            ],
            "short\n",
            "must be at least 12 characters",
        ),
        (
            vec![
                "users",
                "create",
                "--kind",
                "merchant",
                "--org",
                "999999999",
                "--email",
                "m@x.example",
                "--password-stdin",
            ],
            PASSWORD,
            "--org: no merchant with organisation number 999999999",
        ),
        (
            vec![
                "users",
                "create",
                "--kind",
                "boss",
                "--email",
                "b@x.example",
                "--password-stdin",
            ],
            PASSWORD,
            "--kind: must be merchant, partner or operator",
        ),
        (
            vec![
                "users",
                "create",
                "--kind",
                "operator",
                "--email",
                "o@x.example",
            ],
            PASSWORD,
            "--password-stdin",
        ),
    ] {
        let (code, _, err) = db.admin(&args, stdin);
        assert_ne!(code, Some(0), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// Every `(recipient, subject)` of the mails in `admin --json outbox list`'s answer.
fn mails_in(v: &serde_json::Value, into: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(o) => {
            if let (Some(r), Some(s)) = (o.get("recipient"), o.get("subject")) {
                into.push((
                    r.as_str().unwrap_or_default().to_owned(),
                    s.as_str().unwrap_or_default().to_owned(),
                ));
            }
            o.values().for_each(|x| mails_in(x, into));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| mails_in(x, into)),
        _ => {}
    }
}

#[test]
fn grant_changes_from_the_admin_cli_tell_the_users_of_both_sides_by_mail() {
    let db = Db::new();
    let ok = |args: &[&str], stdin: &str| {
        let (code, out, err) = db.admin(args, stdin);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        out
    };
    ok(
        &[
            "merchant",
            "create",
            "--scheme",
            "business:NO:ORG",
            "--org-id",
            "987654321",
            "--name",
            "ACME AS",
        ],
        "",
    );
    ok(
        &[
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
        ],
        "",
    );
    ok(
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
        ],
        "",
    );
    ok(
        &[
            "partner",
            "create",
            "--name",
            "Regnskap AS",
            "--kind",
            "accounting",
            "--email",
            "a@r.example",
        ],
        "",
    );
    ok(&["partner", "approve", "1"], "");
    for (kind, of, email) in [
        ("merchant", ["--org", "987654321"], "kari@acme.example"),
        ("partner", ["--partner", "1"], "p@r.example"),
    ] {
        ok(
            &[
                "users",
                "create",
                "--kind",
                kind,
                of[0],
                of[1],
                "--email",
                email,
                "--password-stdin",
            ],
            PASSWORD,
        );
    }

    let grant = [
        "--partner",
        "1",
        "--ledger",
        "12345",
        "--for-merchant",
        "987654321",
    ];
    ok(&[&["grant", "create"][..], &grant[..]].concat(), "");
    ok(&[&["grant", "remove"][..], &grant[..]].concat(), "");

    let listed: serde_json::Value =
        serde_json::from_str(&ok(&["--json", "outbox", "list"], "")).expect("json");
    let mut mails = vec![];
    mails_in(&listed, &mut mails);
    mails.sort();
    let granted = "Access granted: ledger 12345 (ACME Oslo)".to_owned();
    let removed = "Access removed: ledger 12345 (ACME Oslo)".to_owned();
    assert_eq!(
        mails,
        vec![
            ("kari@acme.example".into(), granted.clone()),
            ("kari@acme.example".into(), removed.clone()),
            ("p@r.example".into(), granted),
            ("p@r.example".into(), removed),
        ]
    );
}
