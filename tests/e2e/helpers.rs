//! Every test gets its own server on port 0 with its own database: a fresh SQLite file,
//! or a fresh schema in the PostgreSQL test database (dropped afterwards).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use rand::Rng;
use reqwest::StatusCode;
use rounds::config::Settings;
use rounds::db::{self, DbConnection};
use rounds::domain::blogs::{self, Blog, NewBlogInput};
use rounds::domain::names::{EmailAddress, Handle, Username};
use rounds::domain::password::Password;
use rounds::domain::posts::{self, Post, PostFields, PostInput};
use rounds::domain::users::{self, User};
use rounds::startup::Application;
use scraper::{Html, Selector};
use tempfile::TempDir;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one async test body once per backend: `e2e! { async fn name(app: TestApp) {..} }`
/// makes `name::sqlite` and `name::postgres`. `e2e! { with |s| s.x = y; async fn .. }`
/// changes the settings first.
#[macro_export]
macro_rules! e2e {
    (with $change:expr; $(#[$meta:meta])* async fn $name:ident($app:ident : TestApp) $body:block) => {
        $crate::e2e!(@ $change, $(#[$meta])* async fn $name($app: TestApp) $body);
    };
    ($(#[$meta:meta])* async fn $name:ident($app:ident : TestApp) $body:block) => {
        $crate::e2e!(@ |_| {}, $(#[$meta])* async fn $name($app: TestApp) $body);
    };
    (@ $change:expr, $(#[$meta:meta])* async fn $name:ident($app:ident : TestApp) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, $change).await;
                run(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn_postgres($change).await {
                    run(app).await;
                }
            }
        }
    };
}

/// The PostgreSQL server tests use (the `test` database on the CI machine by default).
pub fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether this run was told to leave PostgreSQL out (never allowed in CI).
pub fn postgres_skipped() -> bool {
    let skip = std::env::var("TEST_BACKENDS").is_ok_and(|v| !v.contains("postgres"));
    if skip && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("TEST_BACKENDS leaves out PostgreSQL, which CI must test");
    }
    skip
}

/// A database of the test's own, removed when the test ends.
pub struct TestDatabase {
    pub url: String,
    schema: Option<String>,
}

impl TestDatabase {
    fn new(backend: Backend, dir: &Path) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.join("rounds.db").display()),
                schema: None,
            },
            Backend::Postgres => {
                let base = postgres_url();
                let schema = format!("t_{}", random_hex(8));
                let mut conn = diesel::PgConnection::establish(&base).unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {base} ({e}). Start it, set TEST_POSTGRES_URL, \
                         or run with TEST_BACKENDS=sqlite to leave it out."
                    )
                });
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .expect("create test schema");
                let separator = if base.contains('?') { '&' } else { '?' };
                Self {
                    url: format!("{base}{separator}options=-c%20search_path%3D{schema}"),
                    schema: Some(schema),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema
            && let Ok(mut conn) = diesel::PgConnection::establish(&postgres_url())
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
    }
}

pub fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub settings: Arc<Settings>,
    /// A client that keeps cookies and does not follow redirects.
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    // Dropped last: the server must stop before its database goes.
    pub db: TestDatabase,
    _dir: TempDir,
}

/// The settings a test server starts with.
pub fn test_settings(backend: Backend, dir: &Path) -> (Settings, TestDatabase) {
    let db = TestDatabase::new(backend, dir);
    let settings = Settings {
        database_url: rounds::config::Secret::new(db.url.clone()),
        database_pool_size: 4,
        bind: "127.0.0.1:0".parse().expect("address"),
        base_url: url::Url::parse("http://127.0.0.1:0").expect("url"),
        data_dir: dir.to_owned(),
        instance_name: "Test Trust blogs".into(),
        log_level: "warn".into(),
        http_workers: 2,
        ..Settings::default()
    };
    (settings, db)
}

impl TestApp {
    /// A PostgreSQL app, or `None` when the run leaves PostgreSQL out.
    pub async fn spawn_postgres(change: impl FnOnce(&mut Settings)) -> Option<Self> {
        if postgres_skipped() {
            eprintln!("PostgreSQL left out by TEST_BACKENDS");
            return None;
        }
        Some(Self::spawn_with(Backend::Postgres, change).await)
    }

