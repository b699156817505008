//! The editors' tools for a blog's subscribers (owners, editors and admins): counts by
//! status and cadence, search, remove, CSV import and export, a test send to yourself,
//! and the last sends with delivered, deferred, bounced and skipped counts.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::Cadence;
use super::sending::{self, Figures, Send};
use super::subscribers::{self, Listed, Requested};
use crate::db::write_tx;
use crate::domain::blogs::Blog;
use crate::domain::names::EmailAddress;
use crate::editorial::Actor;
use crate::editorial::audit::{self, actions};
use crate::editorial::pages::{load_blog, see_other};
use crate::error::AppError;
use crate::web::AppState;
use crate::web::auth::{SignedIn, html_page};
use crate::web::ui::{self, Field, Page};

/// Routes under `/dashboard`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/@{handle}/subscribers", web::get().to(show))
        .route("/@{handle}/subscribers.csv", web::get().to(export))
        .route("/@{handle}/subscribers/remove", web::post().to(remove))
        .route("/@{handle}/subscribers/import", web::post().to(import))
        .route("/@{handle}/subscribers/test", web::post().to(send_test));
}

/// The blog, if the signed-in person is its owner, an editor or an admin.
async fn editable(state: &AppState, me: &SignedIn, handle: String) -> Result<Blog, AppError> {
    let (blog, standing) = load_blog(state, &me.user, handle).await?;
    if !standing.can_withdraw() {
        return Err(AppError::Forbidden);
    }
    Ok(blog)
}

#[derive(Deserialize)]
struct ShowQuery {
    q: Option<String>,
    done: Option<String>,
}

