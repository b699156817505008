//! Receiving: the shared inbox (`/inbox`) and each blog's (`/@handle/inbox`).
//!
//! Order of checks: size (over 1 MB → 413, by the body limit), signature present and
//! well formed (→ 401), the signer's server not blocked (→ 403), the signer's key fetched
//! (signed fetch) and the signature verified (→ 401), the activity's actor the signer
//! (→ 401), its id on the signer's server (→ 400). Then the activity is handled in one
//! transaction with the record of its id, so a redelivery is a no-op. Types we do not
//! handle are accepted (202) and ignored. For a signer we have stored, all of it is one
//! trip to the database; the network is used only to fetch a key (or a Move's target).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

use chrono::Utc;
use serde_json::Value;
use url::Url;

use super::actors::{self, RemoteActor, RemotePerson, first_url, urls};
use super::moderation::{
    self, BlockSeverity, FollowStatus, ReactionKind, ReplyPolicy, ReplyStatus, Visibility,
};
use super::signatures::{self, SignedRequest};
use super::{Data, FederationError, host_of, objects, outbox};
use crate::config::Settings;
use crate::db::{DbConnection, write_tx};
use crate::domain::blogs::{self, Blog};
use crate::domain::html::SafeHtml;
use crate::web::AppState;

/// Largest body an inbox accepts (Mastodon's limit).
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest reply text we keep.
const MAX_REPLY_HTML: usize = 50_000;

/// Inbox routes, each with its own body limit.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/inbox")
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route(web::post().to(shared_inbox)),
    )
    .service(
        web::resource("/@{handle}/inbox")
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route(web::post().to(blog_inbox)),
    );
}

/// Why an activity was not taken, and the status that says so.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] FederationError),
}

