//! Sending email: lettre over pooled SMTP (STARTTLS or TLS, AUTH from the URL), or, with
//! no SMTP configured, `.eml` files under the data dir. Transactional messages
//! (invitations, confirmations, mentions) go through the durable job queue as `email`
//! jobs, so a crash loses none.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::jobs::runner::{Handler, HandlerFuture, Outcome};
use crate::jobs::{Job, NewJob};

/// The job kind for one transactional email.
pub const EMAIL_JOB: &str = "email";

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// A folder of `.eml` files (no SMTP configured).
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth trying again later: a 4xx reply, a network error, a timeout.
    Transient(String),
    /// The server refused it for good (a 5xx reply): the address bounces.
    Permanent(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(e) => write!(f, "temporary failure: {e}"),
            Self::Permanent(e) => write!(f, "permanent failure: {e}"),
        }
    }
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
        let mut builder = match (parsed.scheme(), plain) {
            ("smtps", _) => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
                .map_err(|e| format!("smtp_url: {e}"))?,
            ("smtp", false) => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                .map_err(|e| format!("smtp_url: {e}"))?,
            ("smtp", true) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
            (other, _) => {
                return Err(format!(
                    "smtp_url: scheme must be smtp or smtps, not {other}"
                ));
            }
        };
        if let Some(port) = parsed.port() {
            builder = builder.port(port);
        }
        if !parsed.username().is_empty() {
            let user = percent_decode(parsed.username());
            let pass = percent_decode(parsed.password().unwrap_or(""));
            builder = builder.credentials(Credentials::new(user, pass));
        }
        Ok(Self::Smtp(
            builder.timeout(Some(Duration::from_secs(30))).build(),
        ))
    }

    /// Whether mail only goes to files (the server warns at start).
    pub fn writes_files(&self) -> Option<&PathBuf> {
        match self {
            Self::Files(_, dir) => Some(dir),
            Self::Smtp(_) => None,
        }
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Self::Smtp(transport) => transport.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
            Self::Files(transport, _) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Transient(e.to_string())),
        }
    }
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
    /// The transport.
    pub mailer: Mailer,
    /// The sender every message comes from.
    pub from: Mailbox,
}

impl Handler for EmailHandler {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            let email: Email = match job.payload() {
                Ok(email) => email,
                Err(e) => return Outcome::Fail(e),
            };
            let message = match email.to_message(&self.from) {
                Ok(message) => message,
                Err(e) => return Outcome::Fail(e),
            };
            match self.mailer.send(message).await {
                Ok(()) => Outcome::Done,
                Err(SendError::Transient(e)) => Outcome::Retry {
                    after: None,
                    error: e,
                },
                Err(SendError::Permanent(e)) => Outcome::Fail(e),
            }
        })
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
