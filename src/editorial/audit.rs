//! The audit log: an append-only record of who did what, that shows when it has been
//! tampered with.
//!
//! Each entry stores a SHA-256 hash over its own content and the hash of the entry
//! before it, so changing or removing an entry breaks the chain from there on, and
//! [`verify`] names the first broken entry. Entries are written by [`record`], inside the
//! transaction of the change they describe, so a change and its record commit together.
//! Appends are serialised so two writers never fork the chain: on PostgreSQL by a
//! transaction-scoped advisory lock, on SQLite by the write lock `BEGIN IMMEDIATE` holds.
//! The database refuses `UPDATE` and `DELETE` on the table by trigger as well.
//!
//! Other parts of rounds record their own actions with the same call, e.g. a moderation
//! decision:
//!
//! ```ignore
//! audit::record(conn, &audit::Event::new(&actor, "moderation.reply_rejected")
//!     .blog(blog_id).post(post_id).subject(format!("reply {reply_id}"))
//!     .detail("reason", reason))?;
//! ```
//!
//! Call it last in the transaction (after the rows it describes are written): the lock
//! it takes is held until commit, and taking it last keeps lock order the same
//! everywhere. Action names are `area.verb` in the past tense; see [`actions`].

use std::io::Write;

use chrono::NaiveDateTime;
use diesel::connection::TransactionManager;
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Actor;
use crate::db::schema::audit_log;
use crate::db::{DbConnection, write_tx};

/// The backend type of the multi-backend connection, for boxed queries.
type Db = <DbConnection as Connection>::Backend;

/// The action names rounds records. Other areas add their own in the same style.
pub mod actions {
    /// Someone signed in (details: two_factor).
    pub const SIGNED_IN: &str = "account.signed_in";
    /// An account was made.
    pub const ACCOUNT_CREATED: &str = "account.created";
    /// Two-factor sign-in was turned off (by its owner, or by an operator).
    pub const TWO_FACTOR_DISABLED: &str = "account.two_factor_disabled";
    /// Two-factor sign-in was turned on.
    pub const TWO_FACTOR_ENABLED: &str = "account.two_factor_enabled";
    /// Someone changed their password (every other session of theirs ended).
    pub const PASSWORD_CHANGED: &str = "account.password_changed";
    /// A blog was made.
    pub const BLOG_CREATED: &str = "blog.created";
    /// A blog's rules changed: owner sign-off, approval delegate.
    pub const BLOG_RULES_CHANGED: &str = "blog.rules_changed";
    /// A blog's profile changed.
    pub const BLOG_PROFILE_CHANGED: &str = "blog.profile_changed";
    /// Someone was invited to a blog's team.
    pub const INVITED: &str = "team.invited";
    /// An invitation was taken up.
    pub const INVITATION_ACCEPTED: &str = "team.invitation_accepted";
    /// An invitation was withdrawn.
    pub const INVITATION_REVOKED: &str = "team.invitation_revoked";
    /// A member's role changed.
    pub const ROLE_CHANGED: &str = "team.role_changed";
    /// A member was removed from a team.
    pub const MEMBER_REMOVED: &str = "team.member_removed";
    /// A draft was submitted for sign-off.
    pub const SUBMITTED: &str = "post.submitted";
    /// A revision was approved (details: revision, content hash).
    pub const APPROVED: &str = "post.approved";
    /// An edit after approval sent the post back to review.
    pub const RETURNED_TO_REVIEW: &str = "post.returned_to_review";
    /// A post was published (first time, or again after being withdrawn).
    pub const PUBLISHED: &str = "post.published";
    /// A published post's content changed.
    pub const UPDATED: &str = "post.updated";
    /// A post was scheduled.
    pub const SCHEDULED: &str = "post.scheduled";
    /// A schedule was cancelled.
    pub const SCHEDULE_CANCELLED: &str = "post.schedule_cancelled";
    /// A scheduled post's time came during a publishing freeze.
    pub const HELD: &str = "post.held_by_freeze";
    /// A post was withdrawn.
    pub const UNPUBLISHED: &str = "post.unpublished";
    /// A post was deleted.
    pub const DELETED: &str = "post.deleted";
    /// An old revision was restored as a new one.
    pub const RESTORED: &str = "post.revision_restored";
    /// The publishing freeze began.
    pub const FREEZE_STARTED: &str = "instance.freeze_started";
    /// The publishing freeze was lifted.
    pub const FREEZE_LIFTED: &str = "instance.freeze_lifted";
    /// A moderation decision on a reply, a follower or a report (details: decision).
    pub const MODERATED: &str = "moderation.decided";
    /// The blog answered a reply on the fediverse (details: text).
    pub const ANSWERED: &str = "moderation.answered";
    /// A blog's fediverse settings changed (details: the new values).
    pub const BLOG_FEDIVERSE_CHANGED: &str = "blog.fediverse_changed";
    /// The instance's blocks of servers or accounts changed (details: decision).
    pub const BLOCKS_CHANGED: &str = "instance.blocks_changed";
    /// Subscribers were imported (recorded by the newsletter).
    pub const SUBSCRIBERS_IMPORTED: &str = "subscribers.imported";
}

