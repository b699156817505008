//! Signing in and out: server-side sessions in the database, CSRF tokens, the sign-in
//! rate limit and two-factor codes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use actix_session::config::{BrowserSession, TtlExtensionPolicy};
use actix_session::storage::{LoadError, SaveError, SessionKey, UpdateError, generate_session_key};
use actix_session::{Session, SessionExt, SessionMiddleware};
use actix_web::cookie::time::Duration;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::AppState;
use super::ui::{self, Chrome, Field, Page, Viewer};
use crate::db::schema::sessions;
use crate::db::{DbConnection, Pool};
use crate::domain::users::{self, User};
use crate::error::{AppError, FieldError};

const USER_ID: &str = "uid";
const PENDING_USER_ID: &str = "pending_uid";
const CSRF: &str = "csrf";
/// A signed-in session ends after this long without a request.
const IDLE_HOURS: i64 = 12;

// ---------------------------------------------------------------------------------------
// Session storage

/// Sessions kept in the database, so every node sees them and an account's sessions can
/// be ended at once (password change, removal). Rows are keyed by a hash of the cookie's
/// key, so a copy of the table signs nobody in.
#[derive(Clone)]
pub struct SessionStore {
    pool: Pool,
    key: Key,
    secure: bool,
}

impl SessionStore {
    /// A store on this pool; `key` signs and encrypts the cookie.
    pub fn new(pool: Pool, key: Key, secure: bool) -> Self {
        Self { pool, key, secure }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let pool = self.pool.clone();
        let result = web::block(move || -> anyhow::Result<T> {
            let mut conn = pool.get()?;
            Ok(work(&mut conn)?)
        })
        .await??;
        Ok(result)
    }
}

fn row_id(key: &SessionKey) -> String {
    hex(&Sha256::digest(key.as_ref().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn expiry(ttl: &Duration) -> NaiveDateTime {
    crate::domain::now() + chrono::Duration::seconds(ttl.whole_seconds())
}

fn user_of(state: &HashMap<String, String>) -> Option<i64> {
    state.get(USER_ID).and_then(|v| v.parse().ok())
}

impl actix_session::storage::SessionStore for SessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let id = row_id(key);
        let row: Option<(String, NaiveDateTime)> = self
            .run(move |conn| {
                sessions::table
                    .find(id)
                    .select((sessions::state, sessions::expires_at))
                    .first(conn)
                    .optional()
            })
            .await
            .map_err(LoadError::Other)?;
        match row {
            Some((state, expires_at)) if expires_at > crate::domain::now() => {
                serde_json::from_str(&state)
                    .map(Some)
                    .map_err(|e| LoadError::Deserialization(e.into()))
            }
            _ => Ok(None),
        }
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let key = generate_session_key();
        let id = row_id(&key);
        let json = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let expires_at = expiry(ttl);
        let user_id = user_of(&state);
        self.run(move |conn| {
            diesel::insert_into(sessions::table)
                .values((
                    sessions::id.eq(id),
                    sessions::user_id.eq(user_id),
                    sessions::state.eq(json),
                    sessions::expires_at.eq(expires_at),
                ))
                .execute(conn)
        })
        .await
        .map_err(SaveError::Other)?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let id = row_id(&key);
        let json =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let expires_at = expiry(ttl);
        let user_id = user_of(&state);
        let updated = self
            .run(move |conn| {
                diesel::update(sessions::table.find(id))
                    .set((
                        sessions::user_id.eq(user_id),
                        sessions::state.eq(json),
                        sessions::expires_at.eq(expires_at),
                    ))
                    .execute(conn)
            })
            .await
            .map_err(UpdateError::Other)?;
        if updated == 1 {
            Ok(key)
        } else {
            // The row was removed (expired, or every session of the account ended):
            // start a new one rather than revive the old key.
            self.save(state, ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            })
        }
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        let id = row_id(key);
        let expires_at = expiry(ttl);
        self.run(move |conn| {
            diesel::update(sessions::table.find(id))
                .set(sessions::expires_at.eq(expires_at))
                .execute(conn)
        })
        .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        let id = row_id(key);
        self.run(move |conn| diesel::delete(sessions::table.find(id)).execute(conn))
            .await?;
        Ok(())
    }
}

