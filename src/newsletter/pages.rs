//! The public newsletter pages: subscribing (on every blog and instance-wide), the
//! confirmation link, preferences through a signed link, and one-click unsubscribe.
//!
//! What a subscribe request answers never depends on whether the address is known:
//! the same page, the same status, and an email only to the address itself.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use super::subscribers::{self, Requested, Subscriber};
use super::tokens::{Purpose, Signer};
use super::{Cadence, sending};
use crate::db::write_tx;
use crate::domain::blogs::{self, Blog};
use crate::domain::names::EmailAddress;
use crate::error::{AppError, FieldError};
use crate::web::AppState;
use crate::web::auth::{client_address, html_page};
use crate::web::ui::{self, Page};

/// Public routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/subscribe", web::get().to(subscribe_form))
        .route("/subscribe", web::post().to(subscribe))
        .route("/subscribe/confirm/{token}", web::get().to(confirm_form))
        .route("/subscribe/confirm/{token}", web::post().to(confirm))
        .route(
            "/newsletter/preferences/{token}",
            web::get().to(preferences),
        )
        .route(
            "/newsletter/preferences/{token}",
            web::post().to(change_preferences),
        )
        .route(
            "/newsletter/preferences/{token}/data.json",
            web::get().to(download),
        )
        .route(
            "/newsletter/unsubscribe/{token}",
            web::get().to(unsubscribe_form),
        )
        .route(
            "/newsletter/unsubscribe/{token}",
            web::post().to(unsubscribe),
        )
        .route("/newsletter/opened/{send}.gif", web::get().to(opened));
}

/// The form on every blog page: an address and a cadence for this blog.
pub fn blog_form(blog: &Blog) -> Markup {
    html! {
        aside class="rounds-subscribe nhsuk-u-margin-bottom-5" aria-labelledby="subscribe-heading" {
            h2 class="nhsuk-heading-s" id="subscribe-heading" { "Get " (blog.display_name) "'s posts by email" }
            form method="post" action="/subscribe" novalidate {
                input type="hidden" name="blog" value=(blog.handle);
                (email_field("subscribe-email", "", None))
                (cadence_radios("subscribe-cadence", Cadence::EachPost))
                button class="nhsuk-button nhsuk-button--secondary" type="submit" { "Subscribe" }
            }
        }
    }
}

fn email_field(id: &str, value: &str, error: Option<&str>) -> Markup {
    html! {
        div class={ "nhsuk-form-group" @if error.is_some() { " nhsuk-form-group--error" } } {
            label class="nhsuk-label" for=(id) { "Work email address" }
            div class="nhsuk-hint" id={ (id) "-hint" } { "We send a link to confirm it. Nothing else is sent until you do." }
            @if let Some(error) = error {
                span class="nhsuk-error-message" id={ (id) "-error" } {
                    span class="nhsuk-u-visually-hidden" { "Error: " } (error)
                }
            }
            input class={ "nhsuk-input" @if error.is_some() { " nhsuk-input--error" } } id=(id) name="email" type="email"
                value=(value) autocomplete="email" spellcheck="false"
                aria-describedby={ (id) "-hint" @if error.is_some() { " " (id) "-error" } };
        }
    }
}

fn cadence_radios(id: &str, chosen: Cadence) -> Markup {
    html! {
        div class="nhsuk-form-group" {
            fieldset class="nhsuk-fieldset" {
                legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "How often" }
                div class="nhsuk-radios nhsuk-radios--small" {
                    @for cadence in Cadence::ALL {
                        div class="nhsuk-radios__item" {
                            input class="nhsuk-radios__input" id={ (id) "-" (cadence.as_str()) } name="cadence" type="radio"
                                value=(cadence.as_str()) checked[cadence == chosen];
                            label class="nhsuk-label nhsuk-radios__label" for={ (id) "-" (cadence.as_str()) } { (cadence.label()) }
                        }
                    }
                }
            }
        }
    }
}

fn page(state: &AppState, title: &str, main: Markup) -> HttpResponse {
    html_page(
        &state.public_chrome(),
        Page {
            title: title.to_owned(),
            noindex: true,
            main,
            ..Page::default()
        },
    )
}

fn with_status(mut response: HttpResponse, status: u16) -> HttpResponse {
    if let Ok(code) = actix_web::http::StatusCode::from_u16(status) {
        *response.status_mut() = code;
    }
    response
}

