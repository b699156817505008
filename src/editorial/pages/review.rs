//! The review page: where a post is in sign-off, what the checks found, the actions the
//! person may take (submit, approve, publish, schedule), previews, and the team's
//! comments. Each action names the revision the person was looking at, so nobody
//! approves or publishes words they have not seen.

use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::{PostContext, load_post, see_other};
use crate::domain::html::SafeHtml;
use crate::domain::posts::{Post, Status};
use crate::editorial::Actor;
use crate::editorial::checks::{self, WarningKind};
use crate::editorial::comments::{self, Comment, CommentInput};
use crate::editorial::preview;
use crate::editorial::revisions::{self, Revision};
use crate::editorial::roles::{self, Standing};
use crate::editorial::schedule::{self, format_london};
use crate::editorial::workflow::{self, Approval, Stage};
use crate::error::{AppError, FieldError};
use crate::federation::mentions;
use crate::publishing;
use crate::web::AppState;
use crate::web::auth::{SignedIn, html_page};
use crate::web::ui::{self, Field, Page};

/// Routes under `/dashboard`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/posts/{id}/review", web::get().to(show))
        .route("/posts/{id}/submit", web::post().to(submit))
        .route("/posts/{id}/approve", web::post().to(approve))
        .route("/posts/{id}/publish", web::post().to(publish))
        .route("/posts/{id}/schedule", web::post().to(schedule))
        .route(
            "/posts/{id}/schedule/cancel",
            web::post().to(cancel_schedule),
        )
        .route("/posts/{id}/comments", web::post().to(comment))
        .route(
            "/posts/{id}/comments/{comment}/resolve",
            web::post().to(resolve),
        )
        .route("/posts/{id}/preview/{kind}", web::get().to(preview_page));
}

/// Everything the review page shows.
struct ReviewData {
    context: PostContext,
    head: Revision,
    approval: Option<Approval>,
    live: Option<Revision>,
    comments: Vec<Comment>,
    report: checks::Report,
}

async fn load(state: &AppState, me: &SignedIn, id: i64) -> Result<ReviewData, AppError> {
    let context = load_post(state, &me.user, id).await?;
    let post = context.post.clone();
    let flow = context.workflow.clone();
    let (head, approval, live, comments) = state
        .db(move |conn| {
            let head = revisions::ensure_head(conn, &post)?;
            let approval = match flow.approval_id {
                Some(id) => workflow::approval(conn, id)?,
                None => None,
            };
            let live = match flow.live_revision_id {
                Some(id) => revisions::find_id(conn, id)?,
                None => None,
            };
            let comments = comments::of_post(conn, post.id)?;
            Ok((head, approval, live, comments))
        })
        .await?;
    let report = checks::check(&head.content().to_input());
    Ok(ReviewData {
        context,
        head,
        approval,
        live,
        comments,
        report,
    })
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

fn done_message(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "submitted" => Some("Submitted for sign-off. The owner has been emailed."),
        "approved" => Some("Approved. The approval names this exact revision."),
        "published" => Some("Published"),
        "scheduled" => Some("Scheduled"),
        "cancelled" => Some("Schedule cancelled. The post is still approved."),
        "commented" => Some("Comment added"),
        "resolved" => Some("Comment marked as resolved"),
        _ => None,
    }
}

async fn show(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let data = load(&state, &me, path.into_inner()).await?;
    let page = review_page(
        &me,
        &data,
        done_message(query.done.as_deref()),
        &[],
        &ScheduleValues::default(),
        &CommentValues::default(),
    );
    Ok(html_page(&me.chrome(&state), page))
}

/// What the schedule form was sent with.
#[derive(Debug, Default, Clone, Deserialize)]
struct ScheduleValues {
    #[serde(default)]
    schedule_day: String,
    #[serde(default)]
    schedule_month: String,
    #[serde(default)]
    schedule_year: String,
    #[serde(default)]
    schedule_time: String,
}

