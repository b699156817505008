//! Two rounds servers on loopback, each with its own database, talking to each other the
//! way two fediverse instances do: a mention, an answer, an edit, a withdrawal, a block.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use rounds::config::Settings;
use rounds::db::schema::{actors, jobs};
use rounds::federation::moderation::{self, BlockSeverity};
use serde_json::json;

use super::get_json;
use super::replies::{act, reply_id};
use crate::e2e;
use crate::editor::{editor_form, saved_post, submit, token};
use crate::helpers::{Page, TestApp};

/// A server other servers can reach: named by a host name (the federation library
/// refuses bare IP addresses as ids) and allowed to fetch from loopback.
fn on_loopback(settings: &mut Settings) {
    settings.federation_allow_private_addresses = true;
    settings.base_url = url::Url::parse("http://localhost:0").expect("url");
}

/// Waits until the page at `path` passes `check` (deliveries arrive in the background).
async fn wait_for_page(
    app: &TestApp,
    path: &str,
    what: &str,
    check: impl Fn(&Page) -> bool,
) -> Page {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = app.page(path).await;
        if check(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} on {path}:\n{}",
            page.source
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The delivery jobs to `inbox`: (status, last error) of each.
fn deliveries_to(app: &TestApp, inbox: &str) -> Vec<(String, Option<String>)> {
    jobs::table
        .filter(jobs::kind.eq("deliver"))
        .filter(jobs::payload.like(format!("%\"inbox\":\"{inbox}\"%")))
        .select((jobs::status, jobs::last_error))
        .load(&mut app.conn())
        .expect("jobs")
}

/// Writes a short update in the web editor, saved (`save`) or published (`publish`);
/// its id.
async fn write(app: &TestApp, handle: &str, action: &str, body: &str) -> i64 {
    let new = format!("/dashboard/@{handle}/new");
    let t = token(app, &new).await;
    saved_post(&submit(app, &new, editor_form(&t, action, &[("body", body)])).await).1
}

/// Publishes a short update from the web editor; the post's id and public path.
async fn publish_from_editor(app: &TestApp, handle: &str, body: &str) -> (i64, String) {
    let id = write(app, handle, "publish", body).await;
    let post = rounds::domain::posts::find(&mut app.conn(), id)
        .expect("query")
        .expect("post");
    (id, post.path(handle).expect("published"))
}

/// Server A's blog `@a` (Ann Adams, signed in) and a second server with its blog `@b`
/// (Bea Brown, signed in).
async fn second_server(a: &TestApp) -> TestApp {
    let b = a.another(on_loopback).await;
    let ann = a.user("ann", false);
    a.blog("a", "Ann Adams", &ann);
    let bea = b.user("bea", false);
    b.blog("b", "Bea Brown", &bea);
    a.sign_in("ann").await;
    b.sign_in("bea").await;
    b
}

e2e! {
    with on_loopback;
    async fn a_mention_answered_edited_withdrawn_and_blocked_between_two_servers(app: TestApp) {
        let a = &app;
        let b = second_server(a).await;
        let (a_host, b_host) = (a.settings.domain(), b.settings.domain());
        let a_actor = a.settings.url("/@a");
        let b_actor = b.settings.url("/@b");

        // A's blog mentions B's blog, and an account B does not have.
        let (post_id, path) = publish_from_editor(
            a,
            "a",
            &format!("Thank you @b@{b_host} for the visit to ward 7. Hello too, @nobody@{b_host}."),
        )
        .await;
        let post_url = a.settings.url(&path);

        // On A's page the mention is a link to B's profile in Mastodon's microformat; the
        // account that does not exist stays plain text, and the post went out anyway.
        let (_, page) = a.page(&path).await;
        assert_eq!(page.attrs(".rounds-post__body span.h-card > a.u-url.mention", "href"), [b_actor.as_str()]);
        assert_eq!(page.raw_text(".rounds-post__body .h-card"), "@b");
        assert!(page.text(".rounds-post__body").contains(&format!("Hello too, @nobody@{b_host}.")), "{}", page.text(".rounds-post__body"));
        let (_, _, note) = get_json(a, &path).await;
        assert!(note["tag"].as_array().expect("tags").contains(&json!({ "type": "Mention", "href": b_actor, "name": format!("@b@{b_host}") })), "{note}");
        assert!(note["cc"].as_array().expect("cc").contains(&json!(b_actor)), "{note}");
        assert!(note["content"].as_str().expect("content").contains(&format!(r#"<a href="{b_actor}" class="u-url mention""#)), "{note}");
        let feed = a.get("/@a/feed.atom").await.text().await.expect("feed");
        assert!(feed.contains("u-url mention"), "{feed}");

        // B has it as a mention of its blog, waiting for moderation, with A's author and
        // server.
        let queue = wait_for_page(&b, "/dashboard/@b/replies", "the mention", |p| p.source.contains("visit to ward 7")).await;
        let card = queue.text(".rounds-moderation");
        assert!(card.contains("Ann Adams") && card.contains(&format!("@a@{a_host}")), "{card}");
        assert!(card.contains("a mention"), "{card}");

        // B's team shows it and answers it as the blog.
        let mention = reply_id(&b, &post_url);
        act(&b, "/dashboard/@b/replies", &format!("/dashboard/@b/replies/{mention}/approve"), &[]).await;
        act(&b, "/dashboard/@b/replies?show=approved", &format!("/dashboard/@b/replies/{mention}/answer"), &[("text", "It was a pleasure, Ann.")]).await;

        // A receives the answer as a reply to its post, held until A's team approves it;
        // then the post shows it, with the author and their server.
        let queue = wait_for_page(a, "/dashboard/@a/replies", "B's answer", |p| p.source.contains("It was a pleasure")).await;
        let card = queue.text(".rounds-moderation");
        assert!(card.contains("Bea Brown") && card.contains(&format!("@b@{b_host}")), "{card}");
        assert!(card.contains(" on Thank you"), "{card}");
        let (_, page) = a.page(&path).await;
        assert!(page.texts(".rounds-reply").is_empty(), "held, not shown");
        let answers: Vec<i64> = rounds::db::schema::replies::table
            .filter(rounds::db::schema::replies::post_id.eq(post_id))
            .select(rounds::db::schema::replies::id)
            .load(&mut a.conn())
            .expect("replies");
        assert_eq!(answers.len(), 1);
        act(a, "/dashboard/@a/replies", &format!("/dashboard/@a/replies/{}/approve", answers[0]), &[]).await;
        let (_, page) = a.page(&path).await;
        let shown = page.text(".rounds-reply");
        assert!(shown.contains("Bea Brown") && shown.contains(&format!("@b@{b_host}")), "{shown}");
        assert!(shown.contains("It was a pleasure, Ann.") && shown.contains(&format!("See it on {b_host}")), "{shown}");

        // Each server fetched the other's account (signed by its instance actor) and
        // verified the other's signed deliveries with the key it found there.
        for (server, other) in [(a, &b_actor), (&b, &a_actor)] {
            let key: Option<Option<String>> = actors::table
                .filter(actors::ap_id.eq(other))
                .select(actors::public_key_pem)
                .first(&mut server.conn())
                .optional()
                .expect("actor");
            assert!(key.flatten().is_some_and(|k| k.contains("PUBLIC KEY")), "{other} stored with its key");
        }
        let b_inbox = b.settings.url("/inbox");
        let sent = deliveries_to(a, &b_inbox);
        assert!(!sent.is_empty() && sent.iter().all(|(status, _)| status == "done"), "{sent:?}");

        // A edits the post: B's copy gets the Update (and, changed, waits for B's team again).
        let editor = format!("/dashboard/posts/{post_id}");
        let t = token(a, &editor).await;
        let response = submit(a, &editor, editor_form(&t, "save", &[("body", "Thank you, Bea, for the visits to wards 7 and 8.")])).await;
        assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
        let queue = wait_for_page(&b, "/dashboard/@b/replies", "the Update", |p| p.source.contains("visits to wards 7 and 8")).await;
        assert!(!queue.source.contains("visit to ward 7."), "the old words are gone");
        // The edit took the mention out: the post no longer tags or links B, yet B's
        // server, which holds a copy, was sent the Update.
        let (_, _, note) = get_json(a, &path).await;
        assert_eq!(note["tag"], json!([]), "{note}");
        assert_eq!(note["cc"], json!([a.settings.url("/@a/followers")]), "{note}");
        let (_, page) = a.page(&path).await;
        assert!(!page.has(".rounds-post__body .h-card"));

        // A unpublishes it: B gets the Delete and its copy goes.
        let t = token(a, &editor).await;
        let response = a.client.post(a.url(&format!("/dashboard/posts/{post_id}/unpublish"))).form(&[("csrf_token", t.as_str())]).send().await.expect("post");
        assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
        for show in ["held", "approved"] {
            wait_for_page(&b, &format!("/dashboard/@b/replies?show={show}"), "the Delete", |p| !p.source.contains("wards 7 and 8")).await;
        }
        assert!(rounds::federation::moderation::reply_by_ap_id(&mut b.conn(), &post_url).expect("query").is_none());

        // A blocks B's server (both answer on localhost): B's next delivery to A is
        // refused with 403 and dropped, not retried, and nothing reaches A's team.
        moderation::block_domain(&mut a.conn(), "localhost", BlockSeverity::Reject, None).expect("block");
        publish_from_editor(&b, "b", &format!("Returning the favour, @a@{a_host}.")).await;
        let a_inbox = a.settings.url("/inbox");
        let deadline = Instant::now() + Duration::from_secs(30);
        let refused = loop {
            let found = deliveries_to(&b, &a_inbox);
            if let Some(done) = found.iter().find(|(status, _)| status != "pending" && status != "running") {
                break done.clone();
            }
            assert!(Instant::now() < deadline, "B's delivery to A never finished: {found:?}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        };
        assert_eq!(refused.0, "dropped", "{refused:?}");
        assert!(refused.1.as_deref().unwrap_or("").contains("403"), "{refused:?}");
        let (_, queue) = a.page("/dashboard/@a/replies").await;
        assert!(!queue.source.contains("Returning the favour"));
    }
}

/// A server that answers WebFinger for any account with B's blog: someone claiming
/// another server's account under their own name. Returns its `host:port`.
fn impostor(actor: String) -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let server = HttpServer::new(move || {
        let actor = actor.clone();
        App::new().route(
            "/.well-known/webfinger",
            web::get().to(move |query: web::Query<std::collections::HashMap<String, String>>| {
                let body = json!({
                    "subject": query.get("resource").cloned().unwrap_or_default(),
                    "links": [{ "rel": "self", "type": "application/activity+json", "href": actor.clone() }],
                });
                async move { HttpResponse::Ok().content_type("application/jrd+json").json(body) }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    format!("localhost:{port}")
}

e2e! {
    with on_loopback;
    async fn mentions_are_resolved_on_every_way_a_post_goes_out(app: TestApp) {
        let a = &app;
        let b = second_server(a).await;
        let b_host = b.settings.domain();
        let b_actor = b.settings.url("/@b");
        let arrived = |text: &'static str| move |p: &Page| p.source.contains(text);

        // `rounds post publish`, an article: the Article and its preview Note carry the
        // Mention, and B's server has it while A's server delivers it.
        let file = a.data_dir.join("plan.md");
        std::fs::write(&file, format!("Our winter plan, drawn up with @b@{b_host}.")).expect("write");
        let out = a
            .rounds()
            .env("ROUNDS_FEDERATION_ALLOW_PRIVATE_ADDRESSES", "true")
            .args(["post", "publish", "--blog", "a", "--title", "Winter plan"])
            .arg(&file)
            .output()
            .expect("rounds");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (_, _, article) = get_json(a, "/@a/winter-plan").await;
        let mention = json!({ "type": "Mention", "href": b_actor, "name": format!("@b@{b_host}") });
        assert_eq!(article["type"], "Article");
        assert!(article["tag"].as_array().expect("tags").contains(&mention), "{article}");
        assert_eq!(article["preview"]["tag"], json!([mention]), "{article}");
        wait_for_page(&b, "/dashboard/@b/replies", "the command line's post", arrived("drawn up with")).await;

        // The review page's "Publish now".
        let id = write(a, "a", "save", &format!("Ward 8 opens today, thanks to @b@{b_host}.")).await;
        act(a, &format!("/dashboard/posts/{id}/review"), &format!("/dashboard/posts/{id}/publish"), &[]).await;
        wait_for_page(&b, "/dashboard/@b/replies", "the reviewed post", arrived("Ward 8 opens today")).await;

        // A scheduled post, published by the job. It also mentions another blog on A's
        // own server: a link and a tag, found without the network, nothing to deliver.
        let cat = a.user("cat", false);
        a.blog("c", "Cat Cole", &cat);
        let a_host = a.settings.domain();
        let id = write(a, "a", "save", &format!("Ward 9 opens tomorrow, with @b@{b_host} and @c@{a_host}.")).await;
        let soon = crate::editorial::london_fields(chrono::Utc::now() + chrono::Duration::seconds(2));
        let fields: Vec<(&str, &str)> = soon.iter().map(|(k, v)| (*k, v.as_str())).collect();
        act(a, &format!("/dashboard/posts/{id}/review"), &format!("/dashboard/posts/{id}/schedule"), &fields).await;
        wait_for_page(&b, "/dashboard/@b/replies", "the scheduled post", arrived("Ward 9 opens tomorrow")).await;
        let post = rounds::domain::posts::find(&mut a.conn(), id).expect("query").expect("post");
        let (_, page) = a.page(&post.path("a").expect("published")).await;
        assert_eq!(page.attrs(".rounds-post__body a.u-url.mention", "href"), [b_actor.clone(), a.settings.url("/@c")]);
        let (_, _, note) = get_json(a, &post.path("a").expect("published")).await;
        assert_eq!(note["tag"].as_array().map(Vec::len), Some(2), "{note}");
        assert!(note["tag"].as_array().expect("tags").contains(&json!({ "type": "Mention", "href": a.settings.url("/@c"), "name": format!("@c@{a_host}") })), "{note}");
        let own_inboxes = jobs::table
            .filter(jobs::kind.eq("deliver"))
            .filter(jobs::payload.like(format!("%\"inbox\":\"{}%", a.settings.url("/"))))
            .count()
            .get_result::<i64>(&mut a.conn())
            .expect("count");
        assert_eq!(own_inboxes, 0, "nothing is delivered to this server itself");

        // A server that names B's account as its own is not believed: B's server, asked,
        // knows the account by another name. The mention stays text.
        let fake = impostor(b_actor.clone());
        let (_, path) = publish_from_editor(a, "a", &format!("Not really @b@{fake}.")).await;
        let (_, page) = a.page(&path).await;
        assert!(!page.has(".rounds-post__body .h-card"), "{}", page.source);
        assert!(page.text(".rounds-post__body").contains(&format!("@b@{fake}")));
        let (_, _, note) = get_json(a, &path).await;
        assert_eq!(note["tag"], json!([]), "{note}");
    }
}