#[derive(Debug, Default)]
struct SubscribeValues {
    email: String,
    blogs: Vec<String>,
    cadence: Option<String>,
}

impl SubscribeValues {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut values = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "email" => values.email = value.clone(),
                "blog" => values.blogs.push(value.clone()),
                "cadence" => values.cadence = Some(value.clone()),
                _ => {}
            }
        }
        values
    }
}

#[derive(serde::Deserialize)]
struct BlogQuery {
    blog: Option<String>,
}

async fn subscribe_form(
    state: web::Data<AppState>,
    query: web::Query<BlogQuery>,
) -> Result<HttpResponse, AppError> {
    let blogs = state.db(|conn| Ok(blogs::all_by_name(conn)?)).await?;
    let values = SubscribeValues {
        blogs: query.blog.iter().cloned().collect(),
        ..SubscribeValues::default()
    };
    Ok(subscribe_page(&state, &blogs, &values, &[]))
}

fn subscribe_page(
    state: &AppState,
    blogs: &[Blog],
    values: &SubscribeValues,
    errors: &[FieldError],
) -> HttpResponse {
    let cadence = values
        .cadence
        .as_deref()
        .and_then(Cadence::parse)
        .unwrap_or(Cadence::EachPost);
    let blog_error = ui::error_for(errors, "blog");
    let main = html! {
        div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
            (ui::error_summary(errors))
            h1 { "Get posts by email" }
            p { "Choose the leaders whose posts you want, and how often. The best replies from the fediverse come with digests." }
            form method="post" action="/subscribe" novalidate {
                (email_field("email", &values.email, ui::error_for(errors, "email")))
                div class={ "nhsuk-form-group" @if blog_error.is_some() { " nhsuk-form-group--error" } } {
                    fieldset class="nhsuk-fieldset" aria-describedby=[blog_error.map(|_| "blog-error")] {
                        legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Leaders" }
                        @if let Some(error) = blog_error {
                            span class="nhsuk-error-message" id="blog-error" {
                                span class="nhsuk-u-visually-hidden" { "Error: " } (error)
                            }
                        }
                        div class="nhsuk-checkboxes nhsuk-checkboxes--small" id="blog" {
                            @for blog in blogs {
                                div class="nhsuk-checkboxes__item" {
                                    input class="nhsuk-checkboxes__input" id={ "blog-" (blog.handle) } name="blog" type="checkbox"
                                        value=(blog.handle) checked[values.blogs.contains(&blog.handle)];
                                    label class="nhsuk-label nhsuk-checkboxes__label" for={ "blog-" (blog.handle) } {
                                        (blog.display_name)
                                        @if let Some(byline) = blog.byline() { ", " (byline) }
                                    }
                                }
                            }
                        }
                    }
                }
                (cadence_radios("cadence", cadence))
                button class="nhsuk-button" type="submit" { "Subscribe" }
            }
        } }
    };
    let response = page(state, "Get posts by email", main);
    if errors.is_empty() {
        response
    } else {
        with_status(response, 400)
    }
}

/// Whether an address's domain is on the allow-list (a subdomain of one counts).
pub fn domain_allowed(allowed: &[String], email: &EmailAddress) -> bool {
    let domain = email.domain().to_ascii_lowercase();
    allowed.is_empty()
        || allowed
            .iter()
            .any(|a| domain == *a || domain.ends_with(&format!(".{a}")))
}

