//! `GET /ledgerport/v1/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}/proof` over HTTP: the proof
//! a closing wrote, recomputable from the date page a reader downloads (personal data withheld
//! or not); the Report API's access rules exactly (the same 404 for an unknown ledger and one
//! not the caller's, 403 for keys that may never read and for a topic or date outside a grant,
//! 400 naming the field); 409 for an open date, a 404 naming `ledgerDate` for a closed date
//! without a proof; and the access log's row.

mod common;

use common::*;
use jiff::SignedDuration;
use ledgerport_core::clock::Clock;
use ledgerport_core::ids::{LedgerId, Topic};
use ledgerport_core::proof::{DateProof, Digest, Previous, ProofEntry, check_date, prove_date};
use ledgerport_core::world::{GrantScope, KeyKind, KeyOwner, PartnerKind, Topics};
use ledgerport_store::AccessLogFilter;
use serde_json::Value;

/// The world, with 2024-04-05 closed by the engine (the clock a day on, `close_due` as the
/// closing task calls it): ledger 100's first date, so the first of its proofs.
async fn closed_world(app: &TestApp) -> World {
    let w = world(app).await;
    app.clock
        .set(app.clock.now() + SignedDuration::from_hours(24));
    for l in ["100", "200", "300", "400"] {
        app.store
            .close_due(&lid(l), app.clock.now())
            .await
            .expect("close");
    }
    w
}

async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn proof_from_wire(v: &Value) -> DateProof {
    let text = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"));
    let int = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}"));
    DateProof {
        ledger_id: lid(text("ledgerId")),
        topic: Topic::parse("topic", text("topic")).expect("topic"),
        ledger_date: date(text("ledgerDate")),
        entry_count: u64::try_from(int("entryCount")).expect("count"),
        amount_sum: int("amountSum"),
        opening_balance: int("openingBalance"),
        closing_balance: int("closingBalance"),
        digest: Digest::parse("digest", text("digest")).expect("digest"),
        previous_chain_digest: v["previousChainDigest"]
            .as_str()
            .map(|d| Digest::parse("previousChainDigest", d).expect("digest")),
        chain_digest: Digest::parse("chainDigest", text("chainDigest")).expect("digest"),
    }
}

/// Every entry of a date as a reader downloads it, following the cursors.
async fn date_items(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let p = match &cursor {
            Some(c) => format!("{path}?cursor={c}&includeGDPRSensitiveData=true"),
            None => format!("{path}?includeGDPRSensitiveData=true"),
        };
        let (status, body) = json_of(app.get(&p, Some(token), &[]).await).await;
        assert_eq!(status, 200, "{p}: {body}");
        assert_eq!(body["tryLater"], false, "{p}");
        items.extend(body["items"].as_array().expect("items").iter().cloned());
        match body["cursor"].as_str() {
            Some(c) if body["hasMore"] == true => cursor = Some(c.to_owned()),
            _ => return items,
        }
    }
}

fn proof_entries(items: &[Value]) -> Vec<ProofEntry<'_>> {
    items
        .iter()
        .map(|e| ProofEntry {
            psp_reference: e["pspReference"].as_str().expect("pspReference"),
            time: e["time"].as_str().expect("time"),
            ledger_date: date(e["ledgerDate"].as_str().expect("ledgerDate")),
            entry_type: e["entryType"].as_str().expect("entryType"),
            reference: e["reference"].as_str().expect("reference"),
            currency: e["currency"].as_str().expect("currency"),
            amount: e["amount"].as_i64().expect("amount"),
            balance_before: e["balanceBefore"].as_i64().expect("balanceBefore"),
            balance_after: e["balanceAfter"].as_i64().expect("balanceAfter"),
            recipient_handle: e["recipientHandle"].as_str().expect("recipientHandle"),
        })
        .collect()
}

