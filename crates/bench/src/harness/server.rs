//! The server under test: the `ledgerport` binary's `serve`, started as a child process on the
//! benchmark's database, so its memory is its own and its CPU competes with the load generator
//! the way a real deployment's would on a shared machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The flags the server gets besides the database and the listening address: no closing task
/// (it would write payouts into the ledgers being read) and no rate limits (they would cap
/// the load at the configured rate instead of the server's capacity).
pub const SERVE_FLAGS: &[&str] = &[
    "--close-interval",
    "0",
    "--limits-enabled",
    "false",
    "--log-format",
    "json",
];

/// A running server. Killed when dropped, so an error anywhere in the run does not leave it
/// behind.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base: String,
    /// Highest VmRSS, RssAnon and RssFile seen by the sampler, in KiB.
    rss_peak_kib: Arc<[AtomicU64; 3]>,
    sampler: tokio::task::JoinHandle<()>,
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The `ledgerport` binary to start: `given` (`--server-bin`), or the one next to this binary
/// (cargo builds both into the same target directory).
pub fn binary(given: Option<&Path>) -> Result<PathBuf, String> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let exe = std::env::current_exe().map_err(|e| format!("finding this binary: {e}"))?;
            exe.with_file_name(format!("ledgerport{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !path.is_file() {
        return Err(format!(
            "bench: the server binary {} does not exist: build it next to this one (cargo build \
             --release -p ledgerport -p ledgerport-bench) or name it with --server-bin PATH",
            path.display()
        ));
    }
    Ok(path)
}

impl Server {
    /// Starts `server_bin serve` on `database_url` listening on an ephemeral port, and waits
    /// until it answers `/readyz`.
    pub async fn start(server_bin: &Path, database_url: &str) -> Result<Server, String> {
        let mut child = Command::new(server_bin)
            .arg("--database-url")
            .arg(database_url)
            .arg("--log")
            .arg("info")
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(SERVE_FLAGS)
            // A fresh key-encryption key for the run's fresh database; no metrics listener.
            .env(
                "LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY",
                ledgerport_server::tokens::KeyEncryptionKey::generate().to_base64(),
            )
            .env("LEDGERPORT_METRICS_LISTEN", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let pid = child.id().ok_or("the server exited at once")?;
        let stderr = child.stderr.take().ok_or("no stderr of the server")?;
        let mut lines = BufReader::new(stderr).lines();
        // The server logs its address once listening; the port was chosen by the kernel.
        let addr = tokio::time::timeout(Duration::from_secs(120), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["fields"]["message"] == "serving"
                    && let Some(a) = v["fields"]["addr"].as_str()
                {
                    return Ok(a.to_owned());
                }
                if line.contains("ERROR") || line.starts_with("error") {
                    return Err(format!("the server failed to start: {line}"));
                }
            }
            Err("the server exited before listening".to_owned())
        })
        .await
        .map_err(|_| "the server did not start listening within 120 s".to_owned())??;
        // Keep draining its log so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let rss_peak_kib = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        let peak = rss_peak_kib.clone();
        let sampler = tokio::spawn(async move {
            loop {
                for (i, field) in ["VmRSS:", "RssAnon:", "RssFile:"].iter().enumerate() {
                    if let Some(kib) = status_kib(pid, field) {
                        peak[i].fetch_max(kib, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let server = Server {
            child,
            pid,
            base: format!("http://{addr}"),
            rss_peak_kib,
            sampler,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let client = ledgerport_server::http::client()?;
        let began = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if began.elapsed() > Duration::from_secs(60) {
                return Err("the server did not become ready within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Peak resident memory (VmHWM) of the server so far, in MiB.
    pub fn peak_mib(&self) -> Option<f64> {
        status_kib(self.pid, "VmHWM:").map(|k| k as f64 / 1024.0)
    }

    /// Highest resident memory sampled every 100 ms, in MiB: in all (VmRSS), the process's own
    /// (RssAnon: heap, stacks, SQLite's page cache) and mapped files (RssFile: the binary and a
    /// memory-mapped database, pages the kernel may drop and share).
    pub fn sampled_peak_mib(&self) -> [f64; 3] {
        [0, 1, 2].map(|i| self.rss_peak_kib[i].load(Ordering::Relaxed) as f64 / 1024.0)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.sampler.abort();
        let _ = self.child.kill().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.sampler.abort();
        let _ = self.child.start_kill();
    }
}
