//! The mail outbox: what waits to be sent (or was), and sending the waiting mails again now.

use super::{Output, fields, short_time, store_err, table, time};
use anyhow::anyhow;
use clap::Subcommand;
use ledgerport_core::world::RowId;
use ledgerport_store::{OutboxMail, Store};
use serde_json::{Value, json};

/// A time as text output shows it.
fn shown(t: jiff::Timestamp) -> String {
    short_time(&time(t))
}

#[derive(Subcommand)]
pub enum OutboxCmd {
    /// The mails not sent yet (waiting or failed), soonest due first, with the queue's summary;
    /// `--all` lists sent ones too, newest first. A failed mail was refused for good by the
    /// SMTP server (5xx) or kept failing past `mail.give_up_after_hours`; it is not sent until
    /// retried.
    List {
        /// Every mail, sent or not, newest first.
        #[arg(long)]
        all: bool,
        /// At most this many mails.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Make the waiting and failed mails (or one) due now, e.g. after the SMTP server is fixed:
    /// a running server sends them at its next pass instead of after their backoff; a failed
    /// mail is tried again for another give-up period (`mail.give_up_after_hours`).
    Retry {
        /// Only this mail (its id in `outbox list`).
        #[arg(long, value_name = "ID")]
        id: Option<RowId>,
    },
}

fn mail_json(m: &OutboxMail) -> Value {
    json!({
        "id": m.id,
        "recipient": m.recipient,
        "subject": m.subject,
        "createdAt": time(m.created_at),
        "attempts": m.attempts,
        "nextAttemptAt": time(m.next_attempt_at),
        "lastAttemptAt": m.last_attempt_at.map(time),
        "lastError": m.last_error,
        "sentAt": m.sent_at.map(time),
        "failedAt": m.failed_at.map(time),
    })
}

pub(super) async fn outbox(store: &dyn Store, c: OutboxCmd) -> anyhow::Result<Output> {
    match c {
        OutboxCmd::List { all, limit } => {
            if !(1..=100_000).contains(&limit) {
                return Err(anyhow!("--limit: must be 1 to 100000"));
            }
            let summary = store.outbox_summary().await.map_err(store_err)?;
            let mails = store.outbox(all, limit).await.map_err(store_err)?;
            let rows: Vec<Vec<String>> = mails
                .iter()
                .map(|m| {
                    vec![
                        m.id.to_string(),
                        m.recipient.clone(),
                        m.subject.clone(),
                        shown(m.created_at),
                        m.attempts.to_string(),
                        match (m.sent_at, m.failed_at) {
                            (Some(t), _) => format!("sent {}", shown(t)),
                            (None, Some(t)) => format!("failed {}", shown(t)),
                            (None, None) => format!("next {}", shown(m.next_attempt_at)),
                        },
                        m.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            let text = format!(
                "{}\n{}",
                fields(&[
                    ("pending", summary.pending.to_string()),
                    ("failed", summary.failed.to_string()),
                    (
                        "oldest",
                        summary.oldest.map(shown).unwrap_or_else(|| "-".into())
                    ),
                    (
                        "last error",
                        summary.last_error.clone().unwrap_or_else(|| "-".into())
                    ),
                ]),
                table(
                    &[
                        "ID",
                        "RECIPIENT",
                        "SUBJECT",
                        "CREATED",
                        "ATTEMPTS",
                        "STATE",
                        "LAST ERROR"
                    ],
                    &rows
                )
            );
            let json = json!({
                "pending": summary.pending,
                "failed": summary.failed,
                "oldest": summary.oldest.map(time),
                "lastError": summary.last_error,
                "mails": mails.iter().map(mail_json).collect::<Vec<_>>(),
            });
            Ok(Output::new(text, json))
        }
        OutboxCmd::Retry { id } => {
            let n = store
                .retry_mails(id, jiff::Timestamp::now())
                .await
                .map_err(store_err)?;
            if let Some(id) = id
                && n == 0
            {
                return Err(anyhow!("--id: no mail {id} waiting to be sent or failed"));
            }
            Ok(Output::new(
                format!("{n} mail(s) due now"),
                json!({ "due": n }),
            ))
        }
    }
}