#[tokio::test]
async fn a_closed_dates_proof_is_what_its_date_page_gives_with_or_without_personal_data() {
    let app = TestApp::start().await;
    let w = closed_world(&app).await;
    let keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let token = app.miami_token(&keys).await;
    // A partner whose grant leaves out personal data reads the same non-personal fields.
    let withheld = partner(
        app.store.as_ref(),
        "No Names AS",
        PartnerKind::Accounting,
        true,
    )
    .await;
    app.store
        .create_grant(
            &by(),
            withheld,
            &lid("200"),
            &GrantScope {
                personal_data: false,
                ..GrantScope::EVERYTHING
            },
        )
        .await
        .expect("grant");
    let withheld_keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(withheld))
        .await;
    let withheld_token = app.miami_token(&withheld_keys).await;

    for (ledger, topic) in [("100", "funds"), ("100", "fees"), ("200", "funds")] {
        let path = format!("/ledgerport/v1/ledgers/{ledger}/{topic}/dates/2024-04-05/proof");
        let (status, body) = json_of(app.get(&path, Some(&token), &[]).await).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["form"], "ledgerport-date-proof-v2");
        assert_eq!(body["ledgerId"], ledger);
        assert_eq!(body["topic"], topic);
        assert_eq!(body["ledgerDate"], "2024-04-05");
        let proof = proof_from_wire(&body);
        // The ledger's first date starts its chain.
        assert_eq!(proof.previous_chain_digest, None, "{path}");

        let page = format!("/report/v2/ledgers/{ledger}/{topic}/dates/2024-04-05");
        let items = date_items(&app, &token, &page).await;
        let mismatches = check_date(&proof, proof_entries(&items));
        assert!(mismatches.is_empty(), "{path}: {mismatches:?}");
        assert_eq!(proof.entry_count, items.len() as u64, "{path}");
        if ledger == "200" {
            let page_withheld = date_items(&app, &withheld_token, &page).await;
            assert!(page_withheld.iter().all(|e| e.get("name").is_none()));
            assert!(check_date(&proof, proof_entries(&page_withheld)).is_empty());
        }
    }

    // Ledger 100's funds on 2024-04-05: two captures (12000), then the closing retains the
    // date's fees (none that day) and pays out the whole balance.
    let (_, body) = json_of(
        app.get(
            "/ledgerport/v1/ledgers/100/funds/dates/2024-04-05/proof",
            Some(&token),
            &[],
        )
        .await,
    )
    .await;
    let p = proof_from_wire(&body);
    assert_eq!((p.opening_balance, p.closing_balance), (0, 0));
    assert_eq!(p.amount_sum, 0);
    assert!(p.entry_count >= 3, "{body}");
}

#[tokio::test]
async fn the_next_closing_chains_its_proof_to_the_last_one() {
    let app = TestApp::start().await;
    let w = closed_world(&app).await;
    // Nothing happens on 2024-04-06; it closes a day later.
    app.clock
        .set(app.clock.now() + SignedDuration::from_hours(24));
    app.store
        .close_due(&lid("100"), app.clock.now())
        .await
        .expect("close");
    let keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let token = app.miami_token(&keys).await;
    let get = |d: &'static str| {
        let path = format!("/ledgerport/v1/ledgers/100/fees/dates/{d}/proof");
        let app = &app;
        let token = token.clone();
        async move { json_of(app.get(&path, Some(&token), &[]).await).await }
    };
    let (s1, first) = get("2024-04-05").await;
    let (s2, second) = get("2024-04-06").await;
    assert_eq!((s1, s2), (200, 200), "{first} {second}");
    let (first, second) = (proof_from_wire(&first), proof_from_wire(&second));
    assert_eq!(second.previous_chain_digest, Some(first.chain_digest));
    assert_eq!(second.entry_count, 0);
    assert_eq!(second.opening_balance, first.closing_balance);
    // What a client computes for the empty date from the first proof alone.
    let expected = prove_date(
        &LedgerId::parse("l", "100").expect("id"),
        Topic::Fees,
        date("2024-04-06"),
        [],
        Previous {
            balance: first.closing_balance,
            chain_digest: Some(first.chain_digest),
        },
    )
    .expect("proof");
    assert_eq!(second, expected);
}

