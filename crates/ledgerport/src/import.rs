//! `ledgerport import FILE`: payment events from an NDJSON file, one event per line in the shape
//! of `POST /ingest/v1/events` ([`ledgerport_server::ingest::parse_event`]), fed to the settlement
//! engine in batches (each batch one transaction), with a progress line on stderr and a summary
//! on stdout.
//!
//! A bad line (not JSON, or not a valid event) and an event the engine rejects are counted and
//! listed, not fatal: the exit status is non-zero only when the file cannot be read or the
//! database fails. Importing a file again is safe: an event id seen before answers as it did.
//!
//! With `--replay` the events are applied on their own clock instead of now (see [`Replay`]):
//! history is booked on its own dates, and dates close and pay out as the clock passes them.

use crate::replay::LedgerDates;
use anyhow::anyhow;
use jiff::Timestamp;
use ledgerport_core::clock::ManualClock;
use ledgerport_core::engine::PaymentEvent;
use ledgerport_core::ids::{LedgerDate, LedgerId};
use ledgerport_server::ingest::parse_event;
use ledgerport_store::{EventOutcome, Store, StoreError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many rejections the summary lists one by one.
const LISTED: usize = 10;

#[derive(clap::Args)]
#[command(after_help = "\
Each line is one payment event as a JSON object, as in a POST /ingest/v1/events batch:
  {\"eventId\":\"e-1\",\"type\":\"capture\",\"msn\":\"123455\",\"pspReference\":\"3343121302\",\"reference\":\"purchase-12\",
   \"amount\":10000,\"currency\":\"NOK\",\"time\":\"2022-10-01T14:33:00.824993Z\"}
Blank lines are skipped. A line that is not JSON or not a valid event, and an event the engine
rejects, is a rejection: it is counted and listed in the summary and the import goes on.

--replay applies the events on their own clock, for migrating a merchant's history or building
a test world: the clock advances to each event's time as the file is read (never past now), events
go to the engine in batches that never span a ledger's cutoff, and each ledger's dates close and
pay out as the clock passes them, as they would have then. Give the file in time order; an event
earlier than the clock is booked like any late event (on the first open date). The replay closes
dates up to its last event; `admin close` (or a running server) closes the ones after it. The
ledgers must exist since the history's first date: `admin ledger create --opened-on DATE`.
Without --replay, events are applied now: an event of a date closed by now (every past date of a
ledger created today) is booked on the first open date, its time kept.

Exit status: 0 when the whole file was read, even if events were rejected (rejections are not a
failure); 1 when the file cannot be read or the database fails (batches already imported stay
imported, and importing the file again is safe: an event id seen before answers as it did then).")]
pub struct ImportArgs {
    /// NDJSON file of payment events, one per line.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Events per batch; each batch is one database transaction.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Apply the events on their own clock (history: dates close and pay out as they pass)
    /// instead of now; see below.
    #[arg(long)]
    pub replay: bool,
}

/// One rejected line or event.
struct Rejected {
    line: u64,
    event_id: Option<String>,
    field: String,
    reason: String,
}

/// What an import did.
#[derive(Default)]
struct Summary {
    lines: u64,
    blank: u64,
    accepted: u64,
    rejected: u64,
    by_field: BTreeMap<String, u64>,
    first: Vec<Rejected>,
    elapsed: Duration,
}

impl Summary {
    fn events(&self) -> u64 {
        self.lines - self.blank
    }

    /// Counts a rejection and keeps it if it is among the first [`LISTED`] by line (the engine's
    /// rejections of a batch arrive after the parse rejections of later lines of that batch).
    fn reject(&mut self, r: Rejected) {
        self.rejected += 1;
        *self.by_field.entry(r.field.clone()).or_default() += 1;
        let at = self.first.partition_point(|k| k.line < r.line);
        if at < LISTED {
            self.first.insert(at, r);
            self.first.truncate(LISTED);
        }
    }

    fn rate(&self) -> u64 {
        per_second(self.events(), self.elapsed)
    }

    fn text(&self, file: &Path) -> String {
        let by_field = self
            .by_field
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = format!(
            "imported {}\nlines:     {} ({} blank)\nevents:    {}\naccepted:  {}\nrejected:  {}{}\nelapsed:   {:.3} s\nevents/s:  {}\n",
            file.display(),
            self.lines,
            self.blank,
            self.events(),
            self.accepted,
            self.rejected,
            if by_field.is_empty() {
                String::new()
            } else {
                format!(" ({by_field})")
            },
            self.elapsed.as_secs_f64(),
            self.rate(),
        );
        if !self.first.is_empty() {
            let shown = if self.rejected as usize > self.first.len() {
                format!("first {} rejections", self.first.len())
            } else {
                "rejections".to_owned()
            };
            out.push_str(&format!("{shown}:\n"));
            for r in &self.first {
                // A line that is no event at all: "line 4: is not JSON (…)".
                let field = if r.field == "line" {
                    String::new()
                } else {
                    format!("{}: ", r.field)
                };
                out.push_str(&format!(
                    "  line {}: {}{field}{}\n",
                    r.line,
                    r.event_id
                        .as_deref()
                        .map(|id| format!("event {id}: "))
                        .unwrap_or_default(),
                    r.reason
                ));
            }
            out.push_str(
                "rejected events were not applied (and are not a failure of the import); an event the \
                 engine rejected answers the same rejection when posted again, so post a corrected \
                 event under a new eventId\n",
            );
        }
        out
    }

    fn json(&self, file: &Path) -> Value {
        json!({
            "file": file.display().to_string(),
            "lines": self.lines,
            "blankLines": self.blank,
            "events": self.events(),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejectedByField": self.by_field,
            "firstRejections": self.first.iter().map(|r| json!({
                "line": r.line, "eventId": r.event_id, "field": r.field, "reason": r.reason,
            })).collect::<Vec<_>>(),
            "elapsedSeconds": self.elapsed.as_secs_f64(),
            "eventsPerSecond": self.rate(),
        })
    }
}

fn per_second(n: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (n as f64 / secs).round() as u64
    } else {
        0
    }
}

/// The progress line on stderr: redrawn in place at most five times a second on a terminal;
/// elsewhere (a log file) a plain line every ten seconds.
struct Progress {
    tty: bool,
    total: u64,
    started: Instant,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            total,
            started: Instant::now(),
            last: None,
            drawn: false,
        }
    }

    /// `lines` read of the file, `events` done (accepted or rejected).
    fn tick(&mut self, lines: u64, events: u64) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < every)
            || (self.last.is_none() && now.duration_since(self.started) < every)
        {
            return;
        }
        self.last = Some(now);
        self.draw(lines, events);
    }

    fn draw(&mut self, lines: u64, events: u64) {
        let pct = (lines * 100).checked_div(self.total).unwrap_or(100);
        let rate = per_second(events, self.started.elapsed());
        let mut err = std::io::stderr().lock();
        if self.tty {
            let filled = (pct / 5) as usize;
            let _ = write!(
                err,
                "\r[{}{}] {pct:>3}%  {lines}/{} lines  {events} events done  {rate} events/s\x1b[K",
                "#".repeat(filled),
                ".".repeat(20 - filled.min(20)),
                self.total
            );
        } else {
            let _ = writeln!(
                err,
                "import: {lines}/{} lines ({pct}%), {events} events, {rate} events/s",
                self.total
            );
        }
        let _ = err.flush();
        self.drawn = true;
    }

    /// Ends the progress line so the summary starts on a fresh one.
    fn finish(&mut self, lines: u64, events: u64) {
        if self.drawn && self.tty {
            self.draw(lines, events);
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Counts the lines of a file (a last line without a newline counts too).
fn count_lines(path: &Path) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut n, mut last) = (0u64, b'\n');
    loop {
        let read = f.read(&mut buf)?;
        if read == 0 {
            break;
        }
        n += buf[..read].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[read - 1];
    }
    Ok(n + u64::from(last != b'\n'))
}