async fn show(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, AppError> {
    let blog = editable(&state, &me, path.into_inner()).await?;
    let search = query.q.clone().unwrap_or_default();
    let blog_id = blog.id;
    let term = search.clone();
    let (counts, suppressed, listed, sends) = state
        .db(move |conn| {
            let sends: Vec<(Send, Figures)> = sending::recent_sends(conn, blog_id, 10)?
                .into_iter()
                .map(|s| {
                    let figures = sending::figures(conn, s.id)?;
                    Ok::<_, diesel::result::Error>((s, figures))
                })
                .collect::<Result<_, _>>()?;
            Ok((
                subscribers::counts(conn, blog_id)?,
                subscribers::suppressed_counts(conn, blog_id)?,
                subscribers::for_blog(conn, blog_id, &term, 200)?,
                sends,
            ))
        })
        .await?;
    let notice = match query.done.as_deref() {
        Some("removed") => Some("Removed. They get nothing more from this blog."),
        Some("imported") => Some("Imported"),
        Some("tested") => Some("A test of the latest post is on its way to you"),
        Some("nothing") => Some("Nothing published yet, so there is nothing to send"),
        _ => None,
    };
    let count = |subscriber: &str, active: Option<bool>, cadence: Option<Cadence>| -> i64 {
        counts
            .iter()
            .filter(|(s, a, c, _)| {
                s == subscriber
                    && active.is_none_or(|want| (a == "active") == want)
                    && cadence.is_none_or(|want| c == want.as_str())
            })
            .map(|(_, _, _, n)| n)
            .sum()
    };
    let suppressed_by = |reason: &str| -> i64 {
        suppressed
            .iter()
            .filter(|(r, _)| r == reason)
            .map(|(_, n)| n)
            .sum()
    };
    let base = format!("/dashboard/@{}/subscribers", blog.handle);
    let csrf = &me.csrf_token;
    let page = Page {
        title: format!("{} – subscribers", blog.display_name),
        noindex: true,
        breadcrumbs: crate::editorial::pages::trail(&blog),
        main: html! {
            @if let Some(notice) = notice { (ui::success_banner(notice)) }
            h1 { "Email subscribers" span class="nhsuk-caption-l nhsuk-caption--bottom" { (blog.display_name) } }
            table class="nhsuk-table" {
                caption class="nhsuk-table__caption" { "Subscribers by status and cadence" }
                thead class="nhsuk-table__head" { tr class="nhsuk-table__row" {
                    th class="nhsuk-table__header" scope="col" { "Status" }
                    @for cadence in Cadence::ALL { th class="nhsuk-table__header nhsuk-table__header--numeric" scope="col" { (cadence.label()) } }
                } }
                tbody class="nhsuk-table__body" {
                    tr class="nhsuk-table__row" {
                        th class="nhsuk-table__header" scope="row" { "Confirmed" }
                        @for cadence in Cadence::ALL { td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (count("confirmed", Some(true), Some(cadence))) } }
                    }
                    tr class="nhsuk-table__row" {
                        th class="nhsuk-table__header" scope="row" { "Waiting for confirmation" }
                        @for cadence in Cadence::ALL { td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (count("pending", None, Some(cadence)) + count("confirmed", Some(false), Some(cadence))) } }
                    }
                }
            }
            p class="nhsuk-body-s" { "Paused subscribers are counted as confirmed; nothing is sent to them while paused." }
            table class="nhsuk-table" {
                caption class="nhsuk-table__caption" { "Addresses that no longer get mail" }
                thead class="nhsuk-table__head" { tr class="nhsuk-table__row" {
                    th class="nhsuk-table__header" scope="col" { "Why" }
                    th class="nhsuk-table__header nhsuk-table__header--numeric" scope="col" { "Subscribers" }
                } }
                tbody class="nhsuk-table__body" {
                    @for (reason, label) in [("hard", "Bounced (refused by their mail server)"), ("soft", "Suppressed after repeated deferrals"), ("manual", "Suppressed by an admin")] {
                        tr class="nhsuk-table__row" {
                            th class="nhsuk-table__header" scope="row" { (label) }
                            td class="nhsuk-table__cell nhsuk-table__cell--numeric" data-suppressed=(reason) { (suppressed_by(reason)) }
                        }
                    }
                }
            }
            h2 { "Find a subscriber" }
            form method="get" action=(base) {
                (ui::input(Field::text("q", "Email address contains").kind("search"), &search, &[]))
                button class="nhsuk-button nhsuk-button--secondary" type="submit" { "Search" }
            }
            (list(&listed, &base, csrf))
            p { a href={ (base) ".csv" } download { "Download all subscribers (CSV)" } }
            h2 { "Import staff addresses" }
            form method="post" action={ (base) "/import" } {
                (ui::csrf_field(csrf))
                (ui::textarea(Field::text("addresses", "Addresses (CSV: one address a line, in the first column)"), "", 6, &[]))
                (ui::input(Field::text("lawful_basis", "Lawful basis (optional)")
                    .hint("Leave empty to email each address a confirmation link. Record a lawful basis (for example, \"Legitimate interest: internal staff communications, approved by the IG lead\") to subscribe them directly; it is kept with each address and on the audit log."), "", &[]))
                button class="nhsuk-button" type="submit" { "Import" }
            }
            h2 { "Send a test" }
            form method="post" action={ (base) "/test" } {
                (ui::csrf_field(csrf))
                p { "Sends the latest post, as subscribers get it, to " (me.user.email) "." }
                button class="nhsuk-button nhsuk-button--secondary" type="submit" { "Send a test to me" }
            }
            h2 { "Last sends" }
            @if sends.is_empty() {
                p { "Nothing sent yet." }
            } @else {
                table class="nhsuk-table" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Last sends" }
                    thead class="nhsuk-table__head" { tr class="nhsuk-table__row" {
                        th class="nhsuk-table__header" scope="col" { "Send" }
                        th class="nhsuk-table__header nhsuk-table__header--numeric" scope="col" { "Delivered" }
                        th class="nhsuk-table__header nhsuk-table__header--numeric" scope="col" { "Deferred" }
                        th class="nhsuk-table__header nhsuk-table__header--numeric" scope="col" { "Bounced" }
                        th class="nhsuk-table__header nhsuk-table__header--numeric" scope="col" { "Waiting" }
                        th class="nhsuk-table__header nhsuk-table__header--numeric" scope="col" { "Left before sending" }
                        @if state.settings.newsletter_tracking { th class="nhsuk-table__header nhsuk-table__header--numeric" scope="col" { "Opens" } }
                    } }
                    tbody class="nhsuk-table__body" {
                        @for (send, figures) in &sends {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" {
                                    (match send.kind.as_str() { "daily" => "Daily digest", "weekly" => "Weekly digest", _ => "Post" })
                                    " · " (crate::editorial::schedule::format_london(send.created_at))
                                }
                                td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (figures.delivered) }
                                td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (figures.deferred) }
                                td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (figures.bounced) }
                                td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (figures.queued) }
                                td class="nhsuk-table__cell nhsuk-table__cell--numeric" data-figure="skipped" { (figures.skipped) }
                                @if state.settings.newsletter_tracking { td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (send.opens) } }
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

