//! Who may do what on a blog. Roles are read from the database on every request, so a
//! change of role or a removal takes effect at once, in sessions already open too.
//!
//! | | owner | editor | contributor | instance admin |
//! |---|---|---|---|---|
//! | write and edit | any post | any post | own drafts, until approved | any post |
//! | submit for sign-off | yes | yes | own drafts | yes |
//! | approve | yes | if delegated, or the rule is off | no | no |
//! | publish, schedule | directly | once approved (any time if the rule is off) | no | as an editor |
//! | unpublish, delete | yes | yes | own drafts (delete) | yes |
//! | manage the team and rules | yes | no | no | yes |
//!
//! The per-blog rule (on by default) is "owner sign-off": only the owner, or the editor
//! they delegate to, may approve, and a post goes out under the owner's name only when
//! the exact approved revision is published.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{blog_editorial, blog_members, users};
use crate::domain::blogs::{self, Role};
use crate::domain::posts::{Post, Status};
use crate::domain::users::User;

use super::workflow::Stage;

/// A blog's editorial rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Only the owner (or their delegate) approves; editors publish only what was approved.
    pub owner_sign_off: bool,
    /// The editor the owner lets approve on their behalf.
    pub delegate_id: Option<i64>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            owner_sign_off: true,
            delegate_id: None,
        }
    }
}

/// The blog's rules (the defaults when never changed).
pub fn rules_of(conn: &mut DbConnection, blog_id: i64) -> QueryResult<Rules> {
    let row: Option<(bool, Option<i64>)> = blog_editorial::table
        .find(blog_id)
        .select((
            blog_editorial::owner_sign_off,
            blog_editorial::approval_delegate_id,
        ))
        .first(conn)
        .optional()?;
    Ok(
        row.map_or_else(Rules::default, |(owner_sign_off, delegate_id)| Rules {
            owner_sign_off,
            delegate_id,
        }),
    )
}

