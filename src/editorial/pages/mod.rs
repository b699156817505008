//! The team's editorial pages under `/dashboard`: the review page (sign-off, checks,
//! previews, comments), history and diffs, the team and its invitations, and the
//! administrators' audit log and publishing freeze. The editor itself is in
//! `web::editor`.
//!
//! Every handler reads the person's role from the database on each request (through
//! [`load_blog`] or [`load_post`]), so a role change or removal takes effect at once.

pub mod admin;
pub mod history;
pub mod invitations;
pub mod review;
pub mod team;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};

use super::freeze::{self, Freeze};
use super::roles::{self, Standing};
use super::workflow::{self, Workflow};
use crate::domain::blogs::{self, Blog};
use crate::domain::names::Handle;
use crate::domain::posts::{self, Post, Status};
use crate::domain::users::User;
use crate::error::AppError;
use crate::web::AppState;

/// Routes under `/dashboard` (registered by `web::editor::routes`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    review::routes(cfg);
    history::routes(cfg);
    team::routes(cfg);
    invitations::routes(cfg);
    admin::routes(cfg);
}

/// A blog and the signed-in person's standing on it: 404 for an unknown blog, 403 for
/// one they are not on.
pub async fn load_blog(
    state: &AppState,
    user: &User,
    handle: String,
) -> Result<(Blog, Standing), AppError> {
    let handle = Handle::parse(&handle).map_err(|_| AppError::NotFound)?;
    let user = user.clone();
    state
        .db(move |conn| {
            let blog = blogs::find_by_handle(conn, handle.as_str())?.ok_or(AppError::NotFound)?;
            let standing = roles::standing(conn, blog.id, &user)?;
            if !standing.is_member() {
                return Err(AppError::Forbidden);
            }
            Ok((blog, standing))
        })
        .await
}

/// A post with what every page about it needs.
#[derive(Debug, Clone)]
pub struct PostContext {
    /// The post.
    pub post: Post,
    /// Its blog.
    pub blog: Blog,
    /// The signed-in person's standing on the blog.
    pub standing: Standing,
    /// Where it is in sign-off.
    pub workflow: Workflow,
    /// The publishing freeze, if one is in force.
    pub freeze: Option<Freeze>,
}

/// A post the signed-in person may see: 404 unknown, 410 deleted, 403 not theirs to see.
pub async fn load_post(state: &AppState, user: &User, id: i64) -> Result<PostContext, AppError> {
    let user = user.clone();
    state
        .db(move |conn| {
            let post = posts::find(conn, id)?.ok_or(AppError::NotFound)?;
            if post.status() == Status::Deleted {
                return Err(AppError::Gone);
            }
            let blog = blogs::find(conn, post.blog_id)?.ok_or(AppError::NotFound)?;
            let standing = roles::standing(conn, blog.id, &user)?;
            if !standing.can_view(&post) {
                return Err(AppError::Forbidden);
            }
            let workflow = workflow::get(conn, &post)?;
            let freeze = freeze::current(conn)?;
            Ok(PostContext {
                post,
                blog,
                standing,
                workflow,
                freeze,
            })
        })
        .await
}

/// A redirect after a form.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The banner every team page shows while publishing is frozen.
pub fn freeze_banner(freeze: Option<&Freeze>) -> Markup {
    let Some(freeze) = freeze else {
        return html! {};
    };
    html! {
        div class="nhsuk-notification-banner rounds-freeze-banner" role="region"
            aria-labelledby="freeze-banner-title" data-module="nhsuk-notification-banner" {
            div class="nhsuk-notification-banner__header" {
                h2 class="nhsuk-notification-banner__title" id="freeze-banner-title" { "Important" }
            }
            div class="nhsuk-notification-banner__content" {
                p class="nhsuk-notification-banner__heading" { "Publishing is frozen" }
                p class="nhsuk-body" { (freeze.message) }
                p class="nhsuk-body-s" {
                    "Since " (super::schedule::format_london(freeze.started_at))
                    ". Nothing is published, and scheduled posts are held, until an administrator lifts the freeze. You can still write, review, approve and schedule."
                }
            }
        }
    }
}

/// The stage as an NHS.UK tag.
pub fn stage_tag(stage: super::workflow::Stage) -> Markup {
    html! { strong class={ "nhsuk-tag " (stage.tag_class()) } { (stage.label()) } }
}

/// The breadcrumb trail to a blog's posts.
pub fn trail(blog: &Blog) -> Vec<(String, String)> {
    vec![
        ("Dashboard".into(), "/dashboard".into()),
        (
            blog.display_name.clone(),
            format!("/dashboard/@{}", blog.handle),
        ),
    ]
}

/// The trail to a post's pages.
pub fn post_trail(blog: &Blog, post: &Post) -> Vec<(String, String)> {
    let mut trail = trail(blog);
    trail.push((
        post.display_title(),
        format!("/dashboard/posts/{}", post.id),
    ));
    trail
}

/// Links between a post's pages, with the current one marked.
pub fn post_nav(post: &Post, current: &str) -> Markup {
    let links = [
        ("Edit", format!("/dashboard/posts/{}", post.id)),
        (
            "Review and sign-off",
            format!("/dashboard/posts/{}/review", post.id),
        ),
        ("History", format!("/dashboard/posts/{}/history", post.id)),
    ];
    html! {
        nav class="rounds-post-nav" aria-label="This post" {
            ul class="nhsuk-list rounds-post-nav__list" {
                @for (label, href) in &links {
                    li {
                        @if *label == current {
                            a href=(href) aria-current="page" { strong { (label) } }
                        } @else {
                            a href=(href) { (label) }
                        }
                    }
                }
            }
        }
    }
}
