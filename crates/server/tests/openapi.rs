//! The OpenAPI document cannot drift from the server: it lists exactly the routes the router
//! serves (read from `src/api/mod.rs`), and real responses of every endpoint, successes and
//! errors, have a status the document lists for that operation, a body valid against that
//! response's schema and the headers it requires.

mod common;
#[path = "common/schema.rs"]
mod schema;

use common::*;
use ledgerport_core::ids::{LedgerDate, LedgerId};
use ledgerport_core::world::{GrantScope, KeyKind, KeyOwner, PartnerKind, Topics};
use ledgerport_server::{LimitsConfig, ServerConfig};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// Every route the server serves, as (method, path template of the document).
const ROUTES: [(&str, &str); 22] = [
    ("post", "/accesstoken/get"),
    ("post", "/accessToken/get"),
    ("post", "/miami/v1/token"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/settlement/v1/ledgers"),
    (
        "get",
        "/report/v2/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}",
    ),
    ("get", "/report/v2/ledgers/{ledgerId}/{topic}/feed"),
    ("get", "/report/v1/ledgertransactions"),
    ("get", "/ledgerport/v1/grants"),
    (
        "get",
        "/ledgerport/v1/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}/proof",
    ),
    (
        "get",
        "/ledgerport/v1/ledgers/{ledgerId}/statements/camt053",
    ),
    ("get", "/ledgerport/v1/webhooks"),
    ("post", "/ledgerport/v1/webhooks"),
    ("delete", "/ledgerport/v1/webhooks/{id}"),
    ("post", "/ledgerport/v1/webhooks/{id}/rotate-secret"),
    ("get", "/ledgerport/v1/webhooks/{id}/deliveries"),
    (
        "post",
        "/ledgerport/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver",
    ),
    ("post", "/ingest/v1/events"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

/// `{ledger_id}` and `{ledgerId}` alike: parameter names do not matter for matching.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// The (method, path) of every `.route(PATH, METHOD(...))` in the router's source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let src = include_str!("../src/api/mod.rs");
    let mut found = BTreeSet::new();
    for part in src.split(".route(").skip(1) {
        let part = part.trim_start();
        let (path, rest) = if let Some(lit) = part.strip_prefix('"') {
            let end = lit.find('"').expect("closing quote");
            (lit[..end].to_owned(), &lit[end + 1..])
        } else {
            let end = part.find(',').expect("route path argument");
            let ident = part[..end].trim();
            let path = match ident {
                "ingest::PATH" => ledgerport_server::api::ingest::PATH.to_owned(),
                other => panic!("route path {other}: teach this test what it is"),
            };
            (path, &part[end..])
        };
        let rest = rest.trim_start().trim_start_matches(',').trim_start();
        let method = rest[..rest.find('(').expect("method router")].trim();
        assert!(
            ["get", "post", "put", "patch", "delete"].contains(&method),
            "route {path}: method router {method}"
        );
        found.insert((method.to_owned(), shape(&path)));
    }
    found
}

struct Doc {
    doc: Value,
    /// (method, path template, status) of every validated response.
    covered: Mutex<BTreeSet<(String, String, String)>>,
}

fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

impl Doc {
    fn new(doc: Value) -> Doc {
        Doc {
            doc,
            covered: Mutex::new(BTreeSet::new()),
        }
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        let op = &self.doc["paths"][template][method];
        assert!(op.is_object(), "{method} {template} is not in the document");
        op
    }

    /// Checks a real response against a documented response object; returns its body.
    async fn check_against(&self, what: &str, documented: &Value, res: reqwest::Response) -> Value {
        let documented = schema::resolve(&self.doc, documented);
        let status = res.status();
        let headers = res.headers().clone();
        for (name, h) in documented["headers"].as_object().into_iter().flatten() {
            let h = schema::resolve(&self.doc, h);
            match headers.get(name.as_str()) {
                None => assert!(
                    h["required"] != true,
                    "{what}: {status}: required header {name} missing"
                ),
                Some(v) => {
                    let text = v.to_str().expect("header text");
                    let value = if schema::resolve(&self.doc, &h["schema"])["type"] == "integer" {
                        text.parse::<i64>().map_or(json!(text), |n| json!(n))
                    } else {
                        json!(text)
                    };
                    if let Err(e) = schema::validate(&self.doc, &h["schema"], &value) {
                        panic!("{what}: {status}: header {name}: {e:?}");
                    }
                }
            }
        }
        let content_type = headers
            .get("content-type")
            .map(|v| essence(v.to_str().expect("content type")));
        let text = res.text().await.expect("body");
        let Some(content) = documented["content"].as_object() else {
            assert!(
                text.is_empty(),
                "{what}: {status}: undocumented body {text}"
            );
            return Value::Null;
        };
        let ct = content_type.unwrap_or_else(|| panic!("{what}: {status}: no content type"));
        let media = content
            .get(&ct)
            .unwrap_or_else(|| panic!("{what}: {status}: content type {ct} not documented"));
        let body = if ct.ends_with("json") {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{what}: {status}: not JSON ({e}): {text}"))
        } else {
            Value::String(text)
        };
        if let Err(e) = schema::validate(&self.doc, &media["schema"], &body) {
            panic!("{what}: {status}: body does not match the document: {e:#?}\n{body:#}");
        }
        body
    }

    /// Checks a real response of `method template`; returns its body.
    async fn check(
        &self,
        method: &str,
        template: &str,
        expected_status: u16,
        res: reqwest::Response,
    ) -> Value {
        let status = res.status().as_u16();
        let what = format!(
            "{} {} ({})",
            method.to_uppercase(),
            template,
            res.url().path()
        );
        assert_eq!(status, expected_status, "{what}: unexpected status");
        let documented = &self.operation(method, template)["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{what}: status {status} is not documented"
        );
        let body = self.check_against(&what, documented, res).await;
        self.covered.lock().expect("lock").insert((
            method.to_owned(),
            template.to_owned(),
            status.to_string(),
        ));
        body
    }
}

async fn fetch_doc(app: &TestApp) -> Doc {
    let res = app.get("/openapi.json", None, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().expect("ct"),
        "application/json"
    );
    Doc::new(res.json().await.expect("the document is JSON"))
}

fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            if ["get", "post", "put", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                ops.insert((method.clone(), path.clone()));
            }
        }
    }
    ops
}

