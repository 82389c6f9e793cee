//! Token signing keys at rest: `serve` stores them encrypted with the configured key-encryption
//! key, refuses to start with a wrong one (naming the setting) or with none, replaces keys left in
//! clear, and the key-encryption key is replaced by rotating the signing key (OPERATIONS.md).
//! Each run starts from an empty environment and its own SQLite file.

use ledgerport_core::clock::SystemClock;
use ledgerport_server::tokens::{KeyEncryptionKey, SigningKeyProtection, is_sealed};
use ledgerport_store::SigningKeyRecord;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEK_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEK_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn database(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "ledgerport-signing-keys-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    format!("sqlite://{}", dir.join("db.sqlite").display())
}

fn ledgerport(db: &str, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ledgerport"));
    cmd.env_clear()
        .env("LEDGERPORT_DATABASE_URL", db)
        .env("LEDGERPORT_LOG", "warn")
        .env("LEDGERPORT_METRICS_LISTEN", "off")
        .envs(env.iter().copied())
        .args(args);
    cmd
}

/// Runs a command to its end.
fn run(db: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    ledgerport(db, env, args).output().expect("run ledgerport")
}

/// Starts `serve` and waits until it answers; returns its JWKS `kid`s. Panics if it exits.
async fn serve(db: &str, env: &[(&str, &str)]) -> (Server, Vec<String>) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        probe.local_addr().expect("addr").port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut all = env.to_vec();
    all.push(("LEDGERPORT_LISTEN", &listen));
    let mut server = Server(
        ledgerport(db, &all, &["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve"),
    );
    let http = ledgerport_server::http::client_builder()
        .expect("an HTTP client builder")
        .no_proxy()
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http
            .get(format!("http://{listen}/.well-known/jwks.json"))
            .send()
            .await
        {
            let jwks: serde_json::Value = r.json().await.expect("jwks");
            let kids = jwks["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| k["kid"].as_str().expect("kid").to_owned())
                .collect();
            return (server, kids);
        }
        if let Some(status) = server.0.try_wait().expect("wait") {
            let mut stderr = String::new();
            if let Some(mut e) = server.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            panic!("serve exited with {status}: {stderr}");
        }
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stored_keys(db: &str) -> Vec<SigningKeyRecord> {
    let store = ledgerport_store::open(db, Arc::new(SystemClock))
        .await
        .expect("open store");
    store.signing_keys().await.expect("signing keys")
}

fn kek(b64: &str) -> KeyEncryptionKey {
    KeyEncryptionKey::from_base64(b64).expect("key")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn signing_keys_are_stored_encrypted_and_a_wrong_or_missing_key_stops_serve_naming_it() {
    // Arrange
    let db = database("encrypted");
    let (server, kids) = serve(&db, &[("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK_A)]).await;
    drop(server);

    // Act
    let keys = stored_keys(&db).await;
    let wrong = run(
        &db,
        &[("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK_B)],
        &["serve"],
    );
    let missing = run(&db, &[], &["serve"]);

    // Assert: the stored bytes are sealed, open only with key A, and do not contain the key.
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(kids, vec![k.kid.clone()]);
    assert!(is_sealed(&k.private_der));
    let der = SigningKeyProtection::encrypted(kek(KEK_A))
        .open(&k.kid, &k.private_der)
        .expect("opens with key A");
    // PKCS#8 of an Ed25519 key: the 32-byte private key is the OCTET STRING at offset 16.
    assert_eq!(der[14..16], [0x04, 0x20]);
    let private = &der[16..48];
    assert!(!k.private_der.windows(32).any(|w| w == private));
    assert!(
        SigningKeyProtection::encrypted(kek(KEK_B))
            .open(&k.kid, &k.private_der)
            .is_err()
    );
    // A wrong key stops the server at start, naming the setting and the key it cannot read.
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains(&format!(
            "signing key {} cannot be decrypted with signing_key_encryption_key",
            k.kid
        )),
        "{}",
        stderr(&wrong)
    );
    // No key at all is a configuration error, before anything is opened.
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(
        stderr(&missing)
            .starts_with("error: configuration: no `signing_key_encryption_key` is configured"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn the_key_encryption_key_is_replaced_by_rotating_the_signing_key() {
    // Arrange: a database whose signing key is encrypted with key A.
    let db = database("rotation");
    let (server, before) = serve(&db, &[("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK_A)]).await;
    drop(server);

    // Act: rotate with B as the key and A as the previous one, then serve with B alone.
    let rotate = run(
        &db,
        &[
            ("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK_B),
            ("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_PREVIOUS", KEK_A),
        ],
        &["admin", "--json", "signing-key", "rotate"],
    );
    let (_server, after) = serve(&db, &[("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK_B)]).await;
    let keys = stored_keys(&db).await;

    // Assert: the old key is retired (still verifying, so still in the JWKS), the new one signs
    // and is encrypted with B.
    assert!(rotate.status.success(), "{}", stderr(&rotate));
    let rotated: serde_json::Value = serde_json::from_slice(&rotate.stdout).expect("json");
    assert_eq!(rotated["retired"], serde_json::json!(before));
    let new_kid = rotated["new_kid"].as_str().expect("new kid");
    assert!(after.iter().any(|k| k == new_kid));
    assert!(after.contains(&before[0]));
    let new = keys.iter().find(|k| k.kid == new_kid).expect("new key");
    assert!(new.retired_at.is_none());
    assert!(
        SigningKeyProtection::encrypted(kek(KEK_B))
            .open(&new.kid, &new.private_der)
            .is_ok()
    );
    let old = keys.iter().find(|k| k.kid == before[0]).expect("old key");
    assert!(old.retired_at.is_some());
}

#[tokio::test]
async fn signing_keys_left_in_clear_are_replaced_by_encrypted_ones_at_start() {
    // Arrange: a database made without encryption (as before keys were encrypted).
    let db = database("upgrade");
    let (server, plain) = serve(
        &db,
        &[("LEDGERPORT_INSECURE_PLAINTEXT_SIGNING_KEYS", "true")],
    )
    .await;
    drop(server);
    let before = stored_keys(&db).await;

    // Act
    let (_server, after) = serve(&db, &[("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK_A)]).await;
    let keys = stored_keys(&db).await;
    let list = run(
        &db,
        &[("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK_A)],
        &["admin", "--json", "signing-key", "list"],
    );

    // Assert: the key in clear is retired (its tokens keep verifying until they expire); the
    // key that signs now is encrypted.
    assert!(!is_sealed(&before[0].private_der));
    assert_eq!(keys.len(), 2);
    let old = keys.iter().find(|k| k.kid == plain[0]).expect("old key");
    assert!(old.retired_at.is_some());
    let new = keys.iter().find(|k| k.kid != plain[0]).expect("new key");
    assert!(new.retired_at.is_none() && is_sealed(&new.private_der));
    assert!(after.contains(&new.kid) && after.contains(&old.kid));
    assert!(list.status.success(), "{}", stderr(&list));
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let at_rest: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|k| k["at_rest"].as_str().expect("at_rest"))
        .collect();
    assert_eq!(at_rest, vec!["in clear", "encrypted"]);
}
