//! The signed-in person's own account: password and two-factor sign-in.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use base64::Engine;
use maud::html;
use serde::Deserialize;

use super::AppState;
use super::auth::{self, SignedIn, html_page, html_page_invalid};
use super::ui::{self, Field, Page};
use crate::domain::password::{self, Password};
use crate::domain::users;
use crate::error::{AppError, FieldError};

/// Routes under `/account`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(show))
        .route("/password", web::post().to(change_password))
        .route("/two-factor", web::get().to(two_factor_setup))
        .route("/two-factor", web::post().to(two_factor_confirm))
        .route("/two-factor/disable", web::post().to(two_factor_disable));
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn show(
    state: web::Data<AppState>,
    me: SignedIn,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = match query.done.as_deref() {
        Some("password") => Some("Password changed. Other sessions have been signed out."),
        Some("two-factor-on") => Some("Two-factor sign-in is on"),
        Some("two-factor-off") => Some("Two-factor sign-in is off"),
        _ => None,
    };
    Ok(html_page(
        &me.chrome(&state),
        account_page(&me, notice, &[]),
    ))
}

fn account_page(me: &SignedIn, notice: Option<&str>, errors: &[FieldError]) -> Page {
    Page {
        title: "Your account".into(),
        noindex: true,
        main: html! {
            (ui::error_summary(errors))
            @if let Some(notice) = notice {
                (ui::success_banner(notice))
            }
            h1 { "Your account" }
            dl class="nhsuk-summary-list" {
                div class="nhsuk-summary-list__row" {
                    dt class="nhsuk-summary-list__key" { "Username" }
                    dd class="nhsuk-summary-list__value" { (me.user.username) }
                }
                div class="nhsuk-summary-list__row" {
                    dt class="nhsuk-summary-list__key" { "Email" }
                    dd class="nhsuk-summary-list__value" { (me.user.email) }
                }
            }
            h2 { "Two-factor sign-in" }
            @if me.user.totp_enabled {
                p { "On. You enter a code from your authenticator app when you sign in." }
                form method="post" action="/account/two-factor/disable" novalidate {
                    (ui::csrf_field(&me.csrf_token))
                    (ui::input(Field::text("disable_password", "Your password, to turn it off").kind("password").autocomplete("current-password").width(20), "", errors))
                    button class="nhsuk-button nhsuk-button--secondary" data-module="nhsuk-button" type="submit" { "Turn off two-factor sign-in" }
                }
            } @else {
                p { "Off. Turn it on so that a stolen password is not enough to sign in as you." }
                a class="nhsuk-button" data-module="nhsuk-button" role="button" draggable="false" href="/account/two-factor" { "Set up two-factor sign-in" }
            }
            h2 { "Change your password" }
            form method="post" action="/account/password" novalidate {
                (ui::csrf_field(&me.csrf_token))
                (ui::input(Field::text("current_password", "Current password").kind("password").autocomplete("current-password").width(20), "", errors))
                (ui::input(Field::text("new_password", "New password").kind("password").autocomplete("new-password").width(20)
                    .hint("At least 10 characters. A few unrelated words make a strong password."), "", errors))
                (ui::input(Field::text("confirm_password", "New password again").kind("password").autocomplete("new-password").width(20), "", errors))
                button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Change password" }
            }
        },
        ..Page::default()
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf_token: String,
    current_password: String,
    new_password: String,
    confirm_password: String,
}

async fn change_password(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let form = form.into_inner();
    let mut errors = Vec::new();
    let hash = me.user.password_hash.clone();
    let current = form.current_password.clone();
    let current_ok = web::block(move || password::verify(Some(&hash), &current)).await?;
    if !current_ok {
        errors.push(FieldError::new(
            "current_password",
            "Your current password is not right",
        ));
    }
    let new = Password::parse(&form.new_password)
        .map_err(|e| errors.push(FieldError::new("new_password", e)))
        .ok();
    if form.new_password != form.confirm_password {
        errors.push(FieldError::new(
            "confirm_password",
            "The two new passwords are not the same",
        ));
    }
    let (Some(new), true) = (new, errors.is_empty()) else {
        return Ok(html_page_invalid(
            &me.chrome(&state),
            account_page(&me, None, &errors),
        ));
    };
    let user_id = me.user.id;
    let actor = crate::editorial::Actor::web(&me.user);
    state
        .db(move |conn| {
            users::set_password(conn, user_id, &new).map_err(AppError::internal)?;
            auth::end_sessions_of(conn, user_id)?;
            record(
                conn,
                &actor,
                crate::editorial::audit::actions::PASSWORD_CHANGED,
            )
        })
        .await?;
    // This session's row went with the others; a fresh key keeps this browser signed in.
    me.session.renew();
    tracing::info!(user = %me.user.username, "password changed");
    Ok(see_other("/account?done=password"))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Step one: a new secret (kept, not yet enabled) shown as a QR code and as text.
async fn two_factor_setup(
    state: web::Data<AppState>,
    me: SignedIn,
) -> Result<HttpResponse, AppError> {
    if me.user.totp_enabled {
        return Ok(see_other("/account"));
    }
    let secret = match &me.user.totp_secret {
        Some(secret) => secret.clone(),
        None => {
            let secret = totp_rs::Secret::generate().to_base32();
            let user_id = me.user.id;
            let stored = secret.clone();
            state
                .db(move |conn| Ok(users::set_totp(conn, user_id, Some(&stored), false)?))
                .await?;
            secret
        }
    };
    Ok(html_page(
        &me.chrome(&state),
        setup_page(&state, &me, &secret, &[])?,
    ))
}

fn setup_page(
    state: &AppState,
    me: &SignedIn,
    secret: &str,
    errors: &[FieldError],
) -> Result<Page, AppError> {
    let totp = auth::totp_for(secret, &me.user.username, &state.settings.instance_name)?;
    let url = totp
        .to_url()
        .map_err(|e| AppError::internal(e.to_string()))?;
    let qr = qrcode::QrCode::new(url.as_bytes()).map_err(|e| AppError::internal(e.to_string()))?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let data_uri = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    );
    let grouped: String = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Page {
        title: "Set up two-factor sign-in".into(),
        noindex: true,
        main: html! {
            (ui::error_summary(errors))
            h1 { "Set up two-factor sign-in" }
            ol class="nhsuk-list nhsuk-list--number" {
                li { "Open an authenticator app on your phone, such as Microsoft Authenticator or Google Authenticator." }
                li {
                    "Scan this code, or enter the key by hand."
                    p { img class="rounds-qr" src=(data_uri) alt="QR code holding your two-factor key"; }
                    p { "Key: " code { (grouped) } }
                }
                li { "Enter the 6-digit code the app shows." }
            }
            form method="post" action="/account/two-factor" novalidate {
                (ui::csrf_field(&me.csrf_token))
                (ui::input(Field::text("code", "Security code").autocomplete("one-time-code").width(5), "", errors))
                button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Turn on two-factor sign-in" }
            }
        },
        ..Page::default()
    })
}

