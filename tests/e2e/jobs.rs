//! The durable job queue on both databases: idempotent enqueueing, leases, retries,
//! dead letters, and several workers never taking the same job.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::prelude::*;
use rounds::db::schema::jobs as table;
use rounds::jobs::runner::{Handler, HandlerFuture, Outcome, Runner};
use rounds::jobs::{self, Job, NewJob, Status};

use crate::e2e;

fn job(n: usize) -> NewJob {
    NewJob::new("test", &n)
        .expect("payload")
        .key(format!("test:{n}"))
}

e2e! {
    async fn enqueueing_is_idempotent_and_claims_are_exclusive(app: TestApp) {
        let mut conn = app.conn();
        assert!(jobs::enqueue(&mut conn, &job(1)).expect("enqueue"));
        assert!(!jobs::enqueue(&mut conn, &job(1)).expect("enqueue"), "same key: no second job");
        // Inside a transaction, a duplicate key must not abort the transaction (PostgreSQL).
        rounds::db::write_tx(&mut conn, |c| {
            jobs::enqueue(c, &job(1))?;
            jobs::enqueue(c, &job(2))
        }).expect("transaction survives");
        for n in 3..=200 {
            jobs::enqueue(&mut conn, &job(n)).expect("enqueue");
        }
        // Eight workers claiming at once never share a job.
        let url = app.db.url.clone();
        let claimed: Vec<Vec<i64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8).map(|w| {
                let url = url.clone();
                scope.spawn(move || {
                    let mut conn = rounds::db::ConnectionManager::new(&url).expect("url").open().expect("open");
                    let mut mine = Vec::new();
                    loop {
                        let got = jobs::claim(&mut conn, &format!("w{w}"), &["test"], &[], 7).expect("claim");
                        if got.is_empty() { break; }
                        mine.extend(got.iter().map(|j| j.id));
                    }
                    mine
                })
            }).collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        let all: Vec<i64> = claimed.iter().flatten().copied().collect();
        let distinct: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(all.len(), 200, "every job claimed");
        assert_eq!(distinct.len(), 200, "no job claimed twice");
    }
}

e2e! {
    async fn leases_retries_and_dead_letters(app: TestApp) {
        let mut conn = app.conn();
        jobs::enqueue(&mut conn, &job(1).attempts(2)).expect("enqueue");
        let first = jobs::claim(&mut conn, "a", &["test"], &[], 10).expect("claim");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].attempts, 1);
        assert!(jobs::claim(&mut conn, "b", &["test"], &[], 10).expect("claim").is_empty(), "leased");

        // Worker "a" dies: once its lease runs out, "b" takes the job.
        diesel::update(table::table).set(table::locked_until.eq(rounds::domain::now() - chrono::Duration::seconds(1)))
            .execute(&mut conn).expect("expire");
        let again = jobs::claim(&mut conn, "b", &["test"], &[], 10).expect("claim");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        assert!(!jobs::complete(&mut conn, again[0].id, "a").expect("complete"), "a lost its lease");

        // A retry is due later; a failure dead-letters; an admin can revive it.
        assert!(jobs::retry_at(&mut conn, again[0].id, "b", rounds::domain::now() + chrono::Duration::hours(1), "503").expect("retry"));
        assert!(jobs::claim(&mut conn, "b", &["test"], &[], 10).expect("claim").is_empty(), "not due yet");
        diesel::update(table::table).set(table::run_at.eq(rounds::domain::now())).execute(&mut conn).expect("due");
        let third = jobs::claim(&mut conn, "b", &["test"], &[], 10).expect("claim");
        assert!(jobs::bury(&mut conn, third[0].id, "b", "410 Gone").expect("bury"));
        let dead = jobs::dead_letters(&mut conn, "test", 10).expect("dead");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].last_error.as_deref(), Some("410 Gone"));
        assert!(jobs::revive(&mut conn, dead[0].id).expect("revive"));
        assert_eq!(jobs::count(&mut conn, "test", Status::Pending).expect("count"), 1);
    }
}

/// Records each payload it sees; fails the first attempt of every third job.
struct Recorder {
    seen: Arc<Mutex<Vec<usize>>>,
}

impl Handler for Recorder {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            let n: usize = match job.payload() {
                Ok(n) => n,
                Err(e) => return Outcome::Fail(e),
            };
            if n.is_multiple_of(3) && job.attempts == 1 {
                return Outcome::Retry {
                    after: None,
                    error: "try again".into(),
                };
            }
            if n == 100 {
                return Outcome::Fail("cannot".into());
            }
            self.seen.lock().expect("lock").push(n);
            Outcome::Done
        })
    }

    /// Retries at once, so the test waits for no backoff.
    fn first_retry(&self) -> Duration {
        Duration::ZERO
    }
}

e2e! {
    async fn workers_run_every_job_once_and_retry_failures(app: TestApp) {
        let pool = rounds::db::build_pool(&app.db.url, 4).expect("pool");
        {
            let mut conn = pool.get().expect("conn");
            for n in 1..=100 {
                jobs::enqueue(&mut conn, &job(n)).expect("enqueue");
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut runners = Vec::new();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        for _ in 0..2 {
            let mut runner = Runner::new(pool.clone(), 4).poll_every(Duration::from_millis(20));
            runner.register("test", Recorder { seen: seen.clone() });
            runners.push(tokio::spawn(runner.run(stopped.clone())));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut conn = pool.get().expect("conn");
            let done = jobs::count(&mut conn, "test", Status::Done).expect("count");
            let dead = jobs::count(&mut conn, "test", Status::Dead).expect("count");
            if done + dead == 100 { break; }
            assert!(std::time::Instant::now() < deadline, "jobs did not finish: {done} done, {dead} dead");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).expect("stop");
        for runner in runners {
            runner.await.expect("runner");
        }
        let mut seen = seen.lock().expect("lock").clone();
        seen.sort_unstable();
        let expected: Vec<usize> = (1..100).collect();
        assert_eq!(seen, expected, "each job ran to completion exactly once");
        let mut conn = pool.get().expect("conn");
        let dead = jobs::dead_letters(&mut conn, "test", 10).expect("dead");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].last_error.as_deref(), Some("cannot"));
    }
}
