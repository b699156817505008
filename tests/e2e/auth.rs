//! Signing in and out, sessions, CSRF, the sign-in rate limit and two-factor codes.

use reqwest::StatusCode;
use reqwest::header;

use crate::e2e;
use crate::helpers::{PASSWORD, Page, TestApp};

async fn login_form(app: &TestApp, client: &reqwest::Client) -> String {
    let text = client
        .get(app.url("/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("body");
    Page::parse(&text).csrf_token()
}

async fn post_login(
    app: &TestApp,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let token = login_form(app, client).await;
    client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", username),
            ("password", password),
            ("next", "/dashboard/@ceo"),
        ])
        .send()
        .await
        .expect("login")
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .expect("location")
        .to_owned()
}

e2e! {
    async fn team_pages_need_a_signed_in_account(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);

        let response = app.get("/dashboard/@ceo").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/login?next=%2Fdashboard%2F%40ceo");

        let wrong = post_login(&app, &app.client, "jane", "not the password").await;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&wrong.text().await.expect("body"));
        assert_eq!(page.errors(), ["The username or password is not right"]);
        assert_eq!(page.attrs("input[name=username]", "value"), ["jane"], "what was typed stays");

        let unknown = post_login(&app, &app.client, "nobody", PASSWORD).await;
        assert_eq!(unknown.status(), StatusCode::BAD_REQUEST, "same answer for an unknown account");

        let ok = post_login(&app, &app.client, "JANE@nhs.net", PASSWORD).await;
        assert_eq!(ok.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&ok), "/dashboard/@ceo");
        let cookie = ok.headers()[header::SET_COOKIE].to_str().expect("cookie").to_owned();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");

        let (status, page) = app.page("/dashboard/@ceo").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.h1().starts_with("Jane Smith"));
        assert!(page.texts("header").join(" ").contains("jane"), "the header names who is signed in");

        // Signing out ends the session.
        let token = page.csrf_token();
        let out = app.client.post(app.url("/logout")).form(&[("csrf_token", token.as_str())]).send().await.expect("logout");
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
    }
}

e2e! {
    async fn other_people_cannot_use_a_blog_they_are_not_on(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let post = app.publish(&blog, "Plan", "Text.", "");
        app.user("mallory", false);
        app.sign_in("mallory").await;
        for path in ["/dashboard/@ceo", "/dashboard/@ceo/new", &format!("/dashboard/posts/{}", post.id), "/dashboard/@ceo/settings"] {
            let (status, page) = app.page(path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(page.h1(), "You do not have permission to do that", "{path}");
        }
        assert_eq!(app.get("/dashboard/@nobody").await.status(), StatusCode::NOT_FOUND);
    }
}

e2e! {
    async fn forms_without_the_session_token_or_from_other_sites_are_refused(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        // No token at all.
        let response = app.client.post(app.url("/login"))
            .form(&[("csrf_token", "forged"), ("username", "jane"), ("password", PASSWORD)])
            .send().await.expect("post");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let page = Page::parse(&response.text().await.expect("body"));
        assert!(page.source.contains("This form has expired"), "{}", page.source);

        app.sign_in("jane").await;
        let (_, page) = app.page("/dashboard/@ceo/new").await;
        let token = page.csrf_token();
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token)
            .text("action", "save")
            .text("body", "Hello");
        let response = app.client.post(app.url("/dashboard/@ceo/new"))
            .header(header::ORIGIN, "https://evil.example")
            .multipart(form)
            .send().await.expect("post");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let wrong_token = reqwest::multipart::Form::new()
            .text("csrf_token", "0".repeat(64))
            .text("action", "save")
            .text("body", "Hello");
        let response = app.client.post(app.url("/dashboard/@ceo/new")).multipart(wrong_token).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let mut conn = app.conn();
        assert!(rounds::domain::posts::for_team(&mut conn, 1).expect("posts").is_empty());
    }
}

