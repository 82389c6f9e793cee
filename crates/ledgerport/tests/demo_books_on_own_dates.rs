//! The demo's history is booked the way payments are: every capture on the ledger date of its
//! own time, in its ledger's time zone and cutoff, not a day late.

use ledgerport_core::access::{self, Principal};
use ledgerport_core::clock::SystemClock;
use ledgerport_core::ids::Topic;
use ledgerport_store::prelude::*;
use ledgerport_store::sqlite::SqliteStore;
use std::process::Command;
use std::sync::Arc;

#[tokio::test]
async fn every_demo_capture_is_booked_on_its_own_ledger_date() {
    // Arrange: a small demo world, built and not served.
    let dir = std::env::temp_dir().join(format!("ledgerport-demo-dates-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("demo.db");

    // Act
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerport"))
        .args([
            "--log",
            "warn",
            "demo",
            "--no-serve",
            "--days",
            "5",
            "--database",
        ])
        .arg(&db)
        .output()
        .expect("run the demo");
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every event the demo makes is one the engine accepts (refunds within their captures,
    // returned disputes within what was retained): the last day's progress line counts none
    // rejected.
    let progress = String::from_utf8_lossy(&out.stderr);
    let last_day = progress.rsplit('\r').next().unwrap_or_default();
    assert!(
        last_day.contains(" events accepted, 0 rejected"),
        "the demo had events rejected: {last_day}"
    );

    // Assert: read every ledger's funds feed through the store, as the operator.
    let store = SqliteStore::open(&format!("sqlite://{}", db.display()), Arc::new(SystemClock))
        .await
        .expect("open the demo database");
    let ledgers = store.ledgers().await.expect("ledgers");
    assert_eq!(ledgers.len(), 4, "the demo world has four ledgers");
    let mut wrong = Vec::new();
    for view in &ledgers {
        let ledger = &view.ledger;
        let (access, _) = access::open(
            &Principal::Operator { user_id: None },
            store.ledger(&ledger.ledger_id).await.expect("read ledger"),
        )
        .expect("the operator reads every ledger");
        let (mut after, mut captures) = (0, 0);
        loop {
            let page = store
                .feed_page(&access, Topic::Funds, after, 1000)
                .await
                .expect("feed");
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in page.iter().filter(|e| e.entry_type == "capture") {
                captures += 1;
                let time: jiff::Timestamp = e.time.parse().expect("entry time");
                let own = ledger.ledger_date_of(time);
                if e.ledger_date != own {
                    wrong.push(format!(
                        "ledger {}: capture {} at {} booked on {}, its date is {own}",
                        ledger.ledger_id, e.psp_reference, e.time, e.ledger_date
                    ));
                }
            }
        }
        assert!(captures > 0, "ledger {} has no captures", ledger.ledger_id);
    }
    let verify = Command::new(env!("CARGO_BIN_EXE_ledgerport"))
        .args(["--log", "warn", "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        .arg("verify")
        .output()
        .expect("run verify");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        verify.status.success(),
        "verify found violations in the demo world: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert!(
        wrong.is_empty(),
        "{} captures booked on another date than their own, e.g.\n{}",
        wrong.len(),
        wrong.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}
