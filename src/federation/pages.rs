//! The fediverse on our pages: the conversation under a post (for readers), and the
//! team's pages: followers, reply moderation, the blog's fediverse settings, and the
//! admin's domain and account blocks, dead deliveries and reports.

use actix_multipart::form::MultipartForm;
use actix_multipart::form::tempfile::TempFile;
use actix_multipart::form::text::Text;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use diesel::prelude::*;
use maud::{Markup, html};
use serde::Deserialize;

use super::actors::ActorRow;
use super::delivery::{DELIVER_JOB, Delivery};
use super::moderation::{
    self, BlockSeverity, BlogBlockKind, FollowStatus, Reply, ReplyPolicy, ReplyStatus, ReplyView,
};
use super::objects::Counts;
use super::outbox;
use crate::db::schema::{blogs as blogs_table, posts as posts_table};
use crate::db::write_tx;
use crate::domain::blogs::Blog;
use crate::domain::posts::{Post, Status};
use crate::domain::users::User;
use crate::editorial::Actor;
use crate::editorial::audit::{self, actions};
use crate::editorial::pages::load_blog;
use crate::error::{AppError, FieldError};
use crate::jobs;
use crate::web::AppState;
use crate::web::auth::{SignedIn, html_page, html_page_invalid};
use crate::web::ui::{self, Field, Page};

// ---------------------------------------------------------------------------------------
// The conversation under a post

/// What the public post page shows of the fediverse.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// Approved replies, oldest first.
    pub replies: Vec<ReplyView>,
    /// Reply, like and boost counts.
    pub counts: Counts,
    /// Whether new replies are turned away.
    pub closed: bool,
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Replies as threads (each under the reply it answers), counts, and how to reply.
pub fn conversation(state: &AppState, blog: &Blog, conversation: &Conversation) -> Markup {
    let counts = conversation.counts;
    let handle = format!("@{}@{}", blog.handle, state.settings.domain());
    let ids: Vec<i64> = conversation.replies.iter().map(|r| r.reply.id).collect();
    // Top level: answers to the post, and answers to replies not shown.
    let top: Vec<&ReplyView> = conversation
        .replies
        .iter()
        .filter(|r| r.reply.parent_id.is_none_or(|p| !ids.contains(&p)))
        .collect();
    html! {
        section class="rounds-conversation" aria-labelledby="conversation-heading" {
            h2 class="nhsuk-heading-m" id="conversation-heading" { "Replies" }
            p class="nhsuk-body-s" {
                (plural(counts.replies, "reply", "replies")) " · "
                (plural(counts.likes, "like", "likes")) " · "
                (plural(counts.shares, "boost", "boosts"))
            }
            @if top.is_empty() {
                p { "No replies shown yet." }
            } @else {
                ol class="nhsuk-list rounds-replies" {
                    @for reply in &top {
                        (reply_item(blog, reply, &conversation.replies, 0))
                    }
                }
            }
            @if conversation.closed {
                p class="nhsuk-body-s" { "Replies to this post are closed." }
            } @else {
                p class="nhsuk-body-s" {
                    "To reply, follow " strong class="rounds-handle" { (handle) }
                    " from Mastodon or another fediverse app and answer this post there. Replies are read before they appear."
                }
            }
        }
    }
}

fn reply_item(blog: &Blog, view: &ReplyView, all: &[ReplyView], depth: usize) -> Markup {
    let reply = &view.reply;
    let children: Vec<&ReplyView> = all
        .iter()
        .filter(|r| r.reply.parent_id == Some(reply.id))
        .collect();
    html! {
        li class="rounds-reply" id={ "reply-" (reply.id) } {
            article {
                p class="nhsuk-body-s rounds-reply__author" {
                    @match &view.author {
                        Some(author) => {
                            strong { (author.name()) } " "
                            span class="rounds-handle" { (author.handle()) }
                        }
                        None => {
                            strong { (blog.display_name) } " "
                            span class="nhsuk-tag nhsuk-tag--blue" { "Author" }
                        }
                    }
                    " · " (ui::time_element(reply.published_at))
                }
                @if let Some(warning) = &reply.summary {
                    details class="nhsuk-details" {
                        summary class="nhsuk-details__summary" {
                            span class="nhsuk-details__summary-text" { "Content warning: " (warning) }
                        }
                        div class="nhsuk-details__text rounds-reply__body" { (reply.content_html) }
                    }
                } @else {
                    div class="rounds-reply__body" { (reply.content_html) }
                }
                @if let Some(author) = &view.author {
                    @if let Some(original) = original_link(reply, author) {
                        p class="nhsuk-body-s" {
                            a href=(original) rel="nofollow noopener noreferrer" {
                                "See it on " (author.domain)
                                span class="nhsuk-u-visually-hidden" { ": reply from " (author.name()) }
                            }
                        }
                    }
                }
            }
            // Deeper threads are shown flat, so replies stay readable on a phone.
            @if !children.is_empty() {
                ol class={ "nhsuk-list rounds-replies" @if depth < 3 { " rounds-replies--nested" } } {
                    @for child in children {
                        (reply_item(blog, child, all, depth + 1))
                    }
                }
            }
        }
    }
}

/// Where a link to a reply on its own server may go: its `url` if that is an http(s)
/// page on its author's server, else its id if that is http(s), else nowhere. Both come
/// from the other server; a link to a third site (a look-alike login page, say) or to
/// `javascript:` would be theirs to choose, under our "See it on …" and their domain.
fn original_link(reply: &Reply, author: &ActorRow) -> Option<String> {
    link_to_original(reply.url.as_deref(), &reply.ap_id, &author.domain)
}

/// [`original_link`] from the reply's `url` and id and its author's server.
fn link_to_original(url: Option<&str>, id: &str, server: &str) -> Option<String> {
    url.and_then(|page| super::web_page_on(page, server))
        .or_else(|| {
            url::Url::parse(id)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
        })
        .map(String::from)
}

// ---------------------------------------------------------------------------------------
// Team pages

/// Routes under `/dashboard`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/@{handle}/fediverse", web::get().to(settings_page))
        .route("/@{handle}/fediverse", web::post().to(save_settings))
        .route("/@{handle}/followers", web::get().to(followers_page))
        .route(
            "/@{handle}/followers/{actor}/{action}",
            web::post().to(follower_action),
        )
        .route("/@{handle}/replies", web::get().to(replies_page))
        .route("/@{handle}/replies/{id}/answer", web::post().to(answer))
        .route(
            "/@{handle}/replies/{id}/{action}",
            web::post().to(reply_action),
        )
        .route(
            "/@{handle}/posts/{id}/replies",
            web::post().to(post_replies),
        )
        .route("/@{handle}/posts/{id}/pin", web::post().to(pin_post))
        .route("/admin/fediverse", web::get().to(admin_page))
        .route("/admin/fediverse/domains", web::post().to(add_domain_block))
        .route(
            "/admin/fediverse/domains/import",
            web::post().to(import_domain_blocks),
        )
        .route(
            "/admin/fediverse/domains/remove",
            web::post().to(remove_domain_block),
        )
        .route(
            "/admin/fediverse/accounts",
            web::post().to(add_account_block),
        )
        .route(
            "/admin/fediverse/accounts/remove",
            web::post().to(remove_account_block),
        )
        .route(
            "/admin/fediverse/deliveries/{id}/retry",
            web::post().to(retry_delivery),
        )
        .route(
            "/admin/fediverse/reports/{id}/resolve",
            web::post().to(resolve_report),
        );
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Records a moderation decision in the audit log, inside the transaction that makes it.
fn record_decision(
    conn: &mut crate::db::DbConnection,
    user: &User,
    action: &str,
    blog_id: Option<i64>,
    decision: &str,
    subject: impl Into<String>,
) -> Result<(), AppError> {
    let mut event = audit::Event::new(&Actor::web(user), action)
        .subject(subject)
        .detail("decision", decision);
    if let Some(id) = blog_id {
        event = event.blog(id);
    }
    audit::record(conn, &event)?;
    Ok(())
}

