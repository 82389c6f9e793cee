//! The bytes of every feed and date page equal a straightforward serialisation of the entries the
//! store wrote: whatever the read path does to be fast (rendered entries, cached pages), the
//! wire stays what it was. Every page of both topics of a ledger, followed by cursors, with and
//! without personal data asked for, for a grant with personal data, one without (withheld, with
//! its header) and one limited to a period; the entries hold text that needs escaping and
//! amounts beyond 2^53. On a SQLite file and on SQLite in memory, whose rows are read on
//! different paths (rusqlite on the caller's thread, and sqlx) before one writer renders them,
//! and on PostgreSQL when `DATABASE_URL` names it.

mod common;

use common::*;
use ledgerport_core::entry::{Entry, NewEntry, PayerDetails};
use ledgerport_core::ids::{LedgerDate, Topic};
use ledgerport_core::world::{GrantScope, KeyKind, KeyOwner, Topics};
use ledgerport_testkit::WorldBuilder;
use serde_json::Value;

/// A JSON string, as any JSON writer escapes it.
fn s(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// The reference rendering of one entry: the Report API's fields in the order of its schema,
/// payer details only when given.
fn entry(e: &Entry, personal: bool) -> String {
    let mut out = format!(
        "{{\"pspReference\":{},\"time\":{},\"ledgerDate\":{},\"entryType\":{},\"reference\":{},\
         \"currency\":{},\"amount\":{},\"balanceBefore\":{},\"balanceAfter\":{},\
         \"recipientHandle\":{}",
        s(&e.psp_reference),
        s(&e.time),
        s(&e.ledger_date.to_string()),
        s(&e.entry_type),
        s(&e.reference),
        s(e.currency.as_str()),
        e.amount,
        e.balance_before,
        e.balance_after,
        s(&e.recipient_handle),
    );
    if let (true, Some(p)) = (personal, &e.payer) {
        out.push_str(&format!(
            ",\"name\":{},\"message\":{},\"maskedPhoneNo\":{}",
            s(&p.name),
            s(&p.message),
            s(&p.masked_phone_no)
        ));
    }
    out.push('}');
    out
}

fn items(entries: &[&Entry], personal: bool) -> String {
    let all: Vec<String> = entries.iter().map(|e| entry(e, personal)).collect();
    format!("[{}]", all.join(","))
}

fn feed_body(cursor: &str, try_later: bool, entries: &[&Entry], personal: bool) -> String {
    format!(
        "{{\"cursor\":{},\"tryLater\":{try_later},\"items\":{}}}",
        s(cursor),
        items(entries, personal)
    )
}

fn date_body(
    entries: &[&Entry],
    personal: bool,
    has_more: bool,
    try_later: bool,
    cursor: Option<&str>,
) -> String {
    let cursor = cursor
        .map(|c| format!(",\"cursor\":{}", s(c)))
        .unwrap_or_default();
    format!(
        "{{\"items\":{},\"hasMore\":{has_more},\"tryLater\":{try_later}{cursor}}}",
        items(entries, personal)
    )
}

/// A payer whose words need escaping in JSON: quotes, backslash, control characters, line
/// separators, non-ASCII, and what an HTML page would not want.
fn payer(n: u32) -> PayerDetails {
    PayerDetails {
        name: format!("Kari \"K{n}\" Nordmann\\Ås"),
        message: format!("Kaffe ☕ og\nwienerbrød\t{n} </script>\u{1}\u{7f}\u{2028}💸"),
        masked_phone_no: format!("xxxx 12{n:02}"),
    }
}

/// Entries over three closed dates and the open one, payers on every third.
fn entries(topic: Topic) -> Vec<NewEntry> {
    let mut out = Vec::new();
    for (day, count) in [("03", 4), ("04", 5), ("05", 3)] {
        for i in 0..count {
            let handle = if i % 3 == 0 { "NO:57860" } else { "api:123455" };
            // One amount of each sign beyond what a double holds exactly (2^53 + 1, -2^53),
            // and every balance after it.
            let huge = day == "04" && i == 1;
            let (entry_type, amount) = match topic {
                Topic::Funds if huge => ("capture", 9_007_199_254_740_993),
                Topic::Funds => ("capture", 1000 + i64::from(i) * 101),
                Topic::Fees if huge => ("capture-fee", -9_007_199_254_740_992),
                Topic::Fees => ("capture-fee", -17 - i64::from(i)),
            };
            let mut e = new_entry(
                &format!("{day}{i:03}"),
                &format!("2024-04-{day}T{:02}:00:00.{i:06}Z", 8 + i),
                entry_type,
                amount,
                handle,
                (i % 3 == 0).then(|| payer(i)),
            );
            e.reference = format!("order \"{day}-{i}\" / å\\ø");
            out.push(e);
        }
    }
    out
}

/// What one grant may read, as the reference reads it.
struct Reader {
    token: String,
    scope: GrantScope,
}

impl Reader {
    fn sees(&self, e: &Entry) -> bool {
        self.scope.from.is_none_or(|f| e.ledger_date >= f)
            && self.scope.to.is_none_or(|t| e.ledger_date <= t)
    }
}

fn personal_header(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("ledgerport-personal-data")
        .map(|v| v.to_str().expect("ascii").to_owned())
}

/// Walks the whole feed of `topic` and every date page, and compares each body's bytes with
/// the reference rendering.
async fn check_reader(
    app: &TestApp,
    r: &Reader,
    topic: Topic,
    written: &[Entry],
    page_size: usize,
) -> usize {
    let mut pages = 0;
    for ask in [None, Some(true), Some(false)] {
        let query = match ask {
            None => String::new(),
            Some(b) => format!("includeGDPRSensitiveData={b}"),
        };
        let given = ask == Some(true) && r.scope.personal_data;
        let withheld = ask == Some(true) && !r.scope.personal_data;
        let visible: Vec<&Entry> = written.iter().filter(|e| r.sees(e)).collect();

        // The feed, page after page, until it says to try later.
        let mut after = 0i64;
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.clone();
            if let Some(c) = &cursor {
                let c = format!("cursor={}", urlencode(c));
                q = if q.is_empty() { c } else { format!("{q}&{c}") };
            }
            let path = format!("/report/v2/ledgers/100/{}/feed?{q}", topic.as_str());
            let res = app.get(&path, Some(&r.token), &[]).await;
            assert_eq!(res.status(), 200, "{path}");
            assert_eq!(
                personal_header(&res).as_deref(),
                withheld.then_some("withheld"),
                "{path}"
            );
            let body = res.text().await.expect("body");
            let v: Value = serde_json::from_str(&body).expect("json");
            let next: Vec<&Entry> = visible.iter().copied().filter(|e| e.seq > after).collect();
            let on_page: Vec<&Entry> = next.iter().copied().take(page_size).collect();
            let try_later = next.len() <= page_size;
            let c = v["cursor"].as_str().expect("cursor").to_owned();
            assert_eq!(
                body,
                feed_body(&c, try_later, &on_page, given),
                "{path}: the bytes differ from the reference"
            );
            pages += 1;
            if try_later {
                break;
            }
            after = on_page.last().map_or(after, |e| e.seq);
            cursor = Some(c);
        }

        // Every date of the world (and one without entries), page after page.
        for day in ["02", "03", "04", "05"] {
            let d = LedgerDate::parse("d", &format!("2024-04-{day}")).expect("date");
            if r.scope.from.is_some_and(|f| d < f) || r.scope.to.is_some_and(|t| d > t) {
                continue;
            }
            let of_date: Vec<&Entry> = written.iter().filter(|e| e.ledger_date == d).collect();
            let mut after = 0i64;
            let mut cursor: Option<String> = None;
            loop {
                let mut q = query.clone();
                if let Some(c) = &cursor {
                    let c = format!("cursor={}", urlencode(c));
                    q = if q.is_empty() { c } else { format!("{q}&{c}") };
                }
                let path = format!(
                    "/report/v2/ledgers/100/{}/dates/2024-04-{day}?{q}",
                    topic.as_str()
                );
                let res = app.get(&path, Some(&r.token), &[]).await;
                assert_eq!(res.status(), 200, "{path}");
                assert_eq!(
                    personal_header(&res).as_deref(),
                    withheld.then_some("withheld"),
                    "{path}"
                );
                let body = res.text().await.expect("body");
                let v: Value = serde_json::from_str(&body).expect("json");
                let next: Vec<&Entry> = of_date.iter().copied().filter(|e| e.seq > after).collect();
                let on_page: Vec<&Entry> = next.iter().copied().take(page_size).collect();
                let has_more = next.len() > page_size;
                // The test's clock stands on 2024-04-05, the one open date.
                let try_later = day == "05";
                let c = v["cursor"].as_str().map(str::to_owned);
                assert_eq!(c.is_some(), has_more, "{path}: a cursor exactly when more");
                assert_eq!(
                    body,
                    date_body(&on_page, given, has_more, try_later, c.as_deref()),
                    "{path}: the bytes differ from the reference"
                );
                pages += 1;
                if !has_more {
                    break;
                }
                after = on_page.last().map_or(after, |e| e.seq);
                cursor = c;
            }
        }
    }
    pages
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// On a SQLite file (or PostgreSQL when `DATABASE_URL` names it): on a file the rows are read
/// by rusqlite (`sqlite::direct`), on PostgreSQL by sqlx.
#[tokio::test]
async fn every_page_is_the_reference_serialisation_of_its_entries() {
    every_page_is_the_reference(TestApp::start().await).await;
}

/// On SQLite in memory, whose rows sqlx reads.
#[tokio::test]
async fn every_page_in_memory_is_the_reference_serialisation_of_its_entries() {
    every_page_is_the_reference(TestApp::start_in_memory().await).await;
}

async fn every_page_is_the_reference(app: TestApp) {
    let page_size = 2usize;
    let built = WorldBuilder::new()
        .merchant("987654321", "ACME AS")
        .api_unit("123455")
        .vm_unit("223344", "57860")
        .ledger("100", &["123455", "223344"])
        .page_size(page_size as u32)
        .build(app.store.as_ref())
        .await
        .expect("world");
    let mut written = Vec::new();
    for topic in [Topic::Funds, Topic::Fees] {
        // Written in two appends, as ingestion batches would.
        let mut all = entries(topic);
        let second = all.split_off(5);
        let mut got = Vec::new();
        for part in [all, second] {
            got.extend(
                app.store
                    .append_entries(&lid("100"), topic, part)
                    .await
                    .expect("append"),
            );
        }
        written.push((topic, got));
    }
    let _ = built.merchant("987654321");

    let scopes = [
        ("With Personal AS", GrantScope::EVERYTHING),
        (
            "Without Personal AS",
            GrantScope {
                personal_data: false,
                ..GrantScope::EVERYTHING
            },
        ),
        (
            "Period AS",
            GrantScope {
                from: Some(date("2024-04-04")),
                to: Some(date("2024-04-05")),
                topics: Topics::BOTH,
                ..GrantScope::EVERYTHING
            },
        ),
    ];
    let mut readers = Vec::new();
    for (name, scope) in scopes {
        let p = partner(
            app.store.as_ref(),
            name,
            ledgerport_core::world::PartnerKind::Accounting,
            true,
        )
        .await;
        app.store
            .create_grant(&by(), p, &lid("100"), &scope)
            .await
            .expect("grant");
        let keys = app.issue(KeyKind::Accounting, KeyOwner::Partner(p)).await;
        readers.push(Reader {
            token: app.miami_token(&keys).await,
            scope,
        });
    }

    let mut pages = 0;
    // Twice: the second time every page may come from whatever the first one left behind.
    for _ in 0..2 {
        for r in &readers {
            for (topic, got) in &written {
                pages += check_reader(&app, r, *topic, got, page_size).await;
            }
        }
    }
    assert!(pages > 100, "only {pages} pages compared");
}
