//! Invitations to a blog's team: an email with a link that works once, for a while.
//! Only a hash of the link's token is stored, so a copy of the database accepts nothing.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::db::DbConnection;
use crate::db::schema::blog_invitations;
use crate::domain::blogs::Role;

/// An invitation.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = blog_invitations)]
pub struct Invitation {
    /// Row id.
    pub id: i64,
    /// The blog.
    pub blog_id: i64,
    /// Where it was sent.
    pub email: String,
    /// The role it gives.
    pub role: String,
    /// SHA-256 of the token.
    pub token_hash: String,
    /// Who sent it.
    pub invited_by: Option<i64>,
    /// When.
    pub created_at: NaiveDateTime,
    /// When the link stops working.
    pub expires_at: NaiveDateTime,
    /// When it was taken up.
    pub accepted_at: Option<NaiveDateTime>,
    /// By which account.
    pub accepted_by: Option<i64>,
    /// When it was withdrawn.
    pub revoked_at: Option<NaiveDateTime>,
}

/// Why an invitation cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// No invitation has this link.
    Unknown,
    /// It was used already.
    Used,
    /// It ran out.
    Expired,
    /// It was withdrawn.
    Revoked,
}

impl Unusable {
    /// What the person following the link is told.
    pub fn message(self) -> &'static str {
        match self {
            Self::Unknown => "This invitation link is not right. Check you copied all of it.",
            Self::Used => "This invitation has been used already. Each link works once.",
            Self::Expired => {
                "This invitation has expired. Ask the blog's owner to invite you again."
            }
            Self::Revoked => "This invitation was withdrawn.",
        }
    }
}

impl Invitation {
    /// The role it gives.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Contributor)
    }

    /// Why it cannot be used now, if it cannot.
    pub fn unusable(&self, now: NaiveDateTime) -> Option<Unusable> {
        if self.revoked_at.is_some() {
            Some(Unusable::Revoked)
        } else if self.accepted_at.is_some() {
            Some(Unusable::Used)
        } else if self.expires_at <= now {
            Some(Unusable::Expired)
        } else {
            None
        }
    }
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Makes an invitation; returns it and the token for the link (shown nowhere else).
pub fn create(
    conn: &mut DbConnection,
    blog_id: i64,
    email: &str,
    role: Role,
    invited_by: i64,
    valid_for: chrono::Duration,
) -> QueryResult<(Invitation, String)> {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let now = crate::domain::now();
    diesel::insert_into(blog_invitations::table)
        .values((
            blog_invitations::blog_id.eq(blog_id),
            blog_invitations::email.eq(email),
            blog_invitations::role.eq(role.as_str()),
            blog_invitations::token_hash.eq(hash(&token)),
            blog_invitations::invited_by.eq(invited_by),
            blog_invitations::created_at.eq(now),
            blog_invitations::expires_at.eq(now + valid_for),
        ))
        .execute(conn)?;
    let invitation = find_by_token(conn, &token)?.ok_or(diesel::result::Error::NotFound)?;
    Ok((invitation, token))
}

/// The invitation a link's token names.
pub fn find_by_token(conn: &mut DbConnection, token: &str) -> QueryResult<Option<Invitation>> {
    if token.len() != 64 || !token.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(None);
    }
    blog_invitations::table
        .filter(blog_invitations::token_hash.eq(hash(&token.to_ascii_lowercase())))
        .select(Invitation::as_select())
        .first(conn)
        .optional()
}

/// Marks the invitation used by `user_id`, only if it still can be (so two clicks at
/// once make one member); returns whether this call took it.
pub fn take(conn: &mut DbConnection, id: i64, user_id: i64) -> QueryResult<bool> {
    let now = crate::domain::now();
    let updated = diesel::update(
        blog_invitations::table
            .filter(blog_invitations::id.eq(id))
            .filter(blog_invitations::accepted_at.is_null())
            .filter(blog_invitations::revoked_at.is_null())
            .filter(blog_invitations::expires_at.gt(now)),
    )
    .set((
        blog_invitations::accepted_at.eq(now),
        blog_invitations::accepted_by.eq(user_id),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// A blog's invitations not yet used, withdrawn or expired, newest first.
pub fn pending(conn: &mut DbConnection, blog_id: i64) -> QueryResult<Vec<Invitation>> {
    blog_invitations::table
        .filter(blog_invitations::blog_id.eq(blog_id))
        .filter(blog_invitations::accepted_at.is_null())
        .filter(blog_invitations::revoked_at.is_null())
        .filter(blog_invitations::expires_at.gt(crate::domain::now()))
        .order(blog_invitations::id.desc())
        .select(Invitation::as_select())
        .load(conn)
}

/// Withdraws a pending invitation of this blog; returns it if it was pending.
pub fn revoke(conn: &mut DbConnection, blog_id: i64, id: i64) -> QueryResult<Option<Invitation>> {
    let updated = diesel::update(
        blog_invitations::table
            .filter(blog_invitations::id.eq(id))
            .filter(blog_invitations::blog_id.eq(blog_id))
            .filter(blog_invitations::accepted_at.is_null())
            .filter(blog_invitations::revoked_at.is_null()),
    )
    .set(blog_invitations::revoked_at.eq(crate::domain::now()))
    .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    blog_invitations::table
        .find(id)
        .select(Invitation::as_select())
        .first(conn)
        .optional()
}
