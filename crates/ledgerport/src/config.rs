//! The binary's one typed configuration.
//!
//! Layers, later wins: built-in defaults -> a TOML file (`--config FILE` / `LEDGERPORT_CONFIG`)
//! -> environment variables (`LEDGERPORT_*`) -> command-line flags. `figment` merges the layers
//! and extracts [`Config`]; each layer is also extracted and checked on its own (over the
//! defaults), so a bad value is refused even when a later layer overrides it, and every message
//! names the key (`limits.token_burst`), where it came from (file, env var, flag) and what is
//! expected.
//!
//! A setting is: its field in [`Config`] (type, doc comment), its default in `Default`, its row
//! in [`KEYS`] (environment variable, flag, what it accepts, its check) and its clap flag, whose
//! `serde(rename)` is the key's name. Nothing else lists keys: parsing, layering, checking,
//! provenance and `config print` all follow [`KEYS`].
//!
//! Secrets can be read from files: the database URL (it may carry a password) and the
//! signing keys' encryption keys ([`SECRET_FILES`]); naming a value and its file in one layer is
//! an error. `config print` redacts the database password and never prints an encryption key.

use anyhow::{anyhow, bail};
use figment::Figment;
use figment::error::{Actual, Kind};
use figment::providers::Serialized;
use figment::value::Value;
use ledgerport_server::mail::{MailTls, SmtpConfig};
use ledgerport_server::tokens::{KeyEncryptionKey, SigningKeyProtection};
use ledgerport_server::webhooks::{Network, WebhookConfig};
use ledgerport_server::{LimitsConfig, ServerConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One configuration key: its dotted name, environment variable, flag, what it accepts and the
/// check of its value beyond its type.
pub struct Key {
    /// `section.key`, or `key` at the top level.
    pub name: &'static str,
    pub env: &'static str,
    pub flag: &'static str,
    /// What a valid value looks like, for error messages.
    pub expected: &'static str,
    check: Check,
}

/// What a value must be beyond its type (the type is [`Config`]'s field's).
#[derive(Clone, Copy)]
enum Check {
    Any,
    NonEmpty,
    /// A whole number in this range.
    Range(i128, i128),
    /// A finite number greater than 0.
    Positive,
    LogFilter,
    /// A socket address, or `off` (or empty) for none.
    OptionalAddr,
    /// 32 bytes in base64.
    EncryptionKey,
}

const SECS: &str = "a whole number of seconds greater than 0";
const U32_MAX: i128 = u32::MAX as i128;
const U64_MAX: i128 = u64::MAX as i128;
const BASE64_KEY: &str = "32 bytes in base64 (make one with `head -c 32 /dev/urandom | base64`)";

/// Every key, in the order `config print` shows them: name, environment variable, flag, check
/// beyond the type, and what a valid value looks like (for messages).
#[rustfmt::skip]
pub const KEYS: &[Key] = &[
    key("database_url", "LEDGERPORT_DATABASE_URL", "--database-url", Check::NonEmpty,
        "a database URL such as `sqlite://ledgerport.db`, `sqlite::memory:` or `postgres://user@host/db`"),
    key("database_url_file", "LEDGERPORT_DATABASE_URL_FILE", "--database-url-file", Check::Any,
        "the path of a readable file holding the database URL"),
    key("signing_key_encryption_key", "LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", "--signing-key-encryption-key", Check::EncryptionKey,
        BASE64_KEY),
    key("signing_key_encryption_key_file", "LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_FILE", "--signing-key-encryption-key-file", Check::Any,
        "the path of a readable file holding the signing key encryption key"),
    key("signing_key_encryption_key_previous", "LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_PREVIOUS", "--signing-key-encryption-key-previous", Check::EncryptionKey,
        BASE64_KEY),
    key("signing_key_encryption_key_previous_file", "LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_PREVIOUS_FILE", "--signing-key-encryption-key-previous-file", Check::Any,
        "the path of a readable file holding the previous signing key encryption key"),
    key("insecure_plaintext_signing_keys", "LEDGERPORT_INSECURE_PLAINTEXT_SIGNING_KEYS", "--insecure-plaintext-signing-keys", Check::Any,
        "`true` or `false`"),
    key("log.level", "LEDGERPORT_LOG", "--log", Check::LogFilter,
        "a log filter such as `info` or `warn,ledgerport_server=debug`"),
    key("log.format", "LEDGERPORT_LOG_FORMAT", "--log-format", Check::Any,
        "`pretty` or `json`"),
    key("server.listen", "LEDGERPORT_LISTEN", "--listen", Check::Any,
        "a socket address such as `127.0.0.1:8080` or `[::]:8080`"),
    key("server.metrics_listen", "LEDGERPORT_METRICS_LISTEN", "--metrics-listen", Check::OptionalAddr,
        "a socket address such as `127.0.0.1:9464`, or `off`"),
    key("server.issuer", "LEDGERPORT_ISSUER", "--issuer", Check::NonEmpty,
        "a non-empty string"),
    key("server.audience", "LEDGERPORT_AUDIENCE", "--audience", Check::NonEmpty,
        "a non-empty string"),
    key("server.standard_token_lifetime_secs", "LEDGERPORT_STANDARD_TOKEN_LIFETIME", "--standard-token-lifetime", Check::Range(1, U64_MAX),
        SECS),
    key("server.miami_token_lifetime_secs", "LEDGERPORT_MIAMI_TOKEN_LIFETIME", "--miami-token-lifetime", Check::Range(1, U64_MAX),
        SECS),
    key("server.request_timeout_secs", "LEDGERPORT_REQUEST_TIMEOUT", "--request-timeout", Check::Range(1, U64_MAX),
        SECS),
    key("server.close_interval_secs", "LEDGERPORT_CLOSE_INTERVAL", "--close-interval", Check::Any,
        "a whole number of seconds (0 turns the closing task off)"),
    key("server.ledger_list_page_size", "LEDGERPORT_LEDGER_LIST_PAGE_SIZE", "--ledger-list-page-size", Check::Range(1, 10_000),
        "a whole number from 1 to 10000"),
    key("server.access_log_retention_days", "LEDGERPORT_ACCESS_LOG_RETENTION_DAYS", "--access-log-retention-days", Check::Range(0, U32_MAX),
        "a whole number of days from 0 to 4294967295 (0 keeps the access log forever)"),
    key("limits.enabled", "LEDGERPORT_LIMITS_ENABLED", "--limits-enabled", Check::Any,
        "`true` or `false`"),
    key("limits.token_per_second", "LEDGERPORT_LIMITS_TOKEN_PER_SECOND", "--limits-token-per-second", Check::Positive,
        "a number of requests per second greater than 0"),
    key("limits.token_burst", "LEDGERPORT_LIMITS_TOKEN_BURST", "--limits-token-burst", Check::Range(1, U32_MAX),
        "a whole number of requests from 1 to 4294967295"),
    key("limits.report_per_second", "LEDGERPORT_LIMITS_REPORT_PER_SECOND", "--limits-report-per-second", Check::Positive,
        "a number of requests per second greater than 0"),
    key("limits.report_burst", "LEDGERPORT_LIMITS_REPORT_BURST", "--limits-report-burst", Check::Range(1, U32_MAX),
        "a whole number of requests from 1 to 4294967295"),
    key("limits.failed_token_slowdown_after", "LEDGERPORT_LIMITS_FAILED_TOKEN_SLOWDOWN_AFTER", "--limits-failed-token-slowdown-after", Check::Any,
        "a whole number of failed requests from 0 to 4294967295"),
    key("mail.smtp_host", "LEDGERPORT_MAIL_SMTP_HOST", "--mail-smtp-host", Check::Any,
        "the SMTP server's host name, or empty for none"),
    key("mail.smtp_port", "LEDGERPORT_MAIL_SMTP_PORT", "--mail-smtp-port", Check::Range(1, 65_535),
        "a port number from 1 to 65535"),
    key("mail.tls", "LEDGERPORT_MAIL_TLS", "--mail-tls", Check::Any,
        "`none`, `starttls` or `tls`"),
    key("mail.username", "LEDGERPORT_MAIL_USERNAME", "--mail-username", Check::Any,
        "the SMTP user name, or empty for none"),
    key("mail.password", "LEDGERPORT_MAIL_PASSWORD", "--mail-password", Check::Any,
        "the SMTP password"),
    key("mail.password_file", "LEDGERPORT_MAIL_PASSWORD_FILE", "--mail-password-file", Check::Any,
        "the path of a readable file holding the SMTP password"),
    key("mail.from", "LEDGERPORT_MAIL_FROM", "--mail-from", Check::Any,
        "a mailbox such as `Ledgerport <no-reply@example.com>`"),
    key("mail.give_up_after_hours", "LEDGERPORT_MAIL_GIVE_UP_AFTER_HOURS", "--mail-give-up-after-hours", Check::Range(1, U32_MAX),
        "a whole number of hours from 1 to 4294967295"),
    key("webhooks.deliver", "LEDGERPORT_WEBHOOKS_DELIVER", "--webhooks-deliver", Check::Any,
        "`true` or `false`"),
    key("webhooks.allowed_networks", "LEDGERPORT_WEBHOOKS_ALLOWED_NETWORKS", "--webhooks-allowed-networks", Check::Any,
        "addresses or CIDR networks separated by commas, e.g. `127.0.0.1/32, 10.0.0.0/8`, or empty"),
    key("webhooks.timeout_secs", "LEDGERPORT_WEBHOOKS_TIMEOUT", "--webhooks-timeout", Check::Range(1, 300),
        "a whole number of seconds from 1 to 300"),
    key("webhooks.poll_interval_ms", "LEDGERPORT_WEBHOOKS_POLL_INTERVAL_MS", "--webhooks-poll-interval-ms", Check::Range(10, 60_000),
        "a whole number of milliseconds from 10 to 60000"),
    key("webhooks.first_retry_secs", "LEDGERPORT_WEBHOOKS_FIRST_RETRY", "--webhooks-first-retry", Check::Range(1, 3600),
        "a whole number of seconds from 1 to 3600"),
    key("webhooks.extra_ca_file", "LEDGERPORT_WEBHOOKS_EXTRA_CA_FILE", "--webhooks-extra-ca-file", Check::Any,
        "the path of a readable PEM file of CA certificates, or empty for none"),
];

const fn key(
    name: &'static str,
    env: &'static str,
    flag: &'static str,
    check: Check,
    expected: &'static str,
) -> Key {
    Key {
        name,
        env,
        flag,
        expected,
        check,
    }
}

/// Secrets that may be read from a file instead: (key, key naming its file, what it holds).
pub const SECRET_FILES: [(&str, &str, &str); 4] = [
    ("database_url", "database_url_file", "the database URL"),
    (
        "signing_key_encryption_key",
        "signing_key_encryption_key_file",
        "the signing key encryption key",
    ),
    (
        "signing_key_encryption_key_previous",
        "signing_key_encryption_key_previous_file",
        "the previous signing key encryption key",
    ),
    ("mail.password", "mail.password_file", "the SMTP password"),
];

/// Keys never printed, not even redacted (`config print` says only where they were set).
const NEVER_PRINTED: [&str; 3] = [
    "signing_key_encryption_key",
    "signing_key_encryption_key_previous",
    "mail.password",
];

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "LEDGERPORT_CONFIG";

fn key_named(name: &str) -> &'static Key {
    KEYS.iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("`{name}` is not in KEYS"))
}

