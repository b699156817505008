//! Revisions: every save of a post, with who made it, when, and what changed. Rows never
//! change, except that a person's autosave is marked `coalesced` when their next
//! autosave follows it directly, so a run of autosaves shows in history as one entry.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::db::DbConnection;
use crate::db::schema::{post_revisions, users};
use crate::domain::names::{Slug, TagName};
use crate::domain::posts::{self, Post, PostInput};

/// What a post says: everything a revision keeps and an approval covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Content {
    /// Title (articles).
    pub title: Option<String>,
    /// Summary (articles).
    pub summary: Option<String>,
    /// Markdown text.
    pub body: String,
    /// Tag names, in order.
    pub tags: Vec<String>,
    /// The chosen web address.
    pub slug: Option<String>,
    /// The content warning.
    pub content_warning: Option<String>,
}

impl Content {
    /// The content of checked input.
    pub fn from_input(input: &PostInput) -> Self {
        Self {
            title: input.title.clone(),
            summary: input.summary.clone(),
            body: input.body_markdown.clone(),
            tags: input.tags.iter().map(ToString::to_string).collect(),
            slug: input.slug.as_ref().map(ToString::to_string),
            content_warning: input.content_warning.clone(),
        }
    }

    /// As input for saving (content read back from a revision was checked when saved).
    pub fn to_input(&self) -> PostInput {
        PostInput {
            title: self.title.clone(),
            summary: self.summary.clone(),
            body_markdown: self.body.clone(),
            tags: TagName::parse_list(&self.tags.join(",")).unwrap_or_default(),
            slug: self.slug.as_deref().and_then(|s| Slug::parse(s).ok()),
            content_warning: self.content_warning.clone(),
        }
    }

    /// What the post row says now, with its tags.
    pub fn of_post(conn: &mut DbConnection, post: &Post) -> QueryResult<Self> {
        let tags = posts::tags_of(conn, &[post.id])?
            .remove(&post.id)
            .unwrap_or_default();
        Ok(Self {
            title: post.title.clone(),
            summary: post.summary.clone(),
            body: post.body_markdown.clone(),
            tags: tags.iter().map(ToString::to_string).collect(),
            slug: post.slug.clone(),
            content_warning: post.content_warning.clone(),
        })
    }

    /// The tags as the editor shows them.
    pub fn tags_text(&self) -> String {
        self.tags.join(", ")
    }

    /// SHA-256 over the content, in a fixed order: what an approval records, and what
    /// publishing compares. A content warning is hashed only when there is one, so
    /// content without one hashes as it did before warnings were kept.
    pub fn hash(&self) -> String {
        let mut fields =
            serde_json::json!([self.title, self.summary, self.body, self.tags, self.slug]);
        if let (Some(warning), Some(list)) = (&self.content_warning, fields.as_array_mut()) {
            list.push(warning.as_str().into());
        }
        let canonical = fields;
        Sha256::digest(canonical.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// How a revision came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The content the post had before revisions were kept (or was given outside the
    /// editor).
    Original,
    /// Saved with a button.
    Save,
    /// Saved by the editor while typing.
    Autosave,
    /// Saved with another person's changes merged in.
    Merge,
    /// An earlier revision brought back.
    Restore,
    /// Written with the `rounds` command.
    Command,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Save => "save",
            Self::Autosave => "autosave",
            Self::Merge => "merge",
            Self::Restore => "restore",
            Self::Command => "command",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Self {
        match value {
            "save" => Self::Save,
            "autosave" => Self::Autosave,
            "merge" => Self::Merge,
            "restore" => Self::Restore,
            "command" => Self::Command,
            _ => Self::Original,
        }
    }

    /// Words for history.
    pub fn label(self) -> &'static str {
        match self {
            Self::Original => "First version",
            Self::Save => "Saved",
            Self::Autosave => "Autosaved",
            Self::Merge => "Saved, merged",
            Self::Restore => "Restored",
            Self::Command => "From the command line",
        }
    }
}

/// A revision row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = post_revisions)]
pub struct Revision {
    /// Row id.
    pub id: i64,
    /// The post.
    pub post_id: i64,
    /// 1, 2, 3... within the post.
    pub number: i32,
    /// Who saved it.
    pub author_id: Option<i64>,
    /// Their name then.
    pub author_name: String,
    /// See [`Kind`].
    pub kind: String,
    /// Title.
    pub title: Option<String>,
    /// Summary.
    pub summary: Option<String>,
    /// Markdown text.
    pub body_markdown: String,
    /// Tag names, comma-separated.
    pub tags: String,
    /// The chosen address.
    pub slug: Option<String>,
    /// The content warning.
    pub content_warning: Option<String>,
    /// See [`Content::hash`].
    pub content_hash: String,
    /// The revision the saver's editor showed.
    pub based_on: Option<i64>,
    /// What changed, in words.
    pub change_summary: String,
    /// Folded into the same person's next autosave.
    pub coalesced: bool,
    /// When.
    pub created_at: NaiveDateTime,
}

impl Revision {
    /// What it says.
    pub fn content(&self) -> Content {
        Content {
            title: self.title.clone(),
            summary: self.summary.clone(),
            body: self.body_markdown.clone(),
            tags: self
                .tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            slug: self.slug.clone(),
            content_warning: self.content_warning.clone(),
        }
    }

