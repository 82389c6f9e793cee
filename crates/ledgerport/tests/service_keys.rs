//! `ledgerport admin keys issue --service`: the operator's service keys, for
//! `POST /ingest/v1/events`, issued and listed like every other key.

use std::process::Command;

fn run(db: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerport"))
        .args(["--log", "warn", "--database-url", db])
        .args(args)
        .output()
        .expect("run ledgerport");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn service_keys_are_issued_to_the_operator_for_ingestion_and_listed() {
    // Arrange
    let dir = std::env::temp_dir().join(format!("ledgerport-service-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = format!("sqlite://{}", dir.join("ledgerport.db").display());

    // Act
    let (code, issued, err) = run(&db, &["admin", "--json", "keys", "issue", "--service"]);
    let (list_code, listed, _) = run(&db, &["admin", "keys", "list", "--owner", "operator"]);

    // Assert: the secret shown once, and where to use the keys.
    assert_eq!(code, Some(0), "{err}");
    let k: serde_json::Value = serde_json::from_str(&issued).expect("json");
    assert_eq!(k["kind"], "service");
    assert_eq!(k["owner_type"], "operator");
    assert_eq!(
        k["token_endpoint"],
        "POST /ingest/v1/events with Basic auth"
    );
    assert_eq!(k["subscription_keys"], serde_json::Value::Null);
    assert!(
        k["client_secret"]
            .as_str()
            .expect("secret")
            .starts_with("lpsec_")
    );
    assert_eq!(list_code, Some(0));
    let rows: Vec<&str> = listed.lines().collect();
    assert_eq!(rows.len(), 2, "{listed}");
    let cells: Vec<&str> = rows[1].split_whitespace().collect();
    assert_eq!(
        &cells[..4],
        &[
            "1",
            "service",
            "operator",
            k["client_id"].as_str().expect("id")
        ]
    );
    assert!(!listed.contains("lpsec_"), "a secret listed: {listed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_text_answer_names_the_ingestion_endpoint() {
    // Arrange
    let dir = std::env::temp_dir().join(format!("ledgerport-service-text-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = format!("sqlite://{}", dir.join("ledgerport.db").display());

    // Act
    let (code, text, err) = run(&db, &["admin", "keys", "issue", "--service"]);

    // Assert
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "issued service keys (key 1)");
    assert!(lines[1].starts_with("client_id:"), "{text}");
    assert!(lines[2].starts_with("client_secret:"), "{text}");
    assert_eq!(
        lines[3],
        "ingestion endpoint: POST /ingest/v1/events with Basic auth"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
