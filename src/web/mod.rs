//! Everything served over HTTP: public pages, feeds, media, the team's pages.

pub mod account;
pub mod assets;
pub mod auth;
pub mod editor;
pub mod errors;
pub mod feeds;
pub mod health;
pub mod http;
pub mod media;
pub mod public;
pub mod settings;
pub mod ui;

use std::sync::Arc;

use actix_web::web;

use crate::config::Settings;
use crate::db::{DbConnection, Pool};
use crate::error::AppError;

/// What every handler can reach: settings, the database, the sign-in limiter.
pub struct AppState {
    /// Settings, read once at start.
    pub settings: Arc<Settings>,
    /// The database pool.
    pub pool: Pool,
    /// Sign-in attempt limits.
    pub login_limiter: auth::LoginLimiter,
    /// Newsletter subscribe requests per client address and per email address.
    pub subscribe_limiter: auth::LoginLimiter,
    /// Rendered public pages and feeds by entity tag.
    pub render_cache: http::RenderCache,
    /// The fediverse: signing, fetching, the instance actor.
    pub federation: crate::federation::Federation,
    /// Wakes this node's job workers after a request queued work.
    pub jobs_wake: std::sync::Arc<tokio::sync::Notify>,
    /// One permit per pooled connection: database work waits here, on the async side,
    /// instead of parking a blocking thread inside the pool for each waiting request.
    pub db_slots: tokio::sync::Semaphore,
}

impl AppState {
    /// Runs database work on the blocking pool with a pooled connection.
    pub async fn db<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        let _slot = self
            .db_slots
            .acquire()
            .await
            .map_err(|_| AppError::internal("database permits closed"))?;
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }

    /// The page chrome for a visitor who is not signed in.
    pub fn public_chrome(&self) -> ui::Chrome {
        ui::Chrome {
            instance_name: self.settings.instance_name.clone(),
            viewer: None,
        }
    }
}

/// Registers every route. Only the team's pages sit inside the session middleware, so a
/// reader's request never touches the session store.
pub fn routes(cfg: &mut web::ServiceConfig, sessions: &auth::SessionStore) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(assets::serve)
        .service(media::serve)
        .service(public::source)
        .service(
            web::scope("/login")
                .wrap(auth::session_middleware(sessions))
                .configure(auth::login_routes),
        )
        .service(
            web::resource("/logout")
                .wrap(auth::session_middleware(sessions))
                .route(web::post().to(auth::logout)),
        )
        .service(
            web::scope("/account")
                .wrap(auth::session_middleware(sessions))
                .configure(account::routes),
        )
        .service(
            web::scope("/dashboard")
                .wrap(auth::session_middleware(sessions))
                .configure(editor::routes)
                .configure(settings::routes)
                .configure(crate::federation::pages::routes)
                .configure(crate::newsletter::team::routes),
        )
        .configure(crate::federation::discovery::routes)
        .configure(crate::federation::inbox::routes)
        .configure(crate::federation::collections::routes)
        .configure(crate::newsletter::pages::routes)
        .configure(feeds::routes)
        .configure(public::routes);
}