    /// How it came about.
    pub fn kind(&self) -> Kind {
        Kind::parse(&self.kind)
    }
}

/// The latest revision of a post.
pub fn head(conn: &mut DbConnection, post_id: i64) -> QueryResult<Option<Revision>> {
    post_revisions::table
        .filter(post_revisions::post_id.eq(post_id))
        .order(post_revisions::number.desc())
        .select(Revision::as_select())
        .first(conn)
        .optional()
}

/// The latest revision, making the first from the post itself if it has none (posts
/// written before revisions were kept, or straight into the database).
pub fn ensure_head(conn: &mut DbConnection, post: &Post) -> QueryResult<Revision> {
    if let Some(head) = head(conn, post.id)? {
        return Ok(head);
    }
    let content = Content::of_post(conn, post)?;
    let author_name = match post.author_id {
        Some(id) => users::table
            .find(id)
            .select(users::username)
            .first::<String>(conn)
            .optional()?,
        None => None,
    };
    // In a savepoint: on PostgreSQL the lost race would otherwise abort the transaction
    // the read below runs in.
    let inserted = crate::db::write_tx(conn, |c| {
        append(
            c,
            None,
            &NewRevision {
                post_id: post.id,
                author_id: post.author_id,
                author_name: author_name.as_deref().unwrap_or("unknown"),
                kind: Kind::Original,
                content: &content,
                based_on: None,
                change_summary: "First version".to_owned(),
            },
        )
    });
    match inserted {
        Ok(revision) => Ok(revision),
        // Two requests made it at once: the other one's is as good.
        Err(e) if crate::db::is_unique_violation(&e) => {
            head(conn, post.id)?.ok_or(diesel::result::Error::NotFound)
        }
        Err(e) => Err(e),
    }
}

/// The revision with this number on a post.
pub fn find(conn: &mut DbConnection, post_id: i64, number: i32) -> QueryResult<Option<Revision>> {
    post_revisions::table
        .filter(post_revisions::post_id.eq(post_id))
        .filter(post_revisions::number.eq(number))
        .select(Revision::as_select())
        .first(conn)
        .optional()
}

/// The revision with this id.
pub fn find_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Revision>> {
    post_revisions::table
        .find(id)
        .select(Revision::as_select())
        .first(conn)
        .optional()
}

/// A revision to append.
pub struct NewRevision<'a> {
    /// The post.
    pub post_id: i64,
    /// Who saved it.
    pub author_id: Option<i64>,
    /// Their name.
    pub author_name: &'a str,
    /// How.
    pub kind: Kind,
    /// What it says.
    pub content: &'a Content,
    /// The revision their editor showed.
    pub based_on: Option<i64>,
    /// What changed.
    pub change_summary: String,
}

/// Appends a revision after `head` (numbering on from it).
pub fn append(
    conn: &mut DbConnection,
    head: Option<&Revision>,
    new: &NewRevision<'_>,
) -> QueryResult<Revision> {
    let number = head.map_or(1, |h| h.number + 1);
    let now = crate::domain::now();
    let content = new.content;
    let id: i64 = crate::on_backend!(conn, |c| diesel::insert_into(post_revisions::table)
        .values((
            post_revisions::post_id.eq(new.post_id),
            post_revisions::number.eq(number),
            post_revisions::author_id.eq(new.author_id),
            post_revisions::author_name.eq(new.author_name),
            post_revisions::kind.eq(new.kind.as_str()),
            post_revisions::title.eq(&content.title),
            post_revisions::summary.eq(&content.summary),
            post_revisions::body_markdown.eq(&content.body),
            post_revisions::tags.eq(content.tags.join(",")),
            post_revisions::slug.eq(&content.slug),
            post_revisions::content_warning.eq(&content.content_warning),
            post_revisions::content_hash.eq(content.hash()),
            post_revisions::based_on.eq(new.based_on),
            post_revisions::change_summary.eq(&new.change_summary),
            post_revisions::coalesced.eq(false),
            post_revisions::created_at.eq(now),
        ))
        .returning(post_revisions::id)
        .get_result(c))?;
    find_id(conn, id)?.ok_or(diesel::result::Error::NotFound)
}

