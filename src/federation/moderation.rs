//! Followers, replies, reactions, blocks and reports: the rows and the rules.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::FederationError;
use super::actors::{ActorRow, RemoteActor};
use crate::db::schema::{
    account_blocks, actors, blog_blocks, domain_blocks, followers, reactions, received_activities,
    replies, reports,
};
use crate::db::{DbConnection, is_unique_violation};
use crate::domain::html::SafeHtml;
use crate::on_backend;

// ---------------------------------------------------------------------------------------
// Followers

/// Where a follow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowStatus {
    /// Waiting for the team to accept it.
    Pending,
    /// Following.
    Accepted,
}

impl FollowStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
        }
    }
}

/// A follower of a blog, with their account.
#[derive(Debug, Clone)]
pub struct Follower {
    /// The account.
    pub actor: ActorRow,
    /// `pending` or `accepted`.
    pub status: String,
    /// The id of their Follow activity (our Accept or Reject names it).
    pub follow_ap_id: String,
    /// When they asked.
    pub created_at: NaiveDateTime,
}

/// Records a follow (or updates its status and Follow id); returns the status stored.
pub fn add_follower(
    conn: &mut DbConnection,
    blog_id: i64,
    actor_id: i64,
    follow_ap_id: &str,
    status: FollowStatus,
) -> QueryResult<FollowStatus> {
    let now = crate::domain::now();
    // An account already following stays accepted when it sends Follow again.
    let existing: Option<String> = followers::table
        .find((blog_id, actor_id))
        .select(followers::status)
        .first(conn)
        .optional()?;
    let status = match existing.as_deref() {
        Some("accepted") => FollowStatus::Accepted,
        _ => status,
    };
    on_backend!(conn, |c| diesel::insert_into(followers::table)
        .values((
            followers::blog_id.eq(blog_id),
            followers::actor_id.eq(actor_id),
            followers::status.eq(status.as_str()),
            followers::follow_ap_id.eq(follow_ap_id),
            followers::created_at.eq(now),
            followers::updated_at.eq(now),
        ))
        .on_conflict((followers::blog_id, followers::actor_id))
        .do_update()
        .set((
            followers::status.eq(status.as_str()),
            followers::follow_ap_id.eq(follow_ap_id),
            followers::updated_at.eq(now),
        ))
        .execute(c))?;
    Ok(status)
}

