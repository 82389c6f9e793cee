//! The Access Token API: `POST /accesstoken/get` (and `/accessToken/get`),
//! `POST /miami/v1/token` and the JWKS, with exact status codes, bodies and headers.

mod common;

use common::{Keys, TestApp, by, msn, partner, world};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ledgerport_core::world::{KeyKind, KeyOwner, PartnerKind, PartnerState};
use ledgerport_server::ServerConfig;
use ledgerport_server::credentials::{IssueError, issue_keys};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Unix seconds of `common::START` (2024-04-05T12:00:00Z).
const START_UNIX: i64 = 1_712_318_400;

const MISSING_SUBSCRIPTION_KEY: &str = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
const INVALID_SUBSCRIPTION_KEY: &str = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";
const UNAUTHORIZED_CLIENT: &str =
    "The client could not be authenticated: check client_id and client_secret.";

fn sub(k: &Keys) -> &str {
    k.subscription_key
        .as_deref()
        .expect("standard keys have a subscription key")
}

/// The three headers a client of `/accesstoken/get` sends, plus `extra`.
fn standard_headers<'a>(k: &'a Keys, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("client_id", k.client_id.as_str()),
        ("client_secret", k.secret.as_str()),
        ("Ocp-Apim-Subscription-Key", sub(k)),
    ];
    h.extend_from_slice(extra);
    h
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_owned())
}

/// Status, `Content-Type` and the body as JSON.
async fn read(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let ct = header(&res, "content-type").unwrap_or_default();
    let text = res.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    (status, ct, body)
}

/// A POST to `/miami/v1/token` with exactly the given headers and body.
async fn miami_with(app: &TestApp, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
    let mut r = app.http.post(app.url("/miami/v1/token"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(body.to_owned()).send().await.expect("request")
}

fn basic(client_id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    )
}

/// The claims of a token, read without checking the signature (the signature has its own test).
fn claims(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .expect("a JWT")
        .claims
}

/// Asserts a 401 `invalid_client` with a Basic challenge and returns its description.
async fn assert_invalid_client(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 401);
    let challenge = header(&res, "www-authenticate").expect("WWW-Authenticate");
    assert!(challenge.starts_with("Basic "), "{challenge}");
    assert_eq!(header(&res, "cache-control").as_deref(), Some("no-store"));
    let (_, ct, body) = read(res).await;
    assert_eq!(ct, "application/json");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert_eq!(body.as_object().expect("object").len(), 2, "{body}");
    body["error_description"]
        .as_str()
        .expect("error_description")
        .to_owned()
}

/// Asserts a 400 problem and returns its detail.
async fn assert_problem_400(res: reqwest::Response) -> String {
    let path = res.url().path().to_owned();
    let (status, ct, body) = read(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["title"], "Bad Request");
    assert_eq!(body["status"], 400);
    assert_eq!(body["instance"], path.as_str());
    body["detail"].as_str().expect("detail").to_owned()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

// ---------------------------------------------------------------- /accesstoken/get: success

#[tokio::test]
async fn a_standard_token_response_has_every_value_as_a_string_and_times_from_the_clock() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    let res = app.standard_token_raw(&standard_headers(&k, &[])).await;

    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "cache-control").as_deref(), Some("no-store"));
    let (_, ct, body) = read(res).await;
    assert_eq!(ct, "application/json");
    let token = body["access_token"]
        .as_str()
        .expect("access_token is a string")
        .to_owned();
    assert_eq!(
        body,
        json!({
            "token_type": "Bearer",
            "expires_in": "86400",
            "ext_expires_in": "0",
            "expires_on": (START_UNIX + 86400).to_string(),
            "not_before": START_UNIX.to_string(),
            "resource": "00000002-0000-0000-c000-000000000000",
            "access_token": token,
        })
    );
    assert!(
        body.as_object()
            .expect("object")
            .values()
            .all(Value::is_string),
        "{body}"
    );
}