#[tokio::test]
async fn the_report_apis_access_rules_hold_for_proofs() {
    let app = TestApp::start().await;
    let w = closed_world(&app).await;
    let keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(w.granted_partner))
        .await;
    let token = app.miami_token(&keys).await;
    let proof =
        |l: &str, t: &str, d: &str| format!("/ledgerport/v1/ledgers/{l}/{t}/dates/{d}/proof");

    // Unknown and not granted: the same answer, byte for byte but the request's own path.
    let unknown = app
        .get(&proof("999", "funds", "2024-04-05"), Some(&token), &[])
        .await;
    let not_granted = app
        .get(&proof("400", "funds", "2024-04-05"), Some(&token), &[])
        .await;
    let (su, bu) = json_of(unknown).await;
    let (sn, bn) = json_of(not_granted).await;
    assert_eq!((su, sn), (404, 404));
    assert_eq!(bu["detail"], "No such ledgerId");
    assert_eq!(bu["detail"], bn["detail"]);
    assert_eq!(bu["title"], bn["title"]);
    let not_an_id = json_of(
        app.get(&proof("0x1", "funds", "2024-04-05"), Some(&token), &[])
            .await,
    )
    .await;
    assert_eq!(not_an_id.0, 404);
    assert_eq!(not_an_id.1["detail"], "No such ledgerId");

    // Bad input: 400 naming the field, on any ledger alike.
    for (path, field) in [
        (proof("100", "funds", "2024-02-30"), "ledgerDate"),
        (proof("999", "funds", "not-a-date"), "ledgerDate"),
        (proof("100", "nope", "2024-04-05"), "topic"),
    ] {
        let (status, body) = json_of(app.get(&path, Some(&token), &[]).await).await;
        assert_eq!(status, 400, "{path}");
        assert!(
            body["detail"].as_str().unwrap_or("").starts_with(field),
            "{path}: {body}"
        );
    }

    // Open dates: 409, today and later ones alike; a closed date before the ledger's first date
    // has no proof: 404 naming ledgerDate (not the ledger's 404).
    for d in ["2024-04-06", "2024-05-01"] {
        let (status, body) =
            json_of(app.get(&proof("100", "funds", d), Some(&token), &[]).await).await;
        assert_eq!(status, 409, "{d}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or("")
                .starts_with("ledgerDate")
        );
    }
    let (status, body) = json_of(
        app.get(&proof("100", "funds", "2024-04-04"), Some(&token), &[])
            .await,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("ledgerDate"),
        "{body}"
    );

    // No token: 401 as on the Report API.
    let res = app
        .get(&proof("100", "funds", "2024-04-05"), None, &[])
        .await;
    assert_eq!(res.status(), 401);

    // Keys that may never read: 403 whatever the request holds.
    let integrator = partner(
        app.store.as_ref(),
        "Kassa AS",
        PartnerKind::Integration,
        true,
    )
    .await;
    let int = app
        .issue(KeyKind::Integration, KeyOwner::Partner(integrator))
        .await;
    let int_token = app.standard_token(&int).await;
    let sub = int.subscription_key.clone().expect("sub");
    for path in [
        proof("100", "funds", "2024-04-05"),
        proof("999", "nope", "x"),
    ] {
        let res = app
            .get(
                &path,
                Some(&int_token),
                &[("Ocp-Apim-Subscription-Key", &sub)],
            )
            .await;
        assert_eq!(res.status(), 403, "{path}");
    }

    // A grant limited to a topic and a period: 403 naming what is outside it.
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
            &lid("100"),
            &GrantScope {
                topics: Topics {
                    funds: true,
                    fees: false,
                },
                from: Some(date("2024-04-01")),
                to: Some(date("2024-04-04")),
                ..GrantScope::EVERYTHING
            },
        )
        .await
        .expect("grant");
    let narrow_keys = app
        .issue(KeyKind::Accounting, KeyOwner::Partner(narrow))
        .await;
    let narrow_token = app.miami_token(&narrow_keys).await;
    for (path, field) in [
        (proof("100", "fees", "2024-04-04"), "topic"),
        (proof("100", "funds", "2024-04-05"), "ledgerDate"),
    ] {
        let (status, body) = json_of(app.get(&path, Some(&narrow_token), &[]).await).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body["detail"].as_str().unwrap_or("").starts_with(field),
            "{path}: {body}"
        );
    }

    // Sales-unit keys read their own unit's ledger only.
    let unit_keys = app
        .issue(KeyKind::SalesUnit, KeyOwner::SalesUnit(msn("123455")))
        .await;
    let unit_token = app.standard_token(&unit_keys).await;
    let unit_sub = unit_keys.subscription_key.clone().expect("sub");
    let headers = [("Ocp-Apim-Subscription-Key", unit_sub.as_str())];
    let own = app
        .get(
            &proof("100", "funds", "2024-04-05"),
            Some(&unit_token),
            &headers,
        )
        .await;
    assert_eq!(own.status(), 200);
    let other = app
        .get(
            &proof("200", "funds", "2024-04-05"),
            Some(&unit_token),
            &headers,
        )
        .await;
    assert_eq!(other.status(), 404);

    // Each request is in the access log with its ledger, topic and date.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let rows = app
        .store
        .access_log(&AccessLogFilter {
            ledger_id: Some(lid("100")),
            ..AccessLogFilter::default()
        })
        .await
        .expect("log");
    let read = rows
        .iter()
        .find(|r| {
            r.rec.endpoint == "/ledgerport/v1/ledgers/{ledger_id}/{topic}/dates/{ledger_date}/proof"
                && r.rec.status == 200
        })
        .expect("a proof read in the access log");
    assert_eq!(read.rec.topic.as_deref(), Some("funds"));
    assert_eq!(read.rec.ledger_date.as_deref(), Some("2024-04-05"));
    assert!(
        rows.iter()
            .any(|r| r.rec.status == 409 && r.rec.result == "refused: date not closed yet")
    );
}
