//! Sending email: lettre over pooled SMTP (STARTTLS or TLS, AUTH from the URL), or, with
//! no SMTP configured, `.eml` files under the data dir. Every message is an `email` job
//! in the durable queue (made in the transaction that makes it due, with an idempotency
//! key), so a crash loses none; [`smtp`] records each as sent just before the server
//! accepts it, so a crash sends none twice.
//!
//! Delivery: a 4xx reply or a network error is retried with backoff
//! (`mail_retry_seconds`, doubling); a 5xx reply to the recipient or to the message is a
//! hard bounce, which suppresses the address ([`suppressions`]) and is not retried; a 5xx
//! to MAIL FROM or DATA is about our own set-up and is dead-lettered for an admin. A
//! message that ends undelivered on 4xx replies counts as a soft bounce. Bulk mail to a
//! suppressed address is dropped unsent; account mail is still attempted.

pub mod smtp;
pub mod suppressions;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::db::{DbConnection, Pool};
use crate::jobs::runner::{Handler, HandlerFuture, Outcome};
use crate::jobs::{Job, NewJob};
use smtp::{Release, Security, Sent, SmtpSender, Stage, Terminator};

pub use suppressions::{is_suppressed, suppress};

/// The job kind for one email.
pub const EMAIL_JOB: &str = "email";

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP server.
    Smtp(Arc<SmtpSender>),
    /// A folder of `.eml` files (no SMTP configured).
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

impl Mailer {
    /// The mailer the settings describe. An `smtp_url` like
    /// `smtp://user:pass@host:587` (STARTTLS), `smtps://user:pass@host:465` (TLS) or
    /// `smtp://host:25?tls=none` (plain, for a local relay); empty writes files.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let url = settings.smtp_url.expose();
        if url.is_empty() {
            let dir = settings.data_dir.join("mail");
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create mail folder {}: {e}", dir.display()))?;
            return Ok(Self::Files(AsyncFileTransport::new(&dir), dir));
        }
        let parsed = url::Url::parse(url).map_err(|e| format!("smtp_url: {e}"))?;
        let host = parsed.host_str().ok_or("smtp_url: no host")?.to_owned();
        let plain = parsed.query_pairs().any(|(k, v)| k == "tls" && v == "none");
        let (security, default_port) = match (parsed.scheme(), plain) {
            ("smtps", _) => (Security::Tls, 465),
            ("smtp", false) => (Security::StartTls, 587),
            ("smtp", true) => (Security::None, 25),
            (other, _) => {
                return Err(format!(
                    "smtp_url: scheme must be smtp or smtps, not {other}"
                ));
            }
        };
        let tls = match security {
            Security::None => None,
            Security::Tls | Security::StartTls => Some(tls_parameters(settings, &host)?),
        };
        let credentials = (!parsed.username().is_empty()).then(|| {
            Credentials::new(
                percent_decode(parsed.username()),
                percent_decode(parsed.password().unwrap_or("")),
            )
        });
        Ok(Self::Smtp(Arc::new(SmtpSender::new(
            host,
            parsed.port().unwrap_or(default_port),
            security,
            credentials,
            tls,
            settings.job_workers,
        ))))
    }

    /// Whether mail only goes to files (the server warns at start).
    pub fn writes_files(&self) -> Option<&PathBuf> {
        match self {
            Self::Files(_, dir) => Some(dir),
            Self::Smtp(_) => None,
        }
    }
}

/// TLS for the SMTP server: the system's roots, plus `smtp_ca_file` if set.
fn tls_parameters(settings: &Settings, host: &str) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if !settings.smtp_ca_file.as_os_str().is_empty() {
        let pem = std::fs::read(&settings.smtp_ca_file).map_err(|e| {
            format!(
                "smtp_ca_file: cannot read {}: {e}",
                settings.smtp_ca_file.display()
            )
        })?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| format!("smtp_ca_file: not a PEM certificate: {e}"))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|e| format!("smtp_url: TLS: {e}"))
}

/// DKIM signing, set up once: one configuration for bulk mail (which also signs the list
/// headers, as RFC 8058 requires of `List-Unsubscribe`) and one for the rest.
pub struct Dkim {
    bulk: DkimConfig,
    single: DkimConfig,
}

