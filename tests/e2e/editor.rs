//! Writing on the web: drafts, publishing, editing, unpublishing, deleting, images, the
//! profile, and who may do each.

use std::io::Cursor;

use reqwest::StatusCode;
use reqwest::header;
use reqwest::multipart::{Form, Part};

use crate::e2e;
use crate::helpers::{Page, TestApp};

/// The editor's fields, as a browser would send them.
pub fn editor_form(token: &str, action: &str, fields: &[(&'static str, &str)]) -> Form {
    let mut form = Form::new()
        .text("csrf_token", token.to_owned())
        .text("action", action.to_owned());
    for (name, value) in fields {
        form = form.text(*name, (*value).to_owned());
    }
    // Browsers send an empty file part when no file was chosen.
    form.part(
        "image",
        Part::bytes(Vec::new())
            .file_name("")
            .mime_str("application/octet-stream")
            .expect("mime"),
    )
}

pub async fn token(app: &TestApp, path: &str) -> String {
    let (status, page) = app.page(path).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    page.csrf_token()
}

pub async fn submit(app: &TestApp, path: &str, form: Form) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .multipart(form)
        .send()
        .await
        .expect("post")
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .expect("location")
        .to_owned()
}

/// The editor's address after a save (`/dashboard/posts/ID?done=...`) and the post id.
pub fn saved_post(response: &reqwest::Response) -> (String, i64) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to = location(response);
    let id = to
        .trim_start_matches("/dashboard/posts/")
        .split('?')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an editor address: {to}"));
    (to, id)
}

fn media_count(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    let mut conn = app.conn();
    rounds::db::schema::media::table
        .count()
        .get_result(&mut conn)
        .expect("count")
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::DynamicImage::new_rgb8(width, height);
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// A JPEG carrying an EXIF block with a location, as phones write them.
fn jpeg_with_exif() -> Vec<u8> {
    let image = image::DynamicImage::new_rgb8(40, 30);
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    let jpeg = out.into_inner();
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(b"MM\0*\0\0\0\x08GPS 53.8008N 1.5491W SECRET-LOCATION");
    let length = u16::try_from(payload.len() + 2).expect("small");
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(&[0xFF, 0xE1]);
    with_exif.extend_from_slice(&length.to_be_bytes());
    with_exif.extend_from_slice(&payload);
    with_exif.extend_from_slice(&jpeg[2..]);
    with_exif
}

e2e! {
    async fn draft_publish_edit_unpublish_and_delete(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        app.sign_in("jane").await;

        // A draft is saved and shown again, but nobody outside the team sees it.
        let t = token(&app, "/dashboard/@ceo/new").await;
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "save", &[
            ("title", "Our winter plan"), ("summary", "What changes"), ("body", "We will open **ward 7**."),
            ("tags", "Winter, StaffWellbeing"), ("slug", ""),
        ])).await;
        let (to, id) = saved_post(&response);
        let (status, page) = app.page(&to).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.source.contains("Draft saved"));
        assert_eq!(page.attrs("input[name=title]", "value"), ["Our winter plan"]);
        assert_eq!(page.text("textarea[name=body]"), "We will open **ward 7**.");
        assert_eq!(page.attrs("input[name=tags]", "value"), ["Winter, StaffWellbeing"]);
        let (_, list) = app.page("/dashboard/@ceo").await;
        assert!(list.text("table").contains("Our winter plan"));
        assert!(list.text("table").contains("Draft"));
        assert!(app.page("/@ceo").await.1.texts(".rounds-entry").is_empty());

        // Publishing gives it an address made from the title.
        let path = format!("/dashboard/posts/{id}");
        let t = token(&app, &path).await;
        let response = submit(&app, &path, editor_form(&t, "publish", &[
            ("title", "Our winter plan"), ("summary", "What changes"), ("body", "We will open **ward 7**."),
            ("tags", "Winter, StaffWellbeing"), ("slug", ""),
        ])).await;
        let (to, _) = saved_post(&response);
        assert!(to.ends_with("done=published"));
        let (status, public) = app.page("/@ceo/our-winter-plan").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(public.h1(), "Our winter plan");
        assert_eq!(public.text(".rounds-post__body strong"), "ward 7");
        assert_eq!(public.texts(".rounds-tags a"), ["#Winter", "#StaffWellbeing"]);

        // Editing the published post changes it in place and says when.
        let t = token(&app, &path).await;
        let (_, editor) = app.page(&path).await;
        assert!(!editor.has("input[name=slug]"), "the address is fixed once published");
        let response = submit(&app, &path, editor_form(&t, "save", &[
            ("title", "Our winter plan"), ("summary", "What changes"), ("body", "We will open **wards 7 and 8**."),
            ("tags", "Winter"),
        ])).await;
        assert!(saved_post(&response).0.ends_with("done=updated"));
        let (_, public) = app.page("/@ceo/our-winter-plan").await;
        assert_eq!(public.text(".rounds-post__body strong"), "wards 7 and 8");
        assert!(public.text(".rounds-post__meta").contains("Updated"));
        assert_eq!(public.texts(".rounds-tags a"), ["#Winter"]);

        // Unpublishing: the address says the post was removed; publishing again restores it.
        let t = token(&app, &path).await;
        let response = app.client.post(app.url(&format!("{path}/unpublish"))).form(&[("csrf_token", t.as_str())]).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.get("/@ceo/our-winter-plan").await.status(), StatusCode::GONE);
        let t = token(&app, &path).await;
        let response = submit(&app, &path, editor_form(&t, "publish", &[
            ("title", "Our winter plan"), ("body", "Back again."), ("tags", ""),
        ])).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.get("/@ceo/our-winter-plan").await.status(), StatusCode::OK);

        // Deleting a published post leaves a tombstone: 410 Gone, and the address stays taken.
        let (status, confirm) = app.page(&format!("{path}/delete")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(confirm.h1().contains("Our winter plan"));
        let response = app.client.post(app.url(&format!("{path}/delete"))).form(&[("csrf_token", confirm.csrf_token().as_str())]).send().await.expect("post");
        assert_eq!(location(&response), "/dashboard/@ceo?done=deleted");
        assert_eq!(app.get("/@ceo/our-winter-plan").await.status(), StatusCode::GONE);
        assert_eq!(app.get(&path).await.status(), StatusCode::GONE);
        let (_, list) = app.page("/dashboard/@ceo").await;
        assert!(!list.has("table"), "deleted posts leave the team's list");

        // A deleted draft is simply gone.
        let t = token(&app, "/dashboard/@ceo/new").await;
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "save", &[("body", "Just a thought.")])).await;
        let (_, draft) = saved_post(&response);
        let t = token(&app, &format!("/dashboard/posts/{draft}/delete")).await;
        app.client.post(app.url(&format!("/dashboard/posts/{draft}/delete"))).form(&[("csrf_token", t.as_str())]).send().await.expect("post");
        assert_eq!(app.get(&format!("/dashboard/posts/{draft}")).await.status(), StatusCode::NOT_FOUND);
    }
}