/// Events read but not yet ingested, with the lines they came from.
struct Pending {
    lines: Vec<u64>,
    events: Vec<PaymentEvent>,
}

/// Replaying on the events' own clock: where the clock stands, and the ledgers to close as it
/// moves.
pub struct Replay {
    clock: Arc<ManualClock>,
    dates: LedgerDates,
    /// Real time when the import began: the replayed clock never passes it, so an event from
    /// the future is still refused as one.
    limit: Timestamp,
    /// The latest event time read so far (at most `limit`).
    at: Option<Timestamp>,
    /// The clock's ledger dates at `at`.
    dates_at: Vec<LedgerDate>,
    /// The clock when the pending batch's first and last events were read.
    batch_start: Option<Timestamp>,
    batch_end: Option<Timestamp>,
    /// Ledgers that accepted events of the file: closed as the clock passes their dates.
    ledgers: BTreeSet<LedgerId>,
}

impl Replay {
    /// A replay on `clock` (the store's clock) over the store's ledgers.
    pub async fn new(store: &dyn Store, clock: Arc<ManualClock>) -> Result<Self, StoreError> {
        let ledgers: Vec<_> = store
            .ledgers()
            .await?
            .into_iter()
            .map(|v| v.ledger)
            .collect();
        Ok(Replay {
            clock,
            dates: LedgerDates::new(&ledgers),
            limit: Timestamp::now(),
            at: None,
            dates_at: Vec::new(),
            batch_start: None,
            batch_end: None,
            ledgers: BTreeSet::new(),
        })
    }

