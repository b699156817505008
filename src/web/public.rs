//! What the public reads: the instance home, each blog, its posts, tags and about page.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, route, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::AppState;
use super::feeds::{self, FeedScope};
use super::http::{Conditional, Fetched, PUBLIC_CACHE, Validators};
use super::ui::{self, Alternate, Page};
use crate::domain::blogs::{self, Blog, BlogSummary};
use crate::domain::html::{excerpt, plain_text};
use crate::domain::media::{self, Media};
use crate::domain::names::{Handle, Slug, TagName};
use crate::domain::posts::{self, Listing, Post, Status};
use crate::error::AppError;
use crate::federation::{self, moderation, objects, pages::Conversation};

/// The content type of every page.
const HTML: &str = "text/html; charset=utf-8";

/// Public routes. Handles and slugs are constrained so that other paths (feeds, team
/// pages) never reach these handlers.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", read().to(home))
        .route("/tags/{tag}", read().to(instance_tag))
        .route("/@{handle}", read().to(blog_home))
        .route("/@{handle}/about", read().to(about))
        .route("/@{handle}/tags/{tag}", read().to(blog_tag))
        .route("/@{handle}/{slug}", read().to(post_page));
}

/// A route for GET and HEAD (actix sends no body for HEAD).
pub fn read() -> actix_web::Route {
    web::route().guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
}

/// `GET /source`: where to get this server's source code (AGPL section 13).
#[route("/source", method = "GET", method = "HEAD")]
pub async fn source(state: web::Data<AppState>) -> HttpResponse {
    let url = state.settings.source_url.as_str();
    let page = Page {
        title: "Source code".into(),
        main: html! {
            h1 { "Source code" }
            p {
                (state.settings.instance_name) " runs rounds " (env!("CARGO_PKG_VERSION"))
                ", free software: you can redistribute it and change it under the terms of the GNU Affero General Public License, version 3 or later."
            }
            p { "Get the source code of the version running here: " a href=(url) { (url) } }
        },
        ..Page::default()
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, PUBLIC_CACHE))
        .body(ui::document(&state.public_chrome(), page).into_string())
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<u32>,
}

impl PageQuery {
    /// The page number; page 0 or an absurd number is not a page.
    fn number(&self) -> Result<u32, AppError> {
        match self.page {
            None => Ok(1),
            Some(n) if (1..=100_000).contains(&n) => Ok(n),
            Some(_) => Err(AppError::NotFound),
        }
    }
}

/// A post with what its list entry or page shows beside it.
#[derive(Debug, Clone)]
pub struct PostView {
    /// The post.
    pub post: Post,
    /// Its blog.
    pub blog: Blog,
    /// Its tags.
    pub tags: Vec<TagName>,
}

impl PostView {
    fn path(&self) -> String {
        self.post
            .path(&self.blog.handle)
            .unwrap_or_else(|| self.blog.path())
    }
}

/// Attaches blogs and tags to a page of posts.
fn with_blogs_and_tags(
    conn: &mut crate::db::DbConnection,
    posts: Vec<Post>,
    known: &[Blog],
) -> Result<Vec<PostView>, AppError> {
    let ids: Vec<i64> = posts.iter().map(|p| p.id).collect();
    let mut tags = posts::tags_of(conn, &ids)?;
    let mut cache: HashMap<i64, Blog> = known.iter().map(|b| (b.id, b.clone())).collect();
    let mut views = Vec::with_capacity(posts.len());
    for post in posts {
        let blog = match cache.get(&post.blog_id) {
            Some(b) => b.clone(),
            None => {
                let b = blogs::find(conn, post.blog_id)?.ok_or(AppError::NotFound)?;
                cache.insert(b.id, b.clone());
                b
            }
        };
        let tags = tags.remove(&post.id).unwrap_or_default();
        views.push(PostView { post, blog, tags });
    }
    Ok(views)
}

