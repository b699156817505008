//! Getting posts and digests to subscribers through the durable job queue.
//!
//! A post going public queues one `newsletter_fanout` job in the same transaction (see
//! `publishing::go_live`). That job walks the blog's subscribers in id order, a batch
//! a transaction: each batch records what every reader in it was sent, queues one
//! `email` job per reader (idempotency key `newsletter:<send>:<subscriber>`) and moves
//! the send's cursor on. A crash between batches resumes at the cursor; a crash inside a
//! batch rolls it back whole. So 100,000 subscribers never make one giant transaction,
//! and a `kill -9` loses nothing and sends nothing twice.
//!
//! Digests: a `newsletter_digest` job waits for each cadence's next time; when it runs
//! it opens a send (and a fan-out) per blog, and queues the next one. Both are keyed by
//! their period, so however many nodes start, each digest is queued once.

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::digest::{self, Schedule};
use super::template::{self, Item, Letter, ReplyItem};
use super::tokens::{Purpose, Signer};
use super::{Cadence, subscribers};
use crate::config::Settings;
use crate::db::schema::{
    jobs as job_rows, newsletter_received, newsletter_sends, newsletter_subscribers,
    newsletter_subscriptions, posts,
};
use crate::db::{DbConnection, Pool, write_tx};
use crate::domain::blogs::{self, Blog};
use crate::domain::posts::{Post, Status};
use crate::error::AppError;
use crate::federation::{moderation, objects};
use crate::jobs::runner::{Handler, HandlerFuture, Outcome};
use crate::jobs::{self, Job, NewJob};
use crate::mail::{Bulk, Email};
use crate::on_backend;