fn is_file_key(name: &str) -> bool {
    SECRET_FILES.iter().any(|(_, file, _)| *file == name)
}

// ---------------------------------------------------------------------------------------------
// The effective configuration.

/// The effective configuration of the binary; also the schema of the TOML file.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Database to use; may carry a password.
    pub database_url: String,
    /// File holding the database URL; read into `database_url` when the layers are resolved.
    #[serde(default, skip_serializing)]
    pub database_url_file: Option<PathBuf>,
    /// Base64 of the 32-byte key that encrypts the token signing keys in the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_encryption_key: Option<String>,
    #[serde(default, skip_serializing)]
    pub signing_key_encryption_key_file: Option<PathBuf>,
    /// The key-encryption key being replaced: signing keys it encrypted are still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_encryption_key_previous: Option<String>,
    #[serde(default, skip_serializing)]
    pub signing_key_encryption_key_previous_file: Option<PathBuf>,
    /// Store signing keys in clear when no encryption key is set (throwaway databases only).
    pub insecure_plaintext_signing_keys: bool,
    pub log: LogSection,
    pub server: ServerSection,
    pub limits: LimitsSection,
    pub mail: MailSection,
    pub webhooks: WebhooksSection,
}

/// Delivering webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksSection {
    /// Whether this process delivers webhooks (events are written either way).
    pub deliver: bool,
    /// Loopback, private or link-local networks endpoints may point into, comma separated.
    pub allowed_networks: String,
    pub timeout_secs: u64,
    pub poll_interval_ms: u64,
    pub first_retry_secs: u64,
    /// PEM file of CA certificates trusted for https:// endpoints besides the system's; empty:
    /// none.
    pub extra_ca_file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `tracing` `EnvFilter` directive.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The public listener: the APIs and the portal.
    pub listen: SocketAddr,
    /// The metrics listener (`GET /metrics`): a socket address, or `off` (or empty) for none.
    pub metrics_listen: String,
    pub issuer: String,
    pub audience: String,
    pub standard_token_lifetime_secs: u64,
    pub miami_token_lifetime_secs: u64,
    pub request_timeout_secs: u64,
    /// 0 turns the closing task off.
    pub close_interval_secs: u64,
    pub ledger_list_page_size: u32,
    /// Days the access log keeps a request; 0 keeps them forever.
    pub access_log_retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub enabled: bool,
    pub token_per_second: f64,
    pub token_burst: u32,
    pub report_per_second: f64,
    pub report_burst: u32,
    pub failed_token_slowdown_after: u32,
}

/// The SMTP server the mail outbox is sent through; without `smtp_host` mails wait in the
/// outbox.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSection {
    /// Empty: no SMTP server.
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: MailTlsSetting,
    /// Empty: no authentication.
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing)]
    pub password_file: Option<PathBuf>,
    /// The `From` of every mail.
    pub from: String,
    /// Hours a mail the SMTP server keeps refusing for a passing reason is tried before the
    /// sender gives up on it.
    pub give_up_after_hours: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MailTlsSetting {
    None,
    Starttls,
    Tls,
}

/// Without the password.
impl fmt::Debug for MailSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSection")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_some() {
                    "set"
                } else {
                    "not set"
                },
            )
            .field("from", &self.from)
            .field("give_up_after_hours", &self.give_up_after_hours)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        let server = ServerConfig::default();
        let limits = LimitsConfig::default();
        let webhooks = WebhookConfig::default();
        Config {
            database_url: "sqlite://ledgerport.db".into(),
            database_url_file: None,
            signing_key_encryption_key: None,
            signing_key_encryption_key_file: None,
            signing_key_encryption_key_previous: None,
            signing_key_encryption_key_previous_file: None,
            insecure_plaintext_signing_keys: false,
            log: LogSection {
                level: "info".into(),
                format: LogFormat::Pretty,
            },
            server: ServerSection {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                metrics_listen: "127.0.0.1:9464".into(),
                issuer: server.issuer,
                audience: server.audience,
                standard_token_lifetime_secs: server.standard_token_lifetime.as_secs(),
                miami_token_lifetime_secs: server.miami_token_lifetime.as_secs(),
                request_timeout_secs: server.request_timeout.as_secs(),
                close_interval_secs: server.close_interval.map_or(0, |d| d.as_secs()),
                ledger_list_page_size: server.ledger_list_page_size,
                access_log_retention_days: server.access_log_retention_days,
            },
            limits: LimitsSection {
                enabled: limits.enabled,
                token_per_second: limits.token_per_second,
                token_burst: limits.token_burst,
                report_per_second: limits.report_per_second,
                report_burst: limits.report_burst,
                failed_token_slowdown_after: limits.failed_token_slowdown_after,
            },
            mail: MailSection {
                smtp_host: String::new(),
                smtp_port: 587,
                tls: MailTlsSetting::Starttls,
                username: String::new(),
                password: None,
                password_file: None,
                from: String::new(),
                give_up_after_hours: ledgerport_server::mail::DEFAULT_GIVE_UP_AFTER_HOURS,
            },
            webhooks: WebhooksSection {
                deliver: webhooks.deliver,
                allowed_networks: String::new(),
                timeout_secs: webhooks.timeout.as_secs(),
                poll_interval_ms: u64::try_from(webhooks.poll_interval.as_millis()).unwrap_or(250),
                first_retry_secs: webhooks.first_retry.as_secs(),
                extra_ca_file: String::new(),
            },
        }
    }
}

/// `Debug` without the database password or the encryption keys.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |k: &Option<String>| if k.is_some() { "set" } else { "not set" };
        f.debug_struct("Config")
            .field("database_url", &redact_database_url(&self.database_url))
            .field(
                "signing_key_encryption_key",
                &set(&self.signing_key_encryption_key),
            )
            .field(
                "signing_key_encryption_key_previous",
                &set(&self.signing_key_encryption_key_previous),
            )
            .field(
                "insecure_plaintext_signing_keys",
                &self.insecure_plaintext_signing_keys,
            )
            .field("log", &self.log)
            .field("server", &self.server)
            .field("limits", &self.limits)
            .field("mail", &self.mail)
            .finish()
    }
}

impl Config {
    /// The settings of the HTTP layer. Signing keys are kept as [`Config::signing_keys`] says;
    /// without an encryption key they are in clear (callers decide whether that is allowed).
    // Spelled out with `..default()` so fields added to the server's structs keep their defaults.
    #[allow(clippy::needless_update)]
    pub fn server_config(&self) -> ServerConfig {
        let s = &self.server;
        let l = &self.limits;
        ServerConfig {
            issuer: s.issuer.clone(),
            audience: s.audience.clone(),
            standard_token_lifetime: Duration::from_secs(s.standard_token_lifetime_secs),
            miami_token_lifetime: Duration::from_secs(s.miami_token_lifetime_secs),
            ledger_list_page_size: s.ledger_list_page_size,
            request_timeout: Duration::from_secs(s.request_timeout_secs),
            close_interval: (s.close_interval_secs > 0)
                .then(|| Duration::from_secs(s.close_interval_secs)),
            access_log_retention_days: s.access_log_retention_days,
            limits: LimitsConfig {
                enabled: l.enabled,
                token_per_second: l.token_per_second,
                token_burst: l.token_burst,
                report_per_second: l.report_per_second,
                report_burst: l.report_burst,
                failed_token_slowdown_after: l.failed_token_slowdown_after,
                ..LimitsConfig::default()
            },
            signing_keys: self
                .signing_keys()
                .unwrap_or(SigningKeyProtection::Plaintext),
            mail: self.smtp().ok().flatten(),
            webhooks: self.webhooks().unwrap_or_default(),
            ..ServerConfig::default()
        }
    }

    /// The webhook sender's settings; a network that does not parse is an error naming
    /// `webhooks.allowed_networks`.
    pub fn webhooks(&self) -> anyhow::Result<WebhookConfig> {
        let w = &self.webhooks;
        let allowed_networks = w
            .allowed_networks
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                n.parse::<Network>()
                    .map_err(|e| anyhow!("webhooks.allowed_networks: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(WebhookConfig {
            deliver: w.deliver,
            allowed_networks,
            timeout: Duration::from_secs(w.timeout_secs),
            poll_interval: Duration::from_millis(w.poll_interval_ms),
            first_retry: Duration::from_secs(w.first_retry_secs),
            extra_ca_file: (!w.extra_ca_file.trim().is_empty())
                .then(|| PathBuf::from(w.extra_ca_file.trim())),
            ..WebhookConfig::default()
        })
    }

