//! Building and running the server: database, migrations, routes, middleware.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::Key;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{DefaultHeaders, ErrorHandlers};
use actix_web::{App, HttpServer, web};
use base64::Engine;
use sha2::{Digest, Sha256};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::db::{self, Pool};
use crate::error::AppError;
use crate::jobs::runner::Runner;
use crate::web::{self as routes, AppState, auth, errors, ui};

/// Memory for rendered public pages and feeds.
const RENDER_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("{0}")]
    Database(String),
    /// The address could not be bound, or the data folder made.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A setting could not be used (e.g. the SMTP URL).
    #[error("{0}")]
    Config(String),
}

/// A built server, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    runner: Runner,
}

impl Application {
    /// Opens the database, applies migrations, binds the address and builds the routes.
    /// A `base_url` with port 0 takes the port actually bound (for tests on port 0).
    pub async fn build(mut settings: Settings) -> Result<Self, StartError> {
        let listener = TcpListener::bind(settings.bind).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", settings.bind))
        })?;
        let port = listener.local_addr()?.port();
        if settings.base_url.port() == Some(0) {
            settings
                .base_url
                .set_port(Some(port))
                .map_err(|()| StartError::Database("base_url cannot take a port".into()))?;
        }
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot create data folder {}: {e}",
                    settings.data_dir.display()
                ),
            )
        })?;
        // One TLS provider for every client (federation, SMTP); a second call is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pool = open_database(&settings).await?;
        let key = session_key(&pool).await?;
        let settings = Arc::new(settings);
        let wake = Arc::new(tokio::sync::Notify::new());
        let federation = crate::federation::build(settings.clone(), pool.clone())
            .await
            .map_err(StartError::Config)?;
        let runner = build_runner(&settings, &pool, &federation, wake.clone())?;
        let state = web::Data::new(AppState {
            federation,
            jobs_wake: wake,
            login_limiter: auth::LoginLimiter::new(settings.login_attempts_per_window),
            subscribe_limiter: auth::LoginLimiter::per_window(
                settings.newsletter_requests_per_hour,
                Duration::from_secs(3600),
            ),
            render_cache: crate::web::http::RenderCache::new(RENDER_CACHE_BYTES),
            db_slots: tokio::sync::Semaphore::new(settings.database_pool_size as usize),
            settings: settings.clone(),
            pool: pool.clone(),
        });
        let sessions = auth::SessionStore::new(pool, key, settings.secure_cookies());
        let headers = security_headers(&settings);
        let app_state = state.clone();
        let upload_max = settings.upload_max_bytes;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(routes::editor::multipart_config(upload_max))
                .app_data(
                    web::FormConfig::default()
                        .limit(1024 * 1024)
                        .error_handler(|e, _| bad_request(&e)),
                )
                .app_data(web::QueryConfig::default().error_handler(|_, _| {
                    AppError::invalid("", "The address has a value that is not allowed").into()
                }))
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()),
                )
                .wrap(ErrorHandlers::new().default_handler(errors::render))
                .wrap(default_headers(&headers))
                .wrap(TracingLogger::default())
                .configure(|cfg| routes::routes(cfg, &sessions))
                .default_service(web::to(errors::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(30);
        if settings.http_workers > 0 {
            server = server.workers(settings.http_workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            state,
            runner,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The settings in effect (with the bound port filled in).
    pub fn settings(&self) -> Arc<Settings> {
        self.state.settings.clone()
    }

    /// A handle that can stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM or SIGINT: finish requests in flight, then exit),
    /// with housekeeping alongside.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let housekeeping = tokio::spawn(housekeeping(self.state.clone()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = tokio::spawn(self.runner.run(stopped));
        let result = self.server.await;
        let _ = stop.send(true);
        stop_workers(workers).await;
        housekeeping.abort();
        tracing::info!("server stopped");
        result
    }
}

/// The job workers with every kind's handler registered.
fn build_runner(
    settings: &Settings,
    pool: &Pool,
    federation: &crate::federation::Federation,
    wake: Arc<tokio::sync::Notify>,
) -> Result<Runner, StartError> {
    let email = Arc::new(
        crate::mail::EmailHandler::new(settings, pool.clone()).map_err(StartError::Config)?,
    );
    if let Some(dir) = email.mailer().writes_files() {
        tracing::warn!(
            folder = %dir.display(),
            "no smtp_url set: outgoing mail is written to files, not sent"
        );
    }
    let mut runner = Runner::new(pool.clone(), settings.job_workers).with_waker(wake);
    runner.register(crate::mail::EMAIL_JOB, email.clone());
    runner.register(
        crate::newsletter::sending::EMAIL_JOB,
        crate::newsletter::sending::EmailLetterHandler::new(
            pool.clone(),
            Arc::new(settings.clone()),
            email,
        ),
    );
    runner.register(
        crate::federation::outbox::FEDERATE_JOB,
        crate::federation::outbox::FederateHandler::new(federation.clone()),
    );
    runner.register(
        crate::federation::delivery::DELIVER_JOB,
        crate::federation::delivery::DeliverHandler::new(
            federation.clone(),
            crate::federation::delivery::http_client(
                settings,
                settings.federation_allow_private_addresses,
            )
            .map_err(StartError::Config)?,
            Duration::from_secs(settings.federation_retry_seconds),
        ),
    );
    runner.register(
        crate::editorial::schedule::PUBLISH_JOB,
        crate::editorial::schedule::Publisher {
            pool: pool.clone(),
            federation: federation.clone(),
        },
    );
    let schedule =
        crate::newsletter::digest::Schedule::from_settings(settings).map_err(StartError::Config)?;
    runner.register(
        crate::newsletter::sending::FANOUT_JOB,
        crate::newsletter::sending::FanoutHandler {
            pool: pool.clone(),
            wake: runner.waker(),
        },
    );
    // The next digests are queued at every start (idempotently), so a new instance has
    // them and one restored from an old backup catches up.
    let mut conn = pool
        .get()
        .map_err(|e| StartError::Database(e.to_string()))?;
    crate::newsletter::sending::schedule_digests(&mut conn, &schedule, crate::domain::now())
        .map_err(|e| StartError::Database(e.to_string()))?;
    runner.register(
        crate::newsletter::sending::DIGEST_JOB,
        crate::newsletter::sending::DigestHandler {
            pool: pool.clone(),
            schedule,
        },
    );
    Ok(runner)
}

/// Lets jobs in flight finish (their leases would hand them to another worker anyway).
async fn stop_workers(workers: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(Duration::from_secs(30), workers)
        .await
        .is_err()
    {
        tracing::warn!("job workers did not finish within 30 s; their jobs will run again");
    }
}

/// `rounds worker`: the job workers alone, for nodes that serve no HTTP.
pub async fn run_workers(settings: Settings) -> Result<(), StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pool = open_database(&settings).await?;
    let settings = Arc::new(settings);
    let federation = crate::federation::build(settings.clone(), pool.clone())
        .await
        .map_err(StartError::Config)?;
    let runner = build_runner(
        &settings,
        &pool,
        &federation,
        Arc::new(tokio::sync::Notify::new()),
    )?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(runner.run(stopped));
    tracing::info!("job workers running");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    let _ = stop.send(true);
    stop_workers(workers).await;
    tracing::info!("job workers stopped");
    Ok(())
}

/// Opens the pool and applies pending migrations.
pub async fn open_database(settings: &Settings) -> Result<Pool, StartError> {
    let url = settings.effective_database_url();
    let size = settings.database_pool_size;
    tokio::task::spawn_blocking(move || {
        let pool = db::build_pool(&url, size).map_err(StartError::Database)?;
        let mut conn = pool
            .get()
            .map_err(|e| StartError::Database(e.to_string()))?;
        let applied = db::run_migrations(&mut conn).map_err(StartError::Database)?;
        for name in applied {
            tracing::info!(migration = %name, "applied migration");
        }
        Ok(pool)
    })
    .await
    .map_err(|e| StartError::Database(e.to_string()))?
}

/// The cookie key, made once per instance and kept in the database.
async fn session_key(pool: &Pool) -> Result<Key, StartError> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool
            .get()
            .map_err(|e| StartError::Database(e.to_string()))?;
        let encoded = db::instance_secret(&mut conn, "session_key", || {
            use rand::Rng;
            let bytes: [u8; 64] = rand::rng().random();
            base64::engine::general_purpose::STANDARD.encode(bytes)
        })
        .map_err(|e| StartError::Database(e.to_string()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| StartError::Database(format!("stored session key is damaged: {e}")))?;
        Key::try_from(bytes.as_slice())
            .map_err(|e| StartError::Database(format!("stored session key is too short: {e}")))
    })
    .await
    .map_err(|e| StartError::Database(e.to_string()))?
}

