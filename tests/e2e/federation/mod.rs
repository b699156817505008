//! Federation: discovery, the actor and its posts as JSON, following, delivery, and the
//! inbox's signature rules, against a peer that signs and verifies with independent
//! libraries.

mod bovine;
mod browser;
mod delivery;
mod pasture;
mod peer;
mod replies;
mod restart;
mod two_servers;

use reqwest::StatusCode;
use reqwest::header;
use rounds::domain::blogs::Blog;
use rounds::domain::posts::{Post, PostFields, PostInput};
use rounds::editorial::Actor;
use rounds::editorial::revisions::Kind;
use rounds::federation::mentions::Mentions;
use rounds::publishing::{SaveRequest, Saved};
use serde_json::{Value, json};

use crate::e2e;
use crate::helpers::TestApp;
use peer::Peer;

const AP: &str = "application/activity+json";

/// The blog's owner, acting as the editor does.
pub fn owner(app: &TestApp, blog: &Blog) -> Actor {
    let mut conn = app.conn();
    let owner = rounds::domain::blogs::owner_of(&mut conn, blog.id)
        .expect("query")
        .expect("an owner");
    let user = rounds::domain::users::find(&mut conn, owner)
        .expect("query")
        .expect("the owner");
    Actor::web(&user)
}

/// Saves as the blog's owner through the same path as the editor (an owner's save to a
/// live post goes out at once), so followers are sent the post.
pub fn save(
    app: &TestApp,
    blog: &Blog,
    post: Option<&Post>,
    input: &PostInput,
    publish: bool,
) -> Post {
    let actor = owner(app, blog);
    let request = SaveRequest {
        blog,
        post,
        actor: &actor,
        input,
        base_revision: None,
        kind: Kind::Save,
        publish,
        mentions: &Mentions::none(),
    };
    match rounds::publishing::save(&mut app.conn(), &request).expect("saved") {
        Saved::Saved { post, .. } => post,
        other => panic!("not saved: {other:?}"),
    }
}

/// Publishes a new post as the blog's owner.
pub fn publish(app: &TestApp, blog: &Blog, title: &str, body: &str, tags: &str) -> Post {
    let input = PostInput::parse(&PostFields {
        title,
        body,
        tags,
        ..PostFields::default()
    })
    .expect("valid post");
    save(app, blog, None, &input, true)
}

