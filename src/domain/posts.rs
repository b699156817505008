//! Posts: short updates (no title) and articles (with a title), from draft to published,
//! unpublished or deleted.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::html::{SafeHtml, images_without_alt};
use super::names::{Slug, TagName, without_controls};
use crate::db::schema::{post_tags, posts};
use crate::db::{DbConnection, is_unique_violation};
use crate::error::{AppError, FieldError};

/// Longest title accepted.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest summary accepted.
pub const MAX_SUMMARY_CHARS: usize = 500;
/// Longest body accepted.
pub const MAX_BODY_CHARS: usize = 100_000;
/// Longest content warning accepted (Mastodon's own posts allow 500 characters for the
/// warning and the text together; a warning is a line, not a paragraph).
pub const MAX_CONTENT_WARNING_CHARS: usize = 200;

/// Where a post is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Never published; only the team sees it.
    Draft,
    /// Public.
    Published,
    /// Was public, withdrawn; its address answers 410 Gone until it is published again.
    Unpublished,
    /// Deleted after publication: a tombstone keeps its address answering 410 Gone.
    Deleted,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Unpublished => "unpublished",
            Self::Deleted => "deleted",
        }
    }

    /// Parses a stored name (an unknown one reads as a draft: never shown publicly).
    pub fn parse(value: &str) -> Self {
        match value {
            "published" => Self::Published,
            "unpublished" => Self::Unpublished,
            "deleted" => Self::Deleted,
            _ => Self::Draft,
        }
    }

    /// Words for the team's screens.
    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::Published => "Published",
            Self::Unpublished => "Unpublished",
            Self::Deleted => "Deleted",
        }
    }
}

/// A post row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = posts)]
pub struct Post {
    /// Row id.
    pub id: i64,
    /// The blog it is on.
    pub blog_id: i64,
    /// Its address under the blog; set at first publication if not chosen before.
    pub slug: Option<String>,
    /// Articles have a title; short updates do not.
    pub title: Option<String>,
    /// An article's standfirst.
    pub summary: Option<String>,
    /// The text as written.
    pub body_markdown: String,
    /// The text, rendered and sanitised.
    pub body_html: SafeHtml,
    /// See [`Status`].
    pub status: String,
    /// Who wrote it.
    pub author_id: Option<i64>,
    /// When it was started.
    pub created_at: NaiveDateTime,
    /// When anything about it last changed (content or status).
    pub updated_at: NaiveDateTime,
    /// When it was first published.
    pub published_at: Option<NaiveDateTime>,
    /// When its published content was last edited.
    pub edited_at: Option<NaiveDateTime>,
    /// Whether new replies from the fediverse are turned away.
    pub replies_closed: bool,
    /// A content warning shown before the text (Mastodon hides the text behind it).
    pub content_warning: Option<String>,
    /// When it was pinned to the top of the blog's profile, if it is.
    pub pinned_at: Option<NaiveDateTime>,
    /// How many times it was published again after being withdrawn: its life on the
    /// fediverse, each with an id of its own (see `federation::objects::post_id`).
    pub republished: i32,
}

impl Post {
    /// Its status.
    pub fn status(&self) -> Status {
        Status::parse(&self.status)
    }

    /// Whether it is an article (has a title) rather than a short update.
    pub fn is_article(&self) -> bool {
        self.title.is_some()
    }

    /// Its public path under the blog, once it has a slug.
    pub fn path(&self, handle: &str) -> Option<String> {
        self.slug.as_ref().map(|s| format!("/@{handle}/{s}"))
    }

    /// A title for places that need one (feeds, page titles, lists): the title, or the
    /// opening words of a short update.
    pub fn display_title(&self) -> String {
        match &self.title {
            Some(t) => t.clone(),
            None => {
                let text = super::html::plain_text(&self.body_markdown);
                if text.is_empty() {
                    "Untitled update".to_owned()
                } else {
                    super::html::excerpt(&text, 80)
                }
            }
        }
    }

    /// When readers should see it as last updated.
    pub fn last_edited(&self) -> Option<NaiveDateTime> {
        self.edited_at.or(self.published_at)
    }
}

/// A post's fields as typed into the editor or given on the command line, unchecked.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostFields<'a> {
    /// Title (articles only).
    pub title: &'a str,
    /// Summary (articles only).
    pub summary: &'a str,
    /// Markdown text.
    pub body: &'a str,
    /// Tags, separated by commas.
    pub tags: &'a str,
    /// A chosen web address.
    pub slug: &'a str,
    /// A content warning.
    pub content_warning: &'a str,
}