fn bad_request(error: &actix_web::error::UrlencodedError) -> actix_web::Error {
    match error {
        actix_web::error::UrlencodedError::Overflow { .. } => AppError::PayloadTooLarge.into(),
        _ => AppError::invalid("", "The form could not be read. Go back and try again.").into(),
    }
}

/// Headers on every response: a content security policy that allows only our own scripts
/// (and the one inline script the NHS.UK frontend needs, by hash), no framing, no
/// sniffing, and HSTS when served over https.
fn security_headers(settings: &Settings) -> Vec<(&'static str, String)> {
    let script_hash = base64::engine::general_purpose::STANDARD
        .encode(Sha256::digest(ui::JS_ENABLED_SCRIPT.as_bytes()));
    let csp = format!(
        "default-src 'self'; script-src 'self' 'sha256-{script_hash}'; style-src 'self'; \
         img-src 'self' data: https:; font-src 'self' https://assets.nhs.uk; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
         object-src 'none'"
    );
    let mut headers = vec![
        ("Content-Security-Policy", csp),
        ("X-Content-Type-Options", "nosniff".to_owned()),
        ("X-Frame-Options", "DENY".to_owned()),
        (
            "Referrer-Policy",
            "strict-origin-when-cross-origin".to_owned(),
        ),
    ];
    if settings.secure_cookies() {
        headers.push(("Strict-Transport-Security", "max-age=31536000".to_owned()));
    }
    headers
}

/// The middleware for [`security_headers`] (built per worker: it is not `Send`).
fn default_headers(headers: &[(&'static str, String)]) -> DefaultHeaders {
    headers
        .iter()
        .fold(DefaultHeaders::new(), |d, (name, value)| {
            d.add((*name, value.clone()))
        })
}

/// Periodic tidying: expired sessions, recovered rate-limit keys, finished jobs (after
/// two weeks: long enough that a retry of the same work finds its idempotency key) and
/// received activity ids (after thirty days: servers stop redelivering long before).
async fn housekeeping(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        state.login_limiter.forget_recovered();
        state.subscribe_limiter.forget_recovered();
        let result = state
            .db(|conn| {
                Ok((
                    auth::delete_expired_sessions(conn)?,
                    crate::jobs::prune(conn, chrono::Duration::days(14))?,
                    crate::federation::moderation::prune_received(
                        conn,
                        chrono::Duration::days(30),
                    )?,
                ))
            })
            .await;
        match result {
            Ok((0, 0, 0)) => {}
            Ok((sessions, jobs, received)) => {
                tracing::info!(
                    sessions,
                    jobs,
                    received,
                    "tidied expired sessions, old jobs and activity ids"
                );
            }
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}
