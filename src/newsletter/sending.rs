//! Getting posts and digests to subscribers through the durable job queue.
//!
//! A post going public queues one `newsletter_fanout` job in the same transaction (see
//! `publishing::go_live`). That job walks the blog's subscribers in id order, a batch
//! a transaction: each batch records what every reader in it was sent, queues one small
//! `newsletter_email` job per reader (idempotency key `newsletter:<send>:<subscriber>`)
//! and moves the send's cursor on. Suppressed addresses are left out. A crash between batches resumes at the cursor; a crash inside a
//! batch rolls it back whole. So 100,000 subscribers never make one giant transaction,
//! and a `kill -9` loses nothing and sends nothing twice.
//!
//! Digests: a `newsletter_digest` job waits for each cadence's next time; when it runs
//! it opens a send (and a fan-out) per blog, and queues the next one. Both are keyed by
//! their period, so however many nodes start, each digest is queued once.
//!
//! A `newsletter_email` job names only the send and the subscriber: its handler renders
//! the message when it runs (the posts, replies and counts of a send are loaded once and
//! kept in memory while the send goes out) and hands it to the mail layer's exactly-once
//! send. So a 100,000-reader send writes 100,000 rows of a few dozen bytes, not a
//! gigabyte of rendered mail. A reader who unsubscribed, paused or was erased since the
//! fan-out is skipped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::digest::{self, Schedule};
use super::template::{self, Item, ReplyItem};
use super::tokens::{Purpose, Signer};
use super::{Cadence, subscribers};
use crate::config::Settings;
use crate::db::schema::{
    jobs as job_rows, mail_suppressions, newsletter_received, newsletter_sends,
    newsletter_subscribers, newsletter_subscriptions, posts,
};
use crate::db::{DbConnection, Pool, write_tx};
use crate::domain::blogs::{self, Blog};
use crate::domain::posts::{Post, Status};
use crate::error::AppError;
use crate::federation::{moderation, objects};
use crate::jobs::runner::{Handler, HandlerFuture, Outcome};
use crate::jobs::{self, Job, NewJob};
use crate::mail::{Bulk, Email, EmailHandler};
use crate::on_backend;

/// The job that fans a send out to subscribers.
pub const FANOUT_JOB: &str = "newsletter_fanout";
/// The job that opens a digest's sends when its time comes.
pub const DIGEST_JOB: &str = "newsletter_digest";
/// The job that renders and sends one reader's email of a send.
pub const EMAIL_JOB: &str = "newsletter_email";
/// Why a reader's email was not sent: recorded on the dropped job, and not a bounce.
const SKIPPED: &str = "skipped";
/// Sends whose shared part is kept in memory at once.
const CACHED_SENDS: usize = 8;
/// Subscribers queued per transaction.
const BATCH: i64 = 500;
/// Replies shown under each post in a digest.
const TOP_REPLIES: usize = 3;
/// Posts in one digest at most.
const DIGEST_POSTS: i64 = 30;

/// A `newsletter_fanout` job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fanout {
    /// The send.
    pub send_id: i64,
    /// For digests: when it was due (the end of the window of posts it covers).
    #[serde(default)]
    pub due: Option<NaiveDateTime>,
}

/// A `newsletter_digest` job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DigestDue {
    /// Daily or weekly.
    pub cadence: Cadence,
    /// The local date that names it.
    pub period: String,
    /// When it is due (UTC).
    pub due: NaiveDateTime,
}

/// A `newsletter_email` job's payload: whose email, of which send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Letter {
    /// The send.
    pub send: i64,
    /// The subscriber.
    pub subscriber: i64,
    /// For digests: when it was due (names it and bounds its posts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDateTime>,
}