    /// How signing keys are kept: encrypted when a key-encryption key is configured; `None`
    /// when none is (values were checked when the configuration was loaded).
    pub fn signing_keys(&self) -> Option<SigningKeyProtection> {
        let parse = |k: &Option<String>| {
            k.as_deref()
                .and_then(|k| KeyEncryptionKey::from_base64(k).ok())
        };
        let current = parse(&self.signing_key_encryption_key)?;
        Some(SigningKeyProtection::Encrypted {
            current,
            previous: parse(&self.signing_key_encryption_key_previous)
                .into_iter()
                .collect(),
        })
    }

    /// The signing key protection a command that writes signing keys must use: the configured
    /// encryption, or clear text only when `insecure_plaintext_signing_keys` says so.
    pub fn required_signing_keys(&self) -> anyhow::Result<SigningKeyProtection> {
        match self.signing_keys() {
            Some(p) => Ok(p),
            None if self.insecure_plaintext_signing_keys => Ok(SigningKeyProtection::Plaintext),
            None => Err(anyhow!(
                "no `signing_key_encryption_key` is configured: token signing keys are stored \
                 encrypted with it. Set LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_FILE (a file \
                 holding 32 random bytes in base64: `head -c 32 /dev/urandom | base64`) or \
                 LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY, or, for a throwaway database, \
                 --insecure-plaintext-signing-keys (see OPERATIONS.md)"
            )),
        }
    }

    /// The SMTP server to send the mail outbox through; `None` when `mail.smtp_host` is empty.
    /// A server without a `mail.from`, or a password without a user name, is an error naming
    /// the key.
    pub fn smtp(&self) -> anyhow::Result<Option<SmtpConfig>> {
        let m = &self.mail;
        let host = m.smtp_host.trim();
        if host.is_empty() {
            return Ok(None);
        }
        if m.from.trim().is_empty() {
            bail!(
                "mail.from: expected {} when `mail.smtp_host` is set",
                key_named("mail.from").expected
            );
        }
        let credentials = match (m.username.trim(), &m.password) {
            ("", None) => None,
            ("", Some(_)) => {
                bail!("mail.username: expected a user name when `mail.password` is set")
            }
            (user, password) => Some((user.to_owned(), password.clone().unwrap_or_default())),
        };
        Ok(Some(SmtpConfig {
            host: host.to_owned(),
            port: m.smtp_port,
            tls: match m.tls {
                MailTlsSetting::None => MailTls::None,
                MailTlsSetting::Starttls => MailTls::StartTls,
                MailTlsSetting::Tls => MailTls::Tls,
            },
            credentials,
            from: m.from.trim().to_owned(),
            give_up_after: std::time::Duration::from_secs(u64::from(m.give_up_after_hours) * 3600),
        }))
    }

    /// The metrics listener's address; `None` when turned off.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        parse_optional_addr(&self.server.metrics_listen)
            .ok()
            .flatten()
    }
}

fn parse_optional_addr(v: &str) -> Result<Option<SocketAddr>, ()> {
    match v.trim() {
        "" | "off" => Ok(None),
        v => v.parse().map(Some).map_err(|_| ()),
    }
}

// ---------------------------------------------------------------------------------------------
// Layers.

/// Where a layer came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    File(PathBuf),
    Env,
    Flag,
}

impl Source {
    /// How a key of this layer is named in messages.
    fn name(&self, key_name: &str) -> String {
        let k = key_named(key_name);
        match self {
            Source::File(path) => format!("`{key_name}` in {}", path.display()),
            Source::Env => format!("{} (config key `{key_name}`)", k.env),
            Source::Flag => format!("{} (config key `{key_name}`)", k.flag),
        }
    }

    /// Where a value came from, for `config print`.
    fn describe(&self, key_name: &str) -> String {
        let k = key_named(key_name);
        match self {
            Source::File(path) => format!("config file {}", path.display()),
            Source::Env => format!("env {}", k.env),
            Source::Flag => format!("flag {}", k.flag),
        }
    }

    /// How a key is spelled in this layer, for messages about two keys at once.
    fn spelling(&self, key_name: &str) -> &'static str {
        let k = key_named(key_name);
        match self {
            Source::Env => k.env,
            Source::Flag => k.flag,
            Source::File(_) => k.name,
        }
    }
}

fn bad(source: &Source, key_name: &str, got: impl fmt::Display) -> String {
    format!(
        "{}: expected {}, got {got}",
        source.name(key_name),
        key_named(key_name).expected
    )
}

/// One layer: the keys it sets, as a figment of its own.
#[derive(Debug, Clone)]
pub struct Layer {
    source: Source,
    figment: Figment,
    /// The text each key had in the environment, for messages.
    raw: BTreeMap<&'static str, String>,
}

impl Layer {
    fn new(source: Source) -> Layer {
        Layer {
            source,
            figment: Figment::new(),
            raw: BTreeMap::new(),
        }
    }

    fn set(mut self, name: &str, value: impl Serialize) -> Layer {
        self.figment = self.figment.merge(Serialized::global(name, value));
        self
    }

    /// Whether this layer sets `name`.
    pub fn sets(&self, name: &str) -> bool {
        self.figment.contains(name)
    }

    /// A TOML configuration file's text. Unknown keys and values of the wrong type are refused
    /// with the key's dotted name (by [`resolve`], with the rest of the checks).
    pub fn from_toml(text: &str, path: &Path) -> anyhow::Result<Layer> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| anyhow!("{}: not valid TOML: {}", path.display(), e.message()))?;
        let mut layer = Layer::new(Source::File(path.to_path_buf()));
        layer.figment = Figment::from(Serialized::globals(table));
        Ok(layer)
    }

    /// A layer from environment variables read through `get` (empty values count as unset).
    /// A value is taken as the type its key's default has, so `LEDGERPORT_ISSUER=123` is the
    /// string `123` and `LEDGERPORT_LIMITS_TOKEN_BURST=ten` is refused as not a number.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Layer {
        let defaults = Figment::from(Serialized::defaults(Config::default()));
        let mut layer = Layer::new(Source::Env);
        for k in KEYS {
            let Some(raw) = get(k.env).filter(|v| !v.is_empty()) else {
                continue;
            };
            let value = match defaults.find_value(k.name) {
                Ok(Value::Num(..)) => number(&raw).unwrap_or_else(|| Value::from(raw.clone())),
                Ok(Value::Bool(..)) => match raw.as_str() {
                    "true" => Value::from(true),
                    "false" => Value::from(false),
                    _ => Value::from(raw.clone()),
                },
                _ => Value::from(raw.clone()),
            };
            layer = layer.set(k.name, value);
            layer.raw.insert(k.name, raw);
        }
        layer
    }

    /// The layer of command-line flags; `serve` is absent for commands without server flags.
    pub fn from_flags(global: &GlobalArgs, serve: Option<&ServeArgs>) -> Layer {
        let mut layer = Layer::new(Source::Flag);
        let given = [Value::serialize(global), Value::serialize(serve)];
        for value in given.into_iter().flatten() {
            if let Value::Dict(_, dict) = value {
                // A flag not given is `None`: it sets nothing.
                let given = dict
                    .into_iter()
                    .filter(|(_, v)| !matches!(v, Value::Empty(..)));
                for (name, v) in given {
                    layer = layer.set(&name, v);
                }
            }
        }
        layer
    }

    /// Checks the values this layer sets over the defaults: unknown keys, types, ranges, and a
    /// secret and its file not both named.
    fn check(&self) -> anyhow::Result<()> {
        let source = &self.source;
        for (value, file, noun) in SECRET_FILES {
            if self.sets(value) && self.sets(file) {
                let place = match source {
                    Source::File(p) => format!("{}: ", p.display()),
                    _ => String::new(),
                };
                bail!(
                    "{place}{} and {} are both set; give {noun} or the file holding it, not both",
                    source.spelling(value),
                    source.spelling(file)
                );
            }
        }
        Figment::from(Serialized::defaults(Config::default()))
            .merge(self.figment.clone())
            .extract::<Config>()
            .map_err(|e| anyhow!(self.type_error(e)))?;
        for k in KEYS {
            if let Some(got) = self
                .figment
                .find_value(k.name)
                .ok()
                .and_then(|v| offending(k, &v))
            {
                bail!(bad(source, k.name, got));
            }
        }
        Ok(())
    }

    /// A message for `figment`'s extraction error: the key, where it was set, what is expected.
    fn type_error(&self, e: figment::Error) -> String {
        let mut name = e.path.join(".");
        let path = match &self.source {
            Source::File(p) => p.display().to_string(),
            _ => String::new(),
        };
        if let Kind::UnknownField(field, _) = &e.kind {
            // Only a file can name an unknown key: env and flags come from `KEYS`.
            // figment's path ends with the unknown key already; serde's names only its section.
            if !(name == *field || name.ends_with(&format!(".{field}"))) {
                name = if name.is_empty() {
                    field.clone()
                } else {
                    format!("{name}.{field}")
                };
            }
            let section = name.rsplit_once('.').map_or("", |(s, _)| s);
            let known: Vec<&str> = KEYS
                .iter()
                .map(|k| k.name)
                .filter(|k| k.rsplit_once('.').map_or("", |(s, _)| s) == section)
                .collect();
            let mut expected = known.join(", ");
            if section.is_empty() {
                expected.push_str(", [log], [server], [limits], [mail], [webhooks]");
            }
            return format!("{path}: unknown key `{name}`; expected one of: {expected}");
        }
        if !KEYS.iter().any(|k| k.name == name) {
            return format!(
                "{path}: `{name}`: expected a [{name}] table ({})",
                describe(&e.kind)
            );
        }
        match self.raw.get(name.as_str()) {
            Some(raw) => bad(&self.source, &name, format!("{raw:?}")),
            None => format!(
                "{}: expected {} ({})",
                self.source.name(&name),
                key_named(&name).expected,
                describe(&e.kind)
            ),
        }
    }

    /// Replaces each `*_file` key this layer sets by the secret read from the file; returns
    /// where each such secret came from.
    fn read_secret_files(&mut self) -> anyhow::Result<Vec<(&'static str, String)>> {
        let mut read = Vec::new();
        for (value, file, noun) in SECRET_FILES {
            let Ok(path) = self.figment.extract_inner::<PathBuf>(file) else {
                continue;
            };
            let named = self.source.name(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow!("{named}: cannot read {}: {e}", path.display()))?;
            let secret = text.trim_end_matches(['\n', '\r']);
            if secret.trim().is_empty() {
                bail!(
                    "{named}: {} is empty; expected it to hold {noun}",
                    path.display()
                );
            }
            if offending(key_named(value), &Value::from(secret.to_string())).is_some() {
                bail!(
                    "{named}: {} does not hold {noun}: expected {}",
                    path.display(),
                    key_named(value).expected
                );
            }
            self.figment = self
                .figment
                .clone()
                .merge(Serialized::global(value, secret));
            read.push((
                value,
                format!(
                    "file {} (named by {})",
                    path.display(),
                    self.source.describe(file)
                ),
            ));
        }
        Ok(read)
    }
}

