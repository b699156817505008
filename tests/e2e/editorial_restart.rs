//! A scheduled post survives the server being killed: `rounds serve` runs as a process,
//! a post is scheduled, the process is killed with SIGKILL before the time, and a new
//! process publishes it when the time has passed. On SQLite and PostgreSQL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::StatusCode;
use rounds::db::ConnectionManager;
use rounds::domain::blogs::{self, NewBlogInput};
use rounds::domain::names::{EmailAddress, Handle, Username};
use rounds::domain::password::Password;
use rounds::domain::users;

use crate::editorial::{location, london_fields};
use crate::helpers::{self, Backend, PASSWORD, Page};

/// Starts `rounds serve` on the database; returns the process and its address.
fn start(url: &str, data: &std::path::Path) -> (Child, String) {
    start_with(url, data, "127.0.0.1:0", &[])
}

/// Starts `rounds serve` on the database, bound to `bind` (its base URL is
/// `http://{bind}`, so a restart on the same address keeps every id), with more settings
/// from `env`; returns the process and its address.
pub fn start_with(
    url: &str,
    data: &std::path::Path,
    bind: &str,
    env: &[(&str, &str)],
) -> (Child, String) {
    let (child, address, _) = start_logged(url, data, bind, env);
    (child, address)
}

/// As [`start_with`], also returning the log lines written before the server said it was
/// running (JSON, one a line).
pub fn start_logged(
    url: &str,
    data: &std::path::Path,
    bind: &str,
    env: &[(&str, &str)],
) -> (Child, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rounds"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ROUNDS_DATABASE_URL", url)
        .env("ROUNDS_DATA_DIR", data)
        .env("ROUNDS_BIND", bind)
        .env("ROUNDS_BASE_URL", format!("http://{bind}"))
        .env("ROUNDS_LOG_FORMAT", "json")
        .env("ROUNDS_HTTP_WORKERS", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rounds serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let mut log = Vec::new();
    for line in lines.by_ref() {
        log.push(line.clone());
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
            && value["message"] == "rounds is running"
        {
            let address = value["bound"].as_str().expect("bound").to_owned();
            // Keep draining the log so the process never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (child, format!("http://{address}"), log);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server never said it was running:\n{}", log.join("\n"));
}

/// Stops a server process with SIGTERM and waits for it.
pub fn stop(mut server: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}

/// An account `jane` and her blog `ceo`, straight into the database.
pub fn seed_blog(url: &str) {
    let mut conn = ConnectionManager::new(url)
        .expect("url")
        .open()
        .expect("open");
    let jane = users::create(
        &mut conn,
        &Username::parse("jane").expect("name"),
        &EmailAddress::parse("jane@nhs.net").expect("email"),
        &Password::parse(PASSWORD).expect("password"),
        false,
    )
    .expect("user");
    blogs::create(
        &mut conn,
        &NewBlogInput {
            handle: &Handle::parse("ceo").expect("handle"),
            display_name: "Jane Smith",
            role_title: None,
            organisation: None,
            owner_id: jane.id,
        },
    )
    .expect("blog");
}

async fn run(backend: Backend) {
    // The in-process tests get this from Application::build; this one has no app.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("dir");
    let (_, db) = helpers::test_settings(backend, dir.path());
    let (mut first, address) = start(&db.url, dir.path());
    seed_blog(&db.url);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let page = |path: String| {
        let client = client.clone();
        async move {
            let response = client.get(path).send().await.expect("get");
            Page::parse(&response.text().await.expect("body"))
        }
    };
    let login = page(format!("{address}/login")).await;
    let signed_in = client
        .post(format!("{address}/login"))
        .form(&[
            ("csrf_token", login.csrf_token().as_str()),
            ("username", "jane"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let editor = page(format!("{address}/dashboard/@ceo/new")).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", editor.csrf_token())
        .text("action", "save")
        .text("title", "After the restart")
        .text("body", "Scheduled before the server died.");
    let saved = client
        .post(format!("{address}/dashboard/@ceo/new"))
        .multipart(form)
        .send()
        .await
        .expect("save");
    let id: i64 = location(&saved)
        .trim_start_matches("/dashboard/posts/")
        .split('?')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("post id");
    let review = page(format!("{address}/dashboard/posts/{id}/review")).await;
    let revision = review
        .attrs("input[name=revision]", "value")
        .into_iter()
        .next()
        .expect("revision");
    let at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let mut fields: Vec<(String, String)> = london_fields(at)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    fields.push(("csrf_token".into(), review.csrf_token()));
    fields.push(("revision".into(), revision));
    let scheduled = client
        .post(format!("{address}/dashboard/posts/{id}/schedule"))
        .form(&fields)
        .send()
        .await
        .expect("schedule");
    assert_eq!(
        location(&scheduled),
        format!("/dashboard/posts/{id}/review?done=scheduled")
    );

    // Killed outright before the time comes.
    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = |conn: &mut rounds::db::DbConnection| -> String {
        rounds::db::schema::posts::table
            .find(id)
            .select(rounds::db::schema::posts::status)
            .first(conn)
            .expect("post")
    };
    let mut conn = ConnectionManager::new(&db.url)
        .expect("url")
        .open()
        .expect("open");
    assert_eq!(
        status(&mut conn),
        "draft",
        "nothing ran while no server was up"
    );

    // A new process finds the job and publishes the post.
    let (second, address) = start(&db.url, dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = reqwest::get(format!("{address}/@ceo/after-the-restart"))
            .await
            .expect("get");
        if response.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scheduled post never went out after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    use rounds::db::schema::audit_log;
    let published: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.eq("post.published"))
        .select((audit_log::actor_name, audit_log::source))
        .load(&mut conn)
        .expect("audit");
    assert_eq!(
        published,
        [("rounds (for jane)".to_owned(), "system".to_owned())]
    );
    stop(second);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_publish_survives_a_killed_server_sqlite() {
    run(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_publish_survives_a_killed_server_postgres() {
    if helpers::postgres_skipped() {
        eprintln!("PostgreSQL left out by TEST_BACKENDS");
        return;
    }
    run(Backend::Postgres).await;
}