e2e! {
    async fn bad_input_comes_back_with_every_value_and_nothing_saved(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        app.publish(&blog, "Taken", "Text.", "");
        app.sign_in("jane").await;
        let t = token(&app, "/dashboard/@ceo/new").await;
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "save", &[
            ("title", ""), ("summary", "A summary without a title"), ("body", "   "),
            ("tags", "good, not-ok"), ("slug", "Not A Slug"),
        ])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&response.text().await.expect("body"));
        assert_eq!(page.errors().len(), 4, "{:?}", page.errors());
        assert!(page.errors().iter().any(|e| e.contains("Only articles have a summary")));
        assert!(page.errors().iter().any(|e| e.contains("Enter the text of the post")));
        assert_eq!(page.attrs(".nhsuk-error-summary__list a", "href"), ["#summary", "#body", "#tags", "#slug"]);
        assert_eq!(page.text("textarea[name=summary]"), "A summary without a title");
        assert_eq!(page.attrs("input[name=tags]", "value"), ["good, not-ok"]);
        assert_eq!(page.attrs("input[name=slug]", "value"), ["Not A Slug"]);

        // A chosen address already in use is refused, and so is publishing an image without alt text.
        let t = page.csrf_token();
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "save", &[("title", "Mine"), ("body", "Text"), ("slug", "taken")])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&response.text().await.expect("body"));
        assert!(page.errors()[0].contains("already uses the web address"), "{:?}", page.errors());
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "publish", &[("body", "See ![](/media/x.png)")])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&response.text().await.expect("body"));
        assert!(page.errors()[0].contains("has no alt text"), "{:?}", page.errors());

        let mut conn = app.conn();
        assert_eq!(rounds::domain::posts::for_team(&mut conn, blog.id).expect("posts").len(), 1, "only the seeded post");
    }
}

e2e! {
    async fn preview_shows_sanitised_html_with_and_without_javascript(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        app.sign_in("jane").await;
        let body = "## Hello\n\n<script>alert(1)</script><a href=\"javascript:alert(1)\">x</a>\n\nThe **bold** plan.";
        let t = token(&app, "/dashboard/@ceo/new").await;
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "preview", &[("title", "T"), ("body", body)])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = Page::parse(&response.text().await.expect("body"));
        assert_eq!(page.text("#preview h3"), "Hello");
        assert_eq!(page.text("#preview strong"), "bold");
        assert!(!page.has("#preview script"));
        assert_eq!(page.raw_text("textarea[name=body]"), body, "the text is kept as typed");

        let live = app.client.post(app.url("/dashboard/preview")).form(&[("csrf_token", t.as_str()), ("body", body)]).send().await.expect("post");
        assert_eq!(live.status(), StatusCode::OK);
        let html = live.text().await.expect("html");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(!html.contains("script") && !html.contains("javascript"), "{html}");
        let forged = app.client.post(app.url("/dashboard/preview")).form(&[("csrf_token", "x"), ("body", body)]).send().await.expect("post");
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    }
}

