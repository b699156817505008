//! The newsletter end to end: subscribe → confirmation email → confirm → publish →
//! per-post email (headers, parts, links) → preferences → one-click unsubscribe → nothing
//! more; the domain allow-list, rate limits, answers that reveal nothing, and digests.
//!
//! Messages are read as a mail client would, by Python's `email` package
//! (tests/tools/read_mail.py). They come from the `.eml` folder the server writes to with
//! no SMTP configured; [`Inbox`] is the one place that knows that, so pointing it at an
//! SMTP peer's store later changes nothing else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rounds::newsletter::Cadence;
use rounds::newsletter::sending::{self, DigestDue};
use rounds::newsletter::subscribers;
use serde::Deserialize;

use crate::e2e;
use crate::helpers::{TestApp, python};

/// One message as Python's email package read it.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    pub content_type: String,
    pub headers: HashMap<String, Vec<String>>,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(&name.to_lowercase())
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default()
    }

    pub fn part(&self, kind: &str) -> String {
        self.parts
            .iter()
            .find(|p| p.kind == kind)
            .map(|p| p.text.clone())
            .unwrap_or_default()
    }

    /// Every link in the plain-text part starting with `prefix`.
    pub fn links(&self, prefix: &str) -> Vec<String> {
        let text = self.part("text/plain");
        text.split_whitespace()
            .filter(|w| w.starts_with(prefix))
            .map(|w| w.trim_end_matches(['.', ',', ')']).to_owned())
            .collect()
    }
}

/// Where the server's outgoing mail lands.
pub struct Inbox {
    dir: PathBuf,
}

impl Inbox {
    pub fn of(app: &TestApp) -> Self {
        Self {
            dir: app.data_dir.join("mail"),
        }
    }

    /// Every message so far, oldest file first.
    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        if files.is_empty() {
            return Vec::new();
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/read_mail.py");
        let output = std::process::Command::new(python())
            .arg(script)
            .args(&files)
            .output()
            .expect("run read_mail.py");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("read_mail.py JSON")
    }