async fn subscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let values = SubscribeValues::from_pairs(&form);
    let address = client_address(&req, state.settings.behind_proxy);
    state
        .subscribe_limiter
        .check(address, &subscribers::normalise(&values.email))?;
    let all = state.db(|conn| Ok(blogs::all_by_name(conn)?)).await?;
    let mut errors = Vec::new();
    let email = match EmailAddress::parse(&values.email) {
        Ok(email) => {
            let allowed = state.settings.newsletter_domains();
            if domain_allowed(&allowed, &email) {
                Some(email)
            } else {
                errors.push(FieldError::new(
                    "email",
                    format!(
                        "Use your work email address. This service is for addresses ending in {}",
                        allowed
                            .iter()
                            .map(|d| format!("@{d}"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                ));
                None
            }
        }
        Err(e) => {
            errors.push(FieldError::new("email", e));
            None
        }
    };
    let chosen: Vec<&Blog> = all
        .iter()
        .filter(|b| values.blogs.contains(&b.handle))
        .collect();
    if chosen.is_empty() {
        errors.push(FieldError::new("blog", "Choose at least one leader"));
    }
    let cadence = match values.cadence.as_deref().map(Cadence::parse) {
        None => Cadence::EachPost,
        Some(Some(c)) => c,
        Some(None) => {
            errors.push(FieldError::new("cadence", "Choose how often"));
            Cadence::EachPost
        }
    };
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Ok(subscribe_page(&state, &all, &values, &errors));
    };
    let wanted: Vec<(i64, Cadence)> = chosen.iter().map(|b| (b.id, cadence)).collect();
    let names: Vec<String> = chosen.iter().map(|b| b.display_name.clone()).collect();
    let valid_for = chrono::Duration::hours(
        i64::try_from(state.settings.newsletter_confirm_hours).unwrap_or(48),
    );
    let settings = state.settings.clone();
    state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let requested =
                    subscribers::request(conn, email.as_str(), &wanted, valid_for, None)?;
                if let Requested::Confirm(subscriber, token) = requested {
                    queue_confirmation(conn, &settings, &subscriber, &token, &names)?;
                }
                Ok(())
            })
        })
        .await?;
    state.jobs_wake.notify_one();
    Ok(page(
        &state,
        "Check your email",
        html! {
            h1 { "Check your email" }
            p { "If this address can subscribe, we have sent it a link to confirm. Nothing is sent until you follow that link." }
            p { "The link works once and stops working after " (state.settings.newsletter_confirm_hours) " hours." }
        },
    ))
}

/// Queues the email with a confirmation link. Call in the request's transaction.
pub fn queue_confirmation(
    conn: &mut crate::db::DbConnection,
    settings: &crate::config::Settings,
    subscriber: &Subscriber,
    token: &str,
    names: &[String],
) -> Result<(), AppError> {
    let link = settings.url(&format!("/subscribe/confirm/{token}"));
    let until = crate::editorial::schedule::format_london(
        subscriber
            .confirm_expires_at
            .unwrap_or_else(crate::domain::now),
    );
    let message = crate::mail::Email {
        to: subscriber.email.clone(),
        subject: format!("Confirm your subscription to {}", names.join(", ")),
        text: format!(
            "Someone, probably you, asked for posts from {} on {} to be emailed to this address.\n\nConfirm it: {link}\n\nThe link works once, until {until}. If you did not ask, ignore this email: nothing will be sent.\n",
            names.join(", "),
            settings.instance_name,
        ),
        html: None,
        reply_to: None,
        bulk: None,
    };
    let job = message
        .job(format!(
            "newsletter-confirm:{}:{}",
            subscriber.id,
            &super::tokens::hash(token)[..16]
        ))
        .map_err(|e| AppError::internal(e.to_string()))?;
    crate::jobs::enqueue(conn, &job)?;
    Ok(())
}

async fn confirm_form(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    // Mail scanners follow links: a GET only shows the button.
    Ok(page(
        &state,
        "Confirm your subscription",
        html! {
            h1 { "Confirm your subscription" }
            form method="post" action={ "/subscribe/confirm/" (token) } {
                button class="nhsuk-button" type="submit" { "Confirm my subscription" }
            }
        },
    ))
}

