//! What the public reads: pages, status codes, caching.

use reqwest::StatusCode;
use reqwest::header;

use crate::e2e;

e2e! {
    async fn blog_home_lists_posts_newest_first_with_pages(app: TestApp) {
        let owner = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &owner);
        for n in 1..=12 {
            app.publish(&blog, &format!("Article {n}"), &format!("Text of article {n}."), "");
        }
        app.publish(&blog, "", "A short update from the ward, shown in full.", "");

        let (status, page) = app.page("/@ceo").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page.h1(), "Jane Smith");
        assert!(page.text(".rounds-masthead").contains("Chief Executive, Example NHS Foundation Trust"));
        let entries = page.texts(".rounds-entry");
        assert_eq!(entries.len(), 10, "ten posts a page");
        assert!(entries[0].contains("A short update from the ward, shown in full."), "{entries:?}");
        assert!(page.texts(".rounds-entry__title")[0].contains("Article 12"));
        assert_eq!(page.attrs("a[rel=next]", "href"), ["/@ceo?page=2"]);

        let (status, second) = app.page("/@ceo?page=2").await;
        assert_eq!(status, StatusCode::OK);
        let titles = second.texts(".rounds-entry__title");
        assert_eq!(titles, ["Article 3", "Article 2", "Article 1"]);
        assert_eq!(second.attrs("a[rel=prev]", "href"), ["/@ceo"]);
        assert!(second.title().contains("page 2"));

        assert_eq!(app.get("/@ceo?page=3").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.get("/@ceo?page=0").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.get("/@ceo?page=abc").await.status(), StatusCode::BAD_REQUEST);
    }
}

e2e! {
    async fn post_pages_have_stable_addresses_and_helpful_errors(app: TestApp) {
        let owner = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &owner);
        let post = app.publish(&blog, "Our plan", "# Winter\n\nWe will **open** ward 7.", "Winter, NHS");

        let (status, page) = app.page("/@ceo/our-plan").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page.h1(), "Our plan");
        assert_eq!(page.title(), "Our plan – Test Trust blogs");
        assert_eq!(page.text(".rounds-post__body h2"), "Winter", "headings move down a level");
        assert_eq!(page.text(".rounds-post__body strong"), "open");
        assert_eq!(page.texts(".rounds-tags a"), ["#Winter", "#NHS"]);
        assert_eq!(page.attrs("link[rel=canonical]", "href"), [app.url("/@ceo/our-plan")]);

        // Unknown paths under the blog, unknown blogs and drafts are 404 pages.
        for path in ["/@ceo/no-such-post", "/@nobody", "/@nobody/our-plan", "/@ceo/a/b", "/@ceo/Our-Plan"] {
            let (status, page) = app.page(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(page.h1(), "Page not found", "{path}");
        }

        // Withdrawn posts say so: 410 Gone.
        let mut conn = app.conn();
        rounds::domain::posts::unpublish(&mut conn, &post).expect("unpublish");
        let (status, page) = app.page("/@ceo/our-plan").await;
        assert_eq!(status, StatusCode::GONE);
        assert_eq!(page.h1(), "This page has been removed");
        assert!(app.page("/@ceo").await.1.texts(".rounds-entry").is_empty());
    }
}

e2e! {
    async fn short_updates_and_articles_read_differently(app: TestApp) {
        let owner = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &owner);
        app.publish(&blog, "", "Proud of the team on ward 7 today.", "");
        let (status, page) = app.page("/@ceo/proud-of-the-team-on-ward-7-today").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page.h1(), "Update from Jane Smith");
        assert_eq!(page.text(".rounds-post__body"), "Proud of the team on ward 7 today.");
        assert!(page.title().starts_with("Proud of the team on ward 7 today."));
    }
}

