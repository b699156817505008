//! The team's comments on a post, optionally about a quoted passage. Comments never
//! leave rounds: they are not published, federated or put in feeds, and the email that
//! tells someone they were @mentioned carries a link, not the comment.

use std::sync::LazyLock;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use regex::Regex;

use super::roles::Member;
use crate::db::DbConnection;
use crate::db::schema::post_comments;
use crate::domain::names::without_controls;
use crate::error::FieldError;

/// Longest comment accepted.
pub const MAX_COMMENT_CHARS: usize = 5_000;
/// Longest quoted passage kept.
pub const MAX_QUOTE_CHARS: usize = 1_000;

/// A comment.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = post_comments)]
pub struct Comment {
    /// Row id.
    pub id: i64,
    /// The post.
    pub post_id: i64,
    /// Who wrote it.
    pub author_id: Option<i64>,
    /// Their name then.
    pub author_name: String,
    /// What they wrote (plain text).
    pub body: String,
    /// The passage it is about.
    pub quote: Option<String>,
    /// The revision they were looking at.
    pub revision_id: Option<i64>,
    /// When.
    pub created_at: NaiveDateTime,
    /// When it was marked resolved.
    pub resolved_at: Option<NaiveDateTime>,
    /// Who resolved it.
    pub resolved_by: Option<i64>,
}

/// A comment as submitted, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentInput {
    /// The text.
    pub body: String,
    /// The quoted passage, if any.
    pub quote: Option<String>,
}

impl CommentInput {
    /// Checks the form values.
    pub fn parse(body: &str, quote: &str) -> Result<Self, Vec<FieldError>> {
        let body = without_controls(body).trim().to_owned();
        let quote = without_controls(quote).trim().to_owned();
        let mut errors = Vec::new();
        if body.is_empty() {
            errors.push(FieldError::new("comment", "Enter your comment"));
        } else if body.chars().count() > MAX_COMMENT_CHARS {
            errors.push(FieldError::new(
                "comment",
                format!("The comment must be {MAX_COMMENT_CHARS} characters or fewer"),
            ));
        }
        if quote.chars().count() > MAX_QUOTE_CHARS {
            errors.push(FieldError::new(
                "quote",
                format!("The quoted passage must be {MAX_QUOTE_CHARS} characters or fewer"),
            ));
        }
        if errors.is_empty() {
            Ok(Self {
                body,
                quote: (!quote.is_empty()).then_some(quote),
            })
        } else {
            Err(errors)
        }
    }
}

/// Adds a comment; returns it.
pub fn add(
    conn: &mut DbConnection,
    post_id: i64,
    author: (i64, &str),
    revision_id: Option<i64>,
    input: &CommentInput,
) -> QueryResult<Comment> {
    let id: i64 = crate::on_backend!(conn, |c| diesel::insert_into(post_comments::table)
        .values((
            post_comments::post_id.eq(post_id),
            post_comments::author_id.eq(author.0),
            post_comments::author_name.eq(author.1),
            post_comments::body.eq(&input.body),
            post_comments::quote.eq(&input.quote),
            post_comments::revision_id.eq(revision_id),
            post_comments::created_at.eq(crate::domain::now()),
        ))
        .returning(post_comments::id)
        .get_result(c))?;
    post_comments::table
        .find(id)
        .select(Comment::as_select())
        .first(conn)
}

/// A post's comments, oldest first.
pub fn of_post(conn: &mut DbConnection, post_id: i64) -> QueryResult<Vec<Comment>> {
    post_comments::table
        .filter(post_comments::post_id.eq(post_id))
        .order(post_comments::id.asc())
        .select(Comment::as_select())
        .load(conn)
}

/// Marks a comment on this post resolved; returns whether it was open.
pub fn resolve(
    conn: &mut DbConnection,
    post_id: i64,
    comment_id: i64,
    by: i64,
) -> QueryResult<bool> {
    let updated = diesel::update(
        post_comments::table
            .filter(post_comments::id.eq(comment_id))
            .filter(post_comments::post_id.eq(post_id))
            .filter(post_comments::resolved_at.is_null()),
    )
    .set((
        post_comments::resolved_at.eq(crate::domain::now()),
        post_comments::resolved_by.eq(by),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

static MENTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\w@])@([A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]|[A-Za-z0-9])")
        .expect("valid regex")
});

/// The team members a comment @mentions, once each, leaving out its author.
pub fn mentioned<'a>(text: &str, team: &'a [Member], author_id: i64) -> Vec<&'a Member> {
    let mut found: Vec<&Member> = Vec::new();
    for capture in MENTION.captures_iter(text) {
        let Some(name) = capture.get(1) else { continue };
        let name = name.as_str().to_ascii_lowercase();
        if let Some(member) = team.iter().find(|m| m.username == name)
            && member.user_id != author_id
            && !found.iter().any(|f| f.user_id == member.user_id)
        {
            found.push(member);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::blogs::Role;

    fn member(id: i64, name: &str) -> Member {
        Member {
            user_id: id,
            username: name.into(),
            email: format!("{name}@nhs.net"),
            role: Role::Editor,
            since: crate::domain::now(),
        }
    }

    #[test]
    fn mentions_match_team_members_once() {
        let team = [member(1, "jane"), member(2, "sam.jones"), member(3, "ali")];
        let found = mentioned(
            "@Jane please check. cc @sam.jones, @sam.jones and @nobody; me@ali.example",
            &team,
            3,
        );
        let names: Vec<&str> = found.iter().map(|m| m.username.as_str()).collect();
        assert_eq!(names, ["jane", "sam.jones"]);
        assert!(mentioned("@ali", &team, 3).is_empty(), "not the author");
    }

    #[test]
    fn comment_input_is_checked() {
        assert!(CommentInput::parse("  ", "").is_err());
        let ok = CommentInput::parse(" Looks good ", " ").expect("valid");
        assert_eq!(ok.body, "Looks good");
        assert_eq!(ok.quote, None);
    }
}
