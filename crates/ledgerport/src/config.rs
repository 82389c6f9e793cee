//! The binary's one typed configuration.
//!
//! Layers, later wins: built-in defaults -> a TOML file (`--config FILE` / `LEDGERPORT_CONFIG`)
//! -> environment variables (`LEDGERPORT_*`) -> command-line flags. Every layer is parsed into a
//! [`Layer`] (all keys optional) and checked on its own, so a bad value is refused even when a
//! later layer overrides it, and every message names the key (`limits.token_burst`), where it
//! came from (file, env var, flag) and what is expected. [`KEYS`] lists every key once; the
//! flags' help texts, the error messages and `CONFIGURATION.md` all follow it.
//!
//! The database URL may carry a password, so it can also be read from a file
//! (`database_url_file` / `LEDGERPORT_DATABASE_URL_FILE` / `--database-url-file`); naming both
//! the URL and the file in one layer is an error. `config print` redacts the password.

use ledgerport_server::{LimitsConfig, ServerConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// One configuration key: its dotted name, environment variable, flag and what it accepts.
pub struct Key {
    /// `section.key`, or `key` at the top level.
    pub name: &'static str,
    pub env: &'static str,
    pub flag: &'static str,
    /// What a valid value looks like, for error messages.
    pub expected: &'static str,
}

/// Every key, in the order `config print` shows them.
pub const KEYS: &[Key] = &[
    Key {
        name: "database_url",
        env: "LEDGERPORT_DATABASE_URL",
        flag: "--database-url",
        expected: "a database URL such as `sqlite://ledgerport.db`, `sqlite::memory:` or `postgres://user@host/db`",
    },
    Key {
        name: "database_url_file",
        env: "LEDGERPORT_DATABASE_URL_FILE",
        flag: "--database-url-file",
        expected: "the path of a readable file holding the database URL",
    },
    Key {
        name: "log.level",
        env: "LEDGERPORT_LOG",
        flag: "--log",
        expected: "a log filter such as `info` or `warn,ledgerport_server=debug`",
    },
    Key {
        name: "log.format",
        env: "LEDGERPORT_LOG_FORMAT",
        flag: "--log-format",
        expected: "`pretty` or `json`",
    },
    Key {
        name: "server.listen",
        env: "LEDGERPORT_LISTEN",
        flag: "--listen",
        expected: "a socket address such as `127.0.0.1:8080` or `[::]:8080`",
    },
    Key {
        name: "server.issuer",
        env: "LEDGERPORT_ISSUER",
        flag: "--issuer",
        expected: "a non-empty string",
    },
    Key {
        name: "server.audience",
        env: "LEDGERPORT_AUDIENCE",
        flag: "--audience",
        expected: "a non-empty string",
    },
    Key {
        name: "server.standard_token_lifetime_secs",
        env: "LEDGERPORT_STANDARD_TOKEN_LIFETIME",
        flag: "--standard-token-lifetime",
        expected: "a whole number of seconds greater than 0",
    },
    Key {
        name: "server.miami_token_lifetime_secs",
        env: "LEDGERPORT_MIAMI_TOKEN_LIFETIME",
        flag: "--miami-token-lifetime",
        expected: "a whole number of seconds greater than 0",
    },
    Key {
        name: "server.request_timeout_secs",
        env: "LEDGERPORT_REQUEST_TIMEOUT",
        flag: "--request-timeout",
        expected: "a whole number of seconds greater than 0",
    },
    Key {
        name: "server.close_interval_secs",
        env: "LEDGERPORT_CLOSE_INTERVAL",
        flag: "--close-interval",
        expected: "a whole number of seconds (0 turns the closing task off)",
    },
    Key {
        name: "server.ledger_list_page_size",
        env: "LEDGERPORT_LEDGER_LIST_PAGE_SIZE",
        flag: "--ledger-list-page-size",
        expected: "a whole number from 1 to 10000",
    },
    Key {
        name: "limits.enabled",
        env: "LEDGERPORT_LIMITS_ENABLED",
        flag: "--limits-enabled",
        expected: "`true` or `false`",
    },
    Key {
        name: "limits.token_per_second",
        env: "LEDGERPORT_LIMITS_TOKEN_PER_SECOND",
        flag: "--limits-token-per-second",
        expected: "a number of requests per second greater than 0",
    },
    Key {
        name: "limits.token_burst",
        env: "LEDGERPORT_LIMITS_TOKEN_BURST",
        flag: "--limits-token-burst",
        expected: "a whole number of requests from 1 to 4294967295",
    },
    Key {
        name: "limits.report_per_second",
        env: "LEDGERPORT_LIMITS_REPORT_PER_SECOND",
        flag: "--limits-report-per-second",
        expected: "a number of requests per second greater than 0",
    },
    Key {
        name: "limits.report_burst",
        env: "LEDGERPORT_LIMITS_REPORT_BURST",
        flag: "--limits-report-burst",
        expected: "a whole number of requests from 1 to 4294967295",
    },
    Key {
        name: "limits.failed_token_slowdown_after",
        env: "LEDGERPORT_LIMITS_FAILED_TOKEN_SLOWDOWN_AFTER",
        flag: "--limits-failed-token-slowdown-after",
        expected: "a whole number of failed requests from 0 to 4294967295",
    },
];

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "LEDGERPORT_CONFIG";

fn key(name: &str) -> &'static Key {
    KEYS.iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("`{name}` is not in KEYS"))
}

