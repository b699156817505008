//! The team's pages for writing: the dashboard, a blog's posts, and the post editor
//! (Markdown with a live preview, tags, images with alt text; save, publish, unpublish,
//! delete). Every save is a revision; a save based on an older revision than the latest
//! is merged, or shows both versions to settle (see `publishing`). With its script the
//! editor autosaves every few seconds and shows who else has the post open.

use actix_multipart::form::tempfile::TempFile;
use actix_multipart::form::text::Text;
use actix_multipart::form::{MultipartForm, MultipartFormConfig};
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{SignedIn, html_page, html_page_invalid};
use super::ui::{self, Field, Page};
use crate::domain::blogs::{self, Blog, Role};
use crate::domain::html::SafeHtml;
use crate::domain::media::{self, Media};
use crate::domain::posts::{self, Post, PostFields, PostInput, Status};
use crate::domain::users::User;
use crate::editorial::Actor;
use crate::editorial::freeze::{self, Freeze};
use crate::editorial::pages::{self, PostContext, load_blog, load_post};
use crate::editorial::presence::{self, Present};
use crate::editorial::revisions::{self, Content, Kind, Revision};
use crate::editorial::roles::Standing;
use crate::editorial::schedule::format_london;
use crate::editorial::workflow::{self, Stage};
use crate::error::{AppError, FieldError};
use crate::federation::mentions::{self, Mentions};
use crate::publishing::{self, Conflict, SaveRequest, Saved};

/// Routes under `/dashboard`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(dashboard))
        .route("/preview", web::post().to(preview))
        .route("/@{handle}", web::get().to(blog_posts))
        .route("/@{handle}/new", web::get().to(new_post))
        .route("/@{handle}/new", web::post().to(create_post))
        .route("/@{handle}/media", web::post().to(upload_media))
        .route("/posts/{id}", web::get().to(edit_post))
        .route("/posts/{id}", web::post().to(save_post))
        .route("/posts/{id}/autosave", web::post().to(autosave))
        .route("/posts/{id}/presence", web::post().to(presence_ping))
        .route("/posts/{id}/presence/leave", web::post().to(presence_leave))
        .route("/posts/{id}/unpublish", web::post().to(unpublish_post))
        .route("/posts/{id}/delete", web::get().to(confirm_delete))
        .route("/posts/{id}/delete", web::post().to(delete_post))
        .configure(pages::routes);
}

/// Limits for the editor's multipart forms: the upload size plus room for the text.
pub fn multipart_config(upload_max_bytes: u64) -> MultipartFormConfig {
    let total = usize::try_from(upload_max_bytes).unwrap_or(usize::MAX);
    MultipartFormConfig::default()
        .total_limit(total.saturating_add(1024 * 1024))
        .memory_limit(1024 * 1024)
        .error_handler(move |error, _| {
            let too_large = matches!(
                error,
                actix_multipart::MultipartError::Payload(actix_web::error::PayloadError::Overflow)
            ) || error.to_string().contains("limit");
            if too_large {
                AppError::PayloadTooLarge.into()
            } else {
                AppError::invalid("", format!("The form could not be read: {error}")).into()
            }
        })
}

// ---------------------------------------------------------------------------------------
// Who may do what

/// A person's role on a blog: their membership, or editor rights for an instance admin.
fn effective_role(user: &User, membership: Option<Role>) -> Option<Role> {
    match (membership, user.is_admin) {
        (Some(role), true) => Some(role.max(Role::Editor)),
        (Some(role), false) => Some(role),
        (None, true) => Some(Role::Editor),
        (None, false) => None,
    }
}

/// A post the person may edit, with its context.
async fn editable(state: &AppState, user: &User, id: i64) -> Result<PostContext, AppError> {
    let context = load_post(state, user, id).await?;
    if !context
        .standing
        .can_edit(&context.post, context.workflow.stage())
    {
        return Err(AppError::Forbidden);
    }
    Ok(context)
}

fn see_other(location: &str) -> HttpResponse {
    pages::see_other(location)
}

// ---------------------------------------------------------------------------------------
// Dashboard and post lists

async fn dashboard(state: web::Data<AppState>, me: SignedIn) -> Result<HttpResponse, AppError> {
    let user = me.user.clone();
    let (blogs, freeze) = state
        .db(move |conn| {
            let freeze = freeze::current(conn)?;
            if user.is_admin {
                let member = blogs::memberships(conn, user.id)?;
                Ok((
                    blogs::all_by_name(conn)?
                        .into_iter()
                        .map(|b| {
                            let role = member.iter().find(|(m, _)| m.id == b.id).map(|(_, r)| *r);
                            let role = effective_role(&user, role).unwrap_or(Role::Editor);
                            (b, role)
                        })
                        .collect::<Vec<_>>(),
                    freeze,
                ))
            } else {
                Ok((blogs::memberships(conn, user.id)?, freeze))
            }
        })
        .await?;
    if blogs.len() == 1 && !me.user.is_admin {
        return Ok(see_other(&format!("/dashboard/@{}", blogs[0].0.handle)));
    }
    let page = Page {
        title: "Dashboard".into(),
        noindex: true,
        main: html! {
            (pages::freeze_banner(freeze.as_ref()))
            h1 { "Dashboard" }
            @if blogs.is_empty() {
                p { "You are not on any blog's team yet. Ask a blog's owner to invite you." }
                @if me.user.is_admin {
                    p { "Create a blog from the command line:" }
                    pre { code { "rounds blog add --handle ceo --name \"Jane Smith\" --owner " (me.user.username) " --title \"Chief Executive\"" } }
                }
            } @else {
                h2 { "Your blogs" }
                ul class="nhsuk-list" {
                    @for (blog, role) in &blogs {
                        li {
                            a href={ "/dashboard/@" (blog.handle) } { (blog.display_name) }
                            " (" (role.as_str()) ")"
                        }
                    }
                }
            }
            @if me.user.is_admin {
                h2 { "Administration" }
                ul class="nhsuk-list" {
                    li { a href="/dashboard/admin/audit" { "Audit log" } }
                    li { a href="/dashboard/admin/freeze" { "Publishing freeze" } }
                    li { a href="/dashboard/admin/fediverse" { "Fediverse moderation" } " (blocked servers and accounts, failed deliveries, reports)" }
                }
            }
        },
        ..Page::default()
    };
    Ok(html_page(&me.chrome(&state), page))
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
    with: Option<String>,
}

