//! Posts as the fediverse sees them: short updates as `Note`s with the full text;
//! articles as `Article`s (title, summary, content and a `preview` Note, so Mastodon shows
//! title, summary and link) or, if the blog prefers, as `Note`s with the full text.

use diesel::prelude::*;
use serde_json::{Value, json};
use url::Url;

use super::keys::{self, url};
use super::protocol::{self, CollectionSummary, Hashtag, Image, PostObject, Tombstone};
use super::{FederationError, PUBLIC};
use crate::config::Settings;
use crate::db::DbConnection;
use crate::db::schema::{reactions, replies};
use crate::domain::blogs::{self, Blog};
use crate::domain::media::{self, Media};
use crate::domain::names::{Handle, Slug, TagName};
use crate::domain::posts::{self, Post};

/// Mastodon shows at most four attachments.
const MAX_ATTACHMENTS: usize = 4;

/// Reply, like and boost counts of a post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Shown replies.
    pub replies: i64,
    /// Likes.
    pub likes: i64,
    /// Boosts.
    pub shares: i64,
}

/// The counts for one post.
pub fn counts(conn: &mut DbConnection, post_id: i64) -> QueryResult<Counts> {
    let replies = replies::table
        .filter(replies::post_id.eq(post_id))
        .filter(super::moderation::shown_replies())
        .count()
        .get_result(conn)?;
    let kinds: Vec<(String, i64)> = reactions::table
        .filter(reactions::post_id.eq(post_id))
        .group_by(reactions::kind)
        .select((reactions::kind, diesel::dsl::count_star()))
        .load(conn)?;
    let of = |kind: &str| kinds.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
    Ok(Counts {
        replies,
        likes: of("like"),
        shares: of("announce"),
    })
}

/// Everything a post's federated form shows.
#[derive(Debug, Clone)]
pub struct PostParts {
    /// Its blog.
    pub blog: Blog,
    /// The post.
    pub post: Post,
    /// Its tags.
    pub tags: Vec<TagName>,
    /// Its images, in order.
    pub images: Vec<Media>,
    /// Its reply, like and boost counts.
    pub counts: Counts,
    /// The accounts its text mentions.
    pub mentions: Vec<super::mentions::Resolved>,
}

/// Loads what [`post_object`] needs.
pub fn load_parts(
    conn: &mut DbConnection,
    blog: Blog,
    post: Post,
) -> Result<PostParts, FederationError> {
    let tags = posts::tags_of(conn, &[post.id])?
        .remove(&post.id)
        .unwrap_or_default();
    let images = media::referenced_in(conn, blog.id, &post.body_markdown)?;
    let counts = counts(conn, post.id)?;
    let mentions = super::mentions::active_of(conn, post.id)?;
    Ok(PostParts {
        blog,
        post,
        tags,
        images,
        counts,
        mentions,
    })
}

/// The page of a published (or once published) post: where people read it, and its
/// `url` on the fediverse.
pub fn post_page(settings: &Settings, blog: &Blog, post: &Post) -> Option<Url> {
    post.path(&blog.handle).map(|p| url(settings, &p))
}

/// The post's ActivityPub id now (see [`post_id_in_life`]).
pub fn post_id(settings: &Settings, blog: &Blog, post: &Post) -> Option<Url> {
    post_id_in_life(settings, blog, post, post.republished)
}

/// The post's ActivityPub id in one of its lives (0 for the first): its page, then
/// `?v=2`, `?v=3`... for each time it was published again after being withdrawn.
/// Mastodon keeps a tombstone for an id it was told is deleted and never creates it
/// again, so a post brought back needs an id it has not seen.
pub fn post_id_in_life(settings: &Settings, blog: &Blog, post: &Post, life: i32) -> Option<Url> {
    let mut id = post_page(settings, blog, post)?;
    if life > 0 {
        id.set_query(Some(&format!("v={}", life + 1)));
    }
    Some(id)
}