/// The hash the first entry follows.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry to record.
#[derive(Debug, Clone)]
pub struct Event {
    actor: Actor,
    action: String,
    blog_id: Option<i64>,
    post_id: Option<i64>,
    subject: Option<String>,
    details: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    /// `actor` did `action` (a name from [`actions`], or `area.verb` of your own).
    pub fn new(actor: &Actor, action: &str) -> Self {
        Self {
            actor: actor.clone(),
            action: action.to_owned(),
            blog_id: None,
            post_id: None,
            subject: None,
            details: serde_json::Map::new(),
        }
    }

    /// On this blog.
    pub fn blog(mut self, id: i64) -> Self {
        self.blog_id = Some(id);
        self
    }

    /// On this post.
    pub fn post(mut self, id: i64) -> Self {
        self.post_id = Some(id);
        self
    }

    /// What it was done to, in words (a username, "reply 42", a file name).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// A detail worth keeping (a revision number, an old and new role, a count).
    pub fn detail(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.details.insert(key.to_owned(), value);
        self
    }
}

/// A recorded entry.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct Entry {
    /// Position in the chain: 1, 2, 3...
    pub id: i64,
    /// When, in UTC.
    pub occurred_at: NaiveDateTime,
    /// The account that acted, if any.
    pub actor_id: Option<i64>,
    /// Who acted, as named then.
    pub actor_name: String,
    /// `web`, `command` or `system`.
    pub source: String,
    /// What was done.
    pub action: String,
    /// The blog it concerns.
    pub blog_id: Option<i64>,
    /// The post it concerns.
    pub post_id: Option<i64>,
    /// What it was done to, in words.
    pub subject: Option<String>,
    /// Further details, a JSON object.
    pub details: String,
    /// The client's address (sign-ins).
    pub address: Option<String>,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The hash of an entry: SHA-256 over its fields, in a fixed order, as one JSON array.
pub fn hash_of(entry: &Entry) -> String {
    let canonical = serde_json::json!([
        entry.id,
        entry
            .occurred_at
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
        entry.actor_id,
        entry.actor_name,
        entry.source,
        entry.action,
        entry.blog_id,
        entry.post_id,
        entry.subject,
        entry.details,
        entry.address,
        entry.prev_hash,
    ]);
    hex(&Sha256::digest(canonical.to_string().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the connection is inside a transaction already.
fn in_transaction(conn: &mut DbConnection) -> bool {
    type Manager = <DbConnection as Connection>::TransactionManager;
    matches!(
        Manager::transaction_manager_status_mut(conn).transaction_depth(),
        Ok(Some(_))
    )
}

/// Appends an entry; returns it. Inside a transaction it joins it (and holds the
/// append lock until it ends); outside, it makes its own.
pub fn record(conn: &mut DbConnection, event: &Event) -> QueryResult<Entry> {
    if in_transaction(conn) {
        append(conn, event)
    } else {
        write_tx(conn, |conn| append(conn, event))
    }
}

/// Any constant: the advisory lock that serialises appends on PostgreSQL.
const APPEND_LOCK: i64 = 0x726f_756e_6473;

fn append(conn: &mut DbConnection, event: &Event) -> QueryResult<Entry> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({APPEND_LOCK})")).execute(pg)?;
    }
    let last: Option<(i64, String)> = audit_log::table
        .order(audit_log::id.desc())
        .select((audit_log::id, audit_log::hash))
        .first(conn)
        .optional()?;
    let (last_id, prev_hash) = last.unwrap_or((0, GENESIS.to_owned()));
    let mut entry = Entry {
        id: last_id + 1,
        occurred_at: crate::domain::now(),
        actor_id: event.actor.user_id,
        actor_name: event.actor.name.clone(),
        source: event.actor.source.as_str().to_owned(),
        action: event.action.clone(),
        blog_id: event.blog_id,
        post_id: event.post_id,
        subject: event.subject.clone(),
        details: serde_json::Value::Object(event.details.clone()).to_string(),
        address: event.actor.address.clone(),
        prev_hash,
        hash: String::new(),
    };
    entry.hash = hash_of(&entry);
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(entry.id),
            audit_log::occurred_at.eq(entry.occurred_at),
            audit_log::actor_id.eq(entry.actor_id),
            audit_log::actor_name.eq(&entry.actor_name),
            audit_log::source.eq(&entry.source),
            audit_log::action.eq(&entry.action),
            audit_log::blog_id.eq(entry.blog_id),
            audit_log::post_id.eq(entry.post_id),
            audit_log::subject.eq(&entry.subject),
            audit_log::details.eq(&entry.details),
            audit_log::address.eq(&entry.address),
            audit_log::prev_hash.eq(&entry.prev_hash),
            audit_log::hash.eq(&entry.hash),
        ))
        .execute(conn)?;
    Ok(entry)
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries checked.
    pub entries: i64,
    /// The last entry's hash: keep it somewhere else to notice later removal of the
    /// newest entries, which no chain can show by itself.
    pub head_hash: Option<String>,
    /// The first entry that does not hold, and why.
    pub first_broken: Option<(i64, String)>,
}