// ---------------------------------------------------------------------------------------------
// The effective configuration.

/// The effective configuration of the binary.
#[derive(Clone, PartialEq, Serialize)]
pub struct Config {
    pub database_url: String,
    pub log: LogSection,
    pub server: ServerSection,
    pub limits: LimitsSection,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogSection {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl FromStr for LogFormat {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerSection {
    pub listen: SocketAddr,
    pub issuer: String,
    pub audience: String,
    pub standard_token_lifetime_secs: u64,
    pub miami_token_lifetime_secs: u64,
    pub request_timeout_secs: u64,
    pub close_interval_secs: u64,
    pub ledger_list_page_size: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitsSection {
    pub enabled: bool,
    pub token_per_second: f64,
    pub token_burst: u32,
    pub report_per_second: f64,
    pub report_burst: u32,
    pub failed_token_slowdown_after: u32,
}

impl Default for Config {
    fn default() -> Self {
        let server = ServerConfig::default();
        let limits = LimitsConfig::default();
        Config {
            database_url: "sqlite://ledgerport.db".into(),
            log: LogSection {
                level: "info".into(),
                format: LogFormat::Pretty,
            },
            server: ServerSection {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                issuer: server.issuer,
                audience: server.audience,
                standard_token_lifetime_secs: server.standard_token_lifetime.as_secs(),
                miami_token_lifetime_secs: server.miami_token_lifetime.as_secs(),
                request_timeout_secs: server.request_timeout.as_secs(),
                close_interval_secs: server.close_interval.map_or(0, |d| d.as_secs()),
                ledger_list_page_size: server.ledger_list_page_size,
            },
            limits: LimitsSection {
                enabled: limits.enabled,
                token_per_second: limits.token_per_second,
                token_burst: limits.token_burst,
                report_per_second: limits.report_per_second,
                report_burst: limits.report_burst,
                failed_token_slowdown_after: limits.failed_token_slowdown_after,
            },
        }
    }
}

/// `Debug` without the database password.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_database_url(&self.database_url))
            .field("log", &self.log)
            .field("server", &self.server)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Config {
    /// The settings of the HTTP layer.
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
            limits: LimitsConfig {
                enabled: l.enabled,
                token_per_second: l.token_per_second,
                token_burst: l.token_burst,
                report_per_second: l.report_per_second,
                report_burst: l.report_burst,
                failed_token_slowdown_after: l.failed_token_slowdown_after,
                ..LimitsConfig::default()
            },
            ..ServerConfig::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Layers.

/// One layer of configuration: every key optional. The TOML file's schema.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub database_url: Option<String>,
    pub database_url_file: Option<PathBuf>,
    #[serde(default)]
    pub log: LogLayer,
    #[serde(default)]
    pub server: ServerLayer,
    #[serde(default)]
    pub limits: LimitsLayer,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLayer {
    pub level: Option<String>,
    pub format: Option<LogFormat>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerLayer {
    pub listen: Option<SocketAddr>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub standard_token_lifetime_secs: Option<u64>,
    pub miami_token_lifetime_secs: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    pub close_interval_secs: Option<u64>,
    pub ledger_list_page_size: Option<u32>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsLayer {
    pub enabled: Option<bool>,
    pub token_per_second: Option<f64>,
    pub token_burst: Option<u32>,
    pub report_per_second: Option<f64>,
    pub report_burst: Option<u32>,
    pub failed_token_slowdown_after: Option<u32>,
}

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
        let k = key(key_name);
        match self {
            Source::File(path) => format!("`{key_name}` in {}", path.display()),
            Source::Env => format!("{} (config key `{key_name}`)", k.env),
            Source::Flag => format!("{} (config key `{key_name}`)", k.flag),
        }
    }

    /// Where a value came from, for `config print`.
    fn describe(&self, key_name: &str) -> String {
        let k = key(key_name);
        match self {
            Source::File(path) => format!("config file {}", path.display()),
            Source::Env => format!("env {}", k.env),
            Source::Flag => format!("flag {}", k.flag),
        }
    }
}

fn bad(source: &Source, key_name: &str, got: impl fmt::Display) -> String {
    format!(
        "{}: expected {}, got {got}",
        source.name(key_name),
        key(key_name).expected
    )
}

impl Layer {
    /// Parses a TOML configuration file's text. Unknown keys and values of the wrong type are
    /// refused with the key's dotted name.
    pub fn from_toml(text: &str, path: &Path) -> Result<Layer, String> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| format!("{}: not valid TOML: {}", path.display(), e.message()))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let source = Source::File(path.to_path_buf());
            let mut name = e.path().to_string();
            let message = e.inner().message().to_string();
            if let Some(rest) = message.strip_prefix("unknown field `") {
                let field = rest.split('`').next().unwrap_or_default();
                if !(name == field || name.ends_with(&format!(".{field}"))) {
                    name = if name == "." || name.is_empty() {
                        field.to_string()
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
                    expected.push_str(", [log], [server], [limits]");
                }
                return format!(
                    "{}: unknown key `{name}`; expected one of: {expected}",
                    path.display()
                );
            }
            if KEYS.iter().any(|k| k.name == name) {
                format!("{} ({message})", bad_prefix(&source, &name))
            } else {
                format!(
                    "{}: `{name}`: expected a [{name}] table ({message})",
                    path.display()
                )
            }
        })
    }

    /// Reads a layer from environment variables through `get` (empty values count as unset).
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Layer, String> {
        fn var(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
            get(key(name).env).filter(|v| !v.is_empty())
        }
        fn parsed<T: FromStr>(
            get: &dyn Fn(&str) -> Option<String>,
            name: &str,
        ) -> Result<Option<T>, String> {
            match var(get, name) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| bad(&Source::Env, name, format!("{v:?}"))),
            }
        }
        Ok(Layer {
            database_url: var(get, "database_url"),
            database_url_file: var(get, "database_url_file").map(PathBuf::from),
            log: LogLayer {
                level: var(get, "log.level"),
                format: parsed(get, "log.format")?,
            },
            server: ServerLayer {
                listen: parsed(get, "server.listen")?,
                issuer: var(get, "server.issuer"),
                audience: var(get, "server.audience"),
                standard_token_lifetime_secs: parsed(get, "server.standard_token_lifetime_secs")?,
                miami_token_lifetime_secs: parsed(get, "server.miami_token_lifetime_secs")?,
                request_timeout_secs: parsed(get, "server.request_timeout_secs")?,
                close_interval_secs: parsed(get, "server.close_interval_secs")?,
                ledger_list_page_size: parsed(get, "server.ledger_list_page_size")?,
            },
            limits: LimitsLayer {
                enabled: parsed(get, "limits.enabled")?,
                token_per_second: parsed(get, "limits.token_per_second")?,
                token_burst: parsed(get, "limits.token_burst")?,
                report_per_second: parsed(get, "limits.report_per_second")?,
                report_burst: parsed(get, "limits.report_burst")?,
                failed_token_slowdown_after: parsed(get, "limits.failed_token_slowdown_after")?,
            },
        })
    }

