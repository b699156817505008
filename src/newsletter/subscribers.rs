//! Subscribers and their subscriptions: double opt-in, cadence per blog, pause,
//! unsubscribe and erasure.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::{Cadence, tokens};
use crate::db::DbConnection;
use crate::db::schema::{
    blogs, newsletter_received, newsletter_subscribers, newsletter_subscriptions,
};
use crate::on_backend;

/// Where a subscriber is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Asked, not yet confirmed: nothing is sent.
    Pending,
    /// Confirmed their address: mail goes out.
    Confirmed,
    /// Unsubscribed from everything: a new request needs a new confirmation.
    Unsubscribed,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Unsubscribed => "unsubscribed",
        }
    }

    /// From the stored name.
    pub fn parse(value: &str) -> Self {
        match value {
            "confirmed" => Self::Confirmed,
            "unsubscribed" => Self::Unsubscribed,
            _ => Self::Pending,
        }
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "Waiting for confirmation",
            Self::Confirmed => "Confirmed",
            Self::Unsubscribed => "Unsubscribed",
        }
    }
}

/// A subscriber row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = newsletter_subscribers)]
pub struct Subscriber {
    /// Row id.
    pub id: i64,
    /// The address, lower-cased.
    pub email: String,
    /// See [`Status`].
    pub status: String,
    /// Nothing is sent while paused.
    pub paused: bool,
    /// Hash of the current confirmation token.
    #[serde(skip)]
    pub confirm_token_hash: Option<String>,
    /// When that token stops working.
    #[serde(skip)]
    pub confirm_expires_at: Option<NaiveDateTime>,
    /// The lawful basis an editor recorded when subscribing the address directly.
    pub lawful_basis: Option<String>,
    /// When the address first asked.
    pub created_at: NaiveDateTime,
    /// When it last confirmed.
    pub confirmed_at: Option<NaiveDateTime>,
    /// When anything about it last changed.
    pub updated_at: NaiveDateTime,
}

impl Subscriber {
    /// Its status.
    pub fn status(&self) -> Status {
        Status::parse(&self.status)
    }
}

/// One blog a subscriber gets.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = newsletter_subscriptions)]
pub struct Subscription {
    /// The subscriber.
    pub subscriber_id: i64,
    /// The blog.
    pub blog_id: i64,
    /// See [`Cadence`].
    pub cadence: String,
    /// `pending` until the confirmation link is followed, then `active`.
    pub status: String,
    /// When it was asked for.
    pub created_at: NaiveDateTime,
}

impl Subscription {
    /// Its cadence.
    pub fn cadence(&self) -> Cadence {
        Cadence::parse(&self.cadence).unwrap_or(Cadence::EachPost)
    }