fn done_message(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "saved" => Some("Draft saved"),
        "pending" => Some(
            "Changes saved. Readers still see the published version until the changes are signed off and published.",
        ),
        "published" => Some("Post published"),
        "updated" => Some("Published post updated"),
        "unpublished" => Some("Post unpublished: its address now says it has been removed"),
        "deleted" => Some("Post deleted"),
        "profile" => Some("Profile saved"),
        _ => None,
    }
}

async fn blog_posts(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let (blog, standing) = load_blog(&state, &me.user, path.into_inner()).await?;
    let blog_id = blog.id;
    let (list, stages, freeze) = state
        .db(move |conn| {
            let list: Vec<Post> = posts::for_team(conn, blog_id)?
                .into_iter()
                .filter(|p| standing.can_view(p))
                .collect();
            let ids: Vec<i64> = list.iter().map(|p| p.id).collect();
            let stages = workflow::stages_of(conn, &ids)?;
            Ok((list, stages, freeze::current(conn)?))
        })
        .await?;
    let page = Page {
        title: format!("{} – posts", blog.display_name),
        noindex: true,
        breadcrumbs: vec![("Dashboard".into(), "/dashboard".into())],
        main: html! {
            (pages::freeze_banner(freeze.as_ref()))
            @if let Some(message) = done_message(query.done.as_deref()) {
                (ui::success_banner(message))
            }
            h1 { (blog.display_name) span class="nhsuk-caption-l nhsuk-caption--bottom" { "Posts" } }
            p {
                a class="nhsuk-button" data-module="nhsuk-button" role="button" draggable="false" href={ "/dashboard/@" (blog.handle) "/new" } { "Write a new post" }
            }
            p {
                a href=(blog.path()) { "View the blog" }
                " · " a href={ "/dashboard/@" (blog.handle) "/team" } { "Team" }
                @if standing.can_withdraw() {
                    " · " a href={ "/dashboard/@" (blog.handle) "/settings" } { "Edit the profile" }
                    " · " a href={ "/dashboard/@" (blog.handle) "/replies" } { "Replies" }
                    " · " a href={ "/dashboard/@" (blog.handle) "/followers" } { "Followers" }
                    " · " a href={ "/dashboard/@" (blog.handle) "/fediverse" } { "Fediverse settings" }
                    " · " a href={ "/dashboard/@" (blog.handle) "/subscribers" } { "Email subscribers" }
                }
            }
            @if list.is_empty() {
                p { "No posts yet." }
            } @else {
                (post_table(&blog, &list, &stages))
            }
        },
        ..Page::default()
    };
    Ok(html_page(&me.chrome(&state), page))
}

fn status_tag(status: Status) -> Markup {
    let colour = match status {
        Status::Draft => "nhsuk-tag--grey",
        Status::Published => "nhsuk-tag--green",
        Status::Unpublished => "nhsuk-tag--orange",
        Status::Deleted => "nhsuk-tag--red",
    };
    html! { strong class={ "nhsuk-tag " (colour) } { (status.label()) } }
}