    /// The layer of command-line flags; `serve` is absent for commands without server flags.
    pub fn from_flags(global: &GlobalArgs, serve: Option<&ServeArgs>) -> Layer {
        let mut layer = Layer {
            database_url: global.database_url.clone(),
            database_url_file: global.database_url_file.clone(),
            log: LogLayer {
                level: global.log.clone(),
                format: global.log_format,
            },
            ..Layer::default()
        };
        if let Some(s) = serve {
            layer.server = ServerLayer {
                listen: s.listen,
                issuer: s.issuer.clone(),
                audience: s.audience.clone(),
                standard_token_lifetime_secs: s.standard_token_lifetime,
                miami_token_lifetime_secs: s.miami_token_lifetime,
                request_timeout_secs: s.request_timeout,
                close_interval_secs: s.close_interval,
                ledger_list_page_size: s.ledger_list_page_size,
            };
            layer.limits = LimitsLayer {
                enabled: s.limits_enabled,
                token_per_second: s.limits_token_per_second,
                token_burst: s.limits_token_burst,
                report_per_second: s.limits_report_per_second,
                report_burst: s.limits_report_burst,
                failed_token_slowdown_after: s.limits_failed_token_slowdown_after,
            };
        }
        layer
    }

    /// Checks the values this layer sets: ranges, and the URL and its file not both named.
    fn check(&self, source: &Source) -> Result<(), String> {
        if self.database_url.is_some() && self.database_url_file.is_some() {
            let (a, b) = match source {
                Source::Env => (key("database_url").env, key("database_url_file").env),
                Source::Flag => (key("database_url").flag, key("database_url_file").flag),
                _ => ("database_url", "database_url_file"),
            };
            let place = match source {
                Source::File(p) => format!("{}: ", p.display()),
                _ => String::new(),
            };
            return Err(format!(
                "{place}{a} and {b} are both set; give the database URL or the file holding it, not both"
            ));
        }
        if let Some(v) = &self.database_url
            && v.trim().is_empty()
        {
            return Err(bad(source, "database_url", "an empty string"));
        }
        if let Some(v) = &self.log.level
            && tracing_subscriber::EnvFilter::try_new(v).is_err()
        {
            return Err(bad(source, "log.level", format!("{v:?}")));
        }
        for (name, v) in [
            ("server.issuer", &self.server.issuer),
            ("server.audience", &self.server.audience),
        ] {
            if v.as_ref().is_some_and(|v| v.trim().is_empty()) {
                return Err(bad(source, name, "an empty string"));
            }
        }
        for (name, v) in [
            (
                "server.standard_token_lifetime_secs",
                self.server.standard_token_lifetime_secs,
            ),
            (
                "server.miami_token_lifetime_secs",
                self.server.miami_token_lifetime_secs,
            ),
            (
                "server.request_timeout_secs",
                self.server.request_timeout_secs,
            ),
        ] {
            if v == Some(0) {
                return Err(bad(source, name, 0));
            }
        }
        if let Some(v) = self.server.ledger_list_page_size
            && !(1..=10_000).contains(&v)
        {
            return Err(bad(source, "server.ledger_list_page_size", v));
        }
        for (name, v) in [
            ("limits.token_per_second", self.limits.token_per_second),
            ("limits.report_per_second", self.limits.report_per_second),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(bad(source, name, v));
            }
        }
        for (name, v) in [
            ("limits.token_burst", self.limits.token_burst),
            ("limits.report_burst", self.limits.report_burst),
        ] {
            if v == Some(0) {
                return Err(bad(source, name, 0));
            }
        }
        Ok(())
    }
}

