//! Transactional email through the job queue. With no SMTP server configured, messages
//! are written as `.eml` files under the data dir.

use std::time::{Duration, Instant};

use rounds::mail::Email;
use serde_json::json;

use crate::helpers::TestApp;
use crate::{e2e, smtp};

e2e! {
    async fn queued_email_is_written_to_files_without_smtp(app: TestApp) {
        let email = Email {
            to: "jane.smith@nhs.net".into(),
            subject: "You are invited to the Jane Smith blog".into(),
            text: "Follow this link to accept.".into(),
            html: Some("<p>Follow this link to accept.</p>".into()),
            reply_to: None,
            bulk: None,
        };
        let mut conn = app.conn();
        assert!(rounds::jobs::enqueue(&mut conn, &email.job("invite:1").expect("job")).expect("enqueue"));
        assert!(!rounds::jobs::enqueue(&mut conn, &email.job("invite:1").expect("job")).expect("enqueue"), "once");
        // Once the job is recorded as done, its file is whole.
        let deadline = Instant::now() + Duration::from_secs(15);
        let done = || rounds::jobs::count(&mut app.conn(), rounds::mail::EMAIL_JOB, rounds::jobs::Status::Done).expect("count");
        while done() == 0 {
            assert!(Instant::now() < deadline, "the email job was never done");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(done(), 1);
        let folder = app.data_dir.join("mail");
        let files: Vec<_> = std::fs::read_dir(&folder).expect("mail folder").filter_map(Result::ok).map(|e| e.path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let file = &files[0];
        assert_eq!(file.extension().and_then(|e| e.to_str()), Some("eml"));
        let message = std::fs::read_to_string(file).expect("read");
        assert!(message.contains("To: jane.smith@nhs.net"), "{message}");
        assert!(message.contains("Subject: You are invited to the Jane Smith blog"), "{message}");
        assert!(message.contains("From: \"Test Trust blogs\" <no-reply@127.0.0.1>") || message.contains("From: Test Trust blogs <no-reply@127.0.0.1>"), "{message}");
        assert!(message.contains("multipart/alternative"), "{message}");
    }
}

/// A job's status, attempts and last error, by its idempotency key. A job counts as
/// running while a worker still holds it: one recorded as sent before its final "." is
/// `done` with the worker's hold until the server's reply settles it.
fn job(conn: &mut rounds::db::DbConnection, key: &str) -> (String, i32, Option<String>) {
    use diesel::prelude::*;
    use rounds::db::schema::jobs;
    let (status, held, attempts, error): (String, Option<String>, i32, Option<String>) =
        jobs::table
            .filter(jobs::idempotency_key.eq(key))
            .select((
                jobs::status,
                jobs::locked_by,
                jobs::attempts,
                jobs::last_error,
            ))
            .first(conn)
            .expect("job");
    let status = if held.is_some() {
        "running".to_owned()
    } else {
        status
    };
    (status, attempts, error)
}

/// Waits until the job with `key` reaches `status`; returns its attempts and last error.
async fn wait_job(app: &TestApp, key: &str, status: &str) -> (i32, Option<String>) {
    let mut conn = app.conn();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (now, attempts, error) = job(&mut conn, key);
        if now == status {
            return (attempts, error);
        }
        assert!(
            Instant::now() < deadline,
            "job {key} is {now}, never {status} ({error:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn enqueue(app: &TestApp, email: &Email, key: &str) {
    enqueue_job(app, email.job(key).expect("job"));
}

fn enqueue_job(app: &TestApp, job: rounds::jobs::NewJob) {
    let mut conn = app.conn();
    assert!(rounds::jobs::enqueue(&mut conn, &job).expect("enqueue"));
}

fn bulk_email(to: &str, subject: &str) -> Email {
    Email {
        to: to.into(),
        subject: subject.into(),
        text: "Proud of the team on ward 7 today.\n\nRead it at https://blogs.example/@ceo/ward-7".into(),
        html: Some("<table role=\"presentation\"><tr><td><p>Proud of the team on <a href=\"https://blogs.example/@ceo/ward-7\">ward 7</a> today.</p></td></tr></table>".into()),
        reply_to: Some("ceo@trust.example".into()),
        bulk: Some(rounds::mail::Bulk {
            list_id: "Jane Smith <ceo.blogs.example>".into(),
            unsubscribe_url: "https://blogs.example/unsubscribe/abc".into(),
            unsubscribe_mailto: "mailto:unsubscribe@blogs.example?subject=abc".into(),
        }),
    }
}

fn account_email(to: &str) -> Email {
    Email {
        to: to.into(),
        subject: "You are invited".into(),
        text: "Follow this link to accept.".into(),
        html: None,
        reply_to: None,
        bulk: None,
    }
}

e2e! {
    with smtp::attach;
    async fn messages_arrive_over_smtp_as_valid_mime(app: TestApp) {
        let peer = smtp::peer_of(&app);
        enqueue(&app, &bulk_email("staff.one@nhs.net", "Ward 7"), "mime:1");
        enqueue(&app, &account_email("jane.smith@nhs.net"), "mime:2");
        let bulk = peer.wait_for("staff.one@nhs.net", 1).await.remove(0);
        assert_eq!(bulk.mail_from, "no-reply@127.0.0.1");
        assert_eq!(bulk.rcpt_tos, ["staff.one@nhs.net"]);
        assert!(bulk.defects.is_empty(), "MIME defects: {:?}\n{}", bulk.defects, bulk.raw);
        assert_eq!(bulk.content_type, "multipart/alternative");
        let types: Vec<&str> = bulk.parts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["text/plain", "text/html"], "plain text first, then HTML");
        assert!(bulk.part("text/plain").expect("text").contains("Proud of the team on ward 7"));
        assert!(bulk.part("text/html").expect("html").contains("<a href=\"https://blogs.example/@ceo/ward-7\">"));
        assert_eq!(bulk.header("To"), Some("staff.one@nhs.net"));
        assert_eq!(bulk.header("Subject"), Some("Ward 7"));
        assert_eq!(bulk.header("Reply-To"), Some("ceo@trust.example"));
        assert_eq!(bulk.header("From"), Some("Test Trust blogs <no-reply@127.0.0.1>"));
        assert_eq!(bulk.header("List-Id"), Some("Jane Smith <ceo.blogs.example>"));
        assert_eq!(
            bulk.header("List-Unsubscribe"),
            Some("<https://blogs.example/unsubscribe/abc>, <mailto:unsubscribe@blogs.example?subject=abc>")
        );
        assert_eq!(bulk.header("List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));
        assert_eq!(bulk.header("Precedence"), Some("bulk"));
        assert!(bulk.header("Date").is_some_and(|d| d.contains(" +0000")), "{:?}", bulk.header("Date"));
        assert!(bulk.header("Message-ID").is_some_and(|m| m.starts_with('<') && m.ends_with("@127.0.0.1>")));
        assert!(bulk.header("DKIM-Signature").is_none(), "not signed without a key");

        let account = peer.wait_for("jane.smith@nhs.net", 1).await.remove(0);
        assert!(account.defects.is_empty(), "{:?}", account.defects);
        assert_eq!(account.content_type, "text/plain");
        assert!(account.header("List-Unsubscribe").is_none());
        wait_job(&app, "mime:1", "done").await;
        wait_job(&app, "mime:2", "done").await;
        assert_eq!(peer.stats().await.total, 2, "each message once");
    }
}

e2e! {
    with |s| { smtp::attach(s); s.mail_retry_seconds = 1; };
    async fn deferrals_are_retried_until_delivered(app: TestApp) {
        let peer = smtp::peer_of(&app);
        // 421 to the recipient, then 451 to the whole message (after the job was recorded
        // as sent, which the 451 must undo), then accepted.
        peer.control(json!({ "fail": [
            { "stage": "rcpt", "code": 421, "text": "4.7.0 try again later" },
            { "stage": "data", "code": 451, "text": "4.3.0 local error" },
        ] })).await;
        enqueue(&app, &bulk_email("deferred@nhs.net", "Deferred"), "defer:1");
        let (attempts, _) = wait_job(&app, "defer:1", "done").await;
        assert_eq!(attempts, 3, "two deferrals, then delivered");
        assert_eq!(peer.messages(Some("deferred@nhs.net")).await.len(), 1);
        assert_eq!(peer.attempts("deferred@nhs.net").await, 3);
        let mut conn = app.conn();
        assert!(!rounds::mail::is_suppressed(&mut conn, "deferred@nhs.net").expect("query"));
    }
}

e2e! {
    with smtp::attach;
    async fn a_hard_bounce_suppresses_the_address(app: TestApp) {
        let peer = smtp::peer_of(&app);
        peer.reject(&["gone@nhs.net"]).await;
        enqueue(&app, &bulk_email("gone@nhs.net", "First"), "bounce:1");
        let (attempts, error) = wait_job(&app, "bounce:1", "dropped").await;
        assert_eq!(attempts, 1, "a 5xx is not retried");
        assert!(error.as_deref().is_some_and(|e| e.starts_with("bounced") && e.contains("550")), "{error:?}");
        let mut conn = app.conn();
        assert!(rounds::mail::is_suppressed(&mut conn, "Gone@NHS.net").expect("query"), "any case");
        let record = rounds::mail::suppressions::find(&mut conn, "gone@nhs.net").expect("query").expect("row");
        assert_eq!(record.reason, "hard");

        // The next newsletter to the address is not even attempted; others still go.
        enqueue(&app, &bulk_email("gone@nhs.net", "Second"), "bounce:2");
        enqueue(&app, &bulk_email("here@nhs.net", "Second"), "bounce:3");
        let (_, error) = wait_job(&app, "bounce:2", "dropped").await;
        assert!(error.as_deref().is_some_and(|e| e.starts_with("suppressed")), "{error:?}");
        peer.wait_for("here@nhs.net", 1).await;
        assert_eq!(peer.attempts("gone@nhs.net").await, 1, "no RCPT TO for the suppressed address");

        // Account mail is still attempted (and bounces again).
        enqueue(&app, &account_email("gone@nhs.net"), "bounce:4");
        wait_job(&app, "bounce:4", "dropped").await;
        assert_eq!(peer.attempts("gone@nhs.net").await, 2);
        assert!(peer.messages(Some("gone@nhs.net")).await.is_empty());
    }
}

e2e! {
    with |s| { smtp::attach(s); s.mail_retry_seconds = 1; s.mail_soft_bounce_limit = 2; };
    async fn repeated_soft_bounces_suppress_the_address(app: TestApp) {
        let peer = smtp::peer_of(&app);
        let deferral = json!({ "stage": "rcpt", "code": 452, "text": "4.2.2 mailbox full" });
        peer.control(json!({ "fail": [deferral.clone(), deferral.clone(), deferral] })).await;
        // One attempt each, so each message ends undelivered on its first 4xx.
        enqueue_job(&app, bulk_email("full@nhs.net", "One").job("soft:1").expect("job").attempts(1));
        wait_job(&app, "soft:1", "dead").await;
        let mut conn = app.conn();
        assert!(!rounds::mail::is_suppressed(&mut conn, "full@nhs.net").expect("query"), "one soft bounce");
        enqueue_job(&app, bulk_email("full@nhs.net", "Two").job("soft:2").expect("job").attempts(1));
        wait_job(&app, "soft:2", "dead").await;
        assert!(rounds::mail::is_suppressed(&mut conn, "full@nhs.net").expect("query"), "the limit");
        let record = rounds::mail::suppressions::find(&mut conn, "full@nhs.net").expect("query").expect("row");
        assert_eq!((record.reason.as_str(), record.soft_bounces), ("soft", 2));
        enqueue(&app, &bulk_email("full@nhs.net", "Three"), "soft:3");
        wait_job(&app, "soft:3", "dropped").await;
        assert_eq!(peer.attempts("full@nhs.net").await, 2);
    }
}

e2e! {
    with |s| smtp::attach_tls(s, "--starttls");
    async fn starttls_and_auth_from_the_url(app: TestApp) {
        let peer = smtp::peer_of(&app);
        enqueue(&app, &bulk_email("tls@nhs.net", "Over STARTTLS"), "tls:1");
        enqueue(&app, &account_email("tls.two@nhs.net"), "tls:2");
        let message = peer.wait_for("tls@nhs.net", 1).await.remove(0);
        assert_eq!(message.header("Subject"), Some("Over STARTTLS"));
        peer.wait_for("tls.two@nhs.net", 1).await;
        wait_job(&app, "tls:2", "done").await;
    }
}

e2e! {
    with |s| smtp::attach_tls(s, "--smtps");
    async fn implicit_tls_and_auth_from_the_url(app: TestApp) {
        let peer = smtp::peer_of(&app);
        enqueue(&app, &bulk_email("smtps@nhs.net", "Over TLS"), "smtps:1");
        let message = peer.wait_for("smtps@nhs.net", 1).await.remove(0);
        assert_eq!(message.header("Subject"), Some("Over TLS"));
        wait_job(&app, "smtps:1", "done").await;
    }
}

/// Where the DKIM test keeps its key (in the test's data dir).
fn dkim_key(settings: &mut rounds::config::Settings) {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).expect("key");
    let path = settings.data_dir.join("dkim.pem");
    std::fs::write(
        &path,
        key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem")
            .as_bytes(),
    )
    .expect("write key");
    settings.dkim_key_file = path;
    settings.dkim_selector = "rounds2026".into();
    settings.dkim_domain = "trust.example".into();
    settings.mail_from = "Trust blogs <blogs@trust.example>".into();
}

/// dkimpy's verdict on a message.
fn dkim_verdict(app: &TestApp, raw: &str) -> (bool, String) {
    let file = app
        .data_dir
        .join(format!("message-{}.eml", crate::helpers::random_hex(4)));
    std::fs::write(&file, raw).expect("write message");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/dkim_verify.py");
    let output = std::process::Command::new(crate::helpers::python())
        .arg(script)
        .arg(&file)
        .arg(app.data_dir.join("dkim.pem"))
        .args(["rounds2026", "trust.example"])
        .output()
        .expect("run dkim_verify.py");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

e2e! {
    with |s| { smtp::attach(s); dkim_key(s); };
    async fn messages_are_dkim_signed_and_verify_with_dkimpy(app: TestApp) {
        let peer = smtp::peer_of(&app);
        enqueue(&app, &bulk_email("signed@nhs.net", "Signed"), "dkim:1");
        enqueue(&app, &account_email("signed.account@nhs.net"), "dkim:2");
        let bulk = peer.wait_for("signed@nhs.net", 1).await.remove(0);
        let signature = bulk.header("DKIM-Signature").expect("signed").to_owned();
        assert!(signature.contains("d=trust.example") && signature.contains("s=rounds2026"), "{signature}");
        let signed: String = signature.split("h=").nth(1).expect("h=").split(';').next().expect("list").to_ascii_lowercase();
        for header in ["from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"] {
            assert!(signed.contains(header), "{header} not signed: {signature}");
        }
        let (ok, said) = dkim_verdict(&app, &bulk.raw);
        assert!(ok, "dkimpy: {said}");
        let account = peer.wait_for("signed.account@nhs.net", 1).await.remove(0);
        let (ok, said) = dkim_verdict(&app, &account.raw);
        assert!(ok, "dkimpy: {said}");
        // The verifier does check: a changed subject fails.
        let tampered = bulk.raw.replacen("Subject: Signed", "Subject: Signed (changed)", 1);
        assert_ne!(tampered, bulk.raw);
        let (ok, said) = dkim_verdict(&app, &tampered);
        assert!(!ok, "a tampered message verified: {said}");
    }
}

#[tokio::test]
async fn a_bad_dkim_key_is_refused_at_start_naming_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut settings, _db) =
        crate::helpers::test_settings(crate::helpers::Backend::Sqlite, dir.path());
    let key = dir.path().join("dkim.pem");
    std::fs::write(
        &key,
        "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
    )
    .expect("write");
    settings.dkim_key_file = key;
    settings.dkim_selector = "rounds".into();
    settings.dkim_domain = "trust.example".into();
    let error = match rounds::startup::Application::build(settings).await {
        Ok(_) => panic!("started with a bad DKIM key"),
        Err(e) => e.to_string(),
    };
    assert!(error.starts_with("dkim_key_file:"), "{error}");

    // A selector without a key is a configuration error, naming the key that is missing.
    let error = rounds::config::Settings::load_from(
        None,
        [("ROUNDS_DKIM_SELECTOR".to_owned(), "rounds".to_owned())],
    )
    .expect_err("refused")
    .to_string();
    assert!(error.contains("dkim_key_file"), "{error}");
}

/// With no SMTP server configured, `rounds serve` says at start that mail goes to files.
#[test]
fn without_smtp_the_server_warns_that_mail_goes_to_files() {
    let dir = tempfile::tempdir().expect("dir");
    let (_, db) = crate::helpers::test_settings(crate::helpers::Backend::Sqlite, dir.path());
    let (mut child, _, log) =
        crate::editorial_restart::start_logged(&db.url, dir.path(), "127.0.0.1:0", &[]);
    let _ = child.kill();
    let _ = child.wait();
    let warning = log
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|entry| {
            entry["level"] == "WARN"
                && entry["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no smtp_url set"))
        })
        .unwrap_or_else(|| panic!("no warning about mail files in\n{}", log.join("\n")));
    let folder = warning["folder"].as_str().expect("folder");
    assert_eq!(std::path::Path::new(folder), dir.path().join("mail"));

    // With an SMTP server configured, no such warning.
    let peer = smtp::SmtpPeer::start();
    let url = peer.url();
    let (mut child, _, log) = crate::editorial_restart::start_logged(
        &db.url,
        dir.path(),
        "127.0.0.1:0",
        &[("ROUNDS_SMTP_URL", url.as_str())],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !log.iter().any(|line| line.contains("no smtp_url set")),
        "{}",
        log.join("\n")
    );
}