/// The blog, for an owner or editor (moderation is theirs).
async fn moderated_blog(state: &AppState, me: &SignedIn, handle: String) -> Result<Blog, AppError> {
    let (blog, standing) = load_blog(state, &me.user, handle).await?;
    if !standing.is_editor() {
        return Err(AppError::Forbidden);
    }
    Ok(blog)
}

fn crumbs(blog: &Blog) -> Vec<(String, String)> {
    vec![
        ("Dashboard".into(), "/dashboard".into()),
        (
            blog.display_name.clone(),
            format!("/dashboard/@{}", blog.handle),
        ),
    ]
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "saved" => Some("Settings saved"),
        "accepted" => Some("Follower accepted"),
        "rejected" => Some("Follow request turned down"),
        "removed" => Some("Follower removed"),
        "approved" => Some("Reply approved: it now shows under the post"),
        "reply-rejected" => Some("Reply rejected"),
        "hidden" => Some("Reply hidden"),
        "blocked-account" => Some("Account blocked: its replies to this blog are dropped"),
        "blocked-domain" => Some("Server blocked: replies from it to this blog are dropped"),
        "answered" => Some("Your answer is published and on its way"),
        "withdrawn" => Some(
            "Your answer is withdrawn: it is gone from the post, and other servers are told to remove it",
        ),
        "closed" => Some("Replies closed for that post"),
        "opened" => Some("Replies opened for that post"),
        "pinned" => Some("Post pinned to the profile"),
        "unpinned" => Some("Post unpinned"),
        _ => None,
    }
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
    show: Option<String>,
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: String,
}

// --- Settings ---------------------------------------------------------------------------

async fn settings_page(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let blog = moderated_blog(&state, &me, path.into_inner()).await?;
    let blog_id = blog.id;
    let (followers, pending, held, posts) = state
        .db(move |conn| {
            let posts: Vec<Post> = posts_table::table
                .filter(posts_table::blog_id.eq(blog_id))
                .filter(posts_table::status.eq(Status::Published.as_str()))
                .order(posts_table::published_at.desc())
                .limit(20)
                .select(Post::as_select())
                .load(conn)?;
            Ok((
                moderation::follower_count(conn, blog_id)?,
                moderation::followers_of(conn, blog_id, FollowStatus::Pending)?.len(),
                moderation::held_count(conn, blog_id)?,
                posts,
            ))
        })
        .await?;
    let page = settings_view(
        &state,
        &me,
        &blog,
        followers,
        pending,
        held,
        &posts,
        notice(query.done.as_deref()),
    );
    Ok(html_page(&me.chrome(&state), page))
}

