//! `kill -9` in the middle of a fan-out: `rounds serve` runs as a process, twenty
//! followers on two slow servers (each with its own inbox, so twenty deliveries), a post
//! is published from the command line, the server is killed while deliveries are in
//! flight, and a new process on the same address finishes the job. Every inbox gets the
//! Create, all with one activity id, and once only, unless its delivery was in flight at
//! the kill (the sender cannot know it arrived: at-least-once, same id).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use rounds::jobs::{self, Status};
use serde_json::{Value, json};

use super::peer::Peer;
use crate::editorial_restart::{seed_blog, start_with, stop};
use crate::helpers::{self, Backend};

const PER_PEER: usize = 10;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// The Creates each peer's inboxes have received, by inbox path.
async fn creates(peers: &[Peer]) -> BTreeMap<String, Vec<Value>> {
    let mut by_inbox: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for peer in peers {
        for r in peer.received().await {
            if r["activity"]["type"] == "Create" {
                let inbox = format!("{}{}", peer.base, r["path"].as_str().unwrap_or(""));
                by_inbox.entry(inbox).or_default().push(r);
            }
        }
    }
    by_inbox
}

async fn run(backend: Backend) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("dir");
    let (_, db) = helpers::test_settings(backend, dir.path());
    // A fixed address, so the restarted server has the same ids.
    let bind = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let env = [("ROUNDS_FEDERATION_ALLOW_PRIVATE_ADDRESSES", "true")];
    let (mut first, address) = start_with(&db.url, dir.path(), &bind, &env);
    seed_blog(&db.url);

    let peers = [Peer::start(), Peer::start()];
    for peer in &peers {
        for n in 0..PER_PEER {
            let name = format!("f{n}");
            // No shared inbox: one delivery per follower.
            peer.control("actor", json!({ "name": name, "endpoints": {} }))
                .await;
            let id = peer.actor(&name);
            let status = peer.deliver(&name, &format!("{address}/@ceo/inbox"), json!({
                "id": format!("{id}/follows/1"), "type": "Follow", "actor": id, "object": format!("{address}/@ceo"),
            })).await;
            assert_eq!(status, 202);
        }
        peer.wait_for_n("Accept", PER_PEER).await;
        peer.control("respond", json!({ "delay_ms": 700 })).await;
    }

    let published = Command::new(env!("CARGO_BIN_EXE_rounds"))
        .args(["post", "publish", "--blog", "ceo", "-"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ROUNDS_DATABASE_URL", &db.url)
        .env("ROUNDS_DATA_DIR", dir.path())
        .env("ROUNDS_BASE_URL", &address)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b"Delivered once, even through a crash.")?;
            child.wait_with_output()
        })
        .expect("rounds post publish");
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );

    // Killed once the first deliveries have landed and others are on their way.
    let deadline = Instant::now() + Duration::from_secs(30);
    while creates(&peers).await.len() < 2 {
        assert!(Instant::now() < deadline, "the fan-out never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kill_before = now();
    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    let kill_after = now();
    let inboxes = 2 * PER_PEER;
    // Requests in flight finish at the peers after the kill; let them.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let at_kill = creates(&peers).await.len();
    assert!(
        at_kill < inboxes,
        "the kill came after the fan-out ended ({at_kill} inboxes served): nothing was tested"
    );

    // The dead process's leases would run out after two minutes; run them out now.
    let mut conn = rounds::db::ConnectionManager::new(&db.url)
        .expect("url")
        .open()
        .expect("open");
    // What the dead process had recorded as delivered: those inboxes must get it once.
    let recorded: std::collections::BTreeSet<String> = {
        use rounds::db::schema::jobs as table;
        table::table
            .filter(table::kind.eq("deliver"))
            .filter(table::status.eq(Status::Done.as_str()))
            .select(table::payload)
            .load::<String>(&mut conn)
            .expect("done deliveries")
            .iter()
            .filter_map(|p| serde_json::from_str::<Value>(p).ok())
            .filter(|p| {
                p["activity_id"]
                    .as_str()
                    .is_some_and(|id| id.contains("#create-"))
            })
            .filter_map(|p| p["inbox"].as_str().map(str::to_owned))
            .collect()
    };
    {
        use rounds::db::schema::jobs as table;
        diesel::update(table::table.filter(table::status.eq(Status::Running.as_str())))
            .set(table::locked_until.eq(rounds::domain::now() - chrono::Duration::seconds(1)))
            .execute(&mut conn)
            .expect("leases");
    }
    for peer in &peers {
        peer.control("respond", json!({ "delay_ms": 0 })).await;
    }
    let (second, _) = start_with(&db.url, dir.path(), &bind, &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = ["federate", "deliver"].iter().all(|kind| {
            [Status::Pending, Status::Running]
                .into_iter()
                .all(|s| jobs::count(&mut conn, kind, s).unwrap_or(1) == 0)
        });
        if done && creates(&peers).await.len() == inboxes {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fan-out never finished after the restart: {:?}",
            creates(&peers).await.keys()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let by_inbox = creates(&peers).await;
    assert_eq!(by_inbox.len(), inboxes, "every follower's inbox");
    let ids: std::collections::BTreeSet<&str> = by_inbox
        .values()
        .flatten()
        .filter_map(|r| r["activity"]["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1, "one activity id everywhere: {ids:?}");
    let mut redelivered = 0;
    for (inbox, receipts) in &by_inbox {
        let in_flight = |r: &Value| {
            r["arrived_at"].as_f64().unwrap_or(0.0) < kill_after
                && r["received_at"].as_f64().unwrap_or(0.0) > kill_before
        };
        // The peer checks a signature by fetching our key: one that arrived just before
        // the kill could not be checked (and was answered 401, so it was sent again).
        let (verified, unverified): (Vec<&Value>, Vec<&Value>) =
            receipts.iter().partition(|r| r["verified"] == true);
        assert!(
            unverified.iter().all(|r| in_flight(r)),
            "{inbox}: {unverified:?}"
        );
        // At least once: a delivery the peer answered but the dead process had not yet
        // recorded goes again, with the same id; a recorded one never does.
        match verified.as_slice() {
            [_] => {}
            [first, _]
                if !recorded.contains(inbox)
                    && first["arrived_at"].as_f64().unwrap_or(0.0) < kill_after =>
            {
                redelivered += 1;
            }
            _ => panic!(
                "{inbox} took the Create {} times (recorded as delivered: {}): {receipts:?}",
                verified.len(),
                recorded.contains(inbox)
            ),
        }
    }
    eprintln!(
        "{inboxes} inboxes, {at_kill} served before the kill, {} recorded as delivered, {redelivered} not yet recorded at the kill and sent again",
        recorded.len()
    );
    stop(second);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_killed_midway_reaches_every_inbox_once_sqlite() {
    run(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_killed_midway_reaches_every_inbox_once_postgres() {
    if helpers::postgres_skipped() {
        eprintln!("PostgreSQL left out by TEST_BACKENDS");
        return;
    }
    run(Backend::Postgres).await;
}
