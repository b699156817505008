//! Accounts that sign in: admins, leaders, comms staff.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::names::{EmailAddress, Username};
use super::password::Password;
use crate::db::schema::users;
use crate::db::{DbConnection, is_unique_violation};

/// A user account.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Sign-in name.
    pub username: String,
    /// Where account mail goes.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Instance administrator.
    pub is_admin: bool,
    /// Base32 TOTP secret, set while enrolling and once enabled.
    pub totp_secret: Option<String>,
    /// Whether sign-in asks for a TOTP code.
    pub totp_enabled: bool,
    /// The last TOTP time step accepted, so a code cannot be used twice.
    pub totp_last_step: Option<i64>,
    /// When the account was made.
    pub created_at: NaiveDateTime,
    /// When the account last changed.
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser<'a> {
    username: &'a str,
    email: &'a str,
    password_hash: &'a str,
    is_admin: bool,
    totp_enabled: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// Why an account could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The username or email is already used by another account.
    #[error("an account with that username or email address already exists")]
    Taken,
    /// The password could not be hashed.
    #[error("{0}")]
    Hash(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Creates an account.
pub fn create(
    conn: &mut DbConnection,
    username: &Username,
    email: &EmailAddress,
    password: &Password,
    is_admin: bool,
) -> Result<User, CreateUserError> {
    let hash = password.hash().map_err(CreateUserError::Hash)?;
    let now = super::now();
    let new = NewUser {
        username: username.as_str(),
        email: email.as_str(),
        password_hash: &hash,
        is_admin,
        totp_enabled: false,
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(users::table)
        .values(&new)
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                CreateUserError::Taken
            } else {
                CreateUserError::Database(e)
            }
        })?;
    Ok(find_by_username(conn, username.as_str())?.ok_or(diesel::result::Error::NotFound)?)
}

/// The account with this id.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The account with this username (case-folded).
pub fn find_by_username(conn: &mut DbConnection, username: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::username.eq(username.trim().to_ascii_lowercase()))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The account with this username or email address, for sign-in.
pub fn find_for_sign_in(conn: &mut DbConnection, name: &str) -> QueryResult<Option<User>> {
    let name = name.trim();
    if name.contains('@') {
        let email = EmailAddress::parse(name)
            .map(|e| e.to_string())
            .unwrap_or_default();
        users::table
            .filter(users::email.eq(email))
            .select(User::as_select())
            .first(conn)
            .optional()
    } else {
        find_by_username(conn, name)
    }
}

/// Replaces the password hash.
pub fn set_password(conn: &mut DbConnection, id: i64, password: &Password) -> Result<(), String> {
    let hash = password.hash()?;
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(super::now()),
        ))
        .execute(conn)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Stores a TOTP secret being enrolled (not yet enabled), or clears two-factor.
pub fn set_totp(
    conn: &mut DbConnection,
    id: i64,
    secret: Option<&str>,
    enabled: bool,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::totp_secret.eq(secret),
            users::totp_enabled.eq(enabled),
            users::totp_last_step.eq(None::<i64>),
            users::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records the TOTP step just accepted, if it is newer than the last one; returns whether
/// it was (a replayed code is refused).
pub fn accept_totp_step(conn: &mut DbConnection, id: i64, step: i64) -> QueryResult<bool> {
    let updated = diesel::update(
        users::table.find(id).filter(
            users::totp_last_step
                .is_null()
                .or(users::totp_last_step.lt(step)),
        ),
    )
    .set(users::totp_last_step.eq(step))
    .execute(conn)?;
    Ok(updated == 1)
}

/// How many accounts exist (the first-run hint needs to know whether there are none).
pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}