#[tokio::test]
async fn the_access_token_alias_path_issues_tokens_too() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    let mut req = app.http.post(app.url("/accessToken/get"));
    for (name, value) in standard_headers(&k, &[]) {
        req = req.header(name, value);
    }
    let res = req.send().await.expect("request");

    let (status, _, body) = read(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], "86400");
    assert_eq!(
        claims(body["access_token"].as_str().expect("token"))["sub"],
        k.client_id.as_str()
    );
}

#[tokio::test]
async fn either_of_the_two_subscription_keys_of_a_unit_gets_a_token() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let stored = app.store.key(k.key_id).await.expect("key").expect("stored");
    let [first, second] = stored.subscription_keys.expect("subscription keys");
    assert_ne!(first, second);

    for sk in [&first, &second] {
        let res = app
            .standard_token_raw(&[
                ("client_id", &k.client_id),
                ("client_secret", &k.secret),
                ("Ocp-Apim-Subscription-Key", sk),
            ])
            .await;

        assert_eq!(res.status(), 200, "subscription key {sk}");
    }
}

#[tokio::test]
async fn a_standard_token_is_an_at_jwt_signed_by_a_key_published_in_the_jwks() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let token = app.standard_token(&k).await;

    let jwks_res = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");

    assert_eq!(jwks_res.status(), 200);
    let (_, _, jwks) = read(jwks_res).await;
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.expect("kid");
    let keys = jwks["keys"].as_array().expect("keys");
    let jwk = keys
        .iter()
        .find(|j| j["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"));
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["use"], "sig");
    let decoding =
        DecodingKey::from_ed_components(jwk["x"].as_str().expect("x")).expect("ed25519 key");
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&["ledgerport-report-api"]);
    v.set_issuer(&["ledgerport"]);
    // The token's times follow the test clock (2024), not the machine's.
    v.validate_exp = false;
    v.validate_nbf = false;
    let data = jsonwebtoken::decode::<Value>(&token, &decoding, &v).expect("signature verifies");
    let c = data.claims;
    assert_eq!(c["iss"], "ledgerport");
    assert_eq!(c["sub"], k.client_id.as_str());
    assert_eq!(c["aud"], "ledgerport-report-api");
    assert_eq!(c["iat"], START_UNIX);
    assert_eq!(c["nbf"], START_UNIX);
    assert_eq!(c["exp"], START_UNIX + 86400);
    assert_eq!(c["key_type"], "sales-unit");
    assert_eq!(c["key_id"], k.key_id);
    let jti = c["jti"].as_str().expect("jti");
    assert_eq!(jti.len(), 36, "{jti}");
    // One changed character of the signature and it no longer verifies.
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert!(jsonwebtoken::decode::<Value>(&tampered, &decoding, &v).is_err());
}

#[tokio::test]
async fn every_token_has_its_own_jti() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    let a = claims(&app.standard_token(&k).await);
    let b = claims(&app.standard_token(&k).await);

    assert_ne!(a["jti"], b["jti"]);
}

#[tokio::test]
async fn integration_partner_keys_get_a_standard_token() {
    let app = TestApp::start().await;
    world(&app).await;
    let p = partner(
        app.store.as_ref(),
        "Integrator AS",
        PartnerKind::Integration,
        true,
    )
    .await;
    let k = app.issue(KeyKind::Integration, KeyOwner::Partner(p)).await;

    let res = app.standard_token_raw(&standard_headers(&k, &[])).await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("token"))["key_type"],
        "integration"
    );
}

#[tokio::test]
async fn the_standard_token_lifetime_is_configurable() {
    let app = TestApp::start_with(ServerConfig {
        standard_token_lifetime: Duration::from_secs(3600),
        ..ServerConfig::default()
    })
    .await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    let (status, _, body) = read(app.standard_token_raw(&standard_headers(&k, &[])).await).await;

    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], "3600");
    assert_eq!(body["expires_on"], (START_UNIX + 3600).to_string());
    assert_eq!(
        claims(body["access_token"].as_str().expect("token"))["exp"],
        START_UNIX + 3600
    );
}