    /// Waits for a message whose subject contains `subject`.
    pub async fn wait_for(&self, subject: &str) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(mail) = self
                .messages()
                .into_iter()
                .find(|m| m.header("subject").contains(subject))
            {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no message with subject {subject:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Waits until no job of `kind` is pending or running.
async fn settle(app: &TestApp, kind: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = app.conn();
    loop {
        let busy = rounds::jobs::count(&mut conn, kind, rounds::jobs::Status::Pending)
            .expect("count")
            + rounds::jobs::count(&mut conn, kind, rounds::jobs::Status::Running).expect("count");
        if busy == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{kind} jobs did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn subscribe(
    app: &TestApp,
    email: &str,
    blogs: &[&str],
    cadence: &str,
) -> (StatusCode, String) {
    let mut form = vec![("email", email), ("cadence", cadence)];
    form.extend(blogs.iter().map(|b| ("blog", *b)));
    let response = app
        .client
        .post(app.url("/subscribe"))
        .form(&form)
        .send()
        .await
        .expect("subscribe");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

fn path_of(app: &TestApp, link: &str) -> String {
    link.strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("{link} is not an absolute link to {}", app.address))
        .to_owned()
}

e2e! {
    async fn subscribe_confirm_receive_and_unsubscribe_in_one_click(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        let inbox = Inbox::of(&app);

        // The form is on the blog's page.
        let (_, page) = app.page("/@ceo").await;
        assert!(page.has("form[action='/subscribe'] input[name=email]"), "no subscribe form");
        assert_eq!(page.attrs("input[name=cadence][checked]", "value"), vec!["each_post"]);

        let (status, body) = subscribe(&app, "Staff.Member@nhs.net", &["ceo"], "each_post").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let confirmation = inbox.wait_for("Confirm your subscription to Jane Smith").await;
        assert_eq!(confirmation.header("to"), "staff.member@nhs.net");
        assert!(confirmation.header("list-unsubscribe").is_empty(), "a confirmation is not bulk mail");
        let confirm = confirmation.links(&format!("{}/subscribe/confirm/", app.address));
        assert_eq!(confirm.len(), 1, "{:?}", confirmation.part("text/plain"));

        // Nothing is sent before confirmation.
        app.run_rounds(&["post", "publish", "--blog", "ceo", "--author", "jane", "-"], Some("Before anyone confirmed."));
        settle(&app, sending::FANOUT_JOB).await;
        settle(&app, sending::EMAIL_JOB).await;
        settle(&app, rounds::mail::EMAIL_JOB).await;
        assert_eq!(inbox.messages().len(), 1, "only the confirmation");

        // The link shows a button (scanners follow links); the button confirms, once.
        let path = path_of(&app, &confirm[0]);
        assert_eq!(app.get(&path).await.status(), StatusCode::OK);
        let confirmed = app.client.post(app.url(&path)).send().await.expect("confirm");
        assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
        let preferences = confirmed.headers()["location"].to_str().expect("location").to_owned();
        assert!(preferences.starts_with("/newsletter/preferences/"), "{preferences}");
        let again = app.client.post(app.url(&path)).send().await.expect("confirm again");
        assert_eq!(again.status(), StatusCode::GONE, "single use");

        // Published from the command line while the server runs: its workers mail it.
        let published = app.run_rounds(
            &["post", "publish", "--blog", "ceo", "--author", "jane", "--title", "Our winter plan", "--summary", "What changes on the wards", "-"],
            Some("We open **twenty** more beds. [The plan](/@ceo/about)"),
        );
        assert!(published.status.success(), "{}", String::from_utf8_lossy(&published.stderr));
        let mail = inbox.wait_for("Our winter plan").await;
        assert_eq!(mail.header("to"), "staff.member@nhs.net");
        assert_eq!(mail.header("subject"), "Our winter plan – Jane Smith");
        assert_eq!(mail.content_type, "multipart/alternative");
        assert_eq!(mail.header("reply-to"), "jane@nhs.net");
        assert!(mail.header("list-id").contains("<ceo."), "{:?}", mail.headers);
        assert_eq!(mail.header("list-unsubscribe-post"), "List-Unsubscribe=One-Click");
        assert_eq!(mail.header("precedence"), "bulk");
        assert_eq!(mail.header("auto-submitted"), "auto-generated");
        assert!(!mail.header("message-id").is_empty() && !mail.header("date").is_empty());
        let unsubscribe_header = mail.header("list-unsubscribe");
        assert!(unsubscribe_header.contains("<mailto:"), "{unsubscribe_header}");
        let text = mail.part("text/plain");
        let html = mail.part("text/html");
        assert!(text.contains("We open **twenty** more beds."), "{text}");
        assert!(html.contains("<strong>twenty</strong>"), "{html}");
        assert!(html.contains(&format!("href=\"{}/@ceo/about\"", app.address)), "links are absolute: {html}");
        assert!(html.contains("role=\"presentation\""), "table layout");
        assert!(!html.contains("/newsletter/opened/"), "no tracking by default");
        let unsubscribe = mail.links(&format!("{}/newsletter/unsubscribe/", app.address));
        assert_eq!(unsubscribe.len(), 1);
        assert!(unsubscribe_header.contains(&format!("<{}>", unsubscribe[0])), "{unsubscribe_header}");
        let prefs = mail.links(&format!("{}/newsletter/preferences/", app.address));
        assert_eq!(prefs.len(), 1);

        // Preferences: the cadence is there; the data download names the address.
        let (status, page) = app.page(&path_of(&app, &prefs[0])).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.source.contains("staff.member@nhs.net"));
        let checked = page.attrs("input[type=radio][checked]", "value");
        assert_eq!(checked, vec!["each_post"]);
        let data = app.get(&format!("{}/data.json", path_of(&app, &prefs[0]))).await;
        assert_eq!(data.status(), StatusCode::OK);
        let data: serde_json::Value = data.json().await.expect("json");
        assert_eq!(data["subscriber"]["email"], "staff.member@nhs.net");
        assert_eq!(data["received"].as_array().map(Vec::len), Some(1));
        // A forged link is not a page.
        assert_eq!(app.get("/newsletter/preferences/p.1.0.AAAA").await.status(), StatusCode::NOT_FOUND);

        // GET shows a confirmation page and changes nothing.
        let unsubscribe_path = path_of(&app, &unsubscribe[0]);
        let (status, page) = app.page(&unsubscribe_path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.has(&format!("form[method=post][action='{unsubscribe_path}'] button")));
        let mut conn = app.conn();
        let subscriber = subscribers::find_by_email(&mut conn, "staff.member@nhs.net").expect("query").expect("found");
        assert_eq!(subscriber.status(), subscribers::Status::Confirmed);

        // One-click POST, as a mail client sends it (RFC 8058).
        let response = app
            .new_client()
            .post(&unsubscribe[0])
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("one-click");
        assert_eq!(response.status(), StatusCode::OK);
        let subscriber = subscribers::find_by_email(&mut conn, "staff.member@nhs.net").expect("query").expect("found");
        assert_eq!(subscriber.status(), subscribers::Status::Unsubscribed);

        // Nothing more is sent.
        let before = inbox.messages().len();
        app.run_rounds(&["post", "publish", "--blog", "ceo", "--author", "jane", "--title", "After unsubscribing", "-"], Some("Nobody gets this."));
        // The second post's fan-out has run when its send is finished.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let sends = sending::recent_sends(&mut conn, 1, 10).expect("sends");
            if sends.len() == 3 && sends.iter().all(|s| s.finished_at.is_some()) {
                break;
            }
            assert!(Instant::now() < deadline, "fan-out did not finish: {sends:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        settle(&app, sending::EMAIL_JOB).await;
        settle(&app, rounds::mail::EMAIL_JOB).await;
        assert_eq!(inbox.messages().len(), before, "nothing after unsubscribing");

        // Re-subscribing needs a fresh confirmation; the answer is the same as for a
        // stranger, so it reveals nothing.
        let (known_status, known) = subscribe(&app, "staff.member@nhs.net", &["ceo"], "each_post").await;
        let (new_status, stranger) = subscribe(&app, "someone.else@nhs.net", &["ceo"], "each_post").await;
        assert_eq!(known_status, new_status);
        assert_eq!(known, stranger);
        let subscriber = subscribers::find_by_email(&mut conn, "staff.member@nhs.net").expect("query").expect("found");
        assert_eq!(subscriber.status(), subscribers::Status::Pending);
    }
}

e2e! {
    with |s| { s.newsletter_allowed_domains = "nhs.net".into(); s.newsletter_requests_per_hour = 3; };
    async fn allow_list_and_rate_limits_refuse_clearly(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        let (status, body) = subscribe(&app, "someone@gmail.com", &["ceo"], "daily").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("@nhs.net"), "{body}");
        let mut conn = app.conn();
        assert!(subscribers::find_by_email(&mut conn, "someone@gmail.com").expect("query").is_none(), "nothing stored");

        // Per address: three requests an hour, then 429 (from any client address).
        for _ in 0..2 {
            let (status, _) = subscribe(&app, "a.person@nhs.net", &["ceo"], "each_post").await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, _) = subscribe(&app, "a.person@nhs.net", &["ceo"], "each_post").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
}

e2e! {
    async fn digest_holds_new_posts_and_nothing_already_received(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let inbox = Inbox::of(&app);
        let mut conn = app.conn();
        rounds::db::write_tx(&mut conn, |conn| {
            subscribers::request(conn, "daily.reader@nhs.net", &[(blog.id, Cadence::Daily)], chrono::Duration::hours(1), Some("test"))
        })
        .expect("subscribed");
        app.publish(&blog, "", "A short update, in full.", "");
        app.publish(&blog, "A long article", "The article's body is not in the digest.", "");
        let schedule = rounds::newsletter::digest::Schedule::from_settings(&app.settings).expect("schedule");
        let due = rounds::domain::now() + chrono::Duration::seconds(1);
        let opened = sending::open_digest(&mut conn, &schedule, &DigestDue { cadence: Cadence::Daily, period: "test-1".into(), due }).expect("digest");
        assert_eq!(opened, 1);
        let mail = inbox.wait_for("daily digest").await;
        let text = mail.part("text/plain");
        assert!(text.contains("A short update, in full."), "{text}");
        assert!(text.contains("A long article"), "{text}");
        assert!(!text.contains("The article's body"), "articles as title and link: {text}");
        assert!(mail.part("text/html").contains("Daily digest"));

        // The next digest has nothing new for this reader: no email.
        sending::open_digest(&mut conn, &schedule, &DigestDue { cadence: Cadence::Daily, period: "test-2".into(), due }).expect("digest");
        settle(&app, sending::FANOUT_JOB).await;
        settle(&app, sending::EMAIL_JOB).await;
        settle(&app, rounds::mail::EMAIL_JOB).await;
        assert_eq!(inbox.messages().iter().filter(|m| m.header("subject").contains("digest")).count(), 1);
    }
}

e2e! {
    async fn editors_import_with_a_lawful_basis_export_and_see_sends(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        app.sign_in("jane").await;
        let (status, page) = app.page("/dashboard/@ceo/subscribers").await;
        assert_eq!(status, StatusCode::OK);
        let token = page.csrf_token();
        let response = app
            .client
            .post(app.url("/dashboard/@ceo/subscribers/import"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("addresses", "email\nward.seven@nhs.net\nWard.Eight@nhs.net,extra\n"),
                ("lawful_basis", "Legitimate interest: staff communications"),
            ])
            .send()
            .await
            .expect("import");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let mut conn = app.conn();
        let imported = subscribers::find_by_email(&mut conn, "ward.eight@nhs.net").expect("query").expect("found");
        assert_eq!(imported.status(), subscribers::Status::Confirmed);
        assert_eq!(imported.lawful_basis.as_deref(), Some("Legitimate interest: staff communications"));
        let filter = rounds::editorial::audit::Filter { action: Some("subscribers.".into()), ..Default::default() };
        let (entries, _) = rounds::editorial::audit::list(&mut conn, &filter, 1, 10).expect("audit");
        let entry = entries.iter().find(|e| e.action == "subscribers.imported").expect("audit entry");
        assert!(entry.details.contains("Legitimate interest"), "{}", entry.details);

        let (_, page) = app.page("/dashboard/@ceo/subscribers?q=eight").await;
        assert_eq!(page.texts("tbody td:first-child").iter().filter(|t| t.contains('@')).count(), 1);
        let csv = app.get("/dashboard/@ceo/subscribers.csv").await.text().await.expect("csv");
        assert!(csv.starts_with("email,status,cadence"), "{csv}");
        assert!(csv.contains("ward.seven@nhs.net,confirmed,each_post"), "{csv}");

        // A bad line refuses the whole import.
        let response = app
            .client
            .post(app.url("/dashboard/@ceo/subscribers/import"))
            .form(&[("csrf_token", token.as_str()), ("addresses", "good@nhs.net\nnot an address\n"), ("lawful_basis", "")])
            .send()
            .await
            .expect("import");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(subscribers::find_by_email(&mut conn, "good@nhs.net").expect("query").is_none());
    }
}

e2e! {
    async fn email_jobs_name_their_reader_and_skip_readers_who_left(app: TestApp) {
        use diesel::prelude::*;
        use rounds::db::schema::{jobs, newsletter_sends};
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let inbox = Inbox::of(&app);
        let mut conn = app.conn();
        let readers = ["stays@nhs.net", "leaves@nhs.net", "erased@nhs.net", "bounced@nhs.net"];
        for address in readers {
            rounds::db::write_tx(&mut conn, |conn| {
                subscribers::request(conn, address, &[(blog.id, Cadence::EachPost)], chrono::Duration::hours(1), Some("test"))
            })
            .expect("subscribed");
        }
        rounds::mail::suppress(&mut conn, "bounced@nhs.net", rounds::mail::suppressions::Reason::Hard, "550 no such user").expect("suppress");
        let post = app.publish(&blog, "Ward rounds", "What I saw on the wards.", "");
        // As going live does, in its transaction.
        rounds::db::write_tx(&mut conn, |conn| sending::post_published(conn, &post)).expect("queued");
        settle(&app, sending::FANOUT_JOB).await;
        settle(&app, sending::EMAIL_JOB).await;

        // One small job per reader, none for the suppressed address; each rendered in full.
        let queued: Vec<(Option<String>, String, String)> = jobs::table
            .filter(jobs::kind.eq(sending::EMAIL_JOB))
            .order(jobs::id.asc())
            .select((jobs::idempotency_key, jobs::payload, jobs::status))
            .load(&mut conn)
            .expect("jobs");
        assert_eq!(queued.len(), 3, "{queued:?}");
        for (key, payload, status) in &queued {
            assert!(key.as_deref().is_some_and(|k| k.starts_with("newsletter:")), "{key:?}");
            assert!(payload.len() < 100, "the job names the send and the reader: {payload}");
            assert_eq!(status, "done");
        }
        let mails: Vec<Mail> = inbox.messages().into_iter().filter(|m| m.header("subject").contains("Ward rounds")).collect();
        let mut to: Vec<String> = mails.iter().map(|m| m.header("to")).collect();
        to.sort();
        assert_eq!(to, ["erased@nhs.net", "leaves@nhs.net", "stays@nhs.net"]);
        for mail in &mails {
            assert!(mail.part("text/plain").contains("What I saw on the wards."));
            assert!(mail.part("text/html").contains("What I saw on the wards."));
            assert!(mail.header("list-unsubscribe").contains("/newsletter/unsubscribe/"));
        }

        // Readers who unsubscribed or were erased after a fan-out are skipped when their
        // email's turn comes, and are not counted as bounces.
        let leaves = subscribers::find_by_email(&mut conn, "leaves@nhs.net").expect("query").expect("found");
        let erased = subscribers::find_by_email(&mut conn, "erased@nhs.net").expect("query").expect("found");
        let stays = subscribers::find_by_email(&mut conn, "stays@nhs.net").expect("query").expect("found");
        subscribers::unsubscribe(&mut conn, leaves.id, None).expect("unsubscribe");
        subscribers::erase(&mut conn, erased.id).expect("erase");
        let send: i64 = rounds::db::write_tx(&mut conn, |conn| {
            diesel::insert_into(newsletter_sends::table)
                .values((
                    newsletter_sends::blog_id.eq(blog.id),
                    newsletter_sends::kind.eq("post"),
                    newsletter_sends::post_id.eq(Some(post.id)),
                    newsletter_sends::period.eq("again"),
                    newsletter_sends::created_at.eq(rounds::domain::now()),
                    newsletter_sends::finished_at.eq(Some(rounds::domain::now())),
                ))
                .execute(conn)?;
            let send = newsletter_sends::table.filter(newsletter_sends::period.eq("again")).select(newsletter_sends::id).first(conn)?;
            for subscriber in [stays.id, leaves.id, erased.id] {
                let letter = sending::Letter { send, subscriber, due: None };
                let job = rounds::jobs::NewJob::new(sending::EMAIL_JOB, &letter).expect("job").key(format!("newsletter:{send}:{subscriber}"));
                rounds::jobs::enqueue(conn, &job)?;
            }
            Ok::<_, diesel::result::Error>(send)
        })
        .expect("send");
        settle(&app, sending::EMAIL_JOB).await;
        let figures = sending::figures(&mut conn, send).expect("figures");
        assert_eq!((figures.delivered, figures.skipped, figures.bounced), (1, 2, 0), "{figures:?}");
        let to: Vec<String> = inbox.messages().into_iter().filter(|m| m.header("subject").contains("Ward rounds")).map(|m| m.header("to")).collect();
        assert_eq!(to.iter().filter(|t| *t == "stays@nhs.net").count(), 2);
        assert_eq!(to.len(), 4, "{to:?}");

        // Editors see the suppressed address on the subscribers page.
        app.sign_in("jane").await;
        let (status, page) = app.page("/dashboard/@ceo/subscribers").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page.text("[data-suppressed=hard]"), "1");
        assert_eq!(page.text("[data-suppressed=soft]"), "0");
        // And the send's readers who left before their email went.
        assert!(page.source.contains(r#"data-figure="skipped">2<"#), "{}", page.text("main"));
    }
}
