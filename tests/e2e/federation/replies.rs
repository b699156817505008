//! Replies, reactions, moderation, followers, and the other activities a blog receives.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rounds::domain::blogs::Blog;
use rounds::domain::posts::Post;
use serde_json::{Value, json};

use super::peer::Peer;
use super::publish;
use crate::e2e;
use crate::helpers::{Page, TestApp};

/// A Note from `name` on the peer answering `in_reply_to`.
fn note(peer: &Peer, name: &str, n: u32, in_reply_to: &str, content: &str) -> (String, Value) {
    let actor = peer.actor(name);
    let id = format!("{actor}/notes/{n}");
    let object = json!({
        "id": id,
        "type": "Note",
        "attributedTo": actor,
        "inReplyTo": in_reply_to,
        "content": content,
        "url": format!("{}/@{name}/{n}", peer.base),
        "published": "2026-11-20T10:00:00Z",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
    });
    (id, object)
}

async fn create(peer: &Peer, app: &TestApp, name: &str, object: &Value) -> u16 {
    let actor = peer.actor(name);
    let id = object["id"].as_str().unwrap_or_default();
    peer.deliver(
        name,
        &app.url("/inbox"),
        json!({
            "id": format!("{id}/activity"),
            "type": "Create",
            "actor": actor,
            "object": object,
        }),
    )
    .await
}

pub(super) async fn follow(peer: &Peer, app: &TestApp, name: &str) -> u16 {
    let actor = peer.actor(name);
    peer.deliver(
        name,
        &app.url("/@ceo/inbox"),
        json!({
            "id": format!("{actor}/follows/{}", rand_suffix()),
            "type": "Follow",
            "actor": actor,
            "object": app.url("/@ceo"),
        }),
    )
    .await
}

fn rand_suffix() -> String {
    crate::helpers::random_hex(4)
}

/// Posts a team form (with the page's CSRF token) and expects a redirect.
pub(super) async fn act(app: &TestApp, page: &str, action: &str, fields: &[(&str, &str)]) {
    let (_, current) = app.page(page).await;
    let token = current.csrf_token();
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    let response = app
        .client
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{action}: {}",
        response.text().await.unwrap_or_default()
    );
}

pub(super) fn reply_id(app: &TestApp, ap_id: &str) -> i64 {
    rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), ap_id)
        .expect("query")
        .unwrap_or_else(|| panic!("no reply {ap_id}"))
        .id
}

fn setup(app: &TestApp) -> (Blog, Post) {
    let jane = app.user("jane", false);
    let blog = app.blog("ceo", "Jane Smith", &jane);
    let post = publish(app, &blog, "Our plan", "We will open ward 7.", "");
    (blog, post)
}