fn bad_prefix(source: &Source, key_name: &str) -> String {
    format!(
        "{}: expected {}",
        source.name(key_name),
        key(key_name).expected
    )
}

/// The effective configuration and where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Key name -> where its value came from (`default`, `config file PATH`, `env NAME`, ...).
    pub sources: BTreeMap<&'static str, String>,
    pub file: Option<PathBuf>,
}

/// Reads the file a `database_url_file` key names; the trailing newline is not part of the URL.
fn read_url_file(path: &Path, source: &Source) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: cannot read {}: {e}",
            source.name("database_url_file"),
            path.display()
        )
    })?;
    let url = text.trim_end_matches(['\n', '\r']);
    if url.trim().is_empty() {
        return Err(format!(
            "{}: {} is empty; expected it to hold the database URL",
            source.name("database_url_file"),
            path.display()
        ));
    }
    Ok(url.to_string())
}

/// Applies the layers in order (later wins) over the built-in defaults. Each layer is checked
/// before it is applied.
pub fn resolve(layers: &[(Source, Layer)]) -> Result<Loaded, String> {
    let mut config = Config::default();
    let mut sources: BTreeMap<&'static str, String> = KEYS
        .iter()
        .filter(|k| k.name != "database_url_file")
        .map(|k| (k.name, "default".to_string()))
        .collect();
    let mut file = None;
    for (source, layer) in layers {
        layer.check(source)?;
        if let Source::File(p) = source {
            file = Some(p.clone());
        }
        macro_rules! take {
            ($name:literal, $dst:expr, $src:expr) => {
                if let Some(v) = &$src {
                    $dst = v.clone();
                    sources.insert($name, source.describe($name));
                }
            };
        }
        take!("database_url", config.database_url, layer.database_url);
        if let Some(path) = &layer.database_url_file {
            config.database_url = read_url_file(path, source)?;
            sources.insert(
                "database_url",
                format!(
                    "file {} (named by {})",
                    path.display(),
                    source.describe("database_url_file")
                ),
            );
        }
        take!("log.level", config.log.level, layer.log.level);
        take!("log.format", config.log.format, layer.log.format);
        let (s, l) = (&layer.server, &layer.limits);
        take!("server.listen", config.server.listen, s.listen);
        take!("server.issuer", config.server.issuer, s.issuer);
        take!("server.audience", config.server.audience, s.audience);
        take!(
            "server.standard_token_lifetime_secs",
            config.server.standard_token_lifetime_secs,
            s.standard_token_lifetime_secs
        );
        take!(
            "server.miami_token_lifetime_secs",
            config.server.miami_token_lifetime_secs,
            s.miami_token_lifetime_secs
        );
        take!(
            "server.request_timeout_secs",
            config.server.request_timeout_secs,
            s.request_timeout_secs
        );
        take!(
            "server.close_interval_secs",
            config.server.close_interval_secs,
            s.close_interval_secs
        );
        take!(
            "server.ledger_list_page_size",
            config.server.ledger_list_page_size,
            s.ledger_list_page_size
        );
        take!("limits.enabled", config.limits.enabled, l.enabled);
        take!(
            "limits.token_per_second",
            config.limits.token_per_second,
            l.token_per_second
        );
        take!(
            "limits.token_burst",
            config.limits.token_burst,
            l.token_burst
        );
        take!(
            "limits.report_per_second",
            config.limits.report_per_second,
            l.report_per_second
        );
        take!(
            "limits.report_burst",
            config.limits.report_burst,
            l.report_burst
        );
        take!(
            "limits.failed_token_slowdown_after",
            config.limits.failed_token_slowdown_after,
            l.failed_token_slowdown_after
        );
    }
    Ok(Loaded {
        config,
        sources,
        file,
    })
}