fn list(listed: &[Listed], base: &str, csrf: &str) -> maud::Markup {
    html! {
        @if listed.is_empty() {
            p { "No subscribers found." }
        } @else {
            table class="nhsuk-table" {
                caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Subscribers" }
                thead class="nhsuk-table__head" { tr class="nhsuk-table__row" {
                    th class="nhsuk-table__header" scope="col" { "Address" }
                    th class="nhsuk-table__header" scope="col" { "Status" }
                    th class="nhsuk-table__header" scope="col" { "Cadence" }
                    th class="nhsuk-table__header" scope="col" { "Remove" }
                } }
                tbody class="nhsuk-table__body" {
                    @for entry in listed {
                        tr class="nhsuk-table__row" {
                            td class="nhsuk-table__cell" { (entry.subscriber.email) }
                            td class="nhsuk-table__cell" {
                                (entry.subscriber.status().label())
                                @if entry.subscriber.paused { " (paused)" }
                            }
                            td class="nhsuk-table__cell" { (entry.subscription.cadence().label()) }
                            td class="nhsuk-table__cell" {
                                form method="post" action={ (base) "/remove" } {
                                    (ui::csrf_field(csrf))
                                    input type="hidden" name="subscriber_id" value=(entry.subscriber.id);
                                    button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small nhsuk-u-margin-bottom-0" type="submit" {
                                        "Remove" span class="nhsuk-u-visually-hidden" { " " (entry.subscriber.email) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn export(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let blog = editable(&state, &me, path.into_inner()).await?;
    let blog_id = blog.id;
    let listed = state
        .db(move |conn| Ok(subscribers::for_blog(conn, blog_id, "", i64::MAX)?))
        .await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = [
        "email",
        "status",
        "cadence",
        "paused",
        "subscribed_at",
        "confirmed_at",
        "lawful_basis",
    ];
    let rows = listed.iter().map(|e| {
        [
            e.subscriber.email.clone(),
            e.subscriber.status.clone(),
            e.subscription.cadence.clone(),
            e.subscriber.paused.to_string(),
            e.subscription.created_at.to_string(),
            e.subscriber
                .confirmed_at
                .map(|t| t.to_string())
                .unwrap_or_default(),
            e.subscriber.lawful_basis.clone().unwrap_or_default(),
        ]
    });
    writer
        .write_record(header)
        .map_err(|e| AppError::internal(e.to_string()))?;
    for row in rows {
        writer
            .write_record(&row)
            .map_err(|e| AppError::internal(e.to_string()))?;
    }
    let body = writer
        .into_inner()
        .map_err(|e| AppError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}-subscribers.csv\"", blog.handle),
        ))
        .body(body))
}

#[derive(Deserialize)]
struct RemoveForm {
    csrf_token: String,
    subscriber_id: i64,
}

async fn remove(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: web::Form<RemoveForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let blog = editable(&state, &me, path.into_inner()).await?;
    let (blog_id, id) = (blog.id, form.subscriber_id);
    state
        .db(move |conn| {
            Ok(write_tx(conn, |conn| {
                subscribers::unsubscribe(conn, id, Some(blog_id))
            })?)
        })
        .await?;
    Ok(see_other(&format!(
        "/dashboard/@{}/subscribers?done=removed",
        blog.handle
    )))
}

#[derive(Deserialize)]
struct ImportForm {
    csrf_token: String,
    addresses: String,
    #[serde(default)]
    lawful_basis: String,
}

/// The addresses in pasted CSV (first column; a header row or blank lines are skipped),
/// or the first line that is not an address.
fn parse_addresses(text: &str) -> Result<Vec<EmailAddress>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut found = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("Line {}: {e}", line + 1))?;
        let cell = record.get(0).unwrap_or("").trim();
        if cell.is_empty() || (line == 0 && !cell.contains('@')) {
            continue;
        }
        let email = EmailAddress::parse(cell).map_err(|e| format!("Line {}: {e}", line + 1))?;
        found.push(email);
    }
    if found.is_empty() {
        return Err("Paste at least one email address".into());
    }
    Ok(found)
}

async fn import(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: web::Form<ImportForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let blog = editable(&state, &me, path.into_inner()).await?;
    let addresses =
        parse_addresses(&form.addresses).map_err(|e| AppError::invalid("addresses", e))?;
    let allowed = state.settings.newsletter_domains();
    if let Some(outside) = addresses
        .iter()
        .find(|a| !super::pages::domain_allowed(&allowed, a))
    {
        return Err(AppError::invalid(
            "addresses",
            format!("{outside} is outside the email domains this instance allows"),
        ));
    }
    let basis = crate::domain::names::without_controls(form.lawful_basis.trim());
    let basis = (!basis.is_empty()).then_some(basis);
    let actor = Actor::web(&me.user);
    let settings = state.settings.clone();
    let valid_for =
        chrono::Duration::hours(i64::try_from(settings.newsletter_confirm_hours).unwrap_or(48));
    let blog_for_db = blog.clone();
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let names = vec![blog_for_db.display_name.clone()];
                let (mut subscribed, mut asked) = (0, 0);
                for address in &addresses {
                    match subscribers::request(
                        conn,
                        address.as_str(),
                        &[(blog_for_db.id, Cadence::EachPost)],
                        valid_for,
                        basis.as_deref(),
                    )? {
                        Requested::Confirm(subscriber, token) => {
                            super::pages::queue_confirmation(
                                conn,
                                &settings,
                                &subscriber,
                                &token,
                                &names,
                            )?;
                            asked += 1;
                        }
                        Requested::Subscribed(_) => subscribed += 1,
                        Requested::Nothing => {}
                    }
                }
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::SUBSCRIBERS_IMPORTED)
                        .blog(blog_for_db.id)
                        .subject(format!("{} addresses", addresses.len()))
                        .detail("addresses", addresses.len())
                        .detail("subscribed_directly", subscribed)
                        .detail("confirmation_requested", asked)
                        .detail(
                            "lawful_basis",
                            basis.as_deref().unwrap_or("none: double opt-in"),
                        ),
                )?;
                Ok::<_, AppError>(())
            })
        })
        .await?;
    state.jobs_wake.notify_one();
    Ok(see_other(&format!(
        "/dashboard/@{}/subscribers?done=imported",
        blog.handle
    )))
}

#[derive(Deserialize)]
struct TestForm {
    csrf_token: String,
}

async fn send_test(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: web::Form<TestForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let blog = editable(&state, &me, path.into_inner()).await?;
    let settings = state.settings.clone();
    let to = me.user.email.clone();
    let blog_for_db = blog.clone();
    let sent = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let Some(email) = sending::test_email(conn, settings, &blog_for_db, &to)? else {
                    return Ok(false);
                };
                let nonce: u64 = rand::random();
                let job = email
                    .job(format!("newsletter-test:{}:{nonce:016x}", blog_for_db.id))
                    .map_err(|e| AppError::internal(e.to_string()))?;
                crate::jobs::enqueue(conn, &job)?;
                Ok::<_, AppError>(true)
            })
        })
        .await?;
    state.jobs_wake.notify_one();
    let done = if sent { "tested" } else { "nothing" };
    Ok(see_other(&format!(
        "/dashboard/@{}/subscribers?done={done}",
        blog.handle
    )))
}
