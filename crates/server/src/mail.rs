//! Delivering the mail outbox over SMTP ([`ledgerport_store::OutboxStore`]).
//!
//! Changes write their mails into the outbox in their own transaction; this sender takes them
//! out. Every [`SEND_INTERVAL`] it claims due mails one at a time, hands each to the SMTP
//! server and marks it sent, or records the failure and tries again after a backoff that doubles
//! from a minute up to an hour ([`backoff`]). It gives up on a mail ([`Failure`]) when the
//! server refuses it for good (a 5xx answer about the mail) or after failing for longer than
//! the configured give-up time (`mail.give_up_after_hours`, 72 by default): the mail is marked
//! failed, the operator sees it and may send it again (`ledgerport admin outbox retry`). A claim lasts [`CLAIM`], far longer than one
//! delivery may take ([`SMTP_TIMEOUT`] per step), so server processes sharing a database never
//! send one mail at the same time, and a mail claimed by a process that died is picked up by
//! another once its claim lapses.
//!
//! Without SMTP configured there is no sender: mails wait in the outbox, where the operator
//! console and `ledgerport admin outbox list` show them.

use crate::AppState;
use jiff::{SignedDuration, Timestamp};
use ledgerport_core::clock::Clock;
use ledgerport_store::{OutboxMail, Store, StoreError};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::fmt;
use std::time::Duration;

/// How often the sender looks for due mails.
pub const SEND_INTERVAL: Duration = Duration::from_secs(5);
/// How long a claimed mail stays with its sender before another may take it.
pub const CLAIM: SignedDuration = SignedDuration::from_secs(10 * 60);
/// The longest one SMTP step (connecting, a command, the message) may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// The most mails one pass sends, so a long queue does not starve the next tick's checks.
const PASS_LIMIT: usize = 100;
/// The first retry's wait, doubled on each further failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: SignedDuration = SignedDuration::from_secs(60);
const MAX_BACKOFF: SignedDuration = SignedDuration::from_secs(3600);
/// How long a mail that fails for a passing reason is tried before the sender gives up, unless
/// configured otherwise: three days, long enough for an SMTP outage over a weekend.
pub const DEFAULT_GIVE_UP_AFTER_HOURS: u32 = 72;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTls {
    /// Plain SMTP (a relay on the same machine or network only).
    None,
    /// Plain connection upgraded with STARTTLS, which the server must offer (usually port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// Where and as whom mails are sent.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: MailTls,
    /// User name and password, if the server wants them.
    pub credentials: Option<(String, String)>,
    /// The `From` of every mail, e.g. `Ledgerport <no-reply@example.com>`.
    pub from: String,
    /// How long a mail failing for a passing reason is tried before it is marked failed.
    pub give_up_after: Duration,
}

/// Without the password (the never-log list, OPERATIONS.md).
impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field(
                "username",
                &self.credentials.as_ref().map(|(user, _)| user.as_str()),
            )
            .field("from", &self.from)
            .field("give_up_after", &self.give_up_after)
            .finish()
    }
}

/// The wait before the next attempt of a mail whose `attempts`th attempt failed: a minute after
/// the first, doubling, never more than an hour.
pub fn backoff(attempts: u32) -> SignedDuration {
    let doublings = attempts.saturating_sub(1).min(16);
    let wait = FIRST_BACKOFF
        .checked_mul(1 << doublings)
        .unwrap_or(MAX_BACKOFF);
    wait.min(MAX_BACKOFF)
}

/// Why a mail was not sent, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, as the operator sees it.
    pub error: String,
    /// The SMTP server refused this mail for good (a 5xx answer other than about
    /// authentication, which is the configuration's fault and not the mail's), or the mail
    /// cannot be written at all: it is given up on at once.
    pub permanent: bool,
}

impl Failure {
    fn permanent(error: String) -> Failure {
        Failure {
            error,
            permanent: true,
        }
    }

    /// Classifies an SMTP error: a 5xx answer is permanent, except 530 to 539 (authentication
    /// required or refused: every mail would fail alike until the configuration is fixed, so
    /// they are retried, and given up only after the give-up time). Connection failures,
    /// timeouts and 4xx answers are passing.
    fn of_smtp(e: &lettre::transport::smtp::Error) -> Failure {
        let authentication = e.status().is_some_and(|c| c.to_string().starts_with("53"));
        Failure {
            error: e.to_string(),
            permanent: e.is_permanent() && !authentication,
        }
    }
}

/// Sends mails through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    give_up_after: SignedDuration,
}

impl Mailer {
    /// A mailer for `config`; a `from` that is not a mailbox or a host TLS cannot name is an
    /// error naming the key.
    pub fn new(config: &SmtpConfig) -> Result<Mailer, String> {
        let from: Mailbox = config.from.parse().map_err(|e| {
            format!(
                "mail.from: expected a mailbox such as `Ledgerport <no-reply@example.com>`, got {:?}: {e}",
                config.from
            )
        })?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned())
                .map_err(|e| format!("mail.smtp_host: cannot set up TLS for {host:?}: {e}"))
        };
        let host = config.host.as_str();
        // `builder_dangerous` only means "no TLS chosen yet"; it is set here for each mode.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port)
            .timeout(Some(SMTP_TIMEOUT));
        builder = match config.tls {
            MailTls::None => builder.tls(Tls::None),
            MailTls::StartTls => builder.tls(Tls::Required(tls(host)?)),
            MailTls::Tls => builder.tls(Tls::Wrapper(tls(host)?)),
        };
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let give_up_after = SignedDuration::try_from(config.give_up_after)
            .map_err(|e| format!("mail.give_up_after_hours: {e}"))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
            give_up_after,
        })
    }

    /// Hands one mail to the SMTP server; `Ok` once the server has accepted it.
    pub async fn send(&self, mail: &OutboxMail) -> Result<(), Failure> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| Failure::permanent(format!("recipient {:?}: {e}", mail.recipient)))?;
        // The same Message-ID on every attempt of one outbox row, so a mail sent twice (see
        // `deliver_due`) can be recognised as one by the receiving side.
        let domain = self.from.email.domain();
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!(
                "<outbox-{}.{}@{domain}>",
                mail.id,
                mail.created_at.as_millisecond()
            )))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| Failure::permanent(format!("building the message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| Failure::of_smtp(&e))
    }

    /// Whether a mail that failed for a passing reason at `now` has been tried long enough
    /// ([`SmtpConfig::give_up_after`], counted from [`OutboxMail::trying_since`]).
    pub fn tried_long_enough(&self, mail: &OutboxMail, now: Timestamp) -> bool {
        mail.trying_since
            .checked_add(self.give_up_after)
            .is_ok_and(|end| now >= end)
    }
}