    pub async fn spawn_with(backend: Backend, change: impl FnOnce(&mut Settings)) -> Self {
        // `TEST_LOG=warn` (or any filter) shows the in-process servers' logs.
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let dir = tempfile::Builder::new()
            .prefix("rounds-test-")
            .tempdir()
            .expect("temp dir");
        let (mut settings, db) = test_settings(backend, dir.path());
        change(&mut settings);
        let app = Application::build(settings).await.expect("server starts");
        let settings = app.settings();
        let handle = app.handle();
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client");
        Self {
            address,
            settings,
            client,
            data_dir: dir.path().to_owned(),
            handle,
            db,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// GETs a page and parses it.
    pub async fn page(&self, path: &str) -> (StatusCode, Page) {
        let response = self.get(path).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, Page::parse(&text))
    }

    /// A direct database connection, for seeding and for checking what was stored.
    pub fn conn(&self) -> DbConnection {
        db::ConnectionManager::new(&self.db.url)
            .expect("url")
            .open()
            .expect("connect")
    }

    /// The `rounds` command, pointed at this test's database and data folder.
    pub fn rounds(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rounds"));
        for (key, _) in std::env::vars() {
            if key.starts_with("ROUNDS_") {
                command.env_remove(key);
            }
        }
        command
            .env("ROUNDS_DATABASE_URL", &self.db.url)
            .env("ROUNDS_DATA_DIR", &self.data_dir)
            .env("ROUNDS_BASE_URL", self.settings.base_url.as_str())
            .stdin(Stdio::null());
        command
    }

    /// Runs `rounds` with arguments and optional standard input.
    pub fn run_rounds(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.rounds();
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().expect("run rounds");
        if let Some(text) = stdin {
            use std::io::Write;
            let written = child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes());
            // A command that refuses its arguments exits before reading its input.
            if let Err(e) = written
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                panic!("write stdin: {e}");
            }
        }
        child.wait_with_output().expect("rounds finished")
    }

    /// An account with a known password.
    pub fn user(&self, username: &str, admin: bool) -> User {
        let mut conn = self.conn();
        users::create(
            &mut conn,
            &Username::parse(username).expect("username"),
            &EmailAddress::parse(&format!("{username}@nhs.net")).expect("email"),
            &Password::parse(PASSWORD).expect("password"),
            admin,
        )
        .expect("user")
    }

    /// A blog owned by `owner`.
    pub fn blog(&self, handle: &str, name: &str, owner: &User) -> Blog {
        let mut conn = self.conn();
        blogs::create(
            &mut conn,
            &NewBlogInput {
                handle: &Handle::parse(handle).expect("handle"),
                display_name: name,
                role_title: Some("Chief Executive"),
                organisation: Some("Example NHS Foundation Trust"),
                owner_id: owner.id,
            },
        )
        .expect("blog")
    }

    /// Publishes a post straight into the database.
    pub fn publish(&self, blog: &Blog, title: &str, body: &str, tags: &str) -> Post {
        let mut conn = self.conn();
        let input = PostInput::parse(&PostFields {
            title,
            body,
            tags,
            ..PostFields::default()
        })
        .expect("valid post");
        db::write_tx(&mut conn, |conn| {
            let draft = posts::create_draft(conn, blog.id, None, &input)?;
            posts::publish(conn, &draft)
        })
        .expect("published")
    }

    /// Signs in through the login form; the app's client then carries the session.
    /// Ends this client's session with the sign-out form on one of the team's pages, so
    /// another person can sign in.
    pub async fn sign_out(&self, from: &str) {
        let (_, page) = self.page(from).await;
        let response = self
            .client
            .post(self.url("/logout"))
            .form(&[("csrf_token", page.csrf_token().as_str())])
            .send()
            .await
            .expect("logout");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-out");
    }

    pub async fn sign_in(&self, username: &str) {
        let (_, page) = self.page("/login").await;
        let token = page.csrf_token();
        let response = self
            .client
            .post(self.url("/login"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", username),
                ("password", PASSWORD),
                ("next", "/dashboard"),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "sign-in should redirect"
        );
    }

    /// A second client with its own cookies (another browser).
    pub fn new_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client")
    }
}