/// The session middleware for the team's pages: an HTTP-only, same-site cookie that
/// lasts until the browser closes and whose session ends after 12 idle hours.
pub fn session_middleware(store: &SessionStore) -> SessionMiddleware<SessionStore> {
    // `__Host-` tells browsers to accept the cookie only over https, for this host only.
    let name = if store.secure {
        "__Host-rounds_session"
    } else {
        "rounds_session"
    };
    SessionMiddleware::builder(store.clone(), store.key.clone())
        .cookie_name(name.to_owned())
        .cookie_secure(store.secure)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .session_lifecycle(
            BrowserSession::default()
                .state_ttl(Duration::hours(IDLE_HOURS))
                .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
        )
        .build()
}

/// Deletes sessions past their expiry; returns how many.
pub fn delete_expired_sessions(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.lt(crate::domain::now())))
        .execute(conn)
}

/// Ends every session of an account (after a password change or removal).
pub fn end_sessions_of(conn: &mut DbConnection, user_id: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}

// ---------------------------------------------------------------------------------------
// CSRF

/// This session's form token, made on first use.
pub fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Ok(Some(token)) = session.get::<String>(CSRF) {
        return Ok(token);
    }
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    let token = hex(&bytes);
    session
        .insert(CSRF, &token)
        .map_err(|e| AppError::internal(e.to_string()))?;
    Ok(token)
}

/// Refuses a form whose token is not this session's.
pub fn check_csrf(session: &Session, submitted: &str) -> Result<(), AppError> {
    match session.get::<String>(CSRF) {
        Ok(Some(expected))
            if constant_time_eq::constant_time_eq(expected.as_bytes(), submitted.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(AppError::Csrf),
    }
}

// ---------------------------------------------------------------------------------------
// The signed-in person

/// A request from a signed-in account. Extracting it loads the account afresh, so a
/// removed account or changed role takes effect on the next request.
pub struct SignedIn {
    /// The account.
    pub user: User,
    /// The session, for CSRF checks.
    pub session: Session,
    /// The token forms must carry.
    pub csrf_token: String,
}

impl SignedIn {
    /// The page chrome for this person.
    pub fn chrome(&self, state: &AppState) -> Chrome {
        Chrome {
            instance_name: state.settings.instance_name.clone(),
            viewer: Some(Viewer {
                username: self.user.username.clone(),
                csrf_token: self.csrf_token.clone(),
            }),
        }
    }

    /// Refuses a form whose token is not this session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), AppError> {
        check_csrf(&self.session, submitted)
    }
}

impl FromRequest for SignedIn {
    type Error = AppError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let cross_site = is_cross_site_write(req, state.as_ref().map(|s| s.get_ref()));
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("no app state"))?;
            if cross_site {
                return Err(AppError::Csrf);
            }
            let user_id = session
                .get::<i64>(USER_ID)
                .ok()
                .flatten()
                .ok_or(AppError::Unauthorized)?;
            let user = state
                .db(move |conn| Ok(users::find(conn, user_id)?))
                .await?
                .ok_or_else(|| {
                    session.purge();
                    AppError::Unauthorized
                })?;
            let csrf_token = csrf_token(&session)?;
            Ok(Self {
                user,
                session,
                csrf_token,
            })
        })
    }
}

/// A write whose `Origin` names another site: refused before any form is read, on top of
/// the CSRF token (browsers send `Origin` on every cross-site POST).
fn is_cross_site_write(req: &HttpRequest, state: Option<&AppState>) -> bool {
    if req.method().is_safe() {
        return false;
    }
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ours = state.map(|s| s.settings.base_url.origin().ascii_serialization());
    let host = req.connection_info().host().to_owned();
    let same_host = url::Url::parse(origin)
        .ok()
        .and_then(|u| u.host_str().map(|h| (h.to_owned(), u.port())))
        .is_some_and(|(h, port)| match port {
            Some(p) => format!("{h}:{p}") == host,
            None => h == host,
        });
    !(same_host || ours.as_deref() == Some(origin))
}

