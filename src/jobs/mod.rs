//! The durable job queue. A job is a row written in the same transaction as the change
//! that makes it due; workers claim jobs with a lease, so a worker that dies (even by
//! `kill -9`) loses nothing: its lease runs out and another worker takes the job again.
//! Retries back off exponentially; a job that keeps failing is dead-lettered for an admin.

pub mod runner;

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConnection;
use crate::db::schema::jobs;
use crate::on_backend;

/// How long a claimed job is a worker's before others may take it again.
pub const LEASE: Duration = Duration::from_secs(120);

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for `run_at`.
    Pending,
    /// Claimed by a worker until `locked_until`.
    Running,
    /// Finished.
    Done,
    /// Gave up; waits for an admin to retry or drop it.
    Dead,
    /// Will never succeed (e.g. the inbox refused it for good); kept for the record.
    Dropped,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Dropped => "dropped",
        }
    }
}

/// A job row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = jobs)]
pub struct Job {
    /// Row id.
    pub id: i64,
    /// What to do: the handler's name, e.g. `deliver`.
    pub kind: String,
    /// The handler's input, JSON.
    pub payload: String,
    /// Makes enqueueing idempotent.
    pub idempotency_key: Option<String>,
    /// Groups jobs that are throttled together (a remote host).
    pub partition_key: Option<String>,
    /// See [`Status`].
    pub status: String,
    /// Times claimed so far (including this one, while running).
    pub attempts: i32,
    /// Claims allowed before the job is dead-lettered.
    pub max_attempts: i32,
    /// When it may next run.
    pub run_at: NaiveDateTime,
    /// The worker holding it.
    pub locked_by: Option<String>,
    /// When that worker's lease ends.
    pub locked_until: Option<NaiveDateTime>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: NaiveDateTime,
    /// When it last changed.
    pub updated_at: NaiveDateTime,
    /// When it finished or died.
    pub finished_at: Option<NaiveDateTime>,
}

impl Job {
    /// The payload, decoded.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.payload)
            .map_err(|e| format!("bad payload for {}: {e}", self.kind))
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The handler's name.
    pub kind: &'static str,
    /// The handler's input.
    pub payload: String,
    /// Enqueueing a second job with the same key does nothing.
    pub idempotency_key: Option<String>,
    /// Throttling group.
    pub partition_key: Option<String>,
    /// Earliest start.
    pub run_at: NaiveDateTime,
    /// Claims allowed before dead-lettering.
    pub max_attempts: i32,
}

impl NewJob {
    /// A job due now with the payload serialised, ten attempts allowed.
    pub fn new(kind: &'static str, payload: &impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(Self {
            kind,
            payload: serde_json::to_string(payload)?,
            idempotency_key: None,
            partition_key: None,
            run_at: crate::domain::now(),
            max_attempts: 10,
        })
    }

    /// With an idempotency key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// In a throttling partition.
    pub fn partition(mut self, partition: impl Into<String>) -> Self {
        self.partition_key = Some(partition.into());
        self
    }

    /// Due at a later time.
    pub fn at(mut self, run_at: NaiveDateTime) -> Self {
        self.run_at = run_at;
        self
    }

    /// With a different attempt limit.
    pub fn attempts(mut self, max_attempts: i32) -> Self {
        self.max_attempts = max_attempts;
        self
    }
}

