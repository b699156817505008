//! A bovine-herd server (tests/tools/bovine_server.py): a whole ActivityPub server,
//! written independently, that refuses unsigned fetches of its actors. It follows a
//! blog (so our fetch of its actor must have been signed), receives the blog's posts
//! and replies to one.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::peer::Peer;
use super::replies::{act, reply_id};
use super::{get_json, publish};
use crate::e2e;

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn a_bovine_herd_server_follows_receives_and_replies(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let herd = Peer::start_tool("bovine_server.py", &[]);
        let milkdrinker = herd.actor("milkdrinker");
        let blog_id = app.url("/@ceo");
        assert_eq!(reqwest::get(&milkdrinker).await.expect("get").status(), 401, "bovine-herd refuses unsigned fetches");

        // bovine delivers the Follow from its outbox; we can only check its signature by
        // fetching milkdrinker's key, which bovine-herd hands out to signed requests only.
        let (status, _) = herd.send(json!({ "actor": "milkdrinker", "url": "", "activity": {
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "Follow", "actor": milkdrinker, "object": blog_id, "to": [blog_id],
        }})).await;
        assert_eq!(status, 201);
        let accept = herd.wait_for("Accept").await;
        assert_eq!(accept["activity"]["actor"], blog_id);
        let (_, _, followers) = get_json(&app, "/@ceo/followers").await;
        assert_eq!(followers["totalItems"], 1, "{followers}");

        // A post reaches bovine-herd's inbox and its store.
        let post = publish(&app, &blog, "", "Hello from rounds to bovine.", "Interop");
        let post_url = app.url(&post.path("ceo").expect("path"));
        let create = herd.wait_for("Create").await;
        assert_eq!(create["activity"]["object"]["id"], post_url);
        let stored: Value = reqwest::get(format!("{}/stored?id={post_url}", herd.base)).await.expect("get").json().await.expect("json");
        assert!(stored.to_string().contains("Hello from rounds to bovine."), "{stored}");

        // A reply from bovine-herd is stored, held for moderation, and shown once approved.
        let (status, body) = herd.send(json!({ "actor": "milkdrinker", "url": "", "activity": {
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "Create", "actor": milkdrinker, "to": [PUBLIC], "cc": [blog_id],
            "object": {
                "type": "Note", "attributedTo": milkdrinker, "inReplyTo": post_url,
                "content": "<p>Moo, and thank you.</p>", "to": [PUBLIC], "cc": [blog_id],
            },
        }})).await;
        assert_eq!(status, 201);
        let sent: Value = serde_json::from_str(&body).expect("the activity as sent");
        let note_id = sent["object"]["id"].as_str().expect("bovine's id for the note").to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        while rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), &note_id).expect("query").is_none() {
            assert!(Instant::now() < deadline, "the reply from bovine-herd was never stored");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        app.sign_in("jane").await;
        let id = reply_id(&app, &note_id);
        act(&app, "/dashboard/@ceo/replies", &format!("/dashboard/@ceo/replies/{id}/approve"), &[]).await;
        let (_, page) = app.page(&post.path("ceo").expect("path")).await;
        let shown = page.text(".rounds-reply");
        assert!(shown.contains("Moo, and thank you.") && shown.contains("@milkdrinker@localhost:"), "{shown}");
    }
}