/// An environment variable's text as a number, if it is one.
fn number(raw: &str) -> Option<Value> {
    if let Ok(n) = raw.parse::<i64>() {
        return Some(Value::from(n));
    }
    if let Ok(n) = raw.parse::<u64>() {
        return Some(Value::from(n));
    }
    raw.parse::<f64>().ok().map(Value::from)
}

/// Checks `v` against `k`'s check: `None` when it passes, else how the value is shown in the
/// message.
fn offending(k: &Key, v: &Value) -> Option<String> {
    let ok = match k.check {
        Check::Any => true,
        Check::NonEmpty => v.as_str().is_none_or(|s| !s.trim().is_empty()),
        Check::Range(lo, hi) => as_int(v).is_none_or(|n| (lo..=hi).contains(&n)),
        Check::Positive => as_float(v).is_none_or(|n| n.is_finite() && n > 0.0),
        Check::LogFilter => v
            .as_str()
            .is_none_or(|s| tracing_subscriber::EnvFilter::try_new(s).is_ok()),
        Check::OptionalAddr => v.as_str().is_none_or(|s| parse_optional_addr(s).is_ok()),
        Check::EncryptionKey => v
            .as_str()
            .is_none_or(|s| KeyEncryptionKey::from_base64(s).is_ok()),
    };
    if ok {
        return None;
    }
    Some(match v {
        Value::String(_, s) if s.trim().is_empty() => "an empty string".to_string(),
        // Never echo a secret.
        Value::String(..) if NEVER_PRINTED.contains(&k.name) => "another value".to_string(),
        Value::String(_, s) => format!("{s:?}"),
        v => as_int(v)
            .map(|n| n.to_string())
            .or_else(|| as_float(v).map(|f| f.to_string()))
            .unwrap_or_else(|| format!("{v:?}")),
    })
}

fn as_int(v: &Value) -> Option<i128> {
    match v {
        Value::Num(_, n) => n
            .to_i128()
            .or_else(|| n.to_u128().and_then(|u| i128::try_from(u).ok())),
        _ => None,
    }
}

fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Num(_, n) => n.to_f64().or_else(|| as_int(v).map(|i| i as f64)),
        _ => None,
    }
}

/// serde's wording of a deserialization error, as `toml` and `serde_json` print it.
fn describe(kind: &Kind) -> String {
    fn actual(a: &Actual) -> String {
        match a {
            Actual::Bool(b) => format!("boolean `{b}`"),
            Actual::Unsigned(n) => format!("integer `{n}`"),
            Actual::Signed(n) => format!("integer `{n}`"),
            Actual::Float(f) => format!("floating point `{f}`"),
            Actual::Char(c) => format!("character `{c}`"),
            Actual::Str(s) => format!("string {s:?}"),
            other => other.to_string(),
        }
    }
    fn one_of(names: &[&str]) -> String {
        let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        match quoted.as_slice() {
            [] => "nothing".into(),
            [one] => one.clone(),
            [a, b] => format!("{a} or {b}"),
            more => format!("one of {}", more.join(", ")),
        }
    }
    match kind {
        Kind::Message(m) => m.clone(),
        Kind::InvalidType(a, expected) => {
            format!("invalid type: {}, expected {expected}", actual(a))
        }
        Kind::InvalidValue(a, expected) => {
            format!("invalid value: {}, expected {expected}", actual(a))
        }
        Kind::UnknownVariant(v, expected) => {
            format!("unknown variant `{v}`, expected {}", one_of(expected))
        }
        other => other.to_string(),
    }
}

/// The effective configuration and where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Key name -> where its value came from (`default`, `config file PATH`, `env NAME`, ...).
    pub sources: BTreeMap<&'static str, String>,
    pub file: Option<PathBuf>,
}

/// Applies the layers in order (later wins) over the built-in defaults. Each layer is checked
/// before it is applied.
pub fn resolve(layers: Vec<Layer>) -> anyhow::Result<Loaded> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    let mut sources: BTreeMap<&'static str, String> = KEYS
        .iter()
        .filter(|k| !is_file_key(k.name))
        .map(|k| (k.name, "default".to_string()))
        .collect();
    let mut file = None;
    for mut layer in layers {
        layer.check()?;
        if let Source::File(p) = &layer.source {
            file = Some(p.clone());
        }
        for k in KEYS.iter().filter(|k| !is_file_key(k.name)) {
            if layer.sets(k.name) {
                sources.insert(k.name, layer.source.describe(k.name));
            }
        }
        for (name, from) in layer.read_secret_files()? {
            sources.insert(name, from);
        }
        figment = figment.merge(layer.figment);
    }
    let config = figment
        .extract::<Config>()
        .map_err(|e| anyhow!("the merged configuration: {}", describe(&e.kind)))?;
    Ok(Loaded {
        config,
        sources,
        file,
    })
}

/// Loads the configuration of this process: the file named by `--config` or
/// `LEDGERPORT_CONFIG` (if any), the process environment and the flags.
pub fn load(global: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Loaded> {
    let mut layers = Vec::new();
    if let Some(path) = &global.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read the config file {}: {e}", path.display()))?;
        layers.push(Layer::from_toml(&text, path)?);
    }
    layers.push(Layer::from_env(&|name| std::env::var(name).ok()));
    layers.push(Layer::from_flags(global, serve));
    resolve(layers)
}

// ---------------------------------------------------------------------------------------------
// Printing.