/// Accepts a pending follow; returns whether there was one.
pub fn accept_follower(conn: &mut DbConnection, blog_id: i64, actor_id: i64) -> QueryResult<bool> {
    let updated = diesel::update(followers::table.find((blog_id, actor_id)))
        .set((
            followers::status.eq(FollowStatus::Accepted.as_str()),
            followers::updated_at.eq(crate::domain::now()),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Removes a follower (unfollowed, refused, removed, blocked us); returns their Follow
/// id if they were one.
pub fn remove_follower(
    conn: &mut DbConnection,
    blog_id: i64,
    actor_id: i64,
) -> QueryResult<Option<String>> {
    let follow: Option<String> = followers::table
        .find((blog_id, actor_id))
        .select(followers::follow_ap_id)
        .first(conn)
        .optional()?;
    diesel::delete(followers::table.find((blog_id, actor_id))).execute(conn)?;
    Ok(follow)
}

/// Ends the follow with this Follow id, if the account made it (an Undo that names the
/// Follow by id alone, as some servers send).
pub fn remove_follow_by_id(
    conn: &mut DbConnection,
    follow_ap_id: &str,
    actor_id: i64,
) -> QueryResult<usize> {
    diesel::delete(
        followers::table
            .filter(followers::follow_ap_id.eq(follow_ap_id))
            .filter(followers::actor_id.eq(actor_id)),
    )
    .execute(conn)
}

/// A blog's followers (accepted or pending), newest first.
pub fn followers_of(
    conn: &mut DbConnection,
    blog_id: i64,
    status: FollowStatus,
) -> QueryResult<Vec<Follower>> {
    let rows: Vec<(ActorRow, String, String, NaiveDateTime)> = followers::table
        .inner_join(actors::table)
        .filter(followers::blog_id.eq(blog_id))
        .filter(followers::status.eq(status.as_str()))
        .order(followers::created_at.desc())
        .select((
            ActorRow::as_select(),
            followers::status,
            followers::follow_ap_id,
            followers::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(actor, status, follow_ap_id, created_at)| Follower {
            actor,
            status,
            follow_ap_id,
            created_at,
        })
        .collect())
}

/// How many accounts follow a blog.
pub fn follower_count(conn: &mut DbConnection, blog_id: i64) -> QueryResult<i64> {
    followers::table
        .filter(followers::blog_id.eq(blog_id))
        .filter(followers::status.eq(FollowStatus::Accepted.as_str()))
        .count()
        .get_result(conn)
}

/// Whether an account follows a blog (accepted).
pub fn is_follower(conn: &mut DbConnection, blog_id: i64, actor_id: i64) -> QueryResult<bool> {
    let n: i64 = followers::table
        .filter(followers::blog_id.eq(blog_id))
        .filter(followers::actor_id.eq(actor_id))
        .filter(followers::status.eq(FollowStatus::Accepted.as_str()))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The inboxes a blog's activities go to: one per server with a shared inbox, else each
/// follower's own; deleted and moved accounts and blocked servers left out.
pub fn follower_inboxes(conn: &mut DbConnection, blog_id: i64) -> QueryResult<Vec<String>> {
    let rows: Vec<(String, Option<String>, String)> = followers::table
        .inner_join(actors::table)
        .filter(followers::blog_id.eq(blog_id))
        .filter(followers::status.eq(FollowStatus::Accepted.as_str()))
        .filter(actors::deleted_at.is_null())
        .filter(actors::moved_to.is_null())
        .select((actors::inbox, actors::shared_inbox, actors::domain))
        .load(conn)?;
    delivery_inboxes(conn, rows)
}

/// The inboxes of accounts that replied to, liked or boosted a post: their servers hold
/// a copy of it, which its Update and Delete must reach (as Mastodon's reach does).
pub fn interacted_inboxes(conn: &mut DbConnection, post_id: i64) -> QueryResult<Vec<String>> {
    let mut rows: Vec<(String, Option<String>, String)> = replies::table
        .inner_join(actors::table)
        .filter(replies::post_id.eq(post_id))
        .filter(actors::deleted_at.is_null())
        .select((actors::inbox, actors::shared_inbox, actors::domain))
        .distinct()
        .load(conn)?;
    rows.extend(
        reactions::table
            .inner_join(actors::table)
            .filter(reactions::post_id.eq(post_id))
            .filter(actors::deleted_at.is_null())
            .select((actors::inbox, actors::shared_inbox, actors::domain))
            .distinct()
            .load::<(String, Option<String>, String)>(conn)?,
    );
    delivery_inboxes(conn, rows)
}

/// Where to deliver to accounts given as (inbox, shared inbox, server): the shared inbox
/// where there is one, each once, servers blocked by the instance left out.
pub fn delivery_inboxes(
    conn: &mut DbConnection,
    rows: Vec<(String, Option<String>, String)>,
) -> QueryResult<Vec<String>> {
    let rejected = RejectedDomains::load(conn)?;
    let mut inboxes: Vec<String> = rows
        .into_iter()
        .filter(|(_, _, domain)| !rejected.covers(domain))
        .map(|(inbox, shared, _)| shared.unwrap_or(inbox))
        .collect();
    inboxes.sort();
    inboxes.dedup();
    Ok(inboxes)
}

/// Moves a blog's follow from one account to another (the follower moved).
pub fn move_follower(
    conn: &mut DbConnection,
    from_actor: i64,
    to_actor: i64,
) -> QueryResult<usize> {
    let follows: Vec<(i64, String, String)> = followers::table
        .filter(followers::actor_id.eq(from_actor))
        .select((
            followers::blog_id,
            followers::status,
            followers::follow_ap_id,
        ))
        .load(conn)?;
    for (blog_id, status, follow_ap_id) in &follows {
        let status = if status == "accepted" {
            FollowStatus::Accepted
        } else {
            FollowStatus::Pending
        };
        add_follower(conn, *blog_id, to_actor, follow_ap_id, status)?;
        diesel::delete(followers::table.find((*blog_id, from_actor))).execute(conn)?;
    }
    Ok(follows.len())
}

// ---------------------------------------------------------------------------------------
// Replies

/// Where a reply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    /// Waiting for moderation.
    Held,
    /// Shown under the post.
    Approved,
    /// Turned down.
    Rejected,
    /// Taken down after being shown.
    Hidden,
}

impl ReplyStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Hidden => "hidden",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "held" => Some(Self::Held),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            "hidden" => Some(Self::Hidden),
            _ => None,
        }
    }
}

/// A blog's rule for replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyPolicy {
    /// Every reply waits for moderation (the default).
    Held,
    /// Followers' replies appear at once; others wait.
    Followers,
    /// Every reply appears at once.
    Open,
}