    /// Moves the clock to an event read at `time` (never back, never past the limit); true when
    /// that crosses a ledger's cutoff, so the pending batch must go to the engine first.
    fn advance(&mut self, time: Timestamp) -> bool {
        let to = self.at.map_or(time, |at| at.max(time)).min(self.limit);
        if self.at == Some(to) {
            return false;
        }
        let dates = self.dates.at(to);
        let crossed = self.at.is_some() && dates != self.dates_at;
        self.at = Some(to);
        self.dates_at = dates;
        crossed
    }

    /// Closes the file's ledgers' periods passed by `at`, with the clock there.
    async fn close(&self, store: &dyn Store, at: Timestamp) -> Result<(), StoreError> {
        self.clock.set(at);
        for l in &self.ledgers {
            store.close_due(l, at).await?;
        }
        Ok(())
    }
}

async fn flush(
    store: &dyn Store,
    p: &mut Pending,
    s: &mut Summary,
    replay: &mut Option<Replay>,
) -> Result<(), StoreError> {
    if p.events.is_empty() {
        return Ok(());
    }
    let events = std::mem::take(&mut p.events);
    let lines = std::mem::take(&mut p.lines);
    // Replaying, a batch lies on one date of every ledger: periods passed by its first event
    // close before it, and it is applied with the clock at its last event.
    let now = match replay.as_mut() {
        None => Timestamp::now(),
        Some(r) => {
            let end = r.batch_end.take().unwrap_or(r.limit);
            let start = r.batch_start.take().unwrap_or(end);
            r.close(store, start).await?;
            r.clock.set(end);
            end
        }
    };
    let outcomes = store.ingest_events(events, now).await?;
    if outcomes.len() != lines.len() {
        return Err(StoreError::Corrupt(format!(
            "the store answered {} outcomes for {} events",
            outcomes.len(),
            lines.len()
        )));
    }
    for (line, outcome) in lines.into_iter().zip(outcomes) {
        match outcome {
            EventOutcome::Accepted { ledger_id, .. } => {
                s.accepted += 1;
                if let Some(r) = replay.as_mut() {
                    r.ledgers.insert(ledger_id);
                }
            }
            EventOutcome::Rejected {
                event_id,
                rejection,
            } => s.reject(Rejected {
                line,
                event_id: Some(event_id),
                field: rejection.field.to_owned(),
                reason: rejection.reason,
            }),
        }
    }
    Ok(())
}

