//! fediverse-pasture's test actor (tests/tools/pasture_actor.py), written independently
//! on `bovine`, whose inbox refuses unsigned POSTs: it follows a blog, receives what the
//! blog publishes, edits and withdraws, and replies; and fediverse-pasture-inputs'
//! hand-written edge cases arrive as replies and leave nothing unsafe behind.

use diesel::prelude::*;
use reqwest::StatusCode;
use rounds::domain::posts::{PostFields, PostInput};
use scraper::{ElementRef, Html, Selector};
use serde_json::{Value, json};

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

/// What a reply's HTML may hold after our sanitiser: Mastodon's allow-list, less.
const ALLOWED_TAGS: &[&str] = &[
    "p",
    "br",
    "span",
    "a",
    "del",
    "s",
    "pre",
    "blockquote",
    "code",
    "b",
    "strong",
    "u",
    "i",
    "em",
    "ul",
    "ol",
    "li",
];

/// The classes a reply may keep: Mastodon's link shortening, mentions and hashtags.
const ALLOWED_CLASSES: &[&str] = &[
    "invisible",
    "ellipsis",
    "mention",
    "hashtag",
    "h-card",
    "u-url",
];

/// Every element under `root` (not `root` itself) is allowed, with only a link's `href`
/// (http, https or mailto) and `rel`, and on links and spans a `class` of allowed names.
fn assert_allowed(root: ElementRef<'_>, what: &str) {
    for element in root.descendants().skip(1).filter_map(ElementRef::wrap) {
        let name = element.value().name();
        assert!(
            ALLOWED_TAGS.contains(&name),
            "<{name}> in {what}: {}",
            root.html()
        );
        for (attr, value) in element.value().attrs() {
            let class = attr == "class"
                && (name == "a" || name == "span")
                && !value.trim().is_empty()
                && value
                    .split_ascii_whitespace()
                    .all(|c| ALLOWED_CLASSES.contains(&c));
            let ok = class
                || name == "a"
                    && (attr == "rel"
                        || (attr == "href"
                            && ["http://", "https://", "mailto:"]
                                .iter()
                                .any(|s| value.to_ascii_lowercase().starts_with(s))));
            assert!(ok, "{attr}={value:?} on <{name}> in {what}");
        }
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn pasture_inputs_as_replies_store_and_show_only_allowed_html(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let out = app.run_rounds(&["blog", "set", "--handle", "ceo", "--replies", "open"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let post = publish(&app, &blog, "", "Tell us what you think.", "");
        let path = post.path("ceo").expect("path");
        let pasture = Peer::start_tool("pasture_actor.py", &[]);

        let results: Vec<Value> = reqwest::Client::new()
            .post(format!("{}/control/inputs", pasture.base))
            .json(&json!({ "url": app.url("/@ceo/inbox"), "in_reply_to": app.url(&path), "to": app.url("/@ceo") }))
            .send().await.expect("send").json().await.expect("json");
        assert!(results.len() > 200, "every example was sent: {}", results.len());
        for r in &results {
            let status = r["status"].as_u64().unwrap_or(0);
            assert!((200..500).contains(&status), "{} #{}: {status} {}", r["input"], r["n"], r["body"]);
        }

        // What was stored: sanitised HTML only.
        use rounds::db::schema::replies;
        let stored: Vec<(String, String)> = replies::table
            .select((replies::ap_id, replies::content_html))
            .load(&mut app.conn())
            .expect("replies");
        assert!(stored.len() > 150, "most examples are replies to the post: {} stored", stored.len());
        assert!(results.iter().any(|r| r["input"] == "html_bad"), "the bad-HTML examples were among them");
        for (id, html) in &stored {
            let fragment = Html::parse_fragment(html);
            assert_allowed(fragment.root_element(), id);
        }

        // What is shown: the post's page with every reply approved (the blog shows all).
        let (status, page) = app.page(&path).await;
        assert_eq!(status, StatusCode::OK);
        let bodies = Selector::parse(".rounds-reply__body").expect("css");
        let shown: i64 = replies::table
            .filter(replies::post_id.eq(post.id))
            .filter(replies::status.eq("approved"))
            .count()
            .get_result(&mut app.conn())
            .expect("count");
        assert!(shown > 150, "{shown} approved replies to the post");
        assert_eq!(page.html.select(&bodies).count(), usize::try_from(shown).expect("count"), "every approved reply is shown");
        for body in page.html.select(&bodies) {
            assert_allowed(body, "a reply on the post's page");
        }
        let conversation = page.html.select(&Selector::parse(".rounds-conversation").expect("css")).next().expect("conversation");
        for element in conversation.descendants().filter_map(ElementRef::wrap) {
            let name = element.value().name();
            assert!(!["script", "style", "iframe", "object", "embed", "form", "img", "svg", "math"].contains(&name), "<{name}> shown");
            for (attr, value) in element.value().attrs() {
                assert!(!attr.to_ascii_lowercase().starts_with("on"), "{attr} shown");
                assert!(!value.to_ascii_lowercase().contains("javascript:"), "{attr}={value} shown");
            }
        }
    }
}