/// The content of a post as submitted by the editor or the command line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostInput {
    /// Title (articles only).
    pub title: Option<String>,
    /// Summary (articles only).
    pub summary: Option<String>,
    /// Markdown text.
    pub body_markdown: String,
    /// Tags, de-duplicated.
    pub tags: Vec<TagName>,
    /// A chosen web address, if any.
    pub slug: Option<Slug>,
    /// A warning shown before the text (on the fediverse the text is hidden behind it).
    pub content_warning: Option<String>,
}

fn optional_text(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl PostInput {
    /// Checks raw form or command-line values. Every problem is reported, each against
    /// its field.
    pub fn parse(fields: &PostFields<'_>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let title = optional_text(&without_controls(fields.title));
        let summary = optional_text(&without_controls(fields.summary));
        let body_markdown = without_controls(fields.body).trim_end().to_owned();
        let content_warning = optional_text(&without_controls(fields.content_warning));
        if title
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_TITLE_CHARS)
        {
            errors.push(FieldError::new(
                "title",
                format!("Title must be {MAX_TITLE_CHARS} characters or fewer"),
            ));
        }
        if title.as_ref().is_some_and(|t| t.contains('\n')) {
            errors.push(FieldError::new("title", "Title must be one line"));
        }
        if let Some(s) = &summary {
            if title.is_none() {
                errors.push(FieldError::new(
                    "summary",
                    "Only articles have a summary: add a title, or remove the summary",
                ));
            } else if s.chars().count() > MAX_SUMMARY_CHARS {
                errors.push(FieldError::new(
                    "summary",
                    format!("Summary must be {MAX_SUMMARY_CHARS} characters or fewer"),
                ));
            }
        }
        if let Some(warning) = &content_warning {
            if warning.contains('\n') {
                errors.push(FieldError::new(
                    "content_warning",
                    "The content warning must be one line",
                ));
            } else if warning.chars().count() > MAX_CONTENT_WARNING_CHARS {
                errors.push(FieldError::new(
                    "content_warning",
                    format!(
                        "The content warning must be {MAX_CONTENT_WARNING_CHARS} characters or fewer"
                    ),
                ));
            }
        }
        if body_markdown.trim().is_empty() {
            errors.push(FieldError::new("body", "Enter the text of the post"));
        } else if body_markdown.chars().count() > MAX_BODY_CHARS {
            errors.push(FieldError::new(
                "body",
                format!("The text must be {MAX_BODY_CHARS} characters or fewer"),
            ));
        }
        let tags = TagName::parse_list(fields.tags).unwrap_or_else(|e| {
            errors.push(FieldError::new("tags", e));
            Vec::new()
        });
        let slug = match fields.slug.trim() {
            "" => None,
            s => Slug::parse(s).map(Some).unwrap_or_else(|e| {
                errors.push(FieldError::new("slug", e));
                None
            }),
        };
        if errors.is_empty() {
            Ok(Self {
                title,
                summary,
                body_markdown,
                tags,
                slug,
                content_warning,
            })
        } else {
            Err(errors)
        }
    }

    /// Problems that stop this content being published (drafts may have them).
    pub fn publication_problems(&self) -> Vec<FieldError> {
        images_without_alt(&self.body_markdown)
            .into_iter()
            .map(|image| {
                FieldError::new(
                    "body",
                    format!(
                        "The image {} has no alt text: write what it shows between the square brackets, like ![Ward 7 team at the awards](…)",
                        image.url
                    ),
                )
            })
            .collect()
    }
}

/// Starts a post as a draft; returns it.
pub fn create_draft(
    conn: &mut DbConnection,
    blog_id: i64,
    author_id: Option<i64>,
    input: &PostInput,
) -> Result<Post, AppError> {
    let now = super::now();
    let id: i64 = crate::on_backend!(conn, |c| diesel::insert_into(posts::table)
        .values((
            posts::blog_id.eq(blog_id),
            posts::slug.eq(input.slug.as_ref().map(Slug::as_str)),
            posts::title.eq(&input.title),
            posts::summary.eq(&input.summary),
            posts::body_markdown.eq(&input.body_markdown),
            posts::body_html.eq(SafeHtml::from_markdown(&input.body_markdown)),
            posts::content_warning.eq(&input.content_warning),
            posts::status.eq(Status::Draft.as_str()),
            posts::author_id.eq(author_id),
            posts::created_at.eq(now),
            posts::updated_at.eq(now),
        ))
        .returning(posts::id)
        .get_result(c))
    .map_err(|e| slug_conflict(e, input.slug.as_ref()))?;
    set_tags(conn, id, &input.tags)?;
    find(conn, id)?.ok_or(AppError::NotFound)
}

