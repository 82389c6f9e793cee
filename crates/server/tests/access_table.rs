//! The access table: every kind of credentials against every Report API endpoint, with the exact
//! status and body each must get. State changes (a removed grant, a suspended partner, a
//! regenerated or revoked key) are made after the tokens were issued, so the table also shows
//! they take effect on the next request and not when the token expires.
//!
//! Grants carry scopes: rows of partners whose grant expired after their token was issued (the
//! clock passes the expiry), covers one topic, a period of ledger dates or withholds personal
//! data; the columns include a page asking for personal data and `GET /ledgerport/v1/grants`.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use ledgerport_core::clock::Clock;
use ledgerport_core::ids::LedgerDate;
use ledgerport_core::world::{GrantScope, KeyKind, KeyOwner, PartnerKind, PartnerState, Topics};
use ledgerport_server::ServerConfig;
use ledgerport_server::credentials::regenerate_secret;
use serde_json::{Value, json};

/// The endpoints, in the order of the expectation columns.
const ENDPOINTS: [&str; COLUMNS] = [
    "/settlement/v1/ledgers",
    "/report/v2/ledgers/100/funds/feed",
    "/report/v2/ledgers/100/fees/dates/2024-04-04",
    "/report/v2/ledgers/200/funds/feed",
    "/report/v2/ledgers/300/funds/dates/2024-04-04",
    "/report/v2/ledgers/400/funds/feed",
    "/report/v2/ledgers/999/funds/feed",
    "/report/v2/ledgers/100/funds/dates/2024-04-04?includeGDPRSensitiveData=true",
    "/ledgerport/v1/grants",
];
const COLUMNS: usize = 9;