e2e! {
    with |s| s.upload_max_bytes = 64 * 1024;
    async fn images_need_alt_text_are_checked_by_content_and_lose_their_metadata(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        app.sign_in("jane").await;
        let t = token(&app, "/dashboard/@ceo/new").await;
        let upload = |file: Vec<u8>, name: &'static str, mime: &'static str, alt: &'static str| {
            Form::new()
                .text("csrf_token", t.clone())
                .text("action", "upload")
                .text("title", "Awards")
                .text("body", "Our team won.")
                .text("image_alt", alt)
                .part("image", Part::bytes(file).file_name(name).mime_str(mime).expect("mime"))
        };

        // No alt text: refused, nothing stored, the text kept.
        let response = submit(&app, "/dashboard/@ceo/new", upload(png(4, 4), "a.png", "image/png", "  ")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&response.text().await.expect("body"));
        assert!(page.errors()[0].contains("alt text"), "{:?}", page.errors());
        assert_eq!(page.text("textarea[name=body]"), "Our team won.");

        // Not an image, whatever its name says.
        let response = submit(&app, "/dashboard/@ceo/new", upload(b"%PDF-1.7 fake".to_vec(), "photo.png", "image/png", "A photo")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&response.text().await.expect("body"));
        assert!(page.errors()[0].contains("must be a JPEG, PNG, GIF or WebP"), "{:?}", page.errors());

        // Larger than the limit: refused with the limit named, the text kept.
        let big = vec![0u8; 200 * 1024];
        let response = submit(&app, "/dashboard/@ceo/new", upload(big, "big.png", "image/png", "Big")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&response.text().await.expect("body"));
        assert_eq!(page.errors(), ["The image must be 64 KB or smaller"]);
        assert_eq!(page.text("textarea[name=body]"), "Our team won.");
        // A body far past any limit is cut off with 413.
        let huge = vec![0u8; 2 * 1024 * 1024];
        let response = submit(&app, "/dashboard/@ceo/new", upload(huge, "huge.png", "image/png", "Huge")).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let page = Page::parse(&response.text().await.expect("body"));
        assert_eq!(page.h1(), "The file or form is too large");

        assert_eq!(media_count(&app), 0, "nothing stored");
        assert_eq!(std::fs::read_dir(app.data_dir.join("media")).map(|d| d.count()).unwrap_or(0), 0);

        // A photo with EXIF: stored without it, added to the text with its alt text.
        let response = submit(&app, "/dashboard/@ceo/new", upload(jpeg_with_exif(), "IMG_0001.JPG", "image/jpeg", "Ward 7 nurses with their award")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = Page::parse(&response.text().await.expect("body"));
        let body = page.text("textarea[name=body]");
        assert!(body.starts_with("Our team won. ![Ward 7 nurses with their award](/media/"), "{body}");
        assert!(body.ends_with(".jpg)"), "{body}");
        assert_eq!(page.attrs("textarea[name=image_alt]", "value").len(), 0);
        let media_path = body.split("](").nth(1).expect("path").trim_end_matches(')').to_owned();
        let served = app.get(&media_path).await;
        assert_eq!(served.status(), StatusCode::OK);
        assert_eq!(served.headers()[header::CONTENT_TYPE], "image/jpeg");
        assert!(served.headers()[header::CACHE_CONTROL].to_str().expect("cc").contains("immutable"));
        let bytes = served.bytes().await.expect("bytes");
        assert!(image::load_from_memory(&bytes).is_ok());
        assert!(!bytes.windows(4).any(|w| w == b"Exif"), "EXIF removed");
        assert!(!bytes.windows(15).any(|w| w == b"SECRET-LOCATION"), "location removed");

        // The script's upload answers with the Markdown to insert.
        let form = Form::new()
            .text("csrf_token", t.clone())
            .text("image_alt", "A chart of waiting times")
            .part("image", Part::bytes(png(20, 10)).file_name("chart.png").mime_str("image/png").expect("mime"));
        let response = app.client.post(app.url("/dashboard/@ceo/media")).multipart(form).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::CREATED);
        let answer: serde_json::Value = response.json().await.expect("json");
        let markdown = answer["markdown"].as_str().expect("markdown");
        assert!(markdown.starts_with("![A chart of waiting times](/media/") && markdown.ends_with(".png)"), "{markdown}");
        let form = Form::new().text("csrf_token", t.clone()).text("image_alt", "")
            .part("image", Part::bytes(png(2, 2)).file_name("x.png").mime_str("image/png").expect("mime"));
        let response = app.client.post(app.url("/dashboard/@ceo/media")).multipart(form).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let answer: serde_json::Value = response.json().await.expect("json");
        assert_eq!(answer["errors"][0]["field"], "image_alt");

        // Publishing with the image: readers see it with its alt text.
        let form = editor_form(&t, "publish", &[("title", "Awards"), ("body", &body)]);
        let response = submit(&app, "/dashboard/@ceo/new", form).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (_, public) = app.page("/@ceo/awards").await;
        assert_eq!(public.attrs(".rounds-post__body img", "alt"), ["Ward 7 nurses with their award"]);
        assert_eq!(public.attrs(".rounds-post__body img", "src"), [media_path]);
    }
}