/// What the comment form was sent with.
#[derive(Debug, Default, Clone, Deserialize)]
struct CommentValues {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    quote: String,
}

fn review_page(
    me: &SignedIn,
    data: &ReviewData,
    notice: Option<&str>,
    errors: &[FieldError],
    schedule_values: &ScheduleValues,
    comment_values: &CommentValues,
) -> Page {
    let ReviewData {
        context,
        head,
        approval,
        live,
        comments,
        report,
    } = data;
    let post = &context.post;
    let blog = &context.blog;
    let standing = &context.standing;
    let stage = context.workflow.stage();
    let approved = approval
        .as_ref()
        .filter(|a| a.content_hash == head.content_hash);
    let may_publish =
        standing.can_publish_directly() || (standing.can_publish_approved() && approved.is_some());
    let frozen = context.freeze.is_some();
    let csrf = &me.csrf_token;
    let id = post.id;
    Page {
        title: format!("Review “{}”", post.display_title()),
        noindex: true,
        breadcrumbs: super::post_trail(blog, post),
        main: html! {
            div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
                (super::freeze_banner(context.freeze.as_ref()))
                (ui::error_summary(errors))
                @if let Some(notice) = notice {
                    (ui::success_banner(notice))
                }
                h1 {
                    "Review and sign-off"
                    span class="nhsuk-caption-l nhsuk-caption--bottom" { (post.display_title()) }
                }
                (super::post_nav(post, "Review and sign-off"))
                dl class="nhsuk-summary-list" {
                    div class="nhsuk-summary-list__row" {
                        dt class="nhsuk-summary-list__key" { "Stage" }
                        dd class="nhsuk-summary-list__value" {
                            (super::stage_tag(stage))
                            @if post.status() == Status::Published && stage != Stage::Published {
                                " " span class="nhsuk-body-s" { "(an earlier version is live)" }
                            }
                        }
                    }
                    div class="nhsuk-summary-list__row" {
                        dt class="nhsuk-summary-list__key" { "Latest version" }
                        dd class="nhsuk-summary-list__value" {
                            "Revision " (head.number) ", " (head.kind().label().to_lowercase()) " by " (head.author_name)
                            ", " (format_london(head.created_at))
                        }
                    }
                    div class="nhsuk-summary-list__row" {
                        dt class="nhsuk-summary-list__key" { "Sign-off" }
                        dd class="nhsuk-summary-list__value" {
                            @match (approval, approved) {
                                (_, Some(a)) => {
                                    "Approved by " (a.approver_name) ", " (format_london(a.created_at))
                                    br;
                                    span class="nhsuk-body-s rounds-hash" { "Content fingerprint " (&a.content_hash[..16]) "…" }
                                }
                                (Some(a), None) => {
                                    "Not approved. " (a.approver_name) " approved an earlier version ("
                                    (format_london(a.created_at)) "); it has changed since."
                                }
                                (None, None) => { "Not approved yet" }
                            }
                        }
                    }
                    @if let Some(at) = context.workflow.scheduled_for && stage == Stage::Scheduled {
                        div class="nhsuk-summary-list__row" {
                            dt class="nhsuk-summary-list__key" { "Goes out" }
                            dd class="nhsuk-summary-list__value" {
                                (format_london(at))
                                @if context.workflow.held_at.is_some() {
                                    br; strong { "Held by the publishing freeze: it goes out as soon as the freeze is lifted." }
                                }
                            }
                        }
                    }
                    @if let Some(live) = live {
                        div class="nhsuk-summary-list__row" {
                            dt class="nhsuk-summary-list__key" { "Readers see" }
                            dd class="nhsuk-summary-list__value" {
                                "Revision " (live.number)
                                @if let Some(path) = post.path(&blog.handle) {
                                    " at " a href=(path) { (path) }
                                }
                            }
                        }
                    }
                    div class="nhsuk-summary-list__row" {
                        dt class="nhsuk-summary-list__key" { "Sign-off rule" }
                        dd class="nhsuk-summary-list__value" {
                            @if standing.rules.owner_sign_off {
                                "Only the owner"
                                @if standing.rules.delegate_id.is_some() { " (or the editor they named)" }
                                " approves; only the exact approved version goes out."
                            } @else {
                                "Off: editors approve and publish."
                            }
                        }
                    }
                }

                h2 { "Checks before publishing" }
                (checks_panel(report))

                h2 { "Preview" }
                ul class="nhsuk-list" {
                    li { a href={ "/dashboard/posts/" (id) "/preview/web" } { "As the web page" } }
                    li { a href={ "/dashboard/posts/" (id) "/preview/mastodon" } { "As Mastodon will show it" } }
                    li { a href={ "/dashboard/posts/" (id) "/preview/email" } { "As the email to subscribers" } }
                }

                h2 { "Sign-off" }
                (actions(id, head, stage, standing, may_publish, frozen, approved.is_some(), standing.can_submit(post, stage) && !standing.is_owner(), report, csrf, schedule_values, errors))

                h2 { "Comments" }
                (comment_list(id, comments, head, standing, post, csrf))
                @if standing.can_comment(post) {
                    form method="post" action={ "/dashboard/posts/" (id) "/comments" } novalidate {
                        (ui::csrf_field(csrf))
                        input type="hidden" name="revision" value=(head.id);
                        (ui::textarea(Field::text("quote", "Passage you are commenting on (optional)")
                            .hint("Copy the words from the text, so others can find them."),
                            &comment_values.quote, 2, errors))
                        (ui::textarea(Field::text("comment", "Comment")
                            .hint("Type @ and a username to email someone on the team, for example @jane. The email links here; it does not include the comment."),
                            &comment_values.comment, 4, errors))
                        button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Add comment" }
                    }
                }
                p class="nhsuk-body-s" { "Signed in as " (me.user.username) ". " a href={ "/dashboard/@" (blog.handle) "/team" } { "Who is on the team" } }
            } }
        },
        ..Page::default()
    }
}

