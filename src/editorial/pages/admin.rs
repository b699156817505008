//! The instance administrators' pages: the audit log (filter, verify, export) and the
//! publishing freeze switch.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{NaiveDate, NaiveDateTime};
use maud::html;
use serde::Deserialize;

use super::see_other;
use crate::db::write_tx;
use crate::domain::blogs::{self, Blog};
use crate::editorial::audit::{self, Entry, Filter, Format, Verification};
use crate::editorial::freeze::{self, Freeze};
use crate::editorial::schedule::format_london;
use crate::editorial::{Actor, workflow};
use crate::error::{AppError, FieldError};
use crate::web::AppState;
use crate::web::auth::{SignedIn, html_page, html_page_invalid};
use crate::web::errors::urlencode;
use crate::web::ui::{self, Field, Page};

/// Entries a page of the audit log shows.
const PER_PAGE: u32 = 50;

/// Routes under `/dashboard`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/audit", web::get().to(audit_log))
        .route("/admin/audit/verify", web::post().to(verify))
        .route("/admin/audit/export", web::get().to(export))
        .route("/admin/freeze", web::get().to(freeze_page))
        .route("/admin/freeze", web::post().to(set_freeze));
}

fn admin_only(me: &SignedIn) -> Result<(), AppError> {
    if me.user.is_admin {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// The filter as the form sends it (all text, so a bad value is shown, not refused).
#[derive(Debug, Default, Clone, Deserialize)]
struct FilterQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    blog: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    page: Option<u32>,
    format: Option<String>,
}

/// The action groups the filter offers.
const ACTION_GROUPS: [(&str, &str); 7] = [
    ("", "Everything"),
    ("account.", "Sign-ins and accounts"),
    ("team.", "Team and roles"),
    ("post.", "Posts: sign-off, publishing, withdrawals"),
    ("blog.", "Blog settings"),
    ("instance.", "Publishing freeze"),
    ("moderation.", "Moderation"),
];

impl FilterQuery {
    /// The filter, or the fields that are wrong.
    fn parse(&self, blogs: &[Blog]) -> Result<Filter, Vec<FieldError>> {
        let mut errors = Vec::new();
        let date = |field: &'static str, value: &str, errors: &mut Vec<FieldError>| {
            let value = value.trim();
            if value.is_empty() {
                return None;
            }
            match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
                Ok(d) => d.and_hms_opt(0, 0, 0),
                Err(_) => {
                    errors.push(FieldError::new(
                        field,
                        "Enter the date as year-month-day, for example 2026-11-22",
                    ));
                    None
                }
            }
        };
        let from = date("from", &self.from, &mut errors);
        let until = date("until", &self.until, &mut errors)
            .map(|d: NaiveDateTime| d + chrono::Duration::days(1));
        let blog_id = match self.blog.trim() {
            "" => None,
            handle => match blogs.iter().find(|b| b.handle == handle) {
                Some(blog) => Some(blog.id),
                None => {
                    errors.push(FieldError::new("blog", "Choose a blog from the list"));
                    None
                }
            },
        };
        let action = self.action.trim();
        if !ACTION_GROUPS.iter().any(|(value, _)| *value == action) {
            errors.push(FieldError::new(
                "action",
                "Choose what to show from the list",
            ));
        }
        if errors.is_empty() {
            Ok(Filter {
                action: (!action.is_empty()).then(|| action.to_owned()),
                actor: Some(self.actor.trim().to_owned()).filter(|a| !a.is_empty()),
                blog_id,
                from,
                until,
            })
        } else {
            Err(errors)
        }
    }

    /// The filter as query parameters, for links to other pages and the exports.
    fn query_string(&self) -> String {
        [
            ("action", &self.action),
            ("actor", &self.actor),
            ("blog", &self.blog),
            ("from", &self.from),
            ("until", &self.until),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

async fn audit_log(
    state: web::Data<AppState>,
    me: SignedIn,
    query: web::Query<FilterQuery>,
) -> Result<HttpResponse, AppError> {
    admin_only(&me)?;
    render_log(&state, &me, &query, None).await
}

async fn render_log(
    state: &AppState,
    me: &SignedIn,
    query: &FilterQuery,
    verification: Option<Verification>,
) -> Result<HttpResponse, AppError> {
    let blogs = state.db(|conn| Ok(blogs::all_by_name(conn)?)).await?;
    let page_number = query.page.unwrap_or(1).max(1);
    let (filter, errors) = match query.parse(&blogs) {
        Ok(filter) => (filter, Vec::new()),
        Err(errors) => (Filter::default(), errors),
    };
    let (entries, total) = state
        .db(move |conn| Ok(audit::list(conn, &filter, page_number, PER_PAGE)?))
        .await?;
    let broken = verification.as_ref().is_some_and(|v| !v.is_intact());
    let mut all_errors = errors.clone();
    if let Some(v) = &verification
        && let Some((_, reason)) = &v.first_broken
    {
        all_errors.insert(
            0,
            FieldError::new(
                "",
                format!("The audit log has been tampered with: {reason}."),
            ),
        );
    }
    let query_string = query.query_string();
    let blog_name = |id: Option<i64>| {
        id.and_then(|id| blogs.iter().find(|b| b.id == id))
            .map(|b| format!("@{}", b.handle))
    };
    let shown = i64::from(page_number) * i64::from(PER_PAGE);
    let page = Page {
        title: "Audit log".into(),
        noindex: true,
        breadcrumbs: vec![("Dashboard".into(), "/dashboard".into())],
        main: html! {
            (ui::error_summary(&all_errors))
            @if let Some(v) = &verification && !broken {
                (ui::success_banner(&format!(
                    "The audit log is intact: all {} entries check out.", v.entries
                )))
                @if let Some(hash) = &v.head_hash {
                    p class="nhsuk-body-s rounds-hash" { "Latest entry's hash: " (hash) ". Keep it elsewhere to show later that no newer entries were removed." }
                }
            }
            h1 { "Audit log" }
            p { "Every sign-in, role change, sign-off, publication, withdrawal, moderation decision, subscriber import and settings change, on the web or from the command line. Entries cannot be changed: each carries the hash of the one before, so a change shows." }
            form method="post" action="/dashboard/admin/audit/verify" {
                (ui::csrf_field(&me.csrf_token))
                button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Check the log has not been changed" }
            }
            form method="get" action="/dashboard/admin/audit" novalidate class="rounds-filter" {
                fieldset class="nhsuk-fieldset" {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--m" { h2 class="nhsuk-fieldset__heading" { "Filter" } }
                    div class="nhsuk-form-group" {
                        label class="nhsuk-label" for="action" { "What" }
                        select class="nhsuk-select" id="action" name="action" {
                            @for (value, label) in ACTION_GROUPS {
                                option value=(value) selected[query.action.trim() == value] { (label) }
                            }
                        }
                    }
                    (ui::input(Field::text("actor", "Who (username)").width(20), &query.actor, &errors))
                    div class="nhsuk-form-group" {
                        label class="nhsuk-label" for="blog" { "Blog" }
                        select class="nhsuk-select" id="blog" name="blog" {
                            option value="" { "All blogs" }
                            @for blog in &blogs {
                                option value=(blog.handle) selected[query.blog.trim() == blog.handle] { (blog.display_name) " (@" (blog.handle) ")" }
                            }
                        }
                    }
                    (ui::input(Field::text("from", "From (year-month-day, UTC)").width(10).hint("For example 2026-11-01"), &query.from, &errors))
                    (ui::input(Field::text("until", "Until (year-month-day, UTC)").width(10).hint("Includes the whole day"), &query.until, &errors))
                    button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Show" }
                }
            }
            p {
                (total) " entr" @if total == 1 { "y" } @else { "ies" } ". Download them: "
                a href={ "/dashboard/admin/audit/export?format=csv&" (query_string) } { "CSV" } ", "
                a href={ "/dashboard/admin/audit/export?format=json&" (query_string) } { "JSON" } "."
            }
            @if !entries.is_empty() {
                table class="nhsuk-table rounds-audit" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Audit entries, newest first" }
                    thead class="nhsuk-table__head" {
                        tr class="nhsuk-table__row" {
                            th class="nhsuk-table__header" scope="col" { "Entry" }
                            th class="nhsuk-table__header" scope="col" { "When" }
                            th class="nhsuk-table__header" scope="col" { "Who" }
                            th class="nhsuk-table__header" scope="col" { "What" }
                        }
                    }
                    tbody class="nhsuk-table__body" {
                        @for entry in &entries {
                            (entry_row(entry, blog_name(entry.blog_id)))
                        }
                    }
                }
            }
            nav class="rounds-pages" aria-label="Audit log pages" {
                @if page_number > 1 {
                    a href={ "/dashboard/admin/audit?" (query_string) "&page=" (page_number - 1) } { "Newer entries" }
                    " "
                }
                @if shown < total {
                    a href={ "/dashboard/admin/audit?" (query_string) "&page=" (page_number + 1) } { "Older entries" }
                }
            }
        },
        ..Page::default()
    };
    Ok(if all_errors.is_empty() {
        html_page(&me.chrome(state), page)
    } else if broken {
        let mut response = html_page(&me.chrome(state), page);
        *response.status_mut() = actix_web::http::StatusCode::CONFLICT;
        response
    } else {
        html_page_invalid(&me.chrome(state), page)
    })
}

fn entry_row(entry: &Entry, blog: Option<String>) -> maud::Markup {
    let details: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&entry.details).unwrap_or_default();
    html! {
        tr class="nhsuk-table__row" {
            td class="nhsuk-table__cell" { (entry.id) }
            td class="nhsuk-table__cell" { (format_london(entry.occurred_at)) }
            td class="nhsuk-table__cell" {
                (entry.actor_name) br;
                span class="nhsuk-body-s" { "via " (entry.source) @if let Some(a) = &entry.address { ", from " (a) } }
            }
            td class="nhsuk-table__cell" {
                strong { (entry.action) }
                @if let Some(subject) = &entry.subject { ": " (subject) }
                @if let Some(blog) = blog { " on " (blog) }
                @if let Some(post) = entry.post_id { " (" a href={ "/dashboard/posts/" (post) "/history" } { "post " (post) } ")" }
                @if !details.is_empty() {
                    br;
                    span class="nhsuk-body-s" {
                        @for (i, (key, value)) in details.iter().enumerate() {
                            @if i > 0 { "; " }
                            (key.replace('_', " ")) ": "
                            @match value { serde_json::Value::String(s) => { (s) } other => { (other.to_string()) } }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: String,
}

async fn verify(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    admin_only(&me)?;
    let result = state.db(|conn| Ok(audit::verify(conn)?)).await?;
    render_log(&state, &me, &FilterQuery::default(), Some(result)).await
}

async fn export(
    state: web::Data<AppState>,
    me: SignedIn,
    query: web::Query<FilterQuery>,
) -> Result<HttpResponse, AppError> {
    admin_only(&me)?;
    let format = query
        .format
        .as_deref()
        .and_then(Format::parse)
        .ok_or_else(|| AppError::invalid("format", "Choose CSV or JSON"))?;
    let blogs = state.db(|conn| Ok(blogs::all_by_name(conn)?)).await?;
    let filter = query.parse(&blogs).map_err(AppError::Validation)?;
    let body = state
        .db(move |conn| {
            let mut out = Vec::new();
            audit::export(conn, &filter, format, &mut out)
                .map_err(|e| AppError::internal(e.to_string()))?;
            Ok(out)
        })
        .await?;
    let (mime, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"rounds-audit.{extension}\""),
        ))
        .body(body))
}

#[derive(Deserialize)]
struct FreezeQuery {
    done: Option<String>,
}

async fn freeze_page(
    state: web::Data<AppState>,
    me: SignedIn,
    query: web::Query<FreezeQuery>,
) -> Result<HttpResponse, AppError> {
    admin_only(&me)?;
    let notice = match query.done.as_deref() {
        Some("started") => Some("Publishing is frozen"),
        Some("lifted") => Some("The freeze is lifted. Held posts are going out now."),
        _ => None,
    };
    render_freeze(&state, &me, notice, &[], "").await
}

async fn render_freeze(
    state: &AppState,
    me: &SignedIn,
    notice: Option<&str>,
    errors: &[FieldError],
    message: &str,
) -> Result<HttpResponse, AppError> {
    let (current, held) = state
        .db(|conn| {
            let current: Option<Freeze> = freeze::current(conn)?;
            let held = workflow::due_schedules(conn)?.len();
            Ok((current, held))
        })
        .await?;
    let page = Page {
        title: "Publishing freeze".into(),
        noindex: true,
        breadcrumbs: vec![("Dashboard".into(), "/dashboard".into())],
        main: html! {
            div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
                (ui::error_summary(errors))
                @if let Some(notice) = notice { (ui::success_banner(notice)) }
                (super::freeze_banner(current.as_ref()))
                h1 { "Publishing freeze" }
                p { "For pre-election periods and other times when nothing may go out. While publishing is frozen, nobody can publish or change a published post, on any blog or from the command line, and scheduled posts are held. Writing, review, sign-off, scheduling, unpublishing and deleting go on." }
                p { "When the freeze is lifted, posts whose scheduled time passed during it go out at once; posts scheduled for later go out at their time." }
                form method="post" action="/dashboard/admin/freeze" novalidate {
                    (ui::csrf_field(&me.csrf_token))
                    @if current.is_some() {
                        @if held > 0 {
                            p { strong { (held) " scheduled post" @if held > 1 { "s are" } @else { " is" } " waiting." } }
                        }
                        input type="hidden" name="action" value="lift";
                        button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Lift the freeze" }
                    } @else {
                        input type="hidden" name="action" value="start";
                        (ui::textarea(Field::text("message", "Message everyone on the team will see")
                            .hint("Why publishing is frozen and until when, for example: Pre-election period: nothing is published until 8 May."),
                            message, 3, errors))
                        button class="nhsuk-button nhsuk-button--warning" data-module="nhsuk-button" type="submit" { "Freeze publishing" }
                    }
                }
            } }
        },
        ..Page::default()
    };
    Ok(if errors.is_empty() {
        html_page(&me.chrome(state), page)
    } else {
        html_page_invalid(&me.chrome(state), page)
    })
}

#[derive(Deserialize)]
struct FreezeForm {
    csrf_token: String,
    action: String,
    #[serde(default)]
    message: String,
}

async fn set_freeze(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<FreezeForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    admin_only(&me)?;
    let actor = Actor::web(&me.user);
    match form.action.as_str() {
        "start" => {
            let message = match freeze::parse_message(&form.message) {
                Ok(message) => message,
                Err(e) => {
                    let errors = [FieldError::new("message", e)];
                    return render_freeze(&state, &me, None, &errors, &form.message).await;
                }
            };
            state
                .db(move |conn| {
                    write_tx(conn, |conn| {
                        freeze::start(conn, &actor, &message).map(|_| ())
                    })
                })
                .await?;
            Ok(see_other("/dashboard/admin/freeze?done=started"))
        }
        "lift" => {
            state
                .db(move |conn| write_tx(conn, |conn| freeze::lift(conn, &actor).map(|_| ())))
                .await?;
            state.jobs_wake.notify_one();
            Ok(see_other("/dashboard/admin/freeze?done=lifted"))
        }
        _ => Err(AppError::invalid("action", "Choose to freeze or lift")),
    }
}