/// Loads the configuration of this process: the file named by `--config` or
/// `LEDGERPORT_CONFIG` (if any), the process environment and the flags.
pub fn load(global: &GlobalArgs, serve: Option<&ServeArgs>) -> Result<Loaded, String> {
    let mut layers = Vec::new();
    if let Some(path) = &global.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        layers.push((Source::File(path.clone()), Layer::from_toml(&text, path)?));
    }
    layers.push((
        Source::Env,
        Layer::from_env(&|name| std::env::var(name).ok())?,
    ));
    layers.push((Source::Flag, Layer::from_flags(global, serve)));
    resolve(&layers)
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
    /// saying where it came from. The output is itself a valid configuration file.
    pub fn to_toml(&self) -> String {
        let mut redacted = self.config.clone();
        redacted.database_url = redact_database_url(&redacted.database_url);
        let table = toml::Table::try_from(&redacted).unwrap_or_default();
        let mut out = String::from("# Effective Ledgerport configuration (secrets redacted).\n");
        match &self.file {
            Some(p) => out.push_str(&format!("# Config file: {}\n", p.display())),
            None => out.push_str("# Config file: none\n"),
        }
        let mut section = "";
        for k in KEYS.iter().filter(|k| k.name != "database_url_file") {
            let (sec, field) = k.name.rsplit_once('.').unwrap_or(("", k.name));
            let value = if sec.is_empty() {
                table.get(field)
            } else {
                table
                    .get(sec)
                    .and_then(|t| t.as_table())
                    .and_then(|t| t.get(field))
            };
            if sec != section {
                out.push_str(&format!("\n[{sec}]\n"));
                section = sec;
            }
            let value = value.map(|v| v.to_string()).unwrap_or_default();
            let from = self.sources.get(k.name).map_or("default", String::as_str);
            out.push_str(&format!("{field} = {value} # {from}\n"));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Flags. No `default_value` or clap `env` here: defaults and the environment are layers of their
// own, so a flag given on the command line is the only thing clap reports.

/// Flags every command takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Configuration file (TOML); see CONFIGURATION.md.
    #[arg(long, global = true, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,

    /// Database to use: `sqlite://PATH` (created if missing), `sqlite::memory:` or `postgres://USER@HOST:PORT/DB`. [default: sqlite://ledgerport.db] [env: LEDGERPORT_DATABASE_URL] [config: database_url]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// File holding the database URL (for URLs with a password). [env: LEDGERPORT_DATABASE_URL_FILE] [config: database_url_file]
    #[arg(long, global = true, value_name = "FILE")]
    pub database_url_file: Option<PathBuf>,

    /// Log filter, e.g. `info` or `ledgerport_server=debug`. [default: info] [env: LEDGERPORT_LOG] [config: log.level]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,

    /// Log format: `pretty` for people, `json` for machines. [default: pretty] [env: LEDGERPORT_LOG_FORMAT] [config: log.format]
    #[arg(long, global = true, value_name = "FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    s.parse()
        .map_err(|()| "expected `pretty` or `json`".to_string())
}

/// Flags of the server (`serve`, `demo`, `config print`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on. [default: 127.0.0.1:8080] [env: LEDGERPORT_LISTEN] [config: server.listen]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// `iss` of issued tokens. [default: ledgerport] [env: LEDGERPORT_ISSUER] [config: server.issuer]
    #[arg(long)]
    pub issuer: Option<String>,
    /// `aud` of issued tokens. [default: ledgerport-report-api] [env: LEDGERPORT_AUDIENCE] [config: server.audience]
    #[arg(long)]
    pub audience: Option<String>,
    /// Lifetime of /accesstoken/get tokens, in seconds. [default: 86400] [env: LEDGERPORT_STANDARD_TOKEN_LIFETIME] [config: server.standard_token_lifetime_secs]
    #[arg(long, value_name = "SECS")]
    pub standard_token_lifetime: Option<u64>,
    /// Lifetime of /miami/v1/token tokens, in seconds. [default: 900] [env: LEDGERPORT_MIAMI_TOKEN_LIFETIME] [config: server.miami_token_lifetime_secs]
    #[arg(long, value_name = "SECS")]
    pub miami_token_lifetime: Option<u64>,
    /// Requests running longer than this many seconds are abandoned with a 500. [default: 30] [env: LEDGERPORT_REQUEST_TIMEOUT] [config: server.request_timeout_secs]
    #[arg(long, value_name = "SECS")]
    pub request_timeout: Option<u64>,
    /// Seconds between closing runs (due ledger dates closed, payouts scheduled); 0 turns the closing task off (then `admin close` or another server does it). [default: 10] [env: LEDGERPORT_CLOSE_INTERVAL] [config: server.close_interval_secs]
    #[arg(long, value_name = "SECS")]
    pub close_interval: Option<u64>,
    /// Ledgers per page of GET /settlement/v1/ledgers (1 to 10000). [default: 1000] [env: LEDGERPORT_LEDGER_LIST_PAGE_SIZE] [config: server.ledger_list_page_size]
    #[arg(long, value_name = "N")]
    pub ledger_list_page_size: Option<u32>,
    /// Rate limits on (`true`) or off (`false`). [default: true] [env: LEDGERPORT_LIMITS_ENABLED] [config: limits.enabled]
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub limits_enabled: Option<bool>,
    /// Sustained token requests per second per client id. [default: 20] [env: LEDGERPORT_LIMITS_TOKEN_PER_SECOND] [config: limits.token_per_second]
    #[arg(long, value_name = "RATE")]
    pub limits_token_per_second: Option<f64>,
    /// Token requests one client id may make at once. [default: 100] [env: LEDGERPORT_LIMITS_TOKEN_BURST] [config: limits.token_burst]
    #[arg(long, value_name = "N")]
    pub limits_token_burst: Option<u32>,
    /// Sustained Report API requests per second per principal. [default: 100] [env: LEDGERPORT_LIMITS_REPORT_PER_SECOND] [config: limits.report_per_second]
    #[arg(long, value_name = "RATE")]
    pub limits_report_per_second: Option<f64>,
    /// Report API requests one principal may make at once. [default: 200] [env: LEDGERPORT_LIMITS_REPORT_BURST] [config: limits.report_burst]
    #[arg(long, value_name = "N")]
    pub limits_report_burst: Option<u32>,
    /// Failed token requests per client id after which further attempts are slowed down. [default: 5] [env: LEDGERPORT_LIMITS_FAILED_TOKEN_SLOWDOWN_AFTER] [config: limits.failed_token_slowdown_after]
    #[arg(long, value_name = "N")]
    pub limits_failed_token_slowdown_after: Option<u32>,
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

    fn file(text: &str) -> (Source, Layer) {
        let path = PathBuf::from("/etc/ledgerport.toml");
        let layer = Layer::from_toml(text, &path).expect("valid file");
        (Source::File(path), layer)
    }

    fn file_error(text: &str) -> String {
        Layer::from_toml(text, Path::new("/etc/ledgerport.toml")).expect_err("refused")
    }

    fn env(vars: &[(&str, &str)]) -> Result<Layer, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Layer::from_env(&|name| vars.get(name).cloned())
    }

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
        ])
        .expect("valid env");
        let flags = Layer::from_flags(
            &GlobalArgs::default(),
            Some(&ServeArgs {
                limits_report_burst: Some(800),
                ..ServeArgs::default()
            }),
        );
        let loaded = resolve(&[f, (Source::Env, e), (Source::Flag, flags)]).expect("valid");
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
            resolve(&[f, (Source::Flag, flags)]).expect_err("refused"),
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
             database_url_file, [log], [server], [limits]"
        );
        assert_eq!(
            file_error("[sever]\nlisten = \"127.0.0.1:1\"\n"),
            "/etc/ledgerport.toml: unknown key `sever`; expected one of: database_url, \
             database_url_file, [log], [server], [limits]"
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
            assert_eq!(resolve(&[file(text)]).expect_err(text), message);
        }
        // The edges of the ranges are accepted; 0 turns the closing task off.
        let edges = resolve(&[file(
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
            env(&[("LEDGERPORT_LIMITS_TOKEN_BURST", "ten")]).expect_err("refused"),
            "LEDGERPORT_LIMITS_TOKEN_BURST (config key `limits.token_burst`): expected a whole \
             number of requests from 1 to 4294967295, got \"ten\""
        );
        assert_eq!(
            env(&[("LEDGERPORT_LISTEN", "8080")]).expect_err("refused"),
            "LEDGERPORT_LISTEN (config key `server.listen`): expected a socket address such as \
             `127.0.0.1:8080` or `[::]:8080`, got \"8080\""
        );
        assert_eq!(
            env(&[("LEDGERPORT_LIMITS_ENABLED", "yes")]).expect_err("refused"),
            "LEDGERPORT_LIMITS_ENABLED (config key `limits.enabled`): expected `true` or \
             `false`, got \"yes\""
        );
        let zero = env(&[("LEDGERPORT_REQUEST_TIMEOUT", "0")]).expect("parses");
        assert_eq!(
            resolve(&[(Source::Env, zero)]).expect_err("refused"),
            "LEDGERPORT_REQUEST_TIMEOUT (config key `server.request_timeout_secs`): expected a \
             whole number of seconds greater than 0, got 0"
        );
        // Empty variables count as unset.
        assert_eq!(
            env(&[("LEDGERPORT_LISTEN", "")]).expect("valid"),
            Layer::default()
        );
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
        ])
        .expect("valid");
        let c = resolve(&[(Source::Env, e)]).expect("valid").config;
        let expected = Config {
            database_url: "sqlite::memory:".into(),
            log: LogSection {
                level: "warn".into(),
                format: LogFormat::Json,
            },
            server: ServerSection {
                listen: "0.0.0.0:9000".parse().expect("addr"),
                issuer: "i".into(),
                audience: "a".into(),
                standard_token_lifetime_secs: 1,
                miami_token_lifetime_secs: 2,
                request_timeout_secs: 3,
                close_interval_secs: 4,
                ledger_list_page_size: 5,
            },
            limits: LimitsSection {
                enabled: false,
                token_per_second: 6.5,
                token_burst: 7,
                report_per_second: 8.0,
                report_burst: 9,
                failed_token_slowdown_after: 10,
            },
        };
        assert_eq!(c, expected);
    }

    #[test]
    fn the_database_url_can_come_from_a_file_without_its_trailing_newline() {
        let secret = temp_file("db-url", "postgres://app:s3cret@db:5432/ledgerport\n");
        let f = file(&format!(
            "database_url_file = {:?}\n",
            secret.display().to_string()
        ));
        let loaded = resolve(&[f]).expect("valid");
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
        )])
        .expect("valid");
        let from_env = resolve(&[(Source::Env, e)]).expect("valid");
        assert_eq!(
            from_env.config.database_url,
            "postgres://app:s3cret@db:5432/ledgerport"
        );
        // A later layer's URL still wins over an earlier layer's file.
        let url = env(&[("LEDGERPORT_DATABASE_URL", "sqlite::memory:")]).expect("valid");
        let f = file(&format!(
            "database_url_file = {:?}\n",
            secret.display().to_string()
        ));
        assert_eq!(
            resolve(&[f, (Source::Env, url)])
                .expect("valid")
                .config
                .database_url,
            "sqlite::memory:"
        );
    }

    #[test]
    fn naming_both_the_database_url_and_its_file_in_one_layer_is_refused() {
        let both = env(&[
            ("LEDGERPORT_DATABASE_URL", "sqlite::memory:"),
            ("LEDGERPORT_DATABASE_URL_FILE", "/run/secrets/db"),
        ])
        .expect("parses");
        assert_eq!(
            resolve(&[(Source::Env, both)]).expect_err("refused"),
            "LEDGERPORT_DATABASE_URL and LEDGERPORT_DATABASE_URL_FILE are both set; give the \
             database URL or the file holding it, not both"
        );
        let f = file("database_url = \"sqlite::memory:\"\ndatabase_url_file = \"/x\"\n");
        assert_eq!(
            resolve(&[f]).expect_err("refused"),
            "/etc/ledgerport.toml: database_url and database_url_file are both set; give the \
             database URL or the file holding it, not both"
        );
        let missing = file("database_url_file = \"/nonexistent/ledgerport-db-url\"\n");
        let message = resolve(&[missing]).expect_err("refused");
        assert!(
            message.starts_with(
                "`database_url_file` in /etc/ledgerport.toml: cannot read \
                 /nonexistent/ledgerport-db-url: "
            ),
            "{message}"
        );
        let empty = temp_file("empty-db-url", "\n");
        let message = resolve(&[file(&format!(
            "database_url_file = {:?}\n",
            empty.display().to_string()
        ))])
        .expect_err("refused");
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
        let loaded = resolve(&[file(
            "database_url = \"postgres://app:s3cret@db:5432/ledgerport\"\n",
        )])
        .expect("valid");
        assert!(!loaded.to_toml().contains("s3cret"));
        assert!(!format!("{:?}", loaded.config).contains("s3cret"));
    }

    #[test]
    fn the_printed_configuration_is_a_config_file_that_gives_the_same_configuration() {
        let f = file("[server]\nlisten = \"127.0.0.1:9001\"\n[limits]\ntoken_per_second = 2.5\n");
        let e = env(&[("LEDGERPORT_LOG_FORMAT", "json")]).expect("valid");
        let loaded = resolve(&[f, (Source::Env, e)]).expect("valid");
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
        let again = resolve(&[file(&printed)]).expect("printed output is a valid file");
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
}