// ---------------------------------------------------------------- /accesstoken/get: errors

#[tokio::test]
async fn a_missing_subscription_key_is_401_in_the_gateways_words() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    for headers in [
        vec![
            ("client_id", k.client_id.as_str()),
            ("client_secret", k.secret.as_str()),
        ],
        vec![
            ("client_id", k.client_id.as_str()),
            ("client_secret", k.secret.as_str()),
            ("Ocp-Apim-Subscription-Key", ""),
        ],
    ] {
        let (status, ct, body) = read(app.standard_token_raw(&headers).await).await;

        assert_eq!(status, 401);
        assert_eq!(ct, "application/json");
        assert_eq!(
            body,
            json!({"statusCode": 401, "message": MISSING_SUBSCRIPTION_KEY})
        );
    }
}

#[tokio::test]
async fn an_unknown_subscription_key_is_401_invalid_subscription_key() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    let res = app
        .standard_token_raw(&[
            ("client_id", &k.client_id),
            ("client_secret", &k.secret),
            (
                "Ocp-Apim-Subscription-Key",
                "0123456789abcdef0123456789abcdef",
            ),
        ])
        .await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"statusCode": 401, "message": INVALID_SUBSCRIPTION_KEY})
    );
}

#[tokio::test]
async fn a_missing_client_id_or_client_secret_is_invalid_request_naming_the_header() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    let no_id = app
        .standard_token_raw(&[
            ("client_secret", &k.secret),
            ("Ocp-Apim-Subscription-Key", sub(&k)),
        ])
        .await;
    let no_secret = app
        .standard_token_raw(&[
            ("client_id", &k.client_id),
            ("Ocp-Apim-Subscription-Key", sub(&k)),
        ])
        .await;

    let (status, _, body) = read(no_id).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "The client_id header is required."})
    );
    let (status, _, body) = read(no_secret).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "The client_secret header is required."})
    );
}

#[tokio::test]
async fn an_unknown_client_id_and_a_wrong_secret_get_byte_identical_answers() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let unknown_id = "4b0f3c8e-0000-4000-8000-000000000000";
    let wrong_secret = "lpsec_this-is-not-the-secret";

    let a = app
        .standard_token_raw(&[
            ("client_id", unknown_id),
            ("client_secret", &k.secret),
            ("Ocp-Apim-Subscription-Key", sub(&k)),
        ])
        .await;
    let b = app
        .standard_token_raw(&[
            ("client_id", &k.client_id),
            ("client_secret", wrong_secret),
            ("Ocp-Apim-Subscription-Key", sub(&k)),
        ])
        .await;

    assert_eq!(a.status(), 400);
    assert_eq!(b.status(), 400);
    assert_eq!(header(&a, "content-type"), header(&b, "content-type"));
    assert_eq!(header(&a, "cache-control"), header(&b, "cache-control"));
    let (a, b) = (
        a.bytes().await.expect("body"),
        b.bytes().await.expect("body"),
    );
    assert_eq!(a, b);
    let body: Value = serde_json::from_slice(&a).expect("json");
    assert_eq!(
        body,
        json!({"error": "unauthorized_client", "error_description": UNAUTHORIZED_CLIENT})
    );
}