#[allow(clippy::too_many_arguments)]
fn settings_view(
    state: &AppState,
    me: &SignedIn,
    blog: &Blog,
    followers: i64,
    pending: usize,
    held: i64,
    posts: &[Post],
    notice: Option<&str>,
) -> Page {
    let policy = ReplyPolicy::parse(&blog.reply_policy).unwrap_or(ReplyPolicy::Held);
    let radio = |name: &str, value: &str, label: &str, hint: &str, checked: bool| {
        let id = format!("{name}-{value}");
        html! {
            div class="nhsuk-radios__item" {
                input class="nhsuk-radios__input" id=(id) name=(name) type="radio" value=(value) checked[checked] aria-describedby={ (id) "-hint" };
                label class="nhsuk-label nhsuk-radios__label" for=(id) { (label) }
                div class="nhsuk-hint nhsuk-radios__hint" id={ (id) "-hint" } { (hint) }
            }
        }
    };
    let checkbox = |name: &str, label: &str, hint: &str, checked: bool| {
        html! {
            div class="nhsuk-checkboxes__item" {
                input class="nhsuk-checkboxes__input" id=(name) name=(name) type="checkbox" value="yes" checked[checked] aria-describedby={ (name) "-hint" };
                label class="nhsuk-label nhsuk-checkboxes__label" for=(name) { (label) }
                div class="nhsuk-hint nhsuk-checkboxes__hint" id={ (name) "-hint" } { (hint) }
            }
        }
    };
    let base = format!("/dashboard/@{}", blog.handle);
    Page {
        title: format!("Fediverse – {}", blog.display_name),
        noindex: true,
        breadcrumbs: crumbs(blog),
        main: html! {
            @if let Some(message) = notice {
                (ui::success_banner(message))
            }
            h1 { "Fediverse" span class="nhsuk-caption-l nhsuk-caption--bottom" { "@" (blog.handle) "@" (state.settings.domain()) } }
            ul class="nhsuk-list" {
                li { a href={ (base) "/followers" } { (plural(followers, "follower", "followers")) } @if pending > 0 { ", " (pending) " waiting for approval" } }
                li { a href={ (base) "/replies" } { (plural(held, "reply", "replies")) " waiting for moderation" } }
            }
            form method="post" action={ (base) "/fediverse" } novalidate {
                (ui::csrf_field(&me.csrf_token))
                div class="nhsuk-form-group" {
                    fieldset class="nhsuk-fieldset" {
                        legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--m" { h2 class="nhsuk-fieldset__heading" { "Replies" } }
                        div class="nhsuk-radios" data-module="nhsuk-radios" {
                            (radio("replies", "held", "Hold every reply for moderation", "Nothing appears under a post until someone on the team approves it.", policy == ReplyPolicy::Held))
                            (radio("replies", "followers", "Show followers' replies at once", "Replies from accounts that follow the blog appear straight away; others wait for moderation.", policy == ReplyPolicy::Followers))
                            (radio("replies", "open", "Show every reply at once", "Replies appear straight away; the team can still hide them.", policy == ReplyPolicy::Open))
                        }
                    }
                }
                div class="nhsuk-form-group" {
                    fieldset class="nhsuk-fieldset" {
                        legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--m" { h2 class="nhsuk-fieldset__heading" { "Followers and posts" } }
                        div class="nhsuk-checkboxes" data-module="nhsuk-checkboxes" {
                            (checkbox("approve_followers", "Approve followers by hand", "New followers wait on the followers page until accepted.", blog.manually_approves_followers))
                            (checkbox("articles_as_notes", "Send articles in full", "Mastodon then shows an article's whole text instead of its title, summary and a link.", blog.articles_as_notes))
                            (checkbox("discoverable", "List the blog in fediverse directories and search", "Servers may suggest the blog and index its posts.", blog.discoverable))
                        }
                    }
                }
                button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Save settings" }
            }
            @if !posts.is_empty() {
                h2 class="nhsuk-heading-m" { "Recent posts" }
                p { "Close replies on a post, or pin up to five posts to the top of the blog's fediverse profile." }
                table class="nhsuk-table" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Recent posts, whether they take replies, and whether they are pinned" }
                    thead class="nhsuk-table__head" {
                        tr class="nhsuk-table__row" {
                            th class="nhsuk-table__header" scope="col" { "Post" }
                            th class="nhsuk-table__header" scope="col" { "Replies" }
                            th class="nhsuk-table__header" scope="col" { "Profile" }
                        }
                    }
                    tbody class="nhsuk-table__body" {
                        @for post in posts {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (post.display_title()) }
                                td class="nhsuk-table__cell" {
                                    form method="post" action={ (base) "/posts/" (post.id) "/replies" } {
                                        (ui::csrf_field(&me.csrf_token))
                                        @if post.replies_closed {
                                            input type="hidden" name="open" value="yes";
                                            "Closed. "
                                            button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                                                "Open replies" span class="nhsuk-u-visually-hidden" { " to " (post.display_title()) }
                                            }
                                        } @else {
                                            input type="hidden" name="open" value="no";
                                            "Open. "
                                            button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                                                "Close replies" span class="nhsuk-u-visually-hidden" { " to " (post.display_title()) }
                                            }
                                        }
                                    }
                                }
                                td class="nhsuk-table__cell" {
                                    form method="post" action={ (base) "/posts/" (post.id) "/pin" } {
                                        (ui::csrf_field(&me.csrf_token))
                                        @if post.pinned_at.is_some() {
                                            input type="hidden" name="pin" value="no";
                                            "Pinned. "
                                            button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                                                "Unpin" span class="nhsuk-u-visually-hidden" { " " (post.display_title()) }
                                            }
                                        } @else {
                                            input type="hidden" name="pin" value="yes";
                                            button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                                                "Pin" span class="nhsuk-u-visually-hidden" { " " (post.display_title()) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
        ..Page::default()
    }
}

#[derive(Deserialize)]
struct SettingsForm {
    csrf_token: String,
    replies: Option<String>,
    approve_followers: Option<String>,
    articles_as_notes: Option<String>,
    discoverable: Option<String>,
}

async fn save_settings(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let blog = moderated_blog(&state, &me, path.into_inner()).await?;
    let policy = ReplyPolicy::parse(form.replies.as_deref().unwrap_or(""))
        .ok_or_else(|| AppError::invalid("replies", "Choose how replies are shown"))?;
    let yes = |v: &Option<String>| v.as_deref() == Some("yes");
    let (approve, notes, discoverable) = (
        yes(&form.approve_followers),
        yes(&form.articles_as_notes),
        yes(&form.discoverable),
    );
    let blog_id = blog.id;
    let actor = Actor::web(&me.user);
    let settings = state.settings.clone();
    state
        .db(move |conn| {
            let options = BlogOptions {
                policy: Some(policy),
                approve_followers: Some(approve),
                articles_as_notes: Some(notes),
                discoverable: Some(discoverable),
            };
            set_blog_options(conn, &settings, &actor, blog_id, &options)?;
            Ok(())
        })
        .await?;
    state.jobs_wake.notify_one();
    tracing::info!(blog = %blog.handle, user = %me.user.username, "fediverse settings saved");
    Ok(see_other(&format!(
        "/dashboard/@{}/fediverse?done=saved",
        blog.handle
    )))
}

/// A blog's fediverse options to change (`None`: leave as it is).
#[derive(Debug, Clone, Default)]
pub struct BlogOptions {
    /// Which replies are shown without a decision.
    pub policy: Option<ReplyPolicy>,
    /// Whether followers wait for approval.
    pub approve_followers: Option<bool>,
    /// Whether articles go out in full, as notes.
    pub articles_as_notes: Option<bool>,
    /// Whether the blog may be listed in directories and search.
    pub discoverable: Option<bool>,
}

/// Changes a blog's fediverse options (those given), with an audit entry; the profile's
/// `updated_at` moves so cached pages and actor documents are rebuilt, and followers are
/// sent the new profile when what it says changed.
pub fn set_blog_options(
    conn: &mut crate::db::DbConnection,
    settings: &crate::config::Settings,
    actor: &Actor,
    blog_id: i64,
    options: &BlogOptions,
) -> Result<(), AppError> {
    let now = crate::domain::now();
    let BlogOptions {
        policy,
        approve_followers,
        articles_as_notes,
        discoverable,
    } = options.clone();
    write_tx(conn, |conn| {
        let target = blogs_table::table.find(blog_id);
        if let Some(policy) = policy {
            diesel::update(target)
                .set(blogs_table::reply_policy.eq(policy.as_str()))
                .execute(conn)?;
        }
        if let Some(value) = approve_followers {
            diesel::update(target)
                .set(blogs_table::manually_approves_followers.eq(value))
                .execute(conn)?;
        }
        if let Some(value) = articles_as_notes {
            diesel::update(target)
                .set(blogs_table::articles_as_notes.eq(value))
                .execute(conn)?;
        }
        if let Some(value) = discoverable {
            diesel::update(target)
                .set(blogs_table::discoverable.eq(value))
                .execute(conn)?;
        }
        diesel::update(target)
            .set(blogs_table::updated_at.eq(now))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Event::new(actor, actions::BLOG_FEDIVERSE_CHANGED)
                .blog(blog_id)
                .detail("replies", policy.map(ReplyPolicy::as_str))
                .detail("approve_followers", approve_followers)
                .detail("articles_as_notes", articles_as_notes)
                .detail("discoverable", discoverable),
        )?;
        if approve_followers.is_some() || discoverable.is_some() {
            outbox::profile_changed(conn, settings, blog_id)
                .map_err(|e| AppError::internal(e.to_string()))?;
        }
        Ok(())
    })
}

#[derive(Deserialize)]
struct OpenForm {
    csrf_token: String,
    open: String,
}

async fn post_replies(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(String, i64)>,
    form: web::Form<OpenForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (handle, post_id) = path.into_inner();
    let blog = moderated_blog(&state, &me, handle).await?;
    let closed = form.open != "yes";
    let blog_id = blog.id;
    state
        .db(move |conn| {
            let updated = diesel::update(
                posts_table::table
                    .filter(posts_table::id.eq(post_id))
                    .filter(posts_table::blog_id.eq(blog_id)),
            )
            .set((
                posts_table::replies_closed.eq(closed),
                posts_table::updated_at.eq(crate::domain::now()),
            ))
            .execute(conn)?;
            if updated == 0 {
                return Err(AppError::NotFound);
            }
            Ok(())
        })
        .await?;
    let done = if closed { "closed" } else { "opened" };
    Ok(see_other(&format!(
        "/dashboard/@{}/fediverse?done={done}",
        blog.handle
    )))
}

#[derive(Deserialize)]
struct PinForm {
    csrf_token: String,
    pin: String,
}

/// Most posts one profile pins (Mastodon shows five).
const MAX_PINNED: i64 = 5;

async fn pin_post(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(String, i64)>,
    form: web::Form<PinForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (handle, post_id) = path.into_inner();
    let blog = moderated_blog(&state, &me, handle).await?;
    let pin = form.pin == "yes";
    let blog_id = blog.id;
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                if pin {
                    let pinned: i64 = posts_table::table
                        .filter(posts_table::blog_id.eq(blog_id))
                        .filter(posts_table::pinned_at.is_not_null())
                        .count()
                        .get_result(conn)?;
                    if pinned >= MAX_PINNED {
                        return Err(AppError::Conflict(format!(
                            "at most {MAX_PINNED} posts can be pinned: unpin one first"
                        )));
                    }
                }
                let now = crate::domain::now();
                let updated = diesel::update(
                    posts_table::table
                        .filter(posts_table::id.eq(post_id))
                        .filter(posts_table::blog_id.eq(blog_id))
                        .filter(posts_table::status.eq(Status::Published.as_str())),
                )
                .set((
                    posts_table::pinned_at.eq(pin.then_some(now)),
                    posts_table::updated_at.eq(now),
                ))
                .execute(conn)?;
                if updated == 0 {
                    return Err(AppError::NotFound);
                }
                Ok(())
            })
        })
        .await?;
    let done = if pin { "pinned" } else { "unpinned" };
    Ok(see_other(&format!(
        "/dashboard/@{}/fediverse?done={done}",
        blog.handle
    )))
}

// --- Followers --------------------------------------------------------------------------

