//! Property-based fuzzing of every parser of hostile input in the HTTP layer: cursors, Basic auth
//! headers, the token form body, JWTs and ingestion JSON (the identifier parsers are fuzzed in
//! `crates/core/tests/fuzz_parsers.rs`). No input makes them panic; tampered cursors and tokens
//! are never accepted; the endpoints answer hostile bodies with 4xx, never 500.
//!
//! Cases per target: `PROPTEST_CASES` (default 256); the targets that go through a running
//! server (an HTTP request per case) run a tenth of that, at least 32. A longer run:
//! `PROPTEST_CASES=100000 cargo test --release --workspace --test fuzz_parsers`.

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Keys, TestApp, msn, world};
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use ledgerport_core::world::{KeyKind, KeyOwner, PartnerKind};
use ledgerport_server::api::QueryParams;
use ledgerport_server::api::token::check_token_form;
use ledgerport_server::credentials::{BasicAuthError, basic_credentials};
use ledgerport_server::cursor::{Binding, CursorCodec};
use ledgerport_server::ingest::parse_event;
use ledgerport_server::{LimitsConfig, ServerConfig};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

fn config() -> ProptestConfig {
    // `default()` reads PROPTEST_CASES. Failures are not written to files: a failure found
    // becomes a named regression test.
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// For targets that make an HTTP request per case.
fn endpoint_config() -> ProptestConfig {
    let c = config();
    ProptestConfig {
        cases: (c.cases / 10).max(32),
        ..c
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations of valid text (cursors, tokens).

#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, char),
    Insert(prop::sample::Index, char),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
    Append(String),
    Swap(prop::sample::Index, prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![
        4 => prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => prop::sample::select(vec!['+', '/', '=', '.', ' ', '%', 'é', '\0']),
        1 => any::<char>(),
    ];
    prop_oneof![
        4 => (any::<prop::sample::Index>(), ch.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        2 => (any::<prop::sample::Index>(), ch).prop_map(|(i, c)| Mutation::Insert(i, c)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Delete),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => "[A-Za-z0-9_.=-]{1,8}".prop_map(Mutation::Append),
        1 => (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

fn mutate(s: &str, muts: &[Mutation]) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for m in muts {
        match m {
            Mutation::Replace(i, c) if !chars.is_empty() => {
                let i = i.index(chars.len());
                chars[i] = *c;
            }
            Mutation::Insert(i, c) => {
                let i = i.index(chars.len() + 1);
                chars.insert(i, *c);
            }
            Mutation::Delete(i) if !chars.is_empty() => {
                let i = i.index(chars.len());
                chars.remove(i);
            }
            Mutation::Truncate(i) => {
                let i = i.index(chars.len() + 1);
                chars.truncate(i);
            }
            Mutation::Append(t) => chars.extend(t.chars()),
            Mutation::Swap(a, b) if !chars.is_empty() => {
                let (a, b) = (a.index(chars.len()), b.index(chars.len()));
                chars.swap(a, b);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Cursors.

#[derive(Debug, Clone)]
enum BindingSpec {
    Feed(String, Topic),
    Date(String, Topic, i32),
    Ledgers(String),
}

fn binding_spec() -> impl Strategy<Value = BindingSpec> {
    let ledger = "[1-9][0-9]{0,5}";
    let topic = prop_oneof![Just(Topic::Funds), Just(Topic::Fees)];
    prop_oneof![
        (ledger, topic.clone()).prop_map(|(l, t)| BindingSpec::Feed(l, t)),
        (ledger, topic, 0i32..40_000).prop_map(|(l, t, d)| BindingSpec::Date(l, t, d)),
        "(|api:[1-9][0-9]{4,6}|NO:[0-9]{1,10})".prop_map(BindingSpec::Ledgers),
    ]
}

/// Runs `f` with the [`Binding`] that `spec` describes.
fn with_binding<R>(spec: &BindingSpec, f: impl FnOnce(&Binding<'_>) -> R) -> R {
    match spec {
        BindingSpec::Feed(l, topic) => {
            let ledger = LedgerId::parse("l", l).expect("ledger id");
            f(&Binding::Feed {
                ledger: &ledger,
                topic: *topic,
            })
        }
        BindingSpec::Date(l, topic, days) => {
            let ledger = LedgerId::parse("l", l).expect("ledger id");
            f(&Binding::Date {
                ledger: &ledger,
                topic: *topic,
                date: LedgerDate::from_days(*days).expect("date"),
            })
        }
        BindingSpec::Ledgers(filter) => f(&Binding::Ledgers { filter }),
    }
}

fn cursor_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[A-Za-z0-9_-]{0,64}",
        1 => any::<String>(),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        // Well-formed wire shape (version 1, a position, 16 bytes of "MAC"), forged.
        1 => prop::collection::vec(any::<u8>(), 16..40).prop_map(|mut b| {
            b.insert(0, 1);
            URL_SAFE_NO_PAD.encode(b)
        }),
        1 => "[A-Za-z0-9_-]{500,530}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cursors_from_arbitrary_text_are_refused(
        key in prop::collection::vec(any::<u8>(), 0..40),
        spec in binding_spec(),
        text in cursor_text(),
    ) {
        let codec = CursorCodec::new(key);
        with_binding(&spec, |b| -> Result<(), TestCaseError> {
            if let Ok(p) = codec.decode(b, &text) {
                // Only a cursor this codec made for this binding decodes.
                prop_assert_eq!(codec.encode(b, &p), text.clone());
            }
            if let Ok(seq) = codec.decode_seq(b, &text) {
                prop_assert_eq!(codec.encode_seq(b, seq), text.clone());
            }
            Ok(())
        })?;
    }

    #[test]
    fn mutated_cursors_are_refused(
        key in prop::collection::vec(any::<u8>(), 1..40),
        spec in binding_spec(),
        other in binding_spec(),
        seq in prop_oneof![0i64..1000, any::<i64>().prop_map(i64::abs)],
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let codec = CursorCodec::new(key.clone());
        let real = with_binding(&spec, |b| codec.encode_seq(b, seq));
        // The real cursor is URL-safe as it stands and decodes.
        prop_assert!(real.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        prop_assert_eq!(with_binding(&spec, |b| codec.decode_seq(b, &real)), Ok(seq));
        let tampered = mutate(&real, &muts);
        if tampered != real {
            prop_assert!(with_binding(&spec, |b| codec.decode(b, &tampered)).is_err(),
                "tampered cursor {tampered:?} (from {real:?}) was accepted");
        }
        // Made for another binding, or under another key: refused.
        let same_binding = format!("{spec:?}") == format!("{other:?}");
        if !same_binding {
            prop_assert!(with_binding(&other, |b| codec.decode(b, &real)).is_err());
        }
        let mut other_key = key;
        other_key[0] ^= 1;
        prop_assert!(with_binding(&spec, |b| CursorCodec::new(other_key).decode(b, &real)).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Basic auth headers and the token form body.

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => any::<String>().prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 0..80),
        2 => ("(Basic|basic|BASIC|Bearer|Basi|) {0,2}", prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(scheme, raw)| format!("{scheme}{}", STANDARD.encode(raw)).into_bytes()),
        2 => ("(Basic|basic) ?", "[A-Za-z0-9+/=: ]{0,40}")
            .prop_map(|(scheme, rest)| format!("{scheme}{rest}").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn basic_auth_headers_never_panic(value in header_bytes()) {
        let Ok(v) = axum::http::HeaderValue::from_bytes(&value) else {
            return Ok(());
        };
        let mut h = axum::http::HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, v);
        match basic_credentials(&h) {
            Ok((id, secret)) => {
                prop_assert!(!id.is_empty() && !secret.is_empty());
                prop_assert!(!id.contains(':'));
            }
            Err(e) => prop_assert_eq!(e, BasicAuthError::Malformed),
        }
    }

    #[test]
    fn basic_auth_headers_round_trip(
        id in "[^:]{1,40}",
        secret in ".{1,60}",
        scheme in "(Basic|basic|BASIC)",
    ) {
        let value = format!("{scheme} {}", STANDARD.encode(format!("{id}:{secret}")));
        let mut h = axum::http::HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, value.parse().expect("ascii"));
        prop_assert_eq!(basic_credentials(&h), Ok((id, secret)));
    }

    #[test]
    fn token_form_bodies_never_panic(body in form_body()) {
        let verdict = check_token_form(&body);
        if verdict.is_ok() {
            let form: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&body).expect("accepted forms parse");
            let grants: Vec<_> = form.iter().filter(|(k, _)| k == "grant_type").collect();
            prop_assert_eq!(grants.len(), 1);
            prop_assert_eq!(grants[0].1.as_str(), "client_credentials");
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// The Report API's query strings (`cursor`, `includeGDPRSensitiveData`, filters).
    #[test]
    fn query_strings_never_panic(raw in prop_oneof![
        2 => "[a-zA-Z=&%+0-9_.-]{0,60}",
        1 => any::<String>(),
        1 => prop::collection::vec(
            prop_oneof![
                Just("cursor=".to_owned()),
                Just("cursor=abc".to_owned()),
                Just("includeGDPRSensitiveData=TRUE".to_owned()),
                Just("includeGDPRSensitiveData=yes".to_owned()),
                "[a-z%0-9]{0,8}=[a-z%0-9]{0,8}",
            ],
            0..5,
        ).prop_map(|v| v.join("&")),
    ]) {
        if let Ok(q) = QueryParams::parse(Some(&raw)) {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(&raw).expect("accepted queries parse");
            let keys: std::collections::HashSet<_> = pairs.iter().map(|(k, _)| k).collect();
            prop_assert_eq!(keys.len(), pairs.len());
            prop_assert!(q.cursor().is_none_or(|c| !c.is_empty()));
            let _ = q.flag("includeGDPRSensitiveData");
        }
    }
}

fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        3 => Just("grant_type=client_credentials".to_owned()),
        1 => Just("grant_type=client%5Fcredentials".to_owned()),
        1 => Just("grant_type=password".to_owned()),
        1 => Just("grant%5Ftype=client_credentials".to_owned()),
        2 => "[a-z_%+=0-9]{0,20}",
        1 => any::<String>(),
    ];
    prop_oneof![
        3 => prop::collection::vec(field, 0..5).prop_map(|f| f.join("&").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..100),
    ]
}

/// A form with many distinct fields is answered at once: duplicate fields used to be found by
/// comparing every pair (quadratic in the number of fields of a 1 MiB body).
#[test]
fn a_token_form_with_a_hundred_thousand_fields_is_checked_quickly() {
    let mut body: String = (0..100_000).map(|i| format!("k{i}=&")).collect();
    body.push_str("grant_type=client_credentials");
    let started = std::time::Instant::now();
    assert!(check_token_form(body.as_bytes()).is_ok());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// The same for query strings (a request head may be 400 KiB, so 50 000 parameters).
#[test]
fn a_query_with_fifty_thousand_parameters_is_checked_quickly() {
    let raw: String = (0..50_000).map(|i| format!("k{i}=&")).collect();
    let started = std::time::Instant::now();
    assert!(QueryParams::parse(Some(&raw)).is_ok());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Servers for the targets that need one. Limits are off: the fuzzers make thousands of token
// requests with one client id.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn server() -> TestApp {
    let app = TestApp::start_with(ServerConfig {
        close_interval: None,
        limits: LimitsConfig {
            enabled: false,
            ..LimitsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    world(&app).await;
    app
}

fn run<S: Strategy>(
    config: ProptestConfig,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

#[test]
fn token_form_bodies_through_the_endpoint() {
    let rt = runtime();
    let (app, keys) = rt.block_on(async {
        let app = server().await;
        let p = common::partner(app.store.as_ref(), "P", PartnerKind::Accounting, true).await;
        let keys = app.issue(KeyKind::Accounting, KeyOwner::Partner(p)).await;
        (app, keys)
    });
    run(endpoint_config(), form_body(), |body| {
        let status = rt.block_on(async {
            app.http
                .post(app.url("/miami/v1/token"))
                .header(
                    "Authorization",
                    format!(
                        "Basic {}",
                        STANDARD.encode(format!("{}:{}", keys.client_id, keys.secret))
                    ),
                )
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        });
        let expected = if check_token_form(&body).is_ok() {
            200
        } else {
            400
        };
        prop_assert_eq!(status, expected);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// JWTs.

fn token_text() -> impl Strategy<Value = String> {
    let seg = || "[A-Za-z0-9_-]{0,60}";
    prop_oneof![
        2 => any::<String>(),
        2 => (seg(), seg(), seg()).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        // Header JSON of our own choosing: alg none, HS256 with the public key, no kid, ...
        2 => (
            prop::sample::select(vec!["none", "HS256", "EdDSA", "RS256", "ES256", ""]),
            prop::sample::select(vec!["at+jwt", "JWT", ""]),
            "[A-Za-z0-9_-]{0,30}",
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(alg, typ, kid, sig)| {
                let header = json!({"alg": alg, "typ": typ, "kid": kid});
                let claims = json!({"iss": "ledgerport", "aud": "ledgerport-report-api",
                    "sub": "x", "exp": 4_000_000_000i64, "nbf": 0, "iat": 0, "jti": "j",
                    "client_id": "x", "key_type": "service", "key_id": 1, "generation": 1});
                format!(
                    "{}.{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(claims.to_string()),
                    URL_SAFE_NO_PAD.encode(sig)
                )
            }),
    ]
}

#[test]
fn jwts_from_arbitrary_text_are_refused() {
    let rt = runtime();
    let app = rt.block_on(server());
    run(config(), token_text(), |t| {
        let verdict = rt.block_on(app.state.tokens.verify(&t));
        prop_assert!(verdict.is_none(), "{t:?} was accepted");
        Ok(())
    });
}

#[test]
fn mutated_jwts_are_refused() {
    let rt = runtime();
    let (app, real, other) = rt.block_on(async {
        let app = server().await;
        let k: Keys = app
            .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
            .await;
        let key = app.store.key(k.key_id).await.expect("store").expect("key");
        let (real, _) = app.state.tokens.issue(&key, 3600).expect("issue");
        let (other, _) = app.state.tokens.issue(&key, 60).expect("issue");
        (app, real, other)
    });
    assert!(rt.block_on(app.state.tokens.verify(&real)).is_some());
    let splice = prop::sample::select(vec![0usize, 1, 2]);
    run(
        config(),
        (
            prop::collection::vec(mutation(), 1..4),
            splice,
            any::<bool>(),
        ),
        |(muts, part, spliced)| {
            let tampered = if spliced {
                // One segment from another valid token: signed, but not together.
                let (a, b): (Vec<&str>, Vec<&str>) =
                    (real.split('.').collect(), other.split('.').collect());
                let mut parts = a.clone();
                parts[part] = b[part];
                mutate(&parts.join("."), &muts[..muts.len() - 1])
            } else {
                mutate(&real, &muts)
            };
            if tampered != real && tampered != other {
                let verdict = rt.block_on(app.state.tokens.verify(&tampered));
                prop_assert!(
                    verdict.is_none(),
                    "tampered token {tampered:?} was accepted"
                );
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Ingestion JSON.

const EVENT_FIELDS: [&str; 13] = [
    "eventId",
    "type",
    "msn",
    "pspReference",
    "reference",
    "amount",
    "currency",
    "time",
    "topic",
    "payer",
    "name",
    "message",
    "maskedPhoneNo",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
        "[0-9]{0,9}".prop_map(Value::String),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(EVENT_FIELDS.to_vec()).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..10)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Events that are mostly right: each field valid, missing, or replaced by any JSON.
fn event_like() -> impl Strategy<Value = Value> {
    let valid = vec![
        ("eventId", json!("e-1")),
        ("type", json!("capture")),
        ("msn", json!("123455")),
        ("pspReference", json!("3343121302")),
        ("reference", json!("purchase-12")),
        ("amount", json!(10000)),
        ("currency", json!("NOK")),
        ("time", json!("2024-04-05T10:33:00.824993Z")),
        ("topic", json!("funds")),
        (
            "payer",
            json!({"name": "Kari", "message": "Kaffe", "maskedPhoneNo": "xxxx 1234"}),
        ),
    ];
    let n = valid.len();
    let time = "20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2}|)";
    (
        prop::collection::vec(0u8..6, n),
        prop::collection::vec(json_value(), n),
        time,
        prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX)],
    )
        .prop_map(move |(choice, other, t, amount)| {
            let mut obj = Map::new();
            for (i, (k, v)) in valid.iter().enumerate() {
                match choice[i] {
                    0 => {}
                    1 => {
                        obj.insert((*k).into(), other[i].clone());
                    }
                    _ => {
                        let v = match *k {
                            "time" if choice[i] == 2 => json!(t),
                            "amount" if choice[i] == 2 => json!(amount),
                            _ => v.clone(),
                        };
                        obj.insert((*k).into(), v);
                    }
                }
            }
            Value::Object(obj)
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ingestion_events_never_panic(v in prop_oneof![json_value(), event_like()]) {
        match parse_event(&v) {
            Ok(ev) => {
                prop_assert_eq!(Some(ev.event_id.as_str()), v["eventId"].as_str());
                prop_assert_eq!(Some(ev.amount), v["amount"].as_i64());
            }
            Err((Some(id), _)) => prop_assert_eq!(Some(id.as_str()), v["eventId"].as_str()),
            Err((None, _)) => {}
        }
    }
}

fn ingest_body() -> impl Strategy<Value = Vec<u8>> {
    let batch = prop::collection::vec(prop_oneof![json_value(), event_like()], 0..6)
        .prop_map(|events| json!({"events": events}).to_string().into_bytes());
    prop_oneof![
        2 => batch.clone(),
        1 => (batch, prop::collection::vec(mutation(), 1..3)).prop_map(|(b, m)| {
            mutate(&String::from_utf8_lossy(&b), &m).into_bytes()
        }),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn ingestion_bodies_through_the_endpoint() {
    let rt = runtime();
    let (app, keys) = rt.block_on(async {
        let app = server().await;
        let keys = app.service_keys().await;
        (app, keys)
    });
    run(endpoint_config(), ingest_body(), |body| {
        let (status, answer) = rt.block_on(async {
            let res = app
                .post_events_raw(
                    Some((&keys.client_id, &keys.secret)),
                    "application/json",
                    body.clone(),
                )
                .await;
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.ok())
        });
        prop_assert!(status == 200 || status == 400, "status {status}");
        let answer = answer.expect("a JSON answer");
        if status == 200 {
            let doc: Value = serde_json::from_slice(&body).expect("accepted bodies are JSON");
            let n = doc["events"].as_array().map_or(0, Vec::len);
            prop_assert_eq!(answer["results"].as_array().map(Vec::len), Some(n));
        } else {
            prop_assert_eq!(&answer["status"], &json!(400));
        }
        Ok(())
    });
}
