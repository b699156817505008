//! What we send: Create, Update and Delete when posts change; Accept and Reject for
//! follows; the blog's answers to replies.
//!
//! A post change queues one `federate` job in the same transaction as the change. That
//! job builds the activity (its id fixed by the change, so a rerun after a crash builds
//! the same one) and queues one `deliver` job per inbox, all in one transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use super::delivery::{self, Signer};
use super::keys::{self, url};
use super::mentions;
use super::moderation::{self, Reply, ReplyStatus, Visibility};
use super::objects;
use super::protocol::{self, Activity, PostObject};
use super::{Federation, FederationError, PUBLIC};
use crate::config::Settings;
use crate::db::{DbConnection, write_tx};
use crate::domain::blogs::{self, Blog};
use crate::domain::posts::{self, Post, Status};
use crate::jobs::runner::{Handler, HandlerFuture, Outcome};
use crate::jobs::{self, Job, NewJob};

/// The job kind that turns a post change into deliveries.
pub const FEDERATE_JOB: &str = "federate";

/// What happened to a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It became public: Create.
    Published,
    /// Its public content changed: Update.
    Edited,
    /// It was unpublished or deleted: Delete.
    Withdrawn,
}

/// A `federate` job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostChange {
    /// The post.
    pub post_id: i64,
    /// What happened.
    pub change: Change,
    /// When (milliseconds), which fixes the activity's id.
    pub at_ms: i64,
    /// The post's life on the fediverse when it happened (see `objects::post_id_in_life`).
    #[serde(default)]
    pub life: i32,
}

/// Queues the federation of a post change. Call in the transaction that makes it.
pub fn post_changed(conn: &mut DbConnection, post: &Post, change: Change) -> QueryResult<()> {
    let at_ms = post.updated_at.and_utc().timestamp_millis();
    let payload = PostChange {
        post_id: post.id,
        change,
        at_ms,
        life: post.republished,
    };
    let key = format!("federate:{}:{change:?}:{at_ms}", post.id);
    match NewJob::new(FEDERATE_JOB, &payload) {
        Ok(job) => {
            jobs::enqueue(conn, &job.key(key))?;
            Ok(())
        }
        Err(e) => Err(diesel::result::Error::SerializationError(Box::new(e))),
    }
}

fn at(at_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at_ms).unwrap_or_else(Utc::now)
}

/// An activity id under an object: `<object>#<verb>-<milliseconds>`.
fn activity_id(object: &Url, verb: &str, at_ms: i64) -> Url {
    let mut id = object.clone();
    id.set_fragment(Some(&format!("{verb}-{at_ms}")));
    id
}

/// The activity for a post change, or none when there is nothing to say (e.g. a Create
/// for a post already withdrawn again before the job ran).
pub fn post_activity(
    conn: &mut DbConnection,
    settings: &Settings,
    change: &PostChange,
) -> Result<Option<(Blog, Activity)>, FederationError> {
    let Some(post) = posts::find(conn, change.post_id)? else {
        return Ok(None);
    };
    let blog = blogs::find(conn, post.blog_id)?
        .ok_or_else(|| FederationError::Invalid("the post's blog is gone".into()))?;
    // The id of the life the change happened in: a withdrawal deletes that life's copy
    // even if the post was brought back (under a new id) before this job ran.
    let Some(object_id) = objects::post_id_in_life(settings, &blog, &post, change.life) else {
        return Ok(None);
    };
    let withdrawn = matches!(post.status(), Status::Unpublished | Status::Deleted)
        || post.republished > change.life;
    let actor = keys::blog_id(settings, &blog);
    let followers = url(settings, &format!("{}/followers", blog.path()));
    let activity = match (change.change, post.status()) {
        (Change::Published | Change::Edited, Status::Published)
            if post.republished == change.life =>
        {
            let verb = if change.change == Change::Published {
                "Create"
            } else {
                "Update"
            };
            let parts = objects::load_parts(conn, blog.clone(), post)?;
            let object: PostObject = objects::post_object(settings, &parts, false)?;
            // Addressed as the object is: public, followers and the accounts it mentions.
            let (to, cc) = (object.to.clone(), object.cc.clone());
            Activity {
                context: protocol::context(),
                id: activity_id(&object_id, &verb.to_ascii_lowercase(), change.at_ms),
                kind: verb,
                actor,
                object: serde_json::to_value(object)
                    .map_err(|e| FederationError::Invalid(e.to_string()))?,
                to,
                cc,
                published: Some(at(change.at_ms)),
            }
        }
        (Change::Withdrawn, _) if withdrawn => Activity {
            context: protocol::context(),
            id: activity_id(&object_id, "delete", change.at_ms),
            kind: "Delete",
            actor,
            object: serde_json::to_value(objects::tombstone(
                object_id,
                Some(at(change.at_ms)),
                false,
            ))
            .map_err(|e| FederationError::Invalid(e.to_string()))?,
            to: vec![PUBLIC.to_owned()],
            cc: vec![followers.to_string()],
            published: Some(at(change.at_ms)),
        },
        // The post moved on before this job ran; a later job says what it is now.
        _ => return Ok(None),
    };
    Ok(Some((blog, activity)))
}