/// One row: a name, the token, extra headers, and one expectation per endpoint:
/// `L:a,b` a listing of exactly those ledgers; `G:a,b` a listing of grants on exactly those
/// ledgers; `200` a page of entries (without the withheld header); `200W` a page with personal
/// data withheld (`Ledgerport-Personal-Data: withheld`); `404` the no-such-ledger problem;
/// `403` a forbidden problem; `403S` a forbidden problem naming the grant's topic or period;
/// `401` the Unauthorized body; `401S`/`401I` the gateway's missing / invalid subscription key
/// bodies.
struct Row {
    name: &'static str,
    token: Option<String>,
    headers: Vec<(&'static str, String)>,
    expected: [&'static str; COLUMNS],
}

fn row(
    name: &'static str,
    token: Option<String>,
    headers: Vec<(&'static str, String)>,
    expected: [&'static str; COLUMNS],
) -> Row {
    Row {
        name,
        token,
        headers,
        expected,
    }
}

const UNAUTHORIZED: [&str; COLUMNS] = ["401"; COLUMNS];
const FORBIDDEN: [&str; COLUMNS] = ["403"; COLUMNS];

fn date(s: &str) -> LedgerDate {
    LedgerDate::parse("date", s).expect("date")
}

/// Swaps one claim of a token and keeps the old signature.
fn tamper(token: &str, claim: &str, value: Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("claims");
    claims[claim] = value;
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    format!("{}.{}.{}", parts[0], payload, parts[2])
}

async fn check(app: &TestApp, r: &Row, endpoint: &str, expected: &str) -> Result<(), String> {
    let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = app.get(endpoint, r.token.as_deref(), &headers).await;
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let withheld = res
        .headers()
        .get("ledgerport-personal-data")
        .map(|v| v.as_bytes().to_vec());
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let fail = |why: &str| {
        Err(format!(
            "{} {endpoint}: expected {expected}, {why}: {status} {body}",
            r.name
        ))
    };
    let problem = |code: u16| {
        status == code
            && content_type == "application/problem+json"
            && body["status"] == json!(code)
    };
    match expected {
        "401"
            if status == 401
                && body
                    == json!({"code": "Unauthorized", "message": "Please check your API keys"}) =>
        {
            Ok(())
        }
        "401S"
            if status == 401
                && body["statusCode"] == json!(401)
                && body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("missing subscription key")) =>
        {
            Ok(())
        }
        "401I"
            if status == 401
                && body["statusCode"] == json!(401)
                && body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("invalid subscription key")) =>
        {
            Ok(())
        }
        "403" if problem(403) => Ok(()),
        "403S"
            if problem(403)
                && body["detail"].as_str().is_some_and(|d| {
                    d.starts_with("topic: the grant") || d.contains("outside the grant's period")
                }) =>
        {
            Ok(())
        }
        "404" if problem(404) && body["detail"] == json!("No such ledgerId") => Ok(()),
        "200" | "200W"
            if status == 200
                && body["items"].is_array()
                && (body["hasMore"].is_boolean() || body["cursor"].is_string()) =>
        {
            let want = (expected == "200W").then(|| b"withheld".to_vec());
            if withheld == want {
                Ok(())
            } else {
                fail("got the personal-data header wrong")
            }
        }
        g if g.starts_with("G:") && status == 200 => {
            let want: Vec<&str> = g[2..].split(',').filter(|s| !s.is_empty()).collect();
            let got: Vec<&str> = body["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i["ledgerId"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            if got == want && body["cursor"] == json!("") {
                Ok(())
            } else {
                fail("got grants")
            }
        }
        l if l.starts_with("L:") && status == 200 => {
            let want: Vec<&str> = l[2..].split(',').filter(|s| !s.is_empty()).collect();
            let got: Vec<&str> = body["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i["ledgerId"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            if got == want && body["cursor"] == json!("") {
                Ok(())
            } else {
                fail("got ledgers")
            }
        }
        _ => fail("got"),
    }
}

#[tokio::test]
async fn every_kind_of_credentials_gets_exactly_its_answer_on_every_endpoint() {
    // Arrange: the world, keys of every kind, and their tokens.
    let app = TestApp::start().await;
    let w = world(&app).await;
    let s = app.store.as_ref();
    let su_own = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let su_other = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("222222")))
        .await;
    let su_multi = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("654321")))
        .await;
    let su_regen = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let su_revoked = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let acc_granted = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let ungranted = partner(s, "No Grants AS", PartnerKind::Accounting, true).await;
    let acc_ungranted = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(ungranted))
        .await;
    let removed = partner(s, "Removed AS", PartnerKind::Accounting, true).await;
    s.create_grant(
        &by(),
        removed,
        &lid("100"),
        &ledgerport_core::world::GrantScope::EVERYTHING,
    )
    .await
    .expect("grant");
    let acc_removed = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(removed))
        .await;
    let suspended = partner(s, "Suspended AS", PartnerKind::Accounting, true).await;
    s.create_grant(
        &by(),
        suspended,
        &lid("100"),
        &ledgerport_core::world::GrantScope::EVERYTHING,
    )
    .await
    .expect("grant");
    let acc_suspended = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(suspended))
        .await;
    // Scoped grants on ledger 100, each to its own partner.
    let now = app.clock.now();
    let scoped = |name: &'static str, scope: GrantScope| {
        let app = &app;
        async move {
            let p = partner(app.store.as_ref(), name, PartnerKind::Accounting, true).await;
            app.store
                .create_grant(&by(), p, &lid("100"), &scope)
                .await
                .expect("scoped grant");
            app.issue(KeyKind::Accounting, KeyOwner::Partner(p)).await
        }
    };
    let acc_expiring = scoped(
        "Expiring AS",
        GrantScope {
            expires_at: Some(now + jiff::SignedDuration::from_mins(1)),
            ..GrantScope::EVERYTHING
        },
    )
    .await;
    let acc_funds_only = scoped(
        "Funds Only AS",
        GrantScope {
            topics: Topics {
                funds: true,
                fees: false,
            },
            ..GrantScope::EVERYTHING
        },
    )
    .await;
    let acc_no_personal = scoped(
        "No Personal Data AS",
        GrantScope {
            from: Some(date("2024-04-04")),
            personal_data: false,
            ..GrantScope::EVERYTHING
        },
    )
    .await;
    let acc_later = scoped(
        "Later Dates AS",
        GrantScope {
            from: Some(date("2024-04-05")),
            ..GrantScope::EVERYTHING
        },
    )
    .await;
    let ml_owner = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant1))
        .await;
    let ml_other = app
        .issue(KeyKind::MerchantLevel, KeyOwner::Merchant(w.merchant2))
        .await;
    let integrator = partner(s, "Kassa AS", PartnerKind::Integration, true).await;
    let integration = app
        .issue(KeyKind::Integration, KeyOwner::Partner(integrator))
        .await;
    let manager = partner(s, "Management AS", PartnerKind::Management, true).await;
    let management = app
        .issue(KeyKind::Management, KeyOwner::Partner(manager))
        .await;

    let t_su_own = app.standard_token(&su_own).await;
    let t_su_other = app.standard_token(&su_other).await;
    let t_su_multi = app.standard_token(&su_multi).await;
    let t_su_regen = app.standard_token(&su_regen).await;
    let t_su_revoked = app.standard_token(&su_revoked).await;
    let t_acc_granted = app.miami_token(&acc_granted).await;
    let t_acc_ungranted = app.miami_token(&acc_ungranted).await;
    let t_acc_removed = app.miami_token(&acc_removed).await;
    let t_acc_suspended = app.miami_token(&acc_suspended).await;
    let t_acc_expiring = app.miami_token(&acc_expiring).await;
    let t_acc_funds_only = app.miami_token(&acc_funds_only).await;
    let t_acc_no_personal = app.miami_token(&acc_no_personal).await;
    let t_acc_later = app.miami_token(&acc_later).await;
    let t_ml_owner = app.miami_token(&ml_owner).await;
    let t_ml_other = app.miami_token(&ml_other).await;
    let t_integration = app.standard_token(&integration).await;
    let t_management = app.miami_token(&management).await;

    let key = s.key(su_own.key_id).await.expect("store").expect("key");
    let (t_expired, _) = app.state.tokens.issue(&key, -10).expect("issue");
    let t_tampered = tamper(&t_su_own, "key_id", json!(acc_granted.key_id));
    let t_tampered_exp = tamper(&t_su_own, "exp", json!(4_102_444_800i64));
    let other_audience = TestApp::start_on(
        app.store.clone(),
        app.clock.clone(),
        ServerConfig {
            audience: "someone-else".into(),
            ..ServerConfig::default()
        },
    )
    .await;
    let (t_wrong_aud, _) = other_audience
        .state
        .tokens
        .issue(&key, 3600)
        .expect("issue");
    let other_issuer = TestApp::start_on(
        app.store.clone(),
        app.clock.clone(),
        ServerConfig {
            issuer: "another-issuer".into(),
            ..ServerConfig::default()
        },
    )
    .await;
    let (t_wrong_iss, _) = other_issuer.state.tokens.issue(&key, 3600).expect("issue");
    let other_server = TestApp::start().await;
    let (t_other_server, _) = other_server.state.tokens.issue(&key, 3600).expect("issue");

    // The state changes, after the tokens were issued.
    s.remove_grant(&by(), removed, &lid("100"))
        .await
        .expect("remove");
    s.set_partner_state(&by(), suspended, PartnerState::Suspended)
        .await
        .expect("suspend");
    regenerate_secret(s, &by(), su_regen.key_id)
        .await
        .expect("regenerate");
    s.revoke_key(&by(), su_revoked.key_id)
        .await
        .expect("revoke");
    // The clock passes the expiring grant's expiry (its token is still valid).
    app.clock.advance(jiff::SignedDuration::from_mins(2));

    let sub = |k: &Keys| {
        vec![(
            "Ocp-Apim-Subscription-Key",
            k.subscription_key.clone().expect("sub key"),
        )]
    };
    let with = |mut h: Vec<(&'static str, String)>, k: &'static str, v: &str| {
        h.push((k, v.to_owned()));
        h
    };
    let own = sub(&su_own);
    let table = vec![
        row(
            "sales-unit keys of the ledger's unit",
            Some(t_su_own.clone()),
            own.clone(),
            [
                "L:100", "200", "200", "404", "404", "404", "404", "200", "403",
            ],
        ),
        row(
            "…with its Merchant-Serial-Number",
            Some(t_su_own.clone()),
            with(own.clone(), "Merchant-Serial-Number", "123455"),
            [
                "L:100", "200", "200", "404", "404", "404", "404", "200", "403",
            ],
        ),
        row(
            "…with its second subscription key",
            Some(t_su_own.clone()),
            {
                let k = s.key(su_own.key_id).await.expect("store").expect("key");
                vec![(
                    "Ocp-Apim-Subscription-Key",
                    k.subscription_keys.expect("keys")[1].clone(),
                )]
            },
            [
                "L:100", "200", "200", "404", "404", "404", "404", "200", "403",
            ],
        ),
        row(
            "sales-unit keys of another merchant's unit",
            Some(t_su_other),
            sub(&su_other),
            [
                "L:400", "404", "404", "404", "404", "200", "404", "404", "403",
            ],
        ),
        row(
            "sales-unit keys of a unit on a multi-unit ledger",
            Some(t_su_multi),
            sub(&su_multi),
            ["L:", "404", "404", "404", "404", "404", "404", "404", "403"],
        ),
        row(
            "accounting keys with grants on 100 and 200",
            Some(t_acc_granted),
            vec![],
            [
                "L:100,200",
                "200",
                "200",
                "200",
                "404",
                "404",
                "404",
                "200",
                "G:100,200",
            ],
        ),
        row(
            "accounting keys without a grant",
            Some(t_acc_ungranted),
            vec![],
            ["L:", "404", "404", "404", "404", "404", "404", "404", "G:"],
        ),
        row(
            "accounting keys after the grant was removed",
            Some(t_acc_removed),
            vec![],
            ["L:", "404", "404", "404", "404", "404", "404", "404", "G:"],
        ),
        row(
            "accounting keys of a suspended partner",
            Some(t_acc_suspended),
            vec![],
            UNAUTHORIZED,
        ),
        row(
            "accounting keys whose grant expired after the token was issued",
            Some(t_acc_expiring),
            vec![],
            ["L:", "404", "404", "404", "404", "404", "404", "404", "G:"],
        ),
        row(
            "accounting keys with a grant on 100 for funds only",
            Some(t_acc_funds_only),
            vec![],
            [
                "L:100", "200", "403S", "404", "404", "404", "404", "200", "G:100",
            ],
        ),
        row(
            "accounting keys with a grant on 100 from 2024-04-04 without personal data",
            Some(t_acc_no_personal),
            vec![],
            [
                "L:100", "200", "200", "404", "404", "404", "404", "200W", "G:100",
            ],
        ),
        row(
            "accounting keys with a grant on 100 from 2024-04-05",
            Some(t_acc_later),
            vec![],
            [
                "L:100", "200", "403S", "404", "404", "404", "404", "403S", "G:100",
            ],
        ),
        row(
            "merchant-level keys of the owner",
            Some(t_ml_owner),
            vec![],
            [
                "L:100,200,300",
                "200",
                "200",
                "200",
                "200",
                "404",
                "404",
                "200",
                "403",
            ],
        ),
        row(
            "merchant-level keys of another organisation",
            Some(t_ml_other),
            vec![],
            [
                "L:400", "404", "404", "404", "404", "200", "404", "404", "403",
            ],
        ),
        row(
            "integration partner keys",
            Some(t_integration),
            sub(&integration),
            FORBIDDEN,
        ),
        row("management keys", Some(t_management), vec![], FORBIDDEN),
        row(
            "an expired token",
            Some(t_expired),
            own.clone(),
            UNAUTHORIZED,
        ),
        row(
            "a token with another key id swapped in",
            Some(t_tampered),
            own.clone(),
            UNAUTHORIZED,
        ),
        row(
            "a token with a later expiry swapped in",
            Some(t_tampered_exp),
            own.clone(),
            UNAUTHORIZED,
        ),
        row(
            "a token for another audience",
            Some(t_wrong_aud),
            own.clone(),
            UNAUTHORIZED,
        ),
        row(
            "a token of another issuer",
            Some(t_wrong_iss),
            own.clone(),
            UNAUTHORIZED,
        ),
        row(
            "a token of another server",
            Some(t_other_server),
            own.clone(),
            UNAUTHORIZED,
        ),
        row(
            "a token from a secret since regenerated",
            Some(t_su_regen),
            sub(&su_regen),
            UNAUTHORIZED,
        ),
        row(
            "a token of revoked keys",
            Some(t_su_revoked),
            sub(&su_revoked),
            UNAUTHORIZED,
        ),
        row("no token", None, own.clone(), UNAUTHORIZED),
        row(
            "a token that is not a JWT",
            Some("not-a-jwt".into()),
            own.clone(),
            UNAUTHORIZED,
        ),
        row(
            "a standard token without a subscription key",
            Some(t_su_own.clone()),
            vec![],
            ["401S"; COLUMNS],
        ),
        row(
            "a standard token with another unit's subscription key",
            Some(t_su_own.clone()),
            sub(&su_other),
            ["401I"; COLUMNS],
        ),
        row(
            "a standard token with a Merchant-Serial-Number that does not match",
            Some(t_su_own.clone()),
            with(own.clone(), "Merchant-Serial-Number", "222222"),
            FORBIDDEN,
        ),
    ];

    // Act and assert: every cell, collecting all failures before failing.
    let mut failures = Vec::new();
    let mut cases = 0;
    for r in &table {
        for (endpoint, expected) in ENDPOINTS.iter().zip(r.expected) {
            cases += 1;
            if let Err(e) = check(&app, r, endpoint, expected).await {
                failures.push(e);
            }
        }
    }
    // `Bearer` is case-sensitive: the same good token with `bearer` is refused.
    for endpoint in ENDPOINTS {
        cases += 1;
        let res = app
            .http
            .get(app.url(endpoint))
            .header("Authorization", format!("bearer {t_su_own}"))
            .header("Ocp-Apim-Subscription-Key", own[0].1.clone())
            .send()
            .await
            .expect("request");
        if res.status() != 401 {
            failures.push(format!("lowercase bearer on {endpoint}: {}", res.status()));
        }
    }
    println!(
        "access table: {cases} cases, {} rows x {} endpoints + 'bearer'",
        table.len(),
        ENDPOINTS.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