// ---------------------------------------------------------------------------------------
// Rate limit

/// Limits sign-in attempts per client address and per account name.
pub struct LoginLimiter {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_name: DefaultKeyedRateLimiter<String>,
}

impl LoginLimiter {
    /// `attempts` per 15 minutes for each address and each name.
    pub fn new(attempts: u32) -> Self {
        Self::per_window(attempts, StdDuration::from_secs(15 * 60))
    }

    /// `attempts` per `window` for each address and each name.
    pub fn per_window(attempts: u32, window: StdDuration) -> Self {
        let burst = NonZeroU32::new(attempts).unwrap_or(NonZeroU32::MIN);
        let period = window / burst.get();
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_minute(burst))
            .allow_burst(burst);
        Self {
            by_address: RateLimiter::keyed(quota),
            by_name: RateLimiter::keyed(quota),
        }
    }

    /// Counts an attempt; refuses it if either limit is spent.
    pub fn check(&self, address: IpAddr, name: &str) -> Result<(), AppError> {
        let now = DefaultClock::default().now();
        let refused = |not_until: governor::NotUntil<_>| AppError::TooManyRequests {
            retry_after_secs: not_until.wait_time_from(now).as_secs().max(1),
        };
        self.by_address.check_key(&address).map_err(refused)?;
        self.by_name
            .check_key(&name.trim().to_lowercase())
            .map_err(refused)?;
        Ok(())
    }

    /// Forgets keys whose limits have recovered (called now and then to bound memory).
    pub fn forget_recovered(&self) {
        self.by_address.retain_recent();
        self.by_name.retain_recent();
    }
}

/// The client's address: the peer, or behind a proxy the address that proxy saw. That is
/// the last `X-Forwarded-For` entry: earlier entries are whatever the client sent, so
/// trusting the first would let anyone choose their address (and dodge rate limits).
pub fn client_address(req: &HttpRequest, behind_proxy: bool) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    if !behind_proxy {
        return peer;
    }
    let last_forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .last()
        .map(str::to_owned);
    last_forwarded
        .and_then(|text| {
            text.parse::<IpAddr>()
                .ok()
                .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        })
        .unwrap_or(peer)
}

// ---------------------------------------------------------------------------------------
// Two-factor codes

/// The TOTP generator for an account's base32 secret.
pub fn totp_for(
    secret_base32: &str,
    account: &str,
    issuer: &str,
) -> Result<totp_rs::Totp, AppError> {
    let secret = totp_rs::Secret::try_from_base32(secret_base32)
        .map_err(|_| AppError::internal("stored TOTP secret is not base32"))?;
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(issuer.replace(':', " ")))
        .build()
        .map_err(|e| AppError::internal(format!("TOTP: {e}")))
}

/// The time step a code belongs to, if it is valid now (one step either side allowed).
pub fn check_totp(totp: &totp_rs::Totp, code: &str) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    totp.check_current(&code)
        .and_then(|step| i64::try_from(step).ok())
}

// ---------------------------------------------------------------------------------------
// Pages

/// `/login` and `/login/two-factor`.
pub fn login_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(login_form))
        .route("", web::post().to(login))
        .route("/two-factor", web::get().to(two_factor_form))
        .route("/two-factor", web::post().to(two_factor));
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// A `next` path that stays on this site, or the dashboard.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.starts_with("/login") =>
        {
            path.to_owned()
        }
        _ => "/dashboard".to_owned(),
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

async fn login_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    if session.get::<i64>(USER_ID).ok().flatten().is_some() {
        return Ok(see_other(&safe_next(query.next.as_deref())));
    }
    let token = csrf_token(&session)?;
    let no_users = state.db(|conn| Ok(users::count(conn)? == 0)).await?;
    Ok(html_page(
        &state.public_chrome(),
        login_page(&token, "", &safe_next(query.next.as_deref()), &[], no_users),
    ))
}

/// An HTML page response that must not be cached.
pub fn html_page(chrome: &Chrome, page: Page) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(ui::document(chrome, page).into_string())
}

