//! TLS for the tests: a private CA and a certificate for 127.0.0.1 it signed, made at test time
//! with the `openssl` command line tool (Debian's openssl), and a TLS-terminating proxy
//! (`fixtures/tls_proxy.py`, Python's own ssl) in front of a plain HTTP server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A directory holding `ca.pem` (the CA to trust), `cert.pem` and `key.pem` (the server's),
/// removed when dropped.
pub struct TestCa {
    pub dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let dir = std::env::temp_dir().join(format!(
            "ledgerport-tls-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("make the certificates' directory");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Ledgerport test CA",
        ]);
        openssl(&dir, &ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "key.pem",
            "-out",
            "cert.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&dir, &csr);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "cert.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
        TestCa { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `fixtures/tls_proxy.py`: HTTPS on 127.0.0.1:`port` with the CA's certificate, passed on to
/// 127.0.0.1:`upstream`. Killed when dropped.
#[allow(dead_code)] // each test file that includes this module uses part of it
pub struct TlsProxy {
    pub port: u16,
    child: Child,
}

#[allow(dead_code)]
impl TlsProxy {
    pub fn start(ca: &TestCa, upstream: u16) -> TlsProxy {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls_proxy.py");
        let run = ca.dir.join(format!("proxy-{upstream}"));
        std::fs::create_dir_all(&run).expect("make the proxy's directory");
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&run)
            .arg(ca.cert())
            .arg(ca.key())
            .arg(upstream.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the TLS proxy with /usr/bin/python3");
        let mut proxy = TlsProxy { port: 0, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        proxy.port = loop {
            if let Ok(p) = std::fs::read_to_string(run.join("port"))
                && let Ok(p) = p.trim().parse()
            {
                break p;
            }
            assert!(Instant::now() < deadline, "the TLS proxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        proxy
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