#[derive(Deserialize)]
struct CodeForm {
    csrf_token: String,
    code: String,
}

/// Step two: the code proves the app holds the secret; two-factor is now required.
async fn two_factor_confirm(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let Some(secret) = me
        .user
        .totp_secret
        .clone()
        .filter(|_| !me.user.totp_enabled)
    else {
        return Ok(see_other("/account"));
    };
    let totp = auth::totp_for(&secret, &me.user.username, &state.settings.instance_name)?;
    let Some(step) = auth::check_totp(&totp, &form.code) else {
        let errors = [FieldError::new(
            "code",
            "The code is not right: enter the 6-digit code your app shows now",
        )];
        return Ok(html_page_invalid(
            &me.chrome(&state),
            setup_page(&state, &me, &secret, &errors)?,
        ));
    };
    let user_id = me.user.id;
    let actor = crate::editorial::Actor::web(&me.user);
    state
        .db(move |conn| {
            users::set_totp(conn, user_id, Some(&secret), true)?;
            users::accept_totp_step(conn, user_id, step)?;
            record(
                conn,
                &actor,
                crate::editorial::audit::actions::TWO_FACTOR_ENABLED,
            )
        })
        .await?;
    tracing::info!(user = %me.user.username, "two-factor sign-in turned on");
    Ok(see_other("/account?done=two-factor-on"))
}

#[derive(Deserialize)]
struct DisableForm {
    csrf_token: String,
    disable_password: String,
}

async fn two_factor_disable(
    state: web::Data<AppState>,
    me: SignedIn,
    form: web::Form<DisableForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let hash = me.user.password_hash.clone();
    let candidate = form.disable_password.clone();
    if !web::block(move || password::verify(Some(&hash), &candidate)).await? {
        let errors = [FieldError::new(
            "disable_password",
            "Your password is not right",
        )];
        return Ok(html_page_invalid(
            &me.chrome(&state),
            account_page(&me, None, &errors),
        ));
    }
    let user_id = me.user.id;
    let actor = crate::editorial::Actor::web(&me.user);
    state
        .db(move |conn| {
            users::set_totp(conn, user_id, None, false)?;
            record(
                conn,
                &actor,
                crate::editorial::audit::actions::TWO_FACTOR_DISABLED,
            )
        })
        .await?;
    tracing::info!(user = %me.user.username, "two-factor sign-in turned off");
    Ok(see_other("/account?done=two-factor-off"))
}

/// Puts a change to someone's own sign-in settings on the audit log.
fn record(
    conn: &mut crate::db::DbConnection,
    actor: &crate::editorial::Actor,
    action: &str,
) -> Result<(), AppError> {
    use crate::editorial::audit;
    let name = actor.name.clone();
    audit::record(conn, &audit::Event::new(actor, action).subject(name))?;
    Ok(())
}
