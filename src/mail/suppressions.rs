//! Addresses that no longer get mail. A hard bounce (a 5xx reply to the recipient or to
//! the message) suppresses an address at once; soft bounces (a message that ended
//! undelivered on 4xx replies after all its retries) are counted, and the address is
//! suppressed when they reach `mail_soft_bounce_limit`.
//!
//! Suppression stops bulk mail (newsletters, digests). Account and security mail
//! (invitations, confirmations, password and sign-in messages) is still attempted: the
//! person may have fixed their mailbox, and missing such a message locks them out, while
//! one more bounce costs little.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::mail_suppressions as s;

/// Why an address was suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A 5xx reply.
    Hard,
    /// Repeated 4xx replies.
    Soft,
    /// An admin's decision.
    Manual,
}

impl Reason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
            Self::Manual => "manual",
        }
    }
}

/// One address's record.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = s)]
pub struct Suppression {
    /// The address, in lower case.
    pub address: String,
    /// See [`Reason`].
    pub reason: String,
    /// Messages that ended undelivered on 4xx replies.
    pub soft_bounces: i32,
    /// When mail stopped; `None` while only a few soft bounces are counted.
    pub suppressed_at: Option<NaiveDateTime>,
    /// The last reply that counted.
    pub last_error: Option<String>,
}

fn key(address: &str) -> String {
    address.trim().to_lowercase()
}

/// Whether mail to `address` is suppressed.
pub fn is_suppressed(conn: &mut DbConnection, address: &str) -> QueryResult<bool> {
    let found: Option<Option<NaiveDateTime>> = s::table
        .find(key(address))
        .select(s::suppressed_at)
        .first(conn)
        .optional()?;
    Ok(matches!(found, Some(Some(_))))
}

/// The record for `address`, if there is one.
pub fn find(conn: &mut DbConnection, address: &str) -> QueryResult<Option<Suppression>> {
    s::table
        .find(key(address))
        .select(Suppression::as_select())
        .first(conn)
        .optional()
}

/// Suppresses `address` from now on.
pub fn suppress(
    conn: &mut DbConnection,
    address: &str,
    reason: Reason,
    error: &str,
) -> QueryResult<()> {
    let address = key(address);
    let now = crate::domain::now();
    let error: String = error.chars().take(1000).collect();
    crate::db::write_tx(conn, |c| {
        let updated = diesel::update(s::table.find(&address))
            .set((
                s::reason.eq(reason.as_str()),
                s::suppressed_at.eq(now),
                s::last_error.eq(&error),
                s::updated_at.eq(now),
            ))
            .execute(c)?;
        if updated == 0 {
            diesel::insert_into(s::table)
                .values((
                    s::address.eq(&address),
                    s::reason.eq(reason.as_str()),
                    s::soft_bounces.eq(0),
                    s::suppressed_at.eq(Some(now)),
                    s::last_error.eq(&error),
                    s::created_at.eq(now),
                    s::updated_at.eq(now),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

/// Counts a message to `address` that ended undelivered on 4xx replies; at `limit` such
/// messages the address is suppressed. Returns whether it now is.
pub fn soft_bounce(
    conn: &mut DbConnection,
    address: &str,
    limit: u32,
    error: &str,
) -> QueryResult<bool> {
    let address = key(address);
    let now = crate::domain::now();
    let error: String = error.chars().take(1000).collect();
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    crate::db::write_tx(conn, |c| {
        let existing = find(c, &address)?;
        let bounces = existing.as_ref().map_or(0, |e| e.soft_bounces) + 1;
        let already = existing.as_ref().and_then(|e| e.suppressed_at);
        let suppressed_at = already.or((bounces >= limit).then_some(now));
        match existing {
            Some(existing) => {
                let reason = if already.is_some() {
                    existing.reason
                } else {
                    Reason::Soft.as_str().to_owned()
                };
                diesel::update(s::table.find(&address))
                    .set((
                        s::reason.eq(reason),
                        s::soft_bounces.eq(bounces),
                        s::suppressed_at.eq(suppressed_at),
                        s::last_error.eq(&error),
                        s::updated_at.eq(now),
                    ))
                    .execute(c)?;
            }
            None => {
                diesel::insert_into(s::table)
                    .values((
                        s::address.eq(&address),
                        s::reason.eq(Reason::Soft.as_str()),
                        s::soft_bounces.eq(bounces),
                        s::suppressed_at.eq(suppressed_at),
                        s::last_error.eq(&error),
                        s::created_at.eq(now),
                        s::updated_at.eq(now),
                    ))
                    .execute(c)?;
            }
        }
        Ok(suppressed_at.is_some())
    })
}

/// Lets mail go to `address` again (an admin's decision, or the person asked).
pub fn lift(conn: &mut DbConnection, address: &str) -> QueryResult<bool> {
    let deleted = diesel::delete(s::table.find(key(address))).execute(conn)?;
    Ok(deleted == 1)
}