e2e! {
    async fn instance_home_tag_pages_and_about_page(app: TestApp) {
        let jane = app.user("jane", false);
        let raj = app.user("raj", false);
        let ceo = app.blog("ceo", "Jane Smith", &jane);
        let cmo = app.blog("cmo", "Raj Patel", &raj);
        app.publish(&ceo, "Winter plan", "Text.", "Winter");
        app.publish(&cmo, "Flu jabs", "Text.", "winter, Flu");
        app.publish(&cmo, "Rotas", "Text.", "");

        let (status, home) = app.page("/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(home.h1(), "Test Trust blogs");
        let cards = home.texts(".nhsuk-card__heading");
        assert_eq!(cards, ["Raj Patel", "Jane Smith"], "most recently active first");
        assert!(home.texts(".rounds-entry__title").contains(&"Flu jabs".to_owned()));

        let (status, tag) = app.page("/tags/winter").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(tag.h1(), "Posts tagged #winter");
        assert_eq!(tag.texts(".rounds-entry__title"), ["Flu jabs", "Winter plan"]);

        let (status, tag) = app.page("/@ceo/tags/WINTER").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(tag.h1(), "Posts tagged #Winter by Jane Smith");
        assert_eq!(tag.texts(".rounds-entry__title"), ["Winter plan"]);
        assert_eq!(app.get("/@ceo/tags/flu").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.get("/tags/not-a-tag!").await.status(), StatusCode::NOT_FOUND);

        let (status, about) = app.page("/@ceo/about").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(about.h1(), "Jane Smith");
        assert!(about.source.contains("Chief Executive"));
        assert!(about.source.contains("Example NHS Foundation Trust"));
        assert!(about.text(".rounds-handle").starts_with("@ceo@127.0.0.1:"));
    }
}

e2e! {
    async fn conditional_get_and_head(app: TestApp) {
        let owner = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &owner);
        app.publish(&blog, "Our plan", "Text.", "");
        for path in ["/", "/@ceo", "/@ceo/our-plan"] {
            let first = app.get(path).await;
            assert_eq!(first.status(), StatusCode::OK);
            let etag = first.headers()[header::ETAG].clone();
            let modified = first.headers()[header::LAST_MODIFIED].clone();
            let again = app.client.get(app.url(path)).header(header::IF_NONE_MATCH, etag.clone()).send().await.expect("get");
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
            let since = app.client.get(app.url(path)).header(header::IF_MODIFIED_SINCE, modified).send().await.expect("get");
            assert_eq!(since.status(), StatusCode::NOT_MODIFIED, "{path}");
            let head = app.client.head(app.url(path)).send().await.expect("head");
            assert_eq!(head.status(), StatusCode::OK);
            assert_eq!(head.headers()[header::ETAG], etag);
        }
        // A new post changes the blog home's tag.
        let before = app.get("/@ceo").await.headers()[header::ETAG].clone();
        app.publish(&blog, "Second", "Text.", "");
        let changed = app.client.get(app.url("/@ceo")).header(header::IF_NONE_MATCH, before).send().await.expect("get");
        assert_eq!(changed.status(), StatusCode::OK);
    }
}

e2e! {
    async fn operations_endpoints_and_security_headers(app: TestApp) {
        let health = app.get("/healthz").await;
        assert_eq!(health.status(), StatusCode::OK);
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status(), StatusCode::OK);
        assert_eq!(ready.text().await.expect("body"), "ok");
        let home = app.get("/").await;
        let csp = home.headers()["content-security-policy"].to_str().expect("csp").to_owned();
        assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(home.headers()["x-content-type-options"], "nosniff");
        let css = app.get("/assets/nhsuk-frontend.min.css").await;
        assert_eq!(css.status(), StatusCode::OK);
        assert!(css.headers()[header::CONTENT_TYPE].to_str().expect("type").starts_with("text/css"));
        assert_eq!(app.get("/assets/nope.css").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.get("/media/../../etc/passwd").await.status(), StatusCode::NOT_FOUND);
    }
}
