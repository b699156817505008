//! Error pages. Handlers return [`AppError`]; its response carries a short plain body and
//! the messages, and [`render`] (an error-handler middleware) turns any plain error
//! response, ours or actix's own, into a full page in the site's design.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, web};
use maud::html;

use super::AppState;
use super::ui::{self, Chrome, Page};
use crate::error::{AppError, FieldError};

/// What an error response says, kept with it until the page is rendered.
#[derive(Debug, Clone)]
struct ErrorDetails {
    messages: Vec<String>,
}

/// The response for an [`AppError`]: the right status, a plain-text body, and the
/// messages for [`render`] to show.
pub fn error_page(error: &AppError) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(error);
    let messages: Vec<String> = match error {
        AppError::Validation(errors) => errors.iter().map(|e: &FieldError| e.message.clone()).collect(),
        AppError::Conflict(message) => vec![capitalise(message)],
        AppError::Csrf => vec![
            "This form has expired or was sent from another site. Go back, reload the page and try again."
                .to_owned(),
        ],
        AppError::TooManyRequests { retry_after_secs } => vec![format!(
            "Too many attempts. Wait {} and try again.",
            minutes(*retry_after_secs)
        )],
        _ => Vec::new(),
    };
    let mut builder = HttpResponse::build(status);
    builder.content_type("text/plain; charset=utf-8");
    if let AppError::TooManyRequests { retry_after_secs } = error {
        builder.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
    }
    let body = if messages.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        messages.join("\n")
    };
    let mut response = builder.body(body);
    response.extensions_mut().insert(ErrorDetails { messages });
    response
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn minutes(seconds: u64) -> String {
    match seconds.div_ceil(60) {
        0 | 1 => "a minute".to_owned(),
        n => format!("{n} minutes"),
    }
}

/// Replaces a plain error response with a page. Leaves alone responses that already
/// carry their own body type (an HTML form shown again with its errors, JSON for
/// federation peers).
pub fn render<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(content_type.is_empty() || content_type.starts_with("text/plain")) {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let request = response.request().clone();
    // Someone who is not signed in and asks for a team page is sent to sign in.
    if status == StatusCode::UNAUTHORIZED && request.method() == Method::GET {
        let next = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let location = format!("/login?next={}", urlencode(next));
        let redirect = HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .finish()
            .map_into_boxed_body();
        return Ok(ErrorHandlerResponse::Response(
            response.into_response(redirect).map_into_right_body(),
        ));
    }
    let details = response
        .response()
        .extensions()
        .get::<ErrorDetails>()
        .cloned();
    let messages = details.map(|d| d.messages).unwrap_or_default();
    let instance_name = request
        .app_data::<web::Data<AppState>>()
        .map_or_else(|| "rounds".to_owned(), |s| s.settings.instance_name.clone());
    let chrome = Chrome {
        instance_name,
        viewer: None,
    };
    let page = page_for(status, &messages);
    let mut new = HttpResponse::build(status);
    new.content_type("text/html; charset=utf-8");
    for name in [header::RETRY_AFTER, header::ALLOW] {
        if let Some(value) = response.headers().get(&name) {
            new.insert_header((name, value.clone()));
        }
    }
    let rendered: HttpResponse<BoxBody> = new.body(ui::document(&chrome, page).into_string());
    let mut rendered = response.into_response(rendered);
    rendered
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(ErrorHandlerResponse::Response(
        rendered.map_into_right_body(),
    ))
}

/// Percent-encodes a path for a query value.
pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn page_for(status: StatusCode, messages: &[String]) -> Page {
    let (title, intro): (&str, Vec<String>) = match status {
        StatusCode::NOT_FOUND => (
            "Page not found",
            vec![
                "If you typed the web address, check it is correct.".into(),
                "If you pasted the web address, check you copied the entire address.".into(),
            ],
        ),
        StatusCode::GONE => (
            "This page has been removed",
            vec!["The author withdrew or deleted what was here. It is no longer available.".into()],
        ),
        StatusCode::UNAUTHORIZED => ("You need to sign in", vec![]),
        StatusCode::FORBIDDEN => (
            "You do not have permission to do that",
            vec!["If you think you should, ask the blog's owner or an administrator.".into()],
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "The file or form is too large",
            vec!["Go back and choose a smaller file.".into()],
        ),
        StatusCode::TOO_MANY_REQUESTS => ("Too many attempts", vec![]),
        StatusCode::METHOD_NOT_ALLOWED => (
            "That page cannot be used that way",
            vec!["Go back and try again from the page's own form.".into()],
        ),
        s if s.is_client_error() => (
            "There is a problem with your request",
            vec!["Go back, check what you entered and try again.".into()],
        ),
        _ => (
            "Sorry, there is a problem with the service",
            vec!["Try again later.".into()],
        ),
    };
    let replace_intro = status == StatusCode::FORBIDDEN && !messages.is_empty();
    Page {
        title: title.to_owned(),
        noindex: true,
        main: html! {
            div class="nhsuk-grid-row" {
                div class="nhsuk-grid-column-two-thirds" {
                    h1 { (title) }
                    @for message in messages {
                        p { (message) }
                    }
                    @if !replace_intro {
                        @for line in &intro {
                            p { (line) }
                        }
                    }
                    @if status == StatusCode::UNAUTHORIZED {
                        p { a href="/login" { "Sign in" } }
                    }
                    p { a href="/" { "Go to the home page" } }
                }
            }
        },
        ..Page::default()
    }
}

/// The answer to any path no route matches.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// Used so the error body type stays nameable in `startup`.
pub type Body<B> = EitherBody<B, BoxBody>;