/// Adds a job; returns whether it was new (false when its idempotency key was taken).
/// Call inside the transaction that makes the job due.
pub fn enqueue(conn: &mut DbConnection, job: &NewJob) -> QueryResult<bool> {
    let row = JobRow::new(job, crate::domain::now());
    // ON CONFLICT DO NOTHING rather than catching the violation: on PostgreSQL a failed
    // statement would abort the caller's whole transaction.
    let inserted = on_backend!(conn, |c| diesel::insert_into(jobs::table)
        .values(&row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// A new job as its row is written. An absent key is written as NULL (not DEFAULT), so
/// many rows go in one statement on SQLite too.
#[derive(Insertable)]
#[diesel(table_name = jobs, treat_none_as_default_value = false)]
struct JobRow<'a> {
    kind: &'a str,
    payload: &'a str,
    idempotency_key: Option<&'a str>,
    partition_key: Option<&'a str>,
    status: &'a str,
    attempts: i32,
    max_attempts: i32,
    run_at: NaiveDateTime,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl<'a> JobRow<'a> {
    fn new(job: &'a NewJob, now: NaiveDateTime) -> Self {
        Self {
            kind: job.kind,
            payload: &job.payload,
            idempotency_key: job.idempotency_key.as_deref(),
            partition_key: job.partition_key.as_deref(),
            status: Status::Pending.as_str(),
            attempts: 0,
            max_attempts: job.max_attempts,
            run_at: job.run_at,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Adds many jobs in a few statements (a fan-out queues one per server); returns how many
/// were new. Call inside the transaction that makes them due.
pub fn enqueue_all(conn: &mut DbConnection, jobs: &[NewJob]) -> QueryResult<usize> {
    // Rows a statement: well inside both databases' limits on bound values.
    const ROWS: usize = 500;
    let now = crate::domain::now();
    let mut inserted = 0;
    for chunk in jobs.chunks(ROWS) {
        let rows: Vec<JobRow<'_>> = chunk.iter().map(|job| JobRow::new(job, now)).collect();
        inserted += on_backend!(conn, |c| diesel::insert_into(jobs::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(inserted)
}

/// Claims up to `limit` due jobs of these kinds for `worker`, oldest first: pending jobs
/// whose time has come, and running jobs whose lease ran out (their worker died). Jobs in
/// the `busy` partitions (hosts this worker already has enough requests out to) wait.
pub fn claim(
    conn: &mut DbConnection,
    worker: &str,
    kinds: &[&str],
    busy: &[String],
    limit: i64,
) -> QueryResult<Vec<Job>> {
    // Never an empty list: `NOT IN ()` is not SQL everywhere.
    let mut busy: Vec<&str> = busy.iter().map(String::as_str).collect();
    busy.push("");
    let now = crate::domain::now();
    let until = now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(2));
    // Two queries, not one with an OR: each can then walk its index in order and stop at
    // `limit`, where the OR made SQLite gather and sort every due job on every claim.
    let of_kinds = || {
        jobs::table
            .filter(jobs::kind.eq_any(kinds))
            .filter(
                jobs::partition_key
                    .is_null()
                    .or(jobs::partition_key.ne_all(busy.clone())),
            )
            .order(jobs::run_at)
            .limit(limit)
            .select(jobs::id)
    };
    let pending = || {
        of_kinds()
            .filter(jobs::status.eq(Status::Pending.as_str()))
            .filter(jobs::run_at.le(now))
    };
    let expired = || {
        of_kinds()
            .filter(jobs::status.eq(Status::Running.as_str()))
            .filter(jobs::locked_until.lt(now))
    };
    crate::db::write_tx(conn, |c| {
        let mut ids: Vec<i64> = match c {
            // SKIP LOCKED lets several nodes claim at once without waiting on each other.
            DbConnection::Pg(pg) => {
                let mut ids: Vec<i64> = expired().for_update().skip_locked().load(pg)?;
                ids.extend(pending().for_update().skip_locked().load::<i64>(pg)?);
                ids
            }
            // BEGIN IMMEDIATE already holds SQLite's write lock: nobody can interleave.
            DbConnection::Sqlite(sqlite) => {
                let mut ids: Vec<i64> = expired().load(sqlite)?;
                ids.extend(pending().load::<i64>(sqlite)?);
                ids
            }
        };
        ids.truncate(usize::try_from(limit).unwrap_or(0));
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(jobs::table.filter(jobs::id.eq_any(&ids)))
            .set((
                jobs::status.eq(Status::Running.as_str()),
                jobs::locked_by.eq(worker),
                jobs::locked_until.eq(until),
                jobs::attempts.eq(jobs::attempts + 1),
                jobs::updated_at.eq(now),
            ))
            .execute(c)?;
        jobs::table
            .filter(jobs::id.eq_any(&ids))
            .order(jobs::id)
            .select(Job::as_select())
            .load(c)
    })
}

/// Marks a claimed job done (only if `worker` still holds it).
pub fn complete(conn: &mut DbConnection, id: i64, worker: &str) -> QueryResult<bool> {
    Ok(complete_all(conn, &[id], worker)? == 1)
}

/// Marks claimed jobs done in one statement (those `worker` still holds); returns how
/// many.
pub fn complete_all(conn: &mut DbConnection, ids: &[i64], worker: &str) -> QueryResult<usize> {
    let now = crate::domain::now();
    diesel::update(
        jobs::table
            .filter(jobs::id.eq_any(ids))
            .filter(jobs::locked_by.eq(worker.to_owned())),
    )
    .set((
        jobs::status.eq(Status::Done.as_str()),
        jobs::locked_by.eq(None::<String>),
        jobs::locked_until.eq(None::<NaiveDateTime>),
        jobs::last_error.eq(None::<String>),
        jobs::finished_at.eq(now),
        jobs::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Gives a claimed job back untouched: pending, due now, the claim not counted.
pub fn release(conn: &mut DbConnection, id: i64, worker: &str) -> QueryResult<bool> {
    let updated = diesel::update(held(id, worker))
        .set((
            jobs::status.eq(Status::Pending.as_str()),
            jobs::locked_by.eq(None::<String>),
            jobs::locked_until.eq(None::<NaiveDateTime>),
            jobs::attempts.eq(jobs::attempts - 1),
            jobs::updated_at.eq(crate::domain::now()),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Gives a claimed job back untried, to run at `run_at`, noting why: the claim is not
/// counted, so a job that only waits (for another server to recover) spends none of its
/// attempts.
pub fn defer(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    run_at: NaiveDateTime,
    reason: &str,
) -> QueryResult<bool> {
    put_back(conn, id, worker, run_at, reason, 1)
}

/// Puts a claimed job back to run again at `run_at`, noting why it failed.
pub fn retry_at(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    run_at: NaiveDateTime,
    error: &str,
) -> QueryResult<bool> {
    put_back(conn, id, worker, run_at, error, 0)
}

/// Pending again at `run_at` with a note, and `uncounted` claims taken off its attempts.
fn put_back(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    run_at: NaiveDateTime,
    note: &str,
    uncounted: i32,
) -> QueryResult<bool> {
    let updated = diesel::update(held(id, worker))
        .set((
            jobs::status.eq(Status::Pending.as_str()),
            jobs::run_at.eq(run_at),
            jobs::locked_by.eq(None::<String>),
            jobs::locked_until.eq(None::<NaiveDateTime>),
            jobs::attempts.eq(jobs::attempts - uncounted),
            jobs::last_error.eq(truncate(note)),
            jobs::updated_at.eq(crate::domain::now()),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Dead-letters a claimed job.
pub fn bury(conn: &mut DbConnection, id: i64, worker: &str, error: &str) -> QueryResult<bool> {
    let now = crate::domain::now();
    let updated = diesel::update(held(id, worker))
        .set((
            jobs::status.eq(Status::Dead.as_str()),
            jobs::locked_by.eq(None::<String>),
            jobs::locked_until.eq(None::<NaiveDateTime>),
            jobs::last_error.eq(truncate(error)),
            jobs::finished_at.eq(now),
            jobs::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

type Held = diesel::dsl::Filter<
    diesel::dsl::Filter<jobs::table, diesel::dsl::Eq<jobs::id, i64>>,
    diesel::dsl::Eq<jobs::locked_by, String>,
>;

fn held(id: i64, worker: &str) -> Held {
    jobs::table
        .filter(jobs::id.eq(id))
        .filter(jobs::locked_by.eq(worker.to_owned()))
}

fn truncate(error: &str) -> String {
    error.chars().take(2000).collect()
}

/// Records that a claimed job will never succeed (not retried, not a dead letter).
pub fn drop_job(conn: &mut DbConnection, id: i64, worker: &str, reason: &str) -> QueryResult<bool> {
    let now = crate::domain::now();
    let updated = diesel::update(held(id, worker))
        .set((
            jobs::status.eq(Status::Dropped.as_str()),
            jobs::locked_by.eq(None::<String>),
            jobs::locked_until.eq(None::<NaiveDateTime>),
            jobs::last_error.eq(truncate(reason)),
            jobs::finished_at.eq(now),
            jobs::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Dead-lettered jobs of a kind, newest first.
pub fn dead_letters(conn: &mut DbConnection, kind: &str, limit: i64) -> QueryResult<Vec<Job>> {
    jobs::table
        .filter(jobs::kind.eq(kind))
        .filter(jobs::status.eq(Status::Dead.as_str()))
        .order(jobs::finished_at.desc())
        .limit(limit)
        .select(Job::as_select())
        .load(conn)
}

/// Gives a dead job a fresh set of attempts, due now.
pub fn revive(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    let now = crate::domain::now();
    let updated = diesel::update(
        jobs::table
            .filter(jobs::id.eq(id))
            .filter(jobs::status.eq(Status::Dead.as_str())),
    )
    .set((
        jobs::status.eq(Status::Pending.as_str()),
        jobs::attempts.eq(0),
        jobs::run_at.eq(now),
        jobs::finished_at.eq(None::<NaiveDateTime>),
        jobs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Counts jobs of a kind by status, for dashboards and tests.
pub fn count(conn: &mut DbConnection, kind: &str, status: Status) -> QueryResult<i64> {
    jobs::table
        .filter(jobs::kind.eq(kind))
        .filter(jobs::status.eq(status.as_str()))
        .count()
        .get_result(conn)
}

/// Deletes finished jobs older than `age` (their idempotency keys go with them, so keep
/// them longer than any retry of the same work could arrive).
pub fn prune(conn: &mut DbConnection, age: chrono::Duration) -> QueryResult<usize> {
    diesel::delete(
        jobs::table
            .filter(jobs::status.eq_any([Status::Done.as_str(), Status::Dropped.as_str()]))
            .filter(jobs::finished_at.lt(crate::domain::now() - age)),
    )
    .execute(conn)
}

/// The wait before the first retry of a job whose handler names none.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);

/// The longest wait [`backoff`] gives.
const LONGEST_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// The wait before attempt `attempt + 1`: `first` doubling each time, at most 6 hours,
/// with up to a quarter more at random so retries to one host spread out.
pub fn backoff(first: Duration, attempt: i32) -> Duration {
    use rand::Rng;
    let exponent = u32::try_from(attempt.clamp(1, 20) - 1).unwrap_or(0);
    let base = first
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(LONGEST_BACKOFF);
    let quarter = u64::try_from(base.as_millis() / 4).unwrap_or(0);
    base + Duration::from_millis(rand::rng().random_range(0..=quarter))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{FIRST_RETRY, backoff};

    #[test]
    fn backoff_doubles_and_is_capped() {
        let secs = |attempt| backoff(FIRST_RETRY, attempt).as_secs_f64();
        assert!((30.0..=37.5).contains(&secs(1)));
        assert!((60.0..=75.0).contains(&secs(2)));
        assert!((240.0..=300.0).contains(&secs(4)));
        assert!(secs(30) <= 6.0 * 3600.0 * 1.25);
        let short = backoff(Duration::from_secs(1), 3);
        assert!((4000..=5000).contains(&short.as_millis()), "{short:?}");
        assert_eq!(backoff(Duration::ZERO, 5), Duration::ZERO);
    }
}
