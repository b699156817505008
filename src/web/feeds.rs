//! RSS 2.0, Atom and JSON Feed for each blog and each of its tags, with conditional GET.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde::Serialize;

use super::AppState;
use super::http::{Conditional, Fetched, Validators};
use super::public::read;
use super::ui::Alternate;
use crate::config::Settings;
use crate::domain::blogs::{self, Blog};
use crate::domain::html::{excerpt, plain_text};
use crate::domain::media;
use crate::domain::names::{Handle, TagName};
use crate::domain::posts::{self, Listing, Post};
use crate::error::AppError;

/// Entries in each feed.
const FEED_LENGTH: u32 = 20;

/// Feed routes: `/@h/feed.{rss,atom,json}` and `/@h/tags/t/feed.{rss,atom,json}`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/@{handle}/feed.{format}", read().to(blog_feed))
        .route("/@{handle}/tags/{tag}/feed.{format}", read().to(tag_feed));
}

/// The three formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RSS 2.0.
    Rss,
    /// Atom 1.0.
    Atom,
    /// JSON Feed 1.1.
    Json,
}

impl Format {
    const ALL: [Self; 3] = [Self::Atom, Self::Rss, Self::Json];

    fn parse(extension: &str) -> Option<Self> {
        match extension {
            "rss" => Some(Self::Rss),
            "atom" => Some(Self::Atom),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Rss => "rss",
            Self::Atom => "atom",
            Self::Json => "json",
        }
    }

    /// The MIME type feed readers expect.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Rss => "application/rss+xml",
            Self::Atom => "application/atom+xml",
            Self::Json => "application/feed+json",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rss => "RSS",
            Self::Atom => "Atom",
            Self::Json => "JSON Feed",
        }
    }
}

/// Which posts a feed holds.
pub struct FeedScope<'a> {
    /// The blog.
    pub blog: &'a Blog,
    /// Only posts with this tag, if set.
    pub tag: Option<&'a TagName>,
}

impl<'a> FeedScope<'a> {
    /// A blog's feed, or a tag's feed within it.
    pub fn blog(blog: &'a Blog, tag: Option<&'a TagName>) -> Self {
        Self { blog, tag }
    }

    /// The web page the feed mirrors.
    fn page_path(&self) -> String {
        match self.tag {
            Some(tag) => format!("{}/tags/{}", self.blog.path(), tag.key()),
            None => self.blog.path(),
        }
    }

    fn feed_path(&self, format: Format) -> String {
        format!("{}/feed.{}", self.page_path(), format.extension())
    }

    fn title(&self) -> String {
        match self.tag {
            Some(tag) => format!("{} – #{tag}", self.blog.display_name),
            None => self.blog.display_name.clone(),
        }
    }
}

/// An absolute URL for a path on this server, percent-encoded: tag names may be in any
/// script, and RSS readers expect URLs, not IRIs.
fn absolute(settings: &Settings, path: &str) -> String {
    settings
        .base_url
        .join(path)
        .map_or_else(|_| settings.url(path), String::from)
}

/// Autodiscovery links for a page: one per format.
pub fn alternates(settings: &Settings, scope: &FeedScope<'_>) -> Vec<Alternate> {
    Format::ALL
        .iter()
        .map(|&format| Alternate {
            mime: format.mime(),
            title: format!("{} ({})", scope.title(), format.name()),
            href: absolute(settings, &scope.feed_path(format)),
        })
        .collect()
}

async fn blog_feed(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (handle, format) = path.into_inner();
    feed(&state, &req, &handle, None, &format).await
}

async fn tag_feed(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AppError> {
    let (handle, tag, format) = path.into_inner();
    feed(&state, &req, &handle, Some(&tag), &format).await
}

struct FeedData {
    blog: Blog,
    photo_path: Option<String>,
    /// The tag as it was last written on a post (the address may use any case).
    tag: Option<TagName>,
    posts: Vec<(Post, Vec<TagName>)>,
}

/// A post as every format shows it.
struct Entry<'a> {
    post: &'a Post,
    tags: &'a [TagName],
    /// Its permalink, which is also its id.
    url: String,
    /// Its HTML with every address absolute, as it must be when read away from the site.
    content: String,
}

