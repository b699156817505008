//! Settings: defaults, then an optional TOML file, then `ROUNDS_*` environment variables.
//!
//! Every key is flat, and the environment variable for a key is its name in capitals with
//! `ROUNDS_` in front (`base_url` ↔ `ROUNDS_BASE_URL`), so the README has one table.
//! Unknown keys and bad values are refused at start with a message naming the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};
use url::Url;

/// The environment variable that names the configuration file.
pub const CONFIG_ENV: &str = "ROUNDS_CONFIG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line, for log shippers.
    Json,
}

/// A string that must not appear in logs or debug output (it may hold a password).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Everything the server can be told. See the README for each key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `sqlite://path`, a bare path, or `postgres://...`. Empty: `rounds.db` in `data_dir`.
    pub database_url: Secret,
    /// Connections in the database pool.
    pub database_pool_size: u32,
    /// Address and port to listen on.
    pub bind: SocketAddr,
    /// The public URL of the server; links, feeds and federation ids are built from it.
    pub base_url: Url,
    /// Where the database (by default), uploaded media and outgoing mail files live.
    pub data_dir: PathBuf,
    /// The name of this instance, shown in the header and feeds.
    pub instance_name: String,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax, e.g. `info` or `rounds=debug,actix_web=info`.
    pub log_level: String,
    /// Largest accepted image upload, in bytes.
    pub upload_max_bytes: u64,
    /// Trust `X-Forwarded-For`/`Forwarded` for the client address (only behind a proxy).
    pub behind_proxy: bool,
    /// Sign-in attempts allowed per account and per client address in a 15-minute window.
    pub login_attempts_per_window: u32,
    /// HTTP worker threads; 0 means one per CPU core.
    pub http_workers: usize,
    /// Posts a page on blog home, tag and instance pages.
    pub page_size: u32,
    /// Where visitors get the source code of the version running here (AGPL section 13).
    pub source_url: Url,
    /// Outgoing mail server: `smtp://user:pass@host:587` (STARTTLS), `smtps://...:465`
    /// (TLS), `smtp://host:25?tls=none` (a local relay). Empty: write `.eml` files.
    pub smtp_url: Secret,
    /// The sender of every message, e.g. `Trust blogs <blogs@trust.nhs.uk>`. Empty:
    /// the instance name at `no-reply@` the base URL's host.
    pub mail_from: String,
    /// A PEM file of extra certificate authorities to trust for the SMTP server (a relay
    /// with a certificate from an internal CA). Empty: the system's roots only.
    pub smtp_ca_file: PathBuf,
    /// Messages sent per second by this node, at most; 0 means no limit.
    pub mail_rate_per_second: u32,
    /// Seconds before the first retry of a message the mail server deferred (4xx or a
    /// network error); each later retry waits twice as long, at most six hours.
    pub mail_retry_seconds: u64,
    /// Messages to one address that may end undelivered on 4xx replies before the
    /// address is suppressed like a hard bounce.
    pub mail_soft_bounce_limit: u32,
    /// DKIM private key (PEM: PKCS#1 or PKCS#8 RSA, or an Ed25519 key as base64). Empty:
    /// messages are not signed. Needs `dkim_selector` and `dkim_domain`.
    pub dkim_key_file: PathBuf,
    /// The DKIM selector: the key is published at `SELECTOR._domainkey.DOMAIN`.
    pub dkim_selector: String,
    /// The domain that signs (`d=`), usually the domain of `mail_from`.
    pub dkim_domain: String,
    /// Background jobs (deliveries, email) run at once by each node.
    pub job_workers: usize,
    /// Let federation reach private and loopback addresses (and accept http ids with
    /// ports there): for tests and closed networks only.
    pub federation_allow_private_addresses: bool,
    /// Seconds before the first retry of a delivery another server did not take (a
    /// network error, 5xx, 408, 429 or 401); each later retry waits twice as long, at
    /// most six hours, and never less than the server's `Retry-After`.
    pub federation_retry_seconds: u64,
    /// Seconds between the editor's autosaves while someone types.
    pub autosave_seconds: u64,
    /// Seconds between the editor's presence updates ("who else has this open").
    pub presence_seconds: u64,
    /// Hours an invitation link to a blog's team keeps working.
    pub invitation_hours: u64,
    /// Email domains subscribers may use, comma-separated (e.g. `nhs.net, nhs.uk`);
    /// a domain also admits its subdomains. Empty: any.
    pub newsletter_allowed_domains: String,
    /// Hours a subscription's confirmation link keeps working.
    pub newsletter_confirm_hours: u64,
    /// Subscribe requests allowed per client address and per email address in an hour.
    pub newsletter_requests_per_hour: u32,
    /// The time zone digests are sent in.
    pub newsletter_time_zone: String,
    /// When the daily digest goes out (`HH:MM`, in `newsletter_time_zone`).
    pub newsletter_daily_time: String,
    /// The weekday of the weekly digest (`monday` ... `sunday`).
    pub newsletter_weekly_day: String,
    /// When the weekly digest goes out (`HH:MM`).
    pub newsletter_weekly_time: String,
    /// Count opens and clicks per send (aggregate numbers only, never per person).
    pub newsletter_tracking: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: Secret::default(),
            database_pool_size: 8,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_url: Url::parse("http://localhost:8080").expect("a valid literal URL"),
            data_dir: PathBuf::from("data"),
            instance_name: "rounds".to_owned(),
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            upload_max_bytes: 10 * 1024 * 1024,
            behind_proxy: false,
            login_attempts_per_window: 10,
            http_workers: 0,
            page_size: 10,
            source_url: Url::parse(env!("CARGO_PKG_REPOSITORY")).expect("a valid package URL"),
            smtp_url: Secret::default(),
            mail_from: String::new(),
            smtp_ca_file: PathBuf::new(),
            mail_rate_per_second: 0,
            mail_retry_seconds: 30,
            mail_soft_bounce_limit: 3,
            dkim_key_file: PathBuf::new(),
            dkim_selector: String::new(),
            dkim_domain: String::new(),
            job_workers: 32,
            federation_allow_private_addresses: false,
            federation_retry_seconds: 30,
            autosave_seconds: 5,
            presence_seconds: 10,
            invitation_hours: 72,
            newsletter_allowed_domains: String::new(),
            newsletter_confirm_hours: 48,
            newsletter_requests_per_hour: 10,
            newsletter_time_zone: "Europe/London".to_owned(),
            newsletter_daily_time: "07:30".to_owned(),
            newsletter_weekly_day: "monday".to_owned(),
            newsletter_weekly_time: "07:30".to_owned(),
            newsletter_tracking: false,
        }
    }
}

