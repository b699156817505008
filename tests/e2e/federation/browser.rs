//! The fediverse pages in chromium with axe-core: seeded with replies (threaded, one
//! behind a content warning), reactions, followers, blocks, a failed delivery and a report.

use diesel::prelude::*;
use rounds::db::schema::actors;
use rounds::domain::html::SafeHtml;
use rounds::federation::moderation::{self, FollowStatus, NewReply, ReactionKind, ReplyStatus};
use serde_json::json;

use super::publish;
use crate::e2e;
use crate::helpers::PASSWORD;

/// An account on a made-up server, straight into the database.
fn actor(app: &crate::helpers::TestApp, name: &str) -> i64 {
    let now = rounds::domain::now();
    let mut conn = app.conn();
    let ap_id = format!("https://social.example/users/{name}");
    diesel::insert_into(actors::table)
        .values((
            actors::ap_id.eq(&ap_id),
            actors::domain.eq("social.example"),
            actors::username.eq(name),
            actors::display_name.eq(Some(format!("{} from Leeds", name.to_uppercase()))),
            actors::inbox.eq(format!("{ap_id}/inbox")),
            actors::fetched_at.eq(now),
            actors::created_at.eq(now),
        ))
        .execute(&mut conn)
        .expect("actor");
    rounds::federation::actors::find_by_ap_id(&mut conn, &ap_id)
        .expect("query")
        .expect("actor")
        .row
        .id
}

e2e! {
    async fn fediverse_pages_pass_axe(app: TestApp) {
        let jane = app.user("jane", true);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let post = publish(&app, &blog, "Our winter plan", "We will open ward 7.", "Winter");
        let mut conn = app.conn();
        let (amy, ben, cas) = (actor(&app, "amy"), actor(&app, "ben"), actor(&app, "cas"));
        moderation::add_follower(&mut conn, blog.id, amy, "https://social.example/f/1", FollowStatus::Accepted).expect("follow");
        moderation::add_follower(&mut conn, blog.id, ben, "https://social.example/f/2", FollowStatus::Pending).expect("follow");
        let reply = |n: u32, actor: i64, parent: Option<i64>, status: ReplyStatus, summary: Option<&str>, html: &str| NewReply {
            blog_id: blog.id,
            post_id: Some(post.id),
            ap_id: Box::leak(format!("https://social.example/notes/{n}").into_boxed_str()),
            actor_id: Some(actor),
            parent_id: parent,
            in_reply_to: "https://example.invalid/parent",
            url: None,
            content_html: SafeHtml::from_remote(html),
            summary: summary.map(|s| Box::leak(s.to_owned().into_boxed_str()) as &str),
            sensitive: summary.is_some(),
            status,
            visibility: moderation::Visibility::Public,
            published_at: rounds::domain::now(),
        };
        moderation::insert_reply(&mut conn, &reply(1, amy, None, ReplyStatus::Approved, None, "<p>Thank you for <a href=\"https://nhs.uk\">this</a>.</p>")).expect("reply");
        let first = moderation::reply_by_ap_id(&mut conn, "https://social.example/notes/1").expect("query").expect("reply");
        moderation::insert_reply(&mut conn, &reply(2, cas, Some(first.id), ReplyStatus::Approved, Some("Hospital stay"), "<p>My mum was on ward 7.</p>")).expect("reply");
        moderation::insert_reply(&mut conn, &reply(3, ben, None, ReplyStatus::Held, None, "<p>What about parking?</p>")).expect("reply");
        moderation::insert_reply(&mut conn, &reply(4, ben, None, ReplyStatus::Rejected, None, "<p>Spam</p>")).expect("reply");
        let private = NewReply { visibility: moderation::Visibility::Private, ..reply(5, cas, None, ReplyStatus::Held, None, "<p>Just between us.</p>") };
        moderation::insert_reply(&mut conn, &private).expect("reply");
        moderation::add_reaction(&mut conn, post.id, amy, ReactionKind::Like, "https://social.example/likes/1").expect("like");
        moderation::add_reaction(&mut conn, post.id, cas, ReactionKind::Announce, "https://social.example/boosts/1").expect("boost");
        moderation::block_domain(&mut conn, "spam.example", moderation::BlockSeverity::Reject, Some("Spam")).expect("block");
        moderation::block_account(&mut conn, "https://bad.example/users/troll", None).expect("block");
        moderation::add_report(&mut conn, "https://social.example/flags/1", ben, &["https://example.invalid/post".into()], Some("Misleading")).expect("report");
        let dead = rounds::jobs::NewJob::new("deliver", &json!({
            "signer": { "blog": blog.id }, "inbox": "https://gone.example/inbox",
            "activity_id": "https://example.invalid/a", "activity": "{}",
        })).expect("job").attempts(1);
        rounds::jobs::enqueue(&mut conn, &dead).expect("enqueue");
        {
            use rounds::db::schema::jobs;
            diesel::update(jobs::table.filter(jobs::kind.eq("deliver")))
                .set((jobs::status.eq("dead"), jobs::last_error.eq("HTTP 500"), jobs::finished_at.eq(rounds::domain::now())))
                .execute(&mut conn)
                .expect("dead");
        }
        crate::browser::run_browser_script(&app, "fediverse.mjs", &[
            ("username", "jane".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("post-path", post.path("ceo").expect("path")),
        ]).await;
    }
}