/// Saves the blog's rules.
pub fn set_rules(conn: &mut DbConnection, blog_id: i64, rules: Rules) -> QueryResult<()> {
    let now = crate::domain::now();
    let updated = diesel::update(blog_editorial::table.find(blog_id))
        .set((
            blog_editorial::owner_sign_off.eq(rules.owner_sign_off),
            blog_editorial::approval_delegate_id.eq(rules.delegate_id),
            blog_editorial::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(blog_editorial::table)
            .values((
                blog_editorial::blog_id.eq(blog_id),
                blog_editorial::owner_sign_off.eq(rules.owner_sign_off),
                blog_editorial::approval_delegate_id.eq(rules.delegate_id),
                blog_editorial::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A person's standing on one blog, read afresh for each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The account.
    pub user_id: i64,
    /// Their membership, if any.
    pub membership: Option<Role>,
    /// Whether they are an instance administrator.
    pub is_admin: bool,
    /// The blog's rules.
    pub rules: Rules,
}

/// The standing of `user` on the blog.
pub fn standing(conn: &mut DbConnection, blog_id: i64, user: &User) -> QueryResult<Standing> {
    standing_of(conn, blog_id, user.id, user.is_admin)
}

/// The standing of an account by id.
pub fn standing_of(
    conn: &mut DbConnection,
    blog_id: i64,
    user_id: i64,
    is_admin: bool,
) -> QueryResult<Standing> {
    Ok(Standing {
        user_id,
        membership: blogs::role_of(conn, blog_id, user_id)?,
        is_admin,
        rules: rules_of(conn, blog_id)?,
    })
}

impl Standing {
    /// Their role for what they may do: an admin acts as at least an editor.
    pub fn role(&self) -> Option<Role> {
        match (self.membership, self.is_admin) {
            (Some(role), true) => Some(role.max(Role::Editor)),
            (Some(role), false) => Some(role),
            (None, true) => Some(Role::Editor),
            (None, false) => None,
        }
    }

    /// On the team at all (or an admin).
    pub fn is_member(&self) -> bool {
        self.role().is_some()
    }

    /// The blog's owner.
    pub fn is_owner(&self) -> bool {
        self.membership == Some(Role::Owner)
    }

    /// An editor or better.
    pub fn is_editor(&self) -> bool {
        self.role().is_some_and(|r| r >= Role::Editor)
    }

    /// Whether they may see a post and its history, review page and comments.
    pub fn can_view(&self, post: &Post) -> bool {
        self.is_editor()
            || (self.role() == Some(Role::Contributor) && post.author_id == Some(self.user_id))
    }

    /// Whether they may change a post's text.
    pub fn can_edit(&self, post: &Post, stage: Stage) -> bool {
        if post.status() == Status::Deleted {
            return false;
        }
        self.is_editor()
            || (self.role() == Some(Role::Contributor)
                && post.author_id == Some(self.user_id)
                && post.published_at.is_none()
                && matches!(stage, Stage::Draft | Stage::InReview))
    }

    /// Whether they may submit a post for sign-off.
    pub fn can_submit(&self, post: &Post, stage: Stage) -> bool {
        self.can_edit(post, stage)
    }

    /// Whether they may approve: the owner; the delegate while an editor; any editor
    /// when the blog has turned owner sign-off off.
    pub fn can_approve(&self) -> bool {
        if self.is_owner() {
            return true;
        }
        let editor_member = self.membership.is_some_and(|r| r >= Role::Editor);
        if self.rules.owner_sign_off {
            editor_member && self.rules.delegate_id == Some(self.user_id)
        } else {
            self.is_editor()
        }
    }

    /// Whether they may publish without a matching approval: the owner (publishing is
    /// their sign-off), or any editor when the rule is off.
    pub fn can_publish_directly(&self) -> bool {
        self.is_owner() || (!self.rules.owner_sign_off && self.is_editor())
    }

    /// Whether they may publish or schedule what has been approved.
    pub fn can_publish_approved(&self) -> bool {
        self.is_editor()
    }

    /// Whether they may unpublish or delete published posts and edit the profile.
    pub fn can_withdraw(&self) -> bool {
        self.is_editor()
    }

    /// Whether they may leave comments on the post.
    pub fn can_comment(&self, post: &Post) -> bool {
        self.can_view(post)
    }

    /// Whether they may invite, change roles, remove members and set the rules.
    pub fn can_manage_team(&self) -> bool {
        self.is_owner() || self.is_admin
    }
}

/// A member of a blog's team.
#[derive(Debug, Clone)]
pub struct Member {
    /// The account.
    pub user_id: i64,
    /// Their username.
    pub username: String,
    /// Their email address.
    pub email: String,
    /// Their role.
    pub role: Role,
    /// Since when.
    pub since: NaiveDateTime,
}

/// The team, owner first, then editors, then contributors, by name.
pub fn members(conn: &mut DbConnection, blog_id: i64) -> QueryResult<Vec<Member>> {
    let rows: Vec<(i64, String, String, String, NaiveDateTime)> = blog_members::table
        .inner_join(users::table)
        .filter(blog_members::blog_id.eq(blog_id))
        .select((
            users::id,
            users::username,
            users::email,
            blog_members::role,
            blog_members::created_at,
        ))
        .load(conn)?;
    let mut members: Vec<Member> = rows
        .into_iter()
        .filter_map(|(user_id, username, email, role, since)| {
            Role::parse(&role).map(|role| Member {
                user_id,
                username,
                email,
                role,
                since,
            })
        })
        .collect();
    members.sort_by(|a, b| {
        b.role
            .cmp(&a.role)
            .then_with(|| a.username.cmp(&b.username))
    });
    Ok(members)
}

/// Adds a member, or changes the role of one already there (never the owner's).
pub fn set_member(
    conn: &mut DbConnection,
    blog_id: i64,
    user_id: i64,
    role: Role,
) -> QueryResult<Option<Role>> {
    let before = blogs::role_of(conn, blog_id, user_id)?;
    match before {
        Some(Role::Owner) => {}
        Some(_) => {
            diesel::update(blog_members::table.find((blog_id, user_id)))
                .set(blog_members::role.eq(role.as_str()))
                .execute(conn)?;
        }
        None => {
            diesel::insert_into(blog_members::table)
                .values((
                    blog_members::blog_id.eq(blog_id),
                    blog_members::user_id.eq(user_id),
                    blog_members::role.eq(role.as_str()),
                    blog_members::created_at.eq(crate::domain::now()),
                ))
                .execute(conn)?;
        }
    }
    Ok(before)
}

/// Removes a member (never the owner); returns whether they were on the team.
pub fn remove_member(conn: &mut DbConnection, blog_id: i64, user_id: i64) -> QueryResult<bool> {
    let removed = diesel::delete(
        blog_members::table
            .filter(blog_members::blog_id.eq(blog_id))
            .filter(blog_members::user_id.eq(user_id))
            .filter(blog_members::role.ne(Role::Owner.as_str())),
    )
    .execute(conn)?;
    Ok(removed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(membership: Option<Role>, is_admin: bool, rules: Rules) -> Standing {
        Standing {
            user_id: 7,
            membership,
            is_admin,
            rules,
        }
    }

    #[test]
    fn only_the_owner_or_delegate_approves_under_the_rule() {
        let rule = Rules::default();
        assert!(standing(Some(Role::Owner), false, rule).can_approve());
        assert!(!standing(Some(Role::Editor), false, rule).can_approve());
        assert!(!standing(Some(Role::Contributor), false, rule).can_approve());
        assert!(
            !standing(None, true, rule).can_approve(),
            "admins do not sign off"
        );
        let delegated = Rules {
            owner_sign_off: true,
            delegate_id: Some(7),
        };
        assert!(standing(Some(Role::Editor), false, delegated).can_approve());
        assert!(
            !standing(Some(Role::Contributor), false, delegated).can_approve(),
            "a delegate demoted to contributor no longer approves"
        );
        let off = Rules {
            owner_sign_off: false,
            delegate_id: None,
        };
        assert!(standing(Some(Role::Editor), false, off).can_approve());
        assert!(standing(Some(Role::Editor), false, off).can_publish_directly());
        assert!(!standing(Some(Role::Editor), false, rule).can_publish_directly());
        assert!(standing(Some(Role::Owner), false, rule).can_publish_directly());
    }
}