/// What one pass of the sender did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivered {
    pub sent: usize,
    /// Failed attempts to be retried after their backoff.
    pub failed: usize,
    /// Mails given up on: refused for good, or failing for longer than the give-up time.
    pub gave_up: usize,
}

/// Sends the mails due now, one claim at a time, as `holder`; stops when none is due (or after
/// [`PASS_LIMIT`]). A failed mail waits [`backoff`] before its next attempt; one refused for
/// good, or failing past the give-up time, is marked failed.
pub async fn deliver_due(
    store: &dyn Store,
    clock: &dyn Clock,
    mailer: &Mailer,
    holder: &str,
) -> Result<Delivered, StoreError> {
    let mut done = Delivered::default();
    while done.sent + done.failed + done.gave_up < PASS_LIMIT {
        let now = clock.now();
        let until = now.checked_add(CLAIM).unwrap_or(Timestamp::MAX);
        let Some(mail) = store.claim_mails(holder, now, until, 1).await?.pop() else {
            break;
        };
        match mailer.send(&mail).await {
            Ok(()) => {
                // The SMTP server has taken the mail: mark it at once, so no sender tries it
                // again. Between the server's acceptance and this write the outbox still says
                // "not sent": if this process dies (or the database is unreachable) right
                // there, the claim lapses and the mail is sent a second time. That window is
                // the one place delivery is at least once rather than exactly once; the
                // Message-ID stays the same, so the receiving side can tell.
                store.mark_mail_sent(mail.id, holder, clock.now()).await?;
                done.sent += 1;
            }
            Err(Failure { error, permanent }) => {
                let now = clock.now();
                if permanent || mailer.tried_long_enough(&mail, now) {
                    let why = if permanent {
                        format!("refused for good: {error}")
                    } else {
                        format!(
                            "gave up after {} h of failures: {error}",
                            mailer.give_up_after.as_secs() / 3600
                        )
                    };
                    tracing::error!(
                        mail_id = mail.id,
                        attempts = mail.attempts,
                        error = %why,
                        "gave up sending a mail; `ledgerport admin outbox retry` sends it again"
                    );
                    store.give_up_mail(mail.id, holder, &why, now).await?;
                    done.gave_up += 1;
                    continue;
                }
                let retry_at = now
                    .checked_add(backoff(mail.attempts))
                    .unwrap_or(Timestamp::MAX);
                tracing::warn!(
                    mail_id = mail.id,
                    attempts = mail.attempts,
                    retry_at = %retry_at,
                    error = %error,
                    "sending a mail failed; will retry"
                );
                store
                    .mark_mail_failed(mail.id, holder, &error, retry_at)
                    .await?;
                done.failed += 1;
            }
        }
    }
    Ok(done)
}

/// Runs [`deliver_due`] every [`SEND_INTERVAL`] until aborted. Stopping it between two awaits
/// loses nothing: a claimed mail not marked is claimed again once its claim lapses.
pub(crate) async fn sender_loop(state: AppState, mailer: Mailer) {
    let holder = uuid::Uuid::new_v4().to_string();
    let mut tick = tokio::time::interval(SEND_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match deliver_due(&*state.store, &*state.clock, &mailer, &holder).await {
            Ok(Delivered {
                sent: 0,
                failed: 0,
                gave_up: 0,
            }) => {}
            Ok(d) => tracing::info!(
                sent = d.sent,
                failed = d.failed,
                gave_up = d.gave_up,
                "mail outbox pass"
            ),
            Err(e) => tracing::error!(error = %e, "sending mails failed; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_a_minute_to_at_most_an_hour() {
        let minutes: Vec<i64> = (0..=10).map(|n| backoff(n).as_secs() / 60).collect();
        assert_eq!(minutes, vec![1, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn the_password_is_not_in_the_debug_form() {
        let c = SmtpConfig {
            host: "smtp.example.com".into(),
            port: 587,
            tls: MailTls::StartTls,
            credentials: Some(("lp".into(), "hunter2-secret".into())),
            from: "no-reply@example.com".into(),
            give_up_after: Duration::from_secs(3600),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("smtp.example.com"), "{shown}");
    }

    #[test]
    fn a_from_that_is_not_a_mailbox_is_refused_naming_the_key() {
        let c = SmtpConfig {
            host: "smtp.example.com".into(),
            port: 587,
            tls: MailTls::None,
            credentials: None,
            from: "not an address".into(),
            give_up_after: Duration::from_secs(3600),
        };
        let e = Mailer::new(&c).err().expect("refused");
        assert!(e.starts_with("mail.from:"), "{e}");
    }
}
