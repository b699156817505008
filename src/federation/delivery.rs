//! Delivering activities: one durable `deliver` job per inbox, signed when it is sent.
//!
//! Retries follow the other side: network errors, 5xx, 408 and 429 are retried with
//! exponential backoff (`federation_retry_seconds`, doubling), never sooner than
//! `Retry-After`; 401 is retried too (the other server may not have our key yet); any
//! other 4xx means the inbox will never take it, and the delivery is dropped. A server
//! that keeps failing has its circuit opened: its pending deliveries wait until the
//! circuit closes, without spending attempts, so it holds up no worker and no other
//! server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use activitypub_federation::activity_sending::SendActivityTask;
use activitypub_federation::config::Data;
use activitypub_federation::resolver::ValidatingDnsResolver;
use activitypub_federation::traits::Activity;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use url::Url;

use super::keys::{self, LocalActor, SigningKey};
use super::moderation::RejectedDomains;
use super::{ACTIVITY_JSON, Federation, FederationData, FederationError};
use crate::config::Settings;
use crate::db::DbConnection;
use crate::db::schema::jobs;
use crate::domain::blogs;
use crate::jobs::runner::{Handler, HandlerFuture, Outcome};
use crate::jobs::{Job, NewJob, Status};

/// The job kind of one delivery.
pub const DELIVER_JOB: &str = "deliver";
/// Attempts before a delivery is dead-lettered: with the default backoff (30 s doubling,
/// at most 6 hours) about two days of trying. Only requests count: time spent waiting
/// for a server's circuit to close comes on top.
const MAX_ATTEMPTS: i32 = 16;
/// How long the delivery workers trust their copy of the rejected servers.
const BLOCKS_FRESH_FOR: Duration = Duration::from_secs(1);
/// Consecutive failures that open a server's circuit.
const FAILURES_TO_OPEN: u32 = 5;

/// Who signs a delivery.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Signer {
    /// A blog (its activities).
    Blog(i64),
    /// The instance actor.
    Instance,
}

/// A delivery job's payload: the activity exactly as first built, so a retry sends the
/// same id and content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Who signs.
    pub signer: Signer,
    /// Where to.
    pub inbox: String,
    /// The activity's id.
    pub activity_id: String,
    /// The activity, JSON.
    pub activity: String,
}

/// Queues one delivery per inbox (duplicates folded); returns how many were new.
pub fn enqueue(
    conn: &mut DbConnection,
    signer: Signer,
    activity_id: &Url,
    activity: &str,
    inboxes: impl IntoIterator<Item = String>,
) -> Result<usize, FederationError> {
    let mut inboxes: Vec<String> = inboxes.into_iter().collect();
    inboxes.sort();
    inboxes.dedup();
    let mut jobs = Vec::with_capacity(inboxes.len());
    for inbox in inboxes {
        let Ok(parsed) = Url::parse(&inbox) else {
            tracing::warn!(%inbox, "skipping an inbox that is not a URL");
            continue;
        };
        // Throttled per server: one remote host and port.
        let host = super::host_of(&parsed);
        let key = format!("deliver:{activity_id}:{inbox}");
        let payload = Delivery {
            signer,
            inbox,
            activity_id: activity_id.to_string(),
            activity: activity.to_owned(),
        };
        jobs.push(
            NewJob::new(DELIVER_JOB, &payload)
                .map_err(|e| FederationError::Invalid(e.to_string()))?
                .key(key)
                .partition(host)
                .attempts(MAX_ATTEMPTS),
        );
    }
    // A fan-out to a thousand servers is a few statements, not a thousand.
    Ok(crate::jobs::enqueue_all(conn, &jobs)?)
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(24 * 3600)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(
        wait.to_std()
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(24 * 3600)),
    )
}

/// The HTTP client for federation: no redirects, 10-second timeouts, a user agent naming
/// us, and a resolver that refuses private and loopback addresses unless allowed.
pub fn http_client(
    settings: &Settings,
    allow_private: bool,
) -> Result<reqwest_middleware::ClientWithMiddleware, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(8)
        .user_agent(format!(
            "rounds/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            settings.base_url
        ))
        .dns_resolver(Arc::new(ValidatingDnsResolver::new(
            Vec::new(),
            !allow_private,
        )))
        .build()
        .map_err(|e| format!("federation client: {e}"))?;
    Ok(reqwest_middleware::ClientBuilder::new(client).build())
}

