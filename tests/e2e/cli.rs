//! The `rounds` command line: the contract scripts rely on.

use reqwest::StatusCode;

use crate::e2e;
use crate::helpers::PASSWORD;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

e2e! {
    async fn accounts_blogs_and_posts_from_the_command_line(app: TestApp) {
        let out = app.run_rounds(
            &["user", "add", "--username", "Jane", "--email", "jane@NHS.net", "--admin", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("jane"));

        let out = app.run_rounds(
            &["blog", "add", "--handle", "ceo", "--name", "Jane Smith", "--owner", "jane",
              "--title", "Chief Executive, Example NHS Foundation Trust"],
            None,
        );
        assert!(out.status.success(), "{}", stderr(&out));

        let file = app.data_dir.join("plan.md");
        std::fs::write(&file, "We will *open* ward 7.\n").expect("write");
        let out = app.run_rounds(
            &["post", "publish", "--blog", "ceo", "--title", "Our plan", "--summary", "Why",
              "--tag", "Winter", "--tag", "NHS", file.to_str().expect("path")],
            None,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), app.url("/@ceo/our-plan"));

        let out = app.run_rounds(&["post", "publish", "--blog", "ceo", "--content-warning", "Distressing news", "-"], Some("A short update."));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), app.url("/@ceo/a-short-update"));
        let (_, update) = app.page("/@ceo/a-short-update").await;
        assert!(update.text(".nhsuk-warning-callout").contains("Distressing news"));

        // The running server shows what the command wrote.
        let (status, page) = app.page("/@ceo/our-plan").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page.h1(), "Our plan");
        assert_eq!(page.texts(".rounds-tags a"), ["#Winter", "#NHS"]);

        // The account can sign in with the password given on standard input.
        app.sign_in("jane").await;
    }
}

e2e! {
    async fn bad_input_is_refused_with_a_reason_and_changes_nothing(app: TestApp) {
        let cases: &[(&[&str], Option<&str>, &str)] = &[
            (&["user", "add", "--username", "x y", "--email", "a@nhs.net", "--password-stdin"], Some(PASSWORD), "username"),
            (&["user", "add", "--username", "bob", "--email", "not-an-email", "--password-stdin"], Some(PASSWORD), "email"),
            (&["user", "add", "--username", "bob", "--email", "bob@nhs.net", "--password-stdin"], Some("short"), "at least 10"),
            (&["user", "add", "--username", "bob", "--email", "bob@nhs.net"], None, "--password-stdin"),
            (&["blog", "add", "--handle", "ceo", "--name", "Jane", "--owner", "nobody"], None, "no account named nobody"),
            (&["blog", "add", "--handle", "no way", "--name", "Jane", "--owner", "nobody"], None, "handle"),
            (&["post", "publish", "--blog", "ghost", "-"], Some("text"), "no blog @ghost"),
        ];
        for (args, stdin, expected) in cases {
            let out = app.run_rounds(args, *stdin);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
        }
        let mut conn = app.conn();
        assert_eq!(rounds::domain::users::count(&mut conn).expect("count"), 0);

        app.user("jane", false);
        let ok = app.run_rounds(&["blog", "add", "--handle", "ceo", "--name", "Jane", "--owner", "jane"], None);
        assert!(ok.status.success(), "{}", stderr(&ok));
        let again = app.run_rounds(&["blog", "add", "--handle", "CEO", "--name", "Jane", "--owner", "jane"], None);
        assert_eq!(again.status.code(), Some(2));
        assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));

        let no_alt = app.run_rounds(&["post", "publish", "--blog", "ceo", "-"], Some("Look: ![](/media/x.png)"));
        assert_eq!(no_alt.status.code(), Some(2));
        assert!(stderr(&no_alt).contains("no alt text"), "{}", stderr(&no_alt));
        let summary_only = app.run_rounds(&["post", "publish", "--blog", "ceo", "--summary", "s", "-"], Some("text"));
        assert_eq!(summary_only.status.code(), Some(2));
        assert!(stderr(&summary_only).contains("Only articles have a summary"));
        let (_, page) = app.page("/@ceo").await;
        assert!(page.texts(".rounds-entry").is_empty(), "nothing was published");
    }
}

e2e! {
    async fn configuration_errors_name_the_key(app: TestApp) {
        let out = app.rounds().arg("migrate").env("ROUNDS_BIND", "not an address").output().expect("run");
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("bind"), "{}", stderr(&out));
        let out = app.rounds().arg("migrate").env("ROUNDS_COLOUR", "blue").output().expect("run");
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("unknown key `colour`"), "{}", stderr(&out));
        let config = app.data_dir.join("rounds.toml");
        std::fs::write(&config, "page_size = 500\n").expect("write");
        let out = app.rounds().args(["--config", config.to_str().expect("path"), "migrate"]).output().expect("run");
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("page_size"), "{}", stderr(&out));
        std::fs::write(&config, "instance_name = \"Leeds\"\nfavourite = 1\n").expect("write");
        let out = app.rounds().args(["--config", config.to_str().expect("path"), "migrate"]).output().expect("run");
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("unknown key `favourite`"), "{}", stderr(&out));
        let out = app.rounds().args(["--config", "/no/such/file.toml", "migrate"]).output().expect("run");
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("/no/such/file.toml"), "{}", stderr(&out));
        let out = app.rounds().arg("migrate").output().expect("run");
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("up to date"));
    }
}
