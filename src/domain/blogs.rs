//! Blogs: one per leader, with a handle, a profile and a team.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::html::SafeHtml;
use super::names::Handle;
use crate::db::schema::{blog_members, blogs, media, posts};
use crate::db::{DbConnection, is_unique_violation, write_tx};

/// A blog.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = blogs)]
pub struct Blog {
    /// Row id.
    pub id: i64,
    /// The handle, `ceo` in `/@ceo`.
    pub handle: String,
    /// The leader's name as shown.
    pub display_name: String,
    /// Their role, e.g. "Chief Executive".
    pub role_title: Option<String>,
    /// Their organisation, e.g. "Leeds Teaching Hospitals NHS Trust".
    pub organisation: Option<String>,
    /// The about text as written.
    pub bio_markdown: String,
    /// The about text, rendered.
    pub bio_html: SafeHtml,
    /// The profile photo, if any.
    pub photo_media_id: Option<i64>,
    /// JSON list of [`ProfileLink`].
    pub links: String,
    /// When the blog was made.
    pub created_at: NaiveDateTime,
    /// When the profile last changed.
    pub updated_at: NaiveDateTime,
    /// Whether follow requests wait for the team's approval.
    pub manually_approves_followers: bool,
    /// Send articles to the fediverse as Notes (full text shown) instead of Articles.
    pub articles_as_notes: bool,
    /// Which replies appear without moderation: `held`, `followers` or `open`.
    pub reply_policy: String,
    /// The profile's header image.
    pub header_media_id: Option<i64>,
    /// Whether fediverse servers may list the blog in directories and search.
    pub discoverable: bool,
}

/// A link on the about page ("Trust website", "LinkedIn").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileLink {
    /// The words shown.
    pub label: String,
    /// An http(s) address.
    pub url: String,
}

impl Blog {
    /// The profile links, in order.
    pub fn profile_links(&self) -> Vec<ProfileLink> {
        serde_json::from_str(&self.links).unwrap_or_default()
    }

    /// Role and organisation in one line, e.g. "Chief Executive, Example NHS Trust".
    pub fn byline(&self) -> Option<String> {
        match (self.role_title.as_deref(), self.organisation.as_deref()) {
            (Some(r), Some(o)) => Some(format!("{r}, {o}")),
            (Some(x), None) | (None, Some(x)) => Some(x.to_owned()),
            (None, None) => None,
        }
    }

    /// The path of the blog's home page.
    pub fn path(&self) -> String {
        format!("/@{}", self.handle)
    }
}

/// What a person may do on a blog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Writes and edits their own drafts.
    Contributor,
    /// Writes, edits and publishes any post; edits the profile.
    Editor,
    /// The leader whose blog it is.
    Owner,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Editor => "editor",
            Self::Contributor => "contributor",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "owner" => Some(Self::Owner),
            "editor" => Some(Self::Editor),
            "contributor" => Some(Self::Contributor),
            _ => None,
        }
    }

    /// Whether this role may publish, unpublish and delete posts and edit the profile.
    pub fn can_publish(self) -> bool {
        self >= Self::Editor
    }
}

/// What a new blog needs.
pub struct NewBlogInput<'a> {
    /// Its handle.
    pub handle: &'a Handle,
    /// The leader's name.
    pub display_name: &'a str,
    /// Their role.
    pub role_title: Option<&'a str>,
    /// Their organisation.
    pub organisation: Option<&'a str>,
    /// The owning account.
    pub owner_id: i64,
}