e2e! {
    with |s| s.login_attempts_per_window = 3;
    async fn sign_in_attempts_are_limited(app: TestApp) {
        app.user("jane", false);
        for _ in 0..3 {
            let response = post_login(&app, &app.client, "jane", "wrong password!").await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
        let limited = post_login(&app, &app.client, "jane", PASSWORD).await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = limited.headers()[header::RETRY_AFTER].to_str().expect("retry").parse().expect("seconds");
        assert!((1..=900).contains(&retry), "{retry}");
        let page = Page::parse(&limited.text().await.expect("body"));
        assert_eq!(page.h1(), "Too many attempts");
        // Another account from the same address is limited too (per-address limit).
        let other = post_login(&app, &app.new_client(), "raj", PASSWORD).await;
        assert_eq!(other.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}

fn totp(secret: &str) -> totp_rs::Totp {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).expect("base32"))
        .with_account_name("jane")
        .build()
        .expect("totp")
}

fn code_at(secret: &str, offset_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let at = now.saturating_add_signed(offset_secs);
    totp(secret).generate(at).to_string()
}

e2e! {
    async fn two_factor_sign_in(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        app.sign_in("jane").await;

        let (status, setup) = app.page("/account/two-factor").await;
        assert_eq!(status, StatusCode::OK);
        let secret: String = setup.text("code").split_whitespace().collect();
        assert!(setup.attrs("img.rounds-qr", "src")[0].starts_with("data:image/svg+xml;base64,"));
        assert!(!setup.attrs("img.rounds-qr", "alt")[0].is_empty());

        let token = setup.csrf_token();
        let wrong = app.client.post(app.url("/account/two-factor"))
            .form(&[("csrf_token", token.as_str()), ("code", "000000")]).send().await.expect("post");
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        let code = code_at(&secret, 0);
        let on = app.client.post(app.url("/account/two-factor"))
            .form(&[("csrf_token", token.as_str()), ("code", code.as_str())]).send().await.expect("post");
        assert_eq!(on.status(), StatusCode::SEE_OTHER);
        let (_, account) = app.page("/account?done=two-factor-on").await;
        assert!(account.source.contains("Two-factor sign-in is on"));

        // A new browser: the password alone is not enough.
        let browser = app.new_client();
        let response = post_login(&app, &browser, "jane", PASSWORD).await;
        assert_eq!(location(&response), "/login/two-factor");
        let dashboard = browser.get(app.url("/dashboard")).send().await.expect("get");
        assert_eq!(dashboard.status(), StatusCode::SEE_OTHER, "not signed in before the code");
        let page = Page::parse(&browser.get(app.url("/login/two-factor")).send().await.expect("get").text().await.expect("body"));
        let token = page.csrf_token();
        // The code used to turn two-factor on cannot be used again.
        let replay = browser.post(app.url("/login/two-factor"))
            .form(&[("csrf_token", token.as_str()), ("code", code.as_str())]).send().await.expect("post");
        assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
        let next = code_at(&secret, 30);
        let ok = browser.post(app.url("/login/two-factor"))
            .form(&[("csrf_token", token.as_str()), ("code", next.as_str())]).send().await.expect("post");
        assert_eq!(ok.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&ok), "/dashboard/@ceo");
        let dashboard = browser.get(app.url("/dashboard/@ceo")).send().await.expect("get");
        assert_eq!(dashboard.status(), StatusCode::OK);

        // An operator can turn it off for someone who lost their phone.
        let out = app.run_rounds(&["user", "disable-two-factor", "--username", "jane"], None);
        assert!(out.status.success());
        let fresh = app.new_client();
        let response = post_login(&app, &fresh, "jane", PASSWORD).await;
        assert_eq!(location(&response), "/dashboard/@ceo");
    }
}

e2e! {
    async fn changing_the_password_signs_out_other_sessions(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        app.sign_in("jane").await;
        let other = app.new_client();
        let response = post_login(&app, &other, "jane", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(other.get(app.url("/dashboard/@ceo")).send().await.expect("get").status(), StatusCode::OK);

        let (_, account) = app.page("/account").await;
        let token = account.csrf_token();
        let mismatch = app.client.post(app.url("/account/password"))
            .form(&[("csrf_token", token.as_str()), ("current_password", PASSWORD), ("new_password", "a brand new passphrase"), ("confirm_password", "something else entirely")])
            .send().await.expect("post");
        assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&mismatch.text().await.expect("body"));
        assert_eq!(page.errors(), ["The two new passwords are not the same"]);

        let changed = app.client.post(app.url("/account/password"))
            .form(&[("csrf_token", token.as_str()), ("current_password", PASSWORD), ("new_password", "a brand new passphrase"), ("confirm_password", "a brand new passphrase")])
            .send().await.expect("post");
        assert_eq!(changed.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.get("/dashboard/@ceo").await.status(), StatusCode::OK, "this browser stays signed in");
        assert_eq!(other.get(app.url("/dashboard/@ceo")).send().await.expect("get").status(), StatusCode::SEE_OTHER, "the other is signed out");
        let old = post_login(&app, &app.new_client(), "jane", PASSWORD).await;
        assert_eq!(old.status(), StatusCode::BAD_REQUEST);
        let new = post_login(&app, &app.new_client(), "jane", "a brand new passphrase").await;
        assert_eq!(new.status(), StatusCode::SEE_OTHER);
    }
}