impl Verification {
    /// Whether every entry holds.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Recomputes the chain from the first entry; stops at the first that does not hold.
pub fn verify(conn: &mut DbConnection) -> QueryResult<Verification> {
    const BATCH: i64 = 1000;
    let mut previous = (0i64, GENESIS.to_owned());
    let mut entries = 0;
    loop {
        let batch: Vec<Entry> = audit_log::table
            .filter(audit_log::id.gt(previous.0))
            .order(audit_log::id.asc())
            .limit(BATCH)
            .select(Entry::as_select())
            .load(conn)?;
        let done = (batch.len() as i64) < BATCH;
        for entry in batch {
            entries += 1;
            let broken = if entry.id != previous.0 + 1 {
                Some((
                    previous.0 + 1,
                    format!(
                        "entry {} is missing (the next entry is {})",
                        previous.0 + 1,
                        entry.id
                    ),
                ))
            } else if entry.prev_hash != previous.1 {
                Some((
                    entry.id,
                    format!(
                        "entry {} does not follow entry {}: the entry before it was changed, removed or replaced",
                        entry.id, previous.0
                    ),
                ))
            } else if hash_of(&entry) != entry.hash {
                Some((
                    entry.id,
                    format!(
                        "entry {} was changed after it was written: its content does not match its hash",
                        entry.id
                    ),
                ))
            } else {
                None
            };
            if let Some(broken) = broken {
                return Ok(Verification {
                    entries,
                    head_hash: None,
                    first_broken: Some(broken),
                });
            }
            previous = (entry.id, entry.hash);
        }
        if done {
            break;
        }
    }
    Ok(Verification {
        entries,
        head_hash: (entries > 0).then_some(previous.1),
        first_broken: None,
    })
}

/// Which entries to list or export.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Actions starting with this (`post.` for every post action).
    pub action: Option<String>,
    /// Done by this name.
    pub actor: Option<String>,
    /// On this blog.
    pub blog_id: Option<i64>,
    /// On or after this time (UTC).
    pub from: Option<NaiveDateTime>,
    /// Before this time (UTC).
    pub until: Option<NaiveDateTime>,
}

impl Filter {
    fn query(&self) -> audit_log::BoxedQuery<'static, Db> {
        let mut query = audit_log::table.into_boxed();
        if let Some(action) = &self.action {
            let pattern = format!("{}%", action.replace(['%', '_'], ""));
            query = query.filter(audit_log::action.like(pattern));
        }
        if let Some(actor) = &self.actor {
            query = query.filter(audit_log::actor_name.eq(actor.clone()));
        }
        if let Some(blog_id) = self.blog_id {
            query = query.filter(audit_log::blog_id.eq(blog_id));
        }
        if let Some(from) = self.from {
            query = query.filter(audit_log::occurred_at.ge(from));
        }
        if let Some(until) = self.until {
            query = query.filter(audit_log::occurred_at.lt(until));
        }
        query
    }
}