async fn followers_page(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let blog = moderated_blog(&state, &me, path.into_inner()).await?;
    let blog_id = blog.id;
    let (pending, accepted) = state
        .db(move |conn| {
            Ok((
                moderation::followers_of(conn, blog_id, FollowStatus::Pending)?,
                moderation::followers_of(conn, blog_id, FollowStatus::Accepted)?,
            ))
        })
        .await?;
    let base = format!("/dashboard/@{}/followers", blog.handle);
    let action = |actor: &ActorRow, verb: &str, label: &str, class: &str| {
        html! {
            form method="post" action={ (base) "/" (actor.id) "/" (verb) } class="rounds-inline-form" {
                (ui::csrf_field(&me.csrf_token))
                button class={ "nhsuk-button nhsuk-button--small " (class) } data-module="nhsuk-button" type="submit" {
                    (label) span class="nhsuk-u-visually-hidden" { " " (actor.handle()) }
                }
            }
        }
    };
    let who = |actor: &ActorRow| {
        html! {
            strong { (actor.name()) } br;
            span class="rounds-handle" { (actor.handle()) }
        }
    };
    let page = Page {
        title: format!("Followers – {}", blog.display_name),
        noindex: true,
        breadcrumbs: crumbs(&blog),
        main: html! {
            @if let Some(message) = notice(query.done.as_deref()) {
                (ui::success_banner(message))
            }
            h1 { "Followers" span class="nhsuk-caption-l nhsuk-caption--bottom" { (blog.display_name) } }
            @if !pending.is_empty() {
                h2 class="nhsuk-heading-m" { "Waiting for approval" }
                table class="nhsuk-table" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Follow requests" }
                    thead class="nhsuk-table__head" { tr class="nhsuk-table__row" {
                        th class="nhsuk-table__header" scope="col" { "Account" }
                        th class="nhsuk-table__header" scope="col" { "Server" }
                        th class="nhsuk-table__header" scope="col" { "Decision" }
                    } }
                    tbody class="nhsuk-table__body" {
                        @for follower in &pending {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (who(&follower.actor)) }
                                td class="nhsuk-table__cell" { (follower.actor.domain) }
                                td class="nhsuk-table__cell" {
                                    (action(&follower.actor, "accept", "Accept", ""))
                                    (action(&follower.actor, "reject", "Turn down", "nhsuk-button--secondary"))
                                }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" { (plural(i64::try_from(accepted.len()).unwrap_or(i64::MAX), "follower", "followers")) }
            @if accepted.is_empty() {
                p { "Nobody follows this blog yet. People on Mastodon and other fediverse apps can search for "
                    strong class="rounds-handle" { "@" (blog.handle) "@" (state.settings.domain()) } "." }
            } @else {
                table class="nhsuk-table" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Followers, newest first" }
                    thead class="nhsuk-table__head" { tr class="nhsuk-table__row" {
                        th class="nhsuk-table__header" scope="col" { "Account" }
                        th class="nhsuk-table__header" scope="col" { "Server" }
                        th class="nhsuk-table__header" scope="col" { "Since" }
                        th class="nhsuk-table__header" scope="col" { span class="nhsuk-u-visually-hidden" { "Actions" } }
                    } }
                    tbody class="nhsuk-table__body" {
                        @for follower in &accepted {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (who(&follower.actor)) }
                                td class="nhsuk-table__cell" { (follower.actor.domain) }
                                td class="nhsuk-table__cell" { (ui::time_element(follower.created_at)) }
                                td class="nhsuk-table__cell" { (action(&follower.actor, "remove", "Remove", "nhsuk-button--secondary")) }
                            }
                        }
                    }
                }
            }
        },
        ..Page::default()
    };
    Ok(html_page(&me.chrome(&state), page))
}

async fn follower_action(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(String, i64, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (handle, actor_id, action) = path.into_inner();
    if !matches!(action.as_str(), "accept" | "reject" | "remove") {
        return Err(AppError::NotFound);
    }
    let blog = moderated_blog(&state, &me, handle).await?;
    let settings = state.settings.clone();
    let for_db = blog.clone();
    let verb = action.clone();
    let user = me.user.clone();
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let actor = moderation::actor_row(conn, actor_id)?.ok_or(AppError::NotFound)?;
                record_decision(
                    conn,
                    &user,
                    actions::MODERATED,
                    Some(for_db.id),
                    &format!("follower.{verb}"),
                    actor.ap_id.clone(),
                )?;
                let pending = moderation::followers_of(conn, for_db.id, FollowStatus::Pending)?;
                let accepted = moderation::followers_of(conn, for_db.id, FollowStatus::Accepted)?;
                let follow = pending
                    .iter()
                    .chain(accepted.iter())
                    .find(|f| f.actor.id == actor_id)
                    .map(|f| f.follow_ap_id.clone())
                    .ok_or(AppError::NotFound)?;
                let accept = verb == "accept";
                if accept {
                    moderation::accept_follower(conn, for_db.id, actor_id)?;
                } else {
                    moderation::remove_follower(conn, for_db.id, actor_id)?;
                }
                outbox::answer_follow(
                    conn,
                    &settings,
                    &for_db,
                    &actor.ap_id,
                    &actor.inbox,
                    &follow,
                    accept,
                )
                .map_err(|e| AppError::internal(e.to_string()))?;
                Ok(())
            })
        })
        .await?;
    state.jobs_wake.notify_one();
    let done = match action.as_str() {
        "accept" => "accepted",
        "reject" => "rejected",
        _ => "removed",
    };
    tracing::info!(blog = %blog.handle, user = %me.user.username, actor = actor_id, action = %action, "follower decision");
    Ok(see_other(&format!(
        "/dashboard/@{}/followers?done={done}",
        blog.handle
    )))
}

// --- Replies ----------------------------------------------------------------------------

async fn replies_page(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let blog = moderated_blog(&state, &me, path.into_inner()).await?;
    let show = query.show.clone().unwrap_or_else(|| "held".into());
    let statuses: Vec<ReplyStatus> = match show.as_str() {
        "held" => vec![ReplyStatus::Held],
        "approved" => vec![ReplyStatus::Approved],
        "removed" => vec![ReplyStatus::Rejected, ReplyStatus::Hidden],
        _ => return Err(AppError::NotFound),
    };
    let blog_id = blog.id;
    let (list, posts) = state
        .db(move |conn| {
            let list = moderation::replies_for_blog(conn, blog_id, &statuses, 200)?;
            let ids: Vec<i64> = list.iter().filter_map(|r| r.reply.post_id).collect();
            let posts: Vec<Post> = posts_table::table
                .filter(posts_table::id.eq_any(ids))
                .select(Post::as_select())
                .load(conn)?;
            Ok((list, posts))
        })
        .await?;
    let page = replies_view(
        &me,
        &blog,
        &show,
        &list,
        &posts,
        notice(query.done.as_deref()),
        &[],
        "",
    );
    Ok(html_page(&me.chrome(&state), page))
}

