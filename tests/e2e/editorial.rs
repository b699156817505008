//! The editorial workflow end to end over HTTP: roles and invitations, revisions and
//! merges, sign-off, scheduling, the freeze, checks, previews, comments and the audit
//! log, each person in a browser session of their own.

use std::time::{Duration, Instant};

use chrono::TimeZone;
use diesel::prelude::*;
use reqwest::StatusCode;
use reqwest::header;
use reqwest::multipart::{Form, Part};
use rounds::domain::blogs::{Blog, Role};
use rounds::domain::posts;
use rounds::domain::users::User;
use rounds::editorial::{roles, workflow};

use crate::e2e;
use crate::helpers::{PASSWORD, Page, TestApp};

/// One person's browser: a client with its own cookies.
pub struct Person {
    pub client: reqwest::Client,
    pub name: String,
    address: String,
}

impl Person {
    pub async fn sign_in(app: &TestApp, username: &str) -> Self {
        let client = app.new_client();
        let person = Self {
            client,
            name: username.to_owned(),
            address: app.address.clone(),
        };
        let (_, page) = person.page("/login").await;
        let response = person
            .client
            .post(person.url("/login"))
            .form(&[
                ("csrf_token", page.csrf_token().as_str()),
                ("username", username),
                ("password", PASSWORD),
                ("next", "/dashboard"),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{username} signs in"
        );
        person
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn page(&self, path: &str) -> (StatusCode, Page) {
        let response = self.get(path).await;
        let status = response.status();
        (status, Page::parse(&response.text().await.expect("body")))
    }

    pub async fn token(&self, path: &str) -> String {
        let (status, page) = self.page(path).await;
        assert_eq!(status, StatusCode::OK, "{} opens {path}", self.name);
        page.csrf_token()
    }

    /// Posts a form (with the CSRF token of the page at `from`).
    pub async fn post(&self, from: &str, to: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.token(from).await;
        self.post_with(&token, to, fields).await
    }

    pub async fn post_with(
        &self,
        token: &str,
        to: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", token)];
        form.extend_from_slice(fields);
        self.client
            .post(self.url(to))
            .form(&form)
            .send()
            .await
            .expect("POST")
    }

    /// The editor form as a browser sends it.
    pub async fn save(
        &self,
        path: &str,
        token: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = Form::new()
            .text("csrf_token", token.to_owned())
            .text("action", action.to_owned());
        for (name, value) in fields {
            form = form.text((*name).to_owned(), (*value).to_owned());
        }
        let form = form.part(
            "image",
            Part::bytes(Vec::new())
                .file_name("")
                .mime_str("application/octet-stream")
                .expect("mime"),
        );
        self.client
            .post(self.url(path))
            .multipart(form)
            .send()
            .await
            .expect("POST")
    }

    /// Opens the editor: its token and the revision it shows.
    pub async fn open_editor(&self, post_id: i64) -> (String, String, Page) {
        let (status, page) = self.page(&format!("/dashboard/posts/{post_id}")).await;
        assert_eq!(status, StatusCode::OK, "{} opens the editor", self.name);
        let base = page
            .attrs("input[name=base_revision]", "value")
            .into_iter()
            .next()
            .expect("base revision");
        (page.csrf_token(), base, page)
    }
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// jane owns @ceo; ed is an editor; cara a contributor; root an instance admin.
pub struct Team {
    pub jane: User,
    pub ed: User,
    pub cara: User,
    pub blog: Blog,
}

pub fn team(app: &TestApp) -> Team {
    let jane = app.user("jane", false);
    let ed = app.user("ed", false);
    let cara = app.user("cara", false);
    let blog = app.blog("ceo", "Jane Smith", &jane);
    let mut conn = app.conn();
    roles::set_member(&mut conn, blog.id, ed.id, Role::Editor).expect("editor");
    roles::set_member(&mut conn, blog.id, cara.id, Role::Contributor).expect("contributor");
    Team {
        jane,
        ed,
        cara,
        blog,
    }
}

/// Writes a new draft as `person`; returns its id.
pub async fn new_draft(person: &Person, title: &str, body: &str) -> i64 {
    let token = person.token("/dashboard/@ceo/new").await;
    let response = person
        .save(
            "/dashboard/@ceo/new",
            &token,
            "save",
            &[("title", title), ("body", body)],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{} saves a draft",
        person.name
    );
    location(&response)
        .trim_start_matches("/dashboard/posts/")
        .split('?')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("post id")
}

fn stage(app: &TestApp, post_id: i64) -> workflow::Stage {
    let mut conn = app.conn();
    let post = posts::find(&mut conn, post_id)
        .expect("query")
        .expect("post");
    workflow::get(&mut conn, &post).expect("workflow").stage()
}

async fn review(person: &Person, post_id: i64) -> Page {
    let (status, page) = person
        .page(&format!("/dashboard/posts/{post_id}/review"))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{} opens the review page",
        person.name
    );
    page
}

/// Posts a review-page action with the revision the page showed.
async fn act(
    person: &Person,
    post_id: i64,
    action: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let page = review(person, post_id).await;
    let revision = page
        .attrs("input[name=revision]", "value")
        .into_iter()
        .next()
        .unwrap_or_default();
    let mut fields = vec![("revision", revision.as_str())];
    fields.extend_from_slice(extra);
    person
        .post_with(
            &page.csrf_token(),
            &format!("/dashboard/posts/{post_id}/{action}"),
            &fields,
        )
        .await
}

fn audit_actions(app: &TestApp) -> Vec<String> {
    use rounds::db::schema::audit_log;
    let mut conn = app.conn();
    audit_log::table
        .order(audit_log::id.asc())
        .select(audit_log::action)
        .load(&mut conn)
        .expect("audit")
}

e2e! {
    async fn sign_off_moves_through_its_states_and_only_the_owner_approves(app: TestApp) {
        let t = team(&app);
        let cara = Person::sign_in(&app, "cara").await;
        let ed = Person::sign_in(&app, "ed").await;
        let jane = Person::sign_in(&app, "jane").await;

        // A contributor writes and submits; she has no Publish button and cannot approve.
        let (_, editor) = cara.page("/dashboard/@ceo/new").await;
        assert!(!editor.source.contains("value=\"publish\""), "no Publish for contributors");
        let id = new_draft(&cara, "Winter plan", "We will open ward 7 in December.").await;
        assert_eq!(stage(&app, id), workflow::Stage::Draft);
        assert_eq!(act(&cara, id, "submit", &[]).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(stage(&app, id), workflow::Stage::InReview);
        let page = review(&cara, id).await;
        assert!(page.text("main").contains("Waiting for the owner's sign-off"));
        assert!(!page.has("form[action$='/approve']"), "no Approve button for a contributor");
        assert_eq!(act(&cara, id, "approve", &[]).await.status(), StatusCode::FORBIDDEN, "a contributor cannot approve");
        // The owner was emailed that it waits for her.
        let mail = wait_for_mail(&app, "For your sign-off: Winter plan").await;
        assert!(mail.contains("To: jane@nhs.net"), "{mail}");

        // An editor cannot approve, publish or schedule what the owner has not approved.
        assert_eq!(act(&ed, id, "approve", &[]).await.status(), StatusCode::FORBIDDEN, "an editor cannot approve under the rule");
        let refused = act(&ed, id, "publish", &[]).await;
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        let page = Page::parse(&refused.text().await.expect("body"));
        assert!(page.errors()[0].contains("has not been signed off"), "{:?}", page.errors());
        assert_eq!(app.get("/@ceo/winter-plan").await.status(), StatusCode::NOT_FOUND, "nothing published");

        // The owner approves the revision she saw.
        assert_eq!(act(&jane, id, "approve", &[]).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(stage(&app, id), workflow::Stage::Approved);
        let page = review(&jane, id).await;
        assert!(page.text("main").contains("Approved by jane"), "{}", page.text("main"));

        // Any edit after approval sends it back to review.
        let (token, base, _) = ed.open_editor(id).await;
        let response = ed.save(&format!("/dashboard/posts/{id}"), &token, "save", &[("base_revision", &base), ("title", "Winter plan"), ("body", "We will open ward 7 and ward 8 in December.")]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(stage(&app, id), workflow::Stage::InReview, "an edit after approval reopens review");
        let page = review(&ed, id).await;
        assert!(page.text("main").contains("approved an earlier version"), "{}", page.text("main"));
        assert_eq!(act(&ed, id, "publish", &[]).await.status(), StatusCode::CONFLICT, "the approval no longer matches");

        // Approved again, the editor publishes exactly that revision.
        assert_eq!(act(&jane, id, "approve", &[]).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(act(&ed, id, "publish", &[]).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(stage(&app, id), workflow::Stage::Published);
        let (status, public) = app.page("/@ceo/winter-plan").await;
        assert_eq!(status, StatusCode::OK);
        assert!(public.text(".rounds-post__body").contains("ward 7 and ward 8"));

        // An editor's change to a published post waits for sign-off; readers see the old text.
        let (token, base, editor) = ed.open_editor(id).await;
        assert!(editor.source.contains("Changes you save wait for sign-off"));
        let response = ed.save(&format!("/dashboard/posts/{id}"), &token, "save", &[("base_revision", &base), ("title", "Winter plan"), ("body", "We will open wards 7, 8 and 9 in December.")]).await;
        assert!(location(&response).ends_with("done=pending"), "{}", location(&response));
        assert!(app.page("/@ceo/winter-plan").await.1.text(".rounds-post__body").contains("ward 7 and ward 8"), "readers still see the approved text");
        // The owner publishes directly: her publishing is her sign-off.
        assert_eq!(act(&jane, id, "publish", &[]).await.status(), StatusCode::SEE_OTHER);
        assert!(app.page("/@ceo/winter-plan").await.1.text(".rounds-post__body").contains("wards 7, 8 and 9"));

        let actions = audit_actions(&app);
        for expected in ["post.submitted", "post.approved", "post.returned_to_review", "post.published", "post.updated"] {
            assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
        }
        let _ = t;
    }
}

e2e! {
    async fn the_owner_delegates_approval_and_can_turn_the_rule_off(app: TestApp) {
        let t = team(&app);
        let jane = Person::sign_in(&app, "jane").await;
        let ed = Person::sign_in(&app, "ed").await;
        let id = new_draft(&ed, "Staff awards", "Nominations are open.").await;
        assert_eq!(act(&ed, id, "approve", &[]).await.status(), StatusCode::FORBIDDEN);

        // Only an editor can be the delegate.
        let cara_id = t.cara.id.to_string();
        let response = jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/rules", &[("owner_sign_off", "on"), ("delegate", &cara_id)]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        // Editors cannot change the rules.
        let ed_id = t.ed.id.to_string();
        let response = ed.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/rules", &[("delegate", &ed_id)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/rules", &[("owner_sign_off", "on"), ("delegate", &ed_id)]).await;
        assert_eq!(location(&response), "/dashboard/@ceo/team?done=rules");
        let (_, team_page) = jane.page("/dashboard/@ceo/team").await;
        assert!(team_page.text("table").contains("Approves for the owner"));

        // The delegate approves, then publishes.
        assert_eq!(act(&ed, id, "approve", &[]).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(act(&ed, id, "publish", &[]).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.get("/@ceo/staff-awards").await.status(), StatusCode::OK);

        // Demoted to contributor, the delegate no longer approves.
        let response = jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/role", &[("user_id", &ed_id), ("role", "contributor")]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let mine = new_draft(&ed, "Another", "Text.").await;
        assert_eq!(act(&ed, mine, "approve", &[]).await.status(), StatusCode::FORBIDDEN);

        // With the rule off, editors publish without sign-off.
        jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/role", &[("user_id", &ed_id), ("role", "editor")]).await;
        let response = jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/rules", &[("delegate", "")]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (_, editor) = ed.page(&format!("/dashboard/posts/{mine}")).await;
        assert!(editor.source.contains("value=\"publish\""), "editors see Publish when the rule is off");
        assert_eq!(act(&ed, mine, "publish", &[]).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.get("/@ceo/another").await.status(), StatusCode::OK);
        assert!(audit_actions(&app).iter().filter(|a| *a == "blog.rules_changed").count() >= 2);
    }
}

e2e! {
    async fn removing_someone_takes_effect_in_their_open_session(app: TestApp) {
        let t = team(&app);
        let jane = Person::sign_in(&app, "jane").await;
        let ed = Person::sign_in(&app, "ed").await;
        let id = new_draft(&jane, "Board papers", "The board meets on Thursday.").await;
        let (token, base, _) = ed.open_editor(id).await;
        let ping = ed.post_with(&token, &format!("/dashboard/posts/{id}/presence"), &[("client_id", "ed-tab-1")]).await;
        assert_eq!(ping.status(), StatusCode::OK);

        // Demoted: the open editor can no longer save the owner's post.
        let ed_id = t.ed.id.to_string();
        jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/role", &[("user_id", &ed_id), ("role", "contributor")]).await;
        let autosave = ed.post_with(&token, &format!("/dashboard/posts/{id}/autosave"), &[("base_revision", &base), ("body", "Changed.")]).await;
        assert_eq!(autosave.status(), StatusCode::FORBIDDEN);
        assert_eq!(ed.get(&format!("/dashboard/posts/{id}")).await.status(), StatusCode::FORBIDDEN);

        // Removed: nothing on the blog is theirs to see, in the same session.
        let response = jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/remove", &[("user_id", &ed_id)]).await;
        assert_eq!(location(&response), "/dashboard/@ceo/team?done=removed");
        assert_eq!(ed.get("/dashboard/@ceo").await.status(), StatusCode::FORBIDDEN);
        let ping = ed.post_with(&token, &format!("/dashboard/posts/{id}/presence"), &[("client_id", "ed-tab-1")]).await;
        assert_eq!(ping.status(), StatusCode::FORBIDDEN, "the editor's script hears it at once");
        let response = jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/remove", &[("user_id", &t.jane.id.to_string())]).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "the owner cannot be removed");
        let actions = audit_actions(&app);
        assert!(actions.contains(&"team.role_changed".to_owned()) && actions.contains(&"team.member_removed".to_owned()), "{actions:?}");
    }
}

/// Waits for an email whose text contains `needle`; returns it.
pub async fn wait_for_mail(app: &TestApp, needle: &str) -> String {
    let folder = app.data_dir.join("mail");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for entry in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    let unfolded = text.replace("=\r\n", "").replace("\r\n ", " ");
                    if unfolded.contains(needle) {
                        return unfolded;
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no email containing {needle:?} in {}",
            folder.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

e2e! {
    async fn invitations_work_once_and_expire(app: TestApp) {
        let t = team(&app);
        let jane = Person::sign_in(&app, "jane").await;
        let ed = Person::sign_in(&app, "ed").await;
        assert_eq!(ed.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/invite", &[("email", "x@nhs.net"), ("role", "editor")]).await.status(), StatusCode::FORBIDDEN, "editors do not invite");
        let response = jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/invite", &[("email", "not an email"), ("role", "owner")]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&response.text().await.expect("body"));
        assert_eq!(page.errors().len(), 2, "{:?}", page.errors());
        assert_eq!(page.attrs("input[name=email]", "value"), ["not an email"]);

        let response = jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/invite", &[("email", "Sam.Jones@nhs.net"), ("role", "editor")]).await;
        assert_eq!(location(&response), "/dashboard/@ceo/team?done=invited");
        let mail = wait_for_mail(&app, "You are invited to the Jane Smith blog").await;
        assert!(mail.contains("To: sam.jones@nhs.net"), "{mail}");
        let link = mail.split_whitespace().find(|w| w.contains("/dashboard/invitations/")).expect("link in the email").to_owned();
        let path = link[link.find("/dashboard").expect("path")..].trim_end_matches('.').to_owned();

        // A newcomer makes an account from the link and is on the team, signed in.
        let sam = app.new_client();
        let page = Page::parse(&sam.get(app.url(&path)).send().await.expect("get").text().await.expect("body"));
        assert_eq!(page.h1(), "Join the Jane Smith blog");
        let token = page.csrf_token();
        let short = sam.post(app.url(&format!("{path}/account"))).form(&[("csrf_token", token.as_str()), ("username", "sam"), ("password", "short")]).send().await.expect("post");
        assert_eq!(short.status(), StatusCode::BAD_REQUEST);
        let made = sam.post(app.url(&format!("{path}/account"))).form(&[("csrf_token", token.as_str()), ("username", "sam"), ("password", PASSWORD)]).send().await.expect("post");
        assert_eq!(location(&made), "/dashboard/@ceo/team?done=joined");
        let team_page = Page::parse(&sam.get(app.url("/dashboard/@ceo/team")).send().await.expect("get").text().await.expect("body"));
        assert!(team_page.text("table").contains("sam.jones@nhs.net"));
        assert_eq!(roles::standing_of(&mut app.conn(), t.blog.id, users_id(&app, "sam"), false).expect("standing").membership, Some(Role::Editor));

        // The link works once.
        let again = app.new_client().get(app.url(&path)).send().await.expect("get");
        assert_eq!(again.status(), StatusCode::GONE);
        assert!(again.text().await.expect("body").contains("used already"));

        // An expired invitation and a withdrawn one do not work either.
        let (_, token) = rounds::editorial::invitations::create(&mut app.conn(), t.blog.id, "late@nhs.net", Role::Contributor, t.jane.id, chrono::Duration::seconds(-1)).expect("invite");
        let late = app.new_client().get(app.url(&format!("/dashboard/invitations/{token}"))).send().await.expect("get");
        assert_eq!(late.status(), StatusCode::GONE);
        assert!(late.text().await.expect("body").contains("expired"));
        jane.post("/dashboard/@ceo/team", "/dashboard/@ceo/team/invite", &[("email", "pat@nhs.net"), ("role", "contributor")]).await;
        let (_, team_page) = jane.page("/dashboard/@ceo/team").await;
        let revoke = team_page.attrs("form[action*='/invitations/']", "action").into_iter().next().expect("withdraw form");
        assert_eq!(jane.post("/dashboard/@ceo/team", &revoke, &[]).await.status(), StatusCode::SEE_OTHER);
        let mail = wait_for_mail(&app, "To: pat@nhs.net").await;
        let link = mail.split_whitespace().find(|w| w.contains("/dashboard/invitations/")).expect("link").to_owned();
        let path = link[link.find("/dashboard").expect("path")..].trim_end_matches('.').to_owned();
        assert_eq!(app.new_client().get(app.url(&path)).send().await.expect("get").status(), StatusCode::GONE);
        assert_eq!(app.new_client().get(app.url("/dashboard/invitations/0000")).send().await.expect("get").status(), StatusCode::NOT_FOUND);
        let actions = audit_actions(&app);
        for expected in ["team.invited", "team.invitation_accepted", "account.created", "team.invitation_revoked"] {
            assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
        }
    }
}

fn users_id(app: &TestApp, name: &str) -> i64 {
    rounds::domain::users::find_by_username(&mut app.conn(), name)
        .expect("query")
        .expect("user")
        .id
}

e2e! {
    async fn two_people_saving_at_once_merge_cleanly_or_see_both_versions(app: TestApp) {
        team(&app);
        let jane = Person::sign_in(&app, "jane").await;
        let ed = Person::sign_in(&app, "ed").await;
        let body = "Our winter plan has three parts.\n\nFirst, we open ward 7 in December.\n\nThird, we thank every volunteer.";
        let id = new_draft(&jane, "Winter plan", body).await;
        let path = format!("/dashboard/posts/{id}");

        // Both open the same revision; they change different paragraphs.
        let (jane_token, jane_base, _) = jane.open_editor(id).await;
        let (ed_token, ed_base, _) = ed.open_editor(id).await;
        assert_eq!(jane_base, ed_base);
        let jane_body = body.replace("ward 7 in December", "ward 7 on 1 December");
        let response = jane.save(&path, &jane_token, "save", &[("base_revision", &jane_base), ("title", "Winter plan"), ("body", &jane_body)]).await;
        assert!(location(&response).ends_with("done=saved"));
        let ed_body = body.replace("every volunteer", "every volunteer and carer");
        let response = ed.save(&path, &ed_token, "save", &[("base_revision", &ed_base), ("title", "Our winter plan"), ("body", &ed_body)]).await;
        let to = location(&response);
        assert!(to.contains("done=merged") && to.contains("with=jane"), "{to}");
        let (_, page) = ed.page(&to).await;
        assert!(page.text(".nhsuk-notification-banner").contains("jane saved changes while you were editing"));
        let merged = page.raw_text("textarea[name=body]");
        assert!(merged.contains("ward 7 on 1 December") && merged.contains("every volunteer and carer"), "{merged}");
        assert_eq!(page.attrs("input[name=title]", "value"), ["Our winter plan"]);

        // Now both change the same words differently: the second sees both versions.
        let (jane_token, jane_base, _) = jane.open_editor(id).await;
        let (ed_token, ed_base, _) = ed.open_editor(id).await;
        let jane_body = merged.replace("three parts", "four parts");
        jane.save(&path, &jane_token, "save", &[("base_revision", &jane_base), ("title", "Our winter plan"), ("body", &jane_body)]).await;
        let ed_body = merged.replace("three parts", "two parts").replace("First,", "To begin,");
        let response = ed.save(&path, &ed_token, "save", &[("base_revision", &ed_base), ("title", "Our winter plan"), ("body", &ed_body)]).await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let page = Page::parse(&response.text().await.expect("body"));
        assert!(page.text(".nhsuk-error-summary__heading").contains("jane changed the same words"));
        let clash = page.text(".nhsuk-error-summary__list");
        assert!(clash.contains("you wrote “two”") && clash.contains("jane wrote “four”"), "{clash}");
        assert!(page.text("#version-theirs").contains("four parts"), "their version is shown");
        assert!(page.text("#version-ours").contains("two parts"), "and mine");
        let proposal = page.raw_text("textarea[name=body]");
        assert!(proposal.contains("two parts") && proposal.contains("To begin,"), "my words are kept: {proposal}");
        assert_eq!(jane.open_editor(id).await.2.raw_text("textarea[name=body]"), jane_body, "nothing was saved over jane's text");
        // Settling it saves cleanly on top of jane's revision.
        let base = page.attrs("input[name=base_revision]", "value").into_iter().next().expect("base");
        let settled = proposal.replace("two parts", "four parts");
        let response = ed.save(&path, &page.csrf_token(), "save", &[("base_revision", &base), ("title", "Our winter plan"), ("body", &settled)]).await;
        assert!(location(&response).ends_with("done=saved"), "{}", location(&response));
        assert_eq!(jane.open_editor(id).await.2.raw_text("textarea[name=body]"), settled);

        // Saves landing at the same moment never fail or lose a revision.
        let (jane_token, base, _) = jane.open_editor(id).await;
        let (ed_token, _, _) = ed.open_editor(id).await;
        let a = settled.replace("four parts", "five parts");
        let b = settled.replace("every volunteer", "all our volunteers");
        let fields_a = [("base_revision", base.as_str()), ("title", "Our winter plan"), ("body", a.as_str())];
        let fields_b = [("base_revision", base.as_str()), ("title", "Our winter plan"), ("body", b.as_str())];
        let (ra, rb) = tokio::join!(
            jane.save(&path, &jane_token, "save", &fields_a),
            ed.save(&path, &ed_token, "save", &fields_b),
        );
        assert_eq!((ra.status(), rb.status()), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER));
        let final_body = jane.open_editor(id).await.2.raw_text("textarea[name=body]");
        assert!(final_body.contains("five parts") && final_body.contains("all our volunteers"), "{final_body}");
    }
}

e2e! {
    async fn autosaves_fold_into_one_history_entry_and_any_revision_can_be_compared_and_restored(app: TestApp) {
        team(&app);
        let jane = Person::sign_in(&app, "jane").await;
        let ed = Person::sign_in(&app, "ed").await;
        let id = new_draft(&jane, "Plan", "We will open ward 7.").await;
        let (token, mut base, _) = ed.open_editor(id).await;
        let autosave_path = format!("/dashboard/posts/{id}/autosave");
        for body in ["We will open ward 7 soon.", "We will open ward 7 very soon.", "We will open wards 7 and 8 very soon."] {
            let response = ed.post_with(&token, &autosave_path, &[("base_revision", &base), ("title", "Plan"), ("body", body)]).await;
            assert_eq!(response.status(), StatusCode::OK);
            let answer: serde_json::Value = response.json().await.expect("json");
            assert_eq!(answer["status"], "saved");
            base = answer["revision"].as_i64().expect("revision").to_string();
        }
        let unchanged: serde_json::Value = ed.post_with(&token, &autosave_path, &[("base_revision", &base), ("title", "Plan"), ("body", "We will open wards 7 and 8 very soon.")]).await.json().await.expect("json");
        assert_eq!(unchanged["status"], "unchanged");
        let empty = ed.post_with(&token, &autosave_path, &[("base_revision", &base), ("body", " ")]).await;
        assert_eq!(empty.status(), StatusCode::BAD_REQUEST, "an empty text is not autosaved");

        // jane's editor, opened before, is now behind: her autosave does not merge.
        let stale = jane.post_with(&token_of(&jane, id).await, &autosave_path, &[("base_revision", "1"), ("body", "Different.")]).await;
        assert_eq!(stale.status(), StatusCode::CONFLICT);
        let answer: serde_json::Value = stale.json().await.expect("json");
        assert_eq!((answer["status"].as_str(), answer["by"].as_str()), (Some("stale"), Some("ed")));

        let (_, history) = jane.page(&format!("/dashboard/posts/{id}/history")).await;
        let rows = history.texts(".rounds-history tbody tr");
        assert_eq!(rows.len(), 2, "the first version and one autosave entry: {rows:?}");
        assert!(rows[0].contains("Autosaved") && rows[0].contains("Includes 2 earlier autosaves"), "{}", rows[0]);
        let stored: i64 = rounds::db::schema::post_revisions::table.filter(rounds::db::schema::post_revisions::post_id.eq(id)).count().get_result(&mut app.conn()).expect("count");
        assert_eq!(stored, 4, "every autosave is kept, folded");

        // A word-level diff between any two revisions.
        let (status, diff) = jane.page(&format!("/dashboard/posts/{id}/diff?from=1&to=4")).await;
        assert_eq!(status, StatusCode::OK);
        let removed = diff.texts(".rounds-diff__text del").join(" | ");
        let added = diff.texts(".rounds-diff__text ins").join(" | ");
        assert!(removed.contains("[removed: ward"), "{removed}");
        assert!(added.contains("[added: wards 7 and 8") && added.contains("soon."), "{added}");
        assert!(diff.text(".rounds-diff__text").contains("wards"));
        assert!(diff.text(".rounds-diff-key").contains("added"));
        assert_eq!(jane.get(&format!("/dashboard/posts/{id}/diff?from=1&to=99")).await.status(), StatusCode::NOT_FOUND);

        // Restoring the first version makes a new revision with its words.
        let (_, revision) = jane.page(&format!("/dashboard/posts/{id}/revisions/1")).await;
        let head = revision.attrs("input[name=head]", "value").into_iter().next().expect("head");
        let response = jane.post_with(&revision.csrf_token(), &format!("/dashboard/posts/{id}/revisions/1/restore"), &[("head", &head)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(jane.open_editor(id).await.2.raw_text("textarea[name=body]"), "We will open ward 7.");
        let (_, history) = jane.page(&format!("/dashboard/posts/{id}/history")).await;
        assert!(history.texts(".rounds-history tbody tr")[0].contains("Restored"));
        assert!(audit_actions(&app).contains(&"post.revision_restored".to_owned()));
    }
}

async fn token_of(person: &Person, id: i64) -> String {
    person.token(&format!("/dashboard/posts/{id}")).await
}

/// The schedule form's fields for a UTC time, in London time.
pub fn london_fields(at: chrono::DateTime<chrono::Utc>) -> [(&'static str, String); 4] {
    let local = chrono_tz::Europe::London.from_utc_datetime(&at.naive_utc());
    [
        ("schedule_day", local.format("%-d").to_string()),
        ("schedule_month", local.format("%-m").to_string()),
        ("schedule_year", local.format("%Y").to_string()),
        ("schedule_time", local.format("%H:%M:%S").to_string()),
    ]
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

e2e! {
    async fn a_freeze_holds_publishing_and_scheduled_posts_until_it_is_lifted(app: TestApp) {
        team(&app);
        app.user("root", true);
        let root = Person::sign_in(&app, "root").await;
        let jane = Person::sign_in(&app, "jane").await;
        let ed = Person::sign_in(&app, "ed").await;
        let id = new_draft(&ed, "Election guidance", "What staff need to know.").await;
        assert_eq!(act(&jane, id, "approve", &[]).await.status(), StatusCode::SEE_OTHER);
        let live = new_draft(&jane, "Live one", "Before the freeze.").await;
        assert_eq!(act(&jane, live, "publish", &[]).await.status(), StatusCode::SEE_OTHER);
        // An editor cannot freeze; the admin can.
        assert_eq!(ed.get("/dashboard/admin/freeze").await.status(), StatusCode::FORBIDDEN);
        let response = root.post("/dashboard/admin/freeze", "/dashboard/admin/freeze", &[("action", "start"), ("message", "")]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "a freeze needs its message");
        let response = root.post("/dashboard/admin/freeze", "/dashboard/admin/freeze", &[("action", "start"), ("message", "Pre-election period until 8 May.")]).await;
        assert_eq!(location(&response), "/dashboard/admin/freeze?done=started");

        // Every team page says so; publishing is refused, with the message.
        let (_, list) = ed.page("/dashboard/@ceo").await;
        assert!(list.text(".rounds-freeze-banner").contains("Pre-election period until 8 May."));
        let refused = act(&jane, id, "publish", &[]).await;
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        assert!(Page::parse(&refused.text().await.expect("body")).errors()[0].contains("Pre-election period"));
        let file = app.data_dir.join("note.md");
        std::fs::write(&file, "A note.").expect("write");
        let out = app.run_rounds(&["post", "publish", "--blog", "ceo", file.to_str().expect("path")], None);
        assert_eq!(out.status.code(), Some(3), "the command exits 3 while frozen");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Pre-election period"));

        // The owner's edit to a live post is kept, but waits: nothing changes in public.
        let (token, base, _) = jane.open_editor(live).await;
        let response = jane.save(&format!("/dashboard/posts/{live}"), &token, "save", &[("base_revision", &base), ("title", "Live one"), ("body", "During the freeze.")]).await;
        assert!(location(&response).ends_with("done=pending"), "{}", location(&response));
        assert!(app.page("/@ceo/live-one").await.1.text(".rounds-post__body").contains("Before the freeze."));

        // Scheduling still works; when the time comes the post is held.
        let at = chrono::Utc::now() + chrono::Duration::seconds(2);
        let fields = london_fields(at);
        let extra: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = act(&ed, id, "schedule", &extra).await;
        assert_eq!(location(&response), format!("/dashboard/posts/{id}/review?done=scheduled"));
        assert_eq!(stage(&app, id), workflow::Stage::Scheduled);
        wait_until("the post is held", async || audit_actions(&app).contains(&"post.held_by_freeze".to_owned())).await;
        assert_eq!(app.get("/@ceo/election-guidance").await.status(), StatusCode::NOT_FOUND, "held, not published");
        assert!(review(&jane, id).await.text("main").contains("Held by the publishing freeze"));

        // Lifting the freeze sends it out at once.
        let response = root.post("/dashboard/admin/freeze", "/dashboard/admin/freeze", &[("action", "lift")]).await;
        assert_eq!(location(&response), "/dashboard/admin/freeze?done=lifted");
        wait_until("the held post goes out", async || app.get("/@ceo/election-guidance").await.status() == StatusCode::OK).await;
        assert_eq!(stage(&app, id), workflow::Stage::Published);
        let actions = audit_actions(&app);
        assert_eq!(actions.iter().filter(|a| *a == "post.published").count(), 2, "the live one, and the held one once: {actions:?}");
        for expected in ["instance.freeze_started", "instance.freeze_lifted", "post.scheduled"] {
            assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
        }
    }
}

e2e! {
    async fn rescheduling_and_cancelling_never_publish_twice(app: TestApp) {
        team(&app);
        let jane = Person::sign_in(&app, "jane").await;
        let id = new_draft(&jane, "Open day", "Come and see the new ward.").await;
        // The owner may schedule what she has not approved: scheduling is her sign-off.
        let soon = london_fields(chrono::Utc::now() + chrono::Duration::seconds(3));
        let extra: Vec<(&str, &str)> = soon.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(act(&jane, id, "schedule", &extra).await.status(), StatusCode::SEE_OTHER);
        // Cancelled, then scheduled again a moment later: the first job finds nothing to do.
        assert_eq!(act(&jane, id, "schedule/cancel", &[]).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(stage(&app, id), workflow::Stage::Approved);
        let later = london_fields(chrono::Utc::now() + chrono::Duration::seconds(5));
        let extra: Vec<(&str, &str)> = later.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(act(&jane, id, "schedule", &extra).await.status(), StatusCode::SEE_OTHER);
        let page = review(&jane, id).await;
        assert!(page.text("main").contains("Goes out"));
        wait_until("the post goes out", async || app.get("/@ceo/open-day").await.status() == StatusCode::OK).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let published = audit_actions(&app).iter().filter(|a| *a == "post.published").count();
        assert_eq!(published, 1, "published once");
        // A time in the past, or not a time, is refused with the values kept.
        let response = act(&jane, id, "schedule", &[("schedule_day", "31"), ("schedule_month", "2"), ("schedule_year", "2030"), ("schedule_time", "09:00")]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = Page::parse(&response.text().await.expect("body"));
        assert!(page.errors()[0].contains("real date"), "{:?}", page.errors());
    }
}

e2e! {
    async fn checks_warn_about_patient_details_and_previews_show_each_audience(app: TestApp) {
        team(&app);
        let jane = Person::sign_in(&app, "jane").await;
        let body = "## Our ward\n\nWe cared for Mrs Jane Brown, 12/03/1954, whose NHS number is 943 476 5919. See [the plan](www.example.nhs.uk/plan).\n\n![](/media/missing.png)\n\nThis extremely long sentence about the multidisciplinary organisational reconfiguration of integrated care systems keeps going and going well past any reasonable length for a reader or a listener.";
        let id = new_draft(&jane, "", body).await;
        let page = review(&jane, id).await;
        let checks = page.text("main");
        assert!(checks.contains("has no alt text"), "blocking: {checks}");
        assert!(checks.contains("943 476 5919") && checks.contains("passes the NHS number check"), "{checks}");
        assert!(checks.contains("Mrs Jane Brown, 12/03/1954"), "{checks}");
        assert!(checks.contains("the plan") && checks.contains("does not start with https://"), "{checks}");
        assert!(checks.contains("Reading ease") && checks.contains("Sentences over 25 words"), "{checks}");
        assert!(!page.has("form[action$='/approve']"), "nothing with a blocking problem can be approved");
        assert_eq!(act(&jane, id, "publish", &[]).await.status(), StatusCode::BAD_REQUEST);

        // A short update on Mastodon: headings bold, images as attachments with their alt text.
        let note = new_draft(&jane, "", "## Thank you\n\nWe **opened** ward 7. ![Nurses at the door](/media/a.jpg)").await;
        let (status, mastodon) = jane.page(&format!("/dashboard/posts/{note}/preview/mastodon")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(mastodon.text(".rounds-mastodon__content p strong"), "Thank you");
        assert!(!mastodon.has(".rounds-mastodon__content h2, .rounds-mastodon__content h3, .rounds-mastodon__content img"));
        assert_eq!(mastodon.attrs(".rounds-mastodon__attachments img", "alt"), ["Nurses at the door"]);
        // An article: title, summary and a link only.
        let token = jane.token("/dashboard/@ceo/new").await;
        let response = jane.save("/dashboard/@ceo/new", &token, "save", &[("title", "Winter plan"), ("summary", "What changes"), ("body", "Long text ![Chart](/media/c.png)")]).await;
        let article: i64 = location(&response).trim_start_matches("/dashboard/posts/").split('?').next().and_then(|s| s.parse().ok()).expect("id");
        let (_, mastodon) = jane.page(&format!("/dashboard/posts/{article}/preview/mastodon")).await;
        assert_eq!(mastodon.texts(".rounds-mastodon__content p"), ["Winter plan", "What changes", &app.url("/@ceo/winter-plan")]);
        let (_, email) = jane.page(&format!("/dashboard/posts/{article}/preview/email")).await;
        assert!(email.text(".nhsuk-summary-list").contains("Winter plan – Jane Smith"));
        // The message itself is the newsletter's template, in a frame of its own.
        let framed = email.attrs("iframe.rounds-email", "src");
        assert_eq!(framed, [format!("/dashboard/posts/{article}/preview/email.html")]);
        let (status, message) = jane.page(&framed[0]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(message.attrs("img", "src"), [app.url("/media/c.png")], "images are absolute in email");
        let (status, web) = jane.page(&format!("/dashboard/posts/{article}/preview/web")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(web.h1(), "Winter plan");
        assert!(web.text(".rounds-preview-banner").contains("Preview of revision 1"));
        assert_eq!(jane.get(&format!("/dashboard/posts/{article}/preview/fax")).await.status(), StatusCode::NOT_FOUND);
    }
}

e2e! {
    async fn comments_are_kept_in_rounds_and_mentions_send_a_link(app: TestApp) {
        team(&app);
        let jane = Person::sign_in(&app, "jane").await;
        let ed = Person::sign_in(&app, "ed").await;
        let id = new_draft(&ed, "Budget", "We will spend more on community care.").await;
        let path = format!("/dashboard/posts/{id}/review");
        let empty = ed.post(&path, &format!("/dashboard/posts/{id}/comments"), &[("comment", " "), ("quote", "community care")]).await;
        assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
        assert_eq!(Page::parse(&empty.text().await.expect("body")).attrs("textarea[name=quote]", "value").len(), 0);
        let response = ed.post(&path, &format!("/dashboard/posts/{id}/comments"), &[("comment", "@jane is SECRET-FIGURE right here?"), ("quote", "community care")]).await;
        assert_eq!(location(&response), format!("{path}?done=commented"));
        let mail = wait_for_mail(&app, "ed mentioned you on").await;
        assert!(mail.contains("To: jane@nhs.net"), "{mail}");
        assert!(mail.contains(&format!("/dashboard/posts/{id}/review#comment-")), "the email links to the comment: {mail}");
        assert!(!mail.contains("SECRET-FIGURE"), "the comment itself never leaves rounds");

        let page = review(&jane, id).await;
        assert_eq!(page.text(".rounds-comment__quote p"), "community care");
        assert!(page.text(".rounds-comment").contains("SECRET-FIGURE"));
        let resolve = page.attrs("form[action$='/resolve']", "action").into_iter().next().expect("resolve form");
        assert_eq!(jane.post_with(&page.csrf_token(), &resolve, &[]).await.status(), StatusCode::SEE_OTHER);
        assert!(review(&jane, id).await.text(".rounds-comment").contains("Resolved"));
        // Readers never see comments.
        assert_eq!(act(&jane, id, "publish", &[]).await.status(), StatusCode::SEE_OTHER);
        let public = app.get("/@ceo/budget").await.text().await.expect("body");
        assert!(!public.contains("SECRET-FIGURE"));
    }
}

e2e! {
    async fn the_audit_log_is_filtered_exported_verified_and_shows_tampering(app: TestApp) {
        team(&app);
        app.user("root", true);
        let jane = Person::sign_in(&app, "jane").await;
        let root = Person::sign_in(&app, "root").await;
        let id = new_draft(&jane, "Audit me", "Text.").await;
        assert_eq!(act(&jane, id, "publish", &[]).await.status(), StatusCode::SEE_OTHER);
        assert_eq!(jane.get("/dashboard/admin/audit").await.status(), StatusCode::FORBIDDEN, "admins only");

        let (status, page) = root.page("/dashboard/admin/audit").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.text(".rounds-audit").contains("account.signed_in"));
        let (_, filtered) = root.page("/dashboard/admin/audit?action=post.&actor=jane").await;
        let rows = filtered.texts(".rounds-audit tbody tr");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0].contains("post.published") && rows[0].contains("Audit me"));
        let (status, bad) = root.page("/dashboard/admin/audit?from=yesterday").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(bad.errors()[0].contains("year-month-day"));

        // Exports carry every entry with its hashes.
        let total = audit_actions(&app).len();
        let csv = root.get("/dashboard/admin/audit/export?format=csv").await.text().await.expect("csv");
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        assert_eq!(reader.headers().expect("header").iter().collect::<Vec<_>>(), rounds::editorial::audit::CSV_HEADER);
        assert_eq!(reader.records().count(), total);
        let json: serde_json::Value = root.get("/dashboard/admin/audit/export?format=json&action=post.").await.json().await.expect("json");
        assert_eq!(json.as_array().expect("array").len(), 1);
        assert_eq!(json[0]["action"], "post.published");
        assert_eq!(json[0]["hash"].as_str().map(str::len), Some(64));
        let out = app.run_rounds(&["audit", "export", "--format", "json"], None);
        assert!(out.status.success());
        let exported: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json from the command");
        assert_eq!(exported.as_array().expect("array").len(), total);
        let out = app.run_rounds(&["audit", "export", "--format", "xml"], None);
        assert_eq!(out.status.code(), Some(2));

        // Intact, on the web and from the command line.
        let verified = root.post("/dashboard/admin/audit", "/dashboard/admin/audit/verify", &[]).await;
        assert_eq!(verified.status(), StatusCode::OK);
        let page = Page::parse(&verified.text().await.expect("body"));
        assert!(page.text(".nhsuk-notification-banner").contains("intact"));
        let out = app.run_rounds(&["audit", "verify"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));

        // The database refuses to change an entry; someone who gets round that is caught.
        let mut conn = app.conn();
        let refused = diesel::sql_query("UPDATE audit_log SET actor_name = 'mallory' WHERE id = 2").execute(&mut conn);
        assert!(refused.is_err(), "the trigger refuses changes");
        let original: String = rounds::db::schema::audit_log::table.find(2i64).select(rounds::db::schema::audit_log::actor_name).first(&mut conn).expect("entry 2");
        let lift_guard = if app.db.url.starts_with("sqlite") {
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;"
        } else {
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;"
        };
        diesel::connection::SimpleConnection::batch_execute(&mut conn, lift_guard).expect("drop the guard");
        diesel::sql_query("UPDATE audit_log SET actor_name = 'mallory' WHERE id = 2").execute(&mut conn).expect("tamper");
        let verified = root.post("/dashboard/admin/audit", "/dashboard/admin/audit/verify", &[]).await;
        assert_eq!(verified.status(), StatusCode::CONFLICT);
        let page = Page::parse(&verified.text().await.expect("body"));
        assert!(page.errors()[0].contains("entry 2 was changed"), "{:?}", page.errors());
        let out = app.run_rounds(&["audit", "verify"], None);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("first broken entry 2"), "{}", String::from_utf8_lossy(&out.stderr));

        // Put back, it checks out again; an entry removed from the middle is named too.
        diesel::sql_query(format!("UPDATE audit_log SET actor_name = '{original}' WHERE id = 2")).execute(&mut conn).expect("restore");
        assert!(app.run_rounds(&["audit", "verify"], None).status.success());
        diesel::sql_query("DELETE FROM audit_log WHERE id = 2").execute(&mut conn).expect("remove");
        let out = app.run_rounds(&["audit", "verify"], None);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("entry 2 is missing"), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

e2e! {
    async fn writers_appending_at_once_never_fork_the_chain(app: TestApp) {
        use rounds::editorial::{Actor, audit};
        let user = app.user("jane", false);
        let url = app.db.url.clone();
        std::thread::scope(|scope| {
            for writer in 0..4 {
                let url = url.clone();
                let user = user.clone();
                scope.spawn(move || {
                    let mut conn = rounds::db::ConnectionManager::new(&url).expect("url").open().expect("open");
                    let actor = Actor::web(&user);
                    for n in 0..25 {
                        // Inside a transaction of its own, as real changes are.
                        rounds::db::write_tx(&mut conn, |c| {
                            audit::record(c, &audit::Event::new(&actor, "test.appended").detail("writer", writer).detail("n", n))
                        }).expect("append");
                    }
                });
            }
        });
        let result = audit::verify(&mut app.conn()).expect("verify");
        assert!(result.is_intact(), "{result:?}");
        assert_eq!(result.entries, 100);
    }
}

e2e! {
    async fn the_command_line_publishes_only_as_the_rules_allow(app: TestApp) {
        team(&app);
        let file = app.data_dir.join("post.md");
        std::fs::write(&file, "From the command line.").expect("write");
        let path = file.to_str().expect("path");
        let out = app.run_rounds(&["post", "publish", "--blog", "ceo", "--author", "ed", path], None);
        assert_eq!(out.status.code(), Some(2), "an editor's post needs sign-off");
        assert!(String::from_utf8_lossy(&out.stderr).contains("signed off"), "{}", String::from_utf8_lossy(&out.stderr));
        let mut conn = app.conn();
        assert!(posts::for_team(&mut conn, app_blog(&app).id).expect("posts").is_empty(), "nothing saved");
        let out = app.run_rounds(&["post", "publish", "--blog", "ceo", path], None);
        assert!(out.status.success(), "the owner publishes directly: {}", String::from_utf8_lossy(&out.stderr));
        let actions = audit_actions(&app);
        let last = actions.last().expect("entry");
        assert_eq!(last, "post.published");
        use rounds::db::schema::audit_log;
        let source: String = audit_log::table.order(audit_log::id.desc()).select(audit_log::source).first(&mut conn).expect("entry");
        assert_eq!(source, "command");
        let out = app.run_rounds(&["freeze", "status"], None);
        assert!(String::from_utf8_lossy(&out.stdout).contains("not frozen"));
    }
}

fn app_blog(app: &TestApp) -> Blog {
    rounds::domain::blogs::find_by_handle(&mut app.conn(), "ceo")
        .expect("query")
        .expect("blog")
}

e2e! {
    async fn presence_shows_who_else_has_the_post_open(app: TestApp) {
        team(&app);
        let jane = Person::sign_in(&app, "jane").await;
        let ed = Person::sign_in(&app, "ed").await;
        let id = new_draft(&jane, "Open house", "Everyone is welcome.").await;
        let path = format!("/dashboard/posts/{id}/presence");
        let (jane_token, _, _) = jane.open_editor(id).await;
        // Without the script, the page itself shows who was there when it loaded.
        let (ed_token, _, page) = ed.open_editor(id).await;
        assert!(page.text("#presence").contains("Also editing: jane"), "{}", page.text("#presence"));
        let answer: serde_json::Value = ed.post_with(&ed_token, &path, &[("client_id", "ed-1")]).await.json().await.expect("json");
        assert_eq!(answer["others"][0]["username"], "jane");
        assert_eq!(answer["head"]["by"], "jane");
        let answer: serde_json::Value = jane.post_with(&jane_token, &path, &[("client_id", "jane-1")]).await.json().await.expect("json");
        let names: Vec<&str> = answer["others"].as_array().expect("list").iter().filter_map(|p| p["username"].as_str()).collect();
        assert_eq!(names, ["ed"]);
        // Closing the editor (the script's beacon) leaves at once.
        let left = jane.post_with(&jane_token, &format!("{path}/leave"), &[("client_id", "jane-1")]).await;
        assert_eq!(left.status(), StatusCode::NO_CONTENT);
        let answer: serde_json::Value = ed.post_with(&ed_token, &path, &[("client_id", "ed-1")]).await.json().await.expect("json");
        assert_eq!(answer["others"].as_array().map(Vec::len), Some(0), "{answer}");
        let bad = ed.post_with(&ed_token, &path, &[("client_id", "<script>")]).await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }
}