/// A send row: one post or digest of one blog going out.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = newsletter_sends)]
pub struct Send {
    /// Row id.
    pub id: i64,
    /// The blog.
    pub blog_id: i64,
    /// `post`, `daily` or `weekly`.
    pub kind: String,
    /// The post, for a post's send.
    pub post_id: Option<i64>,
    /// `post-<id>` or the digest's date.
    pub period: String,
    /// The last subscriber queued.
    pub fanout_cursor: i64,
    /// Emails queued.
    pub recipients: i64,
    /// Opens counted (tracking on only).
    pub opens: i64,
    /// Clicks counted (tracking on only).
    pub clicks: i64,
    /// When it started.
    pub created_at: NaiveDateTime,
    /// When every subscriber had been queued.
    pub finished_at: Option<NaiveDateTime>,
}

impl Send {
    /// The cadence whose subscribers it goes to.
    pub fn cadence(&self) -> Cadence {
        match self.kind.as_str() {
            "daily" => Cadence::Daily,
            "weekly" => Cadence::Weekly,
            _ => Cadence::EachPost,
        }
    }
}

fn serialization(e: serde_json::Error) -> diesel::result::Error {
    diesel::result::Error::SerializationError(Box::new(e))
}

/// Opens a send (once per blog, kind and period) and queues its fan-out. Returns the
/// send's id.
fn open_send(
    conn: &mut DbConnection,
    blog_id: i64,
    kind: &str,
    post_id: Option<i64>,
    period: &str,
    due: Option<NaiveDateTime>,
) -> QueryResult<i64> {
    let now = crate::domain::now();
    on_backend!(conn, |c| diesel::insert_into(newsletter_sends::table)
        .values((
            newsletter_sends::blog_id.eq(blog_id),
            newsletter_sends::kind.eq(kind),
            newsletter_sends::post_id.eq(post_id),
            newsletter_sends::period.eq(period),
            newsletter_sends::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    let send_id: i64 = newsletter_sends::table
        .filter(newsletter_sends::blog_id.eq(blog_id))
        .filter(newsletter_sends::kind.eq(kind))
        .filter(newsletter_sends::period.eq(period))
        .select(newsletter_sends::id)
        .first(conn)?;
    let job = NewJob::new(FANOUT_JOB, &Fanout { send_id, due })
        .map_err(serialization)?
        .key(format!("newsletter-fanout:{send_id}"));
    jobs::enqueue(conn, &job)?;
    Ok(send_id)
}

/// Queues the emails for a post that just went public. Call in that transaction.
pub fn post_published(conn: &mut DbConnection, post: &Post) -> QueryResult<()> {
    open_send(
        conn,
        post.blog_id,
        "post",
        Some(post.id),
        &format!("post-{}", post.id),
        None,
    )
    .map(|_| ())
}

/// Makes sure the next daily and weekly digests are queued (idempotent: call at every
/// start).
pub fn schedule_digests(
    conn: &mut DbConnection,
    schedule: &Schedule,
    after: NaiveDateTime,
) -> QueryResult<()> {
    for cadence in [Cadence::Daily, Cadence::Weekly] {
        if let Some((due, period)) = schedule.next(cadence, after) {
            queue_digest(conn, cadence, period, due)?;
        }
    }
    Ok(())
}

/// Queues one digest for its time.
pub fn queue_digest(
    conn: &mut DbConnection,
    cadence: Cadence,
    period: String,
    due: NaiveDateTime,
) -> QueryResult<bool> {
    let key = format!("newsletter-digest:{}:{period}", cadence.as_str());
    let job = NewJob::new(
        DIGEST_JOB,
        &DigestDue {
            cadence,
            period,
            due,
        },
    )
    .map_err(serialization)?
    .key(key)
    .at(due);
    jobs::enqueue(conn, &job)
}

/// Opens the sends of a digest that is due: one per blog with subscribers at this
/// cadence. Then queues the next one.
pub fn open_digest(
    conn: &mut DbConnection,
    schedule: &Schedule,
    digest: &DigestDue,
) -> QueryResult<usize> {
    write_tx(conn, |conn| {
        let blog_ids: Vec<i64> = newsletter_subscriptions::table
            .filter(newsletter_subscriptions::cadence.eq(digest.cadence.as_str()))
            .filter(newsletter_subscriptions::status.eq("active"))
            .select(newsletter_subscriptions::blog_id)
            .distinct()
            .load(conn)?;
        for blog_id in &blog_ids {
            open_send(
                conn,
                *blog_id,
                digest.cadence.as_str(),
                None,
                &digest.period,
                Some(digest.due),
            )?;
        }
        if let Some((due, period)) = schedule.next(digest.cadence, digest.due) {
            queue_digest(conn, digest.cadence, period, due)?;
        }
        Ok(blog_ids.len())
    })
}

/// What every email of one send shares.
struct Context {
    settings: Arc<Settings>,
    signer: Signer,
    blog: Blog,
    reply_to: Option<String>,
    sender: String,
}

impl Context {
    fn load(
        conn: &mut DbConnection,
        settings: Arc<Settings>,
        blog: Blog,
    ) -> Result<Self, AppError> {
        let signer = Signer::load(conn)?;
        let reply_to = match blogs::owner_of(conn, blog.id)? {
            Some(owner) => crate::domain::users::find(conn, owner)?.map(|u| u.email),
            None => None,
        };
        let sender = crate::mail::sender(&settings)
            .map(|m| m.email.to_string())
            .map_err(AppError::internal)?;
        Ok(Self {
            settings,
            signer,
            blog,
            reply_to,
            sender,
        })
    }

    fn links(&self, subscriber_id: i64) -> (String, String) {
        let preferences = self.settings.url(&format!(
            "/newsletter/preferences/{}",
            self.signer.token(Purpose::Preferences, subscriber_id, 0)
        ));
        let unsubscribe = self.settings.url(&format!(
            "/newsletter/unsubscribe/{}",
            self.signer
                .token(Purpose::Unsubscribe, subscriber_id, self.blog.id)
        ));
        (preferences, unsubscribe)
    }

    /// The email for one subscriber.
    fn email(
        &self,
        to: &str,
        subscriber_id: i64,
        subject: &str,
        heading: Option<String>,
        items: Vec<Item>,
        send_id: Option<i64>,
    ) -> Email {
        let (preferences_url, unsubscribe_url) = self.links(subscriber_id);
        let host = self.settings.base_url.host_str().unwrap_or("localhost");
        let letter = template::Letter {
            subject: subject.to_owned(),
            instance_name: self.settings.instance_name.clone(),
            blog_name: self.blog.display_name.clone(),
            byline: self.blog.byline(),
            blog_url: self.settings.url(&self.blog.path()),
            heading,
            items,
            preferences_url,
            unsubscribe_url: unsubscribe_url.clone(),
            open_counter_url: send_id
                .filter(|_| self.settings.newsletter_tracking)
                .map(|id| self.settings.url(&format!("/newsletter/opened/{id}.gif"))),
        };
        Email {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: template::text(&letter),
            html: Some(template::html(&letter)),
            reply_to: self.reply_to.clone(),
            bulk: Some(Bulk {
                list_id: format!(
                    "{} <{}.{host}>",
                    self.blog
                        .display_name
                        .replace(['<', '>', '"', '\r', '\n'], ""),
                    self.blog.handle
                ),
                unsubscribe_url,
                unsubscribe_mailto: format!(
                    "mailto:{}?subject=unsubscribe%20{}",
                    self.sender,
                    self.signer
                        .token(Purpose::Unsubscribe, subscriber_id, self.blog.id)
                ),
            }),
        }
    }
}

/// A post as an email item, in full or as title, summary and link.
pub fn post_item(settings: &Settings, blog: &Blog, post: &Post, in_full: bool) -> Item {
    Item {
        title: post.title.clone(),
        summary: post.summary.clone(),
        content_warning: post.content_warning.clone(),
        markdown: post.body_markdown.clone(),
        html: post.body_html.with_absolute_urls(&settings.base_url),
        url: settings.url(&post.path(&blog.handle).unwrap_or_else(|| blog.path())),
        published_at: post.published_at,
        in_full,
        replies: Vec::new(),
        likes: 0,
        boosts: 0,
    }
}

/// The email a post's subscribers get, as the editorial preview shows it too.
pub fn preview_post_email(settings: &Settings, blog: &Blog, item: Item) -> Email {
    let context = Context {
        settings: Arc::new(settings.clone()),
        signer: Signer::for_preview(),
        blog: blog.clone(),
        reply_to: None,
        sender: "no-reply@localhost".to_owned(),
    };
    let subject = template::post_subject(&blog.display_name, item.title.as_deref(), &item.markdown);
    context.email(
        "subscriber@example.invalid",
        0,
        &subject,
        None,
        vec![item],
        None,
    )
}

/// A "send a test to me" email: the blog's latest post as subscribers get it.
pub fn test_email(
    conn: &mut DbConnection,
    settings: Arc<Settings>,
    blog: &Blog,
    to: &str,
) -> Result<Option<Email>, AppError> {
    let latest: Option<Post> = posts::table
        .filter(posts::blog_id.eq(blog.id))
        .filter(posts::status.eq(Status::Published.as_str()))
        .order(posts::published_at.desc())
        .select(Post::as_select())
        .first(conn)
        .optional()?;
    let Some(post) = latest else {
        return Ok(None);
    };
    let context = Context::load(conn, settings.clone(), blog.clone())?;
    let item = post_item(&settings, blog, &post, true);
    let subject = format!(
        "[Test] {}",
        template::post_subject(
            &blog.display_name,
            post.title.as_deref(),
            &post.body_markdown
        )
    );
    Ok(Some(context.email(to, 0, &subject, None, vec![item], None)))
}

/// Queues the next batch of a send; false when every subscriber has been queued.
pub fn fan_out_batch(conn: &mut DbConnection, fanout: &Fanout) -> Result<bool, AppError> {
    write_tx(conn, |conn| {
        let send: Send = match newsletter_sends::table
            .find(fanout.send_id)
            .select(Send::as_select())
            .first(conn)
            .optional()?
        {
            Some(send) if send.finished_at.is_none() => send,
            _ => return Ok(false),
        };
        // Suppressed addresses (bounced, or stopped by an admin) get no job at all.
        let readers: Vec<i64> = newsletter_subscriptions::table
            .inner_join(newsletter_subscribers::table)
            .left_join(
                mail_suppressions::table
                    .on(mail_suppressions::address.eq(newsletter_subscribers::email)),
            )
            .filter(newsletter_subscriptions::blog_id.eq(send.blog_id))
            .filter(newsletter_subscriptions::cadence.eq(send.cadence().as_str()))
            .filter(newsletter_subscriptions::status.eq("active"))
            .filter(newsletter_subscribers::status.eq(subscribers::Status::Confirmed.as_str()))
            .filter(newsletter_subscribers::paused.eq(false))
            .filter(mail_suppressions::suppressed_at.is_null())
            .filter(newsletter_subscriptions::subscriber_id.gt(send.fanout_cursor))
            .order(newsletter_subscriptions::subscriber_id.asc())
            .limit(BATCH)
            .select(newsletter_subscribers::id)
            .load(conn)?;
        let Some(last) = readers.last().copied() else {
            diesel::update(newsletter_sends::table.find(send.id))
                .set(newsletter_sends::finished_at.eq(crate::domain::now()))
                .execute(conn)?;
            return Ok(false);
        };
        let queued = match send.post_id {
            Some(post_id) => queue_post(conn, &send, post_id, &readers)?,
            None => queue_digest_letters(conn, &send, fanout.due, &readers)?,
        };
        diesel::update(newsletter_sends::table.find(send.id))
            .set((
                newsletter_sends::fanout_cursor.eq(last),
                newsletter_sends::recipients.eq(newsletter_sends::recipients + queued),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

/// Records that `subscriber` was sent `post`; false if they had it already.
fn mark_received(
    conn: &mut DbConnection,
    subscriber_id: i64,
    post_id: i64,
    send_id: i64,
) -> QueryResult<bool> {
    let values = (
        newsletter_received::subscriber_id.eq(subscriber_id),
        newsletter_received::post_id.eq(post_id),
        newsletter_received::send_id.eq(send_id),
        newsletter_received::created_at.eq(crate::domain::now()),
    );
    let inserted = on_backend!(conn, |c| diesel::insert_into(newsletter_received::table)
        .values(values)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

fn queue(conn: &mut DbConnection, letter: &Letter) -> QueryResult<bool> {
    let job = NewJob::new(EMAIL_JOB, letter)
        .map_err(serialization)?
        .key(format!("newsletter:{}:{}", letter.send, letter.subscriber));
    jobs::enqueue(conn, &job)
}

/// The post of a post's send, if it is still public.
fn published_post(conn: &mut DbConnection, post_id: i64) -> QueryResult<Option<Post>> {
    let post: Option<Post> = posts::table
        .find(post_id)
        .select(Post::as_select())
        .first(conn)
        .optional()?;
    Ok(post.filter(|p| p.status() == Status::Published))
}

fn queue_post(
    conn: &mut DbConnection,
    send: &Send,
    post_id: i64,
    readers: &[i64],
) -> Result<i64, AppError> {
    // Withdrawn before the fan-out reached these readers: they get nothing.
    if published_post(conn, post_id)?.is_none() {
        return Ok(0);
    }
    let mut queued = 0;
    for subscriber in readers {
        if !mark_received(conn, *subscriber, post_id, send.id)? {
            continue;
        }
        let letter = Letter {
            send: send.id,
            subscriber: *subscriber,
            due: None,
        };
        if queue(conn, &letter)? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// The posts a digest of `blog` covers, oldest first.
fn digest_posts(
    conn: &mut DbConnection,
    blog_id: i64,
    cadence: Cadence,
    due: NaiveDateTime,
) -> QueryResult<Vec<Post>> {
    let since = due - digest::window(cadence);
    posts::table
        .filter(posts::blog_id.eq(blog_id))
        .filter(posts::status.eq(Status::Published.as_str()))
        .filter(posts::published_at.gt(since))
        .filter(posts::published_at.le(due))
        .order(posts::published_at.asc())
        .limit(DIGEST_POSTS)
        .select(Post::as_select())
        .load(conn)
}

/// Posts as digest items, with their best replies and counts.
fn digest_items(
    conn: &mut DbConnection,
    context: &Context,
    found: Vec<Post>,
) -> Result<Vec<(i64, Item)>, AppError> {
    let mut items = Vec::with_capacity(found.len());
    for post in found {
        // Short updates in full; articles as title, summary and link.
        let mut item = post_item(
            &context.settings,
            &context.blog,
            &post,
            post.title.is_none(),
        );
        let counts = objects::counts(conn, post.id)?;
        item.likes = counts.likes;
        item.boosts = counts.shares;
        item.replies = moderation::approved_replies(conn, post.id)?
            .into_iter()
            .filter_map(|view| {
                let author = view.author?;
                Some(ReplyItem {
                    author: author
                        .display_name
                        .clone()
                        .unwrap_or(author.username.clone()),
                    server: author.domain.clone(),
                    html: view.reply.content_html.clone(),
                    url: view.reply.url.clone().or(Some(view.reply.ap_id.clone())),
                })
            })
            .take(TOP_REPLIES)
            .collect();
        items.push((post.id, item));
    }
    Ok(items)
}

/// Queues a digest for each reader with something new in it, recording which posts
/// each gets (the email is rendered from that record when it is sent).
fn queue_digest_letters(
    conn: &mut DbConnection,
    send: &Send,
    due: Option<NaiveDateTime>,
    readers: &[i64],
) -> Result<i64, AppError> {
    let due = due.unwrap_or(send.created_at);
    let post_ids: Vec<i64> = digest_posts(conn, send.blog_id, send.cadence(), due)?
        .iter()
        .map(|p| p.id)
        .collect();
    if post_ids.is_empty() {
        return Ok(0);
    }
    let had: Vec<(i64, i64)> = newsletter_received::table
        .filter(newsletter_received::subscriber_id.eq_any(readers))
        .filter(newsletter_received::post_id.eq_any(&post_ids))
        .select((
            newsletter_received::subscriber_id,
            newsletter_received::post_id,
        ))
        .load(conn)?;
    let mut queued = 0;
    for subscriber in readers {
        let mut new = false;
        for post_id in post_ids
            .iter()
            .filter(|p| !had.contains(&(*subscriber, **p)))
        {
            new |= mark_received(conn, *subscriber, *post_id, send.id)?;
        }
        if !new {
            continue;
        }
        let letter = Letter {
            send: send.id,
            subscriber: *subscriber,
            due: Some(due),
        };
        if queue(conn, &letter)? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// What every reader's email of one send shares, loaded once per send.
struct Shared {
    context: Context,
    subject: String,
    heading: Option<String>,
    /// The posts, by id. Empty when a post's send lost its post (withdrawn).
    items: Vec<(i64, Item)>,
    digest: bool,
}

impl Shared {
    fn load(
        conn: &mut DbConnection,
        settings: Arc<Settings>,
        send: &Send,
        due: Option<NaiveDateTime>,
    ) -> Result<Option<Self>, AppError> {
        let Some(blog) = blogs::find(conn, send.blog_id)? else {
            return Ok(None);
        };
        let context = Context::load(conn, settings, blog)?;
        if let Some(post_id) = send.post_id {
            let Some(post) = published_post(conn, post_id)? else {
                return Ok(Some(Self {
                    context,
                    subject: String::new(),
                    heading: None,
                    items: Vec::new(),
                    digest: false,
                }));
            };
            let subject = template::post_subject(
                &context.blog.display_name,
                post.title.as_deref(),
                &post.body_markdown,
            );
            let item = post_item(&context.settings, &context.blog, &post, true);
            return Ok(Some(Self {
                context,
                subject,
                heading: None,
                items: vec![(post.id, item)],
                digest: false,
            }));
        }
        let due = due.unwrap_or(send.created_at);
        let cadence = send.cadence();
        let found = digest_posts(conn, send.blog_id, cadence, due)?;
        let items = digest_items(conn, &context, found)?;
        let label = match cadence {
            Cadence::Weekly => "Weekly digest",
            _ => "Daily digest",
        };
        let day = crate::editorial::schedule::format_london(due);
        let day = day.split(" at ").next().unwrap_or(&day).to_owned();
        let subject = format!(
            "{}: {} – {day}",
            context.blog.display_name,
            label.to_lowercase()
        );
        Ok(Some(Self {
            context,
            subject,
            heading: Some(format!("{label}, {day}")),
            items,
            digest: true,
        }))
    }
}

/// The email one reader gets from a send, or why they get none.
fn render_letter(
    conn: &mut DbConnection,
    shared: &Shared,
    send: &Send,
    subscriber_id: i64,
) -> Result<Result<Email, String>, AppError> {
    let reader: Option<(String, String, bool)> = newsletter_subscribers::table
        .find(subscriber_id)
        .select((
            newsletter_subscribers::email,
            newsletter_subscribers::status,
            newsletter_subscribers::paused,
        ))
        .first(conn)
        .optional()?;
    let Some((address, status, paused)) = reader else {
        return Ok(Err(format!("{SKIPPED}: the subscriber was erased")));
    };
    let subscribed: i64 = newsletter_subscriptions::table
        .filter(newsletter_subscriptions::subscriber_id.eq(subscriber_id))
        .filter(newsletter_subscriptions::blog_id.eq(send.blog_id))
        .filter(newsletter_subscriptions::status.eq("active"))
        .count()
        .get_result(conn)?;
    if status != subscribers::Status::Confirmed.as_str() || subscribed == 0 {
        return Ok(Err(format!("{SKIPPED}: unsubscribed since the fan-out")));
    }
    if paused {
        return Ok(Err(format!("{SKIPPED}: paused since the fan-out")));
    }
    let items: Vec<Item> = if shared.digest {
        let mine: Vec<i64> = newsletter_received::table
            .filter(newsletter_received::subscriber_id.eq(subscriber_id))
            .filter(newsletter_received::send_id.eq(send.id))
            .select(newsletter_received::post_id)
            .load(conn)?;
        shared
            .items
            .iter()
            .filter(|(id, _)| mine.contains(id))
            .map(|(_, item)| item.clone())
            .collect()
    } else {
        shared.items.iter().map(|(_, item)| item.clone()).collect()
    };
    if items.is_empty() {
        return Ok(Err(format!("{SKIPPED}: its posts were withdrawn")));
    }
    Ok(Ok(shared.context.email(
        &address,
        subscriber_id,
        &shared.subject,
        shared.heading.clone(),
        items,
        Some(send.id),
    )))
}

/// Delivery figures for a send, from its email jobs.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Sent.
    pub delivered: i64,
    /// Waiting to be tried again.
    pub deferred: i64,
    /// Refused for good.
    pub bounced: i64,
    /// Not yet tried.
    pub queued: i64,
    /// Not sent because the reader unsubscribed, paused or was erased after the fan-out.
    pub skipped: i64,
}

/// Counts a send's email jobs by how they went.
pub fn figures(conn: &mut DbConnection, send_id: i64) -> QueryResult<Figures> {
    // Sends queued before newsletter emails had a kind of their own are `email` jobs.
    let rows: Vec<(String, i32, Option<String>)> = job_rows::table
        .filter(job_rows::kind.eq_any([EMAIL_JOB, crate::mail::EMAIL_JOB]))
        .filter(job_rows::idempotency_key.like(format!("newsletter:{send_id}:%")))
        .select((job_rows::status, job_rows::attempts, job_rows::last_error))
        .load(conn)?;
    let mut figures = Figures::default();
    for (status, attempts, error) in rows {
        match status.as_str() {
            "done" => figures.delivered += 1,
            "dropped" if error.is_some_and(|e| e.starts_with(SKIPPED)) => figures.skipped += 1,
            "dead" | "dropped" => figures.bounced += 1,
            _ if attempts > 0 => figures.deferred += 1,
            _ => figures.queued += 1,
        }
    }
    Ok(figures)
}

/// A blog's latest sends, newest first.
pub fn recent_sends(conn: &mut DbConnection, blog_id: i64, limit: i64) -> QueryResult<Vec<Send>> {
    newsletter_sends::table
        .filter(newsletter_sends::blog_id.eq(blog_id))
        .order(newsletter_sends::id.desc())
        .limit(limit)
        .select(Send::as_select())
        .load(conn)
}

/// Runs `newsletter_fanout` jobs.
pub struct FanoutHandler {
    /// The database.
    pub pool: Pool,
    /// Wakes the email workers after each batch.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Handler for FanoutHandler {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            let fanout: Fanout = match job.payload() {
                Ok(f) => f,
                Err(e) => return Outcome::Fail(e),
            };
            loop {
                let pool = self.pool.clone();
                let fanout = fanout.clone();
                let batch = tokio::task::spawn_blocking(move || {
                    let mut conn = pool.get().map_err(|e| e.to_string())?;
                    fan_out_batch(&mut conn, &fanout).map_err(|e| e.to_string())
                })
                .await;
                match batch {
                    Ok(Ok(true)) => self.wake.notify_one(),
                    Ok(Ok(false)) => return Outcome::Done,
                    Ok(Err(error)) => return Outcome::Retry { after: None, error },
                    Err(e) => {
                        return Outcome::Retry {
                            after: None,
                            error: e.to_string(),
                        };
                    }
                }
            }
        })
    }
}

/// Runs `newsletter_email` jobs: renders the reader's email and sends it through the
/// mail layer (suppression check, exactly-once send, bounces).
pub struct EmailLetterHandler {
    pool: Pool,
    settings: Arc<Settings>,
    mail: Arc<EmailHandler>,
    /// Each send's shared part, by send id (a handful of sends at most).
    shared: Arc<Mutex<HashMap<i64, Arc<Shared>>>>,
}

impl EmailLetterHandler {
    /// A handler sending through `mail` (the same one `email` jobs use, so the send rate
    /// and the SMTP pool are shared).
    pub fn new(pool: Pool, settings: Arc<Settings>, mail: Arc<EmailHandler>) -> Self {
        Self {
            pool,
            settings,
            mail,
            shared: Arc::default(),
        }
    }
}

/// Loads a send and its shared part (from memory when another reader's email of the
/// same send loaded it), then renders one reader's email.
fn prepare(
    conn: &mut DbConnection,
    settings: &Arc<Settings>,
    cache: &Mutex<HashMap<i64, Arc<Shared>>>,
    letter: &Letter,
) -> Result<Result<Email, String>, AppError> {
    let Some(send) = newsletter_sends::table
        .find(letter.send)
        .select(Send::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(Err(format!("{SKIPPED}: the send is gone")));
    };
    let cached = cache.lock().ok().and_then(|c| c.get(&send.id).cloned());
    let shared = match cached {
        Some(shared) => shared,
        None => {
            let Some(loaded) = Shared::load(conn, settings.clone(), &send, letter.due)? else {
                return Ok(Err(format!("{SKIPPED}: the blog is gone")));
            };
            let loaded = Arc::new(loaded);
            if let Ok(mut cache) = cache.lock() {
                if cache.len() >= CACHED_SENDS {
                    cache.clear();
                }
                cache.insert(send.id, loaded.clone());
            }
            loaded
        }
    };
    render_letter(conn, &shared, &send, letter.subscriber)
}

impl Handler for EmailLetterHandler {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            let letter: Letter = match job.payload() {
                Ok(l) => l,
                Err(e) => return Outcome::Fail(e),
            };
            let (pool, settings, cache) = (
                self.pool.clone(),
                self.settings.clone(),
                self.shared.clone(),
            );
            let prepared = tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                prepare(&mut conn, &settings, &cache, &letter).map_err(|e| e.to_string())
            })
            .await;
            match prepared {
                Ok(Ok(Ok(email))) => self.mail.deliver(job, &email).await,
                Ok(Ok(Err(skipped))) => Outcome::Dropped(skipped),
                Ok(Err(error)) => Outcome::Retry { after: None, error },
                Err(e) => Outcome::Retry {
                    after: None,
                    error: e.to_string(),
                },
            }
        })
    }

    /// The mail's: a newsletter that cannot be sent yet is retried like any email.
    fn first_retry(&self) -> std::time::Duration {
        self.mail.first_retry()
    }
}

/// Runs `newsletter_digest` jobs.
pub struct DigestHandler {
    /// The database.
    pub pool: Pool,
    /// When digests go out.
    pub schedule: Schedule,
}

impl Handler for DigestHandler {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            let digest: DigestDue = match job.payload() {
                Ok(d) => d,
                Err(e) => return Outcome::Fail(e),
            };
            let pool = self.pool.clone();
            let schedule = self.schedule.clone();
            let opened = tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                open_digest(&mut conn, &schedule, &digest).map_err(|e| e.to_string())
            })
            .await;
            match opened {
                Ok(Ok(_)) => Outcome::Done,
                Ok(Err(error)) => Outcome::Retry { after: None, error },
                Err(e) => Outcome::Retry {
                    after: None,
                    error: e.to_string(),
                },
            }
        })
    }
}

/// Adds one to a send's open count (tracking on only; never who).
pub fn count_open(conn: &mut DbConnection, send_id: i64) -> QueryResult<usize> {
    diesel::update(newsletter_sends::table.find(send_id))
        .set(newsletter_sends::opens.eq(newsletter_sends::opens + 1))
        .execute(conn)
}