/// Every `$ref` in the document resolves.
fn check_refs(root: &Value, v: &Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                assert!(
                    root.pointer(r.trim_start_matches('#')).is_some(),
                    "unresolvable $ref {r}"
                );
            }
            o.values().for_each(|c| check_refs(root, c));
        }
        Value::Array(a) => a.iter().for_each(|c| check_refs(root, c)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_exactly_the_served_routes() {
    let app = TestApp::start().await;
    let doc = fetch_doc(&app).await;
    assert_eq!(doc.doc["openapi"], "3.1.0");
    assert!(doc.doc["info"]["title"].is_string());
    assert_eq!(doc.doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    check_refs(&doc.doc, &doc.doc);

    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented_operations(&doc.doc),
        listed,
        "the document and this test's route list differ"
    );
    let listed_shapes: BTreeSet<(String, String)> =
        listed.iter().map(|(m, p)| (m.clone(), shape(p))).collect();
    assert_eq!(
        routes_in_source(),
        listed_shapes,
        "the router (src/api/mod.rs) and this test's route list differ"
    );

    // Nothing the document lists is a path or method the server does not know.
    for (method, template) in &listed {
        let path = template
            .replace("{ledgerId}", "100")
            .replace("{topic}", "funds")
            .replace("{ledgerDate}", "2024-04-04");
        let req = match method.as_str() {
            "get" => app.http.get(app.url(&path)),
            "post" => app.http.post(app.url(&path)),
            "delete" => app.http.delete(app.url(&path)),
            other => panic!("{other}"),
        };
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        assert_ne!(status, 405, "{method} {path}");
        if status == 404 {
            let body: Value = res.json().await.expect("json");
            assert_ne!(
                body["detail"], "No such endpoint",
                "{method} {path} is documented but not served"
            );
        }
    }

    // And every method the document does not list on a path is one the server refuses.
    for (_, template) in &listed {
        let path = template
            .replace("{ledgerId}", "100")
            .replace("{topic}", "funds")
            .replace("{ledgerDate}", "2024-04-04");
        for method in ["get", "post", "put", "patch", "delete"] {
            if listed.contains(&(method.to_owned(), template.clone())) {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let res = app
                .http
                .request(m, app.url(&path))
                .send()
                .await
                .expect("request");
            assert_eq!(
                res.status(),
                405,
                "{method} {path} is served but not in the document"
            );
        }
    }

    // What is not in the document: 404, 405 and 431 problems, as its shared responses say.
    let res = app.get("/report/v3/nothing", None, &[]).await;
    assert_eq!(res.status(), 404);
    let body = doc
        .check_against(
            "unknown path",
            &json!({"$ref": "#/components/responses/NoSuchEndpoint"}),
            res,
        )
        .await;
    assert_eq!(body["detail"], "No such endpoint");
    let res = app
        .http
        .delete(app.url("/settlement/v1/ledgers"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 405);
    doc.check_against(
        "wrong method",
        &json!({"$ref": "#/components/responses/MethodNotAllowed"}),
        res,
    )
    .await;

    let res = app
        .http
        .get(app.url("/healthz"))
        .header("X-Padding", "x".repeat(33 * 1024))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 431);
    doc.check_against(
        "oversized headers",
        &json!({"$ref": "#/components/responses/RequestHeadersTooLarge"}),
        res,
    )
    .await;

    // The HTML page renders from the same document, without scripts or external resources.
    let res = app.get("/docs", None, &[]).await;
    let page = doc.check("get", "/docs", 200, res).await;
    let page = page.as_str().expect("html");
    for (_, template) in &listed {
        assert!(page.contains(template.as_str()), "{template} not on /docs");
    }
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"));
}

#[test]
fn success_bodies_are_closed_so_an_extra_field_fails() {
    let doc: Value =
        serde_json::from_str(ledgerport_server::api::docs::OPENAPI_JSON).expect("json");
    for name in [
        "StandardToken",
        "MiamiToken",
        "LedgerList",
        "Ledger",
        "SalesUnit",
        "BusinessIdentifier",
        "BankAccount",
        "DatePage",
        "FeedPage",
        "Entry",
        "IngestResponse",
        "AcceptedResult",
        "RejectedResult",
        "Problem",
        "Unauthorized",
        "GatewayError",
        "OAuthError",
        "InternalError",
    ] {
        assert_eq!(
            doc["components"]["schemas"][name]["additionalProperties"], false,
            "{name} is not closed"
        );
    }
    let page = json!({"items": [], "hasMore": false, "tryLater": false});
    let schema = json!({"$ref": "#/components/schemas/DatePage"});
    assert_eq!(schema::validate(&doc, &schema, &page), Ok(()));
    let mut extra = page.clone();
    extra["nextCursor"] = json!("x");
    assert!(schema::validate(&doc, &schema, &extra).is_err());

    // `pattern` and `format` are checked too.
    let ledger_id = json!({"$ref": "#/components/schemas/Ledger/properties/ledgerId"});
    assert_eq!(schema::validate(&doc, &ledger_id, &json!("302321")), Ok(()));
    assert!(schema::validate(&doc, &ledger_id, &json!("30232a")).is_err());
    let date = json!({"$ref": "#/components/schemas/Entry/properties/ledgerDate"});
    assert_eq!(schema::validate(&doc, &date, &json!("2024-04-05")), Ok(()));
    assert!(schema::validate(&doc, &date, &json!("05.04.2024")).is_err());
    let time = json!({"$ref": "#/components/schemas/Entry/properties/time"});
    assert_eq!(
        schema::validate(&doc, &time, &json!("2024-04-05T07:19:26.528092Z")),
        Ok(())
    );
    assert!(schema::validate(&doc, &time, &json!("2024-04-05 07:19")).is_err());

    // The bodies the middleware writes itself.
    let internal = ledgerport_server::error::internal_body("0b6f3c9e-4bde-4c7e-a3a4-6a1c2c1f2d3e");
    let schema = json!({"$ref": "#/components/schemas/InternalError"});
    assert_eq!(schema::validate(&doc, &schema, &internal), Ok(()));
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

const STD: &str = "/accesstoken/get";
const MIAMI: &str = "/miami/v1/token";
const LEDGERS: &str = "/settlement/v1/ledgers";
const DATE: &str = "/report/v2/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}";
const FEED: &str = "/report/v2/ledgers/{ledgerId}/{topic}/feed";
const GRANTS: &str = "/ledgerport/v1/grants";
const PROOF: &str = "/ledgerport/v1/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}/proof";
const CAMT053: &str = "/ledgerport/v1/ledgers/{ledgerId}/statements/camt053";
const INGEST: &str = "/ingest/v1/events";

#[tokio::test]
async fn real_responses_of_every_endpoint_match_the_document() {
    let app = TestApp::start().await;
    let w = world(&app).await;
    let doc = fetch_doc(&app).await;
    let unit = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let sub = unit.subscription_key.clone().expect("subscription key");
    let accounting = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let integrator = partner(
        app.store.as_ref(),
        "Kassa AS",
        PartnerKind::Integration,
        true,
    )
    .await;
    let integration = app
        .issue(KeyKind::Integration, KeyOwner::Partner(integrator))
        .await;
    let service = app.service_keys().await;

    // --- Access tokens ---
    let ok_headers = [
        ("client_id", unit.client_id.as_str()),
        ("client_secret", unit.secret.as_str()),
        ("Ocp-Apim-Subscription-Key", sub.as_str()),
        ("Merchant-Serial-Number", "123455"),
        ("Vipps-System-Name", "acme-erp"),
    ];
    let body = doc
        .check("post", STD, 200, app.standard_token_raw(&ok_headers).await)
        .await;
    let unit_token = body["access_token"].as_str().expect("token").to_owned();
    let res = app
        .http
        .post(app.url("/accessToken/get"))
        .header("client_id", &unit.client_id)
        .header("client_secret", &unit.secret)
        .header("Ocp-Apim-Subscription-Key", &sub)
        .send()
        .await
        .expect("request");
    doc.check("post", "/accessToken/get", 200, res).await;
    let alias = |sub: Option<&str>| {
        let mut r = app
            .http
            .post(app.url("/accessToken/get"))
            .header("client_id", "unknown-client")
            .header("client_secret", "y");
        if let Some(sub) = sub {
            r = r.header("Ocp-Apim-Subscription-Key", sub);
        }
        r.send()
    };
    let res = alias(None).await.expect("request");
    doc.check("post", "/accessToken/get", 401, res).await;
    let res = alias(Some(&sub)).await.expect("request");
    doc.check("post", "/accessToken/get", 400, res).await;
    let body = doc
        .check(
            "post",
            STD,
            401,
            app.standard_token_raw(&[("client_id", "x"), ("client_secret", "y")])
                .await,
        )
        .await;
    assert!(body["message"].as_str().expect("m").contains("missing"));
    let res = app
        .standard_token_raw(&[
            ("client_id", "x"),
            ("client_secret", "y"),
            ("Ocp-Apim-Subscription-Key", "not-a-key"),
        ])
        .await;
    doc.check("post", STD, 401, res).await;
    let res = app
        .standard_token_raw(&[("Ocp-Apim-Subscription-Key", sub.as_str())])
        .await;
    assert_eq!(
        doc.check("post", STD, 400, res).await["error"],
        "invalid_request"
    );
    let res = app
        .standard_token_raw(&[
            ("client_id", unit.client_id.as_str()),
            ("client_secret", "wrong"),
            ("Ocp-Apim-Subscription-Key", sub.as_str()),
        ])
        .await;
    assert_eq!(
        doc.check("post", STD, 400, res).await["error"],
        "unauthorized_client"
    );
    let mut h = ok_headers;
    h[3] = ("Merchant-Serial-Number", "654321");
    let body = doc
        .check("post", STD, 400, app.standard_token_raw(&h).await)
        .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("d")
            .starts_with("Merchant-Serial-Number")
    );
    // A longer Vipps-System-* header than the documented 30 characters is accepted; one that is
    // not text is refused naming it.
    let long = "x".repeat(31);
    let mut h = ok_headers;
    h[4] = ("Vipps-System-Name", long.as_str());
    doc.check("post", STD, 200, app.standard_token_raw(&h).await)
        .await;
    let not_text = || reqwest::header::HeaderValue::from_bytes(b"acme \xe6rp").expect("obs-text");
    let mut req = app.http.post(app.url(STD));
    for (k, v) in &ok_headers[..4] {
        req = req.header(*k, *v);
    }
    let res = req
        .header("Vipps-System-Name", not_text())
        .send()
        .await
        .expect("request");
    let body = doc.check("post", STD, 400, res).await;
    assert!(
        body["detail"]
            .as_str()
            .expect("d")
            .starts_with("Vipps-System-Name")
    );

    let miami = |id: &str, secret: &str, form: &str| {
        app.http
            .post(app.url(MIAMI))
            .header("Authorization", basic(id, secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
    };
    let ok_form = "grant_type=client_credentials";
    let res = miami(&accounting.client_id, &accounting.secret, ok_form)
        .send()
        .await
        .expect("request");
    let accounting_token = doc.check("post", MIAMI, 200, res).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let res = app
        .http
        .post(app.url(MIAMI))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(ok_form)
        .send()
        .await
        .expect("request");
    assert_eq!(
        doc.check("post", MIAMI, 401, res).await["error"],
        "invalid_client"
    );
    let res = miami(&accounting.client_id, "wrong", ok_form)
        .send()
        .await
        .expect("request");
    doc.check("post", MIAMI, 401, res).await;
    for (req, error) in [
        (
            miami(&accounting.client_id, &accounting.secret, ok_form)
                .header("Ocp-Apim-Subscription-Key", &sub),
            "invalid_request",
        ),
        (
            app.http
                .post(app.url(MIAMI))
                .header(
                    "Authorization",
                    basic(&accounting.client_id, &accounting.secret),
                )
                .header("Content-Type", "application/json")
                .body(ok_form),
            "invalid_request",
        ),
        (
            miami(&accounting.client_id, &accounting.secret, "scope=x"),
            "invalid_request",
        ),
        (
            miami(
                &accounting.client_id,
                &accounting.secret,
                "grant_type=password",
            ),
            "unsupported_grant_type",
        ),
    ] {
        let res = req.send().await.expect("request");
        assert_eq!(doc.check("post", MIAMI, 400, res).await["error"], error);
    }
    let res = miami(&accounting.client_id, &accounting.secret, ok_form)
        .header("Vipps-System-Plugin-Version", not_text())
        .send()
        .await
        .expect("request");
    doc.check("post", MIAMI, 400, res).await;
    let integration_token = app.standard_token(&integration).await;

    let res = app.get("/.well-known/jwks.json", None, &[]).await;
    let jwks = doc.check("get", "/.well-known/jwks.json", 200, res).await;
    assert!(!jwks["keys"].as_array().expect("keys").is_empty());

    // --- Report API ---
    let with_sub = [("Ocp-Apim-Subscription-Key", sub.as_str())];
    macro_rules! unit_get {
        ($p:expr) => {
            app.get(&$p, Some(&unit_token), &with_sub)
        };
    }
    let acc = Some(accounting_token.as_str());

    let body = doc
        .check("get", LEDGERS, 200, unit_get!(LEDGERS).await)
        .await;
    assert_eq!(body["items"].as_array().expect("items").len(), 1);
    let res = app
        .get(
            "/settlement/v1/ledgers?settlesForRecipientHandles=NO:57860",
            acc,
            &[],
        )
        .await;
    let body = doc.check("get", LEDGERS, 200, res).await;
    assert_eq!(body["items"][0]["ledgerId"], "200");
    for query in [
        "settlesForRecipientHandles=bogus",
        "cursor=AAAA",
        "cursor=&cursor=",
    ] {
        let res = app
            .get(&format!("/settlement/v1/ledgers?{query}"), acc, &[])
            .await;
        doc.check("get", LEDGERS, 400, res).await;
    }
    let body = doc
        .check("get", LEDGERS, 401, app.get(LEDGERS, None, &[]).await)
        .await;
    assert_eq!(body["code"], "Unauthorized");
    let body = doc
        .check(
            "get",
            LEDGERS,
            401,
            app.get(LEDGERS, Some(&unit_token), &[]).await,
        )
        .await;
    assert_eq!(body["statusCode"], 401);
    let tampered = format!("{}x", &accounting_token);
    doc.check(
        "get",
        LEDGERS,
        401,
        app.get(LEDGERS, Some(&tampered), &[]).await,
    )
    .await;
    doc.check(
        "get",
        LEDGERS,
        403,
        app.get(LEDGERS, Some(&integration_token), &[]).await,
    )
    .await;
    let res = app
        .get(
            LEDGERS,
            Some(&unit_token),
            &[with_sub[0], ("Merchant-Serial-Number", "654321")],
        )
        .await;
    doc.check("get", LEDGERS, 403, res).await;

    // Date pages: ledger 100 has 5 funds entries on 2024-04-04 and a page size of 3.
    let first = doc
        .check(
            "get",
            DATE,
            200,
            unit_get!("/report/v2/ledgers/100/funds/dates/2024-04-04").await,
        )
        .await;
    assert_eq!(first["hasMore"], true);
    let next = format!(
        "/report/v2/ledgers/100/funds/dates/2024-04-04?cursor={}",
        first["cursor"].as_str().expect("cursor")
    );
    let last = doc.check("get", DATE, 200, unit_get!(next).await).await;
    assert_eq!(last["hasMore"], false);
    let open = doc
        .check(
            "get",
            DATE,
            200,
            unit_get!("/report/v2/ledgers/100/funds/dates/2024-04-05").await,
        )
        .await;
    assert_eq!(open["tryLater"], true);
    let res = app
        .get(
            "/report/v2/ledgers/200/funds/dates/2024-04-04?includeGDPRSensitiveData=true",
            acc,
            &[],
        )
        .await;
    let gdpr = doc.check("get", DATE, 200, res).await;
    assert_eq!(gdpr["items"][0]["name"], "Kari Nordmann");
    for path in [
        "/report/v2/ledgers/100/funds/dates/2024-02-30",
        "/report/v2/ledgers/100/taxes/dates/2024-04-04",
        "/report/v2/ledgers/100/funds/dates/2024-04-04?includeGDPRSensitiveData=maybe",
        "/report/v2/ledgers/100/funds/dates/2024-04-04?cursor=AAAA",
    ] {
        doc.check("get", DATE, 400, app.get(path, acc, &[]).await)
            .await;
    }
    let d = "/report/v2/ledgers/100/funds/dates/2024-04-04";
    doc.check("get", DATE, 401, app.get(d, None, &[]).await)
        .await;
    doc.check(
        "get",
        DATE,
        403,
        app.get(d, Some(&integration_token), &[]).await,
    )
    .await;
    for path in [
        "/report/v2/ledgers/400/funds/dates/2024-04-04",
        "/report/v2/ledgers/999/funds/dates/2024-04-04",
    ] {
        let body = doc
            .check("get", DATE, 404, app.get(path, acc, &[]).await)
            .await;
        assert_eq!(body["detail"], "No such ledgerId");
    }

    // The feed, to its end.
    let mut path = "/report/v2/ledgers/100/funds/feed".to_owned();
    loop {
        let page = doc.check("get", FEED, 200, unit_get!(path).await).await;
        path = format!(
            "/report/v2/ledgers/100/funds/feed?cursor={}",
            page["cursor"].as_str().expect("cursor")
        );
        if page["tryLater"] == true && page["items"] == json!([]) {
            break;
        }
    }
    let other_cursor = doc
        .check(
            "get",
            FEED,
            200,
            app.get("/report/v2/ledgers/200/funds/feed", acc, &[]).await,
        )
        .await["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let res = app
        .get(
            &format!("/report/v2/ledgers/100/funds/feed?cursor={other_cursor}"),
            acc,
            &[],
        )
        .await;
    doc.check("get", FEED, 400, res).await;
    let f = "/report/v2/ledgers/100/fees/feed";
    doc.check("get", FEED, 401, app.get(f, Some("nonsense"), &[]).await)
        .await;
    doc.check(
        "get",
        FEED,
        403,
        app.get(f, Some(&integration_token), &[]).await,
    )
    .await;
    doc.check(
        "get",
        FEED,
        404,
        app.get("/report/v2/ledgers/400/fees/feed", acc, &[]).await,
    )
    .await;

    let res = app.get("/report/v1/ledgertransactions", None, &[]).await;
    doc.check("get", "/report/v1/ledgertransactions", 410, res)
        .await;

    // --- Ledgerport extensions, and a grant's scope on the Report API ---
    let body = doc
        .check("get", GRANTS, 200, app.get(GRANTS, acc, &[]).await)
        .await;
    assert_eq!(body["items"][0]["ledgerId"], "100");
    assert_eq!(body["items"][0]["merchant"]["name"], "ACME AS");
    assert_eq!(body["items"][0]["expiresAt"], Value::Null);
    doc.check(
        "get",
        GRANTS,
        400,
        app.get("/ledgerport/v1/grants?cursor=AAAA", acc, &[]).await,
    )
    .await;
    doc.check("get", GRANTS, 401, app.get(GRANTS, None, &[]).await)
        .await;
    doc.check("get", GRANTS, 403, unit_get!(GRANTS).await).await;
    let narrow = partner(
        app.store.as_ref(),
        "Narrow AS",
        PartnerKind::Accounting,
        true,
    )
    .await;
    app.store
        .create_grant(
            &by(),
            narrow,
            &lid("200"),
            &GrantScope {
                expires_at: Some("2030-01-01T00:00:00Z".parse().expect("time")),
                from: Some(LedgerDate::parse("d", "2024-04-04").expect("date")),
                to: None,
                topics: Topics {
                    funds: true,
                    fees: false,
                },
                personal_data: false,
            },
        )
        .await
        .expect("grant");
    let narrow_keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(narrow))
        .await;
    let narrow_token = app.miami_token(&narrow_keys).await;
    let narrow_acc = Some(narrow_token.as_str());
    let body = doc
        .check("get", GRANTS, 200, app.get(GRANTS, narrow_acc, &[]).await)
        .await;
    assert_eq!(
        body["items"][0]["scope"],
        json!({"from": "2024-04-04", "to": null, "topics": ["funds"], "personalData": false})
    );
    assert_eq!(body["items"][0]["expiresAt"], "2030-01-01T00:00:00.000000Z");
    // Completeness proofs: ledger 500, created on 2024-04-01 and closed through 2024-04-04.
    common::unit(app.store.as_ref(), w.merchant1, "555555", None).await;
    ledger_created_at(
        app.store.as_ref(),
        "500",
        w.merchant1,
        &["555555"],
        "2024-04-01T08:00:00Z",
    )
    .await;
    app.store
        .create_grant(
            &by(),
            w.granted_partner,
            &lid("500"),
            &GrantScope::EVERYTHING,
        )
        .await
        .expect("grant");
    app.store
        .close_due(&lid("500"), START.parse().expect("start"))
        .await
        .expect("close");
    let proof =
        |l: &str, t: &str, d: &str| format!("/ledgerport/v1/ledgers/{l}/{t}/dates/{d}/proof");
    let body = doc
        .check(
            "get",
            PROOF,
            200,
            app.get(&proof("500", "funds", "2024-04-03"), acc, &[])
                .await,
        )
        .await;
    assert_eq!(body["entryCount"], 0);
    assert!(body["previousChainDigest"].is_string(), "{body}");
    let first = doc
        .check(
            "get",
            PROOF,
            200,
            app.get(&proof("500", "fees", "2024-04-01"), acc, &[]).await,
        )
        .await;
    assert_eq!(first["previousChainDigest"], Value::Null);
    for (status, path, token) in [
        (400, proof("500", "funds", "2024-13-01"), acc),
        (401, proof("500", "funds", "2024-04-03"), None),
        (403, proof("200", "fees", "2024-04-04"), narrow_acc),
        (404, proof("400", "funds", "2024-04-03"), acc),
        (404, proof("100", "funds", "2024-04-04"), acc),
        (409, proof("500", "funds", "2024-04-05"), acc),
    ] {
        doc.check("get", PROOF, status, app.get(&path, token, &[]).await)
            .await;
    }
    // camt.053 statements of ledger 500's closed dates.
    let camt = |l: &str, from: &str, to: &str| {
        format!("/ledgerport/v1/ledgers/{l}/statements/camt053?from={from}&to={to}")
    };
    let body = doc
        .check(
            "get",
            CAMT053,
            200,
            app.get(&camt("500", "2024-04-01", "2024-04-04"), acc, &[])
                .await,
        )
        .await;
    assert!(
        body.as_str()
            .is_some_and(|x| x.contains("<Stmt><Id>500-20240401-20240404</Id>")),
        "{body}"
    );
    for (status, path, token) in [
        (400, camt("500", "2024-04-01", "2024-13-01"), acc),
        (401, camt("500", "2024-04-01", "2024-04-04"), None),
        (403, camt("200", "2024-04-04", "2024-04-04"), narrow_acc),
        (404, camt("400", "2024-04-03", "2024-04-03"), acc),
        (409, camt("500", "2024-04-01", "2024-04-05"), acc),
    ] {
        doc.check("get", CAMT053, status, app.get(&path, token, &[]).await)
            .await;
    }
    for (template, path) in [
        (
            FEED,
            "/report/v2/ledgers/200/funds/feed?includeGDPRSensitiveData=true",
        ),
        (
            DATE,
            "/report/v2/ledgers/200/funds/dates/2024-04-04?includeGDPRSensitiveData=true",
        ),
    ] {
        let res = app.get(path, narrow_acc, &[]).await;
        assert_eq!(res.headers()["ledgerport-personal-data"], "withheld");
        doc.check("get", template, 200, res).await;
    }
    for (template, path) in [
        (FEED, "/report/v2/ledgers/200/fees/feed"),
        (DATE, "/report/v2/ledgers/200/funds/dates/2024-04-03"),
    ] {
        let body = doc
            .check("get", template, 403, app.get(path, narrow_acc, &[]).await)
            .await;
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains("grant")),
            "{body}"
        );
    }

    // --- Webhooks (extension) ---
    const HOOKS: &str = "/ledgerport/v1/webhooks";
    const HOOK: &str = "/ledgerport/v1/webhooks/{id}";
    const ROTATE: &str = "/ledgerport/v1/webhooks/{id}/rotate-secret";
    const DELIVERIES: &str = "/ledgerport/v1/webhooks/{id}/deliveries";
    const REDELIVER: &str = "/ledgerport/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver";
    let send = |method: reqwest::Method, path: String, token: Option<&str>, body: Option<Value>| {
        let mut req = app.http.request(method, app.url(&path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    use reqwest::Method;
    // 192.0.2.1 is a documentation address: public to the policy, and nothing answers there.
    let created = doc
        .check(
            "post",
            HOOKS,
            201,
            send(
                Method::POST,
                HOOKS.into(),
                acc,
                Some(json!({"url": "http://192.0.2.1/hook", "eventTypes": ["grant.changed"]})),
            )
            .await
            .expect("post"),
        )
        .await;
    let hook = created["id"].as_str().expect("id").to_owned();
    assert!(
        created["secret"]
            .as_str()
            .expect("secret")
            .starts_with("whsec_")
    );
    for body in [
        json!({"url": "http://127.0.0.1:9/x"}),
        json!({"url": "http://192.0.2.1/x", "eventTypes": ["nope"]}),
        json!({"url": "ftp://192.0.2.1/x"}),
        json!({"address": "http://192.0.2.1/x"}),
    ] {
        doc.check(
            "post",
            HOOKS,
            400,
            send(Method::POST, HOOKS.into(), acc, Some(body))
                .await
                .expect("post"),
        )
        .await;
    }
    doc.check(
        "post",
        HOOKS,
        401,
        send(
            Method::POST,
            HOOKS.into(),
            None,
            Some(json!({"url": "http://192.0.2.1/x"})),
        )
        .await
        .expect("post"),
    )
    .await;
    doc.check(
        "post",
        HOOKS,
        403,
        send(
            Method::POST,
            HOOKS.into(),
            Some(&integration_token),
            Some(json!({"url": "http://192.0.2.1/x"})),
        )
        .await
        .expect("post"),
    )
    .await;
    let list = doc
        .check("get", HOOKS, 200, app.get(HOOKS, acc, &[]).await)
        .await;
    assert_eq!(list["items"][0]["id"], hook.as_str());
    doc.check("get", HOOKS, 401, app.get(HOOKS, None, &[]).await)
        .await;
    doc.check(
        "get",
        HOOKS,
        403,
        app.get(HOOKS, Some(&integration_token), &[]).await,
    )
    .await;
    let rotated = doc
        .check(
            "post",
            ROTATE,
            200,
            send(
                Method::POST,
                format!("{HOOKS}/{hook}/rotate-secret"),
                acc,
                Some(json!({"overlapHours": 2})),
            )
            .await
            .expect("rotate"),
        )
        .await;
    assert!(rotated["previousSecretExpiresAt"].is_string());
    doc.check(
        "post",
        ROTATE,
        400,
        send(
            Method::POST,
            format!("{HOOKS}/{hook}/rotate-secret"),
            acc,
            Some(json!({"overlapHours": 1000})),
        )
        .await
        .expect("rotate"),
    )
    .await;
    doc.check(
        "post",
        ROTATE,
        404,
        send(
            Method::POST,
            format!("{HOOKS}/ep_00000000000000000000000000000000/rotate-secret"),
            acc,
            None,
        )
        .await
        .expect("rotate"),
    )
    .await;
    doc.check(
        "post",
        ROTATE,
        401,
        send(
            Method::POST,
            format!("{HOOKS}/{hook}/rotate-secret"),
            None,
            None,
        )
        .await
        .expect("rotate"),
    )
    .await;
    // A grant change makes a delivery for the partner's endpoint.
    app.store
        .set_grant_scope(
            &by(),
            w.granted_partner,
            &LedgerId::parse("ledger", "100").expect("id"),
            &GrantScope {
                personal_data: false,
                ..GrantScope::EVERYTHING
            },
        )
        .await
        .expect("change the grant");
    let log = doc
        .check(
            "get",
            DELIVERIES,
            200,
            app.get(&format!("{HOOKS}/{hook}/deliveries"), acc, &[])
                .await,
        )
        .await;
    let delivery = log["items"][0]["id"].as_i64().expect("a delivery");
    assert_eq!(log["items"][0]["eventType"], "grant.changed");
    doc.check(
        "get",
        DELIVERIES,
        400,
        app.get(&format!("{HOOKS}/{hook}/deliveries?before=x"), acc, &[])
            .await,
    )
    .await;
    doc.check(
        "get",
        DELIVERIES,
        404,
        app.get(
            &format!("{HOOKS}/ep_00000000000000000000000000000000/deliveries"),
            acc,
            &[],
        )
        .await,
    )
    .await;
    doc.check(
        "get",
        DELIVERIES,
        401,
        app.get(&format!("{HOOKS}/{hook}/deliveries"), None, &[])
            .await,
    )
    .await;
    doc.check(
        "post",
        REDELIVER,
        202,
        send(
            Method::POST,
            format!("{HOOKS}/{hook}/deliveries/{delivery}/redeliver"),
            acc,
            None,
        )
        .await
        .expect("redeliver"),
    )
    .await;
    doc.check(
        "post",
        REDELIVER,
        404,
        send(
            Method::POST,
            format!("{HOOKS}/{hook}/deliveries/999999/redeliver"),
            acc,
            None,
        )
        .await
        .expect("redeliver"),
    )
    .await;
    doc.check(
        "post",
        REDELIVER,
        401,
        send(
            Method::POST,
            format!("{HOOKS}/{hook}/deliveries/{delivery}/redeliver"),
            None,
            None,
        )
        .await
        .expect("redeliver"),
    )
    .await;
    doc.check(
        "delete",
        HOOK,
        401,
        send(Method::DELETE, format!("{HOOKS}/{hook}"), None, None)
            .await
            .expect("delete"),
    )
    .await;
    doc.check(
        "delete",
        HOOK,
        204,
        send(Method::DELETE, format!("{HOOKS}/{hook}"), acc, None)
            .await
            .expect("delete"),
    )
    .await;
    doc.check(
        "delete",
        HOOK,
        404,
        send(Method::DELETE, format!("{HOOKS}/{hook}"), acc, None)
            .await
            .expect("delete"),
    )
    .await;

    // --- Ingestion ---
    let batch = json!({"events": [
        {"eventId": "oa-1", "type": "capture", "msn": "123455", "pspReference": "9001",
         "amount": 10000, "currency": "NOK", "time": "2024-04-05T11:00:00Z"},
        {"eventId": "oa-2", "type": "capture", "msn": 123455, "pspReference": "9002",
         "amount": -5, "currency": "NOK", "time": "2024-04-05T11:00:00Z"},
        {"type": "capture"},
    ]});
    let body = doc
        .check("post", INGEST, 200, app.post_events(&service, &batch).await)
        .await;
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(body["results"][2]["eventId"], Value::Null);
    let res = app.post_events_raw(None, "application/json", "{}").await;
    doc.check("post", INGEST, 401, res).await;
    let res = app
        .post_events_raw(
            Some((&service.client_id, "wrong")),
            "application/json",
            batch.to_string(),
        )
        .await;
    doc.check("post", INGEST, 401, res).await;
    let creds = Some((service.client_id.as_str(), service.secret.as_str()));
    for (ct, body) in [
        ("text/plain", batch.to_string()),
        ("application/json", "not json".to_owned()),
        ("application/json", "[]".to_owned()),
        ("application/json", "{\"evts\":[]}".to_owned()),
    ] {
        let res = app.post_events_raw(creds, ct, body).await;
        doc.check("post", INGEST, 400, res).await;
    }
    let huge = vec![b' '; 16 * 1024 * 1024 + 1];
    let res = app.post_events_raw(creds, "application/json", huge).await;
    doc.check("post", INGEST, 413, res).await;

    // --- Operations and documentation ---
    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/openapi.json", 200),
        ("/docs", 200),
    ] {
        doc.check("get", path, status, app.get(path, None, &[]).await)
            .await;
    }

    // --- Rate limits, on a server whose buckets hold one request ---
    let limited = TestApp::start_with(ServerConfig {
        close_interval: None,
        limits: LimitsConfig {
            token_burst: 1,
            report_burst: 1,
            ..LimitsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let _ = world(&limited).await;
    let acc2 = limited
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let unit2 = limited
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let token2 = limited.miami_token(&acc2).await;
    let res = limited
        .miami_token_raw(&acc2.client_id, &acc2.secret, ok_form)
        .await;
    doc.check("post", MIAMI, 429, res).await;
    let std_headers = |sub: &str| {
        [
            ("client_id", unit2.client_id.clone()),
            ("client_secret", unit2.secret.clone()),
            ("Ocp-Apim-Subscription-Key", sub.to_owned()),
        ]
    };
    let sub2 = unit2.subscription_key.clone().expect("sub");
    let h = std_headers(&sub2);
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = limited.standard_token_raw(&h).await;
    doc.check("post", STD, 200, res).await;
    let res = limited.standard_token_raw(&h).await;
    doc.check("post", STD, 429, res).await;
    let res = limited
        .http
        .post(limited.url("/accessToken/get"))
        .header("client_id", &unit2.client_id)
        .header("client_secret", &unit2.secret)
        .header("Ocp-Apim-Subscription-Key", &sub2)
        .send()
        .await
        .expect("request");
    doc.check("post", "/accessToken/get", 429, res).await;
    let res = limited.get(LEDGERS, Some(&token2), &[]).await;
    doc.check("get", LEDGERS, 200, res).await;
    for (template, path) in [
        (LEDGERS, LEDGERS),
        (DATE, "/report/v2/ledgers/100/funds/dates/2024-04-04"),
        (FEED, "/report/v2/ledgers/100/funds/feed"),
        (GRANTS, GRANTS),
        (
            PROOF,
            "/ledgerport/v1/ledgers/100/funds/dates/2024-04-04/proof",
        ),
        (
            CAMT053,
            "/ledgerport/v1/ledgers/100/statements/camt053?from=2024-04-04&to=2024-04-04",
        ),
    ] {
        let res = limited.get(path, Some(&token2), &[]).await;
        doc.check("get", template, 429, res).await;
    }

    // Every documented response of every operation was seen, except the 500s (which a healthy
    // server does not give; their body is checked in `success_bodies_are_closed...`).
    let covered = doc.covered.lock().expect("lock").clone();
    let mut missing = Vec::new();
    for (method, template) in documented_operations(&doc.doc) {
        for status in doc.doc["paths"][&template][&method]["responses"]
            .as_object()
            .expect("responses")
            .keys()
        {
            if status != "500"
                && !covered.contains(&(method.clone(), template.clone(), status.clone()))
            {
                missing.push(format!("{method} {template} {status}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented but never checked: {missing:#?}"
    );
}