impl ReplyPolicy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Followers => "followers",
            Self::Open => "open",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "held" => Some(Self::Held),
            "followers" => Some(Self::Followers),
            "open" => Some(Self::Open),
            _ => None,
        }
    }
}

/// Who a reply was addressed to, read from its `to` and `cc` as Mastodon reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Addressed to the public.
    Public,
    /// The public only in `cc`: shown, but kept out of public timelines.
    Unlisted,
    /// Followers-only or direct: never shown anywhere but the moderation queue.
    Private,
}

impl Visibility {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unlisted => "unlisted",
            Self::Private => "private",
        }
    }

    /// Parses a stored name; anything unknown is private, the safe reading.
    pub fn parse(value: &str) -> Self {
        match value {
            "public" => Self::Public,
            "unlisted" => Self::Unlisted,
            _ => Self::Private,
        }
    }

    /// Reads an object's addressing (`to` and `cc`: a URL or a list of them).
    pub fn of(object: &serde_json::Value) -> Self {
        let public_in = |field: &str| {
            object
                .get(field)
                .map(super::actors::urls)
                .unwrap_or_default()
                .iter()
                .any(|a| is_public_address(a))
        };
        if public_in("to") {
            Self::Public
        } else if public_in("cc") {
            Self::Unlisted
        } else {
            Self::Private
        }
    }

    /// Whether a reply with this addressing may be shown to readers.
    pub fn is_shown(self) -> bool {
        self != Self::Private
    }
}

/// The public collection, in the three spellings servers send.
fn is_public_address(address: &str) -> bool {
    matches!(address, super::PUBLIC | "as:Public" | "Public")
}

/// The stored visibilities that may be shown.
const SHOWN_VISIBILITIES: [&str; 2] = ["public", "unlisted"];

/// A reply row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = replies)]
pub struct Reply {
    /// Row id.
    pub id: i64,
    /// The blog it was sent to.
    pub blog_id: i64,
    /// The post it answers (none for a bare mention).
    pub post_id: Option<i64>,
    /// Its ActivityPub id.
    pub ap_id: String,
    /// Its author; none when the blog wrote it.
    pub actor_id: Option<i64>,
    /// The reply it answers, in a thread under the post.
    pub parent_id: Option<i64>,
    /// What it answers, as sent.
    pub in_reply_to: String,
    /// Its page on its own server.
    pub url: Option<String>,
    /// Its text, sanitised.
    pub content_html: SafeHtml,
    /// Its content warning.
    pub summary: Option<String>,
    /// Whether its author marked it sensitive.
    pub sensitive: bool,
    /// See [`ReplyStatus`].
    pub status: String,
    /// When its author published it.
    pub published_at: NaiveDateTime,
    /// When its author last edited it.
    pub edited_at: Option<NaiveDateTime>,
    /// When we got it.
    pub created_at: NaiveDateTime,
    /// When it last changed here.
    pub updated_at: NaiveDateTime,
    /// See [`Visibility`].
    pub visibility: String,
}

impl Reply {
    /// Its status.
    pub fn status(&self) -> ReplyStatus {
        ReplyStatus::parse(&self.status).unwrap_or(ReplyStatus::Held)
    }

    /// Who it was addressed to.
    pub fn visibility(&self) -> Visibility {
        Visibility::parse(&self.visibility)
    }

    /// Whether readers see it: approved, and addressed to the public.
    pub fn is_shown(&self) -> bool {
        self.status() == ReplyStatus::Approved && self.visibility().is_shown()
    }
}

/// Approved and addressed to the public: what pages, collections and emails show.
pub fn shown_replies() -> diesel::dsl::And<
    diesel::dsl::Eq<replies::status, &'static str>,
    diesel::dsl::EqAny<replies::visibility, [&'static str; 2]>,
> {
    replies::status
        .eq(ReplyStatus::Approved.as_str())
        .and(replies::visibility.eq_any(SHOWN_VISIBILITIES))
}

/// A reply as received, ready to store.
pub struct NewReply<'a> {
    /// The blog.
    pub blog_id: i64,
    /// The post.
    pub post_id: Option<i64>,
    /// Its id.
    pub ap_id: &'a str,
    /// Its author.
    pub actor_id: Option<i64>,
    /// The reply it answers.
    pub parent_id: Option<i64>,
    /// What it answers.
    pub in_reply_to: &'a str,
    /// Its page.
    pub url: Option<&'a str>,
    /// Its text.
    pub content_html: SafeHtml,
    /// Its content warning.
    pub summary: Option<&'a str>,
    /// Sensitive.
    pub sensitive: bool,
    /// Held or approved.
    pub status: ReplyStatus,
    /// Who it was addressed to.
    pub visibility: Visibility,
    /// When published.
    pub published_at: NaiveDateTime,
}

