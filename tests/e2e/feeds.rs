//! Feeds as a feed reader sees them. Every feed is read by an independent parser
//! (tests/tools/parse_feed.py: feedparser for RSS and Atom, jsonfeed-util for JSON
//! Feed), never by the crates that wrote it.

use std::path::Path;
use std::process::Stdio;

use reqwest::StatusCode;
use reqwest::header;
use rounds::db;
use rounds::domain::blogs::Blog;
use rounds::domain::posts::{self, Post, PostFields, PostInput};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::e2e;
use crate::helpers::{TestApp, python};

/// Each format: its extension, and the name the parser gives its version.
const FORMATS: [(&str, &str); 3] = [("rss", "rss20"), ("atom", "atom10"), ("json", "json11")];

/// What the parser understood of a feed (see the shape in parse_feed.py).
#[derive(Debug, Deserialize)]
struct ParsedFeed {
    bozo: bool,
    bozo_exception: Option<String>,
    version: Option<String>,
    feed: FeedHead,
    entries: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct FeedHead {
    title: Option<String>,
    link: Option<String>,
    #[serde(rename = "self")]
    self_link: Option<String>,
    language: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: Option<String>,
    link: Option<String>,
    title: Option<String>,
    summary: Option<String>,
    content: Option<String>,
    published: Option<String>,
    tags: Vec<String>,
}

impl ParsedFeed {
    fn titles(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.title.clone().unwrap_or_default())
            .collect()
    }

    fn links(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.link.clone().unwrap_or_default())
            .collect()
    }

    /// The entry whose link is `url`.
    fn entry(&self, url: &str) -> &Entry {
        self.entries
            .iter()
            .find(|e| e.link.as_deref() == Some(url))
            .unwrap_or_else(|| panic!("no entry links to {url} in {self:#?}"))
    }
}

/// Runs the independent parser on a feed body.
async fn parse(content_type: &str, body: &[u8]) -> ParsedFeed {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/parse_feed.py");
    let mut child = tokio::process::Command::new(python())
        .arg(script)
        .arg(content_type)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run parse_feed.py");
    // Dropped at the end of the statement, which closes the parser's input.
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .await
        .expect("write the feed");
    let output = child.wait_with_output().await.expect("parser finished");
    assert!(
        output.status.success(),
        "parse_feed.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the parser prints JSON")
}

/// Fetches a feed and parses it; it must be served and read without complaint.
async fn read_feed(app: &TestApp, path: &str) -> ParsedFeed {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("content type")
        .to_owned();
    let body = response.bytes().await.expect("body");
    let parsed = parse(&content_type, &body).await;
    assert!(
        !parsed.bozo,
        "{path} did not parse cleanly: {:?}\n{}",
        parsed.bozo_exception,
        String::from_utf8_lossy(&body)
    );
    parsed
}