/// Folds an autosave into the one that follows it (history shows the later one).
pub fn mark_coalesced(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(post_revisions::table.find(id))
        .set(post_revisions::coalesced.eq(true))
        .execute(conn)?;
    Ok(())
}

/// One line of a post's history.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The revision.
    pub revision: Revision,
    /// Earlier autosaves by the same person folded into it.
    pub folded: usize,
}

/// A post's history, newest first, with runs of autosaves shown once.
pub fn history(conn: &mut DbConnection, post_id: i64) -> QueryResult<Vec<HistoryEntry>> {
    let folded_flags: Vec<bool> = post_revisions::table
        .filter(post_revisions::post_id.eq(post_id))
        .order(post_revisions::number.asc())
        .select(post_revisions::coalesced)
        .load(conn)?;
    let visible: Vec<Revision> = post_revisions::table
        .filter(post_revisions::post_id.eq(post_id))
        .filter(post_revisions::coalesced.eq(false))
        .order(post_revisions::number.asc())
        .select(Revision::as_select())
        .load(conn)?;
    // Each visible revision gathers the coalesced ones just before it.
    let mut entries = Vec::with_capacity(visible.len());
    let mut flags = folded_flags.into_iter();
    for revision in visible {
        let mut folded = 0;
        for flag in flags.by_ref() {
            if flag {
                folded += 1;
            } else {
                break;
            }
        }
        entries.push(HistoryEntry { revision, folded });
    }
    entries.reverse();
    Ok(entries)
}

/// What changed from `old` to `new`, in words: "Title changed; 12 words added, 3
/// removed; tags changed".
pub fn describe_change(old: Option<&Content>, new: &Content) -> String {
    let Some(old) = old else {
        return "First version".to_owned();
    };
    let mut parts: Vec<String> = Vec::new();
    let field = |name: &str, a: &Option<String>, b: &Option<String>| match (a, b) {
        (None, Some(_)) => Some(format!("{name} added")),
        (Some(_), None) => Some(format!("{name} removed")),
        (Some(x), Some(y)) if x != y => Some(format!("{name} changed")),
        _ => None,
    };
    parts.extend(field("Title", &old.title, &new.title));
    parts.extend(field("Summary", &old.summary, &new.summary));
    parts.extend(field(
        "Content warning",
        &old.content_warning,
        &new.content_warning,
    ));
    if old.body != new.body {
        let (added, removed) = super::diff::word_counts(&old.body, &new.body);
        let words = |n: usize| if n == 1 { "word" } else { "words" };
        parts.push(match (added, removed) {
            (0, 0) => "Text spacing changed".to_owned(),
            (a, 0) => format!("{a} {} added", words(a)),
            (0, r) => format!("{r} {} removed", words(r)),
            (a, r) => format!("{a} {} added, {r} removed", words(a)),
        });
    }
    if old.tags != new.tags {
        parts.push("Tags changed".to_owned());
    }
    if old.slug != new.slug {
        parts.push("Web address changed".to_owned());
    }
    if parts.is_empty() {
        "No change".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(title: Option<&str>, body: &str) -> Content {
        Content {
            title: title.map(str::to_owned),
            body: body.to_owned(),
            ..Content::default()
        }
    }

    #[test]
    fn change_is_described() {
        let old = content(Some("Plan"), "We will open ward 7.");
        let new = content(
            Some("Our plan"),
            "We will open ward 7 today and ward 8 soon.",
        );
        assert_eq!(
            describe_change(Some(&old), &new),
            "Title changed; 6 words added, 1 removed"
        );
        assert_eq!(describe_change(Some(&old), &old), "No change");
        assert_eq!(describe_change(None, &old), "First version");
    }

    #[test]
    fn hash_follows_content() {
        let a = content(Some("Plan"), "Text");
        let mut b = a.clone();
        assert_eq!(a.hash(), b.hash());
        b.tags.push("Winter".into());
        assert_ne!(a.hash(), b.hash());
    }
}