#[allow(clippy::too_many_arguments)]
fn replies_view(
    me: &SignedIn,
    blog: &Blog,
    show: &str,
    list: &[ReplyView],
    posts: &[Post],
    notice: Option<&str>,
    errors: &[FieldError],
    answer_text: &str,
) -> Page {
    let base = format!("/dashboard/@{}/replies", blog.handle);
    let tab = |key: &str, label: &str| {
        html! {
            li class={ "nhsuk-tabs__list-item" @if key == show { " nhsuk-tabs__list-item--selected" } } {
                a class="nhsuk-tabs__tab" href={ (base) "?show=" (key) } aria-current=[(key == show).then_some("page")] { (label) }
            }
        }
    };
    let button = |reply_id: i64, action: &str, label: &str, who: &str, class: &str| {
        html! {
            form method="post" action={ (base) "/" (reply_id) "/" (action) } class="rounds-inline-form" {
                (ui::csrf_field(&me.csrf_token))
                button class={ "nhsuk-button nhsuk-button--small " (class) } data-module="nhsuk-button" type="submit" {
                    (label) span class="nhsuk-u-visually-hidden" { " (reply from " (who) ")" }
                }
            }
        }
    };
    let heading = match show {
        "approved" => "Shown replies",
        "removed" => "Rejected and hidden replies",
        _ => "Replies waiting for moderation",
    };
    Page {
        title: format!("Replies – {}", blog.display_name),
        noindex: true,
        breadcrumbs: crumbs(blog),
        main: html! {
            (ui::error_summary(errors))
            @if let Some(message) = notice {
                (ui::success_banner(message))
            }
            h1 { "Replies" span class="nhsuk-caption-l nhsuk-caption--bottom" { (blog.display_name) } }
            nav aria-label="Reply lists" {
                ul class="nhsuk-list rounds-tab-links" {
                    (tab("held", "Waiting"))
                    (tab("approved", "Shown"))
                    (tab("removed", "Rejected or hidden"))
                }
            }
            h2 class="nhsuk-heading-m" { (heading) }
            @if list.is_empty() {
                p { "None." }
            }
            @for view in list {
                @let reply = &view.reply;
                @let who = view.author.as_ref().map_or_else(|| blog.display_name.clone(), ActorRow::handle);
                @let post = reply.post_id.and_then(|id| posts.iter().find(|p| p.id == id));
                div class="nhsuk-card rounds-moderation" id={ "reply-" (reply.id) } {
                    div class="nhsuk-card__content" {
                        p class="nhsuk-body-s" {
                            @match &view.author {
                                Some(author) => { strong { (author.name()) } " " span class="rounds-handle" { (author.handle()) } }
                                None => { strong { (blog.display_name) } " (the blog)" }
                            }
                            " · " (ui::time_element(reply.published_at))
                            @match post {
                                Some(post) => { " · on " @if let Some(path) = post.path(&blog.handle) { a href=(path) { (post.display_title()) } } @else { (post.display_title()) } }
                                None => { " · a mention" }
                            }
                        }
                        @if let Some(warning) = &reply.summary {
                            p class="nhsuk-body-s" { strong { "Content warning: " } (warning) }
                        }
                        @if !reply.visibility().is_shown() {
                            p class="nhsuk-body-s" {
                                strong class="nhsuk-tag nhsuk-tag--grey" { "Private" }
                                " Sent only to the blog (followers-only or direct). It is never shown under the post; an answer goes to its author alone."
                            }
                        }
                        div class="rounds-reply__body" { (reply.content_html) }
                        @if view.author.is_some() {
                            @if let Some(original) = view.author.as_ref().and_then(|a| original_link(reply, a)) {
                                p class="nhsuk-body-s" {
                                    a href=(original) rel="nofollow noopener noreferrer" { "See the original" span class="nhsuk-u-visually-hidden" { " reply from " (who) } }
                                }
                            }
                            div class="rounds-moderation__actions" {
                                @match reply.status() {
                                    ReplyStatus::Held if !reply.visibility().is_shown() => {
                                        (button(reply.id, "reject", "Dismiss", &who, "nhsuk-button--secondary"))
                                    }
                                    ReplyStatus::Held => {
                                        (button(reply.id, "approve", "Approve", &who, ""))
                                        (button(reply.id, "reject", "Reject", &who, "nhsuk-button--secondary"))
                                    }
                                    ReplyStatus::Approved => {
                                        (button(reply.id, "hide", "Hide", &who, "nhsuk-button--secondary"))
                                    }
                                    // A private reply is never shown, so there is nothing to bring back.
                                    ReplyStatus::Rejected | ReplyStatus::Hidden if !reply.visibility().is_shown() => {}
                                    ReplyStatus::Rejected | ReplyStatus::Hidden => {
                                        (button(reply.id, "approve", "Show after all", &who, "nhsuk-button--secondary"))
                                    }
                                }
                                (button(reply.id, "block-account", "Block account", &who, "nhsuk-button--secondary"))
                                (button(reply.id, "block-domain", "Block server", &who, "nhsuk-button--secondary"))
                            }
                            @if can_answer(reply) {
                                form method="post" action={ (base) "/" (reply.id) "/answer" } novalidate {
                                    (ui::csrf_field(&me.csrf_token))
                                    @let field = format!("answer-{}", reply.id);
                                    div class={ "nhsuk-form-group" @if !errors.is_empty() && !answer_text.is_empty() { "" } } {
                                        label class="nhsuk-label" for=(field) { "Answer as " (blog.display_name) span class="nhsuk-u-visually-hidden" { " to " (who) } }
                                        textarea class="nhsuk-textarea" id=(field) name="text" rows="3" { (answer_text) }
                                    }
                                    button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" { "Publish answer" }
                                }
                            }
                        } @else if reply.status() == ReplyStatus::Approved {
                            div class="rounds-moderation__actions" {
                                (button(reply.id, "withdraw", "Withdraw answer", &who, "nhsuk-button--warning"))
                            }
                        }
                    }
                }
            }
        },
        ..Page::default()
    }
}

/// Whether the blog may answer a reply: one shown under the post, or a private one
/// (answered privately), never one turned down or hidden.
fn can_answer(reply: &moderation::Reply) -> bool {
    match reply.status() {
        ReplyStatus::Approved => true,
        ReplyStatus::Held => !reply.visibility().is_shown(),
        ReplyStatus::Rejected | ReplyStatus::Hidden => false,
    }
}

async fn reply_action(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(String, i64, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (handle, id, action) = path.into_inner();
    let blog = moderated_blog(&state, &me, handle).await?;
    let blog_id = blog.id;
    let verb = action.clone();
    let user = me.user.clone();
    let settings = state.settings.clone();
    let for_blog = blog.clone();
    let done = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let reply =
                    moderation::reply_in_blog(conn, blog_id, id)?.ok_or(AppError::NotFound)?;
                record_decision(
                    conn,
                    &user,
                    actions::MODERATED,
                    Some(blog_id),
                    &format!("reply.{verb}"),
                    reply.ap_id.clone(),
                )?;
                let author = match reply.actor_id {
                    Some(actor) => moderation::actor_row(conn, actor)?,
                    None => None,
                };
                // The blog's own answers are withdrawn (a Delete goes out), never
                // moderated like someone else's words.
                if reply.actor_id.is_none() {
                    if verb != "withdraw" {
                        return Err(AppError::Conflict(
                            "this is the blog's own answer: it can be withdrawn, not moderated"
                                .into(),
                        ));
                    }
                    outbox::withdraw_answer(conn, &settings, &for_blog, &reply)
                        .map_err(|e| AppError::internal(e.to_string()))?;
                    return Ok("withdrawn");
                }
                let done = match verb.as_str() {
                    "approve" => {
                        if !moderation::set_reply_status(conn, id, ReplyStatus::Approved)? {
                            return Err(AppError::Conflict(
                                "this reply was sent privately to the blog, so it cannot be shown under the post; you can answer it privately".into(),
                            ));
                        }
                        "approved"
                    }
                    "reject" => {
                        moderation::set_reply_status(conn, id, ReplyStatus::Rejected)?;
                        "reply-rejected"
                    }
                    "hide" => {
                        moderation::set_reply_status(conn, id, ReplyStatus::Hidden)?;
                        "hidden"
                    }
                    "block-account" => {
                        let author = author.ok_or(AppError::NotFound)?;
                        moderation::blog_block(
                            conn,
                            blog_id,
                            BlogBlockKind::Account,
                            &author.ap_id,
                        )?;
                        hide_from(conn, blog_id, |r| r.actor_id == Some(author.id))?;
                        moderation::remove_follower(conn, blog_id, author.id)?;
                        "blocked-account"
                    }
                    "block-domain" => {
                        let author = author.ok_or(AppError::NotFound)?;
                        let domain = author
                            .domain
                            .split(':')
                            .next()
                            .unwrap_or(&author.domain)
                            .to_owned();
                        moderation::blog_block(conn, blog_id, BlogBlockKind::Domain, &domain)?;
                        let replies = moderation::replies_for_blog(
                            conn,
                            blog_id,
                            &[ReplyStatus::Held, ReplyStatus::Approved],
                            10_000,
                        )?;
                        for view in replies {
                            if view
                                .author
                                .as_ref()
                                .is_some_and(|a| moderation::domain_matches(&a.domain, &domain))
                            {
                                moderation::set_reply_status(
                                    conn,
                                    view.reply.id,
                                    ReplyStatus::Rejected,
                                )?;
                            }
                        }
                        "blocked-domain"
                    }
                    _ => return Err(AppError::NotFound),
                };
                Ok(done)
            })
        })
        .await?;
    if done == "withdrawn" {
        state.jobs_wake.notify_one();
    }
    tracing::info!(blog = %blog.handle, user = %me.user.username, reply = id, action = %action, "moderation decision");
    Ok(see_other(&format!(
        "/dashboard/@{}/replies?done={done}",
        blog.handle
    )))
}