/// The job that fans a send out to subscribers.
pub const FANOUT_JOB: &str = "newsletter_fanout";
/// The job that opens a digest's sends when its time comes.
pub const DIGEST_JOB: &str = "newsletter_digest";
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
        let letter = Letter {
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
pub fn fan_out_batch(
    conn: &mut DbConnection,
    settings: &Arc<Settings>,
    fanout: &Fanout,
) -> Result<bool, AppError> {
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
        let readers: Vec<(i64, String)> = newsletter_subscriptions::table
            .inner_join(newsletter_subscribers::table)
            .filter(newsletter_subscriptions::blog_id.eq(send.blog_id))
            .filter(newsletter_subscriptions::cadence.eq(send.cadence().as_str()))
            .filter(newsletter_subscriptions::status.eq("active"))
            .filter(newsletter_subscribers::status.eq(subscribers::Status::Confirmed.as_str()))
            .filter(newsletter_subscribers::paused.eq(false))
            .filter(newsletter_subscriptions::subscriber_id.gt(send.fanout_cursor))
            .order(newsletter_subscriptions::subscriber_id.asc())
            .limit(BATCH)
            .select((newsletter_subscribers::id, newsletter_subscribers::email))
            .load(conn)?;
        let Some(last) = readers.last().map(|(id, _)| *id) else {
            diesel::update(newsletter_sends::table.find(send.id))
                .set(newsletter_sends::finished_at.eq(crate::domain::now()))
                .execute(conn)?;
            return Ok(false);
        };
        let Some(blog) = blogs::find(conn, send.blog_id)? else {
            return Ok(false);
        };
        let context = Context::load(conn, settings.clone(), blog)?;
        let queued = match send.post_id {
            Some(post_id) => queue_post(conn, &context, &send, post_id, &readers)?,
            None => queue_digest_emails(conn, &context, &send, fanout.due, &readers)?,
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

fn queue(
    conn: &mut DbConnection,
    email: &Email,
    send_id: i64,
    subscriber_id: i64,
) -> QueryResult<bool> {
    let job = email
        .job(format!("newsletter:{send_id}:{subscriber_id}"))
        .map_err(serialization)?;
    jobs::enqueue(conn, &job)
}

fn queue_post(
    conn: &mut DbConnection,
    context: &Context,
    send: &Send,
    post_id: i64,
    readers: &[(i64, String)],
) -> Result<i64, AppError> {
    let post: Option<Post> = posts::table
        .find(post_id)
        .select(Post::as_select())
        .first(conn)
        .optional()?;
    // Withdrawn before the fan-out reached these readers: they get nothing.
    let Some(post) = post.filter(|p| p.status() == Status::Published) else {
        return Ok(0);
    };
    let item = post_item(&context.settings, &context.blog, &post, true);
    let subject = template::post_subject(
        &context.blog.display_name,
        post.title.as_deref(),
        &post.body_markdown,
    );
    let mut queued = 0;
    for (subscriber_id, email) in readers {
        if !mark_received(conn, *subscriber_id, post.id, send.id)? {
            continue;
        }
        let message = context.email(
            email,
            *subscriber_id,
            &subject,
            None,
            vec![item.clone()],
            Some(send.id),
        );
        if queue(conn, &message, send.id, *subscriber_id)? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// The posts a digest covers, with their best replies and counts.
fn digest_items(
    conn: &mut DbConnection,
    context: &Context,
    cadence: Cadence,
    due: NaiveDateTime,
) -> Result<Vec<(i64, Item)>, AppError> {
    let since = due - digest::window(cadence);
    let found: Vec<Post> = posts::table
        .filter(posts::blog_id.eq(context.blog.id))
        .filter(posts::status.eq(Status::Published.as_str()))
        .filter(posts::published_at.gt(since))
        .filter(posts::published_at.le(due))
        .order(posts::published_at.asc())
        .limit(DIGEST_POSTS)
        .select(Post::as_select())
        .load(conn)?;
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

fn queue_digest_emails(
    conn: &mut DbConnection,
    context: &Context,
    send: &Send,
    due: Option<NaiveDateTime>,
    readers: &[(i64, String)],
) -> Result<i64, AppError> {
    let due = due.unwrap_or(send.created_at);
    let cadence = send.cadence();
    let items = digest_items(conn, context, cadence, due)?;
    if items.is_empty() {
        return Ok(0);
    }
    let post_ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
    let reader_ids: Vec<i64> = readers.iter().map(|(id, _)| *id).collect();
    let had: Vec<(i64, i64)> = newsletter_received::table
        .filter(newsletter_received::subscriber_id.eq_any(&reader_ids))
        .filter(newsletter_received::post_id.eq_any(&post_ids))
        .select((
            newsletter_received::subscriber_id,
            newsletter_received::post_id,
        ))
        .load(conn)?;
    let label = match cadence {
        Cadence::Weekly => "Weekly digest",
        _ => "Daily digest",
    };
    let day = crate::editorial::schedule::format_london(due);
    let day = day.split(" at ").next().unwrap_or(&day).to_owned();
    let heading = format!("{label}, {day}");
    let subject = format!(
        "{}: {} – {day}",
        context.blog.display_name,
        label.to_lowercase()
    );
    let mut queued = 0;
    for (subscriber_id, email) in readers {
        let mine: Vec<Item> = items
            .iter()
            .filter(|(post_id, _)| !had.contains(&(*subscriber_id, *post_id)))
            .map(|(_, item)| item.clone())
            .collect();
        if mine.is_empty() {
            continue;
        }
        for (post_id, _) in items
            .iter()
            .filter(|(p, _)| !had.contains(&(*subscriber_id, *p)))
        {
            mark_received(conn, *subscriber_id, *post_id, send.id)?;
        }
        let message = context.email(
            email,
            *subscriber_id,
            &subject,
            Some(heading.clone()),
            mine,
            Some(send.id),
        );
        if queue(conn, &message, send.id, *subscriber_id)? {
            queued += 1;
        }
    }
    Ok(queued)
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
}

/// Counts a send's email jobs by how they went.
pub fn figures(conn: &mut DbConnection, send_id: i64) -> QueryResult<Figures> {
    let rows: Vec<(String, i32)> = job_rows::table
        .filter(job_rows::kind.eq(crate::mail::EMAIL_JOB))
        .filter(job_rows::idempotency_key.like(format!("newsletter:{send_id}:%")))
        .select((job_rows::status, job_rows::attempts))
        .load(conn)?;
    let mut figures = Figures::default();
    for (status, attempts) in rows {
        match status.as_str() {
            "done" => figures.delivered += 1,
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
    /// Settings (links, sender, tracking).
    pub settings: Arc<Settings>,
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
                let settings = self.settings.clone();
                let fanout = fanout.clone();
                let batch = tokio::task::spawn_blocking(move || {
                    let mut conn = pool.get().map_err(|e| e.to_string())?;
                    fan_out_batch(&mut conn, &settings, &fanout).map_err(|e| e.to_string())
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
