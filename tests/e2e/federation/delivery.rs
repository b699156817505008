//! Delivery to servers that push back, hang or are gone: `Retry-After` is a floor under
//! the backoff, 401 is retried, and a failing server neither holds up the others nor
//! uses up its deliveries' attempts while its circuit is open.

use diesel::prelude::*;
use rounds::db::schema::jobs;
use rounds::domain::blogs::Blog;
use rounds::jobs::Job;
use serde_json::{Value, json};

use super::peer::Peer;
use super::publish;
use super::replies::{follow, wait_until};
use crate::e2e;
use crate::helpers::TestApp;

/// The deliveries queued for one server (its host and port), oldest first.
fn deliveries_to(app: &TestApp, peer_base: &str) -> Vec<Job> {
    let host = peer_base.trim_start_matches("http://");
    jobs::table
        .filter(jobs::kind.eq("deliver"))
        .filter(jobs::partition_key.eq(host))
        .order(jobs::id)
        .select(Job::as_select())
        .load(&mut app.conn())
        .expect("jobs")
}

/// A blog followed from two servers, each of which has its Accept.
async fn followed_from_two_servers(app: &TestApp) -> (Blog, Peer, Peer) {
    let jane = app.user("jane", false);
    let blog = app.blog("ceo", "Jane Smith", &jane);
    let (first, second) = (Peer::start(), Peer::start());
    assert_eq!(follow(&first, app, "alice").await, 202);
    assert_eq!(follow(&second, app, "bob").await, 202);
    first.wait_for("Accept").await;
    second.wait_for("Accept").await;
    (blog, first, second)
}

/// What a failure message needs of a job (its payload is long).
fn summary(job: &Job) -> String {
    format!(
        "#{} {} attempts={} run_at={} error={:?}",
        job.id, job.status, job.attempts, job.run_at, job.last_error
    )
}

/// Seconds between the end of one request and the start of the next, as the peer saw.
fn gap(earlier: &Value, later: &Value) -> f64 {
    later["arrived_at"].as_f64().unwrap_or(0.0) - earlier["received_at"].as_f64().unwrap_or(0.0)
}

e2e! {
    with |s| { s.federation_allow_private_addresses = true; s.federation_retry_seconds = 1; };
    async fn retry_after_is_a_floor_and_401_is_retried(app: TestApp) {
        let jane = app.user("jane", false);
        let blog = app.blog("ceo", "Jane Smith", &jane);
        let peer = Peer::start();
        assert_eq!(follow(&peer, &app, "alice").await, 202);
        peer.wait_for("Accept").await;

        // The backoff here is 1 s, then 2 s, then 4 s (each up to a quarter more).
        peer.control("respond", json!({ "queue": [
            { "status": 429, "retry_after": 3 },
            { "status": 429, "retry_after": 0 },
            { "status": 401 },
        ] })).await;
        publish(&app, &blog, "", "Third time lucky.", "");
        let tries = peer.wait_for_n("Create", 4).await;
        let statuses: Vec<u64> = tries.iter().map(|t| t["status"].as_u64().unwrap_or(0)).collect();
        assert_eq!(statuses, [429, 429, 401, 202], "retried until taken, 401 included");
        assert!(tries.iter().all(|t| t["activity"]["id"] == tries[0]["activity"]["id"]), "the same activity each time");
        // Longer than the backoff: the server's wait is kept.
        assert!(gap(&tries[0], &tries[1]) >= 3.0, "Retry-After: 3 honoured: {tries:?}");
        // Shorter than the backoff: the backoff is kept (`Retry-After: 0` is no licence
        // to spend every attempt at once).
        assert!(gap(&tries[1], &tries[2]) >= 2.0, "Retry-After: 0 waited the backoff: {tries:?}");
        assert!(gap(&tries[2], &tries[3]) >= 4.0, "401 retried after the backoff: {tries:?}");
        let done = deliveries_to(&app, &peer.base).into_iter().filter(|j| j.status == "done").count();
        assert_eq!(done, 2, "the Accept and the Create");
    }
}

e2e! {
    with |s| { s.federation_allow_private_addresses = true; s.federation_retry_seconds = 1; };
    async fn a_hanging_server_holds_up_no_other(app: TestApp) {
        let (blog, live, hanging) = followed_from_two_servers(&app).await;

        hanging.control("hold", json!({ "hold": true })).await;
        for n in 1..=6 {
            publish(&app, &blog, "", &format!("Update number {n}."), "");
        }
        // Every post reaches the live server while the other has answered none.
        live.wait_for_n("Create", 6).await;
        let answered = hanging.received().await.into_iter().filter(|r| r["activity"]["type"] == "Create").count();
        assert_eq!(answered, 0, "the hanging server answered nothing yet");
        let queued = deliveries_to(&app, &hanging.base);
        let waiting: Vec<&str> = queued.iter().map(|j| j.status.as_str()).filter(|s| *s != "done").collect();
        assert_eq!(waiting.len(), 6, "{waiting:?}");
        assert!(waiting.iter().filter(|s| **s == "running").count() <= 4, "at most four requests to one server: {waiting:?}");

        // Once it answers, it gets them all.
        hanging.control("hold", json!({ "hold": false })).await;
        hanging.wait_for_matching("Create", 6, |_| true).await;
    }
}

e2e! {
    with |s| { s.federation_allow_private_addresses = true; s.federation_retry_seconds = 1; };
    async fn a_dead_servers_deliveries_wait_without_spending_attempts(app: TestApp) {
        let (blog, live, dead) = followed_from_two_servers(&app).await;
        let dead_base = dead.base.clone();
        // Gone: connections to it are refused from now on.
        drop(dead);

        // Five failures in a row open its circuit; the live server gets every post.
        for n in 1..=5 {
            publish(&app, &blog, "", &format!("Update number {n}."), "");
        }
        live.wait_for_n("Create", 5).await;
        wait_until("the dead server's circuit to open", || {
            deliveries_to(&app, &dead_base).iter().any(|j| j.last_error.as_deref().is_some_and(|e| e.contains("circuit open")))
        }).await;

        // A post while the circuit is open: the live server gets it at once; the dead
        // server's delivery is put off until the circuit closes, untried and with all
        // its attempts left.
        publish(&app, &blog, "", "Update number 6.", "");
        live.wait_for_n("Create", 6).await;
        wait_until("the new delivery to be put off", || {
            deliveries_to(&app, &dead_base).last().is_some_and(|j| j.status == "pending" && j.last_error.is_some())
        }).await;
        let queued = deliveries_to(&app, &dead_base);
        let newest = queued.last().expect("a delivery");
        assert_eq!(newest.attempts, 0, "waiting spent no attempt: {}", summary(newest));
        assert!(newest.last_error.as_deref().unwrap_or("").contains("circuit"), "{}", summary(newest));
        // Every delivery to it ends up waiting for the circuit (a minute) in the
        // database, none given up: those whose retry was written after the circuit
        // opened are put off when next claimed, as the newest was.
        wait_until("every delivery to the dead server to wait for its circuit", || {
            let soon = rounds::domain::now() + chrono::Duration::seconds(30);
            let queued = deliveries_to(&app, &dead_base);
            let waiting: Vec<&Job> = queued.iter().filter(|j| j.status != "done").collect();
            assert_eq!(waiting.len(), 6, "{:#?}", queued.iter().map(summary).collect::<Vec<_>>());
            waiting.iter().all(|j| j.status == "pending" && j.run_at > soon)
        }).await;
    }
}