/// Rejects a blog's held and shown replies that match.
fn hide_from(
    conn: &mut crate::db::DbConnection,
    blog_id: i64,
    matches: impl Fn(&moderation::Reply) -> bool,
) -> Result<(), AppError> {
    let replies = moderation::replies_for_blog(
        conn,
        blog_id,
        &[ReplyStatus::Held, ReplyStatus::Approved],
        10_000,
    )?;
    for view in replies {
        if matches(&view.reply) {
            moderation::set_reply_status(conn, view.reply.id, ReplyStatus::Rejected)?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct AnswerForm {
    csrf_token: String,
    text: String,
}

async fn answer(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(String, i64)>,
    form: web::Form<AnswerForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (handle, id) = path.into_inner();
    let blog = moderated_blog(&state, &me, handle).await?;
    let text = crate::domain::names::without_controls(&form.text)
        .trim()
        .to_owned();
    let problem = if text.is_empty() {
        Some("Write your answer before publishing it")
    } else if text.chars().count() > 5000 {
        Some("An answer must be 5000 characters or fewer")
    } else {
        None
    };
    let blog_id = blog.id;
    if let Some(problem) = problem {
        let (list, posts) = state
            .db(move |conn| {
                let list =
                    moderation::replies_for_blog(conn, blog_id, &[ReplyStatus::Approved], 200)?;
                let posts: Vec<Post> = posts_table::table
                    .filter(posts_table::blog_id.eq(blog_id))
                    .select(Post::as_select())
                    .load(conn)?;
                Ok((list, posts))
            })
            .await?;
        let errors = [FieldError::new("", problem)];
        let page = replies_view(&me, &blog, "approved", &list, &posts, None, &errors, &text);
        return Ok(html_page_invalid(&me.chrome(&state), page));
    }
    let settings = state.settings.clone();
    let for_db = blog.clone();
    let actor = Actor::web(&me.user);
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let reply =
                    moderation::reply_in_blog(conn, for_db.id, id)?.ok_or(AppError::NotFound)?;
                if !can_answer(&reply) {
                    return Err(AppError::Conflict(
                        "only a shown reply, or a private one, can be answered".into(),
                    ));
                }
                outbox::answer_reply(conn, &settings, &for_db, &reply, &text)
                    .map_err(|e| AppError::internal(e.to_string()))?;
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::ANSWERED)
                        .blog(for_db.id)
                        .subject(reply.ap_id.clone())
                        .detail("text", &text),
                )?;
                Ok(())
            })
        })
        .await?;
    state.jobs_wake.notify_one();
    tracing::info!(blog = %blog.handle, user = %me.user.username, reply = id, "answered a reply");
    Ok(see_other(&format!(
        "/dashboard/@{}/replies?show=approved&done=answered",
        blog.handle
    )))
}

// --- Admin ------------------------------------------------------------------------------