impl TestApp {
    /// A second, separate server (its own database on the same backend, its own data
    /// folder): another instance on the fediverse.
    pub async fn another(&self, change: impl FnOnce(&mut Settings)) -> TestApp {
        let backend = if self.db.url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        TestApp::spawn_with(backend, change).await
    }
}

/// Another node on the same database and data folder, answering for the same public URL
/// (as several nodes behind one proxy do).
pub struct Sibling {
    pub address: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Sibling {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    pub async fn sibling(&self) -> Sibling {
        let mut settings = (*self.settings).clone();
        settings.bind = "127.0.0.1:0".parse().expect("address");
        let app = Application::build(settings)
            .await
            .expect("second node starts");
        let handle = app.handle();
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Sibling { address, handle }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting at once; the database is dropped after this.
        drop(self.handle.stop(false));
    }
}

/// The password every test account has.
pub const PASSWORD: &str = "correct horse battery staple";

/// A parsed HTML page with helpers for what a user would see.
pub struct Page {
    pub html: Html,
    pub source: String,
}

impl Page {
    pub fn parse(text: &str) -> Self {
        Self {
            html: Html::parse_document(text),
            source: text.to_owned(),
        }
    }

    fn selector(css: &str) -> Selector {
        Selector::parse(css).unwrap_or_else(|e| panic!("bad selector {css}: {e:?}"))
    }

    /// Text of every element matching `css`, whitespace collapsed.
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.html
            .select(&Self::selector(css))
            .map(|e| {
                e.text()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// Text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        self.texts(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {css} in:\n{}", self.source))
    }

    /// The exact text of the first element matching `css` (a textarea's value).
    pub fn raw_text(&self, css: &str) -> String {
        self.html
            .select(&Self::selector(css))
            .next()
            .map(|e| e.text().collect())
            .unwrap_or_else(|| panic!("no element matches {css} in:\n{}", self.source))
    }

    /// An attribute of every element matching `css`.
    pub fn attrs(&self, css: &str, attr: &str) -> Vec<String> {
        self.html
            .select(&Self::selector(css))
            .filter_map(|e| e.value().attr(attr).map(str::to_owned))
            .collect()
    }

    pub fn has(&self, css: &str) -> bool {
        self.html.select(&Self::selector(css)).next().is_some()
    }

    pub fn title(&self) -> String {
        self.text("title")
    }

    pub fn h1(&self) -> String {
        self.text("h1")
    }

    pub fn csrf_token(&self) -> String {
        self.attrs("input[name=csrf_token]", "value")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no CSRF token in:\n{}", self.source))
    }

    /// The messages in the error summary.
    pub fn errors(&self) -> Vec<String> {
        self.texts(".nhsuk-error-summary__list li")
    }
}

/// Where the test tools (Python venv, node modules) live, made by `tests/setup`.
pub fn tools_dir() -> PathBuf {
    std::env::var("TEST_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools"))
}

/// The Python with the test peers installed.
pub fn python() -> PathBuf {
    let python = tools_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/setup (or tests/run) to install the test tools",
        python.display()
    );
    python
}

/// Starts one of the Python test tools in `tests/tools` and reads the JSON line it prints
/// when ready. Its stdin is a pipe, so a tool that watches it can exit with the test.
pub fn start_tool(script: &str, args: &[&str]) -> (std::process::Child, serde_json::Value) {
    use std::io::BufRead;
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tools")
        .join(script);
    let mut child = Command::new(python())
        .arg(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the tool's first line");
    let ready =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{script} said {line:?}: {e}"));
    (child, ready)
}

/// The Node packages for the browser tests (Playwright, axe-core), for `NODE_PATH`.
pub fn node_modules() -> PathBuf {
    let modules = tools_dir().join("node/node_modules");
    assert!(
        modules.join("playwright-core").exists(),
        "{} is missing: run tests/setup (or tests/run) to install the test tools",
        modules.display()
    );
    modules
}