async fn confirm(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let confirmed = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let subscriber = subscribers::confirm(conn, &token)?;
                let signer = Signer::load(conn)?;
                Ok::<_, AppError>(subscriber.map(|s| signer.token(Purpose::Preferences, s.id, 0)))
            })
        })
        .await?;
    match confirmed {
        Some(token) => Ok(see_other(&format!(
            "/newsletter/preferences/{token}?done=confirmed"
        ))),
        None => Ok(with_status(
            page(
                &state,
                "This link has expired",
                html! {
                    h1 { "This link has expired" }
                    p { "Confirmation links work once and only for a while. " a href="/subscribe" { "Subscribe again" } " to get a new one." }
                },
            ),
            410,
        )),
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The subscriber a signed link is for, or 404.
async fn subscriber_for(
    state: &AppState,
    purpose: Purpose,
    token: String,
) -> Result<(Subscriber, i64), AppError> {
    state
        .db(move |conn| {
            let signer = Signer::load(conn)?;
            let verified = signer.verify(purpose, &token).ok_or(AppError::NotFound)?;
            let subscriber =
                subscribers::find(conn, verified.subscriber_id)?.ok_or(AppError::NotFound)?;
            Ok((subscriber, verified.blog_id))
        })
        .await
}

#[derive(serde::Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn preferences(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (subscriber, _) = subscriber_for(&state, Purpose::Preferences, token.clone()).await?;
    let notice = match query.done.as_deref() {
        Some("confirmed") => Some("Subscription confirmed"),
        Some("saved") => Some("Preferences saved"),
        Some("paused") => Some("Paused. Nothing is sent until you resume."),
        Some("resumed") => Some("Resumed"),
        Some("unsubscribed") => Some("You are unsubscribed from everything"),
        _ => None,
    };
    let id = subscriber.id;
    let subscriptions = state
        .db(move |conn| Ok(subscribers::subscriptions_of(conn, id)?))
        .await?;
    let base = format!("/newsletter/preferences/{token}");
    let main = html! {
        div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
            @if let Some(notice) = notice { (ui::success_banner(notice)) }
            h1 { "Your email preferences" span class="nhsuk-caption-l nhsuk-caption--bottom" { (subscriber.email) } }
            @if subscriber.paused {
                p { strong { "Paused: " } "nothing is sent until you resume." }
            }
            @if subscriptions.is_empty() {
                p { "You get no posts by email. " a href="/subscribe" { "Choose leaders to follow" } }
            } @else {
                form method="post" action=(base) {
                    input type="hidden" name="action" value="save";
                    @for (subscription, name, _) in &subscriptions {
                        div class="nhsuk-form-group" {
                            fieldset class="nhsuk-fieldset" {
                                legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--m" { (name) }
                                @if !subscription.is_active() {
                                    p class="nhsuk-body-s" { "Waiting for you to confirm." }
                                }
                                div class="nhsuk-radios nhsuk-radios--small" {
                                    @for cadence in Cadence::ALL {
                                        @let id = format!("cadence-{}-{}", subscription.blog_id, cadence.as_str());
                                        div class="nhsuk-radios__item" {
                                            input class="nhsuk-radios__input" id=(id) name={ "cadence_" (subscription.blog_id) } type="radio"
                                                value=(cadence.as_str()) checked[subscription.cadence() == cadence];
                                            label class="nhsuk-label nhsuk-radios__label" for=(id) { (cadence.label()) }
                                        }
                                    }
                                    div class="nhsuk-radios__divider" { "or" }
                                    div class="nhsuk-radios__item" {
                                        @let id = format!("cadence-{}-none", subscription.blog_id);
                                        input class="nhsuk-radios__input" id=(id) name={ "cadence_" (subscription.blog_id) } type="radio" value="none";
                                        label class="nhsuk-label nhsuk-radios__label" for=(id) { "Stop emails from " (name) }
                                    }
                                }
                            }
                        }
                    }
                    button class="nhsuk-button" type="submit" { "Save preferences" }
                }
                p { a href="/subscribe" { "Add more leaders" } }
                h2 { "Pause or stop" }
                form method="post" action=(base) {
                    @if subscriber.paused {
                        input type="hidden" name="action" value="resume";
                        button class="nhsuk-button nhsuk-button--secondary" type="submit" { "Resume emails" }
                    } @else {
                        input type="hidden" name="action" value="pause";
                        button class="nhsuk-button nhsuk-button--secondary" type="submit" { "Pause all emails" }
                    }
                }
                form method="post" action=(base) {
                    input type="hidden" name="action" value="unsubscribe";
                    button class="nhsuk-button nhsuk-button--secondary" type="submit" { "Unsubscribe from everything" }
                }
            }
            h2 { "Your data" }
            p { a href={ (base) "/data.json" } download="my-subscription.json" { "Download everything we keep about you (JSON)" } }
            form method="post" action=(base) {
                input type="hidden" name="action" value="erase";
                p { "Erasing removes your address, your choices and the record of what you were sent. It cannot be undone." }
                button class="nhsuk-button nhsuk-button--warning" type="submit" { "Erase me" }
            }
        } }
    };
    Ok(page(&state, "Your email preferences", main))
}

