//! A second load generator for the token phases: `wrk`, where it is installed (Debian's `wrk`
//! package). The harness's own client (reqwest) is the same for every row so that rows compare;
//! but it costs far more CPU per request than wrk, which sends the same prepared bytes again
//! and again. On two cores shared with the server that cost is taken from the server: the token
//! phases' profile gave the harness 28 % of the machine (BENCHMARKS.md). wrk shows what the
//! server issues when the client costs about what a remote client's machine would not charge.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Where wrk is: on `PATH`.
pub fn binary() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("wrk"))
            .find(|p| p.is_file())
    })
}

/// One POST, sent on every connection again and again.
pub struct Post {
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// What wrk measured.
#[derive(Debug)]
pub struct WrkStats {
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Runs `bin` against `url` with `connections` connections on two threads for `duration`
/// (whole seconds, at least one: wrk counts no smaller unit). Any answer other than 2xx, or any
/// socket error, is an error: the rate of refusals is not the rate of tokens.
pub async fn run(
    bin: &Path,
    url: &str,
    post: &Post,
    connections: u32,
    duration: Duration,
) -> Result<WrkStats, String> {
    let dir = std::env::temp_dir().join(format!(
        "ledgerport-bench-wrk-{}-{}",
        std::process::id(),
        connections
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("wrk: {e}"))?;
    let script = dir.join("post.lua");
    std::fs::write(&script, lua(post)?).map_err(|e| format!("wrk: {e}"))?;
    let secs = duration.as_secs_f64().ceil().max(1.0) as u64;
    let out = tokio::process::Command::new(bin)
        .args(["-t2", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{secs}s"))
        .arg("-s")
        .arg(&script)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk exited ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&text)
}

/// The wrk script of `post`. Values go in Lua's long brackets, which need no escaping (with a
/// space inside an index's brackets: `[[` would open a long string).
fn lua(post: &Post) -> Result<String, String> {
    let quote = |v: &str| {
        if v.contains("]==]") {
            Err(format!("wrk: a value holds ]==]: {v}"))
        } else {
            Ok(format!("[==[{v}]==]"))
        }
    };
    let mut s = format!("wrk.method = \"POST\"\nwrk.body = {}\n", quote(&post.body)?);
    for (name, value) in &post.headers {
        s.push_str(&format!(
            "wrk.headers[ {} ] = {}\n",
            quote(name)?,
            quote(value)?
        ));
    }
    Ok(s)
}

/// Reads the rate and the 50th and 99th percentiles from wrk's `--latency` report.
fn parse(text: &str) -> Result<WrkStats, String> {
    let field = |label: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(label))
            .map(str::trim)
    };
    if let Some(n) = field("Non-2xx or 3xx responses:") {
        return Err(format!("wrk: {n} answers were not 2xx:\n{text}"));
    }
    if let Some(e) = field("Socket errors:") {
        return Err(format!("wrk: socket errors ({e}):\n{text}"));
    }
    let per_sec = field("Requests/sec:")
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| format!("wrk: no Requests/sec in its report:\n{text}"))?;
    let pct = |p: &str| {
        field(p)
            .and_then(millis)
            .ok_or_else(|| format!("wrk: no {p} latency in its report:\n{text}"))
    };
    Ok(WrkStats {
        per_sec,
        p50_ms: pct("50%")?,
        p99_ms: pct("99%")?,
    })
}

/// wrk's latency (`812.00us`, `1.33ms`, `1.02s`, `1.50m`) in milliseconds.
fn millis(v: &str) -> Option<f64> {
    let at = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(at);
    let n: f64 = n.parse().ok()?;
    match unit {
        "us" => Some(n / 1000.0),
        "ms" => Some(n),
        "s" => Some(n * 1000.0),
        "m" => Some(n * 60_000.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 3s test @ http://127.0.0.1:1/miami/v1/token
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.50ms    0.70ms  12.10ms   80.00%
    Req/Sec    10.75k   500.00    11.50k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.80ms
     90%    2.40ms
     99%    3.65ms
  64151 requests in 3.00s, 30.10MB read
Requests/sec:  21383.61
Transfer/sec:     10.03MB
";

    #[test]
    fn the_rate_and_percentiles_are_read_from_the_report() {
        let s = parse(REPORT).expect("a report");
        assert_eq!(s.per_sec, 21383.61);
        assert_eq!(s.p50_ms, 0.812);
        assert_eq!(s.p99_ms, 3.65);
    }

    #[test]
    fn refusals_and_socket_errors_are_errors_not_a_rate() {
        let refused = REPORT.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 64151\nRequests/sec",
        );
        assert!(parse(&refused).expect_err("refused").contains("not 2xx"));
        let broken = REPORT.replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec",
        );
        assert!(
            parse(&broken)
                .expect_err("broken")
                .contains("socket errors")
        );
    }

    #[test]
    fn the_script_quotes_every_value_in_long_brackets() {
        let post = Post {
            headers: vec![("Authorization", "Basic YTpi".into())],
            body: "grant_type=client_credentials".into(),
        };
        assert_eq!(
            lua(&post).expect("a script"),
            "wrk.method = \"POST\"\nwrk.body = [==[grant_type=client_credentials]==]\n\
             wrk.headers[ [==[Authorization]==] ] = [==[Basic YTpi]==]\n"
        );
    }
}
