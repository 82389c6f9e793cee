//! The floor: the same page bytes served from memory by a bare axum server, with no database,
//! no authentication and no JSON encoding, measured with the same client and concurrency. What
//! Ledgerport takes beyond it is its own overhead; what the floor itself takes is the cost of
//! HTTP and the load generator on this machine.

use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use std::net::SocketAddr;

/// A floor server on its own runtime and thread, so that it does not share the load
/// generator's runtime (the real server is a process of its own).
pub struct Floor {
    pub base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Floor {
    /// Serves `page` at `/page` on 127.0.0.1 and an ephemeral port.
    pub fn start(page: Bytes) -> Result<Floor, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("floor: binding 127.0.0.1:0: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("floor: {e}"))?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| format!("floor: {e}"))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("floor: starting its runtime: {e}"))?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let app = axum::Router::new().route(
                    "/page",
                    get(move || {
                        let page = page.clone();
                        async move { ([(header::CONTENT_TYPE, "application/json")], page) }
                    }),
                );
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Ok(Floor {
            base: format!("http://{addr}"),
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A second floor: nginx serving the same page bytes as a static file, where nginx is
/// installed (Debian's `nginx` package puts it in `/usr/sbin`). It runs as the current user,
/// in the foreground, with a configuration, pid file, logs and temp directories of its own
/// in a temporary directory, on a loopback port; stopped and removed when dropped.
pub struct Nginx {
    pub base: String,
    child: std::process::Child,
    dir: std::path::PathBuf,
}

/// Where nginx is: on `PATH`, or Debian's `/usr/sbin/nginx` (not on a user's `PATH`).
pub fn nginx_binary() -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nginx"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let debian = std::path::PathBuf::from("/usr/sbin/nginx");
        debian.is_file().then_some(debian)
    })
}

impl Nginx {
    /// Starts `bin` serving `page` at `/page`; `Err` says why it could not.
    pub fn start(bin: &std::path::Path, page: &[u8]) -> Result<Nginx, String> {
        let dir = std::env::temp_dir().join(format!(
            "ledgerport-bench-nginx-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_microsecond()
        ));
        let fail = |what: &str, e: std::io::Error| format!("nginx floor: {what}: {e}");
        std::fs::create_dir_all(dir.join("html")).map_err(|e| fail("temp directory", e))?;
        std::fs::write(dir.join("html").join("page"), page).map_err(|e| fail("page file", e))?;
        // A free port: bound and released here, then named to nginx (which cannot be told to
        // pick one and say which).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| fail("finding a free port", e))?
            .port();
        let d = dir.display();
        // One worker per core, as a production configuration has; no access log (Ledgerport's
        // floor has none either), keep-alive without a request limit (the load generator keeps
        // its connections for the whole phase).
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes auto;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n\
             keepalive_requests 1000000;\n  keepalive_timeout 120s;\n\
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             server {{\n    listen 127.0.0.1:{port};\n    root {d}/html;\n\
             location = /page {{ default_type application/json; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).map_err(|e| fail("configuration", e))?;
        let child = std::process::Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| fail(&format!("starting {}", bin.display()), e))?;
        let mut n = Nginx {
            base: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        // Listening once a connection is accepted; an exit means it refused the configuration.
        let began = std::time::Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(n);
            }
            if let Ok(Some(status)) = n.child.try_wait() {
                let log = std::fs::read_to_string(n.dir.join("error.log")).unwrap_or_default();
                return Err(format!(
                    "nginx floor: nginx exited ({status}): {}",
                    log.lines().last().unwrap_or("no error log")
                ));
            }
            if began.elapsed() > std::time::Duration::from_secs(10) {
                return Err("nginx floor: not listening within 10 s".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL to the master leaves its workers: they exit when they see the master gone
        // (nginx workers watch their parent), but a TERM lets the master stop them itself.
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let began = std::time::Instant::now();
        while began.elapsed() < std::time::Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
