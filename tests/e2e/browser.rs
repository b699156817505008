//! The editor and every page type in a real browser: Debian's chromium driven by
//! Playwright, with axe-core checking WCAG 2.2 AA. The scenario itself is in
//! tests/browser/editor.mjs; this seeds the server and runs it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rounds::domain::posts;

use crate::e2e;
use crate::helpers::{self, PASSWORD, TestApp};

/// One browser at a time: two chromiums on a two-core machine only slow each other down.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Far more than a run takes (about half a minute), so a hang fails instead of blocking.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

/// A small PNG to upload: a checked pattern, so a bad scale or crop shows in screenshots.
fn write_photo(path: &Path) {
    let image = image::RgbImage::from_fn(120, 80, |x, y| {
        let band = u8::try_from((x / 10 + y / 10) % 2).expect("0 or 1");
        image::Rgb([0, 94 + band * 40, 184 - band * 40])
    });
    image.save(path).expect("write test image");
}

/// Runs a script from tests/browser against the app; fails with its output unless it
/// exits 0.
pub async fn run_browser_script(app: &TestApp, script: &str, args: &[(&str, String)]) {
    // Debian's chromium, not a browser Playwright downloads (there is no network for it).
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let backend = if app.db.url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    let mut command = tokio::process::Command::new("node");
    command
        .arg(root.join("tests/browser").join(script))
        .arg("--base-url")
        .arg(&app.address);
    for (name, value) in args {
        command.arg(format!("--{name}")).arg(value);
    }
    if let Ok(dir) = std::env::var("ROUNDS_BROWSER_SCREENSHOTS") {
        command
            .arg("--screenshots")
            .arg(Path::new(&dir).join(backend));
    }
    command
        .env("NODE_PATH", helpers::node_modules())
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);

    let _turn = ONE_BROWSER.lock().await;
    let started = Instant::now();
    let mut child = command.spawn().expect("run node (is Node.js installed?)");
    // Read the output as it comes, so a run that hangs still shows how far it got.
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let status = match tokio::time::timeout(BROWSER_TIMEOUT, child.wait()).await {
        Ok(status) => Some(status.expect("wait for node")),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("{script} did not finish in {BROWSER_TIMEOUT:?}:\n{stdout}\n{stderr}")
    });
    assert!(
        status.success(),
        "{script} failed ({status}) after {:.1?}:\n{stdout}\n{stderr}",
        started.elapsed()
    );
    // Shown with --nocapture: the steps, their timings and, with AXE_REVIEW=1, what axe
    // left for a person to judge.
    eprintln!(
        "{stdout}{script} passed in {:.1?} on {backend}",
        started.elapsed()
    );
}

/// Everything a child process writes to one of its pipes, as text.
fn collect(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut bytes).await;
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

e2e! {
    async fn browser_editor_publishes_an_image_post_and_every_page_passes_axe(app: TestApp) {
        let owner = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &owner);
        // A second blog, so the dashboard lists blogs instead of going straight to one.
        app.blog("comms", "Communications team", &owner);
        // Enough posts that the blog home has a second page.
        for n in 1..=10 {
            app.publish(&blog, &format!("Article {n}"), &format!("Text of article {n}.\n\n> A quote."), "Winter");
        }
        let update = app.publish(&blog, "", "Proud of the team on ward 7 today. #thanks", "Winter, StaffWellbeing");
        let withdrawn = app.publish(&blog, "Old plan", "This plan changed.", "");
        let gone_path = withdrawn.path("ceo").expect("published posts have a path");
        posts::unpublish(&mut app.conn(), &withdrawn).expect("unpublish");
        let photo = app.data_dir.join("ward-7.png");
        write_photo(&photo);

        run_browser_script(&app, "editor.mjs", &[
            ("username", "jane".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("image", photo.display().to_string()),
            ("update-path", update.path("ceo").expect("published posts have a path")),
            ("gone-path", gone_path),
        ]).await;
    }
}

e2e! {
    with |s| { s.autosave_seconds = 1; s.presence_seconds = 1; };
    async fn browser_two_people_edit_one_draft_settle_a_conflict_and_the_owner_approves(app: TestApp) {
        use rounds::domain::blogs::Role;
        use rounds::domain::posts::{PostFields, PostInput};
        use rounds::editorial::{Actor, revisions::Kind, roles};
        use rounds::publishing::{self, SaveRequest, Saved};

        let jane = app.user("jane", false);
        let ed = app.user("ed", false);
        app.user("root", true);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let mut conn = app.conn();
        roles::set_member(&mut conn, blog.id, ed.id, Role::Editor).expect("editor");
        let input = PostInput::parse(&PostFields { title: "Winter plan", summary: "What changes this winter", body: "Our winter plan has three parts.\n\nFirst, we open ward 7 in December.\n\nThird, we thank every volunteer.", tags: "Winter", ..PostFields::default() })
        .expect("valid");
        let saved = publishing::save(&mut conn, &SaveRequest {
            blog: &blog,
            post: None,
            actor: &Actor::web(&ed),
            input: &input,
            base_revision: None,
            kind: Kind::Save,
            publish: false,
            mentions: &rounds::federation::mentions::Mentions::none(),
        })
        .expect("draft");
        let Saved::Saved { post, .. } = saved else { panic!("not saved") };
        run_browser_script(&app, "editorial.mjs", &[
            ("password", PASSWORD.to_owned()),
            ("post-id", post.id.to_string()),
        ]).await;
    }
}

e2e! {
    async fn browser_newsletter_pages_pass_axe(app: TestApp) {
        use rounds::newsletter::Cadence;
        use rounds::newsletter::subscribers::{self, Requested};
        use rounds::newsletter::tokens::{Purpose, Signer};

        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        app.publish(&blog, "Winter plan", "Our winter plan.", "");
        let mut conn = app.conn();
        let mut request = |email: &str, basis: Option<&str>| {
            rounds::db::write_tx(&mut conn, |conn| {
                subscribers::request(conn, email, &[(blog.id, Cadence::EachPost)], chrono::Duration::hours(1), basis)
            })
            .expect("request")
        };
        let Requested::Confirm(_, confirm) = request("pending@nhs.net", None) else { panic!("no confirmation token") };
        let Requested::Subscribed(reader) = request("reader@nhs.net", Some("test")) else { panic!("not subscribed") };
        request("bounced@nhs.net", Some("test"));
        let mut conn = app.conn();
        rounds::mail::suppress(&mut conn, "bounced@nhs.net", rounds::mail::suppressions::Reason::Hard, "550").expect("suppress");
        let signer = Signer::load(&mut conn).expect("signer");
        run_browser_script(&app, "newsletter.mjs", &[
            ("username", "jane".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("confirm-path", format!("/subscribe/confirm/{confirm}")),
            ("preferences-path", format!("/newsletter/preferences/{}", signer.token(Purpose::Preferences, reader.id, 0))),
            ("unsubscribe-path", format!("/newsletter/unsubscribe/{}", signer.token(Purpose::Unsubscribe, reader.id, blog.id))),
        ]).await;
    }
}