/// The same page with a 400 status, for a form shown again with its errors.
pub fn html_page_invalid(chrome: &Chrome, page: Page) -> HttpResponse {
    let mut response = html_page(chrome, page);
    *response.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
    response
}

#[derive(Deserialize)]
struct LoginForm {
    csrf_token: String,
    username: String,
    password: String,
    next: Option<String>,
}

async fn login(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    check_csrf(&session, &form.csrf_token)?;
    let next = safe_next(form.next.as_deref());
    let mut errors = Vec::new();
    if form.username.trim().is_empty() {
        errors.push(FieldError::new(
            "username",
            "Enter your username or email address",
        ));
    }
    if form.password.is_empty() {
        errors.push(FieldError::new("password", "Enter your password"));
    }
    if errors.is_empty() {
        state.login_limiter.check(
            client_address(&req, state.settings.behind_proxy),
            &form.username,
        )?;
        let name = form.username.clone();
        let password = form.password.clone();
        let user = state
            .db(move |conn| {
                let user = users::find_for_sign_in(conn, &name)?;
                let ok = crate::domain::password::verify(
                    user.as_ref().map(|u| u.password_hash.as_str()),
                    &password,
                );
                Ok(user.filter(|_| ok))
            })
            .await?;
        match user {
            Some(user) => {
                // A new session key at every sign-in: a key planted before cannot ride it.
                session.renew();
                if user.totp_enabled {
                    insert(&session, PENDING_USER_ID, user.id)?;
                    insert(&session, "next", &next)?;
                    return Ok(see_other("/login/two-factor"));
                }
                insert(&session, USER_ID, user.id)?;
                tracing::info!(user = %user.username, "signed in");
                record_sign_in(&state, &req, &user, false).await?;
                return Ok(see_other(&next));
            }
            None => errors.push(FieldError::new(
                "username",
                "The username or password is not right",
            )),
        }
    }
    let token = csrf_token(&session)?;
    Ok(html_page_invalid(
        &state.public_chrome(),
        login_page(&token, &form.username, &next, &errors, false),
    ))
}

/// Puts a sign-in on the audit log, with the client's address.
async fn record_sign_in(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
    two_factor: bool,
) -> Result<(), AppError> {
    use crate::editorial::audit;
    let actor = crate::editorial::Actor::web(user)
        .from_address(client_address(req, state.settings.behind_proxy));
    let user_id = user.id;
    state
        .db(move |conn| {
            audit::record(
                conn,
                &audit::Event::new(&actor, audit::actions::SIGNED_IN)
                    .subject(format!("account {user_id}"))
                    .detail("two_factor", two_factor),
            )?;
            Ok(())
        })
        .await
}

/// Signs `user` in on this session (after accepting an invitation with a new account):
/// a new session key, then the account.
pub async fn start_session(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    user: &User,
) -> Result<(), AppError> {
    session.renew();
    insert(session, USER_ID, user.id)?;
    record_sign_in(state, req, user, false).await
}

fn insert<T: serde::Serialize>(session: &Session, key: &str, value: T) -> Result<(), AppError> {
    session
        .insert(key, value)
        .map_err(|e| AppError::internal(e.to_string()))
}

fn login_page(
    token: &str,
    username: &str,
    next: &str,
    errors: &[FieldError],
    no_users: bool,
) -> Page {
    Page {
        title: "Sign in".into(),
        noindex: true,
        main: html! {
            div class="nhsuk-grid-row" {
                div class="nhsuk-grid-column-one-half" {
                    (ui::error_summary(errors))
                    h1 { "Sign in" }
                    @if no_users {
                        div class="nhsuk-inset-text" {
                            span class="nhsuk-u-visually-hidden" { "Information: " }
                            p { "There are no accounts yet. Create the first administrator from the command line:" }
                            pre { code { "printf '%s' 'a long password' | rounds user add --username admin --email you@nhs.net --admin --password-stdin" } }
                        }
                    }
                    form method="post" action="/login" novalidate {
                        (ui::csrf_field(token))
                        input type="hidden" name="next" value=(next);
                        (ui::input(Field::text("username", "Username or email address").autocomplete("username").width(20), username, errors))
                        (ui::input(Field::text("password", "Password").kind("password").autocomplete("current-password").width(20), "", errors))
                        button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Sign in" }
                    }
                }
            }
        },
        ..Page::default()
    }
}