fn page_links(
    base: &str,
    page: u32,
    per_page: u32,
    total: i64,
) -> (Option<String>, Option<String>) {
    let previous = match page {
        1 => None,
        2 => Some(base.to_owned()),
        n => Some(format!("{base}?page={}", n - 1)),
    };
    let shown = i64::from(page) * i64::from(per_page);
    let next = (shown < total).then(|| format!("{base}?page={}", page + 1));
    (previous, next)
}

fn listing_title(title: &str, page: u32) -> String {
    if page > 1 {
        format!("{title} (page {page})")
    } else {
        title.to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// Instance home

struct HomeData {
    blogs: Vec<BlogSummary>,
    latest: Vec<PostView>,
    total: i64,
}

async fn home(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let page = query.number()?;
    let per_page = state.settings.page_size;
    let conditional = Conditional::of(&req);
    let shared = state.clone();
    let fetched = state
        .db(move |conn| {
            let last = posts::last_change(conn, None)?;
            let blogs = blogs::list_with_activity(conn)?;
            let newest_profile = blogs.iter().map(|b| b.blog.updated_at).max();
            let validators = Validators::new(
                &[
                    "home",
                    &page.to_string(),
                    &format!("{last:?}{newest_profile:?}{}", blogs.len()),
                ],
                last.max(newest_profile),
            );
            Fetched::check(validators, &conditional, &shared.render_cache, || {
                let (posts, total) = posts::published(conn, &Listing::default(), page, per_page)?;
                if page > 1 && posts.is_empty() {
                    return Err(AppError::NotFound);
                }
                let known: Vec<Blog> = blogs.iter().map(|b| b.blog.clone()).collect();
                let latest = with_blogs_and_tags(conn, posts, &known)?;
                Ok(HomeData {
                    blogs,
                    latest,
                    total,
                })
            })
        })
        .await?;
    fetched.respond(HTML, &state.render_cache, |data| {
        Ok(render_home(&state, &data, page))
    })
}

fn render_home(state: &AppState, data: &HomeData, page: u32) -> String {
    let per_page = state.settings.page_size;
    let (previous, next) = page_links("/", page, per_page, data.total);
    let name = state.settings.instance_name.clone();
    let page_view = Page {
        title: listing_title(&name, page),
        description: Some(format!("Blogs from the leaders of {name}")),
        canonical: Some(state.settings.url("/")),
        main: html! {
            h1 { (name) }
            @if data.blogs.is_empty() {
                p class="nhsuk-body-l" { "There are no blogs here yet." }
            } @else {
                @if page == 1 {
                    h2 { "Our leaders" }
                    ul class="nhsuk-grid-row nhsuk-card-group" {
                        @for summary in &data.blogs {
                            li class="nhsuk-grid-column-one-third nhsuk-card-group__item" {
                                (blog_card(summary))
                            }
                        }
                    }
                }
                h2 { "Latest posts" }
                @if data.latest.is_empty() {
                    p { "Nothing has been published yet." }
                } @else {
                    (post_list(&data.latest, true, EntryLevel::H3))
                }
                (ui::pagination(previous, next))
            }
        },
        ..Page::default()
    };
    ui::document(&state.public_chrome(), page_view).into_string()
}

fn blog_card(summary: &BlogSummary) -> Markup {
    let blog = &summary.blog;
    html! {
        div class="nhsuk-card nhsuk-card--clickable" {
            @if let Some(photo) = &summary.photo {
                img class="nhsuk-card__img" src=(photo.path()) alt="" width=(photo.width) height=(photo.height);
            }
            div class="nhsuk-card__content" {
                h3 class="nhsuk-card__heading nhsuk-heading-m" {
                    a class="nhsuk-card__link" href=(blog.path()) { (blog.display_name) }
                }
                @if let Some(byline) = blog.byline() {
                    // The frontend gives a card's description no bottom margin, as it is
                    // usually last; here the post count follows it.
                    p class="nhsuk-card__description nhsuk-u-margin-bottom-2" { (byline) }
                }
                p class="nhsuk-body-s nhsuk-u-margin-bottom-0" {
                    @match summary.post_count {
                        0 => "No posts yet",
                        1 => "1 post",
                        n => { (n) " posts" },
                    }
                    @if let Some(last) = summary.last_published_at {
                        ", latest " (ui::time_element(last))
                    }
                }
            }
        }
    }
}

/// Where a list's entry headings sit in the page's outline: right under the `h1`, or
/// under an `h2` such as "Latest posts".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryLevel {
    H2,
    H3,
}

/// A list of posts: articles as title, summary and date; short updates in full.
fn post_list(posts: &[PostView], show_blog: bool, level: EntryLevel) -> Markup {
    html! {
        ol class="nhsuk-list rounds-post-list" {
            @for view in posts {
                li class="rounds-post-list__item" {
                    (post_entry(view, show_blog, level))
                }
            }
        }
    }
}

fn entry_heading(level: EntryLevel, class: &str, content: Markup) -> Markup {
    html! {
        @match level {
            EntryLevel::H2 => h2 class=(class) { (content) },
            EntryLevel::H3 => h3 class=(class) { (content) },
        }
    }
}

fn post_entry(view: &PostView, show_blog: bool, level: EntryLevel) -> Markup {
    let post = &view.post;
    let path = view.path();
    html! {
        article class="rounds-entry" {
            @if let Some(title) = &post.title {
                (entry_heading(level, "nhsuk-heading-m rounds-entry__title", html! { a href=(path) { (title) } }))
                @if let Some(warning) = &post.content_warning {
                    p class="nhsuk-body rounds-content-warning" { strong { "Content warning: " } (warning) }
                } @else if let Some(summary) = &post.summary {
                    p class="nhsuk-body" { (summary) }
                } @else {
                    p class="nhsuk-body" { (excerpt(&plain_text(&post.body_markdown), 240)) }
                }
            } @else {
                (entry_heading(level, "nhsuk-u-visually-hidden", html! { "Update: " (post.display_title()) }))
                @if let Some(warning) = &post.content_warning {
                    // In a list the reader did not choose this post: its text waits behind
                    // the warning, as on Mastodon.
                    details class="nhsuk-details rounds-content-warning" {
                        summary class="nhsuk-details__summary" {
                            span class="nhsuk-details__summary-text" { "Content warning: " (warning) }
                        }
                        div class="nhsuk-details__text rounds-entry__body" { (post.body_html) }
                    }
                } @else {
                    div class="rounds-entry__body" { (post.body_html) }
                }
            }
            p class="nhsuk-body-s rounds-entry__meta" {
                @if show_blog {
                    a href=(view.blog.path()) { (view.blog.display_name) } " · "
                }
                @if let Some(published) = post.published_at {
                    a href=(path) { (ui::time_element(published)) }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Blog home

/// A blog, its photo, and the validators of its public pages.
async fn load_blog(state: &AppState, handle: String) -> Result<(Blog, Option<Media>), AppError> {
    let handle = Handle::parse(&handle).map_err(|_| AppError::NotFound)?;
    state
        .db(move |conn| {
            let blog = blogs::find_by_handle(conn, handle.as_str())?.ok_or(AppError::NotFound)?;
            let photo = match blog.photo_media_id {
                Some(id) => media::find(conn, id)?,
                None => None,
            };
            Ok((blog, photo))
        })
        .await
}

fn blog_alternates(state: &AppState, blog: &Blog, tag: Option<&TagName>) -> Vec<Alternate> {
    feeds::alternates(&state.settings, &FeedScope::blog(blog, tag))
}

async fn blog_home(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    if federation::wants_activity_json(&req) {
        return federation::discovery::blog_json(&state, path.into_inner()).await;
    }
    let page = query.number()?;
    let per_page = state.settings.page_size;
    let handle = Handle::parse(&path.into_inner()).map_err(|_| AppError::NotFound)?;
    let conditional = Conditional::of(&req);
    let shared = state.clone();
    let fetched = state
        .db(move |conn| {
            let blog = blogs::find_by_handle(conn, handle.as_str())?.ok_or(AppError::NotFound)?;
            let last = posts::last_change(conn, Some(blog.id))?;
            let validators = Validators::new(
                &[
                    "blog",
                    &blog.id.to_string(),
                    &page.to_string(),
                    &format!("{last:?}{:?}", blog.updated_at),
                ],
                last.max(Some(blog.updated_at)),
            );
            Fetched::check(validators, &conditional, &shared.render_cache, || {
                let photo = match blog.photo_media_id {
                    Some(id) => media::find(conn, id)?,
                    None => None,
                };
                let listing = Listing {
                    blog_id: Some(blog.id),
                    tag: None,
                };
                let (posts, total) = posts::published(conn, &listing, page, per_page)?;
                if page > 1 && posts.is_empty() {
                    return Err(AppError::NotFound);
                }
                let views = with_blogs_and_tags(conn, posts, std::slice::from_ref(&blog))?;
                Ok((blog, photo, views, total))
            })
        })
        .await?;
    fetched.respond(HTML, &state.render_cache, |(blog, photo, views, total)| {
        Ok(render_blog_home(
            &state,
            &blog,
            photo.as_ref(),
            &views,
            total,
            page,
        ))
    })
}

fn render_blog_home(
    state: &AppState,
    blog: &Blog,
    photo: Option<&Media>,
    views: &[PostView],
    total: i64,
    page: u32,
) -> String {
    let per_page = state.settings.page_size;
    let base = blog.path();
    let (previous, next) = page_links(&base, page, per_page, total);
    let page_view = Page {
        title: listing_title(&blog.display_name, page),
        description: Some(blog_description(blog)),
        canonical: Some(state.settings.url(&base)),
        alternates: blog_alternates(state, blog, None),
        head_links: vec![(actor_url(state, blog), "me")],
        main: html! {
            (blog_masthead(state, blog, photo, true))
            h2 { "Posts" }
            @if views.is_empty() {
                p { "Nothing has been published yet." }
            } @else {
                (post_list(views, false, EntryLevel::H3))
            }
            (ui::pagination(previous, next))
            (crate::newsletter::pages::blog_form(blog))
            (feed_links(state, blog, None))
        },
        ..Page::default()
    };
    ui::document(&state.public_chrome(), page_view).into_string()
}

/// The blog's fediverse account as Mastodon knows it (the actor's `url`). Mastodon shows
/// the profile's "Website" field (the about page) as verified only if that page has an
/// `a` or `link` with `rel="me"` whose `href` is exactly this, so it must be absolute.
fn actor_url(state: &AppState, blog: &Blog) -> String {
    federation::keys::blog_id(&state.settings, blog).to_string()
}

fn blog_description(blog: &Blog) -> String {
    let about = excerpt(&plain_text(&blog.bio_markdown), 200);
    match (blog.byline(), about.is_empty()) {
        (Some(byline), true) => format!("{}, {byline}", blog.display_name),
        (Some(byline), false) => format!("{}, {byline}. {about}", blog.display_name),
        (None, false) => about,
        (None, true) => format!("The blog of {}", blog.display_name),
    }
}

/// The blog's name, role and photo at the top of its pages. `h1` on the blog home.
fn blog_masthead(state: &AppState, blog: &Blog, photo: Option<&Media>, is_heading: bool) -> Markup {
    html! {
        div class="rounds-masthead" {
            @if let Some(photo) = photo {
                img class="rounds-masthead__photo" src=(photo.path()) alt=(photo.alt_text) width="96" height="96";
            }
            div class="rounds-masthead__text" {
                @if is_heading {
                    h1 class="nhsuk-u-margin-bottom-2" { (blog.display_name) }
                } @else {
                    p class="nhsuk-heading-l nhsuk-u-margin-bottom-2" { a href=(blog.path()) { (blog.display_name) } }
                }
                @if let Some(byline) = blog.byline() {
                    p class="nhsuk-body-l nhsuk-u-margin-bottom-2" { (byline) }
                }
                p class="nhsuk-body-s" {
                    span class="rounds-handle" { "@" (blog.handle) "@" (state.settings.domain()) }
                    " · " a href={ (blog.path()) "/about" } { "About " (blog.display_name) }
                }
            }
        }
    }
}

fn feed_links(state: &AppState, blog: &Blog, tag: Option<&TagName>) -> Markup {
    let alternates = blog_alternates(state, blog, tag);
    html! {
        aside class="rounds-feeds" aria-labelledby="feeds-heading" {
            h2 class="nhsuk-heading-s" id="feeds-heading" { "Follow in a feed reader" }
            ul class="nhsuk-list nhsuk-list--bullet" {
                @for alternate in &alternates {
                    li { a href=(alternate.href) { (alternate.title) } }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Post page

async fn post_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (handle, slug) = path.into_inner();
    if federation::wants_activity_json(&req) {
        return federation::discovery::post_json(&state, handle, slug, req.query_string()).await;
    }
    let handle = Handle::parse(&handle).map_err(|_| AppError::NotFound)?;
    // Slugs are lower-case words and hyphens: anything else is not a post's address.
    let slug = Slug::parse(&slug).map_err(|_| AppError::NotFound)?;
    let conditional = Conditional::of(&req);
    let shared = state.clone();
    let fetched = state
        .db(move |conn| {
            let blog = blogs::find_by_handle(conn, handle.as_str())?.ok_or(AppError::NotFound)?;
            let post =
                posts::find_by_slug(conn, blog.id, slug.as_str())?.ok_or(AppError::NotFound)?;
            match post.status() {
                Status::Published => {}
                Status::Unpublished | Status::Deleted => return Err(AppError::Gone),
                Status::Draft => return Err(AppError::NotFound),
            }
            // Replies and reactions change the page as much as an edit does.
            let conversation = moderation::conversation_version(conn, post.id)?;
            let validators = Validators::new(
                &[
                    "post",
                    &post.id.to_string(),
                    &format!("{:?}{:?}{conversation}", post.updated_at, blog.updated_at),
                ],
                Some(post.updated_at.max(blog.updated_at)),
            );
            Fetched::check(validators, &conditional, &shared.render_cache, || {
                let tags = posts::tags_of(conn, &[post.id])?
                    .remove(&post.id)
                    .unwrap_or_default();
                let conversation = Conversation {
                    replies: moderation::approved_replies(conn, post.id)?,
                    counts: objects::counts(conn, post.id)?,
                    closed: post.replies_closed,
                };
                Ok::<_, AppError>((PostView { post, blog, tags }, conversation))
            })
        })
        .await?;
    fetched.respond(HTML, &state.render_cache, |(view, conversation)| {
        Ok(ui::document(
            &state.public_chrome(),
            post_page_view(&state, &view, &conversation),
        )
        .into_string())
    })
}

/// A post's public page (the editorial web preview renders it too, without replies).
pub fn post_page_view(state: &AppState, view: &PostView, conversation: &Conversation) -> Page {
    let PostView { post, blog, tags } = view;
    let path = view.path();
    let description = post
        .summary
        .clone()
        .unwrap_or_else(|| excerpt(&plain_text(&post.body_markdown), 200));
    Page {
        title: post.display_title(),
        description: Some(description),
        canonical: Some(state.settings.url(&path)),
        alternates: blog_alternates(state, blog, None),
        breadcrumbs: vec![
            ("Home".into(), "/".into()),
            (blog.display_name.clone(), blog.path()),
        ],
        main: html! {
            article class="rounds-post" {
                header class="rounds-post__header" {
                    @if let Some(title) = &post.title {
                        h1 { (title) }
                        @if let Some(summary) = &post.summary {
                            p class="nhsuk-body-l" { (summary) }
                        }
                        p class="nhsuk-body-s" {
                            "By " a href={ (blog.path()) "/about" } { (blog.display_name) }
                            @if let Some(byline) = blog.byline() { ", " (byline) }
                        }
                    } @else {
                        h1 class="nhsuk-heading-l" {
                            span class="nhsuk-u-visually-hidden" { "Update from " }
                            (blog.display_name)
                        }
                        @if let Some(byline) = blog.byline() {
                            p class="nhsuk-body-s" { (byline) }
                        }
                    }
                }
                @if let Some(warning) = &post.content_warning {
                    div class="nhsuk-warning-callout rounds-content-warning" {
                        h2 class="nhsuk-warning-callout__label" {
                            span role="text" { span class="nhsuk-u-visually-hidden" { "Important: " } "Content warning" }
                        }
                        p { (warning) }
                    }
                }
                div class="rounds-post__body" { (post.body_html) }
                footer class="rounds-post__meta" {
                    p class="nhsuk-body-s" {
                        @if let Some(published) = post.published_at {
                            "Published " (ui::time_element(published))
                        }
                        @if let Some(edited) = post.edited_at {
                            ". Updated " (ui::time_element(edited))
                        }
                    }
                    @if !tags.is_empty() {
                        h2 class="nhsuk-u-visually-hidden" { "Tags" }
                        ul class="rounds-tags" {
                            @for tag in tags {
                                li {
                                    a class="nhsuk-tag nhsuk-tag--white" href={ (blog.path()) "/tags/" (tag.key()) } { "#" (tag) }
                                }
                            }
                        }
                    }
                }
            }
            (federation::pages::conversation(state, blog, conversation))
            (crate::newsletter::pages::blog_form(blog))
            a class="nhsuk-back-link" href=(blog.path()) { "More from " (blog.display_name) }
        },
        ..Page::default()
    }
}

// ---------------------------------------------------------------------------------------
// About page

async fn about(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (blog, photo) = load_blog(&state, path.into_inner()).await?;
    let links = blog.profile_links();
    let account = actor_url(&state, &blog);
    let mut head_links: Vec<(String, &'static str)> =
        links.iter().map(|l| (l.url.clone(), "me")).collect();
    head_links.push((account.clone(), "me"));
    let page_view = Page {
        title: format!("About {}", blog.display_name),
        description: Some(blog_description(&blog)),
        canonical: Some(state.settings.url(&format!("{}/about", blog.path()))),
        alternates: blog_alternates(&state, &blog, None),
        head_links,
        breadcrumbs: vec![
            ("Home".into(), "/".into()),
            (blog.display_name.clone(), blog.path()),
        ],
        main: html! {
            div class="nhsuk-grid-row" {
                div class="nhsuk-grid-column-two-thirds" {
                    h1 { (blog.display_name) }
                    @if let Some(role) = &blog.role_title {
                        p class="nhsuk-body-l nhsuk-u-margin-bottom-2" { (role) }
                    }
                    @if let Some(organisation) = &blog.organisation {
                        p class="nhsuk-body-l" { (organisation) }
                    }
                    @if !blog.bio_html.is_empty() {
                        div class="rounds-post__body" { (blog.bio_html) }
                    }
                    @if !links.is_empty() {
                        h2 class="nhsuk-heading-m" { "Links" }
                        ul class="nhsuk-list" {
                            @for link in &links {
                                li { a href=(link.url) rel="me noopener" { (link.label) } }
                            }
                        }
                    }
                    h2 class="nhsuk-heading-m" { "Follow" }
                    p {
                        "On Mastodon or another fediverse app, search for "
                        a href=(account) rel="me" {
                            strong class="rounds-handle" { "@" (blog.handle) "@" (state.settings.domain()) }
                        }
                        "."
                    }
                    (feed_links(&state, &blog, None))
                }
                @if let Some(photo) = &photo {
                    div class="nhsuk-grid-column-one-third" {
                        img class="rounds-about__photo" src=(photo.path()) alt=(photo.alt_text)
                            width=(photo.width) height=(photo.height);
                    }
                }
            }
        },
        ..Page::default()
    };
    let response = ui::document(&state.public_chrome(), page_view).into_string();
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, PUBLIC_CACHE))
        .body(response))
}

// ---------------------------------------------------------------------------------------
// Tag pages

async fn blog_tag(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let (handle, tag) = path.into_inner();
    let (blog, _) = load_blog(&state, handle).await?;
    tag_page(&state, Some(blog), &tag, query.number()?).await
}

async fn instance_tag(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    tag_page(&state, None, &path.into_inner(), query.number()?).await
}

async fn tag_page(
    state: &AppState,
    blog: Option<Blog>,
    tag: &str,
    page: u32,
) -> Result<HttpResponse, AppError> {
    let tag = TagName::parse(tag).map_err(|_| AppError::NotFound)?;
    let key = tag.key();
    let per_page = state.settings.page_size;
    let blog_for_query = blog.clone();
    let (name, views, total) = state
        .db(move |conn| {
            let blog_id = blog_for_query.as_ref().map(|b| b.id);
            let name = posts::tag_display_name(conn, blog_id, &key)?.ok_or(AppError::NotFound)?;
            let listing = Listing {
                blog_id,
                tag: Some(&key),
            };
            let (posts, total) = posts::published(conn, &listing, page, per_page)?;
            let known: Vec<Blog> = blog_for_query.into_iter().collect();
            let views = with_blogs_and_tags(conn, posts, &known)?;
            Ok((name, views, total))
        })
        .await?;
    if views.is_empty() {
        return Err(AppError::NotFound);
    }
    let tag = TagName::parse(&name).unwrap_or(tag);
    let base = match &blog {
        Some(b) => format!("{}/tags/{}", b.path(), tag.key()),
        None => format!("/tags/{}", tag.key()),
    };
    let (previous, next) = page_links(&base, page, per_page, total);
    let mut breadcrumbs = vec![("Home".to_owned(), "/".to_owned())];
    if let Some(b) = &blog {
        breadcrumbs.push((b.display_name.clone(), b.path()));
    }
    let heading = match &blog {
        Some(b) => format!("Posts tagged #{tag} by {}", b.display_name),
        None => format!("Posts tagged #{tag}"),
    };
    let page_view = Page {
        title: listing_title(&heading, page),
        description: Some(heading.clone()),
        canonical: Some(state.settings.url(&base)),
        alternates: blog
            .as_ref()
            .map(|b| blog_alternates(state, b, Some(&tag)))
            .unwrap_or_default(),
        breadcrumbs,
        main: html! {
            h1 { (heading) }
            (post_list(&views, blog.is_none(), EntryLevel::H2))
            (ui::pagination(previous, next))
            @if let Some(b) = &blog {
                (feed_links(state, b, Some(&tag)))
            }
        },
        ..Page::default()
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, PUBLIC_CACHE))
        .body(ui::document(&state.public_chrome(), page_view).into_string()))
}

#[cfg(test)]
mod tests {
    use super::page_links;

    #[test]
    fn pagination_links() {
        assert_eq!(page_links("/@a", 1, 10, 5), (None, None));
        assert_eq!(
            page_links("/@a", 1, 10, 11),
            (None, Some("/@a?page=2".into()))
        );
        assert_eq!(page_links("/@a", 2, 10, 11), (Some("/@a".into()), None));
        assert_eq!(
            page_links("/@a", 3, 10, 40),
            (Some("/@a?page=2".into()), Some("/@a?page=4".into()))
        );
    }
}