#[tokio::test]
async fn an_unknown_client_id_and_a_wrong_secret_take_the_same_time() {
    // 70 failures per client id: with limits on, the rate limit and the slow-down of repeated
    // failures (both equal for the two paths, see tests/limits.rs) would dominate what this
    // measures, which is the cost of the credential check itself.
    let app = TestApp::start_with(ledgerport_server::ServerConfig {
        close_interval: None,
        limits: ledgerport_server::LimitsConfig {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let unknown_id = "4b0f3c8e-0000-4000-8000-000000000000";
    let wrong_secret = "lpsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let unknown = [
        ("client_id", unknown_id),
        ("client_secret", k.secret.as_str()),
        ("Ocp-Apim-Subscription-Key", sub(&k)),
    ];
    let wrong = [
        ("client_id", k.client_id.as_str()),
        ("client_secret", wrong_secret),
        ("Ocp-Apim-Subscription-Key", sub(&k)),
    ];
    // Warm up connections and caches on both paths.
    for _ in 0..10 {
        assert_eq!(app.standard_token_raw(&unknown).await.status(), 400);
        assert_eq!(app.standard_token_raw(&wrong).await.status(), 400);
    }

    let (mut t_unknown, mut t_wrong) = (Vec::new(), Vec::new());
    for i in 0..120 {
        let (headers, times) = if i % 2 == 0 {
            (&unknown, &mut t_unknown)
        } else {
            (&wrong, &mut t_wrong)
        };
        let started = Instant::now();
        let res = app.standard_token_raw(headers).await;
        let _ = res.bytes().await.expect("body");
        times.push(started.elapsed());
    }

    let (m_unknown, m_wrong) = (median(t_unknown), median(t_wrong));
    println!("median unknown client_id: {m_unknown:?}, median wrong secret: {m_wrong:?}");
    let diff = m_unknown.abs_diff(m_wrong);
    let bound = Duration::from_millis(2).max(m_unknown.max(m_wrong) / 2);
    assert!(
        diff < bound,
        "unknown client_id {m_unknown:?} vs wrong secret {m_wrong:?}: differ by {diff:?} (bound {bound:?})"
    );
}

#[tokio::test]
async fn client_credentials_of_one_unit_with_the_subscription_key_of_another_are_unauthorized_client()
 {
    let app = TestApp::start().await;
    world(&app).await;
    let a = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let b = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("222222")))
        .await;

    let res = app
        .standard_token_raw(&[
            ("client_id", &a.client_id),
            ("client_secret", &a.secret),
            ("Ocp-Apim-Subscription-Key", sub(&b)),
        ])
        .await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "unauthorized_client", "error_description": UNAUTHORIZED_CLIENT})
    );
}

#[tokio::test]
async fn a_merchant_serial_number_must_be_the_keys_own() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    let own = app
        .standard_token_raw(&standard_headers(
            &k,
            &[("Merchant-Serial-Number", "123455")],
        ))
        .await;
    let other = app
        .standard_token_raw(&standard_headers(
            &k,
            &[("Merchant-Serial-Number", "222222")],
        ))
        .await;

    assert_eq!(own.status(), 200);
    let detail = assert_problem_400(other).await;
    assert_eq!(
        detail,
        "Merchant-Serial-Number: does not match the sales unit of these keys"
    );
}

#[tokio::test]
async fn a_malformed_merchant_serial_number_is_400_naming_the_header() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    for bad in ["12ab5", "1234", "12345678", ""] {
        let res = app
            .standard_token_raw(&standard_headers(&k, &[("Merchant-Serial-Number", bad)]))
            .await;

        let detail = assert_problem_400(res).await;
        assert!(
            detail.starts_with("Merchant-Serial-Number: "),
            "{bad:?}: {detail}"
        );
    }
}

#[tokio::test]
async fn vipps_system_headers_longer_than_30_characters_are_accepted_and_non_ascii_is_400() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let thirty = "a".repeat(30);
    // What the official Postman collection sends when run without its environment.
    let thirty_one = "a".repeat(31);
    let long = "b".repeat(200);

    for name in [
        "Vipps-System-Name",
        "Vipps-System-Version",
        "Vipps-System-Plugin-Name",
        "Vipps-System-Plugin-Version",
    ] {
        for value in [&thirty, &thirty_one, &long] {
            let res = app
                .standard_token_raw(&standard_headers(&k, &[(name, value)]))
                .await;
            assert_eq!(res.status(), 200, "{name} of {} characters", value.len());
        }
        let mut req = app.http.post(app.url("/accesstoken/get"));
        for (h, v) in standard_headers(&k, &[]) {
            req = req.header(h, v);
        }
        let res = req
            .header(
                name,
                reqwest::header::HeaderValue::from_bytes(b"acme \xe6rp").expect("obs-text"),
            )
            .send()
            .await
            .expect("request");
        let detail = assert_problem_400(res).await;
        assert_eq!(detail, format!("{name}: must be visible ASCII text"));
    }
}

