//! The README's promise: `ledgerport demo` prints curl commands that work as printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_prints_curl_commands_that_return_a_token_and_then_real_entries() {
    if Command::new("curl").arg("--version").output().is_err() {
        panic!("this test runs the demo's printed curl commands and needs curl on the PATH");
    }
    let dir = std::env::temp_dir().join(format!("ledgerport-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("demo.db");
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_ledgerport"))
            .args([
                "--log",
                "warn",
                "demo",
                "--days",
                "10",
                "--listen",
                "127.0.0.1:0",
                "--database",
            ])
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start demo"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let done = line.contains("Stop with Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    let commands: Vec<&str> = printed
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("curl ") || l.starts_with("TOKEN=") || l.starts_with("PTOKEN="))
        .collect();
    assert_eq!(commands.len(), 9, "printed:\n{}", printed.join("\n"));

    // Run them exactly as printed, in one shell, separating their outputs.
    let script: String = commands
        .iter()
        .map(|c| format!("{c}\necho; echo '=====' \n"))
        .collect();
    // In the test's own directory: the statement's curl writes a file.
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&out.stdout);
    let outputs: Vec<&str> = text.split("=====").map(str::trim).collect();
    assert!(
        outputs[0].is_empty(),
        "token command printed {}",
        outputs[0]
    );
    assert!(
        outputs[1].contains(r#""ledgerId":"302321""#),
        "ledgers: {}",
        outputs[1]
    );
    assert!(
        outputs[2].contains(r#""entryType":"capture""#) && outputs[2].contains(r#""hasMore""#),
        "dates: {}",
        outputs[2]
    );
    assert!(
        outputs[3].contains(r#""entryType":"capture-fee""#),
        "feed: {}",
        outputs[3]
    );
    for id in ["302321", "302322", "402101"] {
        assert!(
            outputs[5].contains(&format!(r#""ledgerId":"{id}""#)),
            "partner ledgers: {}",
            outputs[5]
        );
    }
    assert!(
        !outputs[5].contains("502101"),
        "partner sees a ledger it was not granted: {}",
        outputs[5]
    );
    assert!(
        outputs[6].contains("maskedPhoneNo"),
        "GDPR feed: {}",
        outputs[6]
    );
    assert!(
        outputs[7].contains(r#""form":"ledgerport-date-proof-v2""#)
            && outputs[7].contains(r#""chainDigest""#),
        "proof: {}",
        outputs[7]
    );
    let statement =
        std::fs::read_to_string(dir.join("camt053-302321.xml")).expect("the statement's file");
    assert!(
        statement.contains("urn:iso:std:iso:20022:tech:xsd:camt.053.001.08")
            && statement.contains("<Stmt><Id>302321-"),
        "camt.053: {statement}"
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