/// Where a post change goes. A Create: the blog's followers and the accounts the post
/// mentions. An Update or Delete also reaches every server that holds a copy, as
/// Mastodon's reach does: accounts mentioned before an edit took them out, and accounts
/// that replied to, liked or boosted the post. Duplicates are folded when queued.
pub fn post_inboxes(
    conn: &mut DbConnection,
    blog: &Blog,
    post_id: i64,
    change: Change,
) -> QueryResult<Vec<String>> {
    let mut inboxes = moderation::follower_inboxes(conn, blog.id)?;
    match change {
        Change::Published => inboxes.extend(mentions::inboxes(conn, post_id, false)?),
        Change::Edited | Change::Withdrawn => {
            inboxes.extend(mentions::inboxes(conn, post_id, true)?);
            inboxes.extend(moderation::interacted_inboxes(conn, post_id)?);
        }
    }
    Ok(inboxes)
}

/// Builds post activities and queues their deliveries.
pub struct FederateHandler {
    federation: Federation,
}

impl FederateHandler {
    /// A handler using this configuration's settings and database.
    pub fn new(federation: Federation) -> Self {
        Self { federation }
    }
}

impl Handler for FederateHandler {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            let change: PostChange = match job.payload() {
                Ok(c) => c,
                Err(e) => return Outcome::Fail(e),
            };
            let data = self.federation.to_request_data();
            let settings = data.settings.clone();
            let (post_id, what) = (change.post_id, change.change);
            let result = data
                .db(move |conn| {
                    write_tx(conn, |conn| {
                        let Some((blog, activity)) = post_activity(conn, &settings, &change)?
                        else {
                            return Ok(0);
                        };
                        let json = serde_json::to_string(&activity)
                            .map_err(|e| FederationError::Invalid(e.to_string()))?;
                        let inboxes = post_inboxes(conn, &blog, change.post_id, change.change)?;
                        delivery::enqueue(conn, Signer::Blog(blog.id), &activity.id, &json, inboxes)
                    })
                })
                .await;
            match result {
                Ok(queued) => {
                    tracing::info!(post = post_id, change = ?what, deliveries = queued, "post federated");
                    Outcome::Done
                }
                Err(e) => Outcome::Retry {
                    after: None,
                    error: e.to_string(),
                },
            }
        })
    }
}