impl Dkim {
    /// The signer the settings ask for, or `None` without `dkim_key_file`. A key that
    /// cannot be read or used is an error naming the key.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, String> {
        if settings.dkim_key_file.as_os_str().is_empty() {
            return Ok(None);
        }
        let path = &settings.dkim_key_file;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("dkim_key_file: cannot read {}: {e}", path.display()))?;
        let headers = |names: &[&'static str]| {
            names
                .iter()
                .map(|n| HeaderName::new_from_ascii_str(n))
                .collect::<Vec<_>>()
        };
        // Not Content-Type: lettre writes a multipart's with the body, where its signer
        // does not see it, and a listed header it skips breaks the signature.
        let common = [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
        ];
        let mut bulk_headers = headers(&common);
        bulk_headers.extend(headers(&[
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ]));
        let config = |headers| -> Result<DkimConfig, String> {
            let key = signing_key(&text).map_err(|e| {
                format!("dkim_key_file: {} is not a usable key: {e}", path.display())
            })?;
            Ok(DkimConfig::new(
                settings.dkim_selector.clone(),
                settings.dkim_domain.clone(),
                key,
                headers,
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            ))
        };
        Ok(Some(Self {
            bulk: config(bulk_headers)?,
            single: config(headers(&common))?,
        }))
    }

    fn sign(&self, message: &mut Message, bulk: bool) {
        message.sign(if bulk { &self.bulk } else { &self.single });
    }
}

/// A DKIM key from its file: RSA as PKCS#1 or PKCS#8 PEM, or Ed25519 as PKCS#8 PEM or a
/// bare base64 seed.
fn signing_key(text: &str) -> Result<DkimSigningKey, String> {
    use base64::Engine;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    if text.contains("BEGIN RSA PRIVATE KEY") {
        return DkimSigningKey::new(text, DkimSigningAlgorithm::Rsa).map_err(|e| e.to_string());
    }
    if text.contains("BEGIN PRIVATE KEY") {
        if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(text) {
            let pkcs1 = key
                .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                .map_err(|e| e.to_string())?;
            return DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
                .map_err(|e| e.to_string());
        }
        // An Ed25519 PKCS#8 key is 48 bytes of DER ending in the 32-byte seed.
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| e.to_string())?;
        const ED25519_PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        if der.len() == 48 && der[..16] == ED25519_PREFIX {
            let seed = base64::engine::general_purpose::STANDARD.encode(&der[16..]);
            return DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
                .map_err(|e| e.to_string());
        }
        return Err("a PKCS#8 key that is neither RSA nor Ed25519".into());
    }
    DkimSigningKey::new(text.trim(), DkimSigningAlgorithm::Ed25519)
        .map_err(|_| "expected a PEM RSA key or an Ed25519 key".to_owned())
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A transactional email as queued: rendered text, ready to send.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Email {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, if any (sent as multipart/alternative with the text).
    pub html: Option<String>,
    /// A `Reply-To` address.
    pub reply_to: Option<String>,
    /// For bulk mail (newsletters): the list headers every such message carries.
    #[serde(default)]
    pub bulk: Option<Bulk>,
}

/// What marks a message as bulk mail from a list: `List-Id`, one-click unsubscribe
/// (RFC 8058: `List-Unsubscribe` with an https URL and a mailto, and
/// `List-Unsubscribe-Post`), `Precedence: bulk` and `Auto-Submitted: auto-generated`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bulk {
    /// The list's identity, e.g. `Jane Smith <ceo.blogs.trust.example>` (RFC 2919).
    pub list_id: String,
    /// The one-click unsubscribe URL: a POST to it unsubscribes.
    pub unsubscribe_url: String,
    /// The mailto form, e.g. `mailto:unsubscribe@trust.example?subject=...`.
    pub unsubscribe_mailto: String,
}

impl Bulk {
    fn headers(&self) -> [HeaderValue; 5] {
        let raw = |name: &'static str, value: String| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
        };
        [
            raw("List-Id", self.list_id.clone()),
            raw(
                "List-Unsubscribe",
                format!("<{}>, <{}>", self.unsubscribe_url, self.unsubscribe_mailto),
            ),
            raw(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_owned(),
            ),
            raw("Precedence", "bulk".to_owned()),
            raw("Auto-Submitted", "auto-generated".to_owned()),
        ]
    }
}