pub async fn get_json(
    app: &TestApp,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = app
        .client
        .get(app.url(path))
        .header(header::ACCEPT, AP)
        .send()
        .await
        .expect("get");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

e2e! {
    async fn webfinger_nodeinfo_and_content_negotiation(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let domain = app.settings.domain();
        let actor = app.url("/@ceo");

        let finger: Value = app.get(&format!("/.well-known/webfinger?resource=acct:ceo@{domain}")).await.json().await.expect("jrd");
        assert_eq!(finger["subject"], format!("acct:ceo@{domain}"));
        let links = finger["links"].as_array().expect("links");
        assert!(links.iter().any(|l| l["rel"] == "self" && l["type"] == AP && l["href"] == actor), "{finger}");
        assert!(links.iter().any(|l| l["rel"] == "http://webfinger.net/rel/profile-page" && l["href"] == actor));
        let by_url: Value = app.get(&format!("/.well-known/webfinger?resource={actor}")).await.json().await.expect("jrd");
        assert_eq!(by_url["subject"], format!("acct:ceo@{domain}"));
        assert_eq!(app.get("/.well-known/webfinger?resource=acct:ceo@elsewhere.example").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.get(&format!("/.well-known/webfinger?resource=acct:nobody@{domain}")).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.get("/.well-known/webfinger").await.status(), StatusCode::BAD_REQUEST);

        let links: Value = app.get("/.well-known/nodeinfo").await.json().await.expect("links");
        assert_eq!(links["links"][0]["rel"], "http://nodeinfo.diaspora.software/ns/schema/2.1");
        let info: Value = app.get("/nodeinfo/2.1").await.json().await.expect("nodeinfo");
        assert_eq!(info["software"]["name"], "rounds");
        assert_eq!(info["protocols"], json!(["activitypub"]));
        assert_eq!(info["usage"]["users"]["total"], 1);

        // The blog's URL: HTML for browsers, the actor for servers.
        let (status, headers, person) = get_json(&app, "/@ceo").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[header::CONTENT_TYPE].to_str().expect("type").starts_with(AP));
        assert_eq!(headers[header::VARY], "Accept");
        assert_eq!(person["id"], actor);
        assert_eq!(person["type"], "Person");
        assert_eq!(person["preferredUsername"], "ceo");
        assert_eq!(person["name"], "Jane Smith");
        assert_eq!(person["inbox"], format!("{actor}/inbox"));
        assert_eq!(person["endpoints"]["sharedInbox"], app.url("/inbox"));
        assert_eq!(person["publicKey"]["owner"], actor);
        assert_eq!(person["publicKey"]["id"], format!("{actor}#main-key"));
        assert!(person["publicKey"]["publicKeyPem"].as_str().expect("pem").starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(!person.to_string().contains("PRIVATE KEY"), "the private key never leaves");
        assert_eq!(person["manuallyApprovesFollowers"], false);
        assert_eq!(person["discoverable"], true);
        for field in ["outbox", "followers", "following", "featured", "published", "url"] {
            assert!(person.get(field).is_some(), "{field} missing from {person}");
        }
        let fields: Vec<(String, String)> = person["attachment"].as_array().expect("fields").iter()
            .map(|f| (f["name"].as_str().unwrap_or("").to_owned(), f["value"].as_str().unwrap_or("").to_owned()))
            .collect();
        assert_eq!(fields[0], ("Role".into(), "Chief Executive".into()));
        assert_eq!(fields[1], ("Organisation".into(), "Example NHS Foundation Trust".into()));
        assert_eq!(fields[2].0, "Website");
        // Mastodon's rule (VerifyLinkService): the field is one link whose text is its
        // href; the page there (fetched as HTML) has an `a` or `link` with `rel` "me"
        // whose href is the account's `url`.
        let field = scraper::Html::parse_fragment(&fields[2].1);
        let links: Vec<_> = field.select(&scraper::Selector::parse("a").expect("css")).collect();
        assert_eq!(links.len(), 1, "{fields:?}");
        let website = links[0].value().attr("href").expect("href").to_owned();
        assert_eq!(links[0].text().collect::<String>(), website);
        let account = person["url"].as_str().expect("url").to_owned();
        for page in [website.as_str(), account.as_str()] {
            let html = app.client.get(page).header(header::ACCEPT, "text/html").send().await.expect("get");
            assert_eq!(html.status(), StatusCode::OK);
            let html = scraper::Html::parse_document(&html.text().await.expect("body"));
            let me = scraper::Selector::parse(r#"a[rel~="me"], link[rel~="me"]"#).expect("css");
            let back: Vec<&str> = html.select(&me).filter_map(|l| l.value().attr("href")).collect();
            assert!(back.iter().any(|href| href.eq_ignore_ascii_case(&account)), "{page} links back to {account}: {back:?}");
        }
        let html = app.get("/@ceo").await;
        assert!(html.headers()[header::CONTENT_TYPE].to_str().expect("type").starts_with("text/html"));
        assert_eq!(html.headers()[header::VARY], "Accept");
        let ld = app.client.get(app.url("/@ceo"))
            .header(header::ACCEPT, r#"application/ld+json; profile="https://www.w3.org/ns/activitystreams""#)
            .send().await.expect("get");
        assert!(ld.headers()[header::CONTENT_TYPE].to_str().expect("type").starts_with(AP));

        // Posts: a short update is a Note with the full text; an article an Article with
        // a preview Note; hashtags link to tag pages.
        let update = publish(&app, &blog, "", "Proud of **ward 7** today.", "Thanks");
        let article = publish(&app, &blog, "Our winter plan", "# Beds\n\nWe open 20 more.", "Winter");
        let (_, _, note) = get_json(&app, &update.path("ceo").expect("path")).await;
        assert_eq!(note["type"], "Note");
        assert_eq!(note["id"], app.url("/@ceo/proud-of-ward-7-today"));
        assert_eq!(note["attributedTo"], actor);
        assert!(note["content"].as_str().expect("content").contains("<strong>ward 7</strong>"));
        assert_eq!(note["to"], json!(["https://www.w3.org/ns/activitystreams#Public"]));
        assert_eq!(note["cc"], json!([format!("{actor}/followers")]));
        assert_eq!(note["tag"][0]["type"], "Hashtag");
        assert_eq!(note["tag"][0]["name"], "#Thanks");
        assert_eq!(note["tag"][0]["href"], app.url("/@ceo/tags/thanks"));
        assert_eq!(note["likes"]["totalItems"], 0);
        let (_, _, art) = get_json(&app, &article.path("ceo").expect("path")).await;
        assert_eq!(art["type"], "Article");
        assert_eq!(art["name"], "Our winter plan");
        assert!(art["content"].as_str().expect("content").contains("We open 20 more."));
        assert_eq!(art["preview"]["type"], "Note");
        assert!(art["preview"]["content"].as_str().expect("preview").contains("Our winter plan"));

        // The blog can send articles in full instead.
        let out = app.run_rounds(&["blog", "set", "--handle", "ceo", "--articles-as-notes", "true"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (_, _, as_note) = get_json(&app, &article.path("ceo").expect("path")).await;
        assert_eq!(as_note["type"], "Note");
        assert!(as_note["content"].as_str().expect("content").contains("Our winter plan"));
        assert!(as_note["content"].as_str().expect("content").contains("We open 20 more."));

        // Withdrawn: 410 with a Tombstone.
        rounds::publishing::unpublish(&mut app.conn(), &article, &owner(&app, &blog)).expect("unpublish");
        let (status, _, tombstone) = get_json(&app, &article.path("ceo").expect("path")).await;
        assert_eq!(status, StatusCode::GONE);
        assert_eq!(tombstone["type"], "Tombstone");
        assert_eq!(tombstone["id"], app.url("/@ceo/our-winter-plan"));
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn follow_accept_and_posts_reach_followers(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let peer = Peer::start();
        let alice = peer.actor("alice");
        let bob = peer.actor("bob");
        let inbox = app.url("/@ceo/inbox");
        let actor = app.url("/@ceo");

        for (name, id) in [("alice", &alice), ("bob", &bob)] {
            let status = peer.deliver(name, &inbox, json!({
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": format!("{id}/follows/1"),
                "type": "Follow",
                "actor": id,
                "object": actor,
            })).await;
            assert_eq!(status, 202, "Follow from {name}");
        }
        let accepts = peer.wait_for_n("Accept", 2).await;
        for accept in &accepts {
            assert!(accept["verified"].as_bool().unwrap_or(false), "our signature verifies with httpsig: {accept}");
            assert_eq!(accept["activity"]["actor"], actor);
            assert_eq!(accept["activity"]["object"]["type"], "Follow");
        }
        let (_, _, followers) = get_json(&app, "/@ceo/followers").await;
        assert_eq!(followers["totalItems"], 2);

        // A post reaches the peer once, through its shared inbox, signed.
        let post = publish(&app, &blog, "", "Hello fediverse.", "");
        let creates = peer.wait_for("Create").await;
        assert_eq!(creates["path"], "/inbox", "shared inbox used once for both followers");
        assert!(creates["verified"].as_bool().unwrap_or(false));
        assert_eq!(creates["activity"]["object"]["id"], app.url("/@ceo/hello-fediverse"));
        assert_eq!(creates["activity"]["object"]["content"].as_str().map(|c| c.contains("Hello fediverse.")), Some(true));

        // An edit is an Update; withdrawing is a Delete with a Tombstone.
        let input = PostInput::parse(&PostFields { body: "Hello again, fediverse.", ..PostFields::default() }).expect("valid");
        let edited = save(&app, &blog, Some(&post), &input, false);
        let update = peer.wait_for("Update").await;
        assert!(update["activity"]["object"]["updated"].is_string(), "{update}");
        assert!(update["activity"]["object"]["content"].as_str().unwrap_or("").contains("Hello again"));
        rounds::publishing::delete(&mut app.conn(), &edited, &owner(&app, &blog)).expect("deleted");
        let delete = peer.wait_for("Delete").await;
        assert_eq!(delete["activity"]["object"]["type"], "Tombstone");
        assert_eq!(delete["activity"]["object"]["id"], app.url("/@ceo/hello-fediverse"));
        let (status, _, _) = get_json(&app, "/@ceo/hello-fediverse").await;
        assert_eq!(status, StatusCode::GONE);
        let everything = peer.received().await;
        let kinds: Vec<&str> = everything.iter().filter_map(|r| r["activity"]["type"].as_str()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "Create").count(), 1, "{kinds:?}");

        // Undo Follow: no more deliveries to that follower.
        let status = peer.deliver("bob", &inbox, json!({
            "id": format!("{bob}/undo/1"), "type": "Undo", "actor": bob,
            "object": { "id": format!("{bob}/follows/1"), "type": "Follow", "actor": bob, "object": actor },
        })).await;
        assert_eq!(status, 202);
        let (_, _, followers) = get_json(&app, "/@ceo/followers").await;
        assert_eq!(followers["totalItems"], 1);

        // A new profile reaches followers as an Update of the actor, from the web and the
        // command line alike.
        app.sign_in("jane").await;
        let t = crate::editor::token(&app, "/dashboard/@ceo/settings").await;
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", t)
            .text("display_name", "Dr Jane Smith")
            .text("bio", "Chief executive since 2024.");
        let response = app.client.post(app.url("/dashboard/@ceo/settings")).multipart(form).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let out = app.run_rounds(&["blog", "set", "--handle", "ceo", "--discoverable", "false"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let updates: Vec<Value> = peer.wait_for_n("Update", 3).await.into_iter()
            .filter(|u| u["activity"]["object"]["type"] == "Person").collect();
        assert_eq!(updates.len(), 2, "{updates:?}");
        assert!(updates.iter().all(|u| u["verified"].as_bool().unwrap_or(false) && u["activity"]["actor"] == actor));
        assert_eq!(updates[0]["activity"]["object"]["id"], actor);
        assert_eq!(updates[0]["activity"]["object"]["name"], "Dr Jane Smith");
        assert_eq!(updates[1]["activity"]["object"]["discoverable"], false);
        assert_ne!(updates[0]["activity"]["id"], updates[1]["activity"]["id"]);
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn inbox_checks_signatures_like_mastodon(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        let peer = Peer::start();
        let alice = peer.actor("alice");
        let inbox = app.url("/@ceo/inbox");
        let mut n = 0;
        let mut like = |extra: Value| {
            n += 1;
            let mut options = json!({
                "actor": "alice",
                "url": inbox,
                "activity": {
                    "id": format!("{alice}/likes/{n}"),
                    "type": "Like",
                    "actor": alice,
                    "object": app.url("/@ceo/nothing"),
                },
            });
            if let (Some(o), Some(e)) = (options.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    o.insert(k.clone(), v.clone());
                }
            }
            options
        };
        let cases = [
            (like(json!({})), 202, "a draft-cavage rsa-sha256 signature"),
            (like(json!({ "algorithm": "hs2019" })), 202, "hs2019"),
            (like(json!({ "headers": ["(request-target)", "host", "date", "digest", "content-type"] })), 202, "extra signed headers"),
            (like(json!({ "scheme": "rfc9421" })), 202, "RFC 9421"),
            (like(json!({ "scheme": "none" })), 401, "unsigned"),
            (like(json!({ "tamper": "body" })), 401, "a body changed after signing"),
            (like(json!({ "tamper": "digest" })), 401, "a digest that does not match"),
            (like(json!({ "date_offset": -3 * 3600 })), 401, "a Date three hours old"),
            (like(json!({ "date_offset": 2 * 3600 })), 401, "a Date two hours ahead"),
            (like(json!({ "scheme": "rfc9421", "date_offset": -3 * 3600 })), 401, "an RFC 9421 signature three hours old"),
            (like(json!({ "headers": ["date", "digest"] })), 202, "Mastodon's least for a POST: date and digest"),
            (like(json!({ "headers": ["(request-target)", "host", "date"] })), 401, "a POST whose digest is not signed"),
            (like(json!({ "headers": ["(request-target)", "host", "digest"] })), 401, "neither Date nor (created) signed"),
        ];
        for (options, expected, what) in cases {
            let (status, body) = peer.send(options).await;
            assert_eq!(status, expected, "{what}: {body}");
        }
        // A type we do not handle is accepted and ignored; a redelivery is a no-op.
        let unknown = json!({ "id": format!("{alice}/x/1"), "type": "Arrive", "actor": alice });
        assert_eq!(peer.deliver("alice", &inbox, unknown.clone()).await, 202);
        assert_eq!(peer.deliver("alice", &inbox, unknown).await, 202);
        // An id on another server is refused: ids are recorded to drop redeliveries, and
        // alice must not be able to spend someone else's.
        let elsewhere = json!({ "id": "http://other.example/likes/1", "type": "Like", "actor": alice, "object": app.url("/@ceo/x") });
        assert_eq!(peer.deliver("alice", &inbox, elsewhere).await, 400);
        // Someone else's activity signed by alice is refused.
        let forged = json!({ "id": format!("{alice}/f/1"), "type": "Like", "actor": peer.actor("mallory"), "object": app.url("/@ceo/x") });
        assert_eq!(peer.deliver("alice", &inbox, forged).await, 401);
        // Over 1 MB: 413 before anything else.
        let big = json!({ "id": format!("{alice}/big"), "type": "Note", "actor": alice, "content": "x".repeat(1_100_000) });
        assert_eq!(peer.deliver("alice", &inbox, big).await, 413);
        // A blocked server: 403.
        rounds::federation::moderation::block_domain(&mut app.conn(), "localhost", rounds::federation::moderation::BlockSeverity::Reject, None).expect("block");
        let status = peer.deliver("alice", &inbox, json!({ "id": format!("{alice}/likes/99"), "type": "Like", "actor": alice, "object": app.url("/@ceo/x") })).await;
        assert_eq!(status, 403);
    }
}

e2e! {
    async fn private_addresses_are_refused_unless_allowed(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        let peer = Peer::start();
        let alice = peer.actor("alice");
        // Our server will not fetch alice's key from a loopback address, so it cannot
        // verify her signature.
        let status = peer.deliver("alice", &app.url("/@ceo/inbox"), json!({
            "id": format!("{alice}/follows/1"), "type": "Follow", "actor": alice, "object": app.url("/@ceo"),
        })).await;
        assert_eq!(status, 401);
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn our_fetches_are_signed(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        let peer = Peer::start();
        peer.control("require-signed-fetch", json!({})).await;
        let alice = peer.actor("alice");
        let status = peer.deliver("alice", &app.url("/@ceo/inbox"), json!({
            "id": format!("{alice}/follows/1"), "type": "Follow", "actor": alice, "object": app.url("/@ceo"),
        })).await;
        assert_eq!(status, 202, "the peer only answers signed fetches, and ours are");
        let fetches = peer.signed_fetches().await;
        assert_eq!(fetches, json!([app.url("/actor#main-key")]).as_array().cloned().unwrap_or_default());
        peer.wait_for("Accept").await;
    }
}

e2e! {
    async fn header_image_and_pinned_posts(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let post = publish(&app, &blog, "Our values", "Kindness first.", "");
        app.sign_in("jane").await;
        let (_, page) = app.page("/dashboard/@ceo/settings").await;
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", page.csrf_token())
            .text("display_name", "Jane Smith")
            .text("header_alt", "The hospital's front entrance")
            .part("header", reqwest::multipart::Part::bytes(crate::editor::png(300, 100)).file_name("h.png").mime_str("image/png").expect("mime"));
        let response = app.client.post(app.url("/dashboard/@ceo/settings")).multipart(form).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (_, _, person) = get_json(&app, "/@ceo").await;
        assert_eq!(person["image"]["name"], "The hospital's front entrance");
        assert_eq!(person["image"]["width"], 300);

        // A header without alt text is refused.
        let (_, page) = app.page("/dashboard/@ceo/settings").await;
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", page.csrf_token())
            .text("display_name", "Jane Smith")
            .text("header_alt", "")
            .part("header", reqwest::multipart::Part::bytes(crate::editor::png(30, 10)).file_name("h.png").mime_str("image/png").expect("mime"));
        let response = app.client.post(app.url("/dashboard/@ceo/settings")).multipart(form).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);

        let (_, _, featured) = get_json(&app, "/@ceo/featured").await;
        assert_eq!(featured["totalItems"], 0);
        let (_, page) = app.page("/dashboard/@ceo/fediverse").await;
        let response = app.client.post(app.url(&format!("/dashboard/@ceo/posts/{}/pin", post.id)))
            .form(&[("csrf_token", page.csrf_token().as_str()), ("pin", "yes")]).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (_, _, featured) = get_json(&app, "/@ceo/featured").await;
        assert_eq!(featured["totalItems"], 1);
        assert_eq!(featured["orderedItems"][0]["id"], app.url("/@ceo/our-values"));
        let (_, page) = app.page("/dashboard/@ceo/fediverse").await;
        assert!(page.text("table").contains("Pinned."));
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn two_nodes_on_one_database_deliver_each_post_once(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let first = Peer::start();
        let second = Peer::start();
        for (peer, name) in [(&first, "alice"), (&first, "bob"), (&second, "carol")] {
            let id = peer.actor(name);
            let status = peer.deliver(name, &app.url("/@ceo/inbox"), json!({
                "id": format!("{id}/follows/1"), "type": "Follow", "actor": id, "object": app.url("/@ceo"),
            })).await;
            assert_eq!(status, 202);
        }
        first.wait_for_n("Accept", 2).await;
        second.wait_for("Accept").await;
        // A second node's workers share the queue from now on.
        let node = app.sibling().await;
        let home = reqwest::get(format!("{}/@ceo", node.address)).await.expect("get");
        assert_eq!(home.status(), StatusCode::OK, "the second node serves the same blog");
        for n in 1..=15 {
            publish(&app, &blog, "", &format!("Update number {n}."), "");
        }
        for peer in [&first, &second] {
            peer.wait_for_n("Create", 15).await;
            // Give any duplicate time to arrive before counting.
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            let creates = peer.received().await.into_iter().filter(|r| r["activity"]["type"] == "Create").collect::<Vec<_>>();
            let mut ids: Vec<String> = creates.iter().map(|c| c["activity"]["id"].as_str().unwrap_or("").to_owned()).collect();
            ids.sort();
            let total = ids.len();
            ids.dedup();
            assert_eq!(total, 15, "each post once at {}", peer.base);
            assert_eq!(ids.len(), 15);
            assert!(creates.iter().all(|c| c["path"] == "/inbox"), "one shared inbox per server");
        }
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn content_warnings_from_the_editor_to_followers_pages_and_feeds(app: TestApp) {
        use crate::editor::{editor_form, saved_post, submit, token};

        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        let peer = Peer::start();
        let alice = peer.actor("alice");
        let status = peer.deliver("alice", &app.url("/@ceo/inbox"), json!({
            "id": format!("{alice}/follows/1"), "type": "Follow", "actor": alice, "object": app.url("/@ceo"),
        })).await;
        assert_eq!(status, 202);
        peer.wait_for("Accept").await;
        app.sign_in("jane").await;

        // A warning of two lines, or too long, is refused with a reason.
        let t = token(&app, "/dashboard/@ceo/new").await;
        let long = "x".repeat(201);
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "publish", &[("body", "Text."), ("content_warning", &long)])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = crate::helpers::Page::parse(&response.text().await.expect("body"));
        assert_eq!(page.attrs(".nhsuk-error-summary__list a", "href"), ["#content_warning"]);
        assert!(page.errors()[0].contains("200 characters or fewer"), "{:?}", page.errors());
        assert_eq!(page.attrs("input[name=content_warning]", "value"), [long.as_str()]);

        // A short update with a warning: Mastodon gets it as the Note's summary, marked sensitive.
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "publish", &[
            ("body", "Today we remember Sam, who died on ward 7."), ("content_warning", "Death of a patient"),
        ])).await;
        let (_, id) = saved_post(&response);
        let create = peer.wait_for("Create").await;
        let note = &create["activity"]["object"];
        assert_eq!(note["type"], "Note");
        assert_eq!(note["summary"], "Death of a patient");
        assert_eq!(note["sensitive"], true);
        let post = rounds::domain::posts::find(&mut app.conn(), id).expect("query").expect("post");
        let path = post.path("ceo").expect("path");
        let (_, _, served) = get_json(&app, &path).await;
        assert_eq!(served["summary"], "Death of a patient");

        // The post's page shows the warning above the text; the blog's list keeps the text
        // behind it; feeds lead with it.
        let (_, page) = app.page(&path).await;
        assert!(page.text(".nhsuk-warning-callout").contains("Death of a patient"));
        let (_, home) = app.page("/@ceo").await;
        assert!(home.text("details.rounds-content-warning summary").contains("Content warning: Death of a patient"));
        assert!(home.text("details.rounds-content-warning .nhsuk-details__text").contains("we remember Sam"));
        let atom = app.get("/@ceo/feed.atom").await.text().await.expect("atom");
        assert!(atom.contains("Content warning: Death of a patient"), "{atom}");

        // Changing the warning is an edit: an Update, and the history records it.
        let t = token(&app, &format!("/dashboard/posts/{id}")).await;
        let response = submit(&app, &format!("/dashboard/posts/{id}"), editor_form(&t, "save", &[
            ("body", "Today we remember Sam, who died on ward 7."), ("content_warning", "Death"),
        ])).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let update = peer.wait_for("Update").await;
        assert_eq!(update["activity"]["object"]["summary"], "Death");
        let (_, history) = app.page(&format!("/dashboard/posts/{id}/history")).await;
        assert!(history.text("main").contains("Content warning changed"), "{}", history.text("main"));

        // An article: Mastodon shows title, summary and link, so the warning leads the summary.
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "publish", &[
            ("title", "Learning from a death"), ("summary", "What we are changing."),
            ("body", "The review found three things."), ("content_warning", "Death of a patient"),
        ])).await;
        let (_, article_id) = saved_post(&response);
        let article = rounds::domain::posts::find(&mut app.conn(), article_id).expect("query").expect("post");
        let (_, _, served) = get_json(&app, &article.path("ceo").expect("path")).await;
        assert_eq!(served["type"], "Article");
        assert_eq!(served["summary"], "Content warning: Death of a patient — What we are changing.");
        assert_eq!(served["sensitive"], true);
        assert_eq!(served["preview"]["summary"], "Death of a patient");
    }
}

e2e! {
    async fn collections_are_json_for_servers_and_pages_for_browsers(app: TestApp) {
        const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        const LD: &str = r#"application/ld+json; profile="https://www.w3.org/ns/activitystreams""#;
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let post = publish(&app, &blog, "", "Proud of ward 7.", "");
        let post_path = post.path("ceo").expect("path");
        let mut cases: Vec<(String, String)> = ["followers", "following", "outbox", "featured"]
            .iter()
            .map(|c| (format!("/@ceo/{c}"), "/@ceo".to_owned()))
            .collect();
        for c in ["replies", "likes", "shares"] {
            cases.push((format!("{post_path}/{c}"), post_path.clone()));
        }
        // The instance actor is the server itself: browsers go to its home page.
        cases.push(("/actor".to_owned(), "/".to_owned()));
        let get = |path: &str, accept: Option<&str>| {
            let request = app.client.get(app.url(path));
            match accept {
                Some(accept) => request.header(header::ACCEPT, accept),
                None => request,
            }
            .send()
        };
        for (path, page) in &cases {
            // A browser is sent to the page that shows it.
            let browser = get(path, Some(BROWSER)).await.expect("get");
            assert_eq!(browser.status(), StatusCode::SEE_OTHER, "{path}");
            assert_eq!(browser.headers()[header::LOCATION], page.as_str(), "{path}");
            assert_eq!(browser.headers()[header::VARY], "Accept", "{path}");
            let shown = get(page, Some(BROWSER)).await.expect("get");
            assert_eq!(shown.status(), StatusCode::OK, "{page}");
            assert!(shown.headers()[header::CONTENT_TYPE].to_str().expect("type").starts_with("text/html"));
            // Servers, and clients that take anything, get the collection.
            for accept in [Some(AP), Some(LD), Some("*/*"), None] {
                let response = get(path, accept).await.expect("get");
                assert_eq!(response.status(), StatusCode::OK, "{path} {accept:?}");
                assert!(response.headers()[header::CONTENT_TYPE].to_str().expect("type").starts_with(AP), "{path} {accept:?}");
                assert_eq!(response.headers()[header::VARY], "Accept", "{path}");
                let body: Value = response.json().await.expect("json");
                assert_eq!(body["id"], app.url(path), "{path} {accept:?}");
            }
        }
        assert_eq!(get("/@nobody/followers", Some(BROWSER)).await.expect("get").status(), StatusCode::NOT_FOUND);

        // The instance actor's outbox is there, empty, with the id it is fetched by.
        let (_, _, instance) = get_json(&app, "/actor").await;
        let outbox = instance["outbox"].as_str().expect("outbox").to_owned();
        let response = app.client.get(&outbox).header(header::ACCEPT, AP).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()[header::CONTENT_TYPE].to_str().expect("type").starts_with(AP));
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["id"], outbox.as_str());
        assert_eq!(body["type"], "OrderedCollection");
        assert_eq!(body["totalItems"], 0);
    }
}

e2e! {
    with |s| s.federation_allow_private_addresses = true;
    async fn a_post_brought_back_gets_an_id_mastodon_has_not_seen_deleted(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let peer = Peer::start();
        let alice = peer.actor("alice");
        assert_eq!(replies::follow(&peer, &app, "alice").await, 202);
        peer.wait_for("Accept").await;
        let post = publish(&app, &blog, "", "Ward 7 opens on Monday.", "");
        let path = post.path("ceo").expect("path");
        let first = app.url(&path);
        peer.wait_for_matching("Create", 1, |a| a["object"]["id"] == json!(first)).await;

        // Withdrawn, then brought back at once: Mastodon keeps a tombstone for the first
        // id, so the second life has its own; the first one's Delete still goes out.
        let withdrawn = rounds::publishing::unpublish(&mut app.conn(), &post, &owner(&app, &blog)).expect("unpublish");
        rounds::publishing::publish(&mut app.conn(), &blog, withdrawn.id, &owner(&app, &blog), None, &Mentions::none()).expect("republish");
        let second = format!("{first}?v=2");
        let delete = peer.wait_for_matching("Delete", 1, |a| a["object"]["id"] == json!(first)).await.remove(0);
        assert_eq!(delete["activity"]["object"]["type"], "Tombstone");
        let create = peer.wait_for_matching("Create", 1, |a| a["object"]["id"] == json!(second)).await.remove(0);
        assert_eq!(create["activity"]["object"]["url"], first, "the page is the same");
        assert!(create["activity"]["id"].as_str().expect("id").starts_with(&second));

        // Each id answers as itself: the live one, and the first life gone.
        let (status, _, live) = get_json(&app, &format!("{path}?v=2")).await;
        assert_eq!((status, &live["id"]), (StatusCode::OK, &json!(second)));
        let (_, _, at_page) = get_json(&app, &path).await;
        assert_eq!(at_page["id"], second, "the page's address names the live copy");
        let (status, _, gone) = get_json(&app, &format!("{path}?v=1")).await;
        assert_eq!((status, &gone["id"]), (StatusCode::GONE, &json!(first)));
        for unknown in ["?v=3", "?v=0", "?v=two", "?x=1"] {
            let (status, _, _) = get_json(&app, &format!("{path}{unknown}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
        }
        // Replies to the new copy land under the post.
        let status = peer.deliver("alice", &app.url("/inbox"), json!({
            "id": format!("{alice}/notes/9/activity"), "type": "Create", "actor": alice,
            "object": { "id": format!("{alice}/notes/9"), "type": "Note", "attributedTo": alice, "inReplyTo": second,
                "content": "<p>Welcome back.</p>", "to": ["https://www.w3.org/ns/activitystreams#Public"] },
        })).await;
        assert_eq!(status, 202);
        let reply = rounds::federation::moderation::reply_by_ap_id(&mut app.conn(), &format!("{alice}/notes/9")).expect("query").expect("stored");
        assert_eq!(reply.post_id, Some(post.id));
        // The web page is one page whatever the query.
        let (status, page) = app.page(&format!("{path}?v=2")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.text("main").contains("Ward 7 opens"));
    }
}