/// Stores a reply; false if one with the same id is already there.
pub fn insert_reply(conn: &mut DbConnection, reply: &NewReply<'_>) -> QueryResult<bool> {
    let now = crate::domain::now();
    let inserted = on_backend!(conn, |c| diesel::insert_into(replies::table)
        .values((
            replies::blog_id.eq(reply.blog_id),
            replies::post_id.eq(reply.post_id),
            replies::ap_id.eq(reply.ap_id),
            replies::actor_id.eq(reply.actor_id),
            replies::parent_id.eq(reply.parent_id),
            replies::in_reply_to.eq(reply.in_reply_to),
            replies::url.eq(reply.url),
            replies::content_html.eq(&reply.content_html),
            replies::summary.eq(reply.summary),
            replies::sensitive.eq(reply.sensitive),
            replies::status.eq(reply.status.as_str()),
            replies::published_at.eq(reply.published_at),
            replies::created_at.eq(now),
            replies::updated_at.eq(now),
            replies::visibility.eq(reply.visibility.as_str()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// The reply with this ActivityPub id.
pub fn reply_by_ap_id(conn: &mut DbConnection, ap_id: &str) -> QueryResult<Option<Reply>> {
    replies::table
        .filter(replies::ap_id.eq(ap_id))
        .select(Reply::as_select())
        .first(conn)
        .optional()
}

/// The reply with this id on this blog.
pub fn reply_in_blog(conn: &mut DbConnection, blog_id: i64, id: i64) -> QueryResult<Option<Reply>> {
    replies::table
        .filter(replies::id.eq(id))
        .filter(replies::blog_id.eq(blog_id))
        .select(Reply::as_select())
        .first(conn)
        .optional()
}

/// The account a reply answers (for the blog's answers: the person it answered), if it
/// answers one of this blog's replies from another server.
pub fn answered_account(
    conn: &mut DbConnection,
    blog_id: i64,
    reply: &Reply,
) -> QueryResult<Option<ActorRow>> {
    let Some(parent) = reply.parent_id else {
        return Ok(None);
    };
    match reply_in_blog(conn, blog_id, parent)?.and_then(|p| p.actor_id) {
        Some(actor) => actor_row(conn, actor),
        None => Ok(None),
    }
}

/// Replaces a reply's text after its author edited it; an approved reply goes back to
/// moderation unless the blog's policy would approve it anyway.
pub fn edit_reply(conn: &mut DbConnection, id: i64, edit: &ReplyEdit) -> QueryResult<()> {
    diesel::update(replies::table.find(id))
        .set((
            replies::content_html.eq(&edit.content_html),
            replies::summary.eq(&edit.summary),
            replies::sensitive.eq(edit.sensitive),
            replies::status.eq(edit.status.as_str()),
            replies::visibility.eq(edit.visibility.as_str()),
            replies::edited_at.eq(edit.edited_at),
            replies::updated_at.eq(crate::domain::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// A reply as its author edited it, judged again.
pub struct ReplyEdit {
    /// Its new text, sanitised.
    pub content_html: SafeHtml,
    /// Its content warning.
    pub summary: Option<String>,
    /// Sensitive.
    pub sensitive: bool,
    /// Its status now.
    pub status: ReplyStatus,
    /// Who it is addressed to now.
    pub visibility: Visibility,
    /// When it was edited.
    pub edited_at: NaiveDateTime,
}

/// Sets a reply's status (a moderation decision). A private reply is never approved:
/// false, and nothing changes, when that is asked for.
pub fn set_reply_status(
    conn: &mut DbConnection,
    id: i64,
    status: ReplyStatus,
) -> QueryResult<bool> {
    let target = replies::table.find(id);
    let changes = (
        replies::status.eq(status.as_str()),
        replies::updated_at.eq(crate::domain::now()),
    );
    let changed = if status == ReplyStatus::Approved {
        diesel::update(target.filter(replies::visibility.eq_any(SHOWN_VISIBILITIES)))
            .set(changes)
            .execute(conn)?
    } else {
        diesel::update(target).set(changes).execute(conn)?
    };
    Ok(changed == 1)
}

/// Deletes a reply by its id, if the given account wrote it.
pub fn delete_reply_by(conn: &mut DbConnection, ap_id: &str, actor_id: i64) -> QueryResult<usize> {
    diesel::delete(
        replies::table
            .filter(replies::ap_id.eq(ap_id))
            .filter(replies::actor_id.eq(actor_id)),
    )
    .execute(conn)
}

/// A reply with its author, for pages and digests.
#[derive(Debug, Clone)]
pub struct ReplyView {
    /// The reply.
    pub reply: Reply,
    /// Its author (none for the blog's own answers).
    pub author: Option<ActorRow>,
}

/// Replies on a blog with this status, newest first (the moderation queue).
pub fn replies_for_blog(
    conn: &mut DbConnection,
    blog_id: i64,
    statuses: &[ReplyStatus],
    limit: i64,
) -> QueryResult<Vec<ReplyView>> {
    let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let rows: Vec<(Reply, Option<ActorRow>)> = replies::table
        .left_join(actors::table)
        .filter(replies::blog_id.eq(blog_id))
        .filter(replies::status.eq_any(statuses))
        .order(replies::created_at.desc())
        .limit(limit)
        .select((Reply::as_select(), Option::<ActorRow>::as_select()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(reply, author)| ReplyView { reply, author })
        .collect())
}

/// A post's shown replies, oldest first (threads are built from `parent_id`).
pub fn approved_replies(conn: &mut DbConnection, post_id: i64) -> QueryResult<Vec<ReplyView>> {
    let rows: Vec<(Reply, Option<ActorRow>)> = replies::table
        .left_join(actors::table)
        .filter(replies::post_id.eq(post_id))
        .filter(shown_replies())
        .order((replies::published_at.asc(), replies::id.asc()))
        .select((Reply::as_select(), Option::<ActorRow>::as_select()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(reply, author)| ReplyView { reply, author })
        .collect())
}

/// When a post's shown replies or reactions last changed, and how many there are (part
/// of the post page's validators).
pub fn conversation_version(conn: &mut DbConnection, post_id: i64) -> QueryResult<String> {
    let replies_changed: Option<NaiveDateTime> = replies::table
        .filter(replies::post_id.eq(post_id))
        .select(diesel::dsl::max(replies::updated_at))
        .first(conn)?;
    let reaction_count: i64 = reactions::table
        .filter(reactions::post_id.eq(post_id))
        .count()
        .get_result(conn)?;
    Ok(format!("{replies_changed:?}/{reaction_count}"))
}

/// Held replies waiting on a blog.
pub fn held_count(conn: &mut DbConnection, blog_id: i64) -> QueryResult<i64> {
    replies::table
        .filter(replies::blog_id.eq(blog_id))
        .filter(replies::status.eq(ReplyStatus::Held.as_str()))
        .count()
        .get_result(conn)
}

/// Removes an account's replies and reactions everywhere (it was deleted).
pub fn forget_actor(conn: &mut DbConnection, actor_id: i64) -> QueryResult<()> {
    diesel::delete(replies::table.filter(replies::actor_id.eq(actor_id))).execute(conn)?;
    diesel::delete(reactions::table.filter(reactions::actor_id.eq(actor_id))).execute(conn)?;
    diesel::delete(followers::table.filter(followers::actor_id.eq(actor_id))).execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reactions

/// A like or a boost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReactionKind {
    /// Like (favourite).
    Like,
    /// Announce (boost).
    Announce,
}

impl ReactionKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Like => "like",
            Self::Announce => "announce",
        }
    }
}

/// Records a like or boost (once per account, post and kind).
pub fn add_reaction(
    conn: &mut DbConnection,
    post_id: i64,
    actor_id: i64,
    kind: ReactionKind,
    ap_id: &str,
) -> QueryResult<bool> {
    let inserted = on_backend!(conn, |c| diesel::insert_into(reactions::table)
        .values((
            reactions::post_id.eq(post_id),
            reactions::actor_id.eq(actor_id),
            reactions::kind.eq(kind.as_str()),
            reactions::ap_id.eq(ap_id),
            reactions::created_at.eq(crate::domain::now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// Undoes a like or boost by its activity id (only the account's own).
pub fn remove_reaction(conn: &mut DbConnection, ap_id: &str, actor_id: i64) -> QueryResult<usize> {
    diesel::delete(
        reactions::table
            .filter(reactions::ap_id.eq(ap_id))
            .filter(reactions::actor_id.eq(actor_id)),
    )
    .execute(conn)
}

// ---------------------------------------------------------------------------------------
// Received activities

/// Records an activity id; false if it was already received (a redelivery).
pub fn first_receipt(conn: &mut DbConnection, ap_id: &str) -> QueryResult<bool> {
    let inserted = on_backend!(conn, |c| diesel::insert_into(received_activities::table)
        .values((
            received_activities::ap_id.eq(ap_id),
            received_activities::received_at.eq(crate::domain::now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// Forgets received ids older than `age` (redeliveries come within days).
pub fn prune_received(conn: &mut DbConnection, age: chrono::Duration) -> QueryResult<usize> {
    diesel::delete(
        received_activities::table
            .filter(received_activities::received_at.lt(crate::domain::now() - age)),
    )
    .execute(conn)
}

// ---------------------------------------------------------------------------------------
// Blocks

/// What an instance domain block does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSeverity {
    /// Refuse everything from the domain (403) and deliver nothing to it.
    Reject,
    /// Accept, but hold every reply for moderation.
    Hold,
}

impl BlockSeverity {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::Hold => "hold",
        }
    }

    /// Parses a stored or typed name (Mastodon's `suspend` is our `reject`, `silence`
    /// our `hold`).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "reject" | "suspend" => Some(Self::Reject),
            "hold" | "silence" | "limit" => Some(Self::Hold),
            _ => None,
        }
    }
}

/// An instance-wide domain block.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = domain_blocks)]
pub struct DomainBlock {
    /// The domain (and its subdomains).
    pub domain: String,
    /// `reject` or `hold`.
    pub severity: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub created_at: NaiveDateTime,
}

/// Whether `host` is `blocked` or one of its subdomains.
pub fn domain_matches(host: &str, blocked: &str) -> bool {
    let host = bare_host(host);
    let blocked = blocked.to_ascii_lowercase();
    host == blocked || host.ends_with(&format!(".{blocked}"))
}

/// A host without its port, lower-cased: what domain blocks name.
fn bare_host(host: &str) -> String {
    host.split(':').next().unwrap_or(host).to_ascii_lowercase()
}

/// A domain and each domain it sits under (`a.b.example`, `b.example`, `example`): a
/// block on any of them covers it.
fn domain_and_parents(domain: &str) -> Vec<&str> {
    std::iter::successors(Some(domain), |d| {
        d.split_once('.').map(|(_, parent)| parent)
    })
    .collect()
}

/// The instance block that applies to a host, if any: one indexed lookup of the host and
/// its parent domains (a block on `example.com` covers `social.example.com`), so a long
/// imported blocklist costs no more per request than a short one.
pub fn domain_block_for(conn: &mut DbConnection, host: &str) -> QueryResult<Option<BlockSeverity>> {
    let host = bare_host(host);
    let severities: Vec<String> = domain_blocks::table
        .filter(domain_blocks::domain.eq_any(domain_and_parents(&host)))
        .select(domain_blocks::severity)
        .load(conn)?;
    // Reject wins over hold when both a domain and its parent are listed.
    let severities: Vec<BlockSeverity> = severities
        .iter()
        .filter_map(|s| BlockSeverity::parse(s))
        .collect();
    Ok(if severities.contains(&BlockSeverity::Reject) {
        Some(BlockSeverity::Reject)
    } else {
        severities.first().copied()
    })
}

/// The servers this instance rejects, read at once, for checking many hosts (a fan-out,
/// the delivery workers) without a query each: a lookup costs one hash probe per label of
/// the host, however long an imported blocklist is.
#[derive(Debug, Default, Clone)]
pub struct RejectedDomains(std::collections::HashSet<String>);

impl RejectedDomains {
    /// The current list.
    pub fn load(conn: &mut DbConnection) -> QueryResult<Self> {
        let domains: Vec<String> = domain_blocks::table
            .filter(domain_blocks::severity.eq(BlockSeverity::Reject.as_str()))
            .select(domain_blocks::domain)
            .load(conn)?;
        Ok(Self(domains.iter().map(|d| bare_host(d)).collect()))
    }

    /// Whether the host (with or without a port), or a domain it sits under, is rejected.
    pub fn covers(&self, host: &str) -> bool {
        domain_and_parents(&bare_host(host))
            .iter()
            .any(|d| self.0.contains(*d))
    }
}

/// Adds or changes an instance domain block.
pub fn block_domain(
    conn: &mut DbConnection,
    domain: &str,
    severity: BlockSeverity,
    reason: Option<&str>,
) -> QueryResult<()> {
    let now = crate::domain::now();
    on_backend!(conn, |c| diesel::insert_into(domain_blocks::table)
        .values((
            domain_blocks::domain.eq(domain),
            domain_blocks::severity.eq(severity.as_str()),
            domain_blocks::reason.eq(reason),
            domain_blocks::created_at.eq(now),
        ))
        .on_conflict(domain_blocks::domain)
        .do_update()
        .set((
            domain_blocks::severity.eq(severity.as_str()),
            domain_blocks::reason.eq(reason),
        ))
        .execute(c))?;
    Ok(())
}

/// Lifts an instance domain block.
pub fn unblock_domain(conn: &mut DbConnection, domain: &str) -> QueryResult<usize> {
    diesel::delete(domain_blocks::table.find(domain)).execute(conn)
}

/// Every instance domain block, by domain.
pub fn domain_blocks(conn: &mut DbConnection) -> QueryResult<Vec<DomainBlock>> {
    domain_blocks::table
        .order(domain_blocks::domain.asc())
        .select(DomainBlock::as_select())
        .load(conn)
}

/// Blocks an account instance-wide.
pub fn block_account(
    conn: &mut DbConnection,
    actor_ap_id: &str,
    reason: Option<&str>,
) -> QueryResult<()> {
    // A savepoint: an existing block must not abort the caller's transaction.
    let inserted = crate::db::write_tx(conn, |c| {
        diesel::insert_into(account_blocks::table)
            .values((
                account_blocks::actor_ap_id.eq(actor_ap_id),
                account_blocks::reason.eq(reason),
                account_blocks::created_at.eq(crate::domain::now()),
            ))
            .execute(c)
    });
    match inserted {
        Err(e) if !is_unique_violation(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Lifts an instance account block.
pub fn unblock_account(conn: &mut DbConnection, actor_ap_id: &str) -> QueryResult<usize> {
    diesel::delete(account_blocks::table.find(actor_ap_id)).execute(conn)
}

/// Instance account blocks, newest first.
pub fn account_blocks(
    conn: &mut DbConnection,
) -> QueryResult<Vec<(String, Option<String>, NaiveDateTime)>> {
    account_blocks::table
        .order(account_blocks::created_at.desc())
        .select((
            account_blocks::actor_ap_id,
            account_blocks::reason,
            account_blocks::created_at,
        ))
        .load(conn)
}

/// What a blog blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlogBlockKind {
    /// One account.
    Account,
    /// A whole domain.
    Domain,
}

impl BlogBlockKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Domain => "domain",
        }
    }
}

/// A blog blocks an account or domain: its replies to the blog are dropped.
pub fn blog_block(
    conn: &mut DbConnection,
    blog_id: i64,
    kind: BlogBlockKind,
    target: &str,
) -> QueryResult<()> {
    // Domains are matched as stored (see `is_blocked`).
    let target = match kind {
        BlogBlockKind::Account => target.to_owned(),
        BlogBlockKind::Domain => bare_host(target),
    };
    // A savepoint: an existing block must not abort the caller's transaction.
    let inserted = crate::db::write_tx(conn, |c| {
        diesel::insert_into(blog_blocks::table)
            .values((
                blog_blocks::blog_id.eq(blog_id),
                blog_blocks::kind.eq(kind.as_str()),
                blog_blocks::target.eq(&target),
                blog_blocks::created_at.eq(crate::domain::now()),
            ))
            .execute(c)
    });
    match inserted {
        Err(e) if !is_unique_violation(&e) => Err(e),
        _ => Ok(()),
    }
}

/// A blog's blocks: (kind, target), newest first.
pub fn blog_blocks(conn: &mut DbConnection, blog_id: i64) -> QueryResult<Vec<(String, String)>> {
    blog_blocks::table
        .filter(blog_blocks::blog_id.eq(blog_id))
        .order(blog_blocks::created_at.desc())
        .select((blog_blocks::kind, blog_blocks::target))
        .load(conn)
}

/// Lifts a blog's block.
pub fn blog_unblock(
    conn: &mut DbConnection,
    blog_id: i64,
    kind: &str,
    target: &str,
) -> QueryResult<usize> {
    diesel::delete(blog_blocks::table.find((blog_id, kind, target))).execute(conn)
}

/// Whether the account is blocked instance-wide or by this blog (by account or domain).
pub fn is_blocked(
    conn: &mut DbConnection,
    blog_id: Option<i64>,
    actor: &RemoteActor,
) -> QueryResult<bool> {
    let server_block = domain_block_for(conn, &actor.domain)?;
    is_blocked_with(conn, blog_id, actor, server_block)
}

/// [`is_blocked`] for a caller that has already looked up the instance block on the
/// account's server (the inbox does so before it verifies anything).
pub fn is_blocked_with(
    conn: &mut DbConnection,
    blog_id: Option<i64>,
    actor: &RemoteActor,
    server_block: Option<BlockSeverity>,
) -> QueryResult<bool> {
    use diesel::dsl::exists;

    if server_block == Some(BlockSeverity::Reject) {
        return Ok(true);
    }
    let by_instance = account_blocks::table.filter(account_blocks::actor_ap_id.eq(&actor.ap_id));
    let Some(blog_id) = blog_id else {
        return diesel::select(exists(by_instance)).get_result(conn);
    };
    let host = bare_host(&actor.domain);
    let by_blog = blog_blocks::table
        .filter(blog_blocks::blog_id.eq(blog_id))
        .filter(
            (blog_blocks::kind
                .eq(BlogBlockKind::Account.as_str())
                .and(blog_blocks::target.eq(&actor.ap_id)))
            .or(blog_blocks::kind
                .eq(BlogBlockKind::Domain.as_str())
                .and(blog_blocks::target.eq_any(domain_and_parents(&host)))),
        );
    // One statement: the inbox asks this for every reply.
    diesel::select(exists(by_instance).or(exists(by_blog))).get_result(conn)
}

// ---------------------------------------------------------------------------------------
// Reports

/// A report from another server.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reports)]
pub struct Report {
    /// Row id.
    pub id: i64,
    /// The Flag's id.
    pub ap_id: String,
    /// Who reported (often the server's own actor).
    pub actor_id: Option<i64>,
    /// JSON list of what was reported.
    pub objects: String,
    /// Their comment.
    pub content: Option<String>,
    /// `open` or `resolved`.
    pub status: String,
    /// When.
    pub created_at: NaiveDateTime,
}

/// Files a report.
pub fn add_report(
    conn: &mut DbConnection,
    ap_id: &str,
    actor_id: i64,
    objects: &[String],
    content: Option<&str>,
) -> Result<(), FederationError> {
    let objects =
        serde_json::to_string(objects).map_err(|e| FederationError::Invalid(e.to_string()))?;
    on_backend!(conn, |c| diesel::insert_into(reports::table)
        .values((
            reports::ap_id.eq(ap_id),
            reports::actor_id.eq(actor_id),
            reports::objects.eq(&objects),
            reports::content.eq(content),
            reports::status.eq("open"),
            reports::created_at.eq(crate::domain::now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

/// Reports, open first, newest first.
pub fn reports(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<Report>> {
    reports::table
        .order((reports::status.desc(), reports::created_at.desc()))
        .limit(limit)
        .select(Report::as_select())
        .load(conn)
}

/// Marks a report dealt with.
pub fn resolve_report(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::update(reports::table.find(id))
        .set(reports::status.eq("resolved"))
        .execute(conn)
}

/// The account with this row id.
pub fn actor_row(conn: &mut DbConnection, id: i64) -> QueryResult<Option<ActorRow>> {
    actors::table
        .find(id)
        .select(ActorRow::as_select())
        .first(conn)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_match_subdomains() {
        assert!(domain_matches("bad.example", "bad.example"));
        assert!(domain_matches("m.bad.example:8443", "bad.example"));
        assert!(!domain_matches("notbad.example", "bad.example"));
        assert_eq!(BlockSeverity::parse("suspend"), Some(BlockSeverity::Reject));
        assert_eq!(BlockSeverity::parse("silence"), Some(BlockSeverity::Hold));
        let rejected = RejectedDomains(["bad.example".to_owned()].into());
        assert!(rejected.covers("bad.example"));
        assert!(rejected.covers("m.BAD.example:8443"));
        assert!(!rejected.covers("notbad.example"));
        assert!(!rejected.covers("example"));
    }

    #[test]
    fn visibility_is_read_as_mastodon_addresses() {
        let of = |v: serde_json::Value| Visibility::of(&v);
        assert_eq!(
            of(serde_json::json!({ "to": super::super::PUBLIC })),
            Visibility::Public
        );
        assert_eq!(
            of(serde_json::json!({ "to": ["as:Public"] })),
            Visibility::Public
        );
        assert_eq!(
            of(
                serde_json::json!({ "to": ["https://m.example/users/a/followers"], "cc": ["Public"] })
            ),
            Visibility::Unlisted
        );
        assert_eq!(
            of(serde_json::json!({ "to": ["https://m.example/users/a/followers"] })),
            Visibility::Private
        );
        assert_eq!(of(serde_json::json!({})), Visibility::Private);
        assert_eq!(Visibility::parse("something new"), Visibility::Private);
    }
}
