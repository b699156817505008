//! The page shell and the NHS.UK frontend components every view is built from.
//! Views take loaded data and return markup; nothing here touches the database.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::error::FieldError;

/// The script NHS.UK frontend asks for as the body's first child: it marks the page as
/// running JavaScript. Its hash is allowed by the content security policy.
pub const JS_ENABLED_SCRIPT: &str = "document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' nhsuk-frontend-supported' : '');";

/// The signed-in person, as the header shows them.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Their username.
    pub username: String,
    /// The token every form they post must carry.
    pub csrf_token: String,
}

/// Things every page shares: the instance name and who is looking.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The instance's name, beside the NHS logo.
    pub instance_name: String,
    /// Set on the team's pages when someone is signed in.
    pub viewer: Option<Viewer>,
}

/// A link to another format of this page (a feed).
#[derive(Debug, Clone)]
pub struct Alternate {
    /// MIME type, e.g. `application/atom+xml`.
    pub mime: &'static str,
    /// Title readers show.
    pub title: String,
    /// Absolute URL.
    pub href: String,
}

/// One page's content and metadata.
#[derive(Debug, Default)]
pub struct Page {
    /// The `<title>`: the page's own heading; the instance name is added.
    pub title: String,
    /// A one-line description for search engines and link previews.
    pub description: Option<String>,
    /// The canonical absolute URL.
    pub canonical: Option<String>,
    /// Feed autodiscovery links.
    pub alternates: Vec<Alternate>,
    /// Extra `<link rel="me">` style links in the head (href, rel).
    pub head_links: Vec<(String, &'static str)>,
    /// Keep search engines away (the team's pages, errors).
    pub noindex: bool,
    /// Load the editor's script.
    pub editor_script: bool,
    /// Breadcrumb trail above the content: (label, href).
    pub breadcrumbs: Vec<(String, String)>,
    /// The main content.
    pub main: Markup,
}

/// Renders a whole HTML document.
pub fn document(chrome: &Chrome, page: Page) -> Markup {
    let full_title = if page.title.is_empty() || page.title == chrome.instance_name {
        chrome.instance_name.clone()
    } else {
        format!("{} – {}", page.title, chrome.instance_name)
    };
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                title { (full_title) }
                meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover";
                meta name="theme-color" content="#005eb8";
                @if let Some(description) = &page.description {
                    meta name="description" content=(description);
                }
                @if page.noindex {
                    meta name="robots" content="noindex";
                }
                @if let Some(canonical) = &page.canonical {
                    link rel="canonical" href=(canonical);
                }
                @for alternate in &page.alternates {
                    link rel="alternate" type=(alternate.mime) title=(alternate.title) href=(alternate.href);
                }
                @for (href, rel) in &page.head_links {
                    link rel=(rel) href=(href);
                }
                link rel="icon" href="/assets/images/favicon.ico" sizes="48x48";
                link rel="icon" href="/assets/images/favicon.svg" sizes="any" type="image/svg+xml";
                link rel="apple-touch-icon" href="/assets/images/nhsuk-icon-180.png";
                link rel="manifest" href="/assets/manifest.json";
                link rel="stylesheet" href="/assets/nhsuk-frontend.min.css";
                link rel="stylesheet" href="/assets/rounds.css";
                script type="module" src="/assets/init.js" {}
                @if page.editor_script {
                    script type="module" src="/assets/editor.js" {}
                }
            }
            body {
                script { (PreEscaped(JS_ENABLED_SCRIPT)) }
                a class="nhsuk-skip-link" data-module="nhsuk-skip-link" href="#maincontent" { "Skip to main content" }
                (header(chrome))
                div class="nhsuk-width-container" {
                    @if !page.breadcrumbs.is_empty() {
                        (breadcrumbs(&page.breadcrumbs))
                    }
                    main class="nhsuk-main-wrapper" id="maincontent" {
                        (page.main)
                    }
                }
                (footer(chrome))
            }
        }
    }
}