/// Publishes a post with a summary (which `TestApp::publish` does not take).
fn publish_article(
    app: &TestApp,
    blog: &Blog,
    title: &str,
    summary: &str,
    body: &str,
    tags: &str,
) -> Post {
    let mut conn = app.conn();
    let input = PostInput::parse(&PostFields {
        title,
        summary,
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

/// A post's address as readers follow it.
fn post_url(app: &TestApp, post: &Post, handle: &str) -> String {
    app.url(&post.path(handle).expect("a published post has an address"))
}

/// A post's publication time as the parser reports it (UTC, to the second).
fn published(post: &Post) -> String {
    post.published_at
        .expect("published")
        .and_utc()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

e2e! {
    async fn feeds_hold_the_twenty_newest_published_posts_in_every_format(app: TestApp) {
        let jane = app.user("jane", false);
        let raj = app.user("raj", false);
        let ceo = app.blog("ceo", "Jane Smith", &jane);
        let cmo = app.blog("cmo", "Raj Patel", &raj);
        let mut posts = Vec::new();
        for n in 1..=23 {
            posts.push(app.publish(&ceo, &format!("Article {n}"), &format!("Text of article {n}."), ""));
        }
        let withdrawn = app.publish(&ceo, "Withdrawn", "Published by mistake.", "");
        let mut conn = app.conn();
        posts::unpublish(&mut conn, &withdrawn).expect("unpublish");
        let draft_input = PostInput::parse(&PostFields { title: "Draft idea", body: "Not ready.", ..PostFields::default() }).expect("valid");
        posts::create_draft(&mut conn, ceo.id, None, &draft_input).expect("draft");
        app.publish(&cmo, "Raj's news", "On another blog.", "");

        let newest: Vec<&Post> = posts.iter().rev().take(20).collect();
        let titles: Vec<String> = (4..=23).rev().map(|n| format!("Article {n}")).collect();
        let links: Vec<String> = newest.iter().map(|p| post_url(&app, p, "ceo")).collect();
        for (format, version) in FORMATS {
            let path = format!("/@ceo/feed.{format}");
            let feed = read_feed(&app, &path).await;
            assert_eq!(feed.version.as_deref(), Some(version), "{path}");
            assert_eq!(feed.feed.title.as_deref(), Some("Jane Smith"), "{path}");
            assert_eq!(feed.feed.link, Some(app.url("/@ceo")), "{path}");
            assert_eq!(feed.feed.self_link, Some(app.url(&path)), "{path}");
            assert_eq!(feed.feed.language.as_deref(), Some("en-GB"), "{path}");
            // Newest first, twenty of them: no drafts, withdrawn posts or other blogs.
            assert_eq!(feed.titles(), titles, "{path}");
            assert_eq!(feed.links(), links, "{path}");
            for (entry, post) in feed.entries.iter().zip(&newest) {
                assert_eq!(entry.id.as_deref(), Some(post_url(&app, post, "ceo").as_str()), "{path}: ids are the permalinks");
                assert_eq!(entry.published, Some(published(post)), "{path}");
            }
        }
    }
}

e2e! {
    async fn feed_entries_carry_the_posts_text_images_and_tags(app: TestApp) {
        let jane = app.user("jane", false);
        let ceo = app.blog("ceo", "Jane Smith", &jane);
        let article = publish_article(
            &app,
            &ceo,
            "Beds & staff: <our> winter plan",
            "How we'll cope & why",
            "We will **open** ward 7 & 8 when demand > beds.\n\n\
             ![The ward 7 team](/media/ward7.jpg)\n\n\
             See [the earlier post](earlier-post) and [the notes](#notes).",
            "Winter, NHS",
        );
        let update = app.publish(&ceo, "", "Proud of the team on ward 7 & every day <3", "Thanks");
        let photo = app.publish(&ceo, "", "The new scanner is in. ![The new CT scanner](/media/scanner.png)", "");

        let article_url = post_url(&app, &article, "ceo");
        let update_url = post_url(&app, &update, "ceo");
        let photo_url = post_url(&app, &photo, "ceo");
        // What the post pages call the short updates, without the instance name.
        let mut page_titles = Vec::new();
        for url in [&update_url, &photo_url] {
            let (status, page) = app.page(url.trim_start_matches(&app.address)).await;
            assert_eq!(status, StatusCode::OK);
            let title = page.title();
            page_titles.push(title.trim_end_matches(" – Test Trust blogs").to_owned());
        }

        for (format, _) in FORMATS {
            let path = format!("/@ceo/feed.{format}");
            let feed = read_feed(&app, &path).await;
            assert_eq!(feed.links(), [photo_url.clone(), update_url.clone(), article_url.clone()], "{path}");

            let entry = feed.entry(&article_url);
            assert_eq!(entry.title.as_deref(), Some("Beds & staff: <our> winter plan"), "{path}");
            if format != "rss" {
                assert_eq!(entry.summary.as_deref(), Some("How we'll cope & why"), "{path}");
            }
            assert_eq!(entry.tags, ["Winter", "NHS"], "{path}");
            let content = entry.content.as_deref().unwrap_or_default();
            assert!(content.contains("<strong>open</strong> ward 7 &amp; 8 when demand &gt; beds"), "{path}: {content}");
            assert!(content.contains(&format!(r#"src="{}""#, app.url("/media/ward7.jpg"))), "{path}: {content}");
            assert!(content.contains(r#"alt="The ward 7 team""#), "{path}: {content}");
            // Relative links mean what they mean on the post's own page.
            assert!(content.contains(&format!(r#"href="{}""#, app.url("/@ceo/earlier-post"))), "{path}: {content}");
            assert!(content.contains(&format!(r#"href="{article_url}#notes""#)), "{path}: {content}");

            // Short updates have no title in RSS and JSON Feed, as on micro.blog; Atom
            // requires one, so it gets what the post page calls the update.
            let entry = feed.entry(&update_url);
            let content = entry.content.as_deref().unwrap_or_default();
            assert!(content.contains("Proud of the team on ward 7 &amp; every day &lt;3"), "{path}: {content}");
            assert_eq!(entry.tags, ["Thanks"], "{path}");
            let photo_entry = feed.entry(&photo_url);
            let photo_content = photo_entry.content.as_deref().unwrap_or_default();
            assert!(photo_content.contains(&format!(r#"src="{}""#, app.url("/media/scanner.png"))), "{path}: {photo_content}");
            assert!(photo_entry.tags.is_empty(), "{path}");
            if format == "atom" {
                assert_eq!(entry.title.as_deref(), Some(page_titles[0].as_str()), "{path}");
                assert!(page_titles[0].starts_with("Proud of the team on ward 7 & every day"), "{page_titles:?}");
                assert_eq!(photo_entry.title.as_deref(), Some(page_titles[1].as_str()), "{path}");
            } else {
                assert_eq!(entry.title, None, "{path}");
                assert_eq!(photo_entry.title, None, "{path}");
            }
            for entry in &feed.entries {
                let content = entry.content.as_deref().unwrap_or_default();
                assert!(!content.contains(r#"="/"#), "{path}: a relative address is left in {content}");
            }
        }
    }
}

e2e! {
    async fn text_pasted_from_office_documents_keeps_feeds_readable(app: TestApp) {
        // Word writes a manual line break as a vertical tab, and such characters come
        // along when text is pasted; XML 1.0 forbids them anywhere in a document.
        let jane = app.user("jane", false);
        let ceo = app.blog("ceo", "Jane Smith", &jane);
        let post = publish_article(
            &app,
            &ceo,
            "Board papers\u{b}for March",
            "Agenda\u{b}and minutes",
            "Item 1:\u{b}finance.\u{c}\n\nItem 2: people.",
            "Board",
        );
        let url = post_url(&app, &post, "ceo");
        for (format, _) in FORMATS {
            for path in [format!("/@ceo/feed.{format}"), format!("/@ceo/tags/board/feed.{format}")] {
                let feed = read_feed(&app, &path).await;
                let entry = feed.entry(&url);
                let title = entry.title.as_deref().unwrap_or_default();
                assert_eq!(title.split_whitespace().collect::<Vec<_>>(), ["Board", "papers", "for", "March"], "{path}");
                let content = entry.content.as_deref().unwrap_or_default();
                assert!(content.contains("finance."), "{path}: {content}");
                assert!(content.contains("Item 2: people."), "{path}: {content}");
            }
        }
    }
}

e2e! {
    async fn tag_feeds_hold_only_that_tags_posts(app: TestApp) {
        let jane = app.user("jane", false);
        let raj = app.user("raj", false);
        let ceo = app.blog("ceo", "Jane Smith", &jane);
        let cmo = app.blog("cmo", "Raj Patel", &raj);
        let plan = app.publish(&ceo, "Winter plan", "Text.", "winter");
        let flu = app.publish(&ceo, "Flu jabs", "Text.", "Flu, Winter");
        app.publish(&ceo, "Rotas", "Text.", "");
        let update = app.publish(&ceo, "", "Gritters out tonight.", "Winter");
        app.publish(&cmo, "Raj's winter", "Text.", "Winter");
        let festival = app.publish(&ceo, "Festival", "Text.", "Gŵyl");

        let winter = [&update, &flu, &plan].map(|p| post_url(&app, p, "ceo"));
        for (format, _) in FORMATS {
            for key in ["winter", "WINTER", "Winter"] {
                let path = format!("/@ceo/tags/{key}/feed.{format}");
                let feed = read_feed(&app, &path).await;
                assert_eq!(feed.links(), winter, "{path}: newest first, this blog only");
                // Named as the tag was last written, whatever the address's case.
                assert_eq!(feed.feed.title.as_deref(), Some("Jane Smith – #Winter"), "{path}");
                assert_eq!(feed.feed.link, Some(app.url("/@ceo/tags/winter")), "{path}");
                assert_eq!(feed.feed.self_link, Some(app.url(&format!("/@ceo/tags/winter/feed.{format}"))), "{path}");
                for entry in &feed.entries {
                    assert!(entry.tags.iter().any(|t| t.eq_ignore_ascii_case("winter")), "{path}: {entry:?}");
                }
            }
            let path = format!("/@ceo/tags/flu/feed.{format}");
            assert_eq!(read_feed(&app, &path).await.titles(), ["Flu jabs"], "{path}");

            // A tag in another script: its addresses are valid URLs a reader can follow.
            let path = format!("/@ceo/tags/gŵyl/feed.{format}");
            let feed = read_feed(&app, &path).await;
            assert_eq!(feed.links(), [post_url(&app, &festival, "ceo")], "{path}");
            assert_eq!(feed.feed.title.as_deref(), Some("Jane Smith – #Gŵyl"), "{path}");
            let self_link = feed.feed.self_link.expect("self link");
            assert_eq!(self_link, app.url(&format!("/@ceo/tags/g%C5%B5yl/feed.{format}")), "{path}");
            let again = read_feed(&app, self_link.trim_start_matches(&app.address)).await;
            assert_eq!(again.feed.title.as_deref(), Some("Jane Smith – #Gŵyl"));
            let page = feed.feed.link.expect("page link");
            assert_eq!(app.get(page.trim_start_matches(&app.address)).await.status(), StatusCode::OK, "{page}");
        }
    }
}

e2e! {
    async fn feeds_that_do_not_exist_are_not_found(app: TestApp) {
        let jane = app.user("jane", false);
        let raj = app.user("raj", false);
        let ceo = app.blog("ceo", "Jane Smith", &jane);
        let cmo = app.blog("cmo", "Raj Patel", &raj);
        app.publish(&ceo, "Winter plan", "Text.", "Winter");
        app.publish(&cmo, "Flu jabs", "Text.", "Flu");
        let mut conn = app.conn();
        let draft = PostInput::parse(&PostFields { title: "Draft", body: "Text.", tags: "Secret", ..PostFields::default() }).expect("valid");
        posts::create_draft(&mut conn, ceo.id, None, &draft).expect("draft");

        for path in [
            "/@ceo/feed.xml",
            "/@ceo/feed.RSS",
            "/@ceo/feed.",
            "/@ceo/feed.atom.json",
            "/@nobody/feed.rss",
            "/@ceo/tags/winter/feed.html",
            "/@ceo/tags/flu/feed.atom",
            "/@ceo/tags/secret/feed.json",
            "/@ceo/tags/never_used/feed.rss",
            "/@ceo/tags/not-a-tag!/feed.rss",
        ] {
            let (status, page) = app.page(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(page.h1(), "Page not found", "{path}");
        }
        // A blog with nothing published yet still has a (valid, empty) feed to subscribe to.
        let sam = app.user("sam", false);
        app.blog("cno", "Sam Jones", &sam);
        for (format, _) in FORMATS {
            let feed = read_feed(&app, &format!("/@cno/feed.{format}")).await;
            assert!(feed.entries.is_empty());
            assert_eq!(feed.feed.title.as_deref(), Some("Sam Jones"));
        }
    }
}

e2e! {
    async fn pages_advertise_their_feeds_for_autodiscovery(app: TestApp) {
        let jane = app.user("jane", false);
        let ceo = app.blog("ceo", "Jane Smith", &jane);
        app.publish(&ceo, "Winter plan", "Text.", "Winter");
        app.publish(&ceo, "Rotas", "Text.", "");

        let cases = [
            ("/@ceo", "/@ceo", "Jane Smith", 2),
            ("/@ceo/winter-plan", "/@ceo", "Jane Smith", 2),
            ("/@ceo/about", "/@ceo", "Jane Smith", 2),
            ("/@ceo/tags/winter", "/@ceo/tags/winter", "Jane Smith – #Winter", 1),
        ];
        for (page_path, feed_base, title, entries) in cases {
            let (status, page) = app.page(page_path).await;
            assert_eq!(status, StatusCode::OK, "{page_path}");
            let alternates = "link[rel=alternate]";
            assert_eq!(
                page.attrs(alternates, "type"),
                ["application/atom+xml", "application/rss+xml", "application/feed+json"],
                "{page_path}"
            );
            let hrefs = page.attrs(alternates, "href");
            let expected: Vec<String> = ["atom", "rss", "json"].iter().map(|f| app.url(&format!("{feed_base}/feed.{f}"))).collect();
            assert_eq!(hrefs, expected, "{page_path}");
            assert_eq!(
                page.attrs(alternates, "title"),
                [format!("{title} (Atom)"), format!("{title} (RSS)"), format!("{title} (JSON Feed)")],
                "{page_path}"
            );
            // Each advertised feed is there, reads cleanly and is the one promised.
            for href in &hrefs {
                let feed = read_feed(&app, href.trim_start_matches(&app.address)).await;
                assert_eq!(feed.feed.title.as_deref(), Some(title), "{href}");
                assert_eq!(feed.entries.len(), entries, "{href}");
            }
        }
        // The page listing every blog's posts on a tag has no feed, so it advertises none.
        let (status, page) = app.page("/tags/winter").await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.has("link[rel=alternate]"), "{}", page.source);
    }
}

e2e! {
    async fn feeds_answer_conditional_requests(app: TestApp) {
        let jane = app.user("jane", false);
        let raj = app.user("raj", false);
        let ceo = app.blog("ceo", "Jane Smith", &jane);
        let cmo = app.blog("cmo", "Raj Patel", &raj);
        let plan = app.publish(&ceo, "Winter plan", "Text.", "Winter");

        let paths: Vec<String> = FORMATS
            .iter()
            .flat_map(|(f, _)| [format!("/@ceo/feed.{f}"), format!("/@ceo/tags/winter/feed.{f}")])
            .collect();
        let mut etags = Vec::new();
        for path in &paths {
            let first = app.get(path).await;
            assert_eq!(first.status(), StatusCode::OK, "{path}");
            let etag = first.headers()[header::ETAG].clone();
            let modified = first.headers()[header::LAST_MODIFIED].clone();
            assert_eq!(first.headers()[header::CACHE_CONTROL], "public, max-age=60, must-revalidate");

            let again = app.client.get(app.url(path)).header(header::IF_NONE_MATCH, etag.clone()).send().await.expect("get");
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
            assert_eq!(again.headers()[header::ETAG], etag, "{path}");
            assert!(again.bytes().await.expect("body").is_empty(), "{path}");
            let since = app.client.get(app.url(path)).header(header::IF_MODIFIED_SINCE, modified).send().await.expect("get");
            assert_eq!(since.status(), StatusCode::NOT_MODIFIED, "{path}");
            let other = app.client.get(app.url(path)).header(header::IF_NONE_MATCH, "\"something-else\"").send().await.expect("get");
            assert_eq!(other.status(), StatusCode::OK, "{path}");
            let head = app.client.head(app.url(path)).send().await.expect("head");
            assert_eq!(head.status(), StatusCode::OK, "{path}");
            assert_eq!(head.headers()[header::ETAG], etag, "{path}");
            etags.push(etag);
        }
        let mut distinct = etags.clone();
        distinct.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        distinct.dedup();
        assert_eq!(distinct.len(), etags.len(), "each feed has its own entity tag: {etags:?}");

        // Another blog's news leaves this blog's feeds as they were.
        app.publish(&cmo, "Flu jabs", "Text.", "Winter");
        for (path, etag) in paths.iter().zip(&etags) {
            let response = app.client.get(app.url(path)).header(header::IF_NONE_MATCH, etag.clone()).send().await.expect("get");
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path}");
        }

        // A new post on this blog: a reader holding the old copy gets the new one.
        let news = app.publish(&ceo, "Ward 7 reopens", "Text.", "Winter");
        for (path, etag) in paths.iter().zip(&etags) {
            let response = app.client.get(app.url(path)).header(header::IF_NONE_MATCH, etag.clone()).send().await.expect("get");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_ne!(response.headers()[header::ETAG], etag, "{path}");
            let content_type = response.headers()[header::CONTENT_TYPE].to_str().expect("type").to_owned();
            let feed = parse(&content_type, &response.bytes().await.expect("body")).await;
            assert_eq!(feed.links(), [post_url(&app, &news, "ceo"), post_url(&app, &plan, "ceo")], "{path}");
        }

        // Withdrawing a post changes the feeds too.
        let before = app.get("/@ceo/feed.atom").await.headers()[header::ETAG].clone();
        let mut conn = app.conn();
        posts::unpublish(&mut conn, &news).expect("unpublish");
        let response = app.client.get(app.url("/@ceo/feed.atom")).header(header::IF_NONE_MATCH, before).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().expect("type").to_owned();
        let feed = parse(&content_type, &response.bytes().await.expect("body")).await;
        assert_eq!(feed.links(), [post_url(&app, &plan, "ceo")]);
    }
}