async fn two_factor_form(
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    if session.get::<i64>(PENDING_USER_ID).ok().flatten().is_none() {
        return Ok(see_other("/login"));
    }
    let token = csrf_token(&session)?;
    Ok(html_page(
        &state.public_chrome(),
        two_factor_page(&token, &[]),
    ))
}

#[derive(Deserialize)]
struct CodeForm {
    csrf_token: String,
    code: String,
}

async fn two_factor(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&session, &form.csrf_token)?;
    let Some(user_id) = session.get::<i64>(PENDING_USER_ID).ok().flatten() else {
        return Ok(see_other("/login"));
    };
    let user = state
        .db(move |conn| Ok(users::find(conn, user_id)?))
        .await?
        .ok_or(AppError::Unauthorized)?;
    state.login_limiter.check(
        client_address(&req, state.settings.behind_proxy),
        &user.username,
    )?;
    let secret = user.totp_secret.clone().unwrap_or_default();
    let totp = totp_for(&secret, &user.username, &state.settings.instance_name)?;
    let accepted = match check_totp(&totp, &form.code) {
        Some(step) => {
            state
                .db(move |conn| Ok(users::accept_totp_step(conn, user_id, step)?))
                .await?
        }
        None => false,
    };
    if !accepted {
        let token = csrf_token(&session)?;
        let errors = [FieldError::new(
            "code",
            "The code is not right or was already used: enter the current 6-digit code from your app",
        )];
        return Ok(html_page_invalid(
            &state.public_chrome(),
            two_factor_page(&token, &errors),
        ));
    }
    let next = session
        .get::<String>("next")
        .ok()
        .flatten()
        .unwrap_or_else(|| "/dashboard".into());
    session.remove(PENDING_USER_ID);
    session.remove("next");
    session.renew();
    insert(&session, USER_ID, user.id)?;
    tracing::info!(user = %user.username, "signed in with two-factor code");
    record_sign_in(&state, &req, &user, true).await?;
    Ok(see_other(&safe_next(Some(&next))))
}

fn two_factor_page(token: &str, errors: &[FieldError]) -> Page {
    Page {
        title: "Enter your security code".into(),
        noindex: true,
        main: html! {
            div class="nhsuk-grid-row" {
                div class="nhsuk-grid-column-one-half" {
                    (ui::error_summary(errors))
                    h1 { "Enter your security code" }
                    form method="post" action="/login/two-factor" novalidate {
                        (ui::csrf_field(token))
                        (ui::input(Field::text("code", "Security code")
                            .hint("The 6-digit code shown in your authenticator app")
                            .autocomplete("one-time-code").width(5), "", errors))
                        button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Continue" }
                    }
                }
            }
        },
        ..Page::default()
    }
}

#[derive(Deserialize)]
/// The sign-out form.
pub struct LogoutForm {
    csrf_token: String,
}

/// `POST /logout`: ends the session.
pub async fn logout(
    session: Session,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&session, &form.csrf_token)?;
    session.purge();
    Ok(see_other("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_site() {
        assert_eq!(safe_next(Some("/dashboard/@ceo")), "/dashboard/@ceo");
        assert_eq!(safe_next(Some("//evil.example")), "/dashboard");
        assert_eq!(safe_next(Some("https://evil.example")), "/dashboard");
        assert_eq!(safe_next(Some("/\\evil.example")), "/dashboard");
        assert_eq!(safe_next(None), "/dashboard");
    }

    #[test]
    fn limiter_refuses_after_the_allowance() {
        let limiter = LoginLimiter::new(3);
        let ip = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..3 {
            assert!(limiter.check(ip, "jane").is_ok());
        }
        match limiter.check(ip, "jane") {
            Err(AppError::TooManyRequests { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