e2e! {
    async fn contributors_write_drafts_but_cannot_publish(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let published = app.publish(&blog, "Live", "Text.", "");
        let sam = app.user("sam", false);
        {
            use diesel::prelude::*;
            use rounds::db::schema::blog_members;
            let mut conn = app.conn();
            diesel::insert_into(blog_members::table)
                .values((
                    blog_members::blog_id.eq(blog.id),
                    blog_members::user_id.eq(sam.id),
                    blog_members::role.eq("contributor"),
                    blog_members::created_at.eq(rounds::domain::now()),
                ))
                .execute(&mut conn)
                .expect("member");
        }
        app.sign_in("sam").await;
        let (_, editor) = app.page("/dashboard/@ceo/new").await;
        assert!(!editor.source.contains("value=\"publish\""), "no Publish button for contributors");
        let t = editor.csrf_token();
        let response = submit(&app, "/dashboard/@ceo/new", editor_form(&t, "save", &[("body", "My draft.")])).await;
        let (_, id) = saved_post(&response);
        let response = submit(&app, &format!("/dashboard/posts/{id}"), editor_form(&t, "publish", &[("body", "My draft.")])).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.get(&format!("/dashboard/posts/{}", published.id)).await.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.get("/dashboard/@ceo/settings").await.status(), StatusCode::FORBIDDEN);
        assert!(app.page("/@ceo").await.1.texts(".rounds-entry").len() == 1, "only the owner's post is public");
    }
}

e2e! {
    async fn the_profile_feeds_the_about_page(app: TestApp) {
        let jane = app.user("jane", false);
        app.blog("ceo", "Jane Smith", &jane);
        app.sign_in("jane").await;
        let t = token(&app, "/dashboard/@ceo/settings").await;
        let base = |link_url: &'static str| {
            Form::new()
                .text("csrf_token", t.clone())
                .text("display_name", "Dr Jane Smith")
                .text("role_title", "Chief Executive")
                .text("organisation", "Example Teaching Hospitals NHS Trust")
                .text("bio", "I joined the NHS as a *nurse* in 1995.")
                .text("link_label_0", "Board page")
                .text("link_url_0", link_url)
                .text("photo_alt", "Jane Smith in the atrium")
                .part("photo", Part::bytes(png(64, 64)).file_name("me.png").mime_str("image/png").expect("mime"))
        };
        let response = app.client.post(app.url("/dashboard/@ceo/settings")).multipart(base("javascript:alert(1)")).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&response.text().await.expect("body"));
        assert_eq!(page.errors(), ["Enter link 1's address in full, starting https://"]);
        assert_eq!(page.attrs("input[name=display_name]", "value"), ["Dr Jane Smith"]);
        assert_eq!(app.page("/@ceo/about").await.1.h1(), "Jane Smith", "nothing saved");

        let response = app.client.post(app.url("/dashboard/@ceo/settings")).multipart(base("https://trust.example/board")).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (status, about) = app.page("/@ceo/about").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(about.h1(), "Dr Jane Smith");
        assert!(about.source.contains("Example Teaching Hospitals NHS Trust"));
        assert_eq!(about.text(".rounds-post__body em"), "nurse");
        // The leader's own links, and the link back to the account that lets Mastodon show
        // the profile's website field as verified.
        let account = app.url("/@ceo");
        assert_eq!(about.attrs("a[rel~=me]", "href"), ["https://trust.example/board", account.as_str()]);
        let mut head_links = about.attrs("link[rel=me]", "href");
        head_links.sort();
        assert_eq!(head_links, [account.as_str(), "https://trust.example/board"]);
        let photo = about.attrs("img.rounds-about__photo", "src");
        assert_eq!(about.attrs("img.rounds-about__photo", "alt"), ["Jane Smith in the atrium"]);
        assert_eq!(app.get(&photo[0]).await.status(), StatusCode::OK);
        let (_, home) = app.page("/@ceo").await;
        assert_eq!(home.attrs(".rounds-masthead__photo", "src"), photo);
    }
}