/// The life a post id's query names (`v=2` is the second, 1), none if it names none;
/// `Err` for a query that is not one of ours.
pub(super) fn life_in(query: &str) -> Result<Option<i32>, ()> {
    if query.is_empty() {
        return Ok(None);
    }
    match query.strip_prefix("v=").map(str::parse::<i32>) {
        Some(Ok(version)) if version >= 1 => Ok(Some(version - 1)),
        _ => Err(()),
    }
}

/// The post whose URL this is, if it is one of ours.
pub fn local_post(
    conn: &mut DbConnection,
    settings: &Settings,
    id: &str,
) -> QueryResult<Option<(Blog, Post)>> {
    let Ok(parsed) = Url::parse(id) else {
        return Ok(None);
    };
    if !is_local(settings, &parsed) {
        return Ok(None);
    }
    let mut segments = parsed.path_segments().into_iter().flatten();
    let (Some(handle), Some(slug), None) = (segments.next(), segments.next(), segments.next())
    else {
        return Ok(None);
    };
    let (Some(handle), Ok(slug)) = (handle.strip_prefix('@'), Slug::parse(slug)) else {
        return Ok(None);
    };
    let Ok(handle) = Handle::parse(handle) else {
        return Ok(None);
    };
    posts::find_with_blog(conn, handle.as_str(), slug.as_str())
}

