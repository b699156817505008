//! A post's history: every revision with who saved it, when and what changed; any two
//! compared word by word; any one restored as a new revision.

use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::{PostContext, load_post, see_other};
use crate::domain::html::SafeHtml;
use crate::domain::posts::Post;
use crate::editorial::diff::{self, Piece};
use crate::editorial::revisions::{self, Content, HistoryEntry, Kind, Revision};
use crate::editorial::schedule::format_london;
use crate::editorial::{Actor, workflow};
use crate::error::AppError;
use crate::federation::mentions::Mentions;
use crate::publishing::{self, SaveRequest, Saved};
use crate::web::AppState;
use crate::web::auth::{SignedIn, html_page};
use crate::web::ui::{self, Page};

/// Routes under `/dashboard`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/posts/{id}/history", web::get().to(history))
        .route("/posts/{id}/revisions/{number}", web::get().to(revision))
        .route(
            "/posts/{id}/revisions/{number}/restore",
            web::post().to(restore),
        )
        .route("/posts/{id}/diff", web::get().to(compare));
}

async fn history(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let context = load_post(&state, &me.user, path.into_inner()).await?;
    let post_id = context.post.id;
    let flow = context.workflow.clone();
    let (entries, approved_revision) = state
        .db(move |conn| {
            let post = crate::domain::posts::find(conn, post_id)?.ok_or(AppError::NotFound)?;
            revisions::ensure_head(conn, &post)?;
            let approved = match flow.approval_id {
                Some(id) => workflow::approval(conn, id)?.map(|a| a.revision_id),
                None => None,
            };
            Ok((revisions::history(conn, post_id)?, approved))
        })
        .await?;
    let post = &context.post;
    let page = Page {
        title: format!("History of “{}”", post.display_title()),
        noindex: true,
        breadcrumbs: super::post_trail(&context.blog, post),
        main: html! {
            h1 {
                "History"
                span class="nhsuk-caption-l nhsuk-caption--bottom" { (post.display_title()) }
            }
            (super::post_nav(post, "History"))
            p { "Every save is kept. A run of one person's autosaves shows as one line." }
            (compare_form(post, &entries, None, None))
            table class="nhsuk-table rounds-history" {
                caption class="nhsuk-table__caption" { "Revisions, newest first" }
                thead class="nhsuk-table__head" {
                    tr class="nhsuk-table__row" {
                        th class="nhsuk-table__header" scope="col" { "Revision" }
                        th class="nhsuk-table__header" scope="col" { "Saved" }
                        th class="nhsuk-table__header" scope="col" { "What changed" }
                        th class="nhsuk-table__header" scope="col" { "Compare" }
                    }
                }
                tbody class="nhsuk-table__body" {
                    @for (i, entry) in entries.iter().enumerate() {
                        @let r = &entry.revision;
                        tr class="nhsuk-table__row" {
                            td class="nhsuk-table__cell" {
                                a href={ "/dashboard/posts/" (post.id) "/revisions/" (r.number) } { "Revision " (r.number) }
                                @if context.workflow.live_revision_id == Some(r.id) { br; strong class="nhsuk-tag nhsuk-tag--green" { "Live" } }
                                @if approved_revision == Some(r.id) { br; strong class="nhsuk-tag nhsuk-tag--blue" { "Approved" } }
                            }
                            td class="nhsuk-table__cell" {
                                (r.author_name) br;
                                span class="nhsuk-body-s" { (format_london(r.created_at)) }
                            }
                            td class="nhsuk-table__cell" {
                                (r.kind().label()) ": " (r.change_summary)
                                @if entry.folded > 0 {
                                    br; span class="nhsuk-body-s" { "Includes " (entry.folded) " earlier autosave" @if entry.folded > 1 { "s" } }
                                }
                            }
                            td class="nhsuk-table__cell" {
                                @if let Some(older) = entries.get(i + 1) {
                                    a href={ "/dashboard/posts/" (post.id) "/diff?from=" (older.revision.number) "&to=" (r.number) } {
                                        "Changes" span class="nhsuk-u-visually-hidden" { " from revision " (older.revision.number) " to " (r.number) }
                                    }
                                }
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

/// Two menus of revisions and a Compare button: a GET form, so it works without script.
fn compare_form(
    post: &Post,
    entries: &[HistoryEntry],
    from: Option<i32>,
    to: Option<i32>,
) -> Markup {
    if entries.len() < 2 {
        return html! {};
    }
    let from = from.or_else(|| entries.get(1).map(|e| e.revision.number));
    let to = to.or_else(|| entries.first().map(|e| e.revision.number));
    html! {
        form method="get" action={ "/dashboard/posts/" (post.id) "/diff" } class="rounds-compare" {
            fieldset class="nhsuk-fieldset" {
                legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Compare two revisions" }
                div class="rounds-compare__fields" {
                    @for (name, label, chosen) in [("from", "Older", from), ("to", "Newer", to)] {
                        div class="nhsuk-form-group" {
                            label class="nhsuk-label" for={ "compare-" (name) } { (label) }
                            select class="nhsuk-select" id={ "compare-" (name) } name=(name) {
                                @for entry in entries {
                                    option value=(entry.revision.number) selected[chosen == Some(entry.revision.number)] {
                                        "Revision " (entry.revision.number) " – " (entry.revision.author_name)
                                    }
                                }
                            }
                        }
                    }
                }
                button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Compare" }
            }
        }
    }
}

async fn load_revision(
    state: &AppState,
    me: &SignedIn,
    id: i64,
    number: i32,
) -> Result<(PostContext, Revision, Revision), AppError> {
    let context = load_post(state, &me.user, id).await?;
    let post = context.post.clone();
    let (revision, head) = state
        .db(move |conn| {
            let head = revisions::ensure_head(conn, &post)?;
            let revision = revisions::find(conn, post.id, number)?.ok_or(AppError::NotFound)?;
            Ok((revision, head))
        })
        .await?;
    Ok((context, revision, head))
}

async fn revision(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(i64, i32)>,
) -> Result<HttpResponse, AppError> {
    let (id, number) = path.into_inner();
    let (context, revision, head) = load_revision(&state, &me, id, number).await?;
    let post = &context.post;
    let content = revision.content();
    let can_restore =
        context.standing.can_edit(post, context.workflow.stage()) && revision.id != head.id;
    let page = Page {
        title: format!("Revision {number} of “{}”", post.display_title()),
        noindex: true,
        breadcrumbs: super::post_trail(&context.blog, post),
        main: html! {
            div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
                h1 {
                    "Revision " (revision.number)
                    span class="nhsuk-caption-l nhsuk-caption--bottom" { (post.display_title()) }
                }
                (super::post_nav(post, ""))
                p {
                    (revision.kind().label()) " by " (revision.author_name) ", " (format_london(revision.created_at)) ". "
                    (revision.change_summary) "."
                }
                @if revision.id == head.id { p { strong { "This is the latest revision." } } }
                dl class="nhsuk-summary-list" {
                    div class="nhsuk-summary-list__row" {
                        dt class="nhsuk-summary-list__key" { "Title" }
                        dd class="nhsuk-summary-list__value" { (content.title.as_deref().unwrap_or("(none: a short update)")) }
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
                        dt class="nhsuk-summary-list__key" { "Tags" }
                        dd class="nhsuk-summary-list__value" { (content.tags_text()) }
                    }
                }
                h2 { "Text" }
                div class="rounds-post__body rounds-revision" { (SafeHtml::from_markdown(&content.body)) }
                details class="nhsuk-details" {
                    summary class="nhsuk-details__summary" { span class="nhsuk-details__summary-text" { "The text as written (Markdown)" } }
                    div class="nhsuk-details__text" { pre class="rounds-version__text" { (content.body) } }
                }
                p {
                    a href={ "/dashboard/posts/" (post.id) "/diff?from=" (revision.number) "&to=" (head.number) } { "Compare with the latest revision" }
                }
                @if can_restore {
                    form method="post" action={ "/dashboard/posts/" (post.id) "/revisions/" (revision.number) "/restore" } {
                        (ui::csrf_field(&me.csrf_token))
                        input type="hidden" name="head" value=(head.id);
                        p { "Restoring saves this revision's words as a new revision; nothing in the history is lost." }
                        button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Restore revision " (revision.number) }
                    }
                }
            } }
        },
        ..Page::default()
    };
    Ok(html_page(&me.chrome(&state), page))
}

#[derive(Deserialize)]
struct RestoreForm {
    csrf_token: String,
    head: Option<i64>,
}

async fn restore(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(i64, i32)>,
    form: web::Form<RestoreForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (id, number) = path.into_inner();
    let (context, revision, head) = load_revision(&state, &me, id, number).await?;
    if !context
        .standing
        .can_edit(&context.post, context.workflow.stage())
    {
        return Err(AppError::Forbidden);
    }
    if form.head.is_some_and(|h| h != head.id) {
        return Err(AppError::Conflict(
            "the post changed since you opened this page: look at the history again".into(),
        ));
    }
    let actor = Actor::web(&me.user);
    let input = revision.content().to_input();
    let saved = state
        .db(move |conn| {
            publishing::save(
                conn,
                &SaveRequest {
                    blog: &context.blog,
                    post: Some(&context.post),
                    actor: &actor,
                    input: &input,
                    base_revision: Some(head.id),
                    kind: Kind::Restore,
                    publish: false,
                    // A restore never goes out by itself.
                    mentions: &Mentions::none(),
                },
            )
        })
        .await?;
    // An owner's restore of a live post goes out at once: start its deliveries.
    state.jobs_wake.notify_one();
    match saved {
        Saved::Saved { .. } => Ok(see_other(&format!("/dashboard/posts/{id}?done=saved"))),
        Saved::Conflict(_) | Saved::Stale { .. } => Err(AppError::Conflict(
            "the post changed while restoring: look at the history again".into(),
        )),
    }
}

#[derive(Deserialize)]
struct CompareQuery {
    from: Option<i32>,
    to: Option<i32>,
}

async fn compare(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    query: web::Query<CompareQuery>,
) -> Result<HttpResponse, AppError> {
    let context = load_post(&state, &me.user, path.into_inner()).await?;
    let post_id = context.post.id;
    let (from, to) = (query.from, query.to);
    let (entries, older, newer) = state
        .db(move |conn| {
            let entries = revisions::history(conn, post_id)?;
            let pick = |conn: &mut crate::db::DbConnection,
                        n: Option<i32>|
             -> Result<Revision, AppError> {
                match n {
                    Some(n) => revisions::find(conn, post_id, n)?.ok_or(AppError::NotFound),
                    None => Err(AppError::invalid("from", "Choose two revisions to compare")),
                }
            };
            let older = pick(conn, from)?;
            let newer = pick(conn, to)?;
            Ok((entries, older, newer))
        })
        .await?;
    let (older, newer) = if older.number > newer.number {
        (newer, older)
    } else {
        (older, newer)
    };
    let (a, b) = (older.content(), newer.content());
    let post = &context.post;
    let (added, removed) = diff::word_counts(&a.body, &b.body);
    let page = Page {
        title: format!(
            "Changes from revision {} to {} of “{}”",
            older.number,
            newer.number,
            post.display_title()
        ),
        noindex: true,
        breadcrumbs: super::post_trail(&context.blog, post),
        main: html! {
            h1 {
                "Changes from revision " (older.number) " to " (newer.number)
                span class="nhsuk-caption-l nhsuk-caption--bottom" { (post.display_title()) }
            }
            (super::post_nav(post, ""))
            p {
                "Revision " (older.number) " by " (older.author_name) ", " (format_london(older.created_at)) "; revision "
                (newer.number) " by " (newer.author_name) ", " (format_london(newer.created_at)) "."
            }
            p class="rounds-diff-key" {
                "Added words are " ins { "underlined" } " and removed words are " del { "struck through" } ". "
                "In the text: " (added) " word" @if added != 1 { "s" } " added, " (removed) " removed."
            }
            (compare_form(post, &entries, Some(older.number), Some(newer.number)))
            dl class="nhsuk-summary-list rounds-diff" {
                (diff_row("Title", &a.title.clone().unwrap_or_default(), &b.title.clone().unwrap_or_default()))
                (diff_row("Summary", &a.summary.clone().unwrap_or_default(), &b.summary.clone().unwrap_or_default()))
                (diff_row("Content warning", &a.content_warning.clone().unwrap_or_default(), &b.content_warning.clone().unwrap_or_default()))
                (diff_row("Tags", &a.tags_text(), &b.tags_text()))
                (diff_row("Web address", &a.slug.clone().unwrap_or_default(), &b.slug.clone().unwrap_or_default()))
            }
            h2 { "Text" }
            div class="rounds-diff__text" { (pieces(&diff::words(&a.body, &b.body))) }
            (same_note(&a, &b))
        },
        ..Page::default()
    };
    Ok(html_page(&me.chrome(&state), page))
}

fn diff_row(label: &str, old: &str, new: &str) -> Markup {
    html! {
        div class="nhsuk-summary-list__row" {
            dt class="nhsuk-summary-list__key" { (label) }
            dd class="nhsuk-summary-list__value" {
                @if old == new {
                    @if old.is_empty() { "(none)" } @else { (old) }
                    " " span class="nhsuk-body-s" { "(unchanged)" }
                } @else {
                    (pieces(&diff::words(old, new)))
                }
            }
        }
    }
}

/// Added and removed words, each announced as such to screen readers (which often do
/// not read `ins` and `del` out).
fn pieces(pieces: &[Piece]) -> Markup {
    html! {
        @for piece in pieces {
            @match piece {
                Piece::Same(text) => { (text) }
                Piece::Added(text) => {
                    ins { span class="nhsuk-u-visually-hidden" { "[added: " } (text) span class="nhsuk-u-visually-hidden" { "]" } }
                }
                Piece::Removed(text) => {
                    del { span class="nhsuk-u-visually-hidden" { "[removed: " } (text) span class="nhsuk-u-visually-hidden" { "]" } }
                }
            }
        }
    }
}

fn same_note(a: &Content, b: &Content) -> Markup {
    html! {
        @if a == b {
            p { "These two revisions say the same." }
        }
    }
}