impl Email {
    /// The message, from the configured sender.
    pub fn to_message(&self, from: &Mailbox) -> Result<Message, String> {
        let to: Mailbox = self
            .to
            .parse()
            .map_err(|e| format!("bad recipient {}: {e}", self.to))?;
        let mut builder = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&self.subject)
            .header(header::Date::now())
            .message_id(Some(message_id(from)));
        if let Some(reply_to) = &self.reply_to {
            let reply_to: Mailbox = reply_to
                .parse()
                .map_err(|e| format!("bad reply-to {reply_to}: {e}"))?;
            builder = builder.reply_to(reply_to);
        }
        if let Some(bulk) = &self.bulk {
            for value in bulk.headers() {
                builder = builder.raw_header(value);
            }
        }
        let message = match &self.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                self.text.clone(),
                html.clone(),
            )),
            None => builder.body(self.text.clone()),
        };
        message.map_err(|e| format!("cannot build message: {e}"))
    }

    /// The job that sends it. `key` makes queueing the same email twice a no-op.
    pub fn job(&self, key: impl Into<String>) -> Result<NewJob, serde_json::Error> {
        Ok(NewJob::new(EMAIL_JOB, self)?.key(key))
    }
}

/// A fresh `Message-ID` in the sender's domain.
fn message_id(from: &Mailbox) -> String {
    let random: [u8; 16] = rand::random();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@{}>", from.email.domain())
}

/// Sends `email` jobs.
pub struct EmailHandler {
    mailer: Mailer,
    from: Mailbox,
    pool: Pool,
    sent: Arc<SentLog>,
    dkim: Option<Dkim>,
    limiter: Option<DefaultDirectRateLimiter>,
    retry_seconds: u64,
    soft_bounce_limit: u32,
}

impl EmailHandler {
    /// The handler the settings describe: transport, sender, DKIM and send rate. Errors
    /// name the setting at fault.
    pub fn new(settings: &Settings, pool: Pool) -> Result<Self, String> {
        Ok(Self {
            mailer: Mailer::from_settings(settings)?,
            from: sender(settings)?,
            sent: Arc::new(SentLog::new(pool.clone())),
            pool,
            dkim: Dkim::from_settings(settings)?,
            limiter: NonZeroU32::new(settings.mail_rate_per_second)
                .map(|rate| RateLimiter::direct(Quota::per_second(rate))),
            retry_seconds: settings.mail_retry_seconds,
            soft_bounce_limit: settings.mail_soft_bounce_limit,
        })
    }

    /// Where mail goes.
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<T> + Send + 'static,
    ) -> Result<T, String> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            f(&mut conn).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn send(&self, job: &Job, email: &Email) -> Outcome {
        let mut message = match email.to_message(&self.from) {
            Ok(message) => message,
            Err(e) => return Outcome::Fail(e),
        };
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message, email.bulk.is_some());
        }
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let sender = match &self.mailer {
            Mailer::Smtp(sender) => sender,
            Mailer::Files(transport, _) => {
                return match transport.send(message).await {
                    Ok(_) => Outcome::Done,
                    Err(e) => Outcome::Retry {
                        after: None,
                        error: e.to_string(),
                    },
                };
            }
        };
        let sent = self.sent.clone();
        let (id, worker) = (job.id, job.locked_by.clone().unwrap_or_default());
        let commit = move |terminator| sent.record(id, worker, terminator);
        let failure = match sender
            .send(message.envelope(), &message.formatted(), commit)
            .await
        {
            Sent::Delivered => return Outcome::Done,
            Sent::Failed { failure, .. } => failure,
        };
        // A reply about the recipient or this message (not the session) is about the address.
        let about_address = failure.stage != Stage::Session;
        if failure.permanent && about_address {
            let (to, error) = (email.to.clone(), failure.message.clone());
            if let Err(e) = self
                .db(move |c| suppress(c, &to, suppressions::Reason::Hard, &error))
                .await
            {
                tracing::error!(error = %e, "could not record a bounce");
            }
            return Outcome::Dropped(format!("bounced: {}", failure.message));
        }
        if failure.permanent {
            return Outcome::Fail(failure.message);
        }
        if failure.transient && about_address && job.attempts >= job.max_attempts {
            let (to, error, limit) = (
                email.to.clone(),
                failure.message.clone(),
                self.soft_bounce_limit,
            );
            match self
                .db(move |c| suppressions::soft_bounce(c, &to, limit, &error))
                .await
            {
                Ok(true) => {
                    tracing::info!(to = %email.to, "address suppressed after repeated soft bounces")
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "could not record a soft bounce"),
            }
        }
        Outcome::Retry {
            after: None,
            error: failure.message,
        }
    }
}