/// A configuration that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named configuration file does not exist or cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key is unknown or a value has the wrong form.
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Reads settings from the defaults, the file (if any) and `ROUNDS_*` variables of
    /// the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(config_file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (so tests need no globals).
    pub fn load_from(
        config_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = config_file {
            // figment skips a missing file silently; a named file that is not there is an error.
            std::fs::metadata(path).map_err(|source| ConfigError::File {
                path: path.to_owned(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        for (var, value) in env {
            if let Some(name) = var.strip_prefix("ROUNDS_")
                && var != CONFIG_ENV
            {
                figment = figment.merge(EnvSetting {
                    key: name.to_ascii_lowercase(),
                    var,
                    value,
                });
            }
        }
        let settings: Settings = figment
            .extract_lossy()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: &str| Err(ConfigError::Invalid(format!("{key}: {why}")));
        if !matches!(self.base_url.scheme(), "http" | "https") {
            return invalid("base_url", "must be an http:// or https:// URL");
        }
        if self.base_url.host_str().is_none() {
            return invalid("base_url", "must name a host");
        }
        if self.base_url.path() != "/" || self.base_url.query().is_some() {
            return invalid(
                "base_url",
                "must be the root of a host (no path); rounds serves from /",
            );
        }
        if self.database_pool_size == 0 {
            return invalid("database_pool_size", "must be at least 1");
        }
        if self.upload_max_bytes < 1024 {
            return invalid("upload_max_bytes", "must be at least 1024");
        }
        if self.login_attempts_per_window == 0 {
            return invalid("login_attempts_per_window", "must be at least 1");
        }
        if !(1..=100).contains(&self.page_size) {
            return invalid("page_size", "must be between 1 and 100");
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return invalid("log_level", &e.to_string());
        }
        let smtp = self.smtp_url.expose();
        if !(smtp.is_empty() || smtp.starts_with("smtp://") || smtp.starts_with("smtps://")) {
            return invalid("smtp_url", "must start with smtp:// or smtps://");
        }
        if !self.mail_from.is_empty() && self.mail_from.parse::<lettre::message::Mailbox>().is_err()
        {
            return invalid(
                "mail_from",
                "must be an address like `Trust blogs <blogs@trust.nhs.uk>`",
            );
        }
        if !(1..=21_600).contains(&self.mail_retry_seconds) {
            return invalid(
                "mail_retry_seconds",
                "must be between 1 and 21600 (six hours)",
            );
        }
        if !(1..=21_600).contains(&self.federation_retry_seconds) {
            return invalid(
                "federation_retry_seconds",
                "must be between 1 and 21600 (six hours)",
            );
        }
        if !(1..=100).contains(&self.mail_soft_bounce_limit) {
            return invalid("mail_soft_bounce_limit", "must be between 1 and 100");
        }
        let dkim_key = !self.dkim_key_file.as_os_str().is_empty();
        if dkim_key || !self.dkim_selector.is_empty() || !self.dkim_domain.is_empty() {
            if !dkim_key {
                return invalid(
                    "dkim_key_file",
                    "must be set with dkim_selector and dkim_domain",
                );
            }
            if !is_dns_label_list(&self.dkim_selector) {
                return invalid(
                    "dkim_selector",
                    "must be set with dkim_key_file: letters, digits, hyphens and dots, like `rounds2026`",
                );
            }
            if !is_dns_label_list(&self.dkim_domain) || !self.dkim_domain.contains('.') {
                return invalid(
                    "dkim_domain",
                    "must be set with dkim_key_file: a domain name, like `trust.nhs.uk`",
                );
            }
        }
        if !(1..=1000).contains(&self.job_workers) {
            return invalid("job_workers", "must be between 1 and 1000");
        }
        if !(1..=300).contains(&self.autosave_seconds) {
            return invalid("autosave_seconds", "must be between 1 and 300");
        }
        if !(1..=300).contains(&self.presence_seconds) {
            return invalid("presence_seconds", "must be between 1 and 300");
        }
        if !(1..=24 * 30).contains(&self.invitation_hours) {
            return invalid("invitation_hours", "must be between 1 and 720 (30 days)");
        }
        if let Err(e) = crate::newsletter::digest::Schedule::from_settings(self) {
            return Err(ConfigError::Invalid(e));
        }
        if !(1..=24 * 30).contains(&self.newsletter_confirm_hours) {
            return invalid(
                "newsletter_confirm_hours",
                "must be between 1 and 720 (30 days)",
            );
        }
        if self.newsletter_requests_per_hour == 0 {
            return invalid("newsletter_requests_per_hour", "must be at least 1");
        }
        let db = self.database_url.expose();
        if !db.is_empty() && crate::db::Backend::from_url(db).is_none() {
            return invalid(
                "database_url",
                "must start with sqlite:// or postgres:// (or be a path to a SQLite file)",
            );
        }
        Ok(())
    }

    /// The database URL in effect: the configured one, or `rounds.db` in the data dir.
    pub fn effective_database_url(&self) -> String {
        let url = self.database_url.expose();
        if url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("rounds.db").display())
        } else {
            url.to_owned()
        }
    }

    /// The host (and port, if not the default) that names this server in handles and ids.
    pub fn domain(&self) -> String {
        let host = self.base_url.host_str().unwrap_or("localhost");
        match self.base_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// An absolute URL for a path on this server.
    pub fn url(&self, path: &str) -> String {
        let base = self.base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// Whether cookies must be marked `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.base_url.scheme() == "https"
    }

    /// The email domains subscribers may use (lower case); empty allows any.
    pub fn newsletter_domains(&self) -> Vec<String> {
        self.newsletter_allowed_domains
            .split(',')
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect()
    }

    /// Where uploaded media files are stored.
    pub fn media_dir(&self) -> PathBuf {
        self.data_dir.join("media")
    }
}

/// Whether `name` is dot-separated DNS labels (letters, digits and inner hyphens).
fn is_dns_label_list(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// One `ROUNDS_*` variable, as a provider so errors can name the variable.
struct EnvSetting {
    var: String,
    key: String,
    value: String,
}

impl Provider for EnvSetting {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.var))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        // Kept as a string: `extract_lossy` reads "8" as a number or "true" as a boolean
        // only where the key wants one, so a name like "2026" stays a name.
        let mut dict = Dict::new();
        dict.insert(self.key.clone(), Value::from(self.value.clone()));
        Ok(Profile::Default.collect(dict))
    }
}

/// Turns figment's error into one line that names the key and where its value came from.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let source = match &e.metadata {
                Some(meta) => match &meta.source {
                    Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
                    _ if meta.name.starts_with("environment") => format!(" (from {})", meta.name),
                    _ => String::new(),
                },
                None => String::new(),
            };
            match &e.kind {
                figment::error::Kind::UnknownField(name, _) => {
                    format!("configuration: unknown key `{name}`{source}")
                }
                kind => {
                    let key = e.path.join(".");
                    format!("configuration key `{key}`: {kind}{source}")
                }
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