fn post_table(blog: &Blog, list: &[Post], stages: &[workflow::StageOf]) -> Markup {
    html! {
        table class="nhsuk-table rounds-status-list" {
            caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Posts, most recently changed first" }
            thead class="nhsuk-table__head" {
                tr class="nhsuk-table__row" {
                    th class="nhsuk-table__header" scope="col" { "Post" }
                    th class="nhsuk-table__header" scope="col" { "Status" }
                    th class="nhsuk-table__header" scope="col" { "Last changed" }
                }
            }
            tbody class="nhsuk-table__body" {
                @for post in list {
                    @let stage = stages.iter().find(|s| s.post_id == post.id);
                    tr class="nhsuk-table__row" {
                        td class="nhsuk-table__cell" {
                            a href={ "/dashboard/posts/" (post.id) } { (post.display_title()) }
                            @if post.status() == Status::Published && let Some(path) = post.path(&blog.handle) {
                                br;
                                a class="nhsuk-body-s" href=(path) { "View" span class="nhsuk-u-visually-hidden" { " " (post.display_title()) } }
                            }
                        }
                        td class="nhsuk-table__cell" {
                            (status_tag(post.status()))
                            @if let Some(s) = stage && s.stage != Stage::Published && !(s.stage == Stage::Draft && post.status() == Status::Draft) {
                                " " (pages::stage_tag(s.stage))
                                @if let Some(at) = s.scheduled_for && s.stage == Stage::Scheduled {
                                    br;
                                    span class="nhsuk-body-s" {
                                        @if s.held_at.is_some() { "Held by the freeze; was due " } @else { "Due " }
                                        (format_london(at))
                                    }
                                }
                            }
                        }
                        td class="nhsuk-table__cell" { (ui::time_element(post.updated_at)) }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The editor

/// What the editor form shows: the values as last submitted or saved.
#[derive(Debug, Default, Clone)]
struct EditorValues {
    title: String,
    summary: String,
    content_warning: String,
    body: String,
    tags: String,
    slug: String,
    image_alt: String,
}

impl EditorValues {
    /// The fields to check.
    fn fields(&self) -> PostFields<'_> {
        PostFields {
            title: &self.title,
            summary: &self.summary,
            body: &self.body,
            tags: &self.tags,
            slug: &self.slug,
            content_warning: &self.content_warning,
        }
    }

    fn from_content(content: &Content) -> Self {
        Self {
            title: content.title.clone().unwrap_or_default(),
            summary: content.summary.clone().unwrap_or_default(),
            content_warning: content.content_warning.clone().unwrap_or_default(),
            body: content.body.clone(),
            tags: content.tags_text(),
            slug: content.slug.clone().unwrap_or_default(),
            image_alt: String::new(),
        }
    }
}

/// Everything the editor view needs.
struct EditorView<'a> {
    blog: &'a Blog,
    standing: Standing,
    post: Option<&'a Post>,
    stage: Stage,
    /// The revision the form is based on.
    base: Option<&'a Revision>,
    values: &'a EditorValues,
    errors: &'a [FieldError],
    notice: Option<&'a str>,
    preview: Option<SafeHtml>,
    csrf: &'a str,
    others: &'a [Present],
    freeze: Option<&'a Freeze>,
    conflict: Option<&'a Conflict>,
    /// Seconds between autosaves and presence updates (for the script).
    autosave_seconds: u64,
    presence_seconds: u64,
}

fn presence_list(others: &[Present]) -> Markup {
    html! {
        @if !others.is_empty() {
            p class="nhsuk-body-s" {
                strong { "Also editing: " }
                @for (i, person) in others.iter().enumerate() {
                    @if i > 0 { ", " }
                    (person.username) " (since " (format_london(person.since)) ")"
                }
            }
        }
    }
}

fn conflict_panel(conflict: &Conflict) -> Markup {
    let theirs = conflict.theirs.content();
    let field_names = |field: &str| match field {
        "title" => "Title",
        "summary" => "Summary",
        "content_warning" => "Content warning",
        _ => "Text",
    };
    html! {
        div class="nhsuk-error-summary" data-module="nhsuk-error-summary" {
            div role="alert" {
                h2 class="nhsuk-error-summary__heading" {
                    (conflict.theirs.author_name) " changed the same words while you were editing"
                }
                div class="nhsuk-error-summary__body" {
                    p { "Nothing has been saved yet, and nothing is lost. Below are both versions side by side. The form under them has your version with "
                        (conflict.theirs.author_name) "'s other changes merged in: settle each passage listed, then save." }
                    ul class="nhsuk-list nhsuk-error-summary__list" {
                        @for (field, _, ours, theirs) in &conflict.clashes {
                            li {
                                a href={ "#" (field) } {
                                    (field_names(field)) ": you wrote “" (ours.trim()) "”; "
                                    (conflict.theirs.author_name) " wrote “" (theirs.trim()) "”"
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 class="nhsuk-heading-m" { "Both versions" }
        div class="nhsuk-grid-row rounds-conflict" {
            div class="nhsuk-grid-column-one-half" {
                h3 class="nhsuk-heading-s" { "Saved by " (conflict.theirs.author_name) " (revision " (conflict.theirs.number) ")" }
                (version_block("theirs", &theirs))
            }
            div class="nhsuk-grid-column-one-half" {
                h3 class="nhsuk-heading-s" { "Yours (not saved yet)" }
                (version_block("ours", &conflict.ours))
            }
        }
        p class="nhsuk-body-s" {
            "To drop your changes and keep " (conflict.theirs.author_name) "'s version, "
            a href={ "/dashboard/posts/" (conflict.theirs.post_id) } { "open the latest version" } "."
        }
    }
}

fn version_block(id: &str, content: &Content) -> Markup {
    html! {
        dl class="nhsuk-summary-list rounds-version" id={ "version-" (id) } {
            div class="nhsuk-summary-list__row" {
                dt class="nhsuk-summary-list__key" { "Title" }
                dd class="nhsuk-summary-list__value" { (content.title.as_deref().unwrap_or("(none)")) }
            }
            div class="nhsuk-summary-list__row" {
                dt class="nhsuk-summary-list__key" { "Summary" }
                dd class="nhsuk-summary-list__value" { (content.summary.as_deref().unwrap_or("(none)")) }
            }
            div class="nhsuk-summary-list__row" {
                dt class="nhsuk-summary-list__key" { "Content warning" }
                dd class="nhsuk-summary-list__value" { (content.content_warning.as_deref().unwrap_or("(none)")) }
            }
            div class="nhsuk-summary-list__row" {
                dt class="nhsuk-summary-list__key" { "Text" }
                dd class="nhsuk-summary-list__value rounds-version__text" { (content.body) }
            }
            div class="nhsuk-summary-list__row" {
                dt class="nhsuk-summary-list__key" { "Tags" }
                dd class="nhsuk-summary-list__value" { (content.tags_text()) }
            }
        }
    }
}

fn editor_page(view: &EditorView<'_>) -> Page {
    let EditorView {
        blog,
        standing,
        post,
        stage,
        base,
        values,
        errors,
        notice,
        preview,
        csrf,
        others,
        freeze,
        conflict,
        autosave_seconds,
        presence_seconds,
    } = view;
    let action = match post {
        Some(p) => format!("/dashboard/posts/{}", p.id),
        None => format!("/dashboard/@{}/new", blog.handle),
    };
    let status = post.map_or(Status::Draft, |p| p.status());
    let slug_fixed = post.is_some_and(|p| p.published_at.is_some());
    let title = if post.is_some() {
        "Edit post"
    } else {
        "New post"
    };
    let direct = standing.can_publish_directly() && freeze.is_none();
    Page {
        title: format!("{title} – {}", blog.display_name),
        noindex: true,
        editor_script: true,
        breadcrumbs: pages::trail(blog),
        // Two-thirds wide, as NHS.UK forms are: the text box is then about as wide as the
        // post will read, and the preview under it matches.
        main: html! {
            @if let Some(conflict) = conflict {
                (conflict_panel(conflict))
            }
            div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
            (pages::freeze_banner(*freeze))
            @if conflict.is_none() {
                (ui::error_summary(errors))
            }
            @if let Some(notice) = notice {
                (ui::success_banner(notice))
            }
            h1 {
                (title)
                span class="nhsuk-caption-l nhsuk-caption--bottom" {
                    (blog.display_name) " · "
                    @match status {
                        Status::Published if *stage != Stage::Published => { "Published · changes " (stage.label().to_lowercase()) }
                        Status::Draft => { (stage.label()) }
                        other if *stage != Stage::Draft => { (other.label()) " · " (stage.label()) }
                        other => { (other.label()) }
                    }
                }
            }
            @if let Some(p) = post {
                (pages::post_nav(p, "Edit"))
            }
            @if let Some(p) = post && status == Status::Published && let Some(path) = p.path(&blog.handle) {
                @if standing.can_publish_directly() {
                    p { "This post is live at " a href=(path) { (path) } ". Changes you save go out at once." }
                } @else {
                    p { "This post is live at " a href=(path) { (path) } ". Changes you save wait for sign-off: readers see them once they are approved and published." }
                }
            }
            div id="presence" class="rounds-presence" role="status" data-nobody="" {
                (presence_list(others))
            }
            form method="post" action=(action) enctype="multipart/form-data" novalidate
                data-preview-url="/dashboard/preview" data-upload-url={ "/dashboard/@" (blog.handle) "/media" }
                data-autosave-url=[post.map(|p| format!("/dashboard/posts/{}/autosave", p.id))]
                data-presence-url=[post.map(|p| format!("/dashboard/posts/{}/presence", p.id))]
                data-autosave-seconds=(autosave_seconds) data-presence-seconds=(presence_seconds) {
                (ui::csrf_field(csrf))
                @if let Some(base) = base {
                    input type="hidden" name="base_revision" value=(base.id);
                }
                (ui::input(Field::text("title", "Title (optional)")
                    .hint("Give an article a title. Leave it empty for a short update, which is shown in full everywhere."),
                    &values.title, errors))
                (ui::textarea(Field::text("summary", "Summary (articles only, optional)")
                    .hint("One or two sentences shown in lists, feeds and on Mastodon."),
                    &values.summary, 2, errors))
                (ui::input(Field::text("content_warning", "Content warning (optional)")
                    .hint("For a post some readers may find distressing, such as one about a death. Mastodon shows these words and hides the text until the reader chooses to see it; the web page and emails show them above the text."),
                    &values.content_warning, errors))
                (ui::textarea(Field::text("body", "Text")
                    .hint("Write in Markdown: **bold**, _italic_, [link text](https://…), ## Heading, - list item, > quote."),
                    &values.body, 16, errors))
                p class="nhsuk-body-s rounds-autosave" id="autosave-status" role="status" {}
                div class="rounds-editor__preview-wrapper" {
                    h2 class="nhsuk-heading-s" { "Preview" }
                    // Not a live region: with the editor's script it changes as the person
                    // types, and reading it out at every pause would drown their typing.
                    div class="rounds-editor__preview rounds-post__body" id="preview" {
                        @if let Some(html) = preview {
                            (html)
                        } @else {
                            p class="nhsuk-body-s rounds-editor__placeholder" { "Press “Preview” to see the text as readers will." }
                        }
                    }
                }
                (ui::input(Field::text("tags", "Tags (optional)")
                    .hint("Separate tags with commas, for example: Winter, StaffWellbeing"),
                    &values.tags, errors))
                @if !slug_fixed {
                    (ui::input(Field::text("slug", "Web address (optional)")
                        .hint(&format!("The end of the post's address: /@{}/your-words. Leave empty to make one from the title.", blog.handle)),
                        &values.slug, errors))
                }
                div class="nhsuk-button-group" {
                    @if status == Status::Published {
                        @if direct {
                            button class="nhsuk-button" data-module="nhsuk-button" type="submit" name="action" value="save" { "Update post" }
                        } @else {
                            button class="nhsuk-button" data-module="nhsuk-button" type="submit" name="action" value="save" { "Save changes" }
                        }
                    } @else {
                        button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" name="action" value="save" { "Save draft" }
                        @if direct {
                            button class="nhsuk-button" data-module="nhsuk-button" type="submit" name="action" value="publish" { "Publish" }
                        }
                    }
                    button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" name="action" value="preview" id="preview-button" { "Preview" }
                }
                @if post.is_some() && !direct {
                    p class="nhsuk-body-s" {
                        "To submit the post for sign-off, approve, schedule or publish it, go to "
                        a href={ "/dashboard/posts/" (post.map_or(0, |p| p.id)) "/review" } { "review and sign-off" } "."
                    }
                }
                fieldset class="nhsuk-fieldset" aria-describedby="image-hint" {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--m" {
                        h2 class="nhsuk-fieldset__heading" { "Add an image" }
                    }
                    div class="nhsuk-hint" id="image-hint" {
                        "JPEG, PNG, GIF or WebP. The image is added to the text where your cursor is (or at the end)."
                    }
                    (ui::file_input(Field::text("image", "Image file"), "image/jpeg,image/png,image/gif,image/webp", errors))
                    (ui::textarea(Field::text("image_alt", "Alt text")
                        .hint("Describe what the image shows for people who cannot see it, for example: “Ward 7 nurses holding their award”."),
                        &values.image_alt, 2, errors))
                    button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" name="action" value="upload" id="upload-button" { "Upload image" }
                }
            }
            @if let Some(p) = post {
                h2 class="nhsuk-heading-m" { "More actions" }
                @if standing.can_withdraw() && status == Status::Published {
                    form method="post" action={ "/dashboard/posts/" (p.id) "/unpublish" } {
                        (ui::csrf_field(csrf))
                        button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Unpublish" }
                    }
                }
                @if standing.can_withdraw() || p.published_at.is_none() {
                    p { a href={ "/dashboard/posts/" (p.id) "/delete" } { "Delete this post" } }
                }
            }
        } } },
        ..Page::default()
    }
}

/// The seconds between autosaves and presence updates, from the settings.
fn intervals(state: &AppState) -> (u64, u64) {
    (
        state.settings.autosave_seconds,
        state.settings.presence_seconds,
    )
}

/// How long a presence row lasts without a refresh: three intervals.
fn presence_expiry(state: &AppState) -> chrono::Duration {
    let seconds = i64::try_from(state.settings.presence_seconds.saturating_mul(3)).unwrap_or(60);
    chrono::Duration::seconds(seconds.max(5))
}

async fn new_post(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (blog, standing) = load_blog(&state, &me.user, path.into_inner()).await?;
    let freeze = state.db(|conn| Ok(freeze::current(conn)?)).await?;
    let values = EditorValues::default();
    let (autosave_seconds, presence_seconds) = intervals(&state);
    let page = editor_page(&EditorView {
        blog: &blog,
        standing,
        post: None,
        stage: Stage::Draft,
        base: None,
        values: &values,
        errors: &[],
        notice: None,
        preview: None,
        csrf: &me.csrf_token,
        others: &[],
        freeze: freeze.as_ref(),
        conflict: None,
        autosave_seconds,
        presence_seconds,
    });
    Ok(html_page(&me.chrome(&state), page))
}

fn merged_message(with: Option<&str>) -> Option<String> {
    let names = with?.trim();
    (!names.is_empty()).then(|| {
        format!(
            "Saved. {names} saved changes while you were editing; theirs and yours were merged. Check the text below."
        )
    })
}

async fn edit_post(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let context = editable(&state, &me.user, path.into_inner()).await?;
    let post = context.post.clone();
    let user_id = me.user.id;
    let expiry = presence_expiry(&state);
    let (head, others) = state
        .db(move |conn| {
            let head = revisions::ensure_head(conn, &post)?;
            // Opening the editor counts as being present, with or without the script.
            presence::touch(conn, post.id, user_id, "page", expiry)?;
            let others = presence::others(conn, post.id, user_id, expiry)?;
            Ok((head, others))
        })
        .await?;
    let values = EditorValues::from_content(&head.content());
    let merged = merged_message(query.with.as_deref());
    let notice = match query.done.as_deref() {
        Some("merged") => merged.as_deref(),
        other => done_message(other),
    };
    let (autosave_seconds, presence_seconds) = intervals(&state);
    let page = editor_page(&EditorView {
        blog: &context.blog,
        standing: context.standing,
        post: Some(&context.post),
        stage: context.workflow.stage(),
        base: Some(&head),
        values: &values,
        errors: &[],
        notice,
        preview: None,
        csrf: &me.csrf_token,
        others: &others,
        freeze: context.freeze.as_ref(),
        conflict: None,
        autosave_seconds,
        presence_seconds,
    });
    Ok(html_page(&me.chrome(&state), page))
}

/// The editor's form as posted.
#[derive(MultipartForm)]
struct EditorForm {
    csrf_token: Option<Text<String>>,
    action: Option<Text<String>>,
    base_revision: Option<Text<String>>,
    title: Option<Text<String>>,
    summary: Option<Text<String>>,
    content_warning: Option<Text<String>>,
    body: Option<Text<String>>,
    tags: Option<Text<String>>,
    slug: Option<Text<String>>,
    image: Option<TempFile>,
    image_alt: Option<Text<String>>,
}

fn text(field: &Option<Text<String>>) -> String {
    field.as_ref().map(|t| t.0.clone()).unwrap_or_default()
}

impl EditorForm {
    fn values(&self) -> EditorValues {
        EditorValues {
            title: text(&self.title),
            summary: text(&self.summary),
            content_warning: text(&self.content_warning),
            body: text(&self.body),
            tags: text(&self.tags),
            slug: text(&self.slug),
            image_alt: text(&self.image_alt),
        }
    }

    /// The uploaded file, if one was chosen (browsers send an empty part otherwise).
    fn image(&self) -> Option<&TempFile> {
        self.image.as_ref().filter(|f| f.size > 0)
    }
}

async fn create_post(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: MultipartForm<EditorForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&text(&form.csrf_token))?;
    let (blog, standing) = load_blog(&state, &me.user, path.into_inner()).await?;
    let freeze = state.db(|conn| Ok(freeze::current(conn)?)).await?;
    let context = EditorContext {
        blog,
        standing,
        post: None,
        stage: Stage::Draft,
        base: None,
        freeze,
    };
    handle_editor(&state, &me, context, form.into_inner()).await
}

async fn save_post(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: MultipartForm<EditorForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&text(&form.csrf_token))?;
    let context = editable(&state, &me.user, path.into_inner()).await?;
    let base_id = text(&form.base_revision).trim().parse::<i64>().ok();
    let post = context.post.clone();
    let base = state
        .db(move |conn| {
            let head = revisions::ensure_head(conn, &post)?;
            Ok(match base_id {
                Some(id) if id != head.id => revisions::find_id(conn, id)?
                    .filter(|r| r.post_id == post.id)
                    .or(Some(head)),
                _ => Some(head),
            })
        })
        .await?;
    let context = EditorContext {
        stage: context.workflow.stage(),
        blog: context.blog,
        standing: context.standing,
        post: Some(context.post),
        base: base.map(|b| Revision {
            // The form goes on naming the revision it was based on.
            id: base_id.unwrap_or(b.id),
            ..b
        }),
        freeze: context.freeze,
    };
    handle_editor(&state, &me, context, form.into_inner()).await
}

/// What the editor handler knows about the post being written.
struct EditorContext {
    blog: Blog,
    standing: Standing,
    post: Option<Post>,
    stage: Stage,
    base: Option<Revision>,
    freeze: Option<Freeze>,
}

/// Does what the pressed button asks. A form that fails a check comes back with every
/// value as entered and nothing saved.
async fn handle_editor(
    state: &AppState,
    me: &SignedIn,
    context: EditorContext,
    form: EditorForm,
) -> Result<HttpResponse, AppError> {
    let mut values = form.values();
    let action = text(&form.action);
    let (autosave_seconds, presence_seconds) = intervals(state);
    let rerender = |values: &EditorValues,
                    errors: &[FieldError],
                    notice: Option<&str>,
                    preview: Option<SafeHtml>,
                    status: u16,
                    conflict: Option<&Conflict>| {
        let base = conflict.map_or(context.base.as_ref(), |c| Some(&c.theirs));
        let page = editor_page(&EditorView {
            blog: &context.blog,
            standing: context.standing,
            post: context.post.as_ref(),
            stage: context.stage,
            base,
            values,
            errors,
            notice,
            preview,
            csrf: &me.csrf_token,
            others: &[],
            freeze: context.freeze.as_ref(),
            conflict,
            autosave_seconds,
            presence_seconds,
        });
        let mut response = if status == 200 {
            html_page(&me.chrome(state), page)
        } else {
            html_page_invalid(&me.chrome(state), page)
        };
        if let Ok(code) = actix_web::http::StatusCode::from_u16(status) {
            *response.status_mut() = code;
        }
        response
    };

    // An attached image is stored and added to the text whatever button was pressed,
    // so it is never silently dropped.
    if form.image().is_some() || action == "upload" {
        match store_upload(
            state,
            &me.user,
            &context.blog,
            form.image(),
            &values.image_alt,
        )
        .await
        {
            Ok(stored) => {
                values.body = append_image(&values.body, &stored);
                values.image_alt.clear();
                if action == "upload" {
                    return Ok(rerender(
                        &values,
                        &[],
                        Some("Image added at the end of the text. Save to keep it."),
                        None,
                        200,
                        None,
                    ));
                }
            }
            Err(AppError::Validation(errors)) => {
                return Ok(rerender(&values, &errors, None, None, 400, None));
            }
            Err(other) => return Err(other),
        }
    }

    if action == "preview" {
        let preview = SafeHtml::from_markdown(&values.body);
        return Ok(rerender(&values, &[], None, Some(preview), 200, None));
    }
    let publish = match action.as_str() {
        "save" => false,
        "publish" => true,
        _ => {
            return Ok(rerender(
                &values,
                &[FieldError::new(
                    "",
                    "Choose what to do: save, publish or preview",
                )],
                None,
                None,
                400,
                None,
            ));
        }
    };
    let input = match PostInput::parse(&values.fields()) {
        Ok(input) => input,
        Err(errors) => return Ok(rerender(&values, &errors, None, None, 400, None)),
    };
    // A save that can go out needs the accounts its text mentions, looked up now: the
    // save's transaction holds no network I/O.
    let may_go_live = publish
        || (context.post.as_ref().map(Post::status) == Some(Status::Published)
            && context.standing.can_publish_directly());
    let mentions = if may_go_live {
        mentions::resolve(&state.federation, &input.body_markdown).await
    } else {
        Mentions::none()
    };
    let blog = context.blog.clone();
    let post = context.post.clone();
    let base_revision = context.base.as_ref().map(|b| b.id);
    let actor = Actor::web(&me.user);
    let saved = state
        .db(move |conn| {
            publishing::save(
                conn,
                &SaveRequest {
                    blog: &blog,
                    post: post.as_ref(),
                    actor: &actor,
                    input: &input,
                    base_revision,
                    kind: Kind::Save,
                    publish,
                    mentions: &mentions,
                },
            )
        })
        .await;
    let saved = match saved {
        Ok(saved) => saved,
        Err(AppError::Validation(errors)) => {
            return Ok(rerender(&values, &errors, None, None, 400, None));
        }
        Err(AppError::Conflict(message)) => {
            let errors = [FieldError::new("", capitalise(&message))];
            return Ok(rerender(&values, &errors, None, None, 409, None));
        }
        Err(other) => return Err(other),
    };
    // A save that finds its words already kept (the script autosaved them a moment
    // before) is still, to the person, a save: `unchanged` makes no difference here.
    let (saved, revision, merged_with, live) = match saved {
        Saved::Saved {
            post,
            revision,
            merged_with,
            live,
            unchanged: _,
        } => (post, revision, merged_with, live),
        Saved::Conflict(conflict) => {
            let values = EditorValues {
                image_alt: values.image_alt.clone(),
                ..EditorValues::from_content(&conflict.proposal)
            };
            return Ok(rerender(&values, &[], None, None, 409, Some(&conflict)));
        }
        Saved::Stale { .. } => {
            return Err(AppError::Conflict(
                "the post changed since you opened it: save again to merge".into(),
            ));
        }
    };
    // Deliveries to followers were queued with the save: start them now.
    state.jobs_wake.notify_one();
    let was_published = context.post.as_ref().map(Post::status) == Some(Status::Published);
    let done = match (live, was_published) {
        (true, false) => "published",
        (true, true) => "updated",
        (false, true) => "pending",
        (false, false) => "saved",
    };
    tracing::info!(post = saved.id, revision = revision.number, blog = %context.blog.handle, user = %me.user.username, done, "post saved");
    if !merged_with.is_empty() {
        let names = url::form_urlencoded::byte_serialize(merged_with.join(", ").as_bytes())
            .collect::<String>();
        return Ok(see_other(&format!(
            "/dashboard/posts/{}?done=merged&with={names}",
            saved.id
        )));
    }
    Ok(see_other(&format!(
        "/dashboard/posts/{}?done={done}",
        saved.id
    )))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Autosave and presence (the editor's script)

/// The fields the script sends.
#[derive(Deserialize)]
struct AutosaveForm {
    csrf_token: String,
    base_revision: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    content_warning: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    slug: String,
}

#[derive(Serialize)]
struct AutosaveAnswer {
    /// `saved`, `unchanged`, `stale`, `invalid` or `forbidden`.
    status: &'static str,
    /// The revision the editor is now based on.
    revision: Option<i64>,
    /// Its number, for people.
    number: Option<i32>,
    /// Who saved the latest revision (when stale).
    by: Option<String>,
    /// What is wrong (when invalid).
    errors: Vec<FieldAnswer>,
}

impl AutosaveAnswer {
    fn new(status: &'static str) -> Self {
        Self {
            status,
            revision: None,
            number: None,
            by: None,
            errors: Vec::new(),
        }
    }
}

/// `POST /dashboard/posts/{id}/autosave`: saves what is typed as an autosave revision
/// (a person's run of autosaves shows once in history). Never publishes and never
/// merges: if someone else saved in between it answers `stale`, and the person saves
/// with the button, which merges.
async fn autosave(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<AutosaveForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let context = match editable(&state, &me.user, path.into_inner()).await {
        Ok(context) => context,
        Err(AppError::Forbidden | AppError::Gone) => {
            return Ok(HttpResponse::Forbidden().json(AutosaveAnswer::new("forbidden")));
        }
        Err(other) => return Err(other),
    };
    let input = match PostInput::parse(&PostFields {
        title: &form.title,
        summary: &form.summary,
        body: &form.body,
        tags: &form.tags,
        slug: &form.slug,
        content_warning: &form.content_warning,
    }) {
        Ok(input) => input,
        Err(errors) => {
            let mut answer = AutosaveAnswer::new("invalid");
            answer.errors = errors
                .into_iter()
                .map(|e| FieldAnswer {
                    field: e.field,
                    message: e.message,
                })
                .collect();
            return Ok(HttpResponse::BadRequest().json(answer));
        }
    };
    let base_revision = form
        .base_revision
        .as_deref()
        .and_then(|b| b.trim().parse::<i64>().ok());
    let actor = Actor::web(&me.user);
    let blog = context.blog.clone();
    let post = context.post.clone();
    let saved = state
        .db(move |conn| {
            publishing::save(
                conn,
                &SaveRequest {
                    blog: &blog,
                    post: Some(&post),
                    actor: &actor,
                    input: &input,
                    base_revision,
                    kind: Kind::Autosave,
                    publish: false,
                    mentions: &Mentions::none(),
                },
            )
        })
        .await;
    let answer = match saved {
        Ok(Saved::Saved {
            revision,
            unchanged,
            ..
        }) => AutosaveAnswer {
            revision: Some(revision.id),
            number: Some(revision.number),
            ..AutosaveAnswer::new(if unchanged { "unchanged" } else { "saved" })
        },
        Ok(Saved::Stale { head }) => {
            return Ok(HttpResponse::Conflict().json(AutosaveAnswer {
                revision: Some(head.id),
                number: Some(head.number),
                by: Some(head.author_name),
                ..AutosaveAnswer::new("stale")
            }));
        }
        Ok(Saved::Conflict(_)) => return Err(AppError::internal("an autosave never merges")),
        Err(AppError::Forbidden) => {
            return Ok(HttpResponse::Forbidden().json(AutosaveAnswer::new("forbidden")));
        }
        Err(AppError::Validation(errors)) => {
            let mut answer = AutosaveAnswer::new("invalid");
            answer.errors = errors
                .into_iter()
                .map(|e| FieldAnswer {
                    field: e.field,
                    message: e.message,
                })
                .collect();
            return Ok(HttpResponse::BadRequest().json(answer));
        }
        Err(other) => return Err(other),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

#[derive(Deserialize)]
struct PresenceForm {
    csrf_token: String,
    client_id: String,
}

#[derive(Serialize)]
struct PresenceAnswer {
    others: Vec<PresentAnswer>,
    /// The latest revision, so the editor can say when someone else saved.
    head: Option<HeadAnswer>,
    stage: &'static str,
}

#[derive(Serialize)]
struct PresentAnswer {
    username: String,
    since: String,
}

#[derive(Serialize)]
struct HeadAnswer {
    id: i64,
    number: i32,
    by: String,
    by_me: bool,
    at: String,
}

/// `POST /dashboard/posts/{id}/presence`: the editor says it is still open and hears
/// who else is here and what the latest revision is. 403 once the person may no longer
/// edit (their role was changed or removed).
async fn presence_ping(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<PresenceForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let client_id = presence::parse_client_id(&form.client_id)
        .ok_or_else(|| AppError::invalid("client_id", "not an editor id"))?;
    let context = match editable(&state, &me.user, path.into_inner()).await {
        Ok(context) => context,
        Err(AppError::Forbidden | AppError::Gone) => {
            return Ok(HttpResponse::Forbidden().json(serde_json::json!({"status": "forbidden"})));
        }
        Err(other) => return Err(other),
    };
    let user_id = me.user.id;
    let expiry = presence_expiry(&state);
    let post = context.post.clone();
    let (others, head) = state
        .db(move |conn| {
            presence::touch(conn, post.id, user_id, &client_id, expiry)?;
            // The page's own row (made when it was served) is this editor too.
            presence::leave(conn, post.id, user_id, "page")?;
            Ok((
                presence::others(conn, post.id, user_id, expiry)?,
                revisions::head(conn, post.id)?,
            ))
        })
        .await?;
    let answer = PresenceAnswer {
        others: others
            .into_iter()
            .map(|p| PresentAnswer {
                since: format_london(p.since),
                username: p.username,
            })
            .collect(),
        head: head.map(|h| HeadAnswer {
            id: h.id,
            number: h.number,
            by_me: h.author_id == Some(user_id),
            by: h.author_name,
            at: format_london(h.created_at),
        }),
        stage: context.workflow.stage().label(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

/// `POST /dashboard/posts/{id}/presence/leave`: the editor closed (sent as a beacon).
async fn presence_leave(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<PresenceForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let Some(client_id) = presence::parse_client_id(&form.client_id) else {
        return Ok(HttpResponse::NoContent().finish());
    };
    let post_id = path.into_inner();
    let user_id = me.user.id;
    state
        .db(move |conn| Ok(presence::leave(conn, post_id, user_id, &client_id)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn append_image(body: &str, media: &Media) -> String {
    let alt = media.alt_text.replace(['[', ']'], "");
    let separator = if body.trim().is_empty() { "" } else { "\n\n" };
    format!("{}{separator}![{alt}]({})", body.trim_end(), media.path())
}

/// Checks and stores one uploaded image for a blog.
async fn store_upload(
    state: &AppState,
    user: &User,
    blog: &Blog,
    file: Option<&TempFile>,
    alt: &str,
) -> Result<Media, AppError> {
    let mut errors = Vec::new();
    if file.is_none() {
        errors.push(FieldError::new("image", "Choose an image file to upload"));
    }
    let alt = match media::parse_alt_text(alt) {
        Ok(alt) => Some(alt),
        Err(e) => {
            errors.push(FieldError::new("image_alt", e));
            None
        }
    };
    let (Some(file), Some(alt), true) = (file, alt, errors.is_empty()) else {
        return Err(AppError::Validation(errors));
    };
    if file.size as u64 > state.settings.upload_max_bytes {
        return Err(AppError::invalid(
            "image",
            format!(
                "The image must be {} or smaller",
                human_size(state.settings.upload_max_bytes)
            ),
        ));
    }
    let temp_path = file.file.path().to_owned();
    let media_dir = state.settings.media_dir();
    let blog_id = blog.id;
    let user_id = user.id;
    state
        .db(move |conn| {
            let bytes = std::fs::read(&temp_path)?;
            let image = media::process_image(&bytes).map_err(|e| AppError::invalid("image", e))?;
            media::store(conn, &media_dir, blog_id, user_id, &image, &alt)
        })
        .await
}

/// A size in the units people use: "10 MB", "64 KB".
pub fn human_size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

#[derive(MultipartForm)]
struct UploadForm {
    csrf_token: Option<Text<String>>,
    image: Option<TempFile>,
    image_alt: Option<Text<String>>,
}

#[derive(Serialize)]
struct UploadAnswer {
    markdown: String,
    url: String,
}

#[derive(Serialize)]
struct ErrorAnswer {
    errors: Vec<FieldAnswer>,
}

#[derive(Serialize)]
struct FieldAnswer {
    field: &'static str,
    message: String,
}

/// `POST /dashboard/@h/media`: the editor's script uploads an image and gets the
/// Markdown to insert.
async fn upload_media(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: MultipartForm<UploadForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&text(&form.csrf_token))?;
    let (blog, _) = load_blog(&state, &me.user, path.into_inner()).await?;
    let file = form.image.as_ref().filter(|f| f.size > 0);
    match store_upload(&state, &me.user, &blog, file, &text(&form.image_alt)).await {
        Ok(stored) => Ok(HttpResponse::Created().json(UploadAnswer {
            markdown: append_image("", &stored),
            url: stored.path(),
        })),
        Err(AppError::Validation(errors)) => Ok(HttpResponse::BadRequest().json(ErrorAnswer {
            errors: errors
                .into_iter()
                .map(|e| FieldAnswer {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        })),
        Err(other) => Err(other),
    }
}

#[derive(Deserialize)]
struct PreviewForm {
    csrf_token: String,
    body: String,
}

/// `POST /dashboard/preview`: the editor's script sends the text as it is typed and gets
/// back the sanitised HTML readers would see.
async fn preview(me: SignedIn, form: web::Form<PreviewForm>) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    if form.body.chars().count() > posts::MAX_BODY_CHARS {
        return Err(AppError::PayloadTooLarge);
    }
    let html = SafeHtml::from_markdown(&form.body);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html.as_str().to_owned()))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: String,
}

async fn unpublish_post(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let context = load_post(&state, &me.user, path.into_inner()).await?;
    if !context.standing.can_withdraw() {
        return Err(AppError::Forbidden);
    }
    let actor = Actor::web(&me.user);
    let post = context.post;
    let post = state
        .db(move |conn| publishing::unpublish(conn, &post, &actor))
        .await?;
    state.jobs_wake.notify_one();
    tracing::info!(post = post.id, user = %me.user.username, "post unpublished");
    Ok(see_other(&format!(
        "/dashboard/posts/{}?done=unpublished",
        post.id
    )))
}

/// A post the person may delete: editors any; contributors their own, never published.
async fn deletable(state: &AppState, user: &User, id: i64) -> Result<PostContext, AppError> {
    let context = load_post(state, user, id).await?;
    let own_draft = context
        .standing
        .can_edit(&context.post, context.workflow.stage())
        && context.post.published_at.is_none();
    if !(context.standing.can_withdraw() || own_draft) {
        return Err(AppError::Forbidden);
    }
    Ok(context)
}

async fn confirm_delete(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let PostContext { post, blog, .. } = deletable(&state, &me.user, path.into_inner()).await?;
    let was_public = post.published_at.is_some();
    let page = Page {
        title: "Delete this post?".into(),
        noindex: true,
        breadcrumbs: pages::trail(&blog),
        main: html! {
            h1 { "Delete “" (post.display_title()) "”?" }
            @if was_public {
                p { "Its address will say the post has been removed. This cannot be undone." }
            } @else {
                p { "The draft will be gone for good. This cannot be undone." }
            }
            form method="post" action={ "/dashboard/posts/" (post.id) "/delete" } {
                (ui::csrf_field(&me.csrf_token))
                button class="nhsuk-button nhsuk-button--warning" data-module="nhsuk-button" type="submit" { "Delete post" }
            }
            p { a href={ "/dashboard/posts/" (post.id) } { "Cancel and go back to the post" } }
        },
        ..Page::default()
    };
    Ok(html_page(&me.chrome(&state), page))
}

async fn delete_post(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let PostContext { post, blog, .. } = deletable(&state, &me.user, path.into_inner()).await?;
    let id = post.id;
    let actor = Actor::web(&me.user);
    state
        .db(move |conn| publishing::delete(conn, &post, &actor))
        .await?;
    state.jobs_wake.notify_one();
    tracing::info!(post = id, user = %me.user.username, "post deleted");
    Ok(see_other(&format!(
        "/dashboard/@{}?done=deleted",
        blog.handle
    )))
}