/// The blog whose actor id this is, if it is one of ours.
pub fn local_blog(
    conn: &mut DbConnection,
    settings: &Settings,
    id: &str,
) -> QueryResult<Option<Blog>> {
    let Ok(parsed) = Url::parse(id) else {
        return Ok(None);
    };
    if !is_local(settings, &parsed) {
        return Ok(None);
    }
    let mut segments = parsed.path_segments().into_iter().flatten();
    match (segments.next(), segments.next()) {
        (Some(first), None) => match first.strip_prefix('@').map(Handle::parse) {
            Some(Ok(handle)) => blogs::find_by_handle(conn, handle.as_str()),
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

/// Whether a URL is on this server.
pub fn is_local(settings: &Settings, url: &Url) -> bool {
    url.host_str() == settings.base_url.host_str()
        && url.port_or_known_default() == settings.base_url.port_or_known_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A post as a Note or an Article (with the JSON-LD context when served on its own).
pub fn post_object(
    settings: &Settings,
    parts: &PostParts,
    with_context: bool,
) -> Result<PostObject, FederationError> {
    let PostParts {
        blog,
        post,
        tags,
        images,
        counts,
        mentions,
    } = parts;
    let id = post_id(settings, blog, post)
        .ok_or_else(|| FederationError::Invalid("the post has no address yet".into()))?;
    let page = post_page(settings, blog, post)
        .ok_or_else(|| FederationError::Invalid("the post has no address yet".into()))?;
    let actor = keys::blog_id(settings, blog);
    let followers = url(settings, &format!("{}/followers", blog.path()));
    // Each mentioned account is tagged and addressed, as Mastodon does: its server then
    // shows the post as a mention of it.
    let mention_tags: Vec<Value> = mentions
        .iter()
        .map(|m| json!({ "type": "Mention", "href": m.href, "name": format!("@{}", m.acct) }))
        .collect();
    let mut cc = vec![followers.to_string()];
    cc.extend(mentions.iter().map(|m| m.href.clone()));
    let hashtags: Vec<Hashtag> = tags
        .iter()
        .map(|tag| Hashtag {
            kind: "Hashtag",
            href: url(settings, &format!("{}/tags/{}", blog.path(), tag.key())),
            name: format!("#{tag}"),
        })
        .collect();
    // Mastodon shows hashtags only when they are in the text: end with them.
    let tag_line = if hashtags.is_empty() {
        String::new()
    } else {
        let links: Vec<String> = hashtags
            .iter()
            .map(|h| {
                format!(
                    r##"<a href="{}" class="mention hashtag" rel="tag">#<span>{}</span></a>"##,
                    escape(h.href.as_str()),
                    escape(h.name.trim_start_matches('#'))
                )
            })
            .collect();
        format!("<p>{}</p>", links.join(" "))
    };
    let body = post.body_html.for_federation(&page);
    let attachment: Vec<Image> = images
        .iter()
        .take(MAX_ATTACHMENTS)
        .map(|m| Image {
            kind: "Image".into(),
            media_type: m.content_type.clone(),
            url: url(settings, &m.path()),
            name: Some(m.alt_text.clone()),
            width: Some(m.width),
            height: Some(m.height),
        })
        .collect();
    let collection = |suffix: &str, kind: &'static str, total: i64| CollectionSummary {
        id: url(settings, &format!("{}/{suffix}", id.path())),
        kind,
        total_items: total,
        first: None,
    };
    let (kind, name, summary, content, preview) = match (&post.title, blog.articles_as_notes) {
        (None, _) => (
            "Note",
            None,
            post.content_warning.clone(),
            format!("{}{tag_line}", body.as_str()),
            None,
        ),
        (Some(title), true) => {
            let standfirst = post
                .summary
                .as_ref()
                .map(|s| format!("<p><em>{}</em></p>", escape(s)))
                .unwrap_or_default();
            (
                "Note",
                None,
                post.content_warning.clone(),
                format!(
                    "<p><strong>{}</strong></p>{standfirst}{}{tag_line}",
                    escape(title),
                    body.as_str()
                ),
                None,
            )
        }
        (Some(title), false) => {
            let standfirst = post
                .summary
                .as_ref()
                .map(|s| format!("<p>{}</p>", escape(s)))
                .unwrap_or_default();
            let mut preview = json!({
                "type": "Note",
                "attributedTo": actor,
                "content": format!(
                    r#"<p><strong>{}</strong></p>{standfirst}<p><a href="{}">{}</a></p>"#,
                    escape(title),
                    escape(page.as_str()),
                    escape(page.as_str())
                ),
            });
            let summary = article_summary(post.content_warning.as_deref(), post.summary.as_deref());
            if let Some(warning) = &post.content_warning {
                preview["summary"] = json!(warning);
                preview["sensitive"] = json!(true);
            }
            if !mention_tags.is_empty() {
                preview["tag"] = json!(mention_tags);
            }
            (
                "Article",
                Some(title.clone()),
                summary,
                format!("{}{tag_line}", body.as_str()),
                Some(preview),
            )
        }
    };
    Ok(PostObject {
        context: with_context.then(protocol::context),
        id: id.clone(),
        kind,
        attributed_to: actor,
        name,
        summary,
        content,
        media_type: "text/html",
        url: page,
        published: post.published_at.unwrap_or(post.created_at).and_utc(),
        updated: post.edited_at.map(|t| t.and_utc()),
        to: vec![PUBLIC.to_owned()],
        cc,
        in_reply_to: None,
        tag: hashtags
            .into_iter()
            .map(|h| serde_json::to_value(h).unwrap_or(Value::Null))
            .chain(mention_tags)
            .collect(),
        attachment,
        sensitive: post.content_warning.is_some(),
        replies: Some(collection("replies", "Collection", counts.replies)),
        likes: Some(collection("likes", "Collection", counts.likes)),
        shares: Some(collection("shares", "Collection", counts.shares)),
        preview,
    })
}

/// What a deleted or withdrawn object answers.
pub fn tombstone(
    id: Url,
    deleted: Option<chrono::DateTime<chrono::Utc>>,
    with_context: bool,
) -> Tombstone {
    Tombstone {
        context: with_context.then(protocol::context),
        id,
        kind: "Tombstone",
        deleted,
    }
}

/// An article's `summary`. Mastodon shows an article as its title, summary and link, and
/// takes no content warning from it, so a warning leads the summary.
pub fn article_summary(content_warning: Option<&str>, summary: Option<&str>) -> Option<String> {
    match (content_warning, summary) {
        (Some(warning), Some(summary)) => Some(format!("Content warning: {warning} — {summary}")),
        (Some(warning), None) => Some(format!("Content warning: {warning}")),
        (None, summary) => summary.map(str::to_owned),
    }
}