#[tokio::test]
async fn revoked_keys_get_no_token() {
    let app = TestApp::start().await;
    world(&app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    app.store.revoke_key(&by(), k.key_id).await.expect("revoke");

    let res = app.standard_token_raw(&standard_headers(&k, &[])).await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "unauthorized_client", "error_description": UNAUTHORIZED_CLIENT})
    );
}

#[tokio::test]
async fn vm_number_units_cannot_be_issued_keys_at_all() {
    let app = TestApp::start().await;
    world(&app).await;

    let result = issue_keys(
        app.store.as_ref(),
        &by(),
        KeyKind::SalesUnit,
        KeyOwner::SalesUnit(msn("223344")),
    )
    .await;

    match result {
        Err(IssueError::NotAllowed(reason)) => {
            assert_eq!(
                reason,
                "sales unit 223344 is a vm-number unit and has no API keys"
            )
        }
        other => panic!("expected NotAllowed, got {other:?}"),
    }
    assert!(app.store.keys().await.expect("keys").is_empty());
}

#[tokio::test]
async fn integration_keys_of_a_partner_that_is_no_longer_approved_get_no_token() {
    let app = TestApp::start().await;
    world(&app).await;
    let p = partner(
        app.store.as_ref(),
        "Integrator AS",
        PartnerKind::Integration,
        true,
    )
    .await;
    let k = app.issue(KeyKind::Integration, KeyOwner::Partner(p)).await;
    app.store
        .set_partner_state(&by(), p, PartnerState::Suspended)
        .await
        .expect("suspend");

    let res = app.standard_token_raw(&standard_headers(&k, &[])).await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "unauthorized_client", "error_description": UNAUTHORIZED_CLIENT})
    );
}

#[tokio::test]
async fn keys_of_a_partner_that_is_not_approved_cannot_be_issued() {
    let app = TestApp::start().await;
    world(&app).await;
    let p = partner(
        app.store.as_ref(),
        "Applicant AS",
        PartnerKind::Integration,
        false,
    )
    .await;

    let result = issue_keys(
        app.store.as_ref(),
        &by(),
        KeyKind::Integration,
        KeyOwner::Partner(p),
    )
    .await;

    assert!(
        matches!(result, Err(IssueError::NotAllowed(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn miami_keys_are_refused_at_the_standard_endpoint() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let merchant_level = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let su = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;

    // Merchant-level keys have no subscription key of their own: even with a real one of another
    // key, their credentials are not accepted here.
    let res = app
        .standard_token_raw(&[
            ("client_id", &merchant_level.client_id),
            ("client_secret", &merchant_level.secret),
            ("Ocp-Apim-Subscription-Key", sub(&su)),
        ])
        .await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "unauthorized_client", "error_description": UNAUTHORIZED_CLIENT})
    );
}

// ---------------------------------------------------------------- /miami/v1/token

#[tokio::test]
async fn accounting_merchant_level_and_management_keys_get_a_miami_token() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let mgmt_partner = partner(
        app.store.as_ref(),
        "Management AS",
        PartnerKind::Management,
        true,
    )
    .await;
    let keys = [
        (
            "accounting",
            app.issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
                .await,
        ),
        (
            "merchant-level",
            app.issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
                .await,
        ),
        (
            "management",
            app.issue(KeyKind::Management, KeyOwner::Partner(mgmt_partner))
                .await,
        ),
    ];

    for (kind, k) in &keys {
        let res = app
            .miami_token_raw(&k.client_id, &k.secret, "grant_type=client_credentials")
            .await;

        assert_eq!(res.status(), 200, "{kind}");
        assert_eq!(
            header(&res, "cache-control").as_deref(),
            Some("no-store"),
            "{kind}"
        );
        let (_, ct, body) = read(res).await;
        assert_eq!(ct, "application/json");
        let token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        assert_eq!(
            body,
            json!({"access_token": token, "token_type": "Bearer", "expires_in": 900}),
            "{kind}"
        );
        assert!(body["expires_in"].is_u64());
        let c = claims(&token);
        assert_eq!(c["key_type"], *kind);
        assert_eq!(c["sub"], k.client_id.as_str());
        assert_eq!(c["iat"], START_UNIX);
        assert_eq!(c["exp"], START_UNIX + 900);
        assert_eq!(
            jsonwebtoken::decode_header(&token)
                .expect("header")
                .typ
                .as_deref(),
            Some("at+jwt")
        );
    }
}