impl<'a> Entry<'a> {
    fn new(settings: &Settings, blog: &Blog, post: &'a Post, tags: &'a [TagName]) -> Self {
        let url = absolute(
            settings,
            &post.path(&blog.handle).unwrap_or_else(|| blog.path()),
        );
        // Relative addresses are resolved against the post's own page, where the author
        // wrote them: `other-post` or `#notes` mean what they mean there, not at the root.
        let base = url::Url::parse(&url).unwrap_or_else(|_| settings.base_url.clone());
        let body = post.body_html.with_absolute_urls(&base);
        let content = match &post.content_warning {
            Some(warning) => {
                let notice = maud::html! { p { strong { "Content warning: " (warning) } } };
                format!("{}{}", notice.into_string(), body.as_str())
            }
            None => body.as_str().to_owned(),
        };
        Self {
            post,
            tags,
            url,
            content,
        }
    }
}

async fn feed(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    handle: &str,
    tag: Option<&str>,
    format: &str,
) -> Result<HttpResponse, AppError> {
    let format = Format::parse(format).ok_or(AppError::NotFound)?;
    let handle = Handle::parse(handle).map_err(|_| AppError::NotFound)?;
    let tag_key = tag
        .map(|t| TagName::parse(t).map_err(|_| AppError::NotFound))
        .transpose()?
        .map(|t| t.key());
    let conditional = Conditional::of(req);
    let shared = state.clone();
    let fetched = state
        .db(move |conn| {
            let blog = blogs::find_by_handle(conn, handle.as_str())?.ok_or(AppError::NotFound)?;
            // A tag with no published post on this blog has no feed.
            let tag = match &tag_key {
                Some(key) => {
                    let name = posts::tag_display_name(conn, Some(blog.id), key)?
                        .ok_or(AppError::NotFound)?;
                    Some(TagName::parse(&name).map_err(|_| AppError::NotFound)?)
                }
                None => None,
            };
            let last = posts::last_change(conn, Some(blog.id))?;
            let validators = Validators::new(
                &[
                    "feed",
                    format.extension(),
                    &blog.id.to_string(),
                    tag.as_ref().map_or("", TagName::as_str),
                    &format!("{last:?}{:?}", blog.updated_at),
                ],
                last.max(Some(blog.updated_at)),
            );
            Fetched::check(validators, &conditional, &shared.render_cache, || {
                let listing = Listing {
                    blog_id: Some(blog.id),
                    tag: tag_key.as_deref(),
                };
                let (posts, _) = posts::published(conn, &listing, 1, FEED_LENGTH)?;
                let ids: Vec<i64> = posts.iter().map(|p| p.id).collect();
                let mut tags = posts::tags_of(conn, &ids)?;
                let photo_path = match blog.photo_media_id {
                    Some(id) => media::find(conn, id)?.map(|m| m.path()),
                    None => None,
                };
                let posts = posts
                    .into_iter()
                    .map(|p| {
                        let t = tags.remove(&p.id).unwrap_or_default();
                        (p, t)
                    })
                    .collect();
                Ok::<_, AppError>(FeedData {
                    blog,
                    photo_path,
                    tag,
                    posts,
                })
            })
        })
        .await?;
    let content_type = format!("{}; charset=utf-8", format.mime());
    fetched.respond(&content_type, &state.render_cache, |data| {
        render(&state.settings, format, &data)
    })
}

/// A feed document in the given format.
fn render(settings: &Settings, format: Format, data: &FeedData) -> Result<String, AppError> {
    let scope = FeedScope::blog(&data.blog, data.tag.as_ref());
    let entries: Vec<Entry<'_>> = data
        .posts
        .iter()
        .map(|(post, tags)| Entry::new(settings, &data.blog, post, tags))
        .collect();
    let updated = data
        .posts
        .iter()
        .filter_map(|(p, _)| p.last_edited())
        .max()
        .unwrap_or(data.blog.updated_at);
    Ok(match format {
        Format::Rss => xml_chars_only(rss(settings, &scope, data, &entries, updated)),
        Format::Atom => xml_chars_only(atom(settings, &scope, data, &entries, updated)),
        Format::Json => json_feed(settings, &scope, data, &entries)?,
    })
}