/// A stored activity as the library's delivery checks see it: its id and actor. The
/// body sent is the stored JSON, signed by us, so this serialises to nothing.
#[derive(Debug, Clone)]
struct StoredActivity {
    id: Url,
    actor: Url,
}

impl Serialize for StoredActivity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

#[async_trait::async_trait]
impl Activity for StoredActivity {
    type DataType = FederationData;
    type Error = FederationError;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        &self.actor
    }

    async fn verify(&self, _data: &Data<Self::DataType>) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn receive(self, _data: &Data<Self::DataType>) -> Result<(), Self::Error> {
        Err(FederationError::Invalid(
            "outgoing activities are never received".into(),
        ))
    }
}

#[derive(Default)]
struct HostState {
    failures: u32,
    open_until: Option<std::time::Instant>,
}

/// A server's circuit after a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    /// Not enough failures yet.
    Closed,
    /// This failure opened it, for this long.
    Opened(Duration),
    /// It was already open (the request was sent before it opened), for this long yet.
    Open(Duration),
}

/// A signer with its key ready.
struct Signing {
    actor: LocalActor,
    key: SigningKey,
}

/// Sends `deliver` jobs.
pub struct DeliverHandler {
    federation: Federation,
    client: reqwest_middleware::ClientWithMiddleware,
    signers: Mutex<HashMap<Signer, Arc<tokio::sync::OnceCell<Arc<Signing>>>>>,
    hosts: Mutex<HashMap<String, HostState>>,
    rejected: tokio::sync::Mutex<Option<(std::time::Instant, Arc<RejectedDomains>)>>,
    first_retry: Duration,
}

impl DeliverHandler {
    /// A handler sending through this federation configuration and HTTP client, first
    /// retrying a failed delivery after `first_retry`.
    pub fn new(
        federation: Federation,
        client: reqwest_middleware::ClientWithMiddleware,
        first_retry: Duration,
    ) -> Self {
        Self {
            federation,
            client,
            signers: Mutex::new(HashMap::new()),
            hosts: Mutex::new(HashMap::new()),
            rejected: tokio::sync::Mutex::new(None),
            first_retry,
        }
    }

    /// The signer and its key, loaded once (keys never change). Deliveries that start
    /// together wait for one load rather than each reading and checking the key.
    async fn signer(
        &self,
        data: &Data<FederationData>,
        signer: Signer,
    ) -> Result<Arc<Signing>, FederationError> {
        let cell = self
            .signers
            .lock()
            .map_err(|_| FederationError::Invalid("the signer cache is poisoned".into()))?
            .entry(signer)
            .or_default()
            .clone();
        let settings = data.settings.clone();
        let loaded = cell
            .get_or_try_init(|| {
                data.db(move |conn| {
                    let actor = match signer {
                        Signer::Instance => keys::instance_actor(conn, &settings)?,
                        Signer::Blog(id) => {
                            let blog = blogs::find(conn, id)?.ok_or_else(|| {
                                FederationError::Invalid(format!("blog {id} is gone"))
                            })?;
                            keys::blog_actor(conn, &settings, &blog)?
                        }
                    };
                    let key = actor.signing_key()?;
                    Ok(Arc::new(Signing { actor, key }))
                })
            })
            .await?;
        Ok(loaded.clone())
    }

    /// The rejected servers, read at most once a second. A fan-out leaves them out when
    /// it queues; this catches a block added while deliveries wait, within a second,
    /// without a query per delivery.
    async fn rejected(
        &self,
        data: &Data<FederationData>,
    ) -> Result<Arc<RejectedDomains>, FederationError> {
        let mut cached = self.rejected.lock().await;
        if let Some((read_at, list)) = cached.as_ref()
            && read_at.elapsed() < BLOCKS_FRESH_FOR
        {
            return Ok(list.clone());
        }
        let list = Arc::new(data.db(|conn| Ok(RejectedDomains::load(conn)?)).await?);
        *cached = Some((std::time::Instant::now(), list.clone()));
        Ok(list)
    }