/// Imports `args.file`; `replay` applies it on the events' own clock (`--replay`).
pub async fn run(
    store: &dyn Store,
    args: ImportArgs,
    mut replay: Option<Replay>,
) -> anyhow::Result<()> {
    let file = &args.file;
    let cannot_read = |e: std::io::Error| anyhow!("cannot read {}: {e}", file.display());
    let total = count_lines(file).map_err(cannot_read)?;
    let mut reader = BufReader::with_capacity(1 << 20, File::open(file).map_err(cannot_read)?);
    let batch = args.batch as usize;
    let started = Instant::now();
    let mut progress = Progress::new(total);
    let mut s = Summary::default();
    let mut pending = Pending {
        lines: Vec::with_capacity(batch),
        events: Vec::with_capacity(batch),
    };
    let mut buf = Vec::new();
    let db_failed = |s: &Summary, e: StoreError| {
        anyhow!(
            "database error after line {} ({} events accepted before it; importing the file again is \
             safe): {e}",
            s.lines,
            s.accepted
        )
    };
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(cannot_read)? == 0 {
            break;
        }
        s.lines += 1;
        let line = s.lines;
        let reject = |field: &str, reason: String| Rejected {
            line,
            event_id: None,
            field: field.to_owned(),
            reason,
        };
        match std::str::from_utf8(&buf) {
            Err(_) => s.reject(reject("line", "is not UTF-8 text".into())),
            Ok(text) if text.trim().is_empty() => s.blank += 1,
            Ok(text) => match serde_json::from_str::<Value>(text) {
                Err(e) => s.reject(reject("line", format!("is not JSON ({e})"))),
                Ok(v) => match parse_event(&v) {
                    Ok(ev) => {
                        if let Some(r) = replay.as_mut()
                            && r.advance(ev.time)
                        {
                            flush(store, &mut pending, &mut s, &mut replay)
                                .await
                                .map_err(|e| db_failed(&s, e))?;
                        }
                        if let Some(r) = replay.as_mut() {
                            r.batch_start = r.batch_start.or(r.at);
                            r.batch_end = r.at;
                        }
                        pending.lines.push(line);
                        pending.events.push(ev);
                    }
                    Err((event_id, r)) => s.reject(Rejected {
                        line,
                        event_id,
                        field: r.field.to_owned(),
                        reason: r.reason,
                    }),
                },
            },
        }
        if pending.events.len() >= batch {
            flush(store, &mut pending, &mut s, &mut replay)
                .await
                .map_err(|e| db_failed(&s, e))?;
        }
        progress.tick(s.lines, s.accepted + s.rejected);
    }
    flush(store, &mut pending, &mut s, &mut replay)
        .await
        .map_err(|e| db_failed(&s, e))?;
    // The periods the last events' time has passed close too, as they would have then.
    if let Some(r) = &replay
        && let Some(at) = r.at
    {
        r.close(store, at).await.map_err(|e| db_failed(&s, e))?;
    }
    s.elapsed = started.elapsed();
    progress.finish(s.lines, s.accepted + s.rejected);

    let mut out = if args.json {
        serde_json::to_string_pretty(&s.json(file))? + "\n"
    } else {
        s.text(file)
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow!("writing the summary: {e}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(content: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "ledgerport-count-{}-{}",
            std::process::id(),
            content.len()
        ));
        std::fs::write(&p, content).expect("write");
        p
    }

    #[test]
    fn lines_are_counted_with_or_without_a_final_newline() {
        for (content, n) in [
            (&b""[..], 0),
            (b"a", 1),
            (b"a\n", 1),
            (b"a\nb", 2),
            (b"a\n\nb\n", 3),
        ] {
            let p = temp(content);
            assert_eq!(count_lines(&p).expect("count"), n, "{content:?}");
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn the_summary_counts_rejections_per_field_and_lists_the_first_ten() {
        let mut s = Summary {
            lines: 14,
            blank: 1,
            accepted: 1,
            elapsed: Duration::from_millis(500),
            ..Summary::default()
        };
        // Offered out of order, as a batch's engine rejections come after its parse rejections.
        for i in (1..12).chain([0]) {
            s.reject(Rejected {
                line: i + 2,
                event_id: (i > 0).then(|| format!("e-{i}")),
                field: if i == 0 { "line" } else { "amount" }.into(),
                reason: "is wrong".into(),
            });
        }
        let text = s.text(Path::new("x.ndjson"));
        assert!(text.starts_with(
            "imported x.ndjson\nlines:     14 (1 blank)\nevents:    13\naccepted:  1\nrejected:  12 (amount 11, line 1)\n\
             elapsed:   0.500 s\nevents/s:  26\nfirst 10 rejections:\n  line 2: is wrong\n  line 3: event e-1: amount: is wrong\n"
        ), "{text}");
        assert!(text.contains("  line 11: event e-9: amount: is wrong\n"));
        assert!(!text.contains("line 12:"));
        assert_eq!(
            s.json(Path::new("x.ndjson"))["rejectedByField"],
            json!({"amount": 11, "line": 1})
        );
    }
}