#[tokio::test]
async fn a_miami_token_request_may_carry_a_scope() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;

    let res = app
        .miami_token_raw(
            &k.client_id,
            &k.secret,
            "grant_type=client_credentials&scope=report",
        )
        .await;

    assert_eq!(res.status(), 200);
}

/// Service keys post payment events; neither token endpoint gives them a token.
#[tokio::test]
async fn service_keys_are_invalid_client_at_miami_and_unknown_at_the_standard_endpoint() {
    let app = TestApp::start().await;
    world(&app).await;
    let service = app.service_keys().await;

    let miami = app
        .miami_token_raw(
            &service.client_id,
            &service.secret,
            "grant_type=client_credentials",
        )
        .await;
    let description = assert_invalid_client(miami).await;
    assert_eq!(description, "The client could not be authenticated.");

    // They have no subscription key, so the standard endpoint cannot even name them.
    assert_eq!(service.subscription_key, None);
}

#[tokio::test]
async fn sales_unit_and_integration_keys_are_invalid_client_at_miami() {
    let app = TestApp::start().await;
    world(&app).await;
    let p = partner(
        app.store.as_ref(),
        "Integrator AS",
        PartnerKind::Integration,
        true,
    )
    .await;
    let su = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let int = app.issue(KeyKind::Integration, KeyOwner::Partner(p)).await;

    for k in [&su, &int] {
        let res = app
            .miami_token_raw(&k.client_id, &k.secret, "grant_type=client_credentials")
            .await;

        let description = assert_invalid_client(res).await;
        assert_eq!(description, "The client could not be authenticated.");
    }
}

#[tokio::test]
async fn a_missing_grant_type_is_invalid_request() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;

    for form in ["", "scope=report"] {
        let res = app.miami_token_raw(&k.client_id, &k.secret, form).await;

        assert_eq!(res.status(), 400, "{form:?}");
        assert_eq!(header(&res, "cache-control").as_deref(), Some("no-store"));
        let (_, _, body) = read(res).await;
        assert_eq!(
            body,
            json!({"error": "invalid_request", "error_description": "grant_type: is required"})
        );
    }
}

#[tokio::test]
async fn a_password_grant_is_unsupported_grant_type() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;

    let res = app
        .miami_token_raw(
            &k.client_id,
            &k.secret,
            "grant_type=password&username=a&password=b",
        )
        .await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "unsupported_grant_type", "error_description": "grant_type: must be client_credentials"})
    );
}

#[tokio::test]
async fn a_grant_type_given_twice_is_invalid_request() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;

    let res = app
        .miami_token_raw(
            &k.client_id,
            &k.secret,
            "grant_type=client_credentials&grant_type=client_credentials",
        )
        .await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "grant_type: given more than once"})
    );
}

#[tokio::test]
async fn a_subscription_key_header_at_miami_is_invalid_request() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let auth = basic(&k.client_id, &k.secret);

    let res = miami_with(
        &app,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
            (
                "Ocp-Apim-Subscription-Key",
                "0123456789abcdef0123456789abcdef",
            ),
        ],
        "grant_type=client_credentials",
    )
    .await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Ocp-Apim-Subscription-Key: must not be sent to this endpoint"})
    );
}