    /// How long a server's circuit stays open, if it is.
    fn open_for(&self, host: &str) -> Option<Duration> {
        let hosts = self.hosts.lock().ok()?;
        let until = hosts.get(host)?.open_until?;
        until.checked_duration_since(std::time::Instant::now())
    }

    fn succeeded(&self, host: &str) {
        if let Ok(mut hosts) = self.hosts.lock() {
            hosts.remove(host);
        }
    }

    /// Counts a failure, and opens the server's circuit after enough of them.
    fn failed(&self, host: &str) -> Circuit {
        let Ok(mut hosts) = self.hosts.lock() else {
            return Circuit::Closed;
        };
        let state = hosts.entry(host.to_owned()).or_default();
        let now = std::time::Instant::now();
        if let Some(left) = state
            .open_until
            .and_then(|until| until.checked_duration_since(now))
        {
            // Sent before the circuit opened (up to four go to a server at once): no news
            // about the server, so no reason to keep it closed off longer.
            return Circuit::Open(left);
        }
        state.failures += 1;
        if state.failures < FAILURES_TO_OPEN {
            return Circuit::Closed;
        }
        // One minute, doubling with each further failure, at most an hour.
        let exponent = (state.failures - FAILURES_TO_OPEN).min(6);
        let wait = Duration::from_secs(60 * 2u64.pow(exponent)).min(Duration::from_secs(3600));
        state.open_until = Some(now + wait);
        Circuit::Opened(wait)
    }

    async fn deliver(&self, job: &Job) -> Outcome {
        let delivery: Delivery = match job.payload() {
            Ok(d) => d,
            Err(e) => return Outcome::Fail(e),
        };
        let Ok(inbox) = Url::parse(&delivery.inbox) else {
            return Outcome::Dropped(format!("{} is not a URL", delivery.inbox));
        };
        // The circuit is per server (the job's partition); blocks are per domain.
        let host = super::host_of(&inbox);
        if let Some(wait) = self.open_for(&host) {
            // Not worth a request, nor an attempt: attempts are for tries, and a delivery
            // that only waited would be dead-lettered in hours instead of days.
            return Outcome::Defer {
                until: from_now(wait),
                reason: format!("{host} is failing; waiting for its circuit to close"),
            };
        }
        let data = self.federation.to_request_data();
        match self.rejected(&data).await {
            Ok(rejected) if rejected.covers(&host) => {
                return Outcome::Dropped(format!("{host} is blocked"));
            }
            Ok(_) => {}
            Err(e) => {
                return Outcome::Retry {
                    after: None,
                    error: e.to_string(),
                };
            }
        }
        let signer = match self.signer(&data, delivery.signer).await {
            Ok(s) => s,
            Err(e) => return Outcome::Fail(e.to_string()),
        };
        let Ok(id) = Url::parse(&delivery.activity_id) else {
            return Outcome::Fail(format!("bad activity id {}", delivery.activity_id));
        };
        // The library decides which inboxes may be sent to: not local ones, nor private
        // addresses unless they are allowed.
        let activity = StoredActivity {
            id,
            actor: signer.actor.id.clone(),
        };
        let allowed =
            match SendActivityTask::prepare(&activity, &signer.actor, vec![inbox.clone()], &data)
                .await
            {
                Ok(tasks) => !tasks.is_empty(),
                Err(e) => {
                    return Outcome::Retry {
                        after: None,
                        error: e.to_string(),
                    };
                }
            };
        if !allowed {
            return Outcome::Dropped(format!(
                "{} is not an address we deliver to",
                delivery.inbox
            ));
        }
        let sent =
            sign_and_send(&self.client, &inbox, signer, delivery.activity.into_bytes()).await;
        match classify(sent) {
            outcome @ (Outcome::Done | Outcome::Dropped(_)) => {
                self.succeeded(&host);
                outcome
            }
            Outcome::Retry { after, error } => {
                let open_for = match self.failed(&host) {
                    Circuit::Closed => return Outcome::Retry { after, error },
                    Circuit::Open(left) => left,
                    Circuit::Opened(wait) => {
                        tracing::warn!(%host, wait_secs = wait.as_secs(), "opening the circuit for a failing server");
                        // In the database, so every node's workers leave them alone.
                        let (deferred_host, until) = (host.clone(), from_now(wait));
                        if let Err(e) = data
                            .db(move |conn| Ok(defer_host(conn, &deferred_host, until)?))
                            .await
                        {
                            tracing::warn!(error = %e, "could not defer deliveries");
                        }
                        wait
                    }
                };
                // This try counted; the next waits for the circuit to close.
                Outcome::Retry {
                    after: Some(open_for.max(after.unwrap_or_default())),
                    error: format!("{error} ({host} is failing; circuit open)"),
                }
            }
            outcome @ (Outcome::Fail(_) | Outcome::Defer { .. }) => outcome,
        }
    }
}