fn fixed(time: NaiveDateTime) -> DateTime<FixedOffset> {
    time.and_utc().fixed_offset()
}

/// The document with every character XML 1.0 forbids replaced by a space. Text pasted
/// from office documents brings control characters (Word's manual line break is a
/// vertical tab); one of them anywhere makes the whole feed unreadable, and neither the
/// `rss` nor the `atom_syndication` writer removes them.
fn xml_chars_only(document: String) -> String {
    fn forbidden(c: char) -> bool {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
    }
    // The common case is a clean document, so the check must be cheap: every forbidden
    // character but two is one ASCII byte, and a fold over fixed-size chunks (no early
    // exit inside a chunk) compiles to vector code, about five times faster than
    // decoding chars. Single-char `contains` finds the other two with memchr.
    let control = |b: &u8| *b < b' ' && !matches!(*b, b'\t' | b'\n' | b'\r');
    let has_control = document
        .as_bytes()
        .chunks(64)
        .any(|chunk| chunk.iter().fold(false, |found, b| found | control(b)));
    if has_control || document.contains('\u{fffe}') || document.contains('\u{ffff}') {
        document
            .chars()
            .map(|c| if forbidden(c) { ' ' } else { c })
            .collect()
    } else {
        document
    }
}

fn description(blog: &Blog) -> String {
    let about = excerpt(&plain_text(&blog.bio_markdown), 300);
    match blog.byline() {
        Some(byline) if about.is_empty() => byline,
        Some(byline) => format!("{byline}. {about}"),
        None if about.is_empty() => format!("Posts by {}", blog.display_name),
        None => about,
    }
}