/// Records email jobs as sent, in groups: messages whose final `.` is held at the same
/// moment are committed in one transaction, whose leader then sends every one of their
/// terminators straight away (so the window between commit and terminator stays as
/// narrow as for one message, see [`smtp`]). One transaction a message had every send
/// queue for SQLite's single writer.
struct SentLog {
    pool: Pool,
    state: std::sync::Mutex<SentState>,
    turn: std::sync::Condvar,
}

#[derive(Default)]
struct SentState {
    /// Waiting for the next commit: job, worker, its held terminator.
    waiting: Vec<(i64, String, Terminator)>,
    /// Finished: job, what became of its terminator.
    released: std::collections::HashMap<i64, Release>,
    /// A thread is committing a group now.
    committing: bool,
}

impl SentLog {
    fn new(pool: Pool) -> Self {
        Self {
            pool,
            state: std::sync::Mutex::new(SentState::default()),
            turn: std::sync::Condvar::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SentState> {
        // A poisoned lock only means another thread panicked mid-update of plain data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records job `id` as sent and sends its terminator, or withholds it if the job
    /// could not be recorded. Blocks (call on a blocking thread) until its group is done:
    /// the first caller to find no commit running commits everyone waiting.
    fn record(&self, id: i64, worker: String, terminator: Terminator) -> Release {
        let mut state = self.state();
        state.waiting.push((id, worker, terminator));
        loop {
            if let Some(release) = state.released.remove(&id) {
                return release;
            }
            if state.committing {
                state = self.turn.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            state.committing = true;
            let group = std::mem::take(&mut state.waiting);
            drop(state);
            let released = self.commit(group);
            state = self.state();
            state.released.extend(released);
            state.committing = false;
            self.turn.notify_all();
        }
    }

    /// One transaction for the group, then each terminator sent or withheld.
    fn commit(&self, group: Vec<(i64, String, Terminator)>) -> Vec<(i64, Release)> {
        let marked = self
            .pool
            .get()
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                let jobs: Vec<(i64, &str)> =
                    group.iter().map(|(id, worker, _)| (*id, worker.as_str())).collect();
                mark_sent(&mut conn, &jobs).map_err(|e| e.to_string())
            })
            .inspect_err(|e| {
                tracing::warn!(messages = group.len(), error = %e, "could not record messages as sent");
            })
            .unwrap_or_default();
        group
            .into_iter()
            .map(|(id, _, terminator)| {
                let release = if marked.contains(&id) {
                    // The window: from the commit returning to this write.
                    terminator.send()
                } else {
                    terminator.withhold()
                };
                (id, release)
            })
            .collect()
    }
}

/// Records claimed email jobs as sent, keeping each worker's hold on its job so the
/// outcome the runner records next (done, or a retry or bounce if the server then
/// refuses the message) still applies. A job in this state is never claimed again, even
/// if the process dies now. Returns the jobs recorded: one is missing if its worker lost
/// it (its lease ran out and another took it), and then its message must not be finished.
///
/// An explicit transaction, not lone UPDATEs: PostgreSQL finishes a statement it has
/// received even if the client has died meanwhile (say while the statement waited for a
/// lock), and a lone UPDATE would then commit for a message whose final `.` was never
/// sent. In a transaction, the client's death before it sends COMMIT rolls it back.
fn mark_sent(conn: &mut DbConnection, jobs: &[(i64, &str)]) -> diesel::QueryResult<Vec<i64>> {
    use crate::db::schema::jobs;
    use diesel::prelude::*;
    let now = crate::domain::now();
    crate::db::write_tx(conn, |c| {
        let mut marked = Vec::new();
        for &(id, worker) in jobs {
            let updated = diesel::update(
                jobs::table
                    .filter(jobs::id.eq(id))
                    .filter(jobs::locked_by.eq(worker))
                    .filter(jobs::status.eq(crate::jobs::Status::Running.as_str())),
            )
            .set((
                jobs::status.eq(crate::jobs::Status::Done.as_str()),
                jobs::finished_at.eq(now),
                jobs::updated_at.eq(now),
            ))
            .execute(c)?;
            if updated == 1 {
                marked.push(id);
            }
        }
        Ok(marked)
    })
}

impl EmailHandler {
    /// Sends one rendered email for `job` exactly once: bulk mail to a suppressed address
    /// is dropped unsent; the job is recorded as sent before the server accepts the
    /// message; a refusal is a bounce or a retry. Other job kinds that render their
    /// message at send time (newsletters) hand it here.
    pub async fn deliver(&self, job: &Job, email: &Email) -> Outcome {
        if email.bulk.is_some() {
            let to = email.to.clone();
            match self.db(move |c| is_suppressed(c, &to)).await {
                Ok(true) => {
                    return Outcome::Dropped(format!(
                        "suppressed: mail to {} bounced before",
                        email.to
                    ));
                }
                Ok(false) => {}
                Err(error) => return Outcome::Retry { after: None, error },
            }
        }
        self.send(job, email).await
    }
}

impl Handler for EmailHandler {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            let email: Email = match job.payload() {
                Ok(email) => email,
                Err(e) => return Outcome::Fail(e),
            };
            self.deliver(job, &email).await
        })
    }

    /// `mail_retry_seconds`: a deferred message is retried after it, doubling each time.
    fn first_retry(&self) -> Duration {
        Duration::from_secs(self.retry_seconds)
    }
}

