//! The configuration as the binary sees it: a TOML file, then `LEDGERPORT_*` variables, then
//! flags; bad configurations refused at start naming the key; `serve` listening where the file
//! says. Every run starts from an empty environment so the test's own environment cannot leak in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ledgerport-config-test-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

fn ledgerport(env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ledgerport"));
    cmd.env_clear().envs(env.iter().copied()).args(args);
    cmd
}

/// Runs ledgerport to its end; a run that has not ended after 30 s (say, a server that started
/// when it should have refused to) is killed and fails the test.
fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut child = ledgerport(env, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ledgerport");
    for _ in 0..300 {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    panic!(
        "ledgerport {args:?} did not end within 30 s; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const FILE: &str = r#"
database_url = "postgres://app:s3cret@db.internal:5432/ledgerport"

[log]
level = "warn"

[server]
listen = "127.0.0.1:9001"
issuer = "file-issuer"
audience = "file-audience"
request_timeout_secs = 11

[limits]
token_burst = 7
report_burst = 8
"#;

#[test]
fn config_print_shows_file_values_overridden_by_env_and_env_overridden_by_flags() {
    let dir = temp_dir("print");
    let file = write(&dir, "ledgerport.toml", FILE);
    let file = file.to_str().expect("utf-8 path");
    let out = run(
        &[
            ("LEDGERPORT_CONFIG", file),
            ("LEDGERPORT_ISSUER", "env-issuer"),
            ("LEDGERPORT_REQUEST_TIMEOUT", "22"),
            ("LEDGERPORT_LIMITS_TOKEN_BURST", "70"),
        ],
        &[
            "config",
            "print",
            "--request-timeout",
            "33",
            "--limits-report-burst",
            "800",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    let table: toml::Table = printed.parse().expect("config print prints TOML");
    let get = |section: &str, key: &str| table[section][key].clone();

    // The password never shows; the rest of the URL does.
    assert_eq!(
        table["database_url"].as_str(),
        Some("postgres://app:***@db.internal:5432/ledgerport")
    );
    assert!(!printed.contains("s3cret"), "{printed}");
    // File only.
    assert_eq!(get("log", "level").as_str(), Some("warn"));
    assert_eq!(get("server", "listen").as_str(), Some("127.0.0.1:9001"));
    assert_eq!(get("server", "audience").as_str(), Some("file-audience"));
    // File overridden by env.
    assert_eq!(get("server", "issuer").as_str(), Some("env-issuer"));
    assert_eq!(get("limits", "token_burst").as_integer(), Some(70));
    // File and env overridden by flags.
    assert_eq!(get("server", "request_timeout_secs").as_integer(), Some(33));
    assert_eq!(get("limits", "report_burst").as_integer(), Some(800));
    // Defaults where nobody said anything.
    assert_eq!(get("log", "format").as_str(), Some("pretty"));
    assert_eq!(get("server", "close_interval_secs").as_integer(), Some(10));
    assert_eq!(get("limits", "enabled").as_bool(), Some(true));
    assert_eq!(get("limits", "token_per_second").as_float(), Some(20.0));

    // Each value says where it came from.
    let lines: Vec<&str> = printed.lines().collect();
    for expected in [
        format!("audience = \"file-audience\" # config file {file}"),
        "issuer = \"env-issuer\" # env LEDGERPORT_ISSUER".to_string(),
        "token_burst = 70 # env LEDGERPORT_LIMITS_TOKEN_BURST".to_string(),
        "request_timeout_secs = 33 # flag --request-timeout".to_string(),
        "report_burst = 800 # flag --limits-report-burst".to_string(),
        "format = \"pretty\" # default".to_string(),
    ] {
        assert!(lines.contains(&expected.as_str()), "{expected}\n{printed}");
    }
}

#[test]
fn the_config_flag_and_global_flags_override_the_environment() {
    let dir = temp_dir("flags");
    let file = write(&dir, "ledgerport.toml", FILE);
    let out = run(
        &[
            ("LEDGERPORT_LOG", "error"),
            ("LEDGERPORT_DATABASE_URL", "sqlite://env.db"),
        ],
        &[
            "--config",
            file.to_str().expect("utf-8 path"),
            "--database-url",
            "sqlite://flag.db",
            "config",
            "print",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table: toml::Table = String::from_utf8(out.stdout)
        .expect("utf-8")
        .parse()
        .expect("TOML");
    assert_eq!(table["database_url"].as_str(), Some("sqlite://flag.db"));
    assert_eq!(table["log"]["level"].as_str(), Some("error"));
    assert_eq!(table["server"]["listen"].as_str(), Some("127.0.0.1:9001"));
}

/// Runs `serve` with `env` and `args` and expects it to refuse to start with `message`.
fn assert_serve_refused(env: &[(&str, &str)], args: &[&str], message: &str) {
    let mut all = args.to_vec();
    all.push("serve");
    let out = run(env, &all);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out), format!("error: configuration: {message}\n"));
    assert!(out.stdout.is_empty());
}

#[test]
fn serve_refuses_an_unknown_key_naming_it_with_its_section() {
    let dir = temp_dir("unknown");
    let file = write(&dir, "bad.toml", "[limits]\ntoken_brust = 5\n");
    let path = file.to_str().expect("utf-8 path");
    assert_serve_refused(
        &[],
        &["--config", path],
        &format!(
            "{path}: unknown key `limits.token_brust`; expected one of: limits.enabled, \
             limits.token_per_second, limits.token_burst, limits.report_per_second, \
             limits.report_burst, limits.failed_token_slowdown_after"
        ),
    );
}

#[test]
fn serve_refuses_a_bad_value_naming_the_key_and_what_is_expected() {
    let dir = temp_dir("bad-value");
    let file = write(&dir, "bad.toml", "[server]\nledger_list_page_size = 0\n");
    let path = file.to_str().expect("utf-8 path");
    assert_serve_refused(
        &[("LEDGERPORT_CONFIG", path)],
        &[],
        &format!(
            "`server.ledger_list_page_size` in {path}: expected a whole number from 1 to 10000, \
             got 0"
        ),
    );
    let file = write(&dir, "bad-type.toml", "[limits]\nenabled = \"yes\"\n");
    let path = file.to_str().expect("utf-8 path");
    assert_serve_refused(
        &[],
        &["--config", path],
        &format!(
            "`limits.enabled` in {path}: expected `true` or `false` (invalid type: string \
             \"yes\", expected a boolean)"
        ),
    );
}

#[test]
fn serve_refuses_a_bad_environment_value_naming_the_variable() {
    assert_serve_refused(
        &[("LEDGERPORT_LISTEN", "localhost:8080")],
        &[],
        "LEDGERPORT_LISTEN (config key `server.listen`): expected a socket address such as \
         `127.0.0.1:8080` or `[::]:8080`, got \"localhost:8080\"",
    );
}

#[test]
fn serve_refuses_a_missing_config_file() {
    let out = run(&[], &["--config", "/nonexistent/ledgerport.toml", "serve"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(
            "error: configuration: cannot read the config file /nonexistent/ledgerport.toml: "
        ),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn serve_listens_on_the_address_of_the_config_file() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        probe.local_addr().expect("addr").port()
    };
    let dir = temp_dir("serve");
    // The database URL comes from a secret file, as in production.
    let db = dir.join("serve.db");
    let url_file = write(
        &dir,
        "database-url",
        &format!("sqlite://{}\n", db.display()),
    );
    // So does the key that encrypts the signing keys.
    let kek_file = write(
        &dir,
        "signing-kek",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    );
    let config = write(
        &dir,
        "ledgerport.toml",
        &format!(
            "database_url_file = {:?}\nsigning_key_encryption_key_file = {:?}\n[log]\nlevel = \"warn\"\n[server]\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"off\"\n",
            url_file.display().to_string(),
            kek_file.display().to_string()
        ),
    );
    let _child = KillOnDrop(
        ledgerport(
            &[],
            &["--config", config.to_str().expect("utf-8 path"), "serve"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve"),
    );
    let client = ledgerport_server::http::client_builder()
        .expect("an HTTP client builder")
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(resp) = client.get(&url).send().await {
            answer = Some((resp.status().as_u16(), resp.text().await.expect("body")));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, Some((200, "ok".to_string())));
    assert!(
        db.exists(),
        "the server opened the database named in the URL file"
    );
}

#[tokio::test]
async fn serve_answers_metrics_on_the_metrics_listener_only() {
    let free_port = || {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        probe.local_addr().expect("addr").port()
    };
    let (port, metrics_port) = (free_port(), free_port());
    let dir = temp_dir("metrics");
    let db = dir.join("metrics.db");
    let env = [
        (
            "LEDGERPORT_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        ),
        ("LEDGERPORT_LISTEN", format!("127.0.0.1:{port}")),
        (
            "LEDGERPORT_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        ),
        ("LEDGERPORT_INSECURE_PLAINTEXT_SIGNING_KEYS", "true".into()),
        ("LEDGERPORT_LOG", "warn".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _child = KillOnDrop(
        ledgerport(&env, &["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serve"),
    );
    let client = ledgerport_server::http::client_builder()
        .expect("an HTTP client builder")
        .no_proxy()
        .build()
        .expect("client");
    let get = |url: String| {
        let client = client.clone();
        async move {
            for _ in 0..100 {
                if let Ok(resp) = client.get(&url).send().await {
                    return (resp.status().as_u16(), resp.text().await.expect("body"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("{url} did not answer");
        }
    };
    let public = get(format!("http://127.0.0.1:{port}/metrics")).await;
    let metrics = get(format!("http://127.0.0.1:{metrics_port}/metrics")).await;
    assert_eq!(public.0, 404, "{}", public.1);
    assert_eq!(metrics.0, 200);
    assert!(
        metrics
            .1
            .contains("# TYPE ledgerport_http_requests_total counter"),
        "{}",
        metrics.1
    );
    // The public listener's 404 was counted; the scrape itself is not a public request.
    assert!(
        metrics.1.contains(
            r#"ledgerport_http_requests_total{route="unmatched",method="GET",status="404"} 1"#
        ),
        "{}",
        metrics.1
    );
}