const NHS_LOGO_PATH: &str = "M200 0v80H0V0h200Zm-27.5 5.5c-14.5 0-29 5-29 22 0 10.2 7.7 13.5 14.7 16.3l.7.3c5.4 2 10.1 3.9 10.1 8.4 0 6.5-8.5 7.5-14 7.5s-12.5-1.5-16-3.5L135 70c5.5 2 13.5 3.5 20 3.5 15.5 0 32-4.5 32-22.5 0-19.5-25.5-16.5-25.5-25.5 0-5.5 5.5-6.5 12.5-6.5a35 35 0 0 1 14.5 3l4-13.5c-4.5-2-12-3-20-3Zm-131 2h-22l-14 65H22l9-45h.5l13.5 45h21.5l14-65H64l-9 45h-.5l-13-45Zm63 0h-18l-13 65h17l6-28H117l-5.5 28H129l13.5-65H125L119.5 32h-20l5-24.5Z";

fn header(chrome: &Chrome) -> Markup {
    html! {
        header class="nhsuk-header" data-module="nhsuk-header" role="banner" {
            div class="nhsuk-header__container nhsuk-width-container" {
                div class="nhsuk-header__service" {
                    a class="nhsuk-header__service-logo" href="/" aria-label={ "NHS " (chrome.instance_name) " homepage" } {
                        svg class="nhsuk-header__logo" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 80" height="40" width="100" focusable="false" role="img" aria-label="NHS" {
                            title { "NHS" }
                            path fill="currentcolor" d=(NHS_LOGO_PATH) {}
                        }
                        span class="nhsuk-header__service-name" { (chrome.instance_name) }
                    }
                }
                @if let Some(viewer) = &chrome.viewer {
                    nav class="nhsuk-header__account" aria-label="Account" {
                        ul class="nhsuk-header__account-list" {
                            li class="nhsuk-header__account-item" {
                                a class="nhsuk-header__account-link" href="/dashboard" { "Dashboard" }
                            }
                            li class="nhsuk-header__account-item" {
                                a class="nhsuk-header__account-link" href="/account" { (viewer.username) }
                            }
                            li class="nhsuk-header__account-item" {
                                form class="nhsuk-header__account-form" action="/logout" method="post" {
                                    input type="hidden" name="csrf_token" value=(viewer.csrf_token);
                                    button class="nhsuk-header__account-button" { "Sign out" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn footer(chrome: &Chrome) -> Markup {
    html! {
        footer class="nhsuk-footer" role="contentinfo" {
            div class="nhsuk-width-container" {
                div class="nhsuk-footer__meta" {
                    h2 class="nhsuk-u-visually-hidden" { "Support links" }
                    ul class="nhsuk-footer__list" {
                        li class="nhsuk-footer__list-item" { a class="nhsuk-footer__list-item-link" href="/" { "All blogs" } }
                        @if chrome.viewer.is_none() {
                            li class="nhsuk-footer__list-item" { a class="nhsuk-footer__list-item-link" href="/login" { "Sign in" } }
                        }
                    }
                    p class="nhsuk-body-s" {
                        (chrome.instance_name) " runs on "
                        a href="/source" { "rounds" } ", free software under the GNU AGPL."
                    }
                }
            }
        }
    }
}

/// The trail above the content. On small screens NHS.UK frontend hides the list and
/// shows only a back link to the last step, so the back link is part of the component.
fn breadcrumbs(trail: &[(String, String)]) -> Markup {
    html! {
        nav class="nhsuk-breadcrumb" aria-label="Breadcrumb" {
            ol class="nhsuk-breadcrumb__list" {
                @for (label, href) in trail {
                    li class="nhsuk-breadcrumb__list-item" {
                        a class="nhsuk-breadcrumb__link" href=(href) { (label) }
                    }
                }
            }
            @if let Some((label, href)) = trail.last() {
                a class="nhsuk-back-link" href=(href) {
                    span class="nhsuk-u-visually-hidden" { "Back to " } (label)
                }
            }
        }
    }
}

/// The error summary at the top of a form that failed, linking to each field.
pub fn error_summary(errors: &[FieldError]) -> Markup {
    if errors.is_empty() {
        return html! {};
    }
    html! {
        div class="nhsuk-error-summary" data-module="nhsuk-error-summary" {
            div role="alert" {
                h2 class="nhsuk-error-summary__heading" { "There is a problem" }
                div class="nhsuk-error-summary__body" {
                    ul class="nhsuk-list nhsuk-error-summary__list" {
                        @for error in errors {
                            li {
                                @if error.field.is_empty() {
                                    (error.message)
                                } @else {
                                    a href={ "#" (error.field) } { (error.message) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The first error reported against a field.
pub fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

/// How a form field looks and behaves.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// `name` and `id`.
    pub name: &'a str,
    /// The visible label.
    pub label: &'a str,
    /// Help under the label.
    pub hint: Option<&'a str>,
    /// The input `type`.
    pub kind: &'a str,
    /// The `autocomplete` token.
    pub autocomplete: Option<&'a str>,
    /// Width class suffix (`nhsuk-input--width-N`).
    pub width: Option<u8>,
    /// Mark as required.
    pub required: bool,
}

impl<'a> Field<'a> {
    /// A text field.
    pub fn text(name: &'a str, label: &'a str) -> Self {
        Self {
            name,
            label,
            hint: None,
            kind: "text",
            autocomplete: None,
            width: None,
            required: false,
        }
    }

    /// With a hint.
    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    /// With an input type.
    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }

    /// With an autocomplete token.
    pub fn autocomplete(mut self, token: &'a str) -> Self {
        self.autocomplete = Some(token);
        self
    }

    /// With a fixed width.
    pub fn width(mut self, width: u8) -> Self {
        self.width = Some(width);
        self
    }

    /// Required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    fn described_by(&self, error: Option<&str>) -> Option<String> {
        let mut ids = Vec::new();
        if self.hint.is_some() {
            ids.push(format!("{}-hint", self.name));
        }
        if error.is_some() {
            ids.push(format!("{}-error", self.name));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    }

    fn group(&self, error: Option<&str>, control: Markup) -> Markup {
        html! {
            div class={ "nhsuk-form-group" @if error.is_some() { " nhsuk-form-group--error" } } {
                label class="nhsuk-label" for=(self.name) { (self.label) }
                @if let Some(hint) = self.hint {
                    div class="nhsuk-hint" id={ (self.name) "-hint" } { (hint) }
                }
                @if let Some(error) = error {
                    span class="nhsuk-error-message" id={ (self.name) "-error" } {
                        span class="nhsuk-u-visually-hidden" { "Error: " } (error)
                    }
                }
                (control)
            }
        }
    }
}

/// A single-line input with its label, hint and error.
pub fn input(field: Field<'_>, value: &str, errors: &[FieldError]) -> Markup {
    let error = error_for(errors, field.name);
    let class = format!(
        "nhsuk-input{}{}",
        field
            .width
            .map(|w| format!(" nhsuk-input--width-{w}"))
            .unwrap_or_default(),
        if error.is_some() {
            " nhsuk-input--error"
        } else {
            ""
        }
    );
    field.group(
        error,
        html! {
            input class=(class) id=(field.name) name=(field.name) type=(field.kind) value=(value)
                autocomplete=[field.autocomplete] aria-describedby=[field.described_by(error)]
                required[field.required] spellcheck=[(field.kind == "email" || field.kind == "password").then_some("false")];
        },
    )
}

/// A multi-line text area with its label, hint and error.
pub fn textarea(field: Field<'_>, value: &str, rows: u8, errors: &[FieldError]) -> Markup {
    let error = error_for(errors, field.name);
    field.group(
        error,
        html! {
            textarea class={ "nhsuk-textarea" @if error.is_some() { " nhsuk-textarea--error" } }
                id=(field.name) name=(field.name) rows=(rows)
                aria-describedby=[field.described_by(error)] required[field.required] { (value) }
        },
    )
}

/// A file input with its label, hint and error.
///
/// The native input, on purpose: NHS.UK frontend 10.6.1's file upload script (opted into
/// with `data-module="nhsuk-file-upload"`) replaces it with a drop-zone button whose
/// accessible name puts a hidden comma inside its visible text, which axe reports as a
/// WCAG 2.5.3 (label in name) failure.
pub fn file_input(field: Field<'_>, accept: &str, errors: &[FieldError]) -> Markup {
    let error = error_for(errors, field.name);
    field.group(
        error,
        html! {
            input class="nhsuk-file-upload__input" id=(field.name) name=(field.name) type="file" accept=(accept)
                aria-describedby=[field.described_by(error)];
        },
    )
}

/// The hidden field carrying the form's CSRF token.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(token); }
}

/// A green success banner (after a save, a publish).
pub fn success_banner(message: &str) -> Markup {
    html! {
        div class="nhsuk-notification-banner nhsuk-notification-banner--success" role="alert"
            aria-labelledby="nhsuk-notification-banner-title" data-module="nhsuk-notification-banner" {
            div class="nhsuk-notification-banner__header" {
                h2 class="nhsuk-notification-banner__title" id="nhsuk-notification-banner-title" { "Success" }
            }
            div class="nhsuk-notification-banner__content" {
                p class="nhsuk-notification-banner__heading" { (message) }
            }
        }
    }
}

/// Previous / next page links.
pub fn pagination(previous: Option<String>, next: Option<String>) -> Markup {
    if previous.is_none() && next.is_none() {
        return html! {};
    }
    html! {
        nav class="nhsuk-pagination" role="navigation" aria-label="Pagination" {
            ul class="nhsuk-list nhsuk-pagination__list" {
                @if let Some(href) = previous {
                    li class="nhsuk-pagination-item--previous" {
                        a class="nhsuk-pagination__link nhsuk-pagination__link--prev" href=(href) rel="prev" {
                            span class="nhsuk-pagination__title" { "Newer posts" }
                            (arrow_icon("left"))
                        }
                    }
                }
                @if let Some(href) = next {
                    li class="nhsuk-pagination-item--next" {
                        a class="nhsuk-pagination__link nhsuk-pagination__link--next" href=(href) rel="next" {
                            span class="nhsuk-pagination__title" { "Older posts" }
                            (arrow_icon("right"))
                        }
                    }
                }
            }
        }
    }
}

fn arrow_icon(direction: &str) -> Markup {
    let path = if direction == "left" {
        "M10.7 6.3c.4.4.4 1 0 1.4L7.4 11H19a1 1 0 0 1 0 2H7.4l3.3 3.3c.4.4.4 1 0 1.4a1 1 0 0 1-1.4 0l-5-5A1 1 0 0 1 4 12c0-.3.1-.5.3-.7l5-5a1 1 0 0 1 1.4 0Z"
    } else {
        "m14.7 6.3 5 5c.2.2.3.4.3.7 0 .3-.1.5-.3.7l-5 5a1 1 0 0 1-1.4-1.4l3.3-3.3H5a1 1 0 0 1 0-2h11.6l-3.3-3.3a1 1 0 1 1 1.4-1.4Z"
    };
    html! {
        svg class={ "nhsuk-icon nhsuk-icon--arrow-" (direction) } xmlns="http://www.w3.org/2000/svg"
            viewBox="0 0 24 24" width="16" height="16" focusable="false" aria-hidden="true" {
            path d=(path) {}
        }
    }
}

/// A date as readers in England write it: 22 November 2026.
pub fn long_date(time: chrono::NaiveDateTime) -> String {
    time.format("%-d %B %Y").to_string()
}

/// A `<time>` element with a machine-readable UTC timestamp.
pub fn time_element(time: chrono::NaiveDateTime) -> Markup {
    html! {
        time datetime=(crate::domain::utc(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (long_date(time)) }
    }
}