#[tokio::test]
async fn a_wrong_secret_at_miami_is_401_invalid_client_with_a_basic_challenge() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;

    let wrong = app
        .miami_token_raw(
            &k.client_id,
            "lpsec_not-the-secret",
            "grant_type=client_credentials",
        )
        .await;
    let unknown = app
        .miami_token_raw(
            "4b0f3c8e-0000-4000-8000-000000000000",
            &k.secret,
            "grant_type=client_credentials",
        )
        .await;

    assert_eq!(
        header(&wrong, "www-authenticate").as_deref(),
        Some("Basic realm=\"ledgerport\"")
    );
    let wrong = assert_invalid_client(wrong).await;
    let unknown = assert_invalid_client(unknown).await;
    assert_eq!(wrong, "The client could not be authenticated.");
    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_header_is_invalid_client_naming_authorization() {
    use base64::Engine;
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let bearer = format!("Bearer {}", b64(&format!("{}:{}", k.client_id, k.secret)));
    let no_colon = format!("Basic {}", b64(&format!("{}{}", k.client_id, k.secret)));
    let empty_secret = format!("Basic {}", b64(&format!("{}:", k.client_id)));
    let cases: [(&str, Option<&str>); 5] = [
        ("missing", None),
        ("a Bearer scheme", Some(&bearer)),
        ("bad base64", Some("Basic !!!not-base64!!!")),
        ("no colon", Some(&no_colon)),
        ("an empty secret", Some(&empty_secret)),
    ];

    for (what, auth) in cases {
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let res = miami_with(&app, &headers, "grant_type=client_credentials").await;

        let description = assert_invalid_client(res).await;
        assert!(
            description.starts_with("Authorization: "),
            "{what}: {description}"
        );
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_400_naming_content_type() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let auth = basic(&k.client_id, &k.secret);

    let json_body = miami_with(
        &app,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await;
    let no_type = miami_with(
        &app,
        &[("Authorization", &auth)],
        "grant_type=client_credentials",
    )
    .await;
    let with_charset = miami_with(
        &app,
        &[
            ("Authorization", &auth),
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            ),
        ],
        "grant_type=client_credentials",
    )
    .await;

    for res in [json_body, no_type] {
        let (status, _, body) = read(res).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": "invalid_request", "error_description": "Content-Type: must be application/x-www-form-urlencoded"})
        );
    }
    assert_eq!(with_charset.status(), 200);
}

#[tokio::test]
async fn a_suspended_accounting_partner_cannot_get_a_token() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    app.store
        .set_partner_state(&by(), w.granted_partner, PartnerState::Suspended)
        .await
        .expect("suspend");

    let res = app
        .miami_token_raw(&k.client_id, &k.secret, "grant_type=client_credentials")
        .await;

    let description = assert_invalid_client(res).await;
    assert_eq!(description, "The client could not be authenticated.");
}

#[tokio::test]
async fn revoked_keys_get_no_miami_token() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    app.store.revoke_key(&by(), k.key_id).await.expect("revoke");

    let res = app
        .miami_token_raw(&k.client_id, &k.secret, "grant_type=client_credentials")
        .await;

    assert_invalid_client(res).await;
}

#[tokio::test]
async fn the_miami_token_lifetime_is_configurable() {
    let app = TestApp::start_with(ServerConfig {
        miami_token_lifetime: Duration::from_secs(60),
        ..ServerConfig::default()
    })
    .await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;

    let res = app
        .miami_token_raw(&k.client_id, &k.secret, "grant_type=client_credentials")
        .await;

    let (status, _, body) = read(res).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 60);
    let c = claims(body["access_token"].as_str().expect("token"));
    assert_eq!(c["exp"], START_UNIX + 60);
}

#[tokio::test]
async fn a_vipps_system_header_over_30_characters_is_accepted_at_miami_too() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let k = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let auth = basic(&k.client_id, &k.secret);
    let long = "x".repeat(31);

    let res = miami_with(
        &app,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Vipps-System-Name", &long),
        ],
        "grant_type=client_credentials",
    )
    .await;

    assert_eq!(res.status(), 200);
}