/// Signs a POST as Mastodon does (draft-cavage `rsa-sha256` over the request target,
/// host, date, digest and content type) and sends it: the response's status and
/// `Retry-After`, or why there was no response.
async fn sign_and_send(
    client: &reqwest_middleware::ClientWithMiddleware,
    inbox: &Url,
    signer: Arc<Signing>,
    body: Vec<u8>,
) -> Result<(u16, Option<Duration>), String> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use reqwest::header;
    use sha2::{Digest, Sha256};

    let host = super::host_of(inbox);
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let digest = format!("SHA-256={}", BASE64.encode(Sha256::digest(&body)));
    let target = match inbox.query() {
        Some(query) => format!("{}?{query}", inbox.path()),
        None => inbox.path().to_owned(),
    };
    let message = format!(
        "(request-target): post {target}\nhost: {host}\ndate: {date}\ndigest: {digest}\ncontent-type: {ACTIVITY_JSON}"
    );
    let key_id = signer.actor.key_id();
    let signature = tokio::task::spawn_blocking(move || signer.key.sign(message.as_bytes()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let signature = format!(
        "keyId=\"{key_id}\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date digest content-type\",signature=\"{}\"",
        BASE64.encode(signature)
    );
    let response = client
        .post(inbox.as_str())
        .header(header::HOST, host)
        .header(header::DATE, date)
        .header("digest", digest)
        .header(header::CONTENT_TYPE, ACTIVITY_JSON)
        .header("signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| crate::error::chain(&e))?;
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    Ok((response.status().as_u16(), retry_after))
}

/// What a send's outcome (the response's status and `Retry-After`) means for the job.
fn classify(sent: Result<(u16, Option<Duration>), String>) -> Outcome {
    match sent {
        Ok((status, _)) if (200..300).contains(&status) => Outcome::Done,
        Ok((401, _)) => Outcome::Retry {
            after: None,
            error: "401 Unauthorized".into(),
        },
        Ok((status, retry_after)) if status == 429 || status == 408 || status >= 500 => {
            Outcome::Retry {
                after: retry_after,
                error: format!("HTTP {status}"),
            }
        }
        Ok((status, _)) => Outcome::Dropped(format!("refused with HTTP {status}")),
        Err(e) => Outcome::Retry {
            after: None,
            error: e,
        },
    }
}

/// The time `wait` from now, as stored.
fn from_now(wait: Duration) -> chrono::NaiveDateTime {
    crate::domain::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
}

/// Holds a failing server's pending deliveries until its circuit closes (their attempts
/// untouched: they were not tried).
fn defer_host(
    conn: &mut DbConnection,
    host: &str,
    until: chrono::NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        jobs::table
            .filter(jobs::kind.eq(DELIVER_JOB))
            .filter(jobs::partition_key.eq(host))
            .filter(jobs::status.eq(Status::Pending.as_str()))
            .filter(jobs::run_at.lt(until)),
    )
    .set(jobs::run_at.eq(until))
    .execute(conn)
}

impl Handler for DeliverHandler {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(self.deliver(job))
    }

    fn first_retry(&self) -> Duration {
        self.first_retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_decide_retries() {
        assert!(matches!(classify(Ok((202, None))), Outcome::Done));
        assert!(matches!(classify(Ok((404, None))), Outcome::Dropped(_)));
        assert!(matches!(classify(Ok((401, None))), Outcome::Retry { .. }));
        match classify(Ok((503, Some(Duration::from_secs(7))))) {
            Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(7))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(classify(Ok((429, None))), Outcome::Retry { .. }));
        assert!(matches!(
            classify(Err("connection refused".into())),
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let wait = parse_retry_after(&later).expect("a date");
        assert!((80..=90).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }
}