/// A page of matching entries, newest first, and how many match in all.
pub fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    page: u32,
    per_page: u32,
) -> QueryResult<(Vec<Entry>, i64)> {
    let total: i64 = filter.query().count().get_result(conn)?;
    let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
    let entries = filter
        .query()
        .order(audit_log::id.desc())
        .limit(i64::from(per_page))
        .offset(offset)
        .select(Entry::as_select())
        .load(conn)?;
    Ok((entries, total))
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One header row, then one row an entry.
    Csv,
    /// A JSON array of entry objects.
    Json,
}

impl Format {
    /// Parses `csv` or `json`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Calls `each` on every matching entry, oldest first, loading them in batches (the log
/// can be long).
fn for_each_entry(
    conn: &mut DbConnection,
    filter: &Filter,
    mut each: impl FnMut(&Entry) -> Result<(), ExportError>,
) -> Result<usize, ExportError> {
    const BATCH: i64 = 1000;
    let mut after = 0i64;
    let mut count = 0usize;
    loop {
        let batch: Vec<Entry> = filter
            .query()
            .filter(audit_log::id.gt(after))
            .order(audit_log::id.asc())
            .limit(BATCH)
            .select(Entry::as_select())
            .load(conn)?;
        let done = (batch.len() as i64) < BATCH;
        for entry in &batch {
            after = entry.id;
            each(entry)?;
            count += 1;
        }
        if done {
            return Ok(count);
        }
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 13] = [
    "id",
    "occurred_at",
    "actor_id",
    "actor_name",
    "source",
    "action",
    "blog_id",
    "post_id",
    "subject",
    "details",
    "address",
    "prev_hash",
    "hash",
];

/// Writes every matching entry, oldest first; returns how many.
pub fn export(
    conn: &mut DbConnection,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> Result<usize, ExportError> {
    match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(CSV_HEADER)?;
            let count = for_each_entry(conn, filter, |entry| {
                let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
                writer.write_record([
                    entry.id.to_string(),
                    timestamp(entry.occurred_at),
                    number(entry.actor_id),
                    entry.actor_name.clone(),
                    entry.source.clone(),
                    entry.action.clone(),
                    number(entry.blog_id),
                    number(entry.post_id),
                    entry.subject.clone().unwrap_or_default(),
                    entry.details.clone(),
                    entry.address.clone().unwrap_or_default(),
                    entry.prev_hash.clone(),
                    entry.hash.clone(),
                ])?;
                Ok(())
            })?;
            writer.flush()?;
            Ok(count)
        }
        Format::Json => {
            out.write_all(b"[")?;
            let mut first = true;
            let count = for_each_entry(conn, filter, |entry| {
                out.write_all(if first { b"\n" } else { b",\n" })?;
                first = false;
                serde_json::to_writer(&mut *out, &json_entry(entry))?;
                Ok(())
            })?;
            out.write_all(if count > 0 { b"\n]\n" } else { b"]\n" })?;
            Ok(count)
        }
    }
}

/// A time as exports write it: RFC 3339 in UTC, to the microsecond.
fn timestamp(time: NaiveDateTime) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn json_entry(entry: &Entry) -> serde_json::Value {
    let details: serde_json::Value =
        serde_json::from_str(&entry.details).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": entry.id,
        "occurred_at": timestamp(entry.occurred_at),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "source": entry.source,
        "action": entry.action,
        "blog_id": entry.blog_id,
        "post_id": entry.post_id,
        "subject": entry.subject,
        "details": details,
        // The stored text exactly, so the export can be re-verified.
        "details_text": entry.details,
        "address": entry.address,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    })
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// CSV encoding failed.
    #[error(transparent)]
    Csv(#[from] csv::Error),
    /// JSON encoding failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            id: 1,
            occurred_at: chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
                .and_then(|d| d.and_hms_micro_opt(10, 0, 0, 123_456))
                .expect("date"),
            actor_id: Some(3),
            actor_name: "jane".into(),
            source: "web".into(),
            action: actions::APPROVED.into(),
            blog_id: Some(1),
            post_id: Some(9),
            subject: None,
            details: r#"{"revision":4}"#.into(),
            address: None,
            prev_hash: GENESIS.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_hash_covers_every_field() {
        let base = hash_of(&entry());
        assert_eq!(base.len(), 64);
        assert_eq!(base, hash_of(&entry()), "stable");
        let mut changed = entry();
        changed.details = r#"{"revision":5}"#.into();
        assert_ne!(hash_of(&changed), base);
        let mut changed = entry();
        changed.actor_name = "sam".into();
        assert_ne!(hash_of(&changed), base);
        let mut changed = entry();
        changed.prev_hash = "1".repeat(64);
        assert_ne!(hash_of(&changed), base);
    }
}