fn checks_panel(report: &checks::Report) -> Markup {
    html! {
        @if report.blocking.is_empty() && report.warnings.is_empty() {
            p { "No problems found." }
        }
        @if !report.blocking.is_empty() {
            div class="nhsuk-error-summary rounds-checks" {
                h3 class="nhsuk-error-summary__heading" { "Must be fixed before publishing" }
                ul class="nhsuk-list nhsuk-error-summary__list" {
                    @for problem in &report.blocking { li { (problem) } }
                }
            }
        }
        @if !report.warnings.is_empty() {
            div class="nhsuk-warning-callout" {
                h3 class="nhsuk-warning-callout__label" {
                    span role="text" { span class="nhsuk-u-visually-hidden" { "Important: " } "Check before publishing" }
                }
                ul {
                    @for warning in &report.warnings {
                        li {
                            @if warning.kind == WarningKind::PatientIdentifier { strong { "Patient information? " } }
                            (warning.message)
                        }
                    }
                }
            }
        }
        @if let Some(r) = &report.readability {
            h3 class="nhsuk-heading-s" { "Readability" }
            p {
                "Reading ease " strong { (format!("{:.0}", r.score)) } " out of 100: " (r.band()) ". "
                (r.words) " words in " (r.sentences) " sentences, "
                (format!("{:.0}", r.words as f64 / r.sentences.max(1) as f64)) " words a sentence on average."
            }
            @if !r.is_plain() {
                p { "Plain English scores 60 or more. Shorter sentences and shorter words raise the score." }
            }
            @if !r.long_sentences.is_empty() {
                p { "Sentences over " (checks::LONG_SENTENCE_WORDS) " words (try splitting them):" }
                ul {
                    @for (opening, words) in &r.long_sentences {
                        li { "“" (opening) "” (" (words) " words)" }
                    }
                }
            }
            @if !r.long_words.is_empty() {
                p { "Long words to consider replacing: " (r.long_words.join(", ")) "." }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn actions(
    id: i64,
    head: &Revision,
    stage: Stage,
    standing: &Standing,
    may_publish: bool,
    frozen: bool,
    approved: bool,
    can_submit: bool,
    report: &checks::Report,
    csrf: &str,
    values: &ScheduleValues,
    errors: &[FieldError],
) -> Markup {
    let seen = html! { input type="hidden" name="revision" value=(head.id); };
    let blocked = !report.blocking.is_empty();
    html! {
        @if stage == Stage::Published {
            p { "Readers see this version. Edit the post to change it." }
        }
        @if stage == Stage::Draft && can_submit {
            form method="post" action={ "/dashboard/posts/" (id) "/submit" } {
                (ui::csrf_field(csrf)) (seen)
                p { "When the draft is ready, send it to the owner for sign-off." }
                button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Submit for sign-off" }
            }
        }
        @if matches!(stage, Stage::Draft | Stage::InReview) {
            @if standing.can_approve() {
                @if blocked {
                    p { "Fix the problems listed under the checks before approving." }
                } @else {
                    form method="post" action={ "/dashboard/posts/" (id) "/approve" } {
                        (ui::csrf_field(csrf)) (seen)
                        p { "Approving signs off revision " (head.number) " exactly: any later edit sends it back to review." }
                        button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Approve revision " (head.number) }
                    }
                }
            } @else if stage == Stage::InReview {
                p { "Waiting for the owner's sign-off." }
            }
        }
        @if stage != Stage::Published && standing.can_publish_approved() {
            @if may_publish && !blocked {
                @if frozen {
                    p { "Publishing is frozen: you can schedule the post, and it will be held until the freeze is lifted." }
                } @else {
                    form method="post" action={ "/dashboard/posts/" (id) "/publish" } {
                        (ui::csrf_field(csrf)) (seen)
                        button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Publish now" }
                    }
                }
                @if stage != Stage::Scheduled {
                    (schedule_form(id, &seen, csrf, values, errors))
                }
            } @else if !approved && !standing.can_publish_directly() {
                p { "Once the owner approves this version you can publish it or schedule it." }
            }
        }
        @if stage == Stage::Scheduled && standing.can_publish_approved() {
            form method="post" action={ "/dashboard/posts/" (id) "/schedule/cancel" } {
                (ui::csrf_field(csrf))
                button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Cancel the schedule" }
            }
        }
    }
}

fn schedule_form(
    id: i64,
    seen: &Markup,
    csrf: &str,
    values: &ScheduleValues,
    errors: &[FieldError],
) -> Markup {
    let date_error = ui::error_for(errors, "schedule_day");
    html! {
        form method="post" action={ "/dashboard/posts/" (id) "/schedule" } novalidate {
            (ui::csrf_field(csrf)) (seen)
            h3 class="nhsuk-heading-s" { "Or schedule it" }
            div class={ "nhsuk-form-group" @if date_error.is_some() { " nhsuk-form-group--error" } } {
                fieldset class="nhsuk-fieldset" role="group" aria-describedby={ "schedule-hint" @if date_error.is_some() { " schedule_day-error" } } {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Date" }
                    div class="nhsuk-hint" id="schedule-hint" { "UK time (GMT or BST, as the clocks say). For example, 23 11 2026" }
                    @if let Some(error) = date_error {
                        span class="nhsuk-error-message" id="schedule_day-error" {
                            span class="nhsuk-u-visually-hidden" { "Error: " } (error)
                        }
                    }
                    div class="nhsuk-date-input" id="schedule_day" {
                        @for (name, label, width, value) in [
                            ("schedule_day", "Day", 2, &values.schedule_day),
                            ("schedule_month", "Month", 2, &values.schedule_month),
                            ("schedule_year", "Year", 4, &values.schedule_year),
                        ] {
                            div class="nhsuk-date-input__item" {
                                div class="nhsuk-form-group" {
                                    label class="nhsuk-label nhsuk-date-input__label" for=(name) { (label) }
                                    input class={ "nhsuk-input nhsuk-date-input__input nhsuk-input--width-" (width) @if date_error.is_some() { " nhsuk-input--error" } }
                                        id=(name) name=(name) type="text" inputmode="numeric" value=(value);
                                }
                            }
                        }
                    }
                }
            }
            (ui::input(Field::text("schedule_time", "Time").hint("24-hour clock, for example 09:30 or 14:00").width(5), &values.schedule_time, errors))
            button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Schedule" }
        }
    }
}

fn comment_list(
    id: i64,
    comments: &[Comment],
    head: &Revision,
    standing: &Standing,
    post: &Post,
    csrf: &str,
) -> Markup {
    html! {
        @if comments.is_empty() {
            p { "No comments yet." }
        } @else {
            ul class="nhsuk-list rounds-comments" {
                @for comment in comments {
                    li class={ "rounds-comment" @if comment.resolved_at.is_some() { " rounds-comment--resolved" } } id={ "comment-" (comment.id) } {
                        p class="nhsuk-body-s rounds-comment__meta" {
                            strong { (comment.author_name) } ", " (format_london(comment.created_at))
                            @if comment.resolved_at.is_some() { " · " strong class="nhsuk-tag nhsuk-tag--green" { "Resolved" } }
                        }
                        @if let Some(quote) = &comment.quote {
                            blockquote class="rounds-comment__quote" {
                                p { (quote) }
                                @if !head.body_markdown.contains(quote.as_str()) && head.title.as_deref() != Some(quote.as_str()) {
                                    p class="nhsuk-body-s" { "(This passage has changed since.)" }
                                }
                            }
                        }
                        (SafeHtml::from_plain_text(&comment.body))
                        @if comment.resolved_at.is_none() && standing.can_comment(post) {
                            form method="post" action={ "/dashboard/posts/" (id) "/comments/" (comment.id) "/resolve" } {
                                (ui::csrf_field(csrf))
                                button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small" data-module="nhsuk-button" type="submit" {
                                    "Mark as resolved" span class="nhsuk-u-visually-hidden" { " (comment by " (comment.author_name) ")" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct ActionForm {
    csrf_token: String,
    revision: Option<i64>,
    #[serde(flatten)]
    schedule: ScheduleValues,
}

/// Runs an action; on a refusal with a reason, shows the review page again with it.
async fn act(
    state: &AppState,
    me: &SignedIn,
    id: i64,
    done: &str,
    values: &ScheduleValues,
    work: impl FnOnce(&mut crate::db::DbConnection, &PostContext, &Actor) -> Result<(), AppError>
    + Send
    + 'static,
) -> Result<HttpResponse, AppError> {
    let context = load_post(state, &me.user, id).await?;
    let actor = Actor::web(&me.user);
    let for_work = context.clone();
    let result = state.db(move |conn| work(conn, &for_work, &actor)).await;
    // Whatever the action queued (deliveries, a scheduled publish) starts now.
    state.jobs_wake.notify_one();
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/dashboard/posts/{id}/review?done={done}"
        ))),
        Err(AppError::Conflict(message)) => {
            rerender(
                state,
                me,
                id,
                vec![FieldError::new("", capitalise(&message))],
                values,
                409,
            )
            .await
        }
        Err(AppError::Validation(errors)) => rerender(state, me, id, errors, values, 400).await,
        Err(other) => Err(other),
    }
}

async fn rerender(
    state: &AppState,
    me: &SignedIn,
    id: i64,
    errors: Vec<FieldError>,
    values: &ScheduleValues,
    status: u16,
) -> Result<HttpResponse, AppError> {
    let data = load(state, me, id).await?;
    let page = review_page(me, &data, None, &errors, values, &CommentValues::default());
    let mut response = html_page(&me.chrome(state), page);
    if let Ok(code) = actix_web::http::StatusCode::from_u16(status) {
        *response.status_mut() = code;
    }
    Ok(response)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

async fn submit(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let id = path.into_inner();
    let url = state.settings.url(&format!("/dashboard/posts/{id}/review"));
    let seen = form.revision;
    act(
        &state,
        &me,
        id,
        "submitted",
        &form.schedule,
        move |conn, c, actor| {
            let head = revisions::ensure_head(conn, &c.post)?;
            if seen.is_some_and(|s| s != head.id) {
                return Err(AppError::Conflict(
                "the post changed since you opened it: look at the latest version and try again"
                    .into(),
            ));
            }
            publishing::submit(conn, &c.blog, c.post.id, actor, &url)
        },
    )
    .await
}

async fn approve(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let seen = form
        .revision
        .ok_or_else(|| AppError::invalid("", "The form did not say which version you approve"))?;
    act(
        &state,
        &me,
        path.into_inner(),
        "approved",
        &form.schedule,
        move |conn, c, actor| {
            publishing::approve(conn, &c.blog, c.post.id, actor, seen).map(|_| ())
        },
    )
    .await
}

async fn publish(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let seen = form.revision;
    let id = path.into_inner();
    // The accounts the latest text mentions are looked up before the publishing
    // transaction, which holds no network I/O (and only for someone who may see it).
    let post = load_post(&state, &me.user, id).await?.post;
    let text = state
        .db(move |conn| {
            Ok(revisions::head(conn, post.id)?
                .map_or(post.body_markdown, |head| head.body_markdown))
        })
        .await?;
    let mentions = mentions::resolve(&state.federation, &text).await;
    act(
        &state,
        &me,
        id,
        "published",
        &form.schedule,
        move |conn, c, actor| {
            publishing::publish(conn, &c.blog, c.post.id, actor, seen, &mentions).map(|_| ())
        },
    )
    .await
}

async fn schedule(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let values = form.schedule.clone();
    let at = match schedule::parse_london(
        &values.schedule_day,
        &values.schedule_month,
        &values.schedule_year,
        &values.schedule_time,
    ) {
        Ok(at) => at,
        Err(message) => {
            let field = if message.contains("time") && !message.contains("date") {
                "schedule_time"
            } else {
                "schedule_day"
            };
            return rerender(
                &state,
                &me,
                path.into_inner(),
                vec![FieldError::new(field, message)],
                &values,
                400,
            )
            .await;
        }
    };
    let seen = form.revision;
    act(
        &state,
        &me,
        path.into_inner(),
        "scheduled",
        &values,
        move |conn, c, actor| publishing::schedule(conn, &c.blog, c.post.id, actor, seen, at),
    )
    .await
}

async fn cancel_schedule(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    act(
        &state,
        &me,
        path.into_inner(),
        "cancelled",
        &form.schedule,
        move |conn, c, actor| publishing::cancel_schedule(conn, &c.blog, c.post.id, actor),
    )
    .await
}

#[derive(Deserialize)]
struct CommentForm {
    csrf_token: String,
    revision: Option<i64>,
    #[serde(flatten)]
    values: CommentValues,
}

async fn comment(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<i64>,
    form: web::Form<CommentForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let id = path.into_inner();
    let context = load_post(&state, &me.user, id).await?;
    if !context.standing.can_comment(&context.post) {
        return Err(AppError::Forbidden);
    }
    let input = match CommentInput::parse(&form.values.comment, &form.values.quote) {
        Ok(input) => input,
        Err(errors) => {
            let data = load(&state, &me, id).await?;
            let page = review_page(
                &me,
                &data,
                None,
                &errors,
                &ScheduleValues::default(),
                &form.values,
            );
            let mut response = html_page(&me.chrome(&state), page);
            *response.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            return Ok(response);
        }
    };
    let author = (me.user.id, me.user.username.clone());
    let revision = form.revision;
    let link = state.settings.url(&format!("/dashboard/posts/{id}/review"));
    state
        .db(move |conn| {
            crate::db::write_tx(conn, |conn| {
                let added = comments::add(conn, id, (author.0, &author.1), revision, &input)?;
                let team = roles::members(conn, context.blog.id)?;
                for member in comments::mentioned(&input.body, &team, author.0) {
                    // The email says where to look, never what the comment says.
                    let email = crate::mail::Email {
                        to: member.email.clone(),
                        subject: format!(
                            "{} mentioned you on “{}”",
                            author.1,
                            context.post.display_title()
                        ),
                        text: format!(
                            "{} mentioned you in a comment on “{}” on the {} blog.\n\nRead it and reply in rounds: {link}#comment-{}\n\nComments stay in rounds, so this email does not include it.\n",
                            author.1,
                            context.post.display_title(),
                            context.blog.display_name,
                            added.id
                        ),
                        html: None,
                        reply_to: None,
                        bulk: None,
                    };
                    let job = email
                        .job(format!("mention:{}:{}", added.id, member.user_id))
                        .map_err(|e| AppError::internal(e.to_string()))?;
                    crate::jobs::enqueue(conn, &job)?;
                }
                Ok::<_, AppError>(())
            })
        })
        .await?;
    state.jobs_wake.notify_one();
    Ok(see_other(&format!(
        "/dashboard/posts/{id}/review?done=commented"
    )))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: String,
}

async fn resolve(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(i64, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let (id, comment_id) = path.into_inner();
    let context = load_post(&state, &me.user, id).await?;
    if !context.standing.can_comment(&context.post) {
        return Err(AppError::Forbidden);
    }
    let by = me.user.id;
    let resolved = state
        .db(move |conn| Ok(comments::resolve(conn, id, comment_id, by)?))
        .await?;
    if !resolved {
        return Err(AppError::NotFound);
    }
    Ok(see_other(&format!(
        "/dashboard/posts/{id}/review?done=resolved"
    )))
}

/// `/dashboard/posts/{id}/preview/{web|mastodon|email}`: the latest revision as readers
/// will meet it.
async fn preview_page(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, kind) = path.into_inner();
    let data = load(&state, &me, id).await?;
    let content = data.head.content();
    let post = &data.context.post;
    let blog = &data.context.blog;
    let slug = post
        .slug
        .clone()
        .or_else(|| content.slug.clone())
        .unwrap_or_else(|| crate::domain::names::Slug::derive(&post.display_title()).to_string());
    let url = state.settings.url(&format!("/@{}/{slug}", blog.handle));
    let banner = html! {
        div class="nhsuk-inset-text rounds-preview-banner" {
            span class="nhsuk-u-visually-hidden" { "Information: " }
            p { "Preview of revision " (data.head.number) ". "
                a href={ "/dashboard/posts/" (id) "/review" } { "Back to review and sign-off" } }
        }
    };
    match kind.as_str() {
        "web" => {
            let mut shown: Post = post.clone();
            let input = content.to_input();
            shown.title = input.title.clone();
            shown.summary = input.summary.clone();
            shown.body_html = SafeHtml::from_markdown(&input.body_markdown);
            shown.body_markdown = input.body_markdown.clone();
            if shown.published_at.is_none() {
                shown.published_at = Some(crate::domain::now());
            }
            shown.slug = Some(slug);
            let view = crate::web::public::PostView {
                post: shown,
                blog: blog.clone(),
                tags: input.tags.clone(),
            };
            let mut page = crate::web::public::post_page_view(
                &state,
                &view,
                &crate::federation::pages::Conversation::default(),
            );
            page.title = format!("Preview: {}", page.title);
            page.noindex = true;
            page.canonical = None;
            page.alternates = Vec::new();
            page.breadcrumbs = super::post_trail(blog, post);
            page.main = html! { (banner) (page.main) };
            Ok(html_page(&me.chrome(&state), page))
        }
        "mastodon" => {
            let articles_as_notes = articles_as_notes(&state, blog.id).await?;
            let view = preview::mastodon(&content, articles_as_notes, &url);
            let handle = format!("@{}@{}", blog.handle, state.settings.domain());
            let page = Page {
                title: format!("Mastodon preview: {}", post.display_title()),
                noindex: true,
                breadcrumbs: super::post_trail(blog, post),
                main: html! {
                    div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
                        h1 { "As Mastodon will show it" }
                        (banner)
                        p { "Mastodon keeps only simple formatting: headings become bold text, images are shown as attachments below the text, and an article shows only its title, summary and a link." }
                        div class="rounds-mastodon" {
                            p class="rounds-mastodon__author" { strong { (blog.display_name) } " " span class="nhsuk-body-s" { (handle) } }
                            @match &view {
                                preview::Mastodon::Note { content_warning, html, attachments } => {
                                    @let note = html! {
                                        div class="rounds-mastodon__content" { (html) }
                                        @if !attachments.is_empty() {
                                            ul class="rounds-mastodon__attachments" {
                                                @for a in attachments {
                                                    li { img src=(a.url) alt=(a.alt); }
                                                }
                                            }
                                        }
                                    };
                                    @if let Some(warning) = content_warning {
                                        // Mastodon shows the warning and a "Show more" button;
                                        // the text and images wait behind it.
                                        details class="nhsuk-details rounds-mastodon__warning" {
                                            summary class="nhsuk-details__summary" {
                                                span class="nhsuk-details__summary-text" { (warning) " (Show more)" }
                                            }
                                            div class="nhsuk-details__text" { (note) }
                                        }
                                    } @else {
                                        (note)
                                    }
                                }
                                preview::Mastodon::Article { title, summary, url } => {
                                    div class="rounds-mastodon__content" {
                                        p { strong { (title) } }
                                        @if let Some(summary) = summary { p { (summary) } }
                                        p { a href=(url) { (url) } }
                                    }
                                }
                            }
                        }
                    } }
                },
                ..Page::default()
            };
            Ok(html_page(&me.chrome(&state), page))
        }
        "email" => {
            let email = preview::email(&state.settings, blog, &content, &url);
            let page = Page {
                title: format!("Email preview: {}", post.display_title()),
                noindex: true,
                breadcrumbs: super::post_trail(blog, post),
                main: html! {
                    div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
                        h1 { "As the email to subscribers" }
                        (banner)
                        dl class="nhsuk-summary-list" {
                            div class="nhsuk-summary-list__row" {
                                dt class="nhsuk-summary-list__key" { "Subject" }
                                dd class="nhsuk-summary-list__value" { (email.subject) }
                            }
                        }
                        h2 class="nhsuk-heading-m" { "The message" }
                        iframe class="rounds-email" src={ "/dashboard/posts/" (id) "/preview/email.html" }
                            title="The email as subscribers get it" width="100%" height="800" {}
                        details class="nhsuk-details" {
                            summary class="nhsuk-details__summary" { span class="nhsuk-details__summary-text" { "Plain-text version" } }
                            div class="nhsuk-details__text" { pre class="rounds-email__text" { (email.text) } }
                        }
                    } }
                },
                ..Page::default()
            };
            Ok(html_page(&me.chrome(&state), page))
        }
        "email.html" => {
            // The message itself, framed by the preview page: its inline styles are the
            // email's, so this document gets a policy of its own (no scripts at all).
            let email = preview::email(&state.settings, blog, &content, &url);
            Ok(HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
                .insert_header((
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
                ))
                .insert_header(("X-Frame-Options", "SAMEORIGIN"))
                .body(email.html))
        }
        _ => Err(AppError::NotFound),
    }
}

/// Whether the blog sends articles to the fediverse as notes (a federation setting).
async fn articles_as_notes(state: &AppState, blog_id: i64) -> Result<bool, AppError> {
    use crate::db::schema::blogs;
    use diesel::prelude::*;
    state
        .db(move |conn| {
            Ok(blogs::table
                .find(blog_id)
                .select(blogs::articles_as_notes)
                .first::<bool>(conn)?)
        })
        .await
}