fn admin_only(me: &SignedIn) -> Result<(), AppError> {
    if me.user.is_admin {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// A dead delivery as the admin page lists it.
struct DeadDelivery {
    id: i64,
    inbox: String,
    activity_id: String,
    attempts: i32,
    error: Option<String>,
    when: Option<chrono::NaiveDateTime>,
}

async fn admin_page(
    state: web::Data<AppState>,
    me: SignedIn,
    query: web::Query<AdminQuery>,
) -> Result<HttpResponse, AppError> {
    admin_only(&me)?;
    let page = admin_view(&state, &me, query.done.as_deref(), &[], "", "").await?;
    Ok(html_page(&me.chrome(&state), page))
}

#[derive(Deserialize)]
struct AdminQuery {
    done: Option<String>,
}

async fn admin_view(
    state: &AppState,
    me: &SignedIn,
    done: Option<&str>,
    errors: &[FieldError],
    domain_value: &str,
    account_value: &str,
) -> Result<Page, AppError> {
    let (domains, accounts, dead, reports) = state
        .db(|conn| {
            let dead = jobs::dead_letters(conn, DELIVER_JOB, 100)?
                .into_iter()
                .map(|job| {
                    let delivery: Option<Delivery> = job.payload().ok();
                    DeadDelivery {
                        id: job.id,
                        inbox: delivery
                            .as_ref()
                            .map(|d| d.inbox.clone())
                            .unwrap_or_default(),
                        activity_id: delivery.map(|d| d.activity_id).unwrap_or_default(),
                        attempts: job.attempts,
                        error: job.last_error,
                        when: job.finished_at,
                    }
                })
                .collect::<Vec<_>>();
            Ok((
                moderation::domain_blocks(conn)?,
                moderation::account_blocks(conn)?,
                dead,
                moderation::reports(conn, 100)?,
            ))
        })
        .await?;
    let message = match done {
        Some("domain") => Some("Domain block saved"),
        Some("domain-removed") => Some("Domain block lifted"),
        Some("imported") => Some("Domain blocks imported"),
        Some("account") => Some("Account blocked"),
        Some("account-removed") => Some("Account block lifted"),
        Some("retry") => Some("Delivery queued again"),
        Some("resolved") => Some("Report marked as dealt with"),
        _ => None,
    };
    let csrf = &me.csrf_token;
    Ok(Page {
        title: "Fediverse moderation".into(),
        noindex: true,
        breadcrumbs: vec![("Dashboard".into(), "/dashboard".into())],
        main: html! {
            (ui::error_summary(errors))
            @if let Some(message) = message {
                (ui::success_banner(message))
            }
            h1 { "Fediverse moderation" }
            h2 class="nhsuk-heading-m" { "Blocked servers" }
            form method="post" action="/dashboard/admin/fediverse/domains" novalidate {
                (ui::csrf_field(csrf))
                (ui::input(Field::text("domain", "Server domain").hint("For example: spam.example. Its subdomains are blocked too.").width(20), domain_value, errors))
                div class="nhsuk-form-group" {
                    fieldset class="nhsuk-fieldset" {
                        legend class="nhsuk-fieldset__legend" { "What the block does" }
                        div class="nhsuk-radios" {
                            div class="nhsuk-radios__item" {
                                input class="nhsuk-radios__input" id="severity-reject" name="severity" type="radio" value="reject" checked;
                                label class="nhsuk-label nhsuk-radios__label" for="severity-reject" { "Refuse everything from it" }
                            }
                            div class="nhsuk-radios__item" {
                                input class="nhsuk-radios__input" id="severity-hold" name="severity" type="radio" value="hold";
                                label class="nhsuk-label nhsuk-radios__label" for="severity-hold" { "Hold every reply from it for moderation" }
                            }
                        }
                    }
                }
                (ui::input(Field::text("reason", "Reason (optional)"), "", errors))
                button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Block server" }
            }
            form method="post" action="/dashboard/admin/fediverse/domains/import" enctype="multipart/form-data" novalidate {
                (ui::csrf_field(csrf))
                (ui::file_input(Field::text("blocklist", "Import a blocklist").hint("A CSV file in Mastodon's export format (#domain,#severity,...). suspend refuses everything; silence holds replies."), ".csv,text/csv", errors))
                button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Import blocklist" }
            }
            @if domains.is_empty() {
                p { "No servers are blocked." }
            } @else {
                table class="nhsuk-table" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Blocked servers" }
                    thead class="nhsuk-table__head" { tr class="nhsuk-table__row" {
                        th class="nhsuk-table__header" scope="col" { "Domain" }
                        th class="nhsuk-table__header" scope="col" { "Block" }
                        th class="nhsuk-table__header" scope="col" { "Reason" }
                        th class="nhsuk-table__header" scope="col" { span class="nhsuk-u-visually-hidden" { "Actions" } }
                    } }
                    tbody class="nhsuk-table__body" {
                        @for block in &domains {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (block.domain) }
                                td class="nhsuk-table__cell" { @if block.severity == "reject" { "Refuse everything" } @else { "Hold replies" } }
                                td class="nhsuk-table__cell" { (block.reason.clone().unwrap_or_default()) }
                                td class="nhsuk-table__cell" {
                                    form method="post" action="/dashboard/admin/fediverse/domains/remove" {
                                        (ui::csrf_field(csrf))
                                        input type="hidden" name="domain" value=(block.domain);
                                        button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                                            "Lift" span class="nhsuk-u-visually-hidden" { " the block on " (block.domain) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" { "Blocked accounts" }
            form method="post" action="/dashboard/admin/fediverse/accounts" novalidate {
                (ui::csrf_field(csrf))
                (ui::input(Field::text("account", "Account").hint("As people write it, for example @someone@mastodon.example, or its address, for example https://mastodon.example/users/someone"), account_value, errors))
                button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Block account" }
            }
            @if !accounts.is_empty() {
                ul class="nhsuk-list" {
                    @for (account, _, _) in &accounts {
                        li {
                            (account) " "
                            form method="post" action="/dashboard/admin/fediverse/accounts/remove" class="rounds-inline-form" {
                                (ui::csrf_field(csrf))
                                input type="hidden" name="account" value=(account);
                                button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                                    "Lift" span class="nhsuk-u-visually-hidden" { " the block on " (account) }
                                }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" { "Deliveries that failed" }
            @if dead.is_empty() {
                p { "Every delivery went through or is still being tried." }
            } @else {
                table class="nhsuk-table" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Dead deliveries" }
                    thead class="nhsuk-table__head" { tr class="nhsuk-table__row" {
                        th class="nhsuk-table__header" scope="col" { "Inbox" }
                        th class="nhsuk-table__header" scope="col" { "Last error" }
                        th class="nhsuk-table__header" scope="col" { "Attempts" }
                        th class="nhsuk-table__header" scope="col" { span class="nhsuk-u-visually-hidden" { "Actions" } }
                    } }
                    tbody class="nhsuk-table__body" {
                        @for delivery in &dead {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (delivery.inbox) br; span class="nhsuk-body-s" { (delivery.activity_id) } }
                                td class="nhsuk-table__cell" { (delivery.error.clone().unwrap_or_default()) @if let Some(when) = delivery.when { br; (ui::time_element(when)) } }
                                td class="nhsuk-table__cell" { (delivery.attempts) }
                                td class="nhsuk-table__cell" {
                                    form method="post" action={ "/dashboard/admin/fediverse/deliveries/" (delivery.id) "/retry" } {
                                        (ui::csrf_field(csrf))
                                        button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                                            "Retry" span class="nhsuk-u-visually-hidden" { " delivery to " (delivery.inbox) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" { "Reports from other servers" }
            @if reports.is_empty() {
                p { "No reports." }
            } @else {
                @for report in &reports {
                    div class="nhsuk-card" {
                        div class="nhsuk-card__content" {
                            p class="nhsuk-body-s" { (ui::time_element(report.created_at)) " · " (report.status) }
                            @if let Some(content) = &report.content { p { (content) } }
                            p class="nhsuk-body-s" { "About: " (report.objects) }
                            @if report.status == "open" {
                                form method="post" action={ "/dashboard/admin/fediverse/reports/" (report.id) "/resolve" } {
                                    (ui::csrf_field(csrf))
                                    button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" { "Mark as dealt with" }
                                }
                            }
                        }
                    }
                }
            }
        },
        ..Page::default()
    })
}

#[derive(Deserialize)]
struct DomainForm {
    csrf_token: String,
    domain: String,
    severity: Option<String>,
    reason: Option<String>,
}

/// A domain as typed: lower case, no scheme, path or port.
fn parse_domain(input: &str) -> Result<String, String> {
    let trimmed = input
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = trimmed
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.contains('.')
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        });
    if valid {
        Ok(host.trim_start_matches("*.").to_owned())
    } else {
        Err(format!(
            "“{}” is not a server domain, like spam.example",
            input.trim()
        ))
    }
}

async fn add_domain_block(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<DomainForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    admin_only(&me)?;
    let domain = match parse_domain(&form.domain) {
        Ok(d) => d,
        Err(e) => {
            let errors = [FieldError::new("domain", e)];
            let page = admin_view(&state, &me, None, &errors, &form.domain, "").await?;
            return Ok(html_page_invalid(&me.chrome(&state), page));
        }
    };
    let severity = BlockSeverity::parse(form.severity.as_deref().unwrap_or("reject"))
        .ok_or_else(|| AppError::invalid("severity", "Choose what the block does"))?;
    let reason = form.reason.clone().filter(|r| !r.trim().is_empty());
    let user = me.user.clone();
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                moderation::block_domain(conn, &domain, severity, reason.as_deref())?;
                record_decision(
                    conn,
                    &user,
                    actions::BLOCKS_CHANGED,
                    None,
                    &format!("domain.{}", severity.as_str()),
                    domain.clone(),
                )
            })
        })
        .await?;
    tracing::info!(user = %me.user.username, domain = %form.domain, "domain blocked");
    Ok(see_other("/dashboard/admin/fediverse?done=domain"))
}

#[derive(MultipartForm)]
struct ImportForm {
    csrf_token: Option<Text<String>>,
    blocklist: Option<TempFile>,
}

/// One row of an imported blocklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedBlock {
    /// The domain.
    pub domain: String,
    /// What the block does.
    pub severity: BlockSeverity,
    /// The list's public comment.
    pub reason: Option<String>,
}

/// Reads a Mastodon domain blocklist export; every row must be understood, or nothing
/// is imported.
pub fn parse_blocklist(text: &str) -> Result<Vec<ImportedBlock>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    for (n, record) in reader.records().enumerate() {
        let line = n + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("Line {line}: {e}"));
                continue;
            }
        };
        let first = record.get(0).unwrap_or("");
        if line == 1 && first.starts_with('#') {
            columns = Some(
                record
                    .iter()
                    .map(|c| c.trim_start_matches('#').to_ascii_lowercase())
                    .collect(),
            );
            continue;
        }
        if first.is_empty() {
            continue;
        }
        let column = |name: &str| {
            columns
                .as_ref()
                .and_then(|cols| cols.iter().position(|c| c == name))
                .and_then(|i| record.get(i))
        };
        let domain = match parse_domain(column("domain").unwrap_or(first)) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("Line {line}: {e}"));
                continue;
            }
        };
        let severity_text = column("severity").unwrap_or("suspend");
        if severity_text.eq_ignore_ascii_case("noop") {
            continue;
        }
        let Some(severity) = BlockSeverity::parse(severity_text) else {
            problems.push(format!("Line {line}: unknown severity “{severity_text}”"));
            continue;
        };
        let reason = column("public_comment")
            .map(str::to_owned)
            .filter(|r| !r.is_empty());
        blocks.push(ImportedBlock {
            domain,
            severity,
            reason,
        });
    }
    if problems.is_empty() {
        Ok(blocks)
    } else {
        Err(problems)
    }
}

async fn import_domain_blocks(
    state: web::Data<AppState>,
    me: SignedIn,
    form: MultipartForm<ImportForm>,
) -> Result<HttpResponse, AppError> {
    let token = form
        .csrf_token
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    me.check_csrf(&token)?;
    admin_only(&me)?;
    let invalid = |problems: Vec<String>| async {
        let errors: Vec<FieldError> = problems
            .into_iter()
            .map(|p| FieldError::new("blocklist", p))
            .collect();
        let page = admin_view(&state, &me, None, &errors, "", "").await?;
        Ok::<_, AppError>(html_page_invalid(&me.chrome(&state), page))
    };
    let Some(file) = form.blocklist.as_ref().filter(|f| f.size > 0) else {
        return invalid(vec!["Choose a CSV file to import".into()]).await;
    };
    let path = file.file.path().to_owned();
    let bytes = web::block(move || std::fs::read(path)).await??;
    let Ok(text) = String::from_utf8(bytes) else {
        return invalid(vec!["The file is not text (UTF-8 CSV)".into()]).await;
    };
    let blocks = match parse_blocklist(&text) {
        Ok(blocks) => blocks,
        Err(problems) => return invalid(problems).await,
    };
    let count = blocks.len();
    let actor = Actor::web(&me.user);
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                for block in &blocks {
                    moderation::block_domain(
                        conn,
                        &block.domain,
                        block.severity,
                        block.reason.as_deref(),
                    )?;
                }
                let domains: Vec<&str> = blocks.iter().map(|b| b.domain.as_str()).collect();
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::BLOCKS_CHANGED)
                        .subject(format!("{count} servers"))
                        .detail("decision", "domain.import")
                        .detail("domains", domains),
                )?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    tracing::info!(user = %me.user.username, count, "domain blocklist imported");
    Ok(see_other("/dashboard/admin/fediverse?done=imported"))
}

