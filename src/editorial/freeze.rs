//! The publishing freeze: an instance-wide switch for pre-election periods. While it is
//! in force nothing is published, changed in public or sent out at its scheduled time;
//! withdrawing and deleting still work. Scheduled posts whose time comes during the
//! freeze are held. When it is lifted, held posts go out at once; posts whose time is
//! still to come go out at their time, as scheduled.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::Actor;
use super::audit::{self, actions};
use crate::db::DbConnection;
use crate::db::schema::publishing_freezes;
use crate::error::AppError;

/// Longest message accepted.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// A freeze.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = publishing_freezes)]
pub struct Freeze {
    /// Row id.
    pub id: i64,
    /// What the banner says, e.g. why and until when.
    pub message: String,
    /// When it began.
    pub started_at: NaiveDateTime,
    /// Who began it.
    pub started_by: Option<i64>,
    /// When it was lifted.
    pub lifted_at: Option<NaiveDateTime>,
    /// Who lifted it.
    pub lifted_by: Option<i64>,
}

/// The freeze in force, if any.
pub fn current(conn: &mut DbConnection) -> QueryResult<Option<Freeze>> {
    publishing_freezes::table
        .filter(publishing_freezes::lifted_at.is_null())
        .select(Freeze::as_select())
        .first(conn)
        .optional()
}

/// Refuses while a freeze is in force, quoting its message.
pub fn ensure_not_frozen(conn: &mut DbConnection) -> Result<(), AppError> {
    match current(conn)? {
        Some(freeze) => Err(AppError::Conflict(frozen_message(&freeze))),
        None => Ok(()),
    }
}

/// What someone trying to publish is told.
pub fn frozen_message(freeze: &Freeze) -> String {
    format!(
        "publishing is frozen across this site: {} Nothing can be published until an administrator lifts the freeze.",
        freeze.message
    )
}

/// Checks a freeze message.
pub fn parse_message(raw: &str) -> Result<String, String> {
    let message = crate::domain::names::without_controls(raw)
        .trim()
        .to_owned();
    if message.is_empty() {
        return Err("Enter the message everyone will see, for example why and until when".into());
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(format!(
            "The message must be {MAX_MESSAGE_CHARS} characters or fewer"
        ));
    }
    Ok(message)
}

/// Begins a freeze (in the caller's transaction). Refused if one is in force.
pub fn start(conn: &mut DbConnection, by: &Actor, message: &str) -> Result<Freeze, AppError> {
    if current(conn)?.is_some() {
        return Err(AppError::Conflict("publishing is already frozen".into()));
    }
    diesel::insert_into(publishing_freezes::table)
        .values((
            publishing_freezes::message.eq(message),
            publishing_freezes::started_at.eq(crate::domain::now()),
            publishing_freezes::started_by.eq(by.user_id),
        ))
        .execute(conn)
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                AppError::Conflict("publishing is already frozen".into())
            } else {
                e.into()
            }
        })?;
    let freeze = current(conn)?.ok_or(AppError::NotFound)?;
    audit::record(
        conn,
        &audit::Event::new(by, actions::FREEZE_STARTED)
            .subject("publishing freeze")
            .detail("message", message),
    )?;
    Ok(freeze)
}

/// Lifts the freeze in force (in the caller's transaction) and queues every held
/// scheduled post to go out now; returns how many.
pub fn lift(conn: &mut DbConnection, by: &Actor) -> Result<usize, AppError> {
    let freeze =
        current(conn)?.ok_or_else(|| AppError::Conflict("publishing is not frozen".into()))?;
    diesel::update(publishing_freezes::table.find(freeze.id))
        .set((
            publishing_freezes::lifted_at.eq(crate::domain::now()),
            publishing_freezes::lifted_by.eq(by.user_id),
        ))
        .execute(conn)?;
    let released = super::schedule::release_held(conn, freeze.id)?;
    audit::record(
        conn,
        &audit::Event::new(by, actions::FREEZE_LIFTED)
            .subject("publishing freeze")
            .detail("released", released),
    )?;
    Ok(released)
}