/// How many messages the crash test sends.
const CRASH_MESSAGES: usize = 10_000;
/// Jobs the crash test's server runs at once.
const CRASH_WORKERS: usize = 8;

/// Counts email jobs by status.
fn email_jobs(conn: &mut rounds::db::DbConnection, status: rounds::jobs::Status) -> i64 {
    rounds::jobs::count(conn, rounds::mail::EMAIL_JOB, status).expect("count")
}

/// `kill -9` in the middle of a 10,000-message send, twice, at the two moments that
/// matter, then a third server finishes: exactly one message arrives per recipient.
///
/// First kill: every worker has sent its message's final `.` and waits for the reply (the
/// peer holds it back). An at-least-once queue would still have these jobs running and
/// send them again; ours recorded them as sent before the `.`.
/// Second kill: the database is locked, so every worker with a message has sent all of
/// it but the final `.` and waits to record it as sent. The peer discards those unfinished
/// messages when the connection drops, and the jobs run again.
async fn crash(backend: crate::helpers::Backend) {
    use crate::editorial_restart::start_with;
    use diesel::connection::SimpleConnection;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let peer = smtp::SmtpPeer::start();
    let dir = tempfile::tempdir().expect("dir");
    let (_, db) = crate::helpers::test_settings(backend, dir.path());
    let url = peer.url();
    let workers = CRASH_WORKERS.to_string();
    let env = [
        ("ROUNDS_SMTP_URL", url.as_str()),
        ("ROUNDS_JOB_WORKERS", workers.as_str()),
    ];
    let kill = |child: &mut std::process::Child| {
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
    };
    let (mut first, _) = start_with(&db.url, dir.path(), "127.0.0.1:0", &env);
    let mut conn = rounds::db::ConnectionManager::new(&db.url)
        .expect("url")
        .open()
        .expect("open");
    rounds::db::write_tx(&mut conn, |c| -> Result<(), diesel::result::Error> {
        for i in 0..CRASH_MESSAGES {
            let email = Email {
                to: format!("staff{i:05}@nhs.net"),
                subject: format!("Ward round {i}"),
                text: format!("Message {i} of the crash test."),
                html: Some(format!("<p>Message {i} of the crash test.</p>")),
                reply_to: None,
                bulk: None,
            };
            rounds::jobs::enqueue(c, &email.job(format!("crash:{i}")).expect("job"))?;
        }
        Ok(())
    })
    .expect("enqueue");

    // First kill: while every worker waits for the reply to its final ".".
    peer.wait_until("1,000 messages", |s| s.total >= 1_000)
        .await;
    peer.control(json!({ "hold_final": true })).await;
    peer.wait_until("all workers waiting for a final reply", |s| {
        s.held == CRASH_WORKERS
    })
    .await;
    kill(&mut first);
    peer.control(json!({ "hold_final": false })).await;
    assert_eq!(
        email_jobs(&mut conn, rounds::jobs::Status::Running),
        0,
        "the messages whose final '.' was sent are recorded as sent"
    );
    let after_first = peer.stats().await;
    assert!(
        after_first.duplicates.is_empty(),
        "{:?}",
        after_first.duplicates
    );

    // Second kill: while every worker has sent all but the final "." and waits to record it.
    let (mut second, _) = start_with(&db.url, dir.path(), "127.0.0.1:0", &env);
    let goal = after_first.total + 1_000;
    peer.wait_until("1,000 more messages", |s| s.total >= goal)
        .await;
    let mut lock = rounds::db::ConnectionManager::new(&db.url)
        .expect("url")
        .open()
        .expect("open");
    match backend {
        crate::helpers::Backend::Sqlite => lock.batch_execute("BEGIN IMMEDIATE").expect("lock"),
        crate::helpers::Backend::Postgres => lock
            .batch_execute("BEGIN; LOCK TABLE jobs IN EXCLUSIVE MODE")
            .expect("lock"),
    }
    // Every job still running (not yet recorded as sent) is in DATA, held at its final ".".
    let deadline = Instant::now() + Duration::from_secs(60);
    let stuck = loop {
        let in_data = peer.stats().await.in_data;
        let running = email_jobs(&mut conn, rounds::jobs::Status::Running);
        if in_data > 0 && i64::try_from(in_data).expect("small") == running {
            break running;
        }
        assert!(
            Instant::now() < deadline,
            "workers never all stopped in DATA: {in_data} in DATA, {running} running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let before_kill = peer.stats().await.total;
    kill(&mut second);
    lock.batch_execute("ROLLBACK").expect("unlock");
    drop(lock);
    let after_second = peer.stats().await;
    assert_eq!(
        after_second.total, before_kill,
        "no unfinished message was accepted"
    );
    assert_eq!(
        email_jobs(&mut conn, rounds::jobs::Status::Running),
        stuck,
        "the jobs killed before their final '.' are still to do"
    );
    // Their leases would run out in two minutes; let that time pass at once.
    {
        use diesel::prelude::*;
        use rounds::db::schema::jobs;
        diesel::update(jobs::table.filter(jobs::status.eq("running")))
            .set(jobs::locked_until.eq(rounds::domain::now() - chrono::Duration::minutes(1)))
            .execute(&mut conn)
            .expect("expire leases");
    }

    // A third server finishes the send.
    let (mut third, _) = start_with(&db.url, dir.path(), "127.0.0.1:0", &env);
    let deadline = Instant::now() + Duration::from_secs(300);
    while email_jobs(&mut conn, rounds::jobs::Status::Done)
        < i64::try_from(CRASH_MESSAGES).expect("small")
    {
        assert!(
            Instant::now() < deadline,
            "the send never finished: {:?}",
            peer.stats().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kill(&mut third);
    let last = peer.stats().await;
    assert!(
        last.duplicates.is_empty(),
        "sent twice: {:?}",
        &last.duplicates[..last.duplicates.len().min(20)]
    );
    assert_eq!(last.distinct, CRASH_MESSAGES, "every recipient got one");
    assert_eq!(last.total, CRASH_MESSAGES, "and only one");
    drop(conn);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_sends_each_message_exactly_once_sqlite() {
    crash(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_sends_each_message_exactly_once_postgres() {
    if crate::helpers::postgres_skipped() {
        eprintln!("PostgreSQL left out by TEST_BACKENDS");
        return;
    }
    crash(crate::helpers::Backend::Postgres).await;
}
