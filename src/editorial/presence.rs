//! Who else has a post open in the editor. Each open editor refreshes a row every few
//! seconds; a row not refreshed for three intervals is gone. The rows live in the
//! database, so people on different nodes sharing PostgreSQL see each other.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{editor_presence, users};

/// Someone with the post open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    /// Their account.
    pub user_id: i64,
    /// Their username.
    pub username: String,
    /// Since when.
    pub since: NaiveDateTime,
}

/// A client id as the editor makes it: up to 64 letters, digits and hyphens.
pub fn parse_client_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    (!raw.is_empty()
        && raw.len() <= 64
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    .then(|| raw.to_owned())
}

/// Records that `user_id`'s editor `client_id` has the post open now; clears rows past
/// `expiry` while it is there.
pub fn touch(
    conn: &mut DbConnection,
    post_id: i64,
    user_id: i64,
    client_id: &str,
    expiry: chrono::Duration,
) -> QueryResult<()> {
    let now = crate::domain::now();
    diesel::delete(editor_presence::table.filter(editor_presence::seen_at.lt(now - expiry)))
        .execute(conn)?;
    let values = (
        editor_presence::post_id.eq(post_id),
        editor_presence::user_id.eq(user_id),
        editor_presence::client_id.eq(client_id),
        editor_presence::opened_at.eq(now),
        editor_presence::seen_at.eq(now),
    );
    crate::on_backend!(conn, |c| diesel::insert_into(editor_presence::table)
        .values(values)
        .on_conflict((
            editor_presence::post_id,
            editor_presence::user_id,
            editor_presence::client_id
        ))
        .do_update()
        .set(editor_presence::seen_at.eq(now))
        .execute(c))?;
    Ok(())
}

/// Removes one editor's row (it was closed).
pub fn leave(
    conn: &mut DbConnection,
    post_id: i64,
    user_id: i64,
    client_id: &str,
) -> QueryResult<()> {
    diesel::delete(
        editor_presence::table
            .filter(editor_presence::post_id.eq(post_id))
            .filter(editor_presence::user_id.eq(user_id))
            .filter(editor_presence::client_id.eq(client_id)),
    )
    .execute(conn)?;
    Ok(())
}

/// Everyone but `user_id` with the post open within `expiry`, one entry a person.
pub fn others(
    conn: &mut DbConnection,
    post_id: i64,
    user_id: i64,
    expiry: chrono::Duration,
) -> QueryResult<Vec<Present>> {
    let since = crate::domain::now() - expiry;
    let rows: Vec<(i64, String, NaiveDateTime)> = editor_presence::table
        .inner_join(users::table)
        .filter(editor_presence::post_id.eq(post_id))
        .filter(editor_presence::user_id.ne(user_id))
        .filter(editor_presence::seen_at.ge(since))
        .order((users::username.asc(), editor_presence::opened_at.asc()))
        .select((users::id, users::username, editor_presence::opened_at))
        .load(conn)?;
    let mut present: Vec<Present> = Vec::new();
    for (user_id, username, since) in rows {
        if !present.iter().any(|p| p.user_id == user_id) {
            present.push(Present {
                user_id,
                username,
                since,
            });
        }
    }
    Ok(present)
}