#[derive(Insertable)]
#[diesel(table_name = blogs)]
struct NewBlog<'a> {
    handle: &'a str,
    display_name: &'a str,
    role_title: Option<&'a str>,
    organisation: Option<&'a str>,
    bio_markdown: &'a str,
    bio_html: SafeHtml,
    links: &'a str,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// Why a blog could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateBlogError {
    /// Another blog has the handle.
    #[error("a blog with the handle @{0} already exists")]
    Taken(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Makes a blog and its owner's membership in one transaction.
pub fn create(conn: &mut DbConnection, input: &NewBlogInput<'_>) -> Result<Blog, CreateBlogError> {
    write_tx(conn, |conn| {
        let now = super::now();
        diesel::insert_into(blogs::table)
            .values(&NewBlog {
                handle: input.handle.as_str(),
                display_name: input.display_name,
                role_title: input.role_title,
                organisation: input.organisation,
                bio_markdown: "",
                bio_html: SafeHtml::default(),
                links: "[]",
                created_at: now,
                updated_at: now,
            })
            .execute(conn)
            .map_err(|e| {
                if is_unique_violation(&e) {
                    CreateBlogError::Taken(input.handle.to_string())
                } else {
                    CreateBlogError::Database(e)
                }
            })?;
        let blog =
            find_by_handle(conn, input.handle.as_str())?.ok_or(diesel::result::Error::NotFound)?;
        diesel::insert_into(blog_members::table)
            .values((
                blog_members::blog_id.eq(blog.id),
                blog_members::user_id.eq(input.owner_id),
                blog_members::role.eq(Role::Owner.as_str()),
                blog_members::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(blog)
    })
}

/// The blog with this handle.
pub fn find_by_handle(conn: &mut DbConnection, handle: &str) -> QueryResult<Option<Blog>> {
    blogs::table
        .filter(blogs::handle.eq(handle.to_ascii_lowercase()))
        .select(Blog::as_select())
        .first(conn)
        .optional()
}

/// The blog with this id.
pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Blog>> {
    blogs::table
        .find(id)
        .select(Blog::as_select())
        .first(conn)
        .optional()
}

/// A blog with what the instance home shows of it.
#[derive(Debug, Clone)]
pub struct BlogSummary {
    /// The blog.
    pub blog: Blog,
    /// Its profile photo file, if any.
    pub photo: Option<super::media::Media>,
    /// Published posts.
    pub post_count: i64,
    /// When it last published.
    pub last_published_at: Option<NaiveDateTime>,
}

/// Every blog, the most recently active first.
pub fn list_with_activity(conn: &mut DbConnection) -> QueryResult<Vec<BlogSummary>> {
    let rows: Vec<(Blog, Option<super::media::Media>)> = blogs::table
        .left_join(media::table.on(blogs::photo_media_id.eq(media::id.nullable())))
        .select((
            Blog::as_select(),
            Option::<super::media::Media>::as_select(),
        ))
        .load(conn)?;
    let stats: Vec<(i64, i64, Option<NaiveDateTime>)> = posts::table
        .filter(posts::status.eq(super::posts::Status::Published.as_str()))
        .group_by(posts::blog_id)
        .select((
            posts::blog_id,
            diesel::dsl::count_star(),
            diesel::dsl::max(posts::published_at),
        ))
        .load(conn)?;
    let mut summaries: Vec<BlogSummary> = rows
        .into_iter()
        .map(|(blog, photo)| {
            let (count, last) = stats
                .iter()
                .find(|(id, _, _)| *id == blog.id)
                .map_or((0, None), |(_, c, l)| (*c, *l));
            BlogSummary {
                blog,
                photo,
                post_count: count,
                last_published_at: last,
            }
        })
        .collect();
    summaries.sort_by(|a, b| {
        b.last_published_at
            .cmp(&a.last_published_at)
            .then_with(|| a.blog.display_name.cmp(&b.blog.display_name))
    });
    Ok(summaries)
}

/// The role this user holds on this blog, if any.
pub fn role_of(conn: &mut DbConnection, blog_id: i64, user_id: i64) -> QueryResult<Option<Role>> {
    let role: Option<String> = blog_members::table
        .find((blog_id, user_id))
        .select(blog_members::role)
        .first(conn)
        .optional()?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// The owner's account id.
pub fn owner_of(conn: &mut DbConnection, blog_id: i64) -> QueryResult<Option<i64>> {
    blog_members::table
        .filter(blog_members::blog_id.eq(blog_id))
        .filter(blog_members::role.eq(Role::Owner.as_str()))
        .select(blog_members::user_id)
        .first(conn)
        .optional()
}

/// The blogs this user is a member of, with their role on each, by name.
pub fn memberships(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<(Blog, Role)>> {
    let rows: Vec<(Blog, String)> = blog_members::table
        .inner_join(blogs::table)
        .filter(blog_members::user_id.eq(user_id))
        .order(blogs::display_name.asc())
        .select((Blog::as_select(), blog_members::role))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(blog, role)| Role::parse(&role).map(|r| (blog, r)))
        .collect())
}

/// Every blog by name (for an admin, who may act on all of them).
pub fn all_by_name(conn: &mut DbConnection) -> QueryResult<Vec<Blog>> {
    blogs::table
        .order(blogs::display_name.asc())
        .select(Blog::as_select())
        .load(conn)
}

/// The editable parts of a blog's profile.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = blogs, treat_none_as_null = true)]
pub struct ProfileChanges {
    /// The leader's name.
    pub display_name: String,
    /// Their role.
    pub role_title: Option<String>,
    /// Their organisation.
    pub organisation: Option<String>,
    /// About text as written.
    pub bio_markdown: String,
    /// About text rendered.
    pub bio_html: SafeHtml,
    /// JSON list of [`ProfileLink`].
    pub links: String,
    /// Now.
    pub updated_at: NaiveDateTime,
}

/// Saves profile changes.
pub fn update_profile(
    conn: &mut DbConnection,
    blog_id: i64,
    changes: &ProfileChanges,
) -> QueryResult<()> {
    diesel::update(blogs::table.find(blog_id))
        .set(changes)
        .execute(conn)?;
    Ok(())
}

/// Sets or clears the header image.
pub fn set_header(conn: &mut DbConnection, blog_id: i64, media_id: Option<i64>) -> QueryResult<()> {
    diesel::update(blogs::table.find(blog_id))
        .set((
            blogs::header_media_id.eq(media_id),
            blogs::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Sets or clears the profile photo.
pub fn set_photo(conn: &mut DbConnection, blog_id: i64, media_id: Option<i64>) -> QueryResult<()> {
    diesel::update(blogs::table.find(blog_id))
        .set((
            blogs::photo_media_id.eq(media_id),
            blogs::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}