/// The database URL with any password replaced by `***`: the userinfo password
/// (`postgres://user:***@host/db`) and a `password=` query parameter. SQLite URLs hold no secret.
pub fn redact_database_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl Loaded {
    /// The effective configuration as TOML, secrets redacted, each value followed by a comment
    /// saying where it came from. The output is itself a valid configuration file (encryption
    /// keys are left out: it says only whether and where they were set).
    pub fn to_toml(&self) -> String {
        let mut redacted = self.config.clone();
        redacted.database_url = redact_database_url(&redacted.database_url);
        let figment = Figment::from(Serialized::defaults(&redacted));
        let mut out = String::from("# Effective Ledgerport configuration (secrets redacted).\n");
        match &self.file {
            Some(p) => out.push_str(&format!("# Config file: {}\n", p.display())),
            None => out.push_str("# Config file: none\n"),
        }
        let mut section = "";
        for k in KEYS.iter().filter(|k| !is_file_key(k.name)) {
            let (sec, field) = k.name.rsplit_once('.').unwrap_or(("", k.name));
            if sec != section {
                out.push_str(&format!("\n[{sec}]\n"));
                section = sec;
            }
            let from = self.sources.get(k.name).map_or("default", String::as_str);
            if NEVER_PRINTED.contains(&k.name) {
                match figment.contains(k.name) {
                    true => out.push_str(&format!("# {field}: set, not shown # {from}\n")),
                    false => out.push_str(&format!("# {field}: not set\n")),
                }
                continue;
            }
            let value = figment
                .extract_inner::<toml::Value>(k.name)
                .map(|v| v.to_string())
                .unwrap_or_default();
            out.push_str(&format!("{field} = {value} # {from}\n"));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Flags. No `default_value` or clap `env` here: defaults and the environment are layers of their
// own, so a flag given on the command line is the only thing clap reports. Each flag's
// `serde(rename)` is its key; flags not given are left out of the flags' layer.

/// Flags every command takes.
#[derive(clap::Args, Debug, Clone, Default, Serialize)]
pub struct GlobalArgs {
    /// Configuration file (TOML); see CONFIGURATION.md.
    #[arg(long, global = true, value_name = "FILE", env = CONFIG_ENV)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Database to use: `sqlite://PATH` (created if missing), `sqlite::memory:` or `postgres://USER@HOST:PORT/DB`. [default: sqlite://ledgerport.db] [env: LEDGERPORT_DATABASE_URL] [config: database_url]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// File holding the database URL (for URLs with a password). [env: LEDGERPORT_DATABASE_URL_FILE] [config: database_url_file]
    #[arg(long, global = true, value_name = "FILE")]
    pub database_url_file: Option<PathBuf>,

    /// Key that encrypts token signing keys in the database: 32 bytes in base64; prefer the file. [env: LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY] [config: signing_key_encryption_key]
    #[arg(long, global = true, value_name = "BASE64")]
    pub signing_key_encryption_key: Option<String>,

    /// File holding the signing key encryption key. [env: LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_FILE] [config: signing_key_encryption_key_file]
    #[arg(long, global = true, value_name = "FILE")]
    pub signing_key_encryption_key_file: Option<PathBuf>,

    /// The encryption key being replaced: signing keys it encrypted are still read. [env: LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_PREVIOUS] [config: signing_key_encryption_key_previous]
    #[arg(long, global = true, value_name = "BASE64")]
    pub signing_key_encryption_key_previous: Option<String>,

    /// File holding the previous signing key encryption key. [env: LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_PREVIOUS_FILE] [config: signing_key_encryption_key_previous_file]
    #[arg(long, global = true, value_name = "FILE")]
    pub signing_key_encryption_key_previous_file: Option<PathBuf>,

    /// Store token signing keys in clear when no encryption key is set (throwaway databases only). [default: false] [env: LEDGERPORT_INSECURE_PLAINTEXT_SIGNING_KEYS] [config: insecure_plaintext_signing_keys]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_plaintext_signing_keys: bool,

    /// Log filter, e.g. `info` or `ledgerport_server=debug`. [default: info] [env: LEDGERPORT_LOG] [config: log.level]
    #[arg(long, global = true, value_name = "FILTER")]
    #[serde(rename = "log.level")]
    pub log: Option<String>,

    /// Log format: `pretty` for people, `json` for machines. [default: pretty] [env: LEDGERPORT_LOG_FORMAT] [config: log.format]
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        value_enum,
        hide_possible_values = true
    )]
    #[serde(rename = "log.format")]
    pub log_format: Option<LogFormat>,
}

/// Flags of the server (`serve`, `demo`, `config print`).
#[derive(clap::Args, Debug, Clone, Default, Serialize)]
pub struct ServeArgs {
    /// Address to listen on. [default: 127.0.0.1:8080] [env: LEDGERPORT_LISTEN] [config: server.listen]
    #[arg(long, value_name = "ADDR")]
    #[serde(rename = "server.listen")]
    pub listen: Option<SocketAddr>,
    /// Address of the metrics listener (`GET /metrics`), or `off`. [default: 127.0.0.1:9464] [env: LEDGERPORT_METRICS_LISTEN] [config: server.metrics_listen]
    #[arg(long, value_name = "ADDR")]
    #[serde(rename = "server.metrics_listen")]
    pub metrics_listen: Option<String>,
    /// `iss` of issued tokens. [default: ledgerport] [env: LEDGERPORT_ISSUER] [config: server.issuer]
    #[arg(long)]
    #[serde(rename = "server.issuer")]
    pub issuer: Option<String>,
    /// `aud` of issued tokens. [default: ledgerport-report-api] [env: LEDGERPORT_AUDIENCE] [config: server.audience]
    #[arg(long)]
    #[serde(rename = "server.audience")]
    pub audience: Option<String>,
    /// Lifetime of /accesstoken/get tokens, in seconds. [default: 86400] [env: LEDGERPORT_STANDARD_TOKEN_LIFETIME] [config: server.standard_token_lifetime_secs]
    #[arg(long, value_name = "SECS")]
    #[serde(rename = "server.standard_token_lifetime_secs")]
    pub standard_token_lifetime: Option<u64>,
    /// Lifetime of /miami/v1/token tokens, in seconds. [default: 900] [env: LEDGERPORT_MIAMI_TOKEN_LIFETIME] [config: server.miami_token_lifetime_secs]
    #[arg(long, value_name = "SECS")]
    #[serde(rename = "server.miami_token_lifetime_secs")]
    pub miami_token_lifetime: Option<u64>,
    /// Requests running longer than this many seconds are abandoned with a 500. [default: 30] [env: LEDGERPORT_REQUEST_TIMEOUT] [config: server.request_timeout_secs]
    #[arg(long, value_name = "SECS")]
    #[serde(rename = "server.request_timeout_secs")]
    pub request_timeout: Option<u64>,
    /// Seconds between closing runs (due ledger dates closed, payouts scheduled); 0 turns the closing task off (then `admin close` or another server does it). [default: 10] [env: LEDGERPORT_CLOSE_INTERVAL] [config: server.close_interval_secs]
    #[arg(long, value_name = "SECS")]
    #[serde(rename = "server.close_interval_secs")]
    pub close_interval: Option<u64>,
    /// Ledgers per page of GET /settlement/v1/ledgers (1 to 10000). [default: 1000] [env: LEDGERPORT_LEDGER_LIST_PAGE_SIZE] [config: server.ledger_list_page_size]
    #[arg(long, value_name = "N")]
    #[serde(rename = "server.ledger_list_page_size")]
    pub ledger_list_page_size: Option<u32>,
    /// Days the access log keeps a Report API request; older rows are pruned hourly (0 keeps them forever). [default: 396] [env: LEDGERPORT_ACCESS_LOG_RETENTION_DAYS] [config: server.access_log_retention_days]
    #[arg(long, value_name = "DAYS")]
    #[serde(rename = "server.access_log_retention_days")]
    pub access_log_retention_days: Option<u32>,
    /// Rate limits on (`true`) or off (`false`). [default: true] [env: LEDGERPORT_LIMITS_ENABLED] [config: limits.enabled]
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    #[serde(rename = "limits.enabled")]
    pub limits_enabled: Option<bool>,
    /// Sustained token requests per second per client id. [default: 20] [env: LEDGERPORT_LIMITS_TOKEN_PER_SECOND] [config: limits.token_per_second]
    #[arg(long, value_name = "RATE")]
    #[serde(rename = "limits.token_per_second")]
    pub limits_token_per_second: Option<f64>,
    /// Token requests one client id may make at once. [default: 100] [env: LEDGERPORT_LIMITS_TOKEN_BURST] [config: limits.token_burst]
    #[arg(long, value_name = "N")]
    #[serde(rename = "limits.token_burst")]
    pub limits_token_burst: Option<u32>,
    /// Sustained Report API requests per second per principal. [default: 100] [env: LEDGERPORT_LIMITS_REPORT_PER_SECOND] [config: limits.report_per_second]
    #[arg(long, value_name = "RATE")]
    #[serde(rename = "limits.report_per_second")]
    pub limits_report_per_second: Option<f64>,
    /// Report API requests one principal may make at once. [default: 200] [env: LEDGERPORT_LIMITS_REPORT_BURST] [config: limits.report_burst]
    #[arg(long, value_name = "N")]
    #[serde(rename = "limits.report_burst")]
    pub limits_report_burst: Option<u32>,
    /// Failed token requests per client id after which further attempts are slowed down. [default: 5] [env: LEDGERPORT_LIMITS_FAILED_TOKEN_SLOWDOWN_AFTER] [config: limits.failed_token_slowdown_after]
    #[arg(long, value_name = "N")]
    #[serde(rename = "limits.failed_token_slowdown_after")]
    pub limits_failed_token_slowdown_after: Option<u32>,
    /// SMTP server that sends the mail outbox; none: mails wait in the outbox. [default: none] [env: LEDGERPORT_MAIL_SMTP_HOST] [config: mail.smtp_host]
    #[arg(long, value_name = "HOST")]
    #[serde(rename = "mail.smtp_host")]
    pub mail_smtp_host: Option<String>,
    /// Its port. [default: 587] [env: LEDGERPORT_MAIL_SMTP_PORT] [config: mail.smtp_port]
    #[arg(long, value_name = "PORT")]
    #[serde(rename = "mail.smtp_port")]
    pub mail_smtp_port: Option<u16>,
    /// How the connection is protected: none, starttls or tls. [default: starttls] [env: LEDGERPORT_MAIL_TLS] [config: mail.tls]
    #[arg(long, value_name = "MODE", value_enum, hide_possible_values = true)]
    #[serde(rename = "mail.tls")]
    pub mail_tls: Option<MailTlsSetting>,
    /// SMTP user name. [default: none] [env: LEDGERPORT_MAIL_USERNAME] [config: mail.username]
    #[arg(long, value_name = "USER")]
    #[serde(rename = "mail.username")]
    pub mail_username: Option<String>,
    /// SMTP password; prefer the file. [env: LEDGERPORT_MAIL_PASSWORD] [config: mail.password]
    #[arg(long, value_name = "PASSWORD")]
    #[serde(rename = "mail.password")]
    pub mail_password: Option<String>,
    /// File holding the SMTP password. [env: LEDGERPORT_MAIL_PASSWORD_FILE] [config: mail.password_file]
    #[arg(long, value_name = "FILE")]
    #[serde(rename = "mail.password_file")]
    pub mail_password_file: Option<PathBuf>,
    /// The From of every mail, e.g. `Ledgerport <no-reply@example.com>`. [env: LEDGERPORT_MAIL_FROM] [config: mail.from]
    #[arg(long, value_name = "MAILBOX")]
    #[serde(rename = "mail.from")]
    pub mail_from: Option<String>,
    /// Hours a mail failing for a passing reason is retried before it is marked failed (a 5xx refusal fails it at once). [default: 72] [env: LEDGERPORT_MAIL_GIVE_UP_AFTER_HOURS] [config: mail.give_up_after_hours]
    #[arg(long, value_name = "HOURS")]
    #[serde(rename = "mail.give_up_after_hours")]
    pub mail_give_up_after_hours: Option<u32>,
    /// Whether this server delivers webhooks (events are recorded either way). [default: true] [env: LEDGERPORT_WEBHOOKS_DELIVER] [config: webhooks.deliver]
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    #[serde(rename = "webhooks.deliver")]
    pub webhooks_deliver: Option<bool>,
    /// Loopback, private or link-local networks webhook endpoints may point into, comma separated (e.g. `127.0.0.1/32`); others are always allowed. [default: none] [env: LEDGERPORT_WEBHOOKS_ALLOWED_NETWORKS] [config: webhooks.allowed_networks]
    #[arg(long, value_name = "NETWORKS")]
    #[serde(rename = "webhooks.allowed_networks")]
    pub webhooks_allowed_networks: Option<String>,
    /// Seconds one webhook delivery attempt may take. [default: 10] [env: LEDGERPORT_WEBHOOKS_TIMEOUT] [config: webhooks.timeout_secs]
    #[arg(long, value_name = "SECS")]
    #[serde(rename = "webhooks.timeout_secs")]
    pub webhooks_timeout: Option<u64>,
    /// Milliseconds between looks for due webhook deliveries. [default: 250] [env: LEDGERPORT_WEBHOOKS_POLL_INTERVAL_MS] [config: webhooks.poll_interval_ms]
    #[arg(long, value_name = "MS")]
    #[serde(rename = "webhooks.poll_interval_ms")]
    pub webhooks_poll_interval_ms: Option<u64>,
    /// Seconds before a failed delivery's first retry, doubling (with jitter) up to an hour, for up to 3 days. [default: 5] [env: LEDGERPORT_WEBHOOKS_FIRST_RETRY] [config: webhooks.first_retry_secs]
    #[arg(long, value_name = "SECS")]
    #[serde(rename = "webhooks.first_retry_secs")]
    pub webhooks_first_retry: Option<u64>,
    /// PEM file of CA certificates trusted for https:// webhook endpoints besides the system's root certificates (a private CA). [default: none] [env: LEDGERPORT_WEBHOOKS_EXTRA_CA_FILE] [config: webhooks.extra_ca_file]
    #[arg(long, value_name = "FILE")]
    #[serde(rename = "webhooks.extra_ca_file")]
    pub webhooks_extra_ca_file: Option<String>,
}

/// `ledgerport config ...`.
#[derive(clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment, flags) as TOML, secrets
    /// redacted, each value with where it came from. Takes the same flags as `serve`.
    Print(ServeArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn file(text: &str) -> Layer {
        Layer::from_toml(text, Path::new("/etc/ledgerport.toml")).expect("valid TOML")
    }

    fn file_error(text: &str) -> String {
        Layer::from_toml(text, Path::new("/etc/ledgerport.toml"))
            .and_then(|l| resolve(vec![l]))
            .expect_err("refused")
            .to_string()
    }

    fn env(vars: &[(&str, &str)]) -> Layer {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Layer::from_env(&|name| vars.get(name).cloned())
    }

    const KEK_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEK_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ledgerport-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    #[test]
    fn the_defaults_are_the_server_crates_defaults() {
        let ours = Config::default().server_config();
        let theirs = ServerConfig::default();
        assert_eq!(ours.issuer, theirs.issuer);
        assert_eq!(ours.audience, theirs.audience);
        assert_eq!(ours.standard_token_lifetime, theirs.standard_token_lifetime);
        assert_eq!(ours.miami_token_lifetime, theirs.miami_token_lifetime);
        assert_eq!(ours.ledger_list_page_size, theirs.ledger_list_page_size);
        assert_eq!(ours.request_timeout, theirs.request_timeout);
        assert_eq!(ours.close_interval, theirs.close_interval);
        assert_eq!(
            ours.access_log_retention_days,
            theirs.access_log_retention_days
        );
        assert_eq!(ours.limits, theirs.limits);
        let d = Config::default();
        assert_eq!(d.database_url, "sqlite://ledgerport.db");
        assert_eq!(d.log.level, "info");
        assert_eq!(d.log.format, LogFormat::Pretty);
        assert_eq!(d.server.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn later_layers_win_file_then_env_then_flags() {
        let f = file(
            r#"
            database_url = "sqlite://from-file.db"
            [server]
            listen = "127.0.0.1:9001"
            issuer = "file-issuer"
            audience = "file-audience"
            [limits]
            token_burst = 7
            report_burst = 8
            "#,
        );
        let e = env(&[
            ("LEDGERPORT_ISSUER", "env-issuer"),
            ("LEDGERPORT_LIMITS_TOKEN_BURST", "70"),
            ("LEDGERPORT_LIMITS_REPORT_BURST", "80"),
        ]);
        let flags = Layer::from_flags(
            &GlobalArgs::default(),
            Some(&ServeArgs {
                limits_report_burst: Some(800),
                ..ServeArgs::default()
            }),
        );
        let loaded = resolve(vec![f, e, flags]).expect("valid");
        let c = &loaded.config;
        assert_eq!(c.database_url, "sqlite://from-file.db");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(c.server.issuer, "env-issuer");
        assert_eq!(c.server.audience, "file-audience");
        assert_eq!(c.limits.token_burst, 70);
        assert_eq!(c.limits.report_burst, 800);
        assert_eq!(c.server.request_timeout_secs, 30);
        assert_eq!(c.server_config().limits.report_burst, 800);
        let from = |k: &str| loaded.sources[k].as_str();
        assert_eq!(from("server.listen"), "config file /etc/ledgerport.toml");
        assert_eq!(from("server.issuer"), "env LEDGERPORT_ISSUER");
        assert_eq!(from("limits.report_burst"), "flag --limits-report-burst");
        assert_eq!(from("server.request_timeout_secs"), "default");
    }

    #[test]
    fn a_bad_value_is_refused_even_when_a_later_layer_overrides_it() {
        let f = file("[limits]\ntoken_burst = 0\n");
        let flags = Layer::from_flags(
            &GlobalArgs::default(),
            Some(&ServeArgs {
                limits_token_burst: Some(5),
                ..ServeArgs::default()
            }),
        );
        assert_eq!(
            resolve(vec![f, flags]).expect_err("refused").to_string(),
            "`limits.token_burst` in /etc/ledgerport.toml: expected a whole number of requests \
             from 1 to 4294967295, got 0"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_section_and_the_known_keys() {
        assert_eq!(
            file_error("[limits]\ntokn_burst = 5\n"),
            "/etc/ledgerport.toml: unknown key `limits.tokn_burst`; expected one of: \
             limits.enabled, limits.token_per_second, limits.token_burst, \
             limits.report_per_second, limits.report_burst, limits.failed_token_slowdown_after"
        );
        assert_eq!(
            file_error("listen = \"127.0.0.1:1\"\n"),
            "/etc/ledgerport.toml: unknown key `listen`; expected one of: database_url, \
             database_url_file, signing_key_encryption_key, signing_key_encryption_key_file, \
             signing_key_encryption_key_previous, signing_key_encryption_key_previous_file, \
             insecure_plaintext_signing_keys, [log], [server], [limits], [mail], [webhooks]"
        );
        assert_eq!(
            file_error("[sever]\nlisten = \"127.0.0.1:1\"\n"),
            "/etc/ledgerport.toml: unknown key `sever`; expected one of: database_url, \
             database_url_file, signing_key_encryption_key, signing_key_encryption_key_file, \
             signing_key_encryption_key_previous, signing_key_encryption_key_previous_file, \
             insecure_plaintext_signing_keys, [log], [server], [limits], [mail], [webhooks]"
        );
    }

    #[test]
    fn values_of_the_wrong_type_are_refused_naming_the_key_and_what_is_expected() {
        assert_eq!(
            file_error("[limits]\ntoken_burst = \"ten\"\n"),
            "`limits.token_burst` in /etc/ledgerport.toml: expected a whole number of requests \
             from 1 to 4294967295 (invalid type: string \"ten\", expected u32)"
        );
        assert_eq!(
            file_error("[server]\nlisten = \"localhost\"\n"),
            "`server.listen` in /etc/ledgerport.toml: expected a socket address such as \
             `127.0.0.1:8080` or `[::]:8080` (invalid socket address syntax)"
        );
        assert_eq!(
            file_error("[log]\nformat = \"xml\"\n"),
            "`log.format` in /etc/ledgerport.toml: expected `pretty` or `json` (unknown variant \
             `xml`, expected `pretty` or `json`)"
        );
        assert_eq!(
            file_error("[server]\nrequest_timeout_secs = -1\n"),
            "`server.request_timeout_secs` in /etc/ledgerport.toml: expected a whole number of \
             seconds greater than 0 (invalid value: integer `-1`, expected u64)"
        );
        assert!(
            file_error("[server\n").starts_with("/etc/ledgerport.toml: not valid TOML: "),
            "{}",
            file_error("[server\n")
        );
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_key_and_the_range() {
        let cases = [
            (
                "[server]\nstandard_token_lifetime_secs = 0",
                "`server.standard_token_lifetime_secs` in /etc/ledgerport.toml: expected a whole \
                 number of seconds greater than 0, got 0",
            ),
            (
                "[server]\nmiami_token_lifetime_secs = 0",
                "`server.miami_token_lifetime_secs` in /etc/ledgerport.toml: expected a whole \
                 number of seconds greater than 0, got 0",
            ),
            (
                "[server]\nrequest_timeout_secs = 0",
                "`server.request_timeout_secs` in /etc/ledgerport.toml: expected a whole number \
                 of seconds greater than 0, got 0",
            ),
            (
                "[server]\nledger_list_page_size = 0",
                "`server.ledger_list_page_size` in /etc/ledgerport.toml: expected a whole number \
                 from 1 to 10000, got 0",
            ),
            (
                "[server]\nledger_list_page_size = 10001",
                "`server.ledger_list_page_size` in /etc/ledgerport.toml: expected a whole number \
                 from 1 to 10000, got 10001",
            ),
            (
                "[server]\nissuer = \"\"",
                "`server.issuer` in /etc/ledgerport.toml: expected a non-empty string, got an \
                 empty string",
            ),
            (
                "[limits]\ntoken_per_second = 0.0",
                "`limits.token_per_second` in /etc/ledgerport.toml: expected a number of requests \
                 per second greater than 0, got 0",
            ),
            (
                "[limits]\nreport_per_second = -1.5",
                "`limits.report_per_second` in /etc/ledgerport.toml: expected a number of \
                 requests per second greater than 0, got -1.5",
            ),
            (
                "[limits]\nreport_per_second = nan",
                "`limits.report_per_second` in /etc/ledgerport.toml: expected a number of \
                 requests per second greater than 0, got NaN",
            ),
            (
                "[limits]\nreport_burst = 0",
                "`limits.report_burst` in /etc/ledgerport.toml: expected a whole number of \
                 requests from 1 to 4294967295, got 0",
            ),
            (
                "[log]\nlevel = \"ledgerport=loud\"",
                "`log.level` in /etc/ledgerport.toml: expected a log filter such as `info` or \
                 `warn,ledgerport_server=debug`, got \"ledgerport=loud\"",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(
                resolve(vec![file(text)]).expect_err(text).to_string(),
                message
            );
        }
        // The edges of the ranges are accepted; 0 turns the closing task off.
        let edges = resolve(vec![file(
            "[server]\nledger_list_page_size = 10000\nclose_interval_secs = 0\n\
             [limits]\nfailed_token_slowdown_after = 0\ntoken_per_second = 0.5\n",
        )])
        .expect("valid");
        assert_eq!(edges.config.server.ledger_list_page_size, 10000);
        assert_eq!(edges.config.server_config().close_interval, None);
        assert_eq!(edges.config.limits.token_per_second, 0.5);
    }

    #[test]
    fn bad_environment_values_are_refused_naming_the_variable() {
        assert_eq!(
            resolve(vec![env(&[("LEDGERPORT_LIMITS_TOKEN_BURST", "ten")])])
                .expect_err("refused")
                .to_string(),
            "LEDGERPORT_LIMITS_TOKEN_BURST (config key `limits.token_burst`): expected a whole \
             number of requests from 1 to 4294967295, got \"ten\""
        );
        assert_eq!(
            resolve(vec![env(&[("LEDGERPORT_LISTEN", "8080")])])
                .expect_err("refused")
                .to_string(),
            "LEDGERPORT_LISTEN (config key `server.listen`): expected a socket address such as \
             `127.0.0.1:8080` or `[::]:8080`, got \"8080\""
        );
        assert_eq!(
            resolve(vec![env(&[("LEDGERPORT_LIMITS_ENABLED", "yes")])])
                .expect_err("refused")
                .to_string(),
            "LEDGERPORT_LIMITS_ENABLED (config key `limits.enabled`): expected `true` or \
             `false`, got \"yes\""
        );
        let zero = env(&[("LEDGERPORT_REQUEST_TIMEOUT", "0")]);
        assert_eq!(
            resolve(vec![zero]).expect_err("refused").to_string(),
            "LEDGERPORT_REQUEST_TIMEOUT (config key `server.request_timeout_secs`): expected a \
             whole number of seconds greater than 0, got 0"
        );
        // Empty variables count as unset.
        let empty = env(&[("LEDGERPORT_LISTEN", "")]);
        assert!(KEYS.iter().all(|k| !empty.sets(k.name)));
    }

    #[test]
    fn every_environment_variable_sets_its_key() {
        let e = env(&[
            ("LEDGERPORT_DATABASE_URL", "sqlite::memory:"),
            ("LEDGERPORT_LOG", "warn"),
            ("LEDGERPORT_LOG_FORMAT", "json"),
            ("LEDGERPORT_LISTEN", "0.0.0.0:9000"),
            ("LEDGERPORT_ISSUER", "i"),
            ("LEDGERPORT_AUDIENCE", "a"),
            ("LEDGERPORT_STANDARD_TOKEN_LIFETIME", "1"),
            ("LEDGERPORT_MIAMI_TOKEN_LIFETIME", "2"),
            ("LEDGERPORT_REQUEST_TIMEOUT", "3"),
            ("LEDGERPORT_CLOSE_INTERVAL", "4"),
            ("LEDGERPORT_LEDGER_LIST_PAGE_SIZE", "5"),
            ("LEDGERPORT_LIMITS_ENABLED", "false"),
            ("LEDGERPORT_LIMITS_TOKEN_PER_SECOND", "6.5"),
            ("LEDGERPORT_LIMITS_TOKEN_BURST", "7"),
            ("LEDGERPORT_LIMITS_REPORT_PER_SECOND", "8"),
            ("LEDGERPORT_LIMITS_REPORT_BURST", "9"),
            ("LEDGERPORT_LIMITS_FAILED_TOKEN_SLOWDOWN_AFTER", "10"),
            ("LEDGERPORT_METRICS_LISTEN", "off"),
            ("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK_A),
            ("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_PREVIOUS", KEK_B),
            ("LEDGERPORT_INSECURE_PLAINTEXT_SIGNING_KEYS", "true"),
            ("LEDGERPORT_MAIL_SMTP_HOST", "smtp.example.com"),
            ("LEDGERPORT_MAIL_SMTP_PORT", "465"),
            ("LEDGERPORT_MAIL_TLS", "tls"),
            ("LEDGERPORT_MAIL_USERNAME", "lp"),
            ("LEDGERPORT_MAIL_PASSWORD", "smtp-pw"),
            ("LEDGERPORT_MAIL_FROM", "Ledgerport <no-reply@example.com>"),
            ("LEDGERPORT_MAIL_GIVE_UP_AFTER_HOURS", "11"),
            ("LEDGERPORT_WEBHOOKS_DELIVER", "false"),
            (
                "LEDGERPORT_WEBHOOKS_ALLOWED_NETWORKS",
                "127.0.0.1/32, 10.0.0.0/8",
            ),
            ("LEDGERPORT_WEBHOOKS_TIMEOUT", "11"),
            ("LEDGERPORT_WEBHOOKS_POLL_INTERVAL_MS", "12"),
            ("LEDGERPORT_WEBHOOKS_FIRST_RETRY", "13"),
            (
                "LEDGERPORT_WEBHOOKS_EXTRA_CA_FILE",
                "/etc/ledgerport/ca.pem",
            ),
        ]);
        let c = resolve(vec![e]).expect("valid").config;
        let w = c.webhooks().expect("valid networks");
        assert_eq!(w.allowed_networks.len(), 2);
        assert_eq!(w.poll_interval, Duration::from_millis(12));
        assert_eq!(
            w.extra_ca_file.as_deref(),
            Some(Path::new("/etc/ledgerport/ca.pem"))
        );
        let expected = Config {
            database_url: "sqlite::memory:".into(),
            database_url_file: None,
            signing_key_encryption_key: Some(KEK_A.into()),
            signing_key_encryption_key_file: None,
            signing_key_encryption_key_previous: Some(KEK_B.into()),
            signing_key_encryption_key_previous_file: None,
            insecure_plaintext_signing_keys: true,
            log: LogSection {
                level: "warn".into(),
                format: LogFormat::Json,
            },
            server: ServerSection {
                listen: "0.0.0.0:9000".parse().expect("addr"),
                metrics_listen: "off".into(),
                issuer: "i".into(),
                audience: "a".into(),
                standard_token_lifetime_secs: 1,
                miami_token_lifetime_secs: 2,
                request_timeout_secs: 3,
                close_interval_secs: 4,
                ledger_list_page_size: 5,
                access_log_retention_days: 396,
            },
            limits: LimitsSection {
                enabled: false,
                token_per_second: 6.5,
                token_burst: 7,
                report_per_second: 8.0,
                report_burst: 9,
                failed_token_slowdown_after: 10,
            },
            mail: MailSection {
                smtp_host: "smtp.example.com".into(),
                smtp_port: 465,
                tls: MailTlsSetting::Tls,
                username: "lp".into(),
                password: Some("smtp-pw".into()),
                password_file: None,
                from: "Ledgerport <no-reply@example.com>".into(),
                give_up_after_hours: 11,
            },
            webhooks: WebhooksSection {
                deliver: false,
                allowed_networks: "127.0.0.1/32, 10.0.0.0/8".into(),
                timeout_secs: 11,
                poll_interval_ms: 12,
                first_retry_secs: 13,
                extra_ca_file: "/etc/ledgerport/ca.pem".into(),
            },
        };
        assert_eq!(c, expected);
    }

    #[test]
    fn the_smtp_password_comes_from_a_file_is_never_printed_and_mail_settings_are_checked() {
        let secret = temp_file("smtp-pw", "hunter2-smtp\n");
        let f = file(&format!(
            "[mail]\nsmtp_host = \"smtp.example.com\"\nusername = \"lp\"\n\
             password_file = {:?}\nfrom = \"no-reply@example.com\"\n",
            secret.display().to_string()
        ));
        let loaded = resolve(vec![f]).expect("valid");
        let smtp = loaded.config.smtp().expect("valid").expect("configured");
        assert_eq!(
            smtp.credentials,
            Some(("lp".to_owned(), "hunter2-smtp".to_owned()))
        );
        assert_eq!(smtp.tls, MailTls::StartTls);
        assert_eq!(smtp.port, 587);
        let printed = loaded.to_toml();
        assert!(!printed.contains("hunter2-smtp"), "{printed}");
        assert!(printed.contains("# password: set, not shown"), "{printed}");
        let debug = format!("{:?}", loaded.config);
        assert!(!debug.contains("hunter2-smtp"), "{debug}");

        let no_from =
            resolve(vec![file("[mail]\nsmtp_host = \"smtp.example.com\"\n")]).expect("valid");
        let e = no_from.config.smtp().expect_err("no from").to_string();
        assert!(e.starts_with("mail.from: "), "{e}");
        let no_user = resolve(vec![env(&[
            ("LEDGERPORT_MAIL_SMTP_HOST", "smtp.example.com"),
            ("LEDGERPORT_MAIL_FROM", "no-reply@example.com"),
            ("LEDGERPORT_MAIL_PASSWORD", "pw"),
        ])])
        .expect("valid");
        let e = no_user.config.smtp().expect_err("no user").to_string();
        assert!(e.starts_with("mail.username: "), "{e}");
        assert!(
            Config::default().smtp().expect("valid").is_none(),
            "no SMTP server by default"
        );
        assert_eq!(
            resolve(vec![file("[mail]\ntls = \"ssl\"\n")])
                .expect_err("refused")
                .to_string(),
            "`mail.tls` in /etc/ledgerport.toml: expected `none`, `starttls` or `tls` \
             (unknown variant `ssl`, expected one of `none`, `starttls`, `tls`)"
        );
    }

    #[test]
    fn the_database_url_can_come_from_a_file_without_its_trailing_newline() {
        let secret = temp_file("db-url", "postgres://app:s3cret@db:5432/ledgerport\n");
        let f = file(&format!(
            "database_url_file = {:?}\n",
            secret.display().to_string()
        ));
        let loaded = resolve(vec![f]).expect("valid");
        assert_eq!(
            loaded.config.database_url,
            "postgres://app:s3cret@db:5432/ledgerport"
        );
        assert_eq!(
            loaded.sources["database_url"],
            format!(
                "file {} (named by config file /etc/ledgerport.toml)",
                secret.display()
            )
        );
        let e = env(&[(
            "LEDGERPORT_DATABASE_URL_FILE",
            secret.to_str().expect("utf-8"),
        )]);
        let from_env = resolve(vec![e]).expect("valid");
        assert_eq!(
            from_env.config.database_url,
            "postgres://app:s3cret@db:5432/ledgerport"
        );
        // A later layer's URL still wins over an earlier layer's file.
        let url = env(&[("LEDGERPORT_DATABASE_URL", "sqlite::memory:")]);
        let f = file(&format!(
            "database_url_file = {:?}\n",
            secret.display().to_string()
        ));
        assert_eq!(
            resolve(vec![f, url]).expect("valid").config.database_url,
            "sqlite::memory:"
        );
    }

    #[test]
    fn naming_both_the_database_url_and_its_file_in_one_layer_is_refused() {
        let both = env(&[
            ("LEDGERPORT_DATABASE_URL", "sqlite::memory:"),
            ("LEDGERPORT_DATABASE_URL_FILE", "/run/secrets/db"),
        ]);
        assert_eq!(
            resolve(vec![both]).expect_err("refused").to_string(),
            "LEDGERPORT_DATABASE_URL and LEDGERPORT_DATABASE_URL_FILE are both set; give the \
             database URL or the file holding it, not both"
        );
        let f = file("database_url = \"sqlite::memory:\"\ndatabase_url_file = \"/x\"\n");
        assert_eq!(
            resolve(vec![f]).expect_err("refused").to_string(),
            "/etc/ledgerport.toml: database_url and database_url_file are both set; give the \
             database URL or the file holding it, not both"
        );
        let missing = file("database_url_file = \"/nonexistent/ledgerport-db-url\"\n");
        let message = resolve(vec![missing]).expect_err("refused").to_string();
        assert!(
            message.starts_with(
                "`database_url_file` in /etc/ledgerport.toml: cannot read \
                 /nonexistent/ledgerport-db-url: "
            ),
            "{message}"
        );
        let empty = temp_file("empty-db-url", "\n");
        let message = resolve(vec![file(&format!(
            "database_url_file = {:?}\n",
            empty.display().to_string()
        ))])
        .expect_err("refused")
        .to_string();
        assert_eq!(
            message,
            format!(
                "`database_url_file` in /etc/ledgerport.toml: {} is empty; expected it to hold \
                 the database URL",
                empty.display()
            )
        );
    }

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        for (url, shown) in [
            ("sqlite://ledgerport.db", "sqlite://ledgerport.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            (
                "sqlite:///var/lib/lp/db.sqlite",
                "sqlite:///var/lib/lp/db.sqlite",
            ),
            (
                "postgres://app:s3cret@db:5432/ledgerport",
                "postgres://app:***@db:5432/ledgerport",
            ),
            (
                "postgres://app@db/ledgerport",
                "postgres://app@db/ledgerport",
            ),
            (
                "postgres://app:p@ss:w@rd@db/lp?sslmode=require",
                "postgres://app:***@db/lp?sslmode=require",
            ),
            (
                "postgres://db/lp?user=app&password=s3cret",
                "postgres://db/lp?user=app&password=***",
            ),
        ] {
            assert_eq!(redact_database_url(url), shown, "{url}");
        }
        let loaded = resolve(vec![file(
            "database_url = \"postgres://app:s3cret@db:5432/ledgerport\"\n",
        )])
        .expect("valid");
        assert!(!loaded.to_toml().contains("s3cret"));
        assert!(!format!("{:?}", loaded.config).contains("s3cret"));
    }

    #[test]
    fn the_printed_configuration_is_a_config_file_that_gives_the_same_configuration() {
        let f = file("[server]\nlisten = \"127.0.0.1:9001\"\n[limits]\ntoken_per_second = 2.5\n");
        let e = env(&[("LEDGERPORT_LOG_FORMAT", "json")]);
        let loaded = resolve(vec![f, e]).expect("valid");
        let printed = loaded.to_toml();
        assert!(
            printed.contains("listen = \"127.0.0.1:9001\" # config file /etc/ledgerport.toml\n"),
            "{printed}"
        );
        assert!(
            printed.contains("format = \"json\" # env LEDGERPORT_LOG_FORMAT\n"),
            "{printed}"
        );
        assert!(
            printed.contains("report_burst = 200 # default\n"),
            "{printed}"
        );
        let again = resolve(vec![file(&printed)]).expect("printed output is a valid file");
        assert_eq!(again.config, loaded.config);
    }

    #[test]
    fn every_flag_says_its_environment_variable_and_config_key() {
        use clap::CommandFactory;
        let cli = crate::Cli::command();
        let serve = cli.find_subcommand("serve").expect("serve");
        for k in KEYS {
            let long = k.flag.trim_start_matches("--");
            let arg = cli
                .get_arguments()
                .chain(serve.get_arguments())
                .find(|a| a.get_long() == Some(long))
                .unwrap_or_else(|| panic!("no flag {}", k.flag));
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                help.contains(&format!("[env: {}]", k.env)),
                "{}: {help}",
                k.flag
            );
            assert!(
                help.contains(&format!("[config: {}]", k.name)),
                "{}: {help}",
                k.flag
            );
        }
    }

    #[test]
    fn configuration_md_documents_every_key_with_its_env_var_and_flag() {
        let doc = include_str!("../../../CONFIGURATION.md");
        for k in KEYS {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", k.name)))
                .unwrap_or_else(|| panic!("CONFIGURATION.md has no row for `{}`", k.name));
            assert!(row.contains(&format!("`{}`", k.env)), "{row}");
            assert!(row.contains(&format!("`{}`", k.flag)), "{row}");
        }
        assert!(doc.contains(CONFIG_ENV));
    }

    #[test]
    fn the_signing_key_encryption_key_comes_from_a_file_or_the_environment_and_is_never_printed() {
        let kek = temp_file("kek", &format!("{KEK_A}\n"));
        let f = file(&format!(
            "signing_key_encryption_key_file = {:?}\n",
            kek.display().to_string()
        ));
        let e = env(&[("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_PREVIOUS", KEK_B)]);
        let loaded = resolve(vec![f, e]).expect("valid");
        let protection = loaded.config.signing_keys().expect("encrypted");
        let expected = SigningKeyProtection::Encrypted {
            current: KeyEncryptionKey::from_base64(KEK_A).expect("key"),
            previous: vec![KeyEncryptionKey::from_base64(KEK_B).expect("key")],
        };
        assert_eq!(protection, expected);
        assert_eq!(
            loaded.config.required_signing_keys().expect("configured"),
            expected
        );
        assert_eq!(
            loaded.sources["signing_key_encryption_key"],
            format!(
                "file {} (named by config file /etc/ledgerport.toml)",
                kek.display()
            )
        );
        let printed = loaded.to_toml();
        assert!(
            !printed.contains(KEK_A) && !printed.contains(KEK_B),
            "{printed}"
        );
        assert!(
            printed.contains("# signing_key_encryption_key_previous: set, not shown # env"),
            "{printed}"
        );
        assert!(!format!("{:?}", loaded.config).contains(KEK_A));
        resolve(vec![file(&printed)]).expect("printed output is a valid file");
    }

    #[test]
    fn a_bad_signing_key_encryption_key_is_refused_without_echoing_it() {
        let short = "c2hvcnQ=";
        let message = resolve(vec![env(&[(
            "LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY",
            short,
        )])])
        .expect_err("refused")
        .to_string();
        assert_eq!(
            message,
            "LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY (config key `signing_key_encryption_key`): \
             expected 32 bytes in base64 (make one with `head -c 32 /dev/urandom | base64`), got \
             another value"
        );
        let bad = temp_file("bad-kek", "not a key\n");
        let message = resolve(vec![file(&format!(
            "signing_key_encryption_key_file = {:?}\n",
            bad.display().to_string()
        ))])
        .expect_err("refused")
        .to_string();
        assert!(!message.contains("not a key"), "{message}");
        assert!(
            message.starts_with("`signing_key_encryption_key_file` in /etc/ledgerport.toml: "),
            "{message}"
        );
        let both = env(&[
            ("LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY", KEK_A),
            (
                "LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_FILE",
                "/run/secrets/kek",
            ),
        ]);
        assert_eq!(
            resolve(vec![both]).expect_err("refused").to_string(),
            "LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY and LEDGERPORT_SIGNING_KEY_ENCRYPTION_KEY_FILE \
             are both set; give the signing key encryption key or the file holding it, not both"
        );
    }

    #[test]
    fn without_an_encryption_key_signing_keys_are_refused_unless_plaintext_is_allowed() {
        let none = resolve(vec![]).expect("valid").config;
        assert_eq!(none.signing_keys(), None);
        let message = none
            .required_signing_keys()
            .expect_err("refused")
            .to_string();
        assert!(message.contains("signing_key_encryption_key"), "{message}");
        let flags = Layer::from_flags(
            &GlobalArgs {
                insecure_plaintext_signing_keys: true,
                ..GlobalArgs::default()
            },
            None,
        );
        let insecure = resolve(vec![flags]).expect("valid");
        assert_eq!(
            insecure.config.required_signing_keys().expect("allowed"),
            SigningKeyProtection::Plaintext
        );
        assert_eq!(
            insecure.sources["insecure_plaintext_signing_keys"],
            "flag --insecure-plaintext-signing-keys"
        );
    }

    #[test]
    fn the_metrics_listener_is_on_loopback_by_default_and_can_be_turned_off() {
        let d = resolve(vec![]).expect("valid").config;
        assert_eq!(
            d.metrics_listen(),
            Some("127.0.0.1:9464".parse().expect("addr"))
        );
        for off in ["off", ""] {
            let f = file(&format!("[server]\nmetrics_listen = {off:?}\n"));
            assert_eq!(
                resolve(vec![f]).expect("valid").config.metrics_listen(),
                None
            );
        }
        assert_eq!(
            resolve(vec![env(&[("LEDGERPORT_METRICS_LISTEN", "9464")])])
                .expect_err("refused")
                .to_string(),
            "LEDGERPORT_METRICS_LISTEN (config key `server.metrics_listen`): expected a socket \
             address such as `127.0.0.1:9464`, or `off`, got \"9464\""
        );
    }
}
