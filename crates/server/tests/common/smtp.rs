//! A real SMTP server on loopback for the tests that assert the mails that arrive: aiosmtpd
//! (Debian `python3-aiosmtpd`), run by `tests/fixtures/smtp_sink.py`, which writes every message
//! it accepts to a directory the test reads, and refuses recipients while a flag file says so.
//! When /usr/bin/python3 cannot import aiosmtpd the sink runs `scripts/install-aiosmtpd.sh`; if
//! that fails, the test fails saying so.
#![allow(dead_code)]

use ledgerport_server::mail::{MailTls, SmtpConfig};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `From` of the tests' mails.
pub const FROM: &str = "Ledgerport <no-reply@ledgerport.test>";

/// Debian's python, which `python3-aiosmtpd` installs for (another python3 may come first on
/// PATH).
pub const PYTHON: &str = "/usr/bin/python3";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn aiosmtpd_present() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn ensure_aiosmtpd() {
    if aiosmtpd_present() {
        return;
    }
    let script = repo_root().join("scripts/install-aiosmtpd.sh");
    let status = Command::new(&script).status();
    assert!(
        status.as_ref().is_ok_and(|s| s.success()) && aiosmtpd_present(),
        "the mail tests need /usr/bin/python3 with aiosmtpd (Debian python3-aiosmtpd); installing it with {} failed ({status:?}): run it as root (or with sudo) and test again",
        script.display()
    );
}

/// A loopback port nothing listens on (yet).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// aiosmtpd on 127.0.0.1:`port`, writing what it accepts into `dir`; killed when dropped.
pub struct SmtpSink {
    child: Child,
}

impl SmtpSink {
    pub fn start(port: u16, dir: &Path) -> SmtpSink {
        ensure_aiosmtpd();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the sink's first line");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        SmtpSink { child }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory of the test's own for the messages, emptied first.
pub fn mail_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ledgerport-mail-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mail dir");
    dir
}

/// The messages the sink has written, by file name.
pub fn messages(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the mail dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read a message"))
        .collect()
}

/// The envelope recipient of a message the sink wrote.
pub fn envelope_to(message: &str) -> &str {
    message
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("X-Envelope-To: "))
        .expect("the sink's envelope line")
}

pub fn smtp(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: MailTls::None,
        credentials: None,
        from: FROM.into(),
        give_up_after: Duration::from_secs(72 * 3600),
    }
}

/// Waits up to 30 s until the sink holds at least `n` messages; returns them all.
pub async fn wait_for_messages(dir: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while messages(dir).len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    messages(dir)
}