/// One handler serves both `email` jobs and the newsletter's, so they share the SMTP
/// pool and the send rate.
impl Handler for Arc<EmailHandler> {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        self.as_ref().run(job)
    }

    fn first_retry(&self) -> Duration {
        self.as_ref().first_retry()
    }
}

/// The configured sender, e.g. `rounds <no-reply@trust.example>`.
pub fn sender(settings: &Settings) -> Result<Mailbox, String> {
    let from = if settings.mail_from.is_empty() {
        let host = settings.base_url.host_str().unwrap_or("localhost");
        // A bare host such as `localhost` is not a deliverable domain, but lettre accepts
        // it and local relays and the `.eml` files are fine with it.
        format!("{} <no-reply@{host}>", settings.instance_name)
    } else {
        settings.mail_from.clone()
    };
    from.parse().map_err(|e| format!("mail_from: {e} ({from})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_mail_carries_list_and_one_click_unsubscribe_headers() {
        let email = Email {
            to: "staff@nhs.net".into(),
            subject: "Our plan".into(),
            text: "The plan.".into(),
            html: None,
            reply_to: Some("ceo@trust.example".into()),
            bulk: Some(Bulk {
                list_id: "Jane Smith <ceo.blogs.trust.example>".into(),
                unsubscribe_url: "https://blogs.trust.example/u/abc".into(),
                unsubscribe_mailto: "mailto:unsubscribe@blogs.trust.example?subject=abc".into(),
            }),
        };
        let from: Mailbox = "Blogs <no-reply@trust.example>".parse().expect("from");
        let formatted = email.to_message(&from).expect("message").formatted();
        // Unfolded: long header lines are folded at spaces (RFC 5322).
        let message = String::from_utf8(formatted)
            .expect("utf-8")
            .replace("\r\n ", " ");
        for header in [
            "List-Id: Jane Smith <ceo.blogs.trust.example>",
            "List-Unsubscribe: <https://blogs.trust.example/u/abc>, <mailto:unsubscribe@blogs.trust.example?subject=abc>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "Precedence: bulk",
            "Auto-Submitted: auto-generated",
            "Reply-To: ceo@trust.example",
            "@trust.example>",
        ] {
            assert!(message.contains(header), "{header} missing from\n{message}");
        }
        assert!(message.contains("Message-ID: <"), "{message}");
    }

    #[test]
    fn transactional_mail_has_no_list_headers() {
        let email = Email {
            to: "jane@nhs.net".into(),
            subject: "Invitation".into(),
            text: "Join us.".into(),
            html: None,
            reply_to: None,
            bulk: None,
        };
        let from: Mailbox = "Blogs <no-reply@trust.example>".parse().expect("from");
        let formatted = email.to_message(&from).expect("message").formatted();
        let message = String::from_utf8(formatted).expect("utf-8");
        assert!(!message.contains("List-Unsubscribe"), "{message}");
        assert!(!message.contains("Precedence"), "{message}");
    }
}