#[derive(Deserialize)]
struct RemoveDomainForm {
    csrf_token: String,
    domain: String,
}

async fn remove_domain_block(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<RemoveDomainForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    admin_only(&me)?;
    let domain = form.domain.clone();
    let user = me.user.clone();
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                moderation::unblock_domain(conn, &domain)?;
                record_decision(
                    conn,
                    &user,
                    actions::BLOCKS_CHANGED,
                    None,
                    "domain.unblock",
                    domain.clone(),
                )
            })
        })
        .await?;
    Ok(see_other("/dashboard/admin/fediverse?done=domain-removed"))
}

#[derive(Deserialize)]
struct AccountForm {
    csrf_token: String,
    account: String,
}

async fn add_account_block(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<AccountForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    admin_only(&me)?;
    let typed = form.account.trim();
    let is_url = url::Url::parse(typed)
        .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some());
    // People know accounts as @user@server; that is looked up to the account's id.
    let found = match crate::domain::mentions::Acct::parse(typed) {
        _ if is_url => Ok(typed.to_owned()),
        Some(acct) => super::mentions::find_account(&state.federation, &acct)
            .await
            .map(|account| account.href)
            .map_err(|e| format!("We could not find {acct}: {e}. Enter the account's address (its https:// link) instead")),
        None => Err("Enter the account as @user@server, or its address starting https://".to_owned()),
    };
    let account = match found {
        Ok(account) => account,
        Err(problem) => {
            let errors = [FieldError::new("account", &problem)];
            let page = admin_view(&state, &me, None, &errors, "", &form.account).await?;
            return Ok(html_page_invalid(&me.chrome(&state), page));
        }
    };
    let user = me.user.clone();
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                moderation::block_account(conn, &account, None)?;
                record_decision(
                    conn,
                    &user,
                    actions::BLOCKS_CHANGED,
                    None,
                    "account.block",
                    account.clone(),
                )?;
                // Stop delivering to them and take their replies down everywhere.
                if let Ok(Some(actor)) = super::actors::find_by_ap_id(conn, &account) {
                    moderation::forget_actor(conn, actor.row.id)?;
                }
                Ok(())
            })
        })
        .await?;
    Ok(see_other("/dashboard/admin/fediverse?done=account"))
}

async fn remove_account_block(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<AccountForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    admin_only(&me)?;
    let account = form.account.clone();
    let user = me.user.clone();
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                moderation::unblock_account(conn, &account)?;
                record_decision(
                    conn,
                    &user,
                    actions::BLOCKS_CHANGED,
                    None,
                    "account.unblock",
                    account.clone(),
                )
            })
        })
        .await?;
    Ok(see_other("/dashboard/admin/fediverse?done=account-removed"))
}

async fn retry_delivery(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    admin_only(&me)?;
    let id = path.into_inner();
    let revived = state.db(move |conn| Ok(jobs::revive(conn, id)?)).await?;
    if !revived {
        return Err(AppError::NotFound);
    }
    state.jobs_wake.notify_one();
    Ok(see_other("/dashboard/admin/fediverse?done=retry"))
}

async fn resolve_report(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    admin_only(&me)?;
    let id = path.into_inner();
    let user = me.user.clone();
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                moderation::resolve_report(conn, id)?;
                record_decision(
                    conn,
                    &user,
                    actions::MODERATED,
                    None,
                    "report.resolve",
                    format!("report {id}"),
                )
            })
        })
        .await?;
    Ok(see_other("/dashboard/admin/fediverse?done=resolved"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_links_stay_on_the_authors_server() {
        let id = "https://m.example/users/a/statuses/1";
        let link = |url: Option<&str>, id: &str| link_to_original(url, id, "m.example");
        assert_eq!(
            link(Some("https://m.example/@a/1"), id).as_deref(),
            Some("https://m.example/@a/1")
        );
        assert_eq!(
            link(Some("http://M.example/@a/1"), id).as_deref(),
            Some("http://m.example/@a/1")
        );
        // Elsewhere, another port, not the web, or not a URL: the id instead.
        for url in [
            "https://evil.example/@a/1",
            "https://m.example.evil.example/@a/1",
            "https://m.example:8443/@a/1",
            "javascript:alert(1)",
            "data:text/html,hi",
            "/@a/1",
        ] {
            assert_eq!(link(Some(url), id).as_deref(), Some(id), "{url}");
        }
        assert_eq!(link(None, id).as_deref(), Some(id));
        // And with no web address at all, no link.
        assert_eq!(link(Some("javascript:alert(1)"), "urn:uuid:1"), None);
        assert_eq!(link(None, "tag:m.example,2026:1"), None);
        assert_eq!(
            link_to_original(Some("http://localhost:8080/@a/1"), id, "localhost:8080").as_deref(),
            Some("http://localhost:8080/@a/1")
        );
    }

    #[test]
    fn blocklists_in_mastodon_format() {
        let csv = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n\
                   spam.example,suspend,true,true,Spam,false\n\
                   loud.example,silence,false,false,,false\n\
                   fine.example,noop,false,false,,false\n";
        let blocks = parse_blocklist(csv).expect("valid");
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0],
            ImportedBlock {
                domain: "spam.example".into(),
                severity: BlockSeverity::Reject,
                reason: Some("Spam".into())
            }
        );
        assert_eq!(blocks[1].severity, BlockSeverity::Hold);
        // A plain list of domains works too; a bad row stops the whole import.
        assert_eq!(
            parse_blocklist("a.example\nb.example\n")
                .expect("valid")
                .len(),
            2
        );
        let problems = parse_blocklist("a.example\nnot a domain\n").expect_err("invalid");
        assert!(problems[0].contains("Line 2"), "{problems:?}");
    }
}
