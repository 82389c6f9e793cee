//! The log's lines gathered in memory and written to stderr by a thread of their own.
//!
//! Writing each line to stderr on the request's own thread was about 9 % of the server's CPU
//! while it issued tokens: a system call and stderr's lock for every line, two lines a token, on
//! the threads that answer requests. Here a line is appended to a buffer under a lock (no system
//! call, no thread woken), and one thread writes what has gathered every few milliseconds, or at
//! once when a lot has. A full buffer makes the logging thread wait for the writer: no line is
//! dropped. Lines not yet written when the process is killed outright (SIGKILL) are lost (at most
//! [`WRITE_EVERY`] of them); `main` waits for the buffer to be written before it exits. Only
//! `serve` and `demo` log this way; the short commands write straight to stderr.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a line waits at most before the writer takes it.
pub const WRITE_EVERY: Duration = Duration::from_millis(20);
/// Gathered bytes that make the writer write at once.
const WRITE_AT: usize = 256 * 1024;
/// Gathered bytes beyond which a logging thread waits for the writer.
const MAX_BYTES: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Gathered {
    lines: Vec<u8>,
    /// Requests to have everything written ([`LogQueue::wait_written`]), counted.
    asked: u64,
    /// The last such request the writer has satisfied.
    answered: u64,
}

struct Shared {
    gathered: Mutex<Gathered>,
    /// Wakes the writer early: much gathered, or a wait for everything written.
    wake: Condvar,
    /// Tells waiting threads the writer has written a batch.
    written: Condvar,
    max_bytes: usize,
    /// Gathered bytes that make the writer write at once: [`WRITE_AT`], or less under a small
    /// bound.
    write_at: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Gathered> {
        self.gathered.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What `tracing_subscriber` makes a writer of for every line.
#[derive(Clone)]
pub struct LogQueue {
    shared: Arc<Shared>,
}

impl LogQueue {
    /// Starts the writing thread on stderr.
    pub fn start() -> std::io::Result<LogQueue> {
        Self::start_on(std::io::stderr(), MAX_BYTES)
    }

    /// Starts the writing thread on `out`; loggers wait while `max_bytes` are gathered.
    pub fn start_on(
        out: impl Write + Send + 'static,
        max_bytes: usize,
    ) -> std::io::Result<LogQueue> {
        let shared = Arc::new(Shared {
            gathered: Mutex::new(Gathered::default()),
            wake: Condvar::new(),
            written: Condvar::new(),
            max_bytes,
            write_at: WRITE_AT.min(max_bytes),
        });
        let for_writer = shared.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(&for_writer, out))?;
        Ok(LogQueue { shared })
    }

    /// Waits, at most `timeout`, until every line gathered so far has been written.
    pub fn wait_written(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.lock();
        g.asked += 1;
        let mine = g.asked;
        self.shared.wake.notify_one();
        while g.answered < mine {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            g = match self.shared.written.wait_timeout(g, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    fn gather(&self, line: &[u8]) {
        let mut g = self.shared.lock();
        while !g.lines.is_empty() && g.lines.len() + line.len() > self.shared.max_bytes {
            self.shared.wake.notify_one();
            g = match self.shared.written.wait(g) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
        g.lines.extend_from_slice(line);
        if g.lines.len() >= self.shared.write_at {
            self.shared.wake.notify_one();
        }
    }
}

fn write_lines(shared: &Shared, mut out: impl Write) {
    // Two buffers taking turns, so gathering goes on while a batch is written.
    let mut batch = Vec::new();
    loop {
        let asked = {
            let mut g = shared.lock();
            // Under load too: what gathers in the meantime goes out in one write.
            if g.lines.len() < shared.write_at && g.asked == g.answered {
                g = match shared.wake.wait_timeout(g, WRITE_EVERY) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            std::mem::swap(&mut g.lines, &mut batch);
            g.asked
        };
        if !batch.is_empty() {
            // Not locked for good: a panic's message or `main`'s last error goes to stderr
            // directly, between two batches.
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
        }
        let mut g = shared.lock();
        g.answered = asked;
        drop(g);
        shared.written.notify_all();
    }
}

/// One line being formatted; gathered when `tracing_subscriber` drops it.
pub struct QueuedLine {
    line: Vec<u8>,
    queue: LogQueue,
}

impl Write for QueuedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.queue.gather(&self.line);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogQueue {
    type Writer = QueuedLine;

    fn make_writer(&'a self) -> QueuedLine {
        QueuedLine {
            line: Vec::new(),
            queue: self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_before_the_wait_returns_even_when_loggers_must_wait() {
        use tracing_subscriber::fmt::MakeWriter;
        let sink = Sink::default();
        // A bound of 1 KiB: the four threads' 20,000 lines must wait for the writer many times.
        let queue = LogQueue::start_on(sink.clone(), 1024).expect("thread");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        let mut w = queue.make_writer();
                        writeln!(w, "thread {t} line {i}").expect("write");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("join");
        }
        queue.wait_written(Duration::from_secs(30));
        let text = String::from_utf8(sink.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4 * 5000);
        for t in 0..4 {
            let prefix = format!("thread {t} ");
            let mine: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&prefix))
                .collect();
            let expected: Vec<String> = (0..5000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(mine, expected);
        }
    }

    #[test]
    fn a_line_is_written_within_moments_without_a_wait() {
        use tracing_subscriber::fmt::MakeWriter;
        let sink = Sink::default();
        let queue = LogQueue::start_on(sink.clone(), MAX_BYTES).expect("thread");
        writeln!(queue.make_writer(), "serving").expect("write");
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.0.lock().expect("lock").is_empty() {
            assert!(Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.0.lock().expect("lock").as_slice(), b"serving\n");
    }
}
