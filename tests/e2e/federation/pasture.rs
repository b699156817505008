//! fediverse-pasture's test actor (tests/tools/pasture_actor.py), written independently
//! on `bovine`, whose inbox refuses unsigned POSTs: it follows a blog, receives what the
//! blog publishes, edits and withdraws, and replies.

use reqwest::StatusCode;
use rounds::domain::posts::{PostFields, PostInput};
use serde_json::json;

use super::peer::Peer;
use super::replies::{act, reply_id};
use super::{owner, publish, save};
use crate::e2e;

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn a_pasture_actor_follows_receives_and_replies(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let pasture = Peer::start_tool("pasture_actor.py", &[]);
        let actor = pasture.actor("actor");
        let blog_id = app.url("/@ceo");

        // Its inbox records only what bovine verified, so the Accept arriving proves it
        // was signed with the key our actor document publishes.
        let status = pasture.deliver("actor", &app.url("/@ceo/inbox"), json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{actor}/follows/1"), "type": "Follow", "actor": actor, "object": blog_id,
        })).await;
        assert_eq!(status, 202, "bovine's signature on the Follow verifies");
        let accept = pasture.wait_for("Accept").await;
        assert_eq!(accept["activity"]["actor"], blog_id);
        assert_eq!(accept["activity"]["object"]["id"], format!("{actor}/follows/1"));

        // Publish, edit, reply, withdraw.
        let post = publish(&app, &blog, "", "Ward 7 opens on Monday.", "");
        let post_url = app.url(&post.path("ceo").expect("path"));
        let create = pasture.wait_for("Create").await;
        assert_eq!(create["activity"]["object"]["id"], post_url);
        assert!(create["activity"]["object"]["content"].as_str().unwrap_or("").contains("Ward 7 opens on Monday."));
        let input = PostInput::parse(&PostFields { body: "Ward 7 opens on Tuesday.", ..PostFields::default() }).expect("valid");
        let edited = save(&app, &blog, Some(&post), &input, false);
        let update = pasture.wait_for("Update").await;
        assert_eq!(update["activity"]["object"]["id"], post_url);
        assert!(update["activity"]["object"]["content"].as_str().unwrap_or("").contains("Tuesday"));
        assert!(update["activity"]["object"]["updated"].is_string(), "{update}");

        let note_id = format!("{actor}/notes/1");
        let status = pasture.deliver("actor", &app.url("/inbox"), json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{note_id}/activity"), "type": "Create", "actor": actor,
            "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [blog_id],
            "object": {
                "id": note_id, "type": "Note", "attributedTo": actor, "inReplyTo": post_url,
                "content": "<p>Good news from the pasture.</p>", "published": "2026-11-20T10:00:00Z",
                "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [blog_id],
            },
        })).await;
        assert_eq!(status, 202);
        app.sign_in("jane").await;
        let (_, queue) = app.page("/dashboard/@ceo/replies").await;
        assert!(queue.text(".rounds-moderation").contains("Good news from the pasture."), "{}", queue.text("main"));
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        assert!(page.texts(".rounds-reply").is_empty(), "held until approved");
        let id = reply_id(&app, &note_id);
        act(&app, "/dashboard/@ceo/replies", &format!("/dashboard/@ceo/replies/{id}/approve"), &[]).await;
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        let shown = page.text(".rounds-reply");
        assert!(shown.contains("Good news from the pasture.") && shown.contains("@actor@localhost:"), "{shown}");

        rounds::publishing::unpublish(&mut app.conn(), &edited, &owner(&app, &blog)).expect("unpublish");
        let delete = pasture.wait_for("Delete").await;
        assert_eq!(delete["activity"]["object"]["id"], post_url);
        assert_eq!(delete["activity"]["object"]["type"], "Tombstone");
        assert_eq!(app.get(&post.path("ceo").expect("path")).await.status(), StatusCode::GONE);
    }
}