fn slug_conflict(error: diesel::result::Error, slug: Option<&Slug>) -> AppError {
    if is_unique_violation(&error) {
        AppError::invalid(
            "slug",
            format!(
                "Another post on this blog already uses the web address “{}”",
                slug.map_or("", Slug::as_str)
            ),
        )
    } else {
        error.into()
    }
}

/// Saves new content for a post. A published post keeps its address and is marked as
/// edited; a chosen address can change only until first publication.
pub fn update_content(
    conn: &mut DbConnection,
    post: &Post,
    input: &PostInput,
) -> Result<Post, AppError> {
    let now = super::now();
    let published = post.status() == Status::Published;
    let slug = if post.published_at.is_some() {
        post.slug.clone()
    } else {
        input.slug.as_ref().map(|s| s.to_string())
    };
    let edited_at = if published { Some(now) } else { post.edited_at };
    diesel::update(posts::table.find(post.id))
        .set((
            posts::slug.eq(&slug),
            posts::title.eq(&input.title),
            posts::summary.eq(&input.summary),
            posts::body_markdown.eq(&input.body_markdown),
            posts::body_html.eq(SafeHtml::from_markdown(&input.body_markdown)),
            posts::content_warning.eq(&input.content_warning),
            posts::updated_at.eq(now),
            posts::edited_at.eq(edited_at),
        ))
        .execute(conn)
        .map_err(|e| slug_conflict(e, input.slug.as_ref()))?;
    set_tags(conn, post.id, &input.tags)?;
    find(conn, post.id)?.ok_or(AppError::NotFound)
}