impl From<diesel::result::Error> for Refusal {
    fn from(e: diesel::result::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl Refusal {
    fn response(&self) -> HttpResponse {
        let status = match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match self {
            // Our own failures are logged, never described to the other server.
            Self::Internal(e) => {
                tracing::error!(error = %e, "inbox failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        HttpResponse::build(status)
            .content_type("application/json")
            .json(serde_json::json!({ "error": message }))
    }
}

async fn shared_inbox(state: web::Data<AppState>, req: HttpRequest, body: Bytes) -> HttpResponse {
    respond(receive(&state, &req, &body, None).await)
}

async fn blog_inbox(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> HttpResponse {
    respond(receive(&state, &req, &body, Some(path.into_inner())).await)
}

fn respond(result: Result<(), Refusal>) -> HttpResponse {
    match result {
        Ok(()) => HttpResponse::Accepted().finish(),
        Err(refusal) => {
            if !matches!(refusal, Refusal::Internal(_)) {
                tracing::info!(reason = %refusal, "inbox refused an activity");
            }
            refusal.response()
        }
    }
}

async fn receive(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
    inbox_handle: Option<String>,
) -> Result<(), Refusal> {
    let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let claim = signatures::parse(
        &SignedRequest {
            method: req.method().as_str(),
            path_and_query,
            scheme: state.settings.base_url.scheme(),
            headers: req.headers(),
            body,
        },
        Utc::now(),
    )
    .map_err(|e| Refusal::Unauthorized(e.to_string()))?;
    let key_url = Url::parse(&claim.key_id)
        .map_err(|_| Refusal::Unauthorized("keyId is not a URL".into()))?;
    // Read now, but only reported once the signature holds: an unsigned body earns a 401
    // whatever it contains.
    let activity = serde_json::from_slice::<Value>(body)
        .map_err(|e| format!("not JSON: {e}"))
        .map(Arc::new);
    let incoming = Arc::new(Incoming {
        settings: state.settings.clone(),
        claim,
        host: host_of(&key_url),
        inbox_handle,
    });

    // Most activities come from an account we know: one trip to the database checks the
    // server's block, verifies the signature with the stored key and handles the activity.
    let first = {
        let incoming = incoming.clone();
        let activity = activity.clone();
        with_connection(state, move |conn| {
            let block = moderation::domain_block_for(conn, &incoming.host)?;
            if block == Some(BlockSeverity::Reject) {
                return Err(Refusal::Forbidden(format!("{} is blocked", incoming.host)));
            }
            let signer = match actors::find_by_key_id(conn, &incoming.claim.key_id)? {
                Some(signer) if incoming.verifies(&signer) => signer,
                stale => return Ok(Step::FetchSigner { stale, block }),
            };
            let activity = activity.map_err(Refusal::BadRequest)?;
            if activity_type(&activity) == "Move" {
                return Ok(Step::FetchMoveTarget { signer, block });
            }
            incoming.accept(conn, &signer, block, &activity, None)?;
            Ok(Step::Done)
        })
        .await?
    };
    let (signer, block) = match first {
        Step::Done => {
            if let Ok(activity) = &activity {
                wake_after(state, activity);
            }
            return Ok(());
        }
        Step::FetchSigner { stale, block } => {
            (verified_signer(state, &incoming, stale).await?, block)
        }
        Step::FetchMoveTarget { signer, block } => (signer, block),
    };
    let activity = activity.map_err(Refusal::BadRequest)?;
    // Work that needs the network happens before the transaction.
    let moved_to = if activity_type(&activity) == "Move" {
        Some(move_target(&state.federation.to_request_data(), &signer, &activity).await?)
    } else {
        None
    };
    {
        let activity = activity.clone();
        with_connection(state, move |conn| {
            incoming.accept(conn, &signer, block, &activity, moved_to.as_ref())
        })
        .await?;
    }
    wake_after(state, &activity);
    Ok(())
}

/// How far the inbox's first trip to the database got.
enum Step {
    /// Handled (or refused) in that one trip.
    Done,
    /// The signer's key must be fetched: we have not stored it, or the stored one no
    /// longer verifies.
    FetchSigner {
        stale: Option<RemoteActor>,
        block: Option<BlockSeverity>,
    },
    /// Verified, but a Move's new account must be fetched first.
    FetchMoveTarget {
        signer: RemoteActor,
        block: Option<BlockSeverity>,
    },
}

/// A received request whose signature is well formed, short of its key.
struct Incoming {
    settings: Arc<Settings>,
    claim: signatures::Claim,
    /// The signer's server: the key's host (and port).
    host: String,
    /// The blog whose own inbox received it (none for the shared inbox).
    inbox_handle: Option<String>,
}

impl Incoming {
    fn verifies(&self, signer: &RemoteActor) -> bool {
        self.claim
            .verify(signer.row.public_key_pem.as_deref().unwrap_or(""))
            .is_ok()
    }

    /// Handles a verified activity in one transaction with the record of its id.
    fn accept(
        &self,
        conn: &mut DbConnection,
        signer: &RemoteActor,
        block: Option<BlockSeverity>,
        activity: &Value,
        moved_to: Option<&RemoteActor>,
    ) -> Result<(), Refusal> {
        let actor = activity
            .get("actor")
            .and_then(first_url)
            .ok_or_else(|| Refusal::BadRequest("no actor".into()))?;
        if actor != signer.ap_id {
            return Err(Refusal::Unauthorized(
                "the activity's actor did not sign it".into(),
            ));
        }
        let id = activity
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Refusal::BadRequest("no id".into()))?;
        // Ids are recorded so a redelivery is a no-op: one server must not be able to
        // take another's ids (and so have the real activity dropped as a redelivery).
        if Url::parse(id).ok().map(|u| host_of(&u)).as_deref() != Some(signer.domain.as_str()) {
            return Err(Refusal::BadRequest(
                "the activity's id is not on its actor's server".into(),
            ));
        }
        let inbox_blog = match &self.inbox_handle {
            Some(handle) => {
                let handle = crate::domain::names::Handle::parse(handle)
                    .map_err(|_| Refusal::NotFound("no such inbox".into()))?;
                Some(
                    blogs::find_by_handle(conn, handle.as_str())?
                        .ok_or_else(|| Refusal::NotFound("no such inbox".into()))?,
                )
            }
            None => None,
        };
        // The block on the signer's account's server: the one on the key's server unless
        // the key is kept elsewhere.
        let block = if signer.domain == self.host {
            block
        } else {
            worse(block, moderation::domain_block_for(conn, &signer.domain)?)
        };
        let content = sanitised_in_advance(activity);
        write_tx(conn, |conn| {
            if !moderation::first_receipt(conn, id)? {
                // A redelivery: already handled.
                return Ok(());
            }
            let context = Context {
                settings: &self.settings,
                signer,
                inbox_blog: inbox_blog.as_ref(),
                block,
                content: content.as_ref(),
            };
            handle(conn, &context, activity_type(activity), activity, moved_to)
        })
    }
}

fn worse(a: Option<BlockSeverity>, b: Option<BlockSeverity>) -> Option<BlockSeverity> {
    if a == Some(BlockSeverity::Reject) || b == Some(BlockSeverity::Reject) {
        Some(BlockSeverity::Reject)
    } else {
        a.or(b)
    }
}

/// Runs inbox work with a pooled connection (see [`AppState::db`]), keeping the inbox's
/// own refusals.
async fn with_connection<T, F>(state: &AppState, work: F) -> Result<T, Refusal>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, Refusal> + Send + 'static,
{
    state
        .db(move |conn| Ok(work(conn)))
        .await
        .map_err(FederationError::from)?
}

fn activity_type(activity: &Value) -> &str {
    activity.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Only a Follow queues work (its Accept or Reject); waking the workers for every reply
/// would have them look for jobs, a write transaction, once per reply.
fn wake_after(state: &AppState, activity: &Value) {
    if activity_type(activity) == "Follow" {
        state.jobs_wake.notify_one();
    }
}

/// The signer, fetched (signed) because we have not stored it or its stored key no
/// longer verifies, and its signature checked with the fetched key.
async fn verified_signer(
    state: &AppState,
    incoming: &Incoming,
    stale: Option<RemoteActor>,
) -> Result<RemoteActor, Refusal> {
    let data = state.federation.to_request_data();
    let signer = match stale {
        // The key may have changed since we stored it: fetch the actor once more.
        Some(stale) => actors::refetch(&stale.url, &data)
            .await
            .map_err(|e| Refusal::Unauthorized(format!("cannot refresh the signer: {e}")))?,
        None => {
            let key_url = Url::parse(&incoming.claim.key_id)
                .map_err(|_| Refusal::Unauthorized("keyId is not a URL".into()))?;
            fetch_signer(&data, &incoming.claim.key_id, &key_url).await?
        }
    };
    incoming
        .claim
        .verify(signer.row.public_key_pem.as_deref().unwrap_or(""))
        .map_err(|e| Refusal::Unauthorized(e.to_string()))?;
    Ok(signer)
}

/// A signing account we have not stored: fetched (signed) by the key's actor URL.
async fn fetch_signer(data: &Data, key_id: &str, key_url: &Url) -> Result<RemoteActor, Refusal> {
    let mut actor_url = key_url.clone();
    actor_url.set_fragment(None);
    let actor = actors::dereference(&actor_url, data)
        .await
        .map_err(|e| Refusal::Unauthorized(format!("cannot fetch the signer {actor_url}: {e}")))?;
    if actor.public_key_id.as_deref() != Some(key_id) {
        // The key id names a document that is not the key's owner (or a key it no longer has).
        let fresh = actors::refetch(&actor_url, data)
            .await
            .map_err(|e| Refusal::Unauthorized(format!("cannot fetch the signer: {e}")))?;
        if fresh.public_key_id.as_deref() != Some(key_id) {
            return Err(Refusal::Unauthorized("the key is not the actor's".into()));
        }
        return Ok(fresh);
    }
    Ok(actor)
}

/// For a Move: the new account, fetched, which must name the old one in `alsoKnownAs`.
async fn move_target(
    data: &Data,
    signer: &RemoteActor,
    activity: &Value,
) -> Result<RemoteActor, Refusal> {
    let object = activity
        .get("object")
        .and_then(first_url)
        .unwrap_or_default();
    if object != signer.ap_id {
        return Err(Refusal::BadRequest(
            "an account can only move itself".into(),
        ));
    }
    let target = activity
        .get("target")
        .and_then(first_url)
        .and_then(|t| Url::parse(&t).ok())
        .ok_or_else(|| Refusal::BadRequest("Move without a target".into()))?;
    // The new account's own document (fetched signed) must say it is also the old one.
    let fetched =
        activitypub_federation::fetch::fetch_object_http::<_, RemotePerson>(&target, data)
            .await
            .map_err(|e| Refusal::BadRequest(format!("cannot fetch the Move target: {e}")))?;
    let person = fetched.object;
    let names_old = person
        .also_known_as
        .as_ref()
        .is_some_and(|aka| urls(aka).iter().any(|u| u == &signer.ap_id));
    if !names_old || person.id != target {
        return Err(Refusal::BadRequest(
            "the Move target does not name the old account".into(),
        ));
    }
    let target_actor = data.db(move |conn| actors::upsert(conn, &person)).await?;
    Ok(target_actor)
}

struct Context<'a> {
    settings: &'a Settings,
    signer: &'a RemoteActor,
    /// The blog whose own inbox received it (none for the shared inbox).
    inbox_blog: Option<&'a Blog>,
    /// The signer's server's instance block, if any.
    block: Option<BlockSeverity>,
    /// The text of the note a Create or Update carries, sanitised before the transaction.
    content: Option<&'a Result<SafeHtml, String>>,
}

impl Context<'_> {
    /// The note's sanitised text (see [`sanitised_in_advance`]).
    fn content_of(&self, object: &Value) -> Result<SafeHtml, Refusal> {
        match self.content {
            Some(Ok(html)) => Ok(html.clone()),
            Some(Err(e)) => Err(Refusal::BadRequest(e.clone())),
            None => note_html(object),
        }
    }
}

/// The text of the note a Create or Update carries, sanitised. Sanitising is the
/// costliest step of taking a reply: done before the transaction, the database (SQLite's
/// one writer above all) is held only for the reads and writes.
fn sanitised_in_advance(activity: &Value) -> Option<Result<SafeHtml, String>> {
    if !matches!(activity_type(activity), "Create" | "Update") {
        return None;
    }
    let object = object_of(activity).filter(|o| {
        matches!(
            o.get("type").and_then(Value::as_str),
            Some("Note" | "Article" | "Page" | "Question")
        )
    })?;
    Some(note_html(object).map_err(|e| e.to_string()))
}

/// The object of an activity: embedded, or just its id.
fn object_of(activity: &Value) -> Option<&Value> {
    activity.get("object")
}

fn object_id(activity: &Value) -> Option<String> {
    object_of(activity).and_then(|o| match o {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => map.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    })
}

fn object_type(activity: &Value) -> Option<&str> {
    object_of(activity)?.get("type")?.as_str()
}

fn handle(
    conn: &mut DbConnection,
    cx: &Context<'_>,
    kind: &str,
    activity: &Value,
    moved_to: Option<&RemoteActor>,
) -> Result<(), Refusal> {
    match kind {
        "Follow" => follow(conn, cx, activity),
        "Undo" => undo(conn, cx, activity),
        "Create" => create_note(conn, cx, activity),
        "Update" => update(conn, cx, activity),
        "Delete" => delete(conn, cx, activity),
        "Like" => react(conn, cx, activity, ReactionKind::Like),
        "Announce" => react(conn, cx, activity, ReactionKind::Announce),
        "Block" => block(conn, cx, activity),
        "Flag" => flag(conn, cx, activity),
        "Move" => match moved_to {
            Some(target) => {
                moderation::move_follower(conn, cx.signer.row.id, target.row.id)?;
                actors::mark_moved(conn, cx.signer.row.id, &target.ap_id)?;
                Ok(())
            }
            None => Ok(()),
        },
        // We follow nobody, so Accept and Reject (of a Follow) need nothing; anything
        // else we do not handle is accepted and ignored.
        _ => Ok(()),
    }
}

fn follow(conn: &mut DbConnection, cx: &Context<'_>, activity: &Value) -> Result<(), Refusal> {
    let target = object_id(activity)
        .ok_or_else(|| Refusal::BadRequest("Follow without an object".into()))?;
    let blog = objects::local_blog(conn, cx.settings, &target)?
        .ok_or_else(|| Refusal::NotFound("no such account here".into()))?;
    let follow_id = activity
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let signer = cx.signer;
    if moderation::is_blocked_with(conn, Some(blog.id), signer, cx.block)? {
        outbox::answer_follow(
            conn,
            cx.settings,
            &blog,
            &signer.ap_id,
            &signer.inbox,
            follow_id,
            false,
        )?;
        return Ok(());
    }
    let wanted = if blog.manually_approves_followers {
        FollowStatus::Pending
    } else {
        FollowStatus::Accepted
    };
    let status = moderation::add_follower(conn, blog.id, signer.row.id, follow_id, wanted)?;
    if status == FollowStatus::Accepted {
        outbox::answer_follow(
            conn,
            cx.settings,
            &blog,
            &signer.ap_id,
            &signer.inbox,
            follow_id,
            true,
        )?;
    }
    Ok(())
}

fn undo(conn: &mut DbConnection, cx: &Context<'_>, activity: &Value) -> Result<(), Refusal> {
    let inner_type = object_type(activity).unwrap_or("");
    let inner_id = object_id(activity).unwrap_or_default();
    match inner_type {
        "Follow" => {
            let target = object_of(activity)
                .and_then(|o| o.get("object"))
                .and_then(first_url)
                .unwrap_or_default();
            if let Some(blog) = objects::local_blog(conn, cx.settings, &target)? {
                moderation::remove_follower(conn, blog.id, cx.signer.row.id)?;
            }
        }
        "Like" | "Announce" => {
            moderation::remove_reaction(conn, &inner_id, cx.signer.row.id)?;
        }
        _ => {
            // Servers often undo by id alone: try the follows and reactions they made.
            moderation::remove_follow_by_id(conn, &inner_id, cx.signer.row.id)?;
            moderation::remove_reaction(conn, &inner_id, cx.signer.row.id)?;
        }
    }
    Ok(())
}

/// The reply or mention in a Create, checked: written by the signer, on its server.
struct IncomingNote<'a> {
    id: String,
    object: &'a Value,
}

fn note_of<'a>(cx: &Context<'_>, activity: &'a Value) -> Result<Option<IncomingNote<'a>>, Refusal> {
    let Some(object) = object_of(activity).filter(|o| o.is_object()) else {
        // Only an id: we do not fetch what we were not sent.
        return Ok(None);
    };
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
    if !matches!(kind, "Note" | "Article" | "Page" | "Question") {
        return Ok(None);
    }
    let id = object
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::BadRequest("object without an id".into()))?
        .to_owned();
    let author = object
        .get("attributedTo")
        .and_then(first_url)
        .unwrap_or_default();
    if author != cx.signer.ap_id {
        return Err(Refusal::Unauthorized(
            "the object's author did not sign it".into(),
        ));
    }
    let same_server = Url::parse(&id).ok().map(|u| host_of(&u)) == Some(cx.signer.domain.clone());
    if !same_server {
        return Err(Refusal::BadRequest(
            "the object is not on its author's server".into(),
        ));
    }
    Ok(Some(IncomingNote { id, object }))
}

fn note_html(object: &Value) -> Result<SafeHtml, Refusal> {
    let content = object
        .get("content")
        .and_then(Value::as_str)
        .or_else(|| {
            object
                .get("contentMap")
                .and_then(Value::as_object)
                .and_then(|m| m.values().find_map(Value::as_str))
        })
        .unwrap_or("");
    if content.len() > MAX_REPLY_HTML {
        return Err(Refusal::BadRequest("the reply is too long".into()));
    }
    Ok(SafeHtml::from_remote(content))
}

fn is_sensitive(object: &Value) -> bool {
    object
        .get("sensitive")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn text_field(object: &Value, name: &str, max: usize) -> Option<String> {
    object
        .get(name)
        .and_then(Value::as_str)
        .map(|s| {
            crate::domain::names::without_controls(s)
                .trim()
                .chars()
                .take(max)
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
}

fn published(object: &Value) -> chrono::NaiveDateTime {
    object
        .get("published")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc).naive_utc())
        .filter(|d| *d <= crate::domain::now())
        .unwrap_or_else(crate::domain::now)
}

/// The status a new reply from this account gets on this blog. A private one waits for
/// a moderator, who can answer it but never show it.
fn status_for(
    conn: &mut DbConnection,
    cx: &Context<'_>,
    blog: &Blog,
    visibility: Visibility,
) -> Result<ReplyStatus, Refusal> {
    if cx.block == Some(BlockSeverity::Hold) || !visibility.is_shown() {
        return Ok(ReplyStatus::Held);
    }
    Ok(
        match ReplyPolicy::parse(&blog.reply_policy).unwrap_or(ReplyPolicy::Held) {
            ReplyPolicy::Held => ReplyStatus::Held,
            ReplyPolicy::Open => ReplyStatus::Approved,
            ReplyPolicy::Followers => {
                if moderation::is_follower(conn, blog.id, cx.signer.row.id)? {
                    ReplyStatus::Approved
                } else {
                    ReplyStatus::Held
                }
            }
        },
    )
}

/// Where a note lands here.
struct Target {
    blog: Blog,
    post_id: Option<i64>,
    /// The post takes no more replies.
    replies_closed: bool,
    parent_id: Option<i64>,
    in_reply_to: String,
}

/// What a note answers or mentions here.
fn target_of(
    conn: &mut DbConnection,
    cx: &Context<'_>,
    object: &Value,
) -> Result<Option<Target>, Refusal> {
    if let Some(in_reply_to) = object.get("inReplyTo").and_then(first_url) {
        if let Some((blog, post)) = objects::local_post(conn, cx.settings, &in_reply_to)? {
            return Ok(Some(Target {
                blog,
                post_id: Some(post.id),
                replies_closed: post.replies_closed,
                parent_id: None,
                in_reply_to,
            }));
        }
        if let Some(parent) = moderation::reply_by_ap_id(conn, &in_reply_to)? {
            let blog = blogs::find(conn, parent.blog_id)?
                .ok_or_else(|| Refusal::NotFound("the blog is gone".into()))?;
            let replies_closed = match parent.post_id {
                Some(id) => crate::domain::posts::find(conn, id)?.is_some_and(|p| p.replies_closed),
                None => false,
            };
            return Ok(Some(Target {
                blog,
                post_id: parent.post_id,
                replies_closed,
                parent_id: Some(parent.id),
                in_reply_to,
            }));
        }
    }
    // A mention: a Mention tag or an address naming one of our blogs.
    let mut candidates: Vec<String> = Vec::new();
    if let Some(Value::Array(tags)) = object.get("tag") {
        for tag in tags {
            if tag.get("type").and_then(Value::as_str) == Some("Mention")
                && let Some(href) = tag.get("href").and_then(first_url)
            {
                candidates.push(href);
            }
        }
    }
    for field in ["to", "cc"] {
        if let Some(value) = object.get(field) {
            candidates.extend(urls(value));
        }
    }
    if let Some(blog) = cx.inbox_blog {
        candidates.push(super::keys::blog_id(cx.settings, blog).to_string());
    }
    for candidate in candidates {
        if let Some(blog) = objects::local_blog(conn, cx.settings, &candidate)? {
            let in_reply_to = object
                .get("inReplyTo")
                .and_then(first_url)
                .unwrap_or_default();
            return Ok(Some(Target {
                blog,
                post_id: None,
                replies_closed: false,
                parent_id: None,
                in_reply_to,
            }));
        }
    }
    Ok(None)
}

fn create_note(conn: &mut DbConnection, cx: &Context<'_>, activity: &Value) -> Result<(), Refusal> {
    let Some(note) = note_of(cx, activity)? else {
        return Ok(());
    };
    let Some(Target {
        blog,
        post_id,
        replies_closed,
        parent_id,
        in_reply_to,
    }) = target_of(conn, cx, note.object)?
    else {
        // Not for us: a post that reached the shared inbox through a follower's server.
        return Ok(());
    };
    if moderation::is_blocked_with(conn, Some(blog.id), cx.signer, cx.block)? {
        return Ok(());
    }
    if replies_closed {
        return Ok(());
    }
    let visibility = Visibility::of(note.object);
    let status = status_for(conn, cx, &blog, visibility)?;
    let content = cx.content_of(note.object)?;
    let summary = text_field(note.object, "summary", 500);
    let url = page_url(note.object, &note.id);
    moderation::insert_reply(
        conn,
        &moderation::NewReply {
            blog_id: blog.id,
            post_id,
            ap_id: &note.id,
            actor_id: Some(cx.signer.row.id),
            parent_id,
            in_reply_to: &in_reply_to,
            url: url.as_deref(),
            content_html: content,
            summary: summary.as_deref(),
            sensitive: is_sensitive(note.object),
            status,
            visibility,
            published_at: published(note.object),
        },
    )?;
    Ok(())
}

/// The note's page on its own server, for the "see it there" link: an http(s) URL on
/// the same server as the note, or none (a `javascript:` URL or a page elsewhere would
/// put words in its author's mouth).
fn page_url(object: &Value, note_id: &str) -> Option<String> {
    let server = host_of(&Url::parse(note_id).ok()?);
    super::web_page_on(&object.get("url").and_then(first_url)?, &server).map(String::from)
}

fn update(conn: &mut DbConnection, cx: &Context<'_>, activity: &Value) -> Result<(), Refusal> {
    let Some(object) = object_of(activity).filter(|o| o.is_object()) else {
        return Ok(());
    };
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
    if matches!(
        kind,
        "Person" | "Service" | "Application" | "Group" | "Organization"
    ) {
        // A profile update: only the signer's own, stored as sent.
        if object.get("id").and_then(Value::as_str) == Some(cx.signer.ap_id.as_str())
            && let Ok(person) = serde_json::from_value::<RemotePerson>(object.clone())
            && person.inbox.host_str() == person.id.host_str()
        {
            actors::upsert(conn, &person)?;
        }
        return Ok(());
    }
    let Some(note) = note_of(cx, activity)? else {
        return Ok(());
    };
    let Some(existing) = moderation::reply_by_ap_id(conn, &note.id)? else {
        return Ok(());
    };
    if existing.actor_id != Some(cx.signer.row.id) {
        return Err(Refusal::Unauthorized(
            "only the author can change a reply".into(),
        ));
    }
    let blog = blogs::find(conn, existing.blog_id)?
        .ok_or_else(|| Refusal::NotFound("the blog is gone".into()))?;
    // An edited reply is judged again: what a moderator approved is not what is there now.
    let visibility = Visibility::of(note.object);
    let status = match existing.status() {
        ReplyStatus::Rejected | ReplyStatus::Hidden => existing.status(),
        ReplyStatus::Held | ReplyStatus::Approved => status_for(conn, cx, &blog, visibility)?,
    };
    moderation::edit_reply(
        conn,
        existing.id,
        &moderation::ReplyEdit {
            content_html: cx.content_of(note.object)?,
            summary: text_field(note.object, "summary", 500),
            sensitive: is_sensitive(note.object),
            status,
            visibility,
            edited_at: crate::domain::now(),
        },
    )?;
    Ok(())
}

fn delete(conn: &mut DbConnection, cx: &Context<'_>, activity: &Value) -> Result<(), Refusal> {
    let Some(target) = object_id(activity) else {
        return Ok(());
    };
    if target == cx.signer.ap_id {
        moderation::forget_actor(conn, cx.signer.row.id)?;
        actors::mark_deleted(conn, cx.signer.row.id)?;
        return Ok(());
    }
    moderation::delete_reply_by(conn, &target, cx.signer.row.id)?;
    Ok(())
}

fn react(
    conn: &mut DbConnection,
    cx: &Context<'_>,
    activity: &Value,
    kind: ReactionKind,
) -> Result<(), Refusal> {
    let Some(target) = object_id(activity) else {
        return Ok(());
    };
    let Some((blog, post)) = objects::local_post(conn, cx.settings, &target)? else {
        return Ok(());
    };
    if moderation::is_blocked_with(conn, Some(blog.id), cx.signer, cx.block)? {
        return Ok(());
    }
    let id = activity
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    moderation::add_reaction(conn, post.id, cx.signer.row.id, kind, id)?;
    Ok(())
}

fn block(conn: &mut DbConnection, cx: &Context<'_>, activity: &Value) -> Result<(), Refusal> {
    let target = object_id(activity).unwrap_or_default();
    if let Some(blog) = objects::local_blog(conn, cx.settings, &target)? {
        // They no longer want to see the blog: stop delivering to them.
        moderation::remove_follower(conn, blog.id, cx.signer.row.id)?;
    }
    Ok(())
}

fn flag(conn: &mut DbConnection, cx: &Context<'_>, activity: &Value) -> Result<(), Refusal> {
    let id = activity
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let objects = activity.get("object").map(urls).unwrap_or_default();
    let content = text_field(activity, "content", 5000);
    moderation::add_report(conn, id, cx.signer.row.id, &objects, content.as_deref())?;
    Ok(())
}