fn rss(
    settings: &Settings,
    scope: &FeedScope<'_>,
    data: &FeedData,
    entries: &[Entry<'_>],
    updated: NaiveDateTime,
) -> String {
    let items = entries
        .iter()
        .map(|entry| {
            let post = entry.post;
            rss::Item {
                // Short updates have no title, as on micro.blog and Mastodon.
                title: post.title.clone(),
                link: Some(entry.url.clone()),
                description: Some(entry.content.clone()),
                guid: Some(rss::Guid {
                    value: entry.url.clone(),
                    permalink: true,
                }),
                pub_date: post.published_at.map(|t| fixed(t).to_rfc2822()),
                categories: entry
                    .tags
                    .iter()
                    .map(|t| rss::Category {
                        name: t.to_string(),
                        domain: None,
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    let channel = rss::Channel {
        title: scope.title(),
        link: absolute(settings, &scope.page_path()),
        description: description(&data.blog),
        language: Some("en-GB".into()),
        last_build_date: Some(fixed(updated).to_rfc2822()),
        generator: Some(format!("rounds {}", env!("CARGO_PKG_VERSION"))),
        image: data.photo_path.as_ref().map(|p| rss::Image {
            url: absolute(settings, p),
            title: scope.title(),
            link: absolute(settings, &scope.page_path()),
            ..Default::default()
        }),
        atom_ext: Some(rss::extension::atom::AtomExtension {
            links: vec![rss::extension::atom::Link {
                href: absolute(settings, &scope.feed_path(Format::Rss)),
                rel: "self".into(),
                mime_type: Some(Format::Rss.mime().into()),
                ..Default::default()
            }],
        }),
        items,
        ..Default::default()
    };
    channel.to_string()
}

fn atom(
    settings: &Settings,
    scope: &FeedScope<'_>,
    data: &FeedData,
    entries: &[Entry<'_>],
    updated: NaiveDateTime,
) -> String {
    use atom_syndication as atom;
    let author = atom::Person {
        name: data.blog.display_name.clone(),
        uri: Some(absolute(settings, &data.blog.path())),
        ..Default::default()
    };
    let tag_scheme = absolute(settings, &format!("{}/tags/", data.blog.path()));
    let entries = entries
        .iter()
        .map(|entry| {
            let post = entry.post;
            atom::Entry {
                title: atom::Text::plain(post.display_title()),
                id: entry.url.clone(),
                updated: fixed(post.last_edited().unwrap_or(post.updated_at)),
                published: post.published_at.map(fixed),
                authors: vec![author.clone()],
                links: vec![atom::Link {
                    href: entry.url.clone(),
                    rel: "alternate".into(),
                    mime_type: Some("text/html".into()),
                    ..Default::default()
                }],
                summary: post.summary.clone().map(atom::Text::plain),
                content: Some(atom::Content {
                    value: Some(entry.content.clone()),
                    content_type: Some("html".into()),
                    ..Default::default()
                }),
                categories: entry
                    .tags
                    .iter()
                    .map(|t| atom::Category {
                        term: t.to_string(),
                        scheme: Some(tag_scheme.clone()),
                        label: Some(t.to_string()),
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    let feed = atom::Feed {
        title: atom::Text::plain(scope.title()),
        id: absolute(settings, &scope.page_path()),
        updated: fixed(updated),
        authors: vec![author],
        subtitle: Some(atom::Text::plain(description(&data.blog))),
        icon: data.photo_path.as_ref().map(|p| absolute(settings, p)),
        generator: Some(atom::Generator {
            value: "rounds".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
            ..Default::default()
        }),
        links: vec![
            atom::Link {
                href: absolute(settings, &scope.feed_path(Format::Atom)),
                rel: "self".into(),
                mime_type: Some(Format::Atom.mime().into()),
                ..Default::default()
            },
            atom::Link {
                href: absolute(settings, &scope.page_path()),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            },
        ],
        lang: Some("en-GB".into()),
        entries,
        ..Default::default()
    };
    feed.to_string()
}

#[derive(Serialize)]
struct JsonFeed {
    version: &'static str,
    title: String,
    home_page_url: String,
    feed_url: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<String>,
    language: &'static str,
    authors: Vec<JsonAuthor>,
    items: Vec<JsonItem>,
}

#[derive(Serialize)]
struct JsonAuthor {
    name: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar: Option<String>,
}

#[derive(Serialize)]
struct JsonItem {
    id: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    content_html: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_published: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_modified: Option<String>,
    tags: Vec<String>,
}

fn json_feed(
    settings: &Settings,
    scope: &FeedScope<'_>,
    data: &FeedData,
    entries: &[Entry<'_>],
) -> Result<String, AppError> {
    let rfc3339 = |t: NaiveDateTime| fixed(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: scope.title(),
        home_page_url: absolute(settings, &scope.page_path()),
        feed_url: absolute(settings, &scope.feed_path(Format::Json)),
        description: description(&data.blog),
        icon: data.photo_path.as_ref().map(|p| absolute(settings, p)),
        language: "en-GB",
        authors: vec![JsonAuthor {
            name: data.blog.display_name.clone(),
            url: absolute(settings, &data.blog.path()),
            avatar: data.photo_path.as_ref().map(|p| absolute(settings, p)),
        }],
        items: entries
            .iter()
            .map(|entry| {
                let post = entry.post;
                JsonItem {
                    id: entry.url.clone(),
                    url: entry.url.clone(),
                    title: post.title.clone(),
                    summary: post.summary.clone(),
                    content_html: entry.content.clone(),
                    date_published: post.published_at.map(rfc3339),
                    date_modified: post.edited_at.map(rfc3339),
                    tags: entry.tags.iter().map(ToString::to_string).collect(),
                }
            })
            .collect(),
    };
    serde_json::to_string(&feed).map_err(|e| AppError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::xml_chars_only;

    #[test]
    fn characters_xml_forbids_become_spaces() {
        let clean = "<title>Ward 7 &amp; 8\tcafé 🏥\r\n</title>".to_owned();
        assert_eq!(xml_chars_only(clean.clone()), clean);
        assert_eq!(
            xml_chars_only("a\u{0}b\u{b}c\u{1f}d\u{fffe}e\u{ffff}f".to_owned()),
            "a b c d e f"
        );
        let long = format!("{}\u{b}", "x".repeat(130));
        assert_eq!(xml_chars_only(long), format!("{} ", "x".repeat(130)));
    }
}