    /// Whether mail goes out for it (once the subscriber is confirmed).
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// The lower-cased form addresses are stored in.
pub fn normalise(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A subscriber by address.
pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<Subscriber>> {
    newsletter_subscribers::table
        .filter(newsletter_subscribers::email.eq(normalise(email)))
        .select(Subscriber::as_select())
        .first(conn)
        .optional()
}

/// A subscriber by id.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Subscriber>> {
    newsletter_subscribers::table
        .find(id)
        .select(Subscriber::as_select())
        .first(conn)
        .optional()
}

/// What a subscribe request led to.
#[derive(Debug)]
pub enum Requested {
    /// A confirmation email is due, with this single-use token.
    Confirm(Subscriber, String),
    /// Subscribed directly (an import with a lawful basis).
    Subscribed(Subscriber),
    /// Nothing new: every blog asked for is already active.
    Nothing,
}

/// Records a request to subscribe `email` to `blogs`. Blogs the address already gets
/// are left as they are; new ones wait for confirmation (a fresh token replaces any
/// earlier one), unless `lawful_basis` is given, which subscribes at once. An address
/// that had unsubscribed must confirm again. Call inside a write transaction.
pub fn request(
    conn: &mut DbConnection,
    email: &str,
    blog_ids: &[(i64, Cadence)],
    valid_for: chrono::Duration,
    lawful_basis: Option<&str>,
) -> QueryResult<Requested> {
    let now = crate::domain::now();
    let email = normalise(email);
    let inserted = on_backend!(conn, |c| diesel::insert_into(newsletter_subscribers::table)
        .values((
            newsletter_subscribers::email.eq(&email),
            newsletter_subscribers::status.eq(Status::Pending.as_str()),
            newsletter_subscribers::paused.eq(false),
            newsletter_subscribers::created_at.eq(now),
            newsletter_subscribers::updated_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    let _ = inserted;
    let subscriber = newsletter_subscribers::table
        .filter(newsletter_subscribers::email.eq(&email))
        .select(Subscriber::as_select())
        .first(conn)?;
    let existing: Vec<Subscription> = newsletter_subscriptions::table
        .filter(newsletter_subscriptions::subscriber_id.eq(subscriber.id))
        .select(Subscription::as_select())
        .load(conn)?;
    let confirmed = subscriber.status() == Status::Confirmed;
    let direct = lawful_basis.is_some();
    let mut wanted = false;
    for (blog_id, cadence) in blog_ids {
        let current = existing.iter().find(|s| s.blog_id == *blog_id);
        if current.is_some_and(|s| s.is_active() && confirmed) {
            continue;
        }
        wanted = true;
        let status = if direct { "active" } else { "pending" };
        if current.is_some() {
            diesel::update(
                newsletter_subscriptions::table
                    .filter(newsletter_subscriptions::subscriber_id.eq(subscriber.id))
                    .filter(newsletter_subscriptions::blog_id.eq(blog_id)),
            )
            .set((
                newsletter_subscriptions::cadence.eq(cadence.as_str()),
                newsletter_subscriptions::status.eq(status),
            ))
            .execute(conn)?;
        } else {
            diesel::insert_into(newsletter_subscriptions::table)
                .values((
                    newsletter_subscriptions::subscriber_id.eq(subscriber.id),
                    newsletter_subscriptions::blog_id.eq(blog_id),
                    newsletter_subscriptions::cadence.eq(cadence.as_str()),
                    newsletter_subscriptions::status.eq(status),
                    newsletter_subscriptions::created_at.eq(now),
                ))
                .execute(conn)?;
        }
    }
    if !wanted {
        return Ok(Requested::Nothing);
    }
    let target = newsletter_subscribers::table.find(subscriber.id);
    if let Some(basis) = lawful_basis {
        diesel::update(target)
            .set((
                newsletter_subscribers::status.eq(Status::Confirmed.as_str()),
                newsletter_subscribers::lawful_basis.eq(basis),
                newsletter_subscribers::confirmed_at.eq(now),
                newsletter_subscribers::updated_at.eq(now),
            ))
            .execute(conn)?;
        let subscriber = target.select(Subscriber::as_select()).first(conn)?;
        return Ok(Requested::Subscribed(subscriber));
    }
    let (token, hash) = tokens::random_token();
    // A confirmed address stays confirmed for the blogs it has; only the new ones wait.
    let status = if confirmed {
        Status::Confirmed
    } else {
        Status::Pending
    };
    diesel::update(target)
        .set((
            newsletter_subscribers::status.eq(status.as_str()),
            newsletter_subscribers::confirm_token_hash.eq(hash),
            newsletter_subscribers::confirm_expires_at.eq(now + valid_for),
            newsletter_subscribers::updated_at.eq(now),
        ))
        .execute(conn)?;
    let subscriber = target.select(Subscriber::as_select()).first(conn)?;
    Ok(Requested::Confirm(subscriber, token))
}

/// Follows a confirmation link: the subscriber and their waiting blogs become active.
/// The token works once and only until it expires.
pub fn confirm(conn: &mut DbConnection, token: &str) -> QueryResult<Option<Subscriber>> {
    let now = crate::domain::now();
    let found: Option<Subscriber> = newsletter_subscribers::table
        .filter(newsletter_subscribers::confirm_token_hash.eq(tokens::hash(token)))
        .filter(newsletter_subscribers::confirm_expires_at.gt(now))
        .select(Subscriber::as_select())
        .first(conn)
        .optional()?;
    let Some(subscriber) = found else {
        return Ok(None);
    };
    diesel::update(newsletter_subscribers::table.find(subscriber.id))
        .set((
            newsletter_subscribers::status.eq(Status::Confirmed.as_str()),
            newsletter_subscribers::confirm_token_hash.eq(None::<String>),
            newsletter_subscribers::confirm_expires_at.eq(None::<NaiveDateTime>),
            newsletter_subscribers::confirmed_at.eq(now),
            newsletter_subscribers::updated_at.eq(now),
        ))
        .execute(conn)?;
    diesel::update(
        newsletter_subscriptions::table
            .filter(newsletter_subscriptions::subscriber_id.eq(subscriber.id)),
    )
    .set(newsletter_subscriptions::status.eq("active"))
    .execute(conn)?;
    find(conn, subscriber.id)
}

/// A subscriber's blogs with their names, by blog name.
pub fn subscriptions_of(
    conn: &mut DbConnection,
    subscriber_id: i64,
) -> QueryResult<Vec<(Subscription, String, String)>> {
    newsletter_subscriptions::table
        .inner_join(blogs::table)
        .filter(newsletter_subscriptions::subscriber_id.eq(subscriber_id))
        .order(blogs::display_name.asc())
        .select((
            Subscription::as_select(),
            blogs::display_name,
            blogs::handle,
        ))
        .load(conn)
}

/// Changes how often a subscriber hears from a blog.
pub fn set_cadence(
    conn: &mut DbConnection,
    subscriber_id: i64,
    blog_id: i64,
    cadence: Cadence,
) -> QueryResult<usize> {
    diesel::update(
        newsletter_subscriptions::table
            .filter(newsletter_subscriptions::subscriber_id.eq(subscriber_id))
            .filter(newsletter_subscriptions::blog_id.eq(blog_id)),
    )
    .set(newsletter_subscriptions::cadence.eq(cadence.as_str()))
    .execute(conn)
}

/// Pauses or resumes everything.
pub fn set_paused(conn: &mut DbConnection, subscriber_id: i64, paused: bool) -> QueryResult<usize> {
    diesel::update(newsletter_subscribers::table.find(subscriber_id))
        .set((
            newsletter_subscribers::paused.eq(paused),
            newsletter_subscribers::updated_at.eq(crate::domain::now()),
        ))
        .execute(conn)
}

/// Unsubscribes from one blog (`Some`) or all (`None`). With no blog left the address
/// is unsubscribed: a later request must be confirmed again. Returns whether anything
/// changed.
pub fn unsubscribe(
    conn: &mut DbConnection,
    subscriber_id: i64,
    blog_id: Option<i64>,
) -> QueryResult<bool> {
    let removed = match blog_id {
        Some(blog_id) => diesel::delete(
            newsletter_subscriptions::table
                .filter(newsletter_subscriptions::subscriber_id.eq(subscriber_id))
                .filter(newsletter_subscriptions::blog_id.eq(blog_id)),
        )
        .execute(conn)?,
        None => diesel::delete(
            newsletter_subscriptions::table
                .filter(newsletter_subscriptions::subscriber_id.eq(subscriber_id)),
        )
        .execute(conn)?,
    };
    let left: i64 = newsletter_subscriptions::table
        .filter(newsletter_subscriptions::subscriber_id.eq(subscriber_id))
        .count()
        .get_result(conn)?;
    let mut changed = removed > 0;
    if left == 0 {
        changed |= diesel::update(
            newsletter_subscribers::table
                .find(subscriber_id)
                .filter(newsletter_subscribers::status.ne(Status::Unsubscribed.as_str())),
        )
        .set((
            newsletter_subscribers::status.eq(Status::Unsubscribed.as_str()),
            newsletter_subscribers::confirm_token_hash.eq(None::<String>),
            newsletter_subscribers::confirm_expires_at.eq(None::<NaiveDateTime>),
            newsletter_subscribers::updated_at.eq(crate::domain::now()),
        ))
        .execute(conn)?
            > 0;
    }
    Ok(changed)
}

/// Erases a subscriber and everything kept about them (GDPR): the address, their
/// subscriptions and the record of what they were sent.
pub fn erase(conn: &mut DbConnection, subscriber_id: i64) -> QueryResult<usize> {
    diesel::delete(
        newsletter_received::table.filter(newsletter_received::subscriber_id.eq(subscriber_id)),
    )
    .execute(conn)?;
    diesel::delete(
        newsletter_subscriptions::table
            .filter(newsletter_subscriptions::subscriber_id.eq(subscriber_id)),
    )
    .execute(conn)?;
    diesel::delete(newsletter_subscribers::table.find(subscriber_id)).execute(conn)
}

/// Everything kept about a subscriber, for "download my data".
#[derive(Debug, Serialize)]
pub struct Export {
    /// The subscriber row (no tokens).
    pub subscriber: Subscriber,
    /// Their blogs.
    pub subscriptions: Vec<ExportedSubscription>,
    /// The posts they were sent: post id and when.
    pub received: Vec<(i64, NaiveDateTime)>,
}

/// One blog in an [`Export`].
#[derive(Debug, Serialize)]
pub struct ExportedSubscription {
    /// The blog's handle.
    pub blog: String,
    /// The cadence.
    pub cadence: String,
    /// pending or active.
    pub status: String,
    /// Since when.
    pub created_at: NaiveDateTime,
}

/// Collects [`Export`].
pub fn export(conn: &mut DbConnection, subscriber: Subscriber) -> QueryResult<Export> {
    let subscriptions = subscriptions_of(conn, subscriber.id)?
        .into_iter()
        .map(|(s, _, handle)| ExportedSubscription {
            blog: handle,
            cadence: s.cadence,
            status: s.status,
            created_at: s.created_at,
        })
        .collect();
    let received = newsletter_received::table
        .filter(newsletter_received::subscriber_id.eq(subscriber.id))
        .order(newsletter_received::created_at.asc())
        .select((
            newsletter_received::post_id,
            newsletter_received::created_at,
        ))
        .load(conn)?;
    Ok(Export {
        subscriber,
        subscriptions,
        received,
    })
}

/// A blog's subscriber as the editors' list shows them.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The subscriber.
    pub subscriber: Subscriber,
    /// Their subscription to this blog.
    pub subscription: Subscription,
}

/// A blog's subscribers whose address contains `search` (all if empty), by address.
pub fn for_blog(
    conn: &mut DbConnection,
    blog_id: i64,
    search: &str,
    limit: i64,
) -> QueryResult<Vec<Listed>> {
    let pattern = format!(
        "%{}%",
        normalise(search)
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows: Vec<(Subscriber, Subscription)> = newsletter_subscriptions::table
        .inner_join(newsletter_subscribers::table)
        .filter(newsletter_subscriptions::blog_id.eq(blog_id))
        .filter(newsletter_subscribers::email.like(pattern).escape('\\'))
        .order(newsletter_subscribers::email.asc())
        .limit(limit)
        .select((Subscriber::as_select(), Subscription::as_select()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(subscriber, subscription)| Listed {
            subscriber,
            subscription,
        })
        .collect())
}

/// How many of a blog's subscribers are in each (subscriber status, subscription
/// status, cadence).
pub fn counts(
    conn: &mut DbConnection,
    blog_id: i64,
) -> QueryResult<Vec<(String, String, String, i64)>> {
    newsletter_subscriptions::table
        .inner_join(newsletter_subscribers::table)
        .filter(newsletter_subscriptions::blog_id.eq(blog_id))
        .group_by((
            newsletter_subscribers::status,
            newsletter_subscriptions::status,
            newsletter_subscriptions::cadence,
        ))
        .select((
            newsletter_subscribers::status,
            newsletter_subscriptions::status,
            newsletter_subscriptions::cadence,
            diesel::dsl::count_star(),
        ))
        .load(conn)
}

/// How many of a blog's subscribers no longer get mail because their address is
/// suppressed, by reason (`hard`, `soft`, `manual`).
pub fn suppressed_counts(conn: &mut DbConnection, blog_id: i64) -> QueryResult<Vec<(String, i64)>> {
    use crate::db::schema::mail_suppressions;
    newsletter_subscriptions::table
        .inner_join(newsletter_subscribers::table)
        .inner_join(
            mail_suppressions::table
                .on(mail_suppressions::address.eq(newsletter_subscribers::email)),
        )
        .filter(newsletter_subscriptions::blog_id.eq(blog_id))
        .filter(mail_suppressions::suppressed_at.is_not_null())
        .group_by(mail_suppressions::reason)
        .select((mail_suppressions::reason, diesel::dsl::count_star()))
        .load(conn)
}