pub(super) async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn replies_are_moderated_sanitised_and_shown_as_threads(app: TestApp) {
        let (_, post) = setup(&app);
        let post_url = app.url(&post.path("ceo").expect("path"));
        let peer = Peer::start();
        app.sign_in("jane").await;

        let hostile = r#"<p class="x">I <strong>agree</strong> <a href="https://nhs.uk/x" onclick="steal()">source</a></p><script>alert(1)</script><img src="https://evil.example/p.png"><p style="color:red"><a href="javascript:alert(1)">click</a></p>"#;
        let (alice_note, object) = note(&peer, "alice", 1, &post_url, hostile);
        assert_eq!(create(&peer, &app, "alice", &object).await, 202);

        // Held by default: not on the post, waiting on the moderation page.
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        assert!(page.texts(".rounds-reply").is_empty());
        assert!(page.text(".rounds-conversation").contains("No replies shown yet"));
        let (_, queue) = app.page("/dashboard/@ceo/replies").await;
        let card = queue.text(".rounds-moderation");
        assert!(card.contains("Alice") && card.contains("@alice@localhost:"), "{card}");
        assert!(card.contains("I agree"), "{card}");
        assert!(!queue.source.contains("<script>alert") && !queue.source.contains("onclick"), "sanitised on the way in");

        let id = reply_id(&app, &alice_note);
        act(&app, "/dashboard/@ceo/replies", &format!("/dashboard/@ceo/replies/{id}/approve"), &[]).await;
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        let shown = page.text(".rounds-reply");
        assert!(shown.contains("Alice") && shown.contains("@alice@localhost:"), "{shown}");
        assert!(shown.contains("I agree source"), "{shown}");
        assert!(shown.contains("See it on localhost:"), "{shown}");
        let body = page.html.select(&scraper::Selector::parse(".rounds-reply__body").expect("css")).next().expect("body").inner_html();
        for banned in ["<script", "<img", "class=", "style=", "onclick", "javascript:"] {
            assert!(!body.contains(banned), "{banned} in {body}");
        }
        assert!(body.contains(r#"href="https://nhs.uk/x""#) && body.contains("nofollow"), "{body}");
        assert!(page.text(".rounds-conversation").contains("1 reply"));

        // A reply to the reply is threaded under it.
        let (bob_note, object) = note(&peer, "bob", 1, &alice_note, "<p>Me too</p>");
        assert_eq!(create(&peer, &app, "bob", &object).await, 202);
        let bob_id = reply_id(&app, &bob_note);
        act(&app, "/dashboard/@ceo/replies", &format!("/dashboard/@ceo/replies/{bob_id}/approve"), &[]).await;
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        assert_eq!(page.texts(".rounds-replies--nested .rounds-reply").len(), 1, "bob under alice");
        assert!(page.text(".rounds-replies--nested").contains("Me too"));

        // Likes and boosts are counted; an Undo takes one back.
        let alice = peer.actor("alice");
        let bob = peer.actor("bob");
        assert_eq!(peer.deliver("alice", &app.url("/inbox"), json!({ "id": format!("{alice}/likes/1"), "type": "Like", "actor": alice, "object": post_url })).await, 202);
        assert_eq!(peer.deliver("bob", &app.url("/inbox"), json!({ "id": format!("{bob}/boosts/1"), "type": "Announce", "actor": bob, "object": post_url })).await, 202);
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        assert!(page.text(".rounds-conversation").contains("2 replies · 1 like · 1 boost"), "{}", page.text(".rounds-conversation"));
        let (_, _, object_json) = crate::federation::get_json(&app, &post.path("ceo").expect("path")).await;
        assert_eq!(object_json["likes"]["totalItems"], 1);
        assert_eq!(object_json["shares"]["totalItems"], 1);
        assert_eq!(object_json["replies"]["totalItems"], 2);
        assert_eq!(peer.deliver("alice", &app.url("/inbox"), json!({ "id": format!("{alice}/undo/1"), "type": "Undo", "actor": alice, "object": { "id": format!("{alice}/likes/1"), "type": "Like", "actor": alice, "object": post_url } })).await, 202);
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        assert!(page.text(".rounds-conversation").contains("0 likes"));

        // An edit is judged again; a deletion removes the reply.
        let mut edited = object.clone();
        edited["content"] = json!("<p>Me too, and more</p>");
        assert_eq!(peer.deliver("bob", &app.url("/inbox"), json!({ "id": format!("{bob_note}/edit"), "type": "Update", "actor": bob, "object": edited })).await, 202);
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        assert!(!page.source.contains("Me too"), "an edited reply waits for moderation again");
        assert_eq!(peer.deliver("bob", &app.url("/inbox"), json!({ "id": format!("{bob_note}/delete"), "type": "Delete", "actor": bob, "object": { "id": bob_note, "type": "Tombstone" } })).await, 202);
        assert!(rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), &bob_note).expect("query").is_none());
        // Someone else cannot delete alice's reply.
        assert_eq!(peer.deliver("bob", &app.url("/inbox"), json!({ "id": format!("{bob}/delete/2"), "type": "Delete", "actor": bob, "object": alice_note })).await, 202);
        assert!(rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), &alice_note).expect("query").is_some());
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn reply_policies_closed_posts_and_blocks(app: TestApp) {
        let (_, post) = setup(&app);
        let post_url = app.url(&post.path("ceo").expect("path"));
        let peer = Peer::start();
        app.sign_in("jane").await;
        let status_of = |ap_id: &str| {
            rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), ap_id).expect("query").map(|r| r.status)
        };

        assert_eq!(follow(&peer, &app, "alice").await, 202);
        let out = app.run_rounds(&["blog", "set", "--handle", "ceo", "--replies", "followers"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (a1, object) = note(&peer, "alice", 1, &post_url, "<p>From a follower</p>");
        create(&peer, &app, "alice", &object).await;
        let (b1, object) = note(&peer, "bob", 1, &post_url, "<p>From a stranger</p>");
        create(&peer, &app, "bob", &object).await;
        assert_eq!(status_of(&a1).as_deref(), Some("approved"));
        assert_eq!(status_of(&b1).as_deref(), Some("held"));

        // The settings page sets the same policy.
        act(&app, "/dashboard/@ceo/fediverse", "/dashboard/@ceo/fediverse", &[("replies", "open"), ("discoverable", "yes")]).await;
        let (b2, object) = note(&peer, "bob", 2, &post_url, "<p>Open now</p>");
        create(&peer, &app, "bob", &object).await;
        assert_eq!(status_of(&b2).as_deref(), Some("approved"));
        let out = app.run_rounds(&["blog", "set", "--handle", "ceo", "--replies", "sometimes"], None);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("held, followers or open"));

        // Replies closed on the post: new ones are dropped.
        act(&app, "/dashboard/@ceo/fediverse", &format!("/dashboard/@ceo/posts/{}/replies", post.id), &[("open", "no")]).await;
        let (b3, object) = note(&peer, "bob", 3, &post_url, "<p>Too late</p>");
        assert_eq!(create(&peer, &app, "bob", &object).await, 202);
        assert_eq!(status_of(&b3), None);
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        assert!(page.text(".rounds-conversation").contains("Replies to this post are closed"));
        act(&app, "/dashboard/@ceo/fediverse", &format!("/dashboard/@ceo/posts/{}/replies", post.id), &[("open", "yes")]).await;

        // Blocking an account from the moderation page drops its replies to this blog.
        let bob_reply = reply_id(&app, &b2);
        act(&app, "/dashboard/@ceo/replies?show=approved", &format!("/dashboard/@ceo/replies/{bob_reply}/block-account"), &[]).await;
        assert_eq!(status_of(&b2).as_deref(), Some("rejected"));
        let (b4, object) = note(&peer, "bob", 4, &post_url, "<p>Blocked</p>");
        create(&peer, &app, "bob", &object).await;
        assert_eq!(status_of(&b4), None);

        // An instance domain block that holds replies wins over the open policy.
        rounds::federation::moderation::block_domain(&mut app.conn(), "localhost", rounds::federation::moderation::BlockSeverity::Hold, Some("review")).expect("block");
        let (a2, object) = note(&peer, "alice", 2, &post_url, "<p>Held by the instance</p>");
        create(&peer, &app, "alice", &object).await;
        assert_eq!(status_of(&a2).as_deref(), Some("held"));

        // A mention that answers no post lands in the queue as a mention.
        let mut mention = note(&peer, "carol", 1, "", "<p>@ceo hello</p>").1;
        mention["inReplyTo"] = Value::Null;
        mention["tag"] = json!([{ "type": "Mention", "href": app.url("/@ceo"), "name": "@ceo" }]);
        create(&peer, &app, "carol", &mention).await;
        let (_, queue) = app.page("/dashboard/@ceo/replies").await;
        assert!(queue.source.contains("a mention"), "{}", queue.text("main"));
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn the_blog_answers_a_reply_on_the_fediverse(app: TestApp) {
        let (_, post) = setup(&app);
        let post_url = app.url(&post.path("ceo").expect("path"));
        let peer = Peer::start();
        app.sign_in("jane").await;
        assert_eq!(follow(&peer, &app, "alice").await, 202);
        peer.wait_for("Accept").await;
        let (alice_note, object) = note(&peer, "alice", 1, &post_url, "<p>When does ward 7 open?</p>");
        create(&peer, &app, "alice", &object).await;
        let id = reply_id(&app, &alice_note);
        act(&app, "/dashboard/@ceo/replies", &format!("/dashboard/@ceo/replies/{id}/approve"), &[]).await;

        // An empty answer is refused with a reason.
        let (_, queue) = app.page("/dashboard/@ceo/replies?show=approved").await;
        let response = app.client.post(app.url(&format!("/dashboard/@ceo/replies/{id}/answer")))
            .form(&[("csrf_token", queue.csrf_token().as_str()), ("text", "  ")]).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(Page::parse(&response.text().await.expect("body")).errors()[0].contains("Write your answer"));

        act(&app, "/dashboard/@ceo/replies?show=approved", &format!("/dashboard/@ceo/replies/{id}/answer"), &[("text", "In **January**, all being well.")]).await;
        // The post's own Create may reach alice too: its fan-out can run after she followed.
        let creates = peer
            .wait_for_matching("Create", 1, |a| a["object"]["inReplyTo"] == json!(alice_note))
            .await
            .remove(0);
        let answer = &creates["activity"]["object"];
        assert!(creates["verified"].as_bool().unwrap_or(false));
        assert_eq!(answer["type"], "Note");
        assert_eq!(answer["inReplyTo"], alice_note);
        assert!(answer["cc"].as_array().expect("cc").iter().any(|c| c == &json!(peer.actor("alice"))), "{answer}");
        assert_eq!(answer["tag"][0]["type"], "Mention");
        assert!(answer["content"].as_str().expect("content").contains("<strong>January</strong>"));
        let answer_id = answer["id"].as_str().expect("id").to_owned();
        let (status, _, served) = crate::federation::get_json(&app, answer_id.trim_start_matches(&app.address)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(served["id"], answer_id);
        // Followed from Mastodon in a browser, the answer's address leads to it on the post.
        let response = app.client.get(&answer_id).header("Accept", "text/html,application/xhtml+xml").send().await.expect("get");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let answer_row = rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), &answer_id).expect("query").expect("stored");
        assert_eq!(
            response.headers().get("location").and_then(|l| l.to_str().ok()),
            Some(format!("{}#reply-{}", post.path("ceo").expect("path"), answer_row.id).as_str())
        );

        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        let nested = page.text(".rounds-replies--nested");
        assert!(nested.contains("Jane Smith") && nested.contains("Author") && nested.contains("January"), "{nested}");

        // Both decisions are in the audit log, by name, and the chain holds.
        use rounds::editorial::audit;
        let filter = audit::Filter { action: Some("moderation.".into()), ..audit::Filter::default() };
        let (entries, _) = audit::list(&mut app.conn(), &filter, 1, 10).expect("audit");
        assert!(entries.iter().all(|e| e.actor_id.is_some() && e.source == "web"), "{entries:?}");
        let decided = entries.iter().find(|e| e.action == "moderation.decided").expect("the approval is recorded");
        assert!(decided.details.contains("reply.approve"), "{}", decided.details);
        assert_eq!(decided.subject.as_deref(), Some(alice_note.as_str()));
        let answered = entries.iter().find(|e| e.action == "moderation.answered").expect("the answer is recorded");
        assert!(answered.details.contains("all being well"), "{}", answered.details);
        assert!(audit::verify(&mut app.conn()).expect("verify").is_intact());

        // The blog's answer cannot be moderated like someone else's words; it can be
        // withdrawn, and the Delete goes where the Create went.
        let answer_row = reply_id(&app, &answer_id);
        let (_, queue) = app.page("/dashboard/@ceo/replies?show=approved").await;
        let response = app.client.post(app.url(&format!("/dashboard/@ceo/replies/{answer_row}/hide")))
            .form(&[("csrf_token", queue.csrf_token().as_str())]).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(queue.source.contains("Withdraw answer"));
        act(&app, "/dashboard/@ceo/replies?show=approved", &format!("/dashboard/@ceo/replies/{answer_row}/withdraw"), &[]).await;
        let delete = peer.wait_for_matching("Delete", 1, |a| a["object"]["id"] == json!(answer_id)).await.remove(0);
        assert!(delete["verified"].as_bool().unwrap_or(false));
        assert_eq!(delete["activity"]["object"]["type"], "Tombstone");
        let (status, _, _) = crate::federation::get_json(&app, answer_id.trim_start_matches(&app.address)).await;
        assert_eq!(status, StatusCode::GONE);
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        assert!(!page.source.contains("all being well"));
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn followers_approved_by_hand_and_removed(app: TestApp) {
        let (_, _) = setup(&app);
        let peer = Peer::start();
        app.sign_in("jane").await;
        let out = app.run_rounds(&["blog", "set", "--handle", "ceo", "--approve-followers", "true"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (_, _, person) = crate::federation::get_json(&app, "/@ceo").await;
        assert_eq!(person["manuallyApprovesFollowers"], true);

        for name in ["alice", "bob"] {
            assert_eq!(follow(&peer, &app, name).await, 202);
        }
        let (_, page) = app.page("/dashboard/@ceo/followers").await;
        assert_eq!(page.texts("table").len(), 1, "the waiting table only");
        assert!(page.text("table").contains("@alice@localhost:") && page.text("table").contains("@bob@localhost:"));
        assert!(peer.received().await.is_empty(), "nothing until someone decides");

        let id_of = |name: &str| {
            rounds::federation::actors::find_by_ap_id(&mut app.conn(), &peer.actor(name)).expect("query").expect("stored").row.id
        };
        act(&app, "/dashboard/@ceo/followers", &format!("/dashboard/@ceo/followers/{}/accept", id_of("alice")), &[]).await;
        act(&app, "/dashboard/@ceo/followers", &format!("/dashboard/@ceo/followers/{}/reject", id_of("bob")), &[]).await;
        let accept = peer.wait_for("Accept").await;
        assert_eq!(accept["activity"]["object"]["actor"], peer.actor("alice"));
        let reject = peer.wait_for("Reject").await;
        assert_eq!(reject["activity"]["object"]["actor"], peer.actor("bob"));
        let (_, _, followers) = crate::federation::get_json(&app, "/@ceo/followers").await;
        assert_eq!(followers["totalItems"], 1);

        // Removing a follower tells their server (Reject of their Follow).
        act(&app, "/dashboard/@ceo/followers", &format!("/dashboard/@ceo/followers/{}/remove", id_of("alice")), &[]).await;
        let rejects = peer.wait_for_n("Reject", 2).await;
        assert!(rejects.iter().any(|r| r["activity"]["object"]["actor"] == json!(peer.actor("alice"))));
        let (_, _, followers) = crate::federation::get_json(&app, "/@ceo/followers").await;
        assert_eq!(followers["totalItems"], 0);
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn move_block_flag_and_deleted_accounts(app: TestApp) {
        let (_, post) = setup(&app);
        let post_url = app.url(&post.path("ceo").expect("path"));
        let peer = Peer::start();
        let admin = app.user("admin", true);
        let _ = admin;
        for name in ["alice", "carol", "dave"] {
            assert_eq!(follow(&peer, &app, name).await, 202);
        }
        let alice = peer.actor("alice");
        let alice2 = peer.actor("alice2");

        // alice moves to alice2, who names alice as herself: the follow moves with her.
        peer.control("actor", json!({ "name": "alice2", "alsoKnownAs": [alice] })).await;
        let status = peer.deliver("alice", &app.url("/inbox"), json!({ "id": format!("{alice}/move/1"), "type": "Move", "actor": alice, "object": alice, "target": alice2 })).await;
        assert_eq!(status, 202);
        app.sign_in("admin").await;
        let (_, page) = app.page("/dashboard/@ceo/followers").await;
        assert!(page.text("table").contains("@alice2@localhost:"), "{}", page.text("main"));
        assert!(!page.text("table").contains("@alice@localhost:"));
        // A Move to an account that does not name the old one is refused.
        let bad = peer.deliver("carol", &app.url("/inbox"), json!({ "id": format!("{}/move/1", peer.actor("carol")), "type": "Move", "actor": peer.actor("carol"), "object": peer.actor("carol"), "target": peer.actor("stranger") })).await;
        assert_eq!(bad, 400);

        // carol blocks the blog: she is no longer sent anything.
        let carol = peer.actor("carol");
        assert_eq!(peer.deliver("carol", &app.url("/inbox"), json!({ "id": format!("{carol}/block/1"), "type": "Block", "actor": carol, "object": app.url("/@ceo") })).await, 202);
        let (_, _, followers) = crate::federation::get_json(&app, "/@ceo/followers").await;
        assert_eq!(followers["totalItems"], 2);

        // dave reports a post: it is on the admin's page.
        let dave = peer.actor("dave");
        assert_eq!(peer.deliver("dave", &app.url("/inbox"), json!({ "id": format!("{dave}/flag/1"), "type": "Flag", "actor": dave, "object": [post_url], "content": "Misleading figures" })).await, 202);
        let (_, admin_page) = app.page("/dashboard/admin/fediverse").await;
        assert!(admin_page.source.contains("Misleading figures"));

        // dave's account is deleted: his follow and replies go.
        let (dave_note, object) = note(&peer, "dave", 1, &post_url, "<p>Bye</p>");
        create(&peer, &app, "dave", &object).await;
        assert_eq!(peer.deliver("dave", &app.url("/inbox"), json!({ "id": format!("{dave}#delete"), "type": "Delete", "actor": dave, "object": dave })).await, 202);
        assert!(rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), &dave_note).expect("query").is_none());
        let (_, _, followers) = crate::federation::get_json(&app, "/@ceo/followers").await;
        assert_eq!(followers["totalItems"], 1);
    }
}

e2e! {
    with |s| { s.federation_allow_private_addresses = true; s.federation_retry_seconds = 1; };
    async fn deliveries_retry_drop_and_dead_letters(app: TestApp) {
        let (blog, _) = setup(&app);
        // The first post's fan-out finds no followers, so alice (following next) is not
        // sent it: the first Create she gets is the one this test fails on purpose.
        let mut conn = app.conn();
        wait_until("the first post's fan-out", || {
            [rounds::jobs::Status::Pending, rounds::jobs::Status::Running]
                .into_iter()
                .all(|status| rounds::jobs::count(&mut conn, "federate", status).unwrap_or(1) == 0)
        }).await;
        let peer = Peer::start();
        assert_eq!(follow(&peer, &app, "alice").await, 202);
        peer.wait_for("Accept").await;

        // 503 with Retry-After: tried again after the wait, delivered once it answers 202.
        peer.control("respond", json!({ "status": 503, "retry_after": 1 })).await;
        publish(&app, &blog, "", "First try fails.", "");
        let first = peer.wait_for("Create").await;
        assert_eq!(first["status"], 503);
        peer.control("respond", json!({ "status": 202, "retry_after": null })).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = peer.received().await;
            let creates: Vec<&Value> = received.iter().filter(|r| r["activity"]["type"] == "Create").collect();
            if creates.iter().any(|r| r["status"] == 202) {
                assert_eq!(creates.iter().filter(|r| r["status"] == 202).count(), 1);
                break;
            }
            assert!(Instant::now() < deadline, "the retry never came: {received:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // 410: dropped, not retried.
        peer.control("respond", json!({ "status": 410 })).await;
        publish(&app, &blog, "", "The inbox is gone.", "");
        let mut conn = app.conn();
        wait_until("the 410 delivery to be dropped", || {
            rounds::jobs::count(&mut conn, "deliver", rounds::jobs::Status::Dropped).unwrap_or(0) == 1
        }).await;

        // A delivery that used up its attempts is a dead letter an admin can retry.
        peer.control("respond", json!({ "status": 500 })).await;
        {
            use diesel::prelude::*;
            use rounds::db::schema::jobs;
            publish(&app, &blog, "", "This one dies.", "");
            let mut conn = app.conn();
            // Spend its attempts and make it due, so the next failure is its last: only
            // while it waits (pending), or the worker trying it would overwrite this.
            wait_until("the delivery to wait for a try", || {
                diesel::update(jobs::table.filter(jobs::kind.eq("deliver")).filter(jobs::status.eq("pending")))
                    .set((jobs::attempts.eq(jobs::max_attempts - 1), jobs::run_at.eq(rounds::domain::now())))
                    .execute(&mut conn).unwrap_or(0) == 1
            }).await;
        }
        let mut conn = app.conn();
        wait_until("a dead letter", || {
            rounds::jobs::count(&mut conn, "deliver", rounds::jobs::Status::Dead).unwrap_or(0) == 1
        }).await;
        app.user("admin", true);
        app.sign_in("admin").await;
        let (_, admin_page) = app.page("/dashboard/admin/fediverse").await;
        assert!(admin_page.text("main").contains(&format!("{}/inbox", peer.base)), "{}", admin_page.text("main"));
        let dead = rounds::jobs::dead_letters(&mut conn, "deliver", 10).expect("dead");
        peer.control("respond", json!({ "status": 202 })).await;
        act(&app, "/dashboard/admin/fediverse", &format!("/dashboard/admin/fediverse/deliveries/{}/retry", dead[0].id), &[]).await;
        assert_eq!(rounds::jobs::count(&mut conn, "deliver", rounds::jobs::Status::Dead).expect("count"), 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = peer.received().await;
            let delivered = received.iter().any(|r| {
                r["status"] == 202
                    && r["activity"]["object"]["content"].as_str().is_some_and(|c| c.contains("This one dies."))
            });
            if delivered {
                break;
            }
            assert!(Instant::now() < deadline, "the retried delivery never arrived");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

e2e! {
    async fn admin_blocks_servers_and_imports_blocklists(app: TestApp) {
        app.user("admin", true);
        app.sign_in("admin").await;
        act(&app, "/dashboard/admin/fediverse", "/dashboard/admin/fediverse/domains", &[("domain", "https://Spam.Example/path"), ("severity", "reject"), ("reason", "spam")]).await;
        let (_, page) = app.page("/dashboard/admin/fediverse").await;
        assert!(page.text("table").contains("spam.example"));
        assert!(page.text("table").contains("Refuse everything"));

        // A bad domain is refused with a reason.
        let response = app.client.post(app.url("/dashboard/admin/fediverse/domains"))
            .form(&[("csrf_token", page.csrf_token().as_str()), ("domain", "not a domain"), ("severity", "reject")])
            .send().await.expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);

        // Mastodon's export format; a file with one bad row imports nothing.
        let good = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\nbad.example,suspend,true,true,Abuse,false\nloud.example,silence,false,false,,false\n";
        let bad = "#domain,#severity\nok.example,suspend\nwhat is this,suspend\n";
        for (file, expected) in [(bad, StatusCode::BAD_REQUEST), (good, StatusCode::SEE_OTHER)] {
            let form = reqwest::multipart::Form::new()
                .text("csrf_token", page.csrf_token())
                .part("blocklist", reqwest::multipart::Part::bytes(file.as_bytes().to_vec()).file_name("blocks.csv").mime_str("text/csv").expect("mime"));
            let response = app.client.post(app.url("/dashboard/admin/fediverse/domains/import")).multipart(form).send().await.expect("post");
            assert_eq!(response.status(), expected);
        }
        let blocks = rounds::federation::moderation::domain_blocks(&mut app.conn()).expect("blocks");
        let names: Vec<(&str, &str)> = blocks.iter().map(|b| (b.domain.as_str(), b.severity.as_str())).collect();
        assert_eq!(names, [("bad.example", "reject"), ("loud.example", "hold"), ("spam.example", "reject")]);

        act(&app, "/dashboard/admin/fediverse", "/dashboard/admin/fediverse/domains/remove", &[("domain", "loud.example")]).await;
        assert_eq!(rounds::federation::moderation::domain_blocks(&mut app.conn()).expect("blocks").len(), 2);

        // Only admins.
        let raj = app.user("raj", false);
        let _ = raj;
        let other = app.new_client();
        let token_page = other.get(app.url("/login")).send().await.expect("get").text().await.expect("body");
        let token = Page::parse(&token_page).csrf_token();
        other.post(app.url("/login")).form(&[("csrf_token", token.as_str()), ("username", "raj"), ("password", crate::helpers::PASSWORD)]).send().await.expect("login");
        assert_eq!(other.get(app.url("/dashboard/admin/fediverse")).send().await.expect("get").status(), StatusCode::FORBIDDEN);
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn private_replies_are_answered_privately_and_never_shown(app: TestApp) {
        let (_, post) = setup(&app);
        let post_path = post.path("ceo").expect("path");
        let post_url = app.url(&post_path);
        let peer = Peer::start();
        let followers_server = Peer::start();
        app.sign_in("jane").await;
        // Even with every reply shown at once, a private one waits.
        let out = app.run_rounds(&["blog", "set", "--handle", "ceo", "--replies", "open"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(follow(&followers_server, &app, "dan").await, 202);
        followers_server.wait_for("Accept").await;

        // Followers-only, as Mastodon addresses it: the author's followers, and the blog.
        let (private_note, mut object) = note(&peer, "carol", 1, &post_url, "<p>Privately: my ward is short-staffed.</p>");
        object["to"] = json!([format!("{}/followers", peer.actor("carol"))]);
        object["cc"] = json!([app.url("/@ceo")]);
        assert_eq!(create(&peer, &app, "carol", &object).await, 202);
        // A direct message naming the blog and no post.
        let (direct_note, mut dm) = note(&peer, "erin", 1, "", "<p>A word in confidence.</p>");
        dm["inReplyTo"] = Value::Null;
        dm["to"] = json!([app.url("/@ceo")]);
        dm["tag"] = json!([{ "type": "Mention", "href": app.url("/@ceo"), "name": "@ceo" }]);
        assert_eq!(create(&peer, &app, "erin", &dm).await, 202);
        // A public reply whose page link is a script, and one (unlisted) on another server.
        let (public_note, mut public) = note(&peer, "alice", 1, &post_url, "<p>Good news.</p>");
        public["url"] = json!("javascript:alert(1)");
        assert_eq!(create(&peer, &app, "alice", &public).await, 202);
        let (unlisted_note, mut unlisted) = note(&peer, "bob", 1, &post_url, "<p>Agreed.</p>");
        unlisted["to"] = json!([app.url("/@ceo")]);
        unlisted["cc"] = json!(["as:Public"]);
        unlisted["url"] = json!("https://elsewhere.example/spoof");
        assert_eq!(create(&peer, &app, "bob", &unlisted).await, 202);

        let stored = |ap_id: &str| {
            rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), ap_id).expect("query").expect("stored")
        };
        for (id, status, visibility) in [
            (&private_note, "held", "private"),
            (&direct_note, "held", "private"),
            (&public_note, "approved", "public"),
            (&unlisted_note, "approved", "unlisted"),
        ] {
            let reply = stored(id);
            assert_eq!((reply.status.as_str(), reply.visibility.as_str()), (status, visibility), "{id}");
        }
        assert_eq!(stored(&public_note).url, None, "a javascript: page link is not kept");
        assert_eq!(stored(&unlisted_note).url, None, "a page on another server is not kept");

        // Readers see the public and unlisted replies only: on the page and in the collection.
        let (_, page) = app.page(&post_path).await;
        let shown = page.text(".rounds-conversation");
        assert!(shown.contains("Good news") && shown.contains("Agreed"), "{shown}");
        assert!(!page.source.contains("short-staffed") && !page.source.contains("in confidence"));
        assert!(!page.source.contains("javascript:"));
        let (_, _, collection) = crate::federation::get_json(&app, &format!("{post_path}/replies")).await;
        assert_eq!(collection["totalItems"], 2, "{collection}");

        // The moderation queue says what it is, offers no approval, and refuses one.
        let (_, queue) = app.page("/dashboard/@ceo/replies").await;
        let cards = queue.texts(".rounds-moderation");
        let card = cards.iter().find(|c| c.contains("short-staffed")).expect("the private reply is queued");
        assert!(card.contains("Private") && !card.contains("Approve"), "{card}");
        let id = reply_id(&app, &private_note);
        let response = app.client.post(app.url(&format!("/dashboard/@ceo/replies/{id}/approve")))
            .form(&[("csrf_token", queue.csrf_token().as_str())]).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(response.text().await.expect("body").contains("sent privately"));
        assert_eq!(stored(&private_note).status, "held");

        // Its answer goes to its author alone, and is not served or shown either.
        act(&app, "/dashboard/@ceo/replies", &format!("/dashboard/@ceo/replies/{id}/answer"), &[("text", "Thank you, I will call you.")]).await;
        let answer = peer
            .wait_for_matching("Create", 1, |a| a["object"]["inReplyTo"] == json!(private_note))
            .await
            .remove(0);
        let object = &answer["activity"]["object"];
        assert_eq!(object["to"], json!([peer.actor("carol")]), "{object}");
        assert_eq!(object["cc"], json!([]), "{object}");
        assert_eq!(answer["activity"]["to"], object["to"]);
        let answer_id = object["id"].as_str().expect("id").to_owned();
        let (status, _, _) = crate::federation::get_json(&app, answer_id.trim_start_matches(&app.address)).await;
        assert!(status == StatusCode::GONE || status == StatusCode::NOT_FOUND, "{status}");
        let (_, page) = app.page(&post_path).await;
        assert!(!page.source.contains("I will call you"));
        {
            use diesel::prelude::*;
            use rounds::db::schema::jobs;
            let keys: Vec<String> = jobs::table
                .filter(jobs::idempotency_key.like(format!("deliver:%{}%", answer_id.trim_start_matches("http://"))))
                .select(jobs::idempotency_key)
                .load::<Option<String>>(&mut app.conn())
                .expect("jobs")
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(keys.len(), 1, "one delivery, to carol's server only: {keys:?}");
            assert!(keys[0].contains(&peer.base), "{keys:?}");
        }

        // Dismissed, it stays in the removed list with nothing to bring it back.
        let dm_id = reply_id(&app, &direct_note);
        act(&app, "/dashboard/@ceo/replies", &format!("/dashboard/@ceo/replies/{dm_id}/reject"), &[]).await;
        let (_, removed) = app.page("/dashboard/@ceo/replies?show=removed").await;
        let cards = removed.texts(".rounds-moderation");
        let card = cards.iter().find(|c| c.contains("in confidence")).expect("listed");
        assert!(card.contains("Private") && !card.contains("Show after all"), "{card}");

        // An Undo naming the Follow by id alone ends the follow.
        let dan = followers_server.actor("dan");
        let follow_id: String = {
            use diesel::prelude::*;
            use rounds::db::schema::followers;
            followers::table.select(followers::follow_ap_id).first(&mut app.conn()).expect("follow")
        };
        let status = followers_server.deliver("dan", &app.url("/inbox"), json!({
            "id": format!("{dan}/undo/1"), "type": "Undo", "actor": dan, "object": follow_id,
        })).await;
        assert_eq!(status, 202);
        let (_, _, followers) = crate::federation::get_json(&app, "/@ceo/followers").await;
        assert_eq!(followers["totalItems"], 0, "{followers}");
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn a_redelivered_activity_changes_nothing(app: TestApp) {
        let (_, post) = setup(&app);
        let post_url = app.url(&post.path("ceo").expect("path"));
        let peer = Peer::start();
        let alice = peer.actor("alice");
        let (note_id, mut object) = note(&peer, "alice", 1, &post_url, "<p>First words.</p>");
        assert_eq!(create(&peer, &app, "alice", &object).await, 202);
        let edit = |n: u32, object: &Value| json!({
            "id": format!("{note_id}/edits/{n}"), "type": "Update", "actor": alice, "object": object,
        });
        object["content"] = json!("<p>Second thoughts.</p>");
        let second = edit(1, &object);
        object["content"] = json!("<p>Final words.</p>");
        let third = edit(2, &object);
        for update in [&second, &third, &second] {
            assert_eq!(peer.deliver("alice", &app.url("/inbox"), update.clone()).await, 202);
        }
        let reply = rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), &note_id).expect("query").expect("stored");
        assert!(reply.content_html.as_str().contains("Final words"), "the late copy of the first edit was dropped: {}", reply.content_html.as_str());
    }
}

/// Sends `object` as alice's reply and approves it; its row id.
async fn approved_reply(peer: &Peer, app: &TestApp, object: &Value) -> i64 {
    assert_eq!(create(peer, app, "alice", object).await, 202);
    let id = reply_id(app, object["id"].as_str().expect("id"));
    act(
        app,
        "/dashboard/@ceo/replies",
        &format!("/dashboard/@ceo/replies/{id}/approve"),
        &[],
    )
    .await;
    id
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn long_links_in_replies_are_shortened_as_on_mastodon(app: TestApp) {
        let (_, post) = setup(&app);
        let path = post.path("ceo").expect("path");
        let peer = Peer::start();
        app.sign_in("jane").await;
        // As Mastodon writes a mention, a hashtag and a long link; and a class of ours.
        let content = concat!(
            r#"<p><span class="h-card" translate="no"><a href="https://m.example/@ceo" class="u-url mention">@<span>ceo</span></a></span> "#,
            r#"<a href="https://m.example/tags/nhs" class="mention hashtag" rel="tag">#<span>NHS</span></a> "#,
            r#"<a href="https://www.england.nhs.uk/long/path/to/the/plan" target="_blank" rel="nofollow noopener" translate="no">"#,
            r#"<span class="invisible">https://www.</span><span class="ellipsis">england.nhs.uk/long/path/t</span><span class="invisible">o/the/plan</span></a> "#,
            r#"<span class="nhsuk-button rounds-reply">Press</span></p>"#,
        );
        let (_, object) = note(&peer, "alice", 1, &app.url(&path), content);
        approved_reply(&peer, &app, &object).await;

        let (_, page) = app.page(&path).await;
        let link = ".rounds-reply__body a[href='https://www.england.nhs.uk/long/path/to/the/plan']";
        assert_eq!(page.texts(&format!("{link} .invisible")), ["https://www.", "o/the/plan"]);
        assert_eq!(page.texts(&format!("{link} .ellipsis")), ["england.nhs.uk/long/path/t"]);
        assert!(page.has(".rounds-reply__body .h-card a.u-url.mention"));
        assert!(page.has(".rounds-reply__body a.mention.hashtag"));
        assert!(!page.has(".rounds-reply__body .nhsuk-button") && !page.has(".rounds-reply__body .rounds-reply"), "no other class");
        // The page's stylesheet hides the invisible parts and marks the cut.
        assert!(page.attrs("link[rel=stylesheet]", "href").contains(&"/assets/rounds.css".to_owned()));
        let css: String = app.get("/assets/rounds.css").await.text().await.expect("css").split_whitespace().collect();
        assert!(css.contains(".rounds-reply__body.invisible{display:none;}"), "{css}");
        assert!(css.contains(r#".rounds-reply__body.ellipsis::after{content:"…";}"#), "{css}");
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn links_to_replies_stay_on_their_authors_server(app: TestApp) {
        let (_, post) = setup(&app);
        let path = post.path("ceo").expect("path");
        let peer = Peer::start();
        app.sign_in("jane").await;
        let own_page = format!("{}/@alice/1", peer.base);
        let mut expected = Vec::new();
        for (n, url) in [(1, own_page.as_str()), (2, "https://evil.example/login"), (3, "javascript:alert(document.cookie)")] {
            let (note_id, mut object) = note(&peer, "alice", n, &app.url(&path), "<p>Agreed.</p>");
            object["url"] = json!(url);
            let id = approved_reply(&peer, &app, &object).await;
            // Its own page on alice's server, else its id there.
            expected.push((id, if n == 1 { own_page.clone() } else { note_id }));
        }
        let (_, page) = app.page(&path).await;
        let (_, queue) = app.page("/dashboard/@ceo/replies?show=approved").await;
        for (id, href) in expected {
            assert_eq!(page.attrs(&format!("#reply-{id} > article > p > a"), "href"), [href.as_str()], "the post's page");
            let originals: Vec<String> = queue.html.select(&scraper::Selector::parse(&format!("#reply-{id} a")).expect("css"))
                .filter(|a| a.text().collect::<String>().contains("See the original"))
                .filter_map(|a| a.value().attr("href").map(str::to_owned))
                .collect();
            assert_eq!(originals, [href.as_str()], "the moderation page");
        }
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn moderators_reject_hide_restore_and_block_by_server_and_address(app: TestApp) {
        let (_, post) = setup(&app);
        let path = post.path("ceo").expect("path");
        let post_url = app.url(&path);
        let peer = Peer::start();
        let other_server = Peer::start();
        app.sign_in("jane").await;
        let status_of = |ap_id: &str| {
            rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), ap_id).expect("query").map(|r| r.status)
        };
        let queue = "/dashboard/@ceo/replies";
        let on_page = |text: &'static str| {
            let app = &app;
            let path = path.clone();
            async move { app.page(&path).await.1.source.contains(text) }
        };

        // Reject keeps a held reply off the post; hide takes a shown one down; "show after
        // all" brings it back.
        let (spam, object) = note(&peer, "alice", 1, &post_url, "<p>Buy now</p>");
        create(&peer, &app, "alice", &object).await;
        act(&app, queue, &format!("{queue}/{}/reject", reply_id(&app, &spam)), &[]).await;
        assert_eq!(status_of(&spam).as_deref(), Some("rejected"));
        let (fair, object) = note(&peer, "alice", 2, &post_url, "<p>Fair point</p>");
        create(&peer, &app, "alice", &object).await;
        let fair_id = reply_id(&app, &fair);
        act(&app, queue, &format!("{queue}/{fair_id}/approve"), &[]).await;
        assert!(on_page("Fair point").await);
        act(&app, queue, &format!("{queue}/{fair_id}/hide"), &[]).await;
        assert!(!on_page("Fair point").await);
        let (_, removed) = app.page(&format!("{queue}?show=removed")).await;
        assert!(removed.text("main").contains("Fair point") && removed.text("main").contains("Show after all"));
        act(&app, &format!("{queue}?show=removed"), &format!("{queue}/{fair_id}/approve"), &[]).await;
        assert!(on_page("Fair point").await);
        assert!(!on_page("Buy now").await);

        // An admin blocks an account by the address people know it by.
        let (elsewhere, object) = note(&other_server, "carol", 1, &post_url, "<p>From elsewhere</p>");
        create(&other_server, &app, "carol", &object).await;
        assert_eq!(status_of(&elsewhere).as_deref(), Some("held"));
        app.user("admin", true);
        app.sign_out(queue).await;
        app.sign_in("admin").await;
        let carol = other_server.actor("carol");
        let handle = format!("@carol@{}", other_server.base.trim_start_matches("http://"));
        act(&app, "/dashboard/admin/fediverse", "/dashboard/admin/fediverse/accounts", &[("account", handle.as_str())]).await;
        let (_, admin) = app.page("/dashboard/admin/fediverse").await;
        assert!(admin.text("main").contains(&carol), "{}", admin.text("main"));
        assert_eq!(status_of(&elsewhere), None, "their replies are taken down everywhere");
        let (later, object) = note(&other_server, "carol", 2, &post_url, "<p>Still here</p>");
        assert_eq!(create(&other_server, &app, "carol", &object).await, 202);
        assert_eq!(status_of(&later), None);
        // An address that cannot be found is refused with a reason, and nothing changes.
        let (_, admin) = app.page("/dashboard/admin/fediverse").await;
        let response = app.client.post(app.url("/dashboard/admin/fediverse/accounts"))
            .form(&[("csrf_token", admin.csrf_token().as_str()), ("account", "@nobody@localhost:1")]).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let errors = Page::parse(&response.text().await.expect("body")).errors();
        assert!(errors[0].contains("could not find"), "{errors:?}");
        let response = app.client.post(app.url("/dashboard/admin/fediverse/accounts"))
            .form(&[("csrf_token", admin.csrf_token().as_str()), ("account", "someone")]).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);

        // Blocking a server from the queue rejects what it sent and drops what it sends next.
        // (Both test servers are on localhost, so this comes last.)
        app.sign_out("/dashboard/admin/fediverse").await;
        app.sign_in("jane").await;
        let (_, held_before) = note(&peer, "bob", 1, &post_url, "<p>Held before the block</p>");
        create(&peer, &app, "bob", &held_before).await;
        act(&app, queue, &format!("{queue}/{fair_id}/block-domain"), &[]).await;
        let bob_first = format!("{}/notes/1", peer.actor("bob"));
        assert_eq!(status_of(&bob_first).as_deref(), Some("rejected"));
        assert_eq!(status_of(&fair).as_deref(), Some("rejected"));
        let (after, object) = note(&peer, "bob", 2, &post_url, "<p>After the block</p>");
        assert_eq!(create(&peer, &app, "bob", &object).await, 202);
        assert_eq!(status_of(&after), None, "dropped");
    }
}