/// Stores a post's text rendered again from the same Markdown (with its mentions made
/// links when it goes out); marks the post changed, so pages and feeds are rendered anew.
pub fn set_body_html(
    conn: &mut DbConnection,
    post: &Post,
    html: &SafeHtml,
) -> Result<Post, AppError> {
    diesel::update(posts::table.find(post.id))
        .set((
            posts::body_html.eq(html),
            posts::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
    find(conn, post.id)?.ok_or(AppError::NotFound)
}

fn set_tags(conn: &mut DbConnection, post_id: i64, tags: &[TagName]) -> QueryResult<()> {
    diesel::delete(post_tags::table.filter(post_tags::post_id.eq(post_id))).execute(conn)?;
    // Multi-row inserts do not compile through the multi-backend connection.
    for (position, tag) in (0..).zip(tags) {
        diesel::insert_into(post_tags::table)
            .values((
                post_tags::post_id.eq(post_id),
                post_tags::tag.eq(tag.key()),
                post_tags::name.eq(tag.as_str()),
                post_tags::position.eq(position),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Publishes a draft or unpublished post: checks it can be, gives it an address if it
/// has none, and keeps the first publication date.
pub fn publish(conn: &mut DbConnection, post: &Post) -> Result<Post, AppError> {
    if matches!(post.status(), Status::Published | Status::Deleted) {
        return Err(AppError::Conflict(format!(
            "this post is {}",
            post.status().label().to_lowercase()
        )));
    }
    let input = PostInput {
        title: post.title.clone(),
        summary: post.summary.clone(),
        body_markdown: post.body_markdown.clone(),
        tags: Vec::new(),
        slug: None,
        content_warning: post.content_warning.clone(),
    };
    let problems = input.publication_problems();
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    let slug = match &post.slug {
        Some(s) => s.clone(),
        None => free_slug(conn, post.blog_id, &Slug::derive(&post.display_title()))?.to_string(),
    };
    let now = super::now();
    // Published again after being withdrawn: a new life, since the fediverse was told the
    // last one is deleted.
    let republished = post.republished + i32::from(post.status() == Status::Unpublished);
    diesel::update(posts::table.find(post.id))
        .set((
            posts::slug.eq(&slug),
            posts::status.eq(Status::Published.as_str()),
            posts::published_at.eq(post.published_at.unwrap_or(now)),
            posts::updated_at.eq(now),
            posts::republished.eq(republished),
        ))
        .execute(conn)
        .map_err(|e| slug_conflict(e, None))?;
    find(conn, post.id)?.ok_or(AppError::NotFound)
}

/// The wanted slug, or the same with the lowest free number after it.
fn free_slug(conn: &mut DbConnection, blog_id: i64, wanted: &Slug) -> QueryResult<Slug> {
    let taken: Vec<Option<String>> = posts::table
        .filter(posts::blog_id.eq(blog_id))
        .filter(posts::slug.like(format!("{}%", wanted.as_str())))
        .select(posts::slug)
        .load(conn)?;
    let taken: Vec<String> = taken.into_iter().flatten().collect();
    if !taken.iter().any(|s| s == wanted.as_str()) {
        return Ok(wanted.clone());
    }
    Ok((2..)
        .map(|n| wanted.numbered(n))
        .find(|candidate| !taken.iter().any(|s| s == candidate.as_str()))
        .unwrap_or_else(|| wanted.numbered(u32::MAX)))
}

/// Withdraws a published post: its address answers 410 Gone until it is published again.
pub fn unpublish(conn: &mut DbConnection, post: &Post) -> Result<Post, AppError> {
    if post.status() != Status::Published {
        return Err(AppError::Conflict(
            "only a published post can be unpublished".into(),
        ));
    }
    set_status(conn, post.id, Status::Unpublished)?;
    find(conn, post.id)?.ok_or(AppError::NotFound)
}

fn set_status(conn: &mut DbConnection, id: i64, status: Status) -> QueryResult<()> {
    diesel::update(posts::table.find(id))
        .set((
            posts::status.eq(status.as_str()),
            posts::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes a post. One that was never published goes entirely; one that was keeps a
/// tombstone (its address and dates, no content) so its address answers 410 Gone.
pub fn delete(conn: &mut DbConnection, post: &Post) -> Result<(), AppError> {
    match (post.status(), post.published_at) {
        (Status::Deleted, _) => Err(AppError::Gone),
        (_, None) => {
            diesel::delete(posts::table.find(post.id)).execute(conn)?;
            Ok(())
        }
        (_, Some(_)) => {
            diesel::delete(post_tags::table.filter(post_tags::post_id.eq(post.id)))
                .execute(conn)?;
            diesel::update(posts::table.find(post.id))
                .set((
                    posts::status.eq(Status::Deleted.as_str()),
                    posts::title.eq(None::<String>),
                    posts::summary.eq(None::<String>),
                    posts::body_markdown.eq(""),
                    posts::body_html.eq(SafeHtml::default()),
                    posts::updated_at.eq(super::now()),
                ))
                .execute(conn)?;
            Ok(())
        }
    }
}

/// The post with this id.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Post>> {
    posts::table
        .find(id)
        .select(Post::as_select())
        .first(conn)
        .optional()
}

/// The post at this address on a blog, in any state.
pub fn find_by_slug(
    conn: &mut DbConnection,
    blog_id: i64,
    slug: &str,
) -> QueryResult<Option<Post>> {
    posts::table
        .filter(posts::blog_id.eq(blog_id))
        .filter(posts::slug.eq(slug))
        .select(Post::as_select())
        .first(conn)
        .optional()
}

/// The post with this slug on the blog with this handle, with its blog: one query.
pub fn find_with_blog(
    conn: &mut DbConnection,
    handle: &str,
    slug: &str,
) -> QueryResult<Option<(crate::domain::blogs::Blog, Post)>> {
    use crate::db::schema::blogs;

    posts::table
        .inner_join(blogs::table)
        .filter(blogs::handle.eq(handle.to_ascii_lowercase()))
        .filter(posts::slug.eq(slug))
        .select((crate::domain::blogs::Blog::as_select(), Post::as_select()))
        .first(conn)
        .optional()
}

/// Which published posts a listing shows.
#[derive(Debug, Clone, Default)]
pub struct Listing<'a> {
    /// Only this blog's.
    pub blog_id: Option<i64>,
    /// Only those with this tag key.
    pub tag: Option<&'a str>,
}

/// A page of published posts, newest first, and the total number.
pub fn published(
    conn: &mut DbConnection,
    listing: &Listing<'_>,
    page: u32,
    per_page: u32,
) -> QueryResult<(Vec<Post>, i64)> {
    let query = || {
        let mut query = posts::table
            .filter(posts::status.eq(Status::Published.as_str()))
            .into_boxed();
        if let Some(blog_id) = listing.blog_id {
            query = query.filter(posts::blog_id.eq(blog_id));
        }
        if let Some(tag) = listing.tag {
            query = query.filter(
                posts::id.eq_any(
                    post_tags::table
                        .filter(post_tags::tag.eq(tag))
                        .select(post_tags::post_id),
                ),
            );
        }
        query
    };
    let total: i64 = query().count().get_result(conn)?;
    let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
    let posts = query()
        .order((posts::published_at.desc(), posts::id.desc()))
        .limit(i64::from(per_page))
        .offset(offset)
        .select(Post::as_select())
        .load(conn)?;
    Ok((posts, total))
}

/// The tags of each of these posts, in the order they were written.
pub fn tags_of(
    conn: &mut DbConnection,
    post_ids: &[i64],
) -> QueryResult<HashMap<i64, Vec<TagName>>> {
    let rows: Vec<(i64, String)> = post_tags::table
        .filter(post_tags::post_id.eq_any(post_ids))
        .order((post_tags::post_id, post_tags::position))
        .select((post_tags::post_id, post_tags::name))
        .load(conn)?;
    let mut tags: HashMap<i64, Vec<TagName>> = HashMap::new();
    for (post_id, name) in rows {
        if let Ok(tag) = TagName::parse(&name) {
            tags.entry(post_id).or_default().push(tag);
        }
    }
    Ok(tags)
}

/// How a tag is written on its most recent published use, if it is used at all.
pub fn tag_display_name(
    conn: &mut DbConnection,
    blog_id: Option<i64>,
    key: &str,
) -> QueryResult<Option<String>> {
    let mut query = post_tags::table
        .inner_join(posts::table)
        .filter(post_tags::tag.eq(key))
        .filter(posts::status.eq(Status::Published.as_str()))
        .into_boxed();
    if let Some(blog_id) = blog_id {
        query = query.filter(posts::blog_id.eq(blog_id));
    }
    query
        .order(posts::published_at.desc())
        .select(post_tags::name)
        .first(conn)
        .optional()
}

/// The team's list of a blog's posts: drafts and published alike, most recently changed
/// first (tombstones left out).
pub fn for_team(conn: &mut DbConnection, blog_id: i64) -> QueryResult<Vec<Post>> {
    posts::table
        .filter(posts::blog_id.eq(blog_id))
        .filter(posts::status.ne(Status::Deleted.as_str()))
        .order((posts::updated_at.desc(), posts::id.desc()))
        .select(Post::as_select())
        .load(conn)
}

/// When anything a blog's public pages show last changed (a post in any way), for
/// `Last-Modified` and `ETag` before anything is rendered.
pub fn last_change(
    conn: &mut DbConnection,
    blog_id: Option<i64>,
) -> QueryResult<Option<NaiveDateTime>> {
    let mut query = posts::table
        .filter(posts::published_at.is_not_null())
        .into_boxed();
    if let Some(blog_id) = blog_id {
        query = query.filter(posts::blog_id.eq(blog_id));
    }
    query
        .select(diesel::dsl::max(posts::updated_at))
        .first(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_checked_field_by_field() {
        let errors = PostInput::parse(&PostFields {
            summary: "a summary",
            body: "  ",
            tags: "bad-tag",
            slug: "Bad Slug",
            content_warning: "Two\nlines",
            ..PostFields::default()
        })
        .expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["summary", "content_warning", "body", "tags", "slug"]
        );
    }

    #[test]
    fn short_update_and_article() {
        let update = PostInput::parse(&PostFields {
            body: "Hello ward 7",
            content_warning: "  ",
            ..PostFields::default()
        })
        .expect("valid");
        assert_eq!(update.title, None);
        assert_eq!(update.content_warning, None);
        let article = PostInput::parse(&PostFields {
            title: " Our plan ",
            summary: "Why",
            body: "Text\r\nmore",
            tags: "NHS",
            slug: "our-plan",
            content_warning: " Death of a patient ",
        })
        .expect("valid");
        assert_eq!(
            article.content_warning.as_deref(),
            Some("Death of a patient")
        );
        assert_eq!(article.title.as_deref(), Some("Our plan"));
        assert_eq!(article.body_markdown, "Text\nmore");
        assert_eq!(
            article.slug.map(|s| s.to_string()).as_deref(),
            Some("our-plan")
        );
    }

    #[test]
    fn images_need_alt_text_to_publish() {
        let input = PostInput::parse(&PostFields {
            body: "![](/media/x.png)",
            ..PostFields::default()
        })
        .expect("valid draft");
        assert_eq!(input.publication_problems().len(), 1);
    }
}
