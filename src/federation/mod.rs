//! The fediverse. Every blog is an ActivityPub actor that people on Mastodon and other
//! servers find, follow, read and reply to.
//!
//! `activitypub_federation` fetches remote objects (signed, so servers in secure mode
//! answer) and provides the protocol types. Its in-memory send queue is not used: each
//! delivery is a durable job, signed and sent by [`delivery`]. Incoming
//! signatures are checked here ([`signatures`]) because the library knows only
//! draft-cavage, and Mastodon and Fedify also send RFC 9421.

pub mod actors;
pub mod collections;
pub mod delivery;
pub mod discovery;
pub mod inbox;
pub mod keys;
pub mod mentions;
pub mod moderation;
pub mod objects;
pub mod outbox;
pub mod pages;
pub mod protocol;
pub mod signatures;

use std::sync::Arc;
use std::time::Duration;

use activitypub_federation::config::FederationConfig;
use actix_web::HttpRequest;
use actix_web::http::header;

use crate::config::Settings;
use crate::db::Pool;

/// The public audience.
pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
/// The content type of every ActivityStreams document we serve.
pub const ACTIVITY_JSON: &str = "application/activity+json";

/// What the library hands back to our object and actor implementations.
#[derive(Clone)]
pub struct FederationData {
    /// The database.
    pub pool: Pool,
    /// Settings, for building URLs.
    pub settings: Arc<Settings>,
}

/// The library's configuration for this instance.
pub type Federation = FederationConfig<FederationData>;
/// Per-request state the library passes around.
pub type Data = activitypub_federation::config::Data<FederationData>;

/// Anything that went wrong talking to another server or handling its documents.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The library failed: a fetch, a signature, a bad URL.
    #[error(transparent)]
    Library(#[from] activitypub_federation::error::Error),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    /// No connection could be had.
    #[error(transparent)]
    Pool(#[from] diesel::r2d2::PoolError),
    /// A document was not what it claimed or was not usable.
    #[error("{0}")]
    Invalid(String),
    /// A background task failed.
    #[error("{0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for FederationError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Task(error.to_string())
    }
}

impl From<crate::error::AppError> for FederationError {
    fn from(error: crate::error::AppError) -> Self {
        Self::Task(crate::error::chain(&error))
    }
}

/// The server a URL names: its host, with the port when it has one (two ports on one
/// host are two servers).
pub fn host_of(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

/// `address` as a web page on `server` (host and port): an http(s) URL there, or none.
/// Links shown for remote content go only where they say they go (no `javascript:`, no
/// page on another server put in an author's mouth).
pub fn web_page_on(address: &str, server: &str) -> Option<url::Url> {
    url::Url::parse(address)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .filter(|u| host_of(u).eq_ignore_ascii_case(server))
}

impl FederationData {
    /// Runs database work on the blocking pool.
    pub async fn db<T, F>(&self, work: F) -> Result<T, FederationError>
    where
        T: Send + 'static,
        F: FnOnce(&mut crate::db::DbConnection) -> Result<T, FederationError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }
}

/// Builds the library's configuration: our HTTP client (which refuses private and
/// loopback addresses unless allowed), the instance actor that signs fetches, and
/// `debug` exactly when private addresses are allowed (the library then accepts http ids
/// with ports, as tests and closed networks need).
pub async fn build(settings: Arc<Settings>, pool: Pool) -> Result<Federation, String> {
    let allow_private = settings.federation_allow_private_addresses;
    let instance = {
        let pool = pool.clone();
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            keys::instance_actor(&mut conn, &settings).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??
    };
    FederationConfig::builder()
        .domain(settings.domain())
        .app_data(FederationData {
            pool,
            settings: settings.clone(),
        })
        .client(delivery::http_client(&settings, allow_private)?)
        .debug(allow_private)
        .allow_http_urls(allow_private || settings.base_url.scheme() == "http")
        .request_timeout(Duration::from_secs(10))
        // Sign as Mastodon does (rsa-sha256 over Date): servers that predate `(created)`
        // and hs2019 then verify us too.
        .http_signature_compat(true)
        .http_fetch_limit(50)
        .signed_fetch_actor(&instance)
        .build()
        .await
        .map_err(|e| format!("federation: {e}"))
}

/// Whether a request asks for ActivityStreams JSON rather than a web page: an `Accept`
/// naming `application/activity+json` or `application/ld+json` (with or without the
/// ActivityStreams profile), and not preferring HTML.
pub fn wants_activity_json(req: &HttpRequest) -> bool {
    let (json, html) = accept_weights(req);
    json > 0.0 && json >= html
}

/// Whether a request names HTML and prefers it to ActivityStreams JSON: a browser. `*/*`
/// 303 to the page a browser should see instead of a JSON document, if this is a browser.
pub fn for_browsers(req: &HttpRequest, page: &str) -> Option<actix_web::HttpResponse> {
    prefers_html(req).then(|| {
        actix_web::HttpResponse::SeeOther()
            .insert_header((header::LOCATION, page))
            .insert_header((header::VARY, "Accept"))
            .finish()
    })
}

/// alone, or no `Accept`, is not (scripts and servers send those).
pub fn prefers_html(req: &HttpRequest) -> bool {
    let (json, html) = accept_weights(req);
    html > 0.0 && html > json
}

/// The best `q` the request's `Accept` gives ActivityStreams JSON and HTML (-1: not
/// named).
fn accept_weights(req: &HttpRequest) -> (f32, f32) {
    let mut best_json = -1.0_f32;
    let mut best_html = -1.0_f32;
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return (best_json, best_html);
    };
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/activity+json" | "application/ld+json" => best_json = best_json.max(q),
            "text/html" | "application/xhtml+xml" => best_html = best_html.max(q),
            _ => {}
        }
    }
    (best_json, best_html)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::{prefers_html, wants_activity_json};

    fn asking(accept: &str) -> actix_web::HttpRequest {
        TestRequest::default()
            .insert_header(("Accept", accept))
            .to_http_request()
    }

    #[test]
    fn content_negotiation() {
        let ask = |accept: &str| wants_activity_json(&asking(accept));
        assert!(ask("application/activity+json"));
        assert!(ask(
            r#"application/ld+json; profile="https://www.w3.org/ns/activitystreams""#
        ));
        assert!(ask("application/activity+json, application/ld+json"));
        assert!(!ask(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!ask("*/*"));
        assert!(ask("text/html;q=0.5, application/activity+json"));
        assert!(!wants_activity_json(
            &TestRequest::default().to_http_request()
        ));
    }

    #[test]
    fn browsers_are_told_apart() {
        let browser = |accept: &str| prefers_html(&asking(accept));
        assert!(browser(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(browser("text/html"));
        assert!(!browser("*/*"));
        assert!(!browser("application/activity+json"));
        assert!(!browser("text/html;q=0.5, application/activity+json"));
        assert!(!prefers_html(&TestRequest::default().to_http_request()));
    }
}