/// Answers a Follow with Accept or Reject, to the follower's inbox.
pub fn answer_follow(
    conn: &mut DbConnection,
    settings: &Settings,
    blog: &Blog,
    follower_ap_id: &str,
    follower_inbox: &str,
    follow_ap_id: &str,
    accept: bool,
) -> Result<(), FederationError> {
    let actor = keys::blog_id(settings, blog);
    let verb = if accept { "Accept" } else { "Reject" };
    let mut id = actor.clone();
    // One answer per Follow (and per decision): the same answer again is the same id.
    id.set_fragment(Some(&format!(
        "{}-{}",
        verb.to_ascii_lowercase(),
        short_hash(follow_ap_id)
    )));
    let activity = Activity {
        context: protocol::context(),
        id: id.clone(),
        kind: verb,
        actor: actor.clone(),
        object: json!({
            "id": follow_ap_id,
            "type": "Follow",
            "actor": follower_ap_id,
            "object": actor,
        }),
        to: vec![follower_ap_id.to_owned()],
        cc: Vec::new(),
        published: Some(Utc::now()),
    };
    let json =
        serde_json::to_string(&activity).map_err(|e| FederationError::Invalid(e.to_string()))?;
    delivery::enqueue(
        conn,
        Signer::Blog(blog.id),
        &id,
        &json,
        [follower_inbox.to_owned()],
    )?;
    Ok(())
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The blog's answer to a reply: stored as an approved reply of its own, federated as a
/// Note in reply, to the person answered and the blog's followers. The answer to a
/// private reply is private too: it goes to that person alone and is never shown.
pub fn answer_reply(
    conn: &mut DbConnection,
    settings: &Settings,
    blog: &Blog,
    to: &Reply,
    markdown: &str,
) -> Result<Reply, FederationError> {
    let author = match to.actor_id {
        Some(id) => moderation::actor_row(conn, id)?,
        None => None,
    };
    let content = crate::domain::html::SafeHtml::from_markdown(markdown);
    let now = crate::domain::now();
    let ap_base = url(settings, &format!("{}/replies/", blog.path()));
    // The id needs the row's id: insert with a provisional id, then set the real one.
    let provisional = format!(
        "{ap_base}pending-{}",
        short_hash(&format!("{}{now}", to.ap_id))
    );
    write_tx(conn, |conn| {
        moderation::insert_reply(
            conn,
            &moderation::NewReply {
                blog_id: blog.id,
                post_id: to.post_id,
                ap_id: &provisional,
                actor_id: None,
                parent_id: Some(to.id),
                in_reply_to: &to.ap_id,
                url: None,
                content_html: content.clone(),
                summary: None,
                sensitive: false,
                status: ReplyStatus::Approved,
                visibility: if to.visibility().is_shown() {
                    Visibility::Public
                } else {
                    Visibility::Private
                },
                published_at: now,
            },
        )?;
        let stored = moderation::reply_by_ap_id(conn, &provisional)?
            .ok_or_else(|| FederationError::Invalid("answer vanished".into()))?;
        let ap_id = format!("{ap_base}{}", stored.id);
        {
            use crate::db::schema::replies;
            diesel::update(replies::table.find(stored.id))
                .set((replies::ap_id.eq(&ap_id), replies::url.eq(&ap_id)))
                .execute(conn)?;
        }
        let answer = moderation::reply_by_ap_id(conn, &ap_id)?
            .ok_or_else(|| FederationError::Invalid("answer vanished".into()))?;
        let note = answer_object(settings, blog, &answer, author.as_ref(), false)?;
        let id = Url::parse(&ap_id).map_err(|e| FederationError::Invalid(e.to_string()))?;
        let activity = Activity {
            context: protocol::context(),
            id: activity_id(&id, "create", now.and_utc().timestamp_millis()),
            kind: "Create",
            actor: keys::blog_id(settings, blog),
            object: serde_json::to_value(&note)
                .map_err(|e| FederationError::Invalid(e.to_string()))?,
            to: note.to.clone(),
            cc: note.cc.clone(),
            published: Some(now.and_utc()),
        };
        let json = serde_json::to_string(&activity)
            .map_err(|e| FederationError::Invalid(e.to_string()))?;
        let inboxes = answer_inboxes(conn, blog, &answer, author.as_ref())?;
        delivery::enqueue(conn, Signer::Blog(blog.id), &activity.id, &json, inboxes)?;
        Ok(answer)
    })
}

/// Takes back one of the blog's answers: it is hidden here (its address answers 410) and
/// a Delete with a Tombstone goes where its Create went, so copies on other servers go
/// too. Call in the transaction that hides it.
pub fn withdraw_answer(
    conn: &mut DbConnection,
    settings: &Settings,
    blog: &Blog,
    answer: &Reply,
) -> Result<(), FederationError> {
    if answer.actor_id.is_some() {
        return Err(FederationError::Invalid(
            "only the blog's own answers can be withdrawn".into(),
        ));
    }
    moderation::set_reply_status(conn, answer.id, ReplyStatus::Hidden)?;
    let author = moderation::answered_account(conn, blog.id, answer)?;
    let id = Url::parse(&answer.ap_id).map_err(|e| FederationError::Invalid(e.to_string()))?;
    let now = crate::domain::now();
    let (to, cc) = answer_addressing(settings, blog, answer, author.as_ref());
    let inboxes = answer_inboxes(conn, blog, answer, author.as_ref())?;
    let activity = Activity {
        context: protocol::context(),
        id: activity_id(&id, "delete", now.and_utc().timestamp_millis()),
        kind: "Delete",
        actor: keys::blog_id(settings, blog),
        object: serde_json::to_value(objects::tombstone(id, Some(now.and_utc()), false))
            .map_err(|e| FederationError::Invalid(e.to_string()))?,
        to,
        cc,
        published: Some(now.and_utc()),
    };
    let json =
        serde_json::to_string(&activity).map_err(|e| FederationError::Invalid(e.to_string()))?;
    delivery::enqueue(conn, Signer::Blog(blog.id), &activity.id, &json, inboxes)?;
    Ok(())
}

/// Tells the blog's followers that its profile changed (name, bio, images, fields,
/// follower approval, discoverability): an Update of the actor, so their servers show the
/// new profile without waiting to refetch it. Call in the transaction that makes the
/// change; deliveries are queued with it.
pub fn profile_changed(
    conn: &mut DbConnection,
    settings: &Settings,
    blog_id: i64,
) -> Result<usize, FederationError> {
    let blog = blogs::find(conn, blog_id)?
        .ok_or_else(|| FederationError::Invalid("the blog is gone".into()))?;
    let person = super::actors::person(conn, settings, &blog)?;
    let actor = keys::blog_id(settings, &blog);
    let at_ms = blog.updated_at.and_utc().timestamp_millis();
    let mut object =
        serde_json::to_value(&person).map_err(|e| FederationError::Invalid(e.to_string()))?;
    if let Some(fields) = object.as_object_mut() {
        // The activity carries the context; the embedded actor does not repeat it.
        fields.remove("@context");
    }
    let activity = Activity {
        context: protocol::context(),
        id: activity_id(&actor, "update", at_ms),
        kind: "Update",
        actor: actor.clone(),
        object,
        to: vec![PUBLIC.to_owned()],
        cc: vec![url(settings, &format!("{}/followers", blog.path())).to_string()],
        published: Some(at(at_ms)),
    };
    let json =
        serde_json::to_string(&activity).map_err(|e| FederationError::Invalid(e.to_string()))?;
    let inboxes = moderation::follower_inboxes(conn, blog.id)?;
    delivery::enqueue(conn, Signer::Blog(blog.id), &activity.id, &json, inboxes)
}

/// Who one of the blog's answers is addressed to (`to`, `cc`): the public, the blog's
/// followers and the person answered; a private answer to its one reader alone, as
/// Mastodon's direct messages. Its Create and its Delete go alike.
fn answer_addressing(
    settings: &Settings,
    blog: &Blog,
    answer: &Reply,
    author: Option<&super::actors::ActorRow>,
) -> (Vec<String>, Vec<String>) {
    let author = author.map(|a| a.ap_id.clone());
    if answer.visibility().is_shown() {
        let followers = url(settings, &format!("{}/followers", blog.path())).to_string();
        (
            vec![PUBLIC.to_owned()],
            std::iter::once(followers).chain(author).collect(),
        )
    } else {
        (author.into_iter().collect(), Vec::new())
    }
}

/// The inboxes one of the blog's answers goes to, as [`answer_addressing`] says.
fn answer_inboxes(
    conn: &mut DbConnection,
    blog: &Blog,
    answer: &Reply,
    author: Option<&super::actors::ActorRow>,
) -> QueryResult<Vec<String>> {
    let mut inboxes = if answer.visibility().is_shown() {
        moderation::follower_inboxes(conn, blog.id)?
    } else {
        Vec::new()
    };
    inboxes.extend(author.map(|a| a.inbox.clone()));
    Ok(inboxes)
}

/// One of the blog's answers as a Note.
pub fn answer_object(
    settings: &Settings,
    blog: &Blog,
    answer: &Reply,
    to_author: Option<&super::actors::ActorRow>,
    with_context: bool,
) -> Result<PostObject, FederationError> {
    let id = Url::parse(&answer.ap_id).map_err(|e| FederationError::Invalid(e.to_string()))?;
    let (to, cc) = answer_addressing(settings, blog, answer, to_author);
    let mut tag: Vec<Value> = Vec::new();
    let mut mention = String::new();
    if let Some(author) = to_author {
        let handle = author.handle();
        tag.push(json!({ "type": "Mention", "href": author.ap_id, "name": handle }));
        let href = author
            .profile_url
            .clone()
            .unwrap_or_else(|| author.ap_id.clone());
        mention = format!(
            r#"<p><span class="h-card"><a href="{}" class="u-url mention">{}</a></span></p>"#,
            href.replace('"', "&quot;"),
            handle.replace('<', "&lt;")
        );
    }
    Ok(PostObject {
        context: with_context.then(protocol::context),
        id: id.clone(),
        kind: "Note",
        attributed_to: keys::blog_id(settings, blog),
        name: None,
        summary: None,
        content: format!(
            "{mention}{}",
            answer.content_html.for_federation(&id).as_str()
        ),
        media_type: "text/html",
        url: id.clone(),
        published: answer.published_at.and_utc(),
        updated: answer.edited_at.map(|t| t.and_utc()),
        to,
        cc,
        in_reply_to: Url::parse(&answer.in_reply_to).ok(),
        tag,
        attachment: Vec::new(),
        sensitive: false,
        replies: None,
        likes: None,
        shares: None,
        preview: None,
    })
}