/// `token` with its header replaced by one naming key `kid` (the signature no longer fits).
fn with_kid(token: &str, kid: &str) -> String {
    use base64::Engine;
    let header = json!({"typ": "at+jwt", "alg": "EdDSA", "kid": kid}).to_string();
    let rest = token.split_once('.').expect("a JWT").1;
    format!(
        "{}.{rest}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header)
    )
}

/// The world, and a standard token of unit 123455 with the subscription key it travels with.
async fn unit_token(app: &TestApp) -> (String, String) {
    world(app).await;
    let k = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let token = app.standard_token(&k).await;
    (token, sub(&k).to_owned())
}

#[tokio::test]
async fn tokens_naming_unknown_keys_reload_the_key_set_at_most_once_per_interval() {
    let app = TestApp::start().await;
    let (token, sub_key) = unit_token(&app).await;
    let with_sub = [("Ocp-Apim-Subscription-Key", sub_key.as_str())];
    let before = app.state.tokens.reload_count();
    for i in 0..30 {
        let forged = with_kid(&token, &format!("no-such-key-{i}"));
        let res = app
            .get("/settlement/v1/ledgers", Some(&forged), &with_sub)
            .await;
        assert_eq!(res.status(), 401);
    }
    let reloads = app.state.tokens.reload_count() - before;
    assert!(reloads <= 1, "{reloads} reloads for 30 unknown key ids");

    // A key another process made is still picked up once the interval has passed.
    let rec = ledgerport_server::tokens::new_signing_key(
        ledgerport_core::clock::Clock::now(app.clock.as_ref()),
        &ledgerport_server::tokens::SigningKeyProtection::Plaintext,
    )
    .expect("key");
    app.store
        .add_signing_key(&by(), rec.clone())
        .await
        .expect("add key");
    let claims: ledgerport_server::tokens::Claims = {
        use base64::Engine;
        let payload = token.split('.').nth(1).expect("payload");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64");
        serde_json::from_slice(&bytes).expect("claims")
    };
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(rec.kid.clone());
    let other_process_token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&rec.private_der),
    )
    .expect("sign");
    app.clock.advance(
        jiff::SignedDuration::try_from(ledgerport_server::tokens::MISS_RELOAD_INTERVAL)
            .expect("interval"),
    );
    let res = app
        .get(
            "/settlement/v1/ledgers",
            Some(&other_process_token),
            &with_sub,
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_token_remembered_as_verified_still_expires_and_a_changed_byte_is_still_refused() {
    let app = TestApp::start().await;
    let (token, sub_key) = unit_token(&app).await;
    let with_sub = [("Ocp-Apim-Subscription-Key", sub_key.as_str())];
    for _ in 0..2 {
        let res = app
            .get("/settlement/v1/ledgers", Some(&token), &with_sub)
            .await;
        assert_eq!(res.status(), 200);
    }
    assert!(app.state.tokens.verified_count() >= 1);

    // The same claims under a signature with one character changed: not the remembered bytes.
    // (A character inside the signature: the last one also carries padding bits.)
    let at = token.len() - 10;
    let changed = if &token[at..at + 1] == "A" { "B" } else { "A" };
    let forged = format!("{}{changed}{}", &token[..at], &token[at + 1..]);
    let res = app
        .get("/settlement/v1/ledgers", Some(&forged), &with_sub)
        .await;
    assert_eq!(res.status(), 401);

    // At its expiry the remembered token is refused like any other.
    let lifetime = app
        .state
        .tokens
        .verify(&token)
        .await
        .map(|c| c.exp - c.iat)
        .expect("still valid");
    app.clock.advance(jiff::SignedDuration::from_secs(lifetime));
    let res = app
        .get("/settlement/v1/ledgers", Some(&token), &with_sub)
        .await;
    assert_eq!(res.status(), 401);
}