async fn change_preferences(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (subscriber, _) = subscriber_for(&state, Purpose::Preferences, token.clone()).await?;
    let action = form
        .iter()
        .find(|(k, _)| k == "action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut changes: Vec<(i64, Option<Cadence>)> = Vec::new();
    for (key, value) in form.iter() {
        if let Some(blog) = key.strip_prefix("cadence_") {
            let blog_id: i64 = blog
                .parse()
                .map_err(|_| AppError::invalid("", "The form could not be read"))?;
            let cadence = match value.as_str() {
                "none" => None,
                other => Some(
                    Cadence::parse(other)
                        .ok_or_else(|| AppError::invalid("", "Choose how often"))?,
                ),
            };
            changes.push((blog_id, cadence));
        }
    }
    let id = subscriber.id;
    let done =
        state
            .db(move |conn| {
                write_tx(conn, |conn| {
                    Ok::<_, AppError>(match action.as_str() {
                        "save" => {
                            for (blog_id, cadence) in changes {
                                match cadence {
                                    Some(c) => subscribers::set_cadence(conn, id, blog_id, c)
                                        .map(|_| ())?,
                                    None => subscribers::unsubscribe(conn, id, Some(blog_id))
                                        .map(|_| ())?,
                                }
                            }
                            "saved"
                        }
                        "pause" => {
                            subscribers::set_paused(conn, id, true)?;
                            "paused"
                        }
                        "resume" => {
                            subscribers::set_paused(conn, id, false)?;
                            "resumed"
                        }
                        "unsubscribe" => {
                            subscribers::unsubscribe(conn, id, None)?;
                            "unsubscribed"
                        }
                        "erase" => {
                            subscribers::erase(conn, id)?;
                            "erased"
                        }
                        _ => return Err(AppError::invalid("", "The form could not be read")),
                    })
                })
            })
            .await?;
    if done == "erased" {
        return Ok(page(
            &state,
            "Your data is erased",
            html! {
                h1 { "Your data is erased" }
                p { "We no longer keep your address or anything about your subscription. Emails already on their way may still arrive in the next few minutes." }
            },
        ));
    }
    Ok(see_other(&format!(
        "/newsletter/preferences/{token}?done={done}"
    )))
}

async fn download(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (subscriber, _) = subscriber_for(&state, Purpose::Preferences, path.into_inner()).await?;
    let export = state
        .db(move |conn| Ok(subscribers::export(conn, subscriber)?))
        .await?;
    let body =
        serde_json::to_string_pretty(&export).map_err(|e| AppError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"my-subscription.json\"",
        ))
        .body(body))
}

async fn unsubscribe_form(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (subscriber, blog_id) = subscriber_for(&state, Purpose::Unsubscribe, token.clone()).await?;
    let blog = state
        .db(move |conn| Ok(blogs::find(conn, blog_id)?))
        .await?;
    let what = blog.map_or_else(
        || "these emails".to_owned(),
        |b| format!("emails from {}", b.display_name),
    );
    // A GET never unsubscribes: mail scanners open links.
    Ok(page(
        &state,
        "Unsubscribe",
        html! {
            h1 { "Unsubscribe" }
            p { "Stop " (what) " to " strong { (subscriber.email) } "?" }
            form method="post" action={ "/newsletter/unsubscribe/" (token) } {
                button class="nhsuk-button" type="submit" { "Unsubscribe" }
            }
        },
    ))
}

/// RFC 8058: a POST to the link unsubscribes at once (mail clients send
/// `List-Unsubscribe=One-Click`; our own button sends nothing).
async fn unsubscribe(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let (subscriber, blog_id) = subscriber_for(&state, Purpose::Unsubscribe, token).await?;
    let id = subscriber.id;
    let preferences = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                subscribers::unsubscribe(conn, id, (blog_id != 0).then_some(blog_id))?;
                let signer = Signer::load(conn)?;
                Ok::<_, AppError>(signer.token(Purpose::Preferences, id, 0))
            })
        })
        .await?;
    Ok(page(
        &state,
        "You are unsubscribed",
        html! {
            h1 { "You are unsubscribed" }
            p { "No more of these emails will be sent to " (subscriber.email) "." }
            p { a href={ "/newsletter/preferences/" (preferences) } { "See your other subscriptions, or erase your data" } }
        },
    ))
}

/// The 1×1 image that counts opens, only while an admin has tracking on; it adds one to
/// the send's total and records nothing about who.
async fn opened(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    if state.settings.newsletter_tracking
        && let Ok(send_id) = path.into_inner().parse::<i64>()
    {
        state
            .db(move |conn| Ok(sending::count_open(conn, send_id)?))
            .await?;
    }
    Ok(HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(GIF))
}
