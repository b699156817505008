//! Workers: claim due jobs, run each kind's handler, record the outcome.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::{FIRST_RETRY, Job, backoff};
use crate::db::Pool;

/// What a handler made of a job.
#[derive(Debug)]
pub enum Outcome {
    /// Finished; never run again.
    Done,
    /// Failed in a way that may pass: run again after the handler's backoff, or later if
    /// the other side asked for longer, unless its attempts are spent.
    Retry {
        /// The least wait the other side asked for (e.g. `Retry-After`). A floor, never a
        /// shortcut: `Retry-After: 0` must not spend every attempt in seconds.
        after: Option<Duration>,
        /// Why, for the log and the dead-letter list.
        error: String,
    },
    /// Not tried, because trying now is known to be pointless (the other server's
    /// circuit is open): run again at `until`, and the claim spends no attempt.
    Defer {
        /// When it may run again.
        until: chrono::NaiveDateTime,
        /// Why, for the log.
        reason: String,
    },
    /// Failed for good: dead-letter it now.
    Fail(String),
    /// Will never succeed and is not worth an admin's attention (e.g. an inbox that
    /// answered 410 Gone): recorded as dropped.
    Dropped(String),
}

/// A handler's future.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// Runs one kind of job.
pub trait Handler: Send + Sync + 'static {
    /// Does the job's work. Must be safe to run twice for the same job (a worker that
    /// dies after the work but before recording it leaves the job to run again).
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a>;

    /// The wait before a failed job's first retry; each later one waits twice as long
    /// (see [`backoff`]).
    fn first_retry(&self) -> Duration {
        FIRST_RETRY
    }
}

/// A pool of workers sharing the database queue with every other node.
pub struct Runner {
    pool: Pool,
    worker: String,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    concurrency: usize,
    per_partition: usize,
    poll: Duration,
    wake: Arc<Notify>,
    in_flight: std::sync::Mutex<HashMap<String, usize>>,
}

impl Runner {
    /// Workers on this pool running up to `concurrency` jobs at once.
    pub fn new(pool: Pool, concurrency: usize) -> Self {
        use rand::Rng;
        let suffix: u32 = rand::rng().random();
        Self {
            pool,
            worker: format!("{}-{}-{suffix:08x}", hostname(), std::process::id()),
            handlers: HashMap::new(),
            concurrency: concurrency.max(1),
            per_partition: 4,
            // Jobs other processes queue (a post published from the command line) are
            // found by polling; an idle poll is one indexed query.
            poll: Duration::from_millis(100),
            wake: Arc::new(Notify::new()),
            in_flight: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Registers the handler for a kind.
    pub fn register(&mut self, kind: &'static str, handler: impl Handler) {
        self.handlers.insert(kind, Arc::new(handler));
    }

    /// Shares a waker made beforehand (so the web state can hold it before the runner).
    pub fn with_waker(mut self, wake: Arc<Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// At most this many jobs of one partition (one remote server) at once, so a slow
    /// server cannot take every worker.
    pub fn per_partition(mut self, limit: usize) -> Self {
        self.per_partition = limit.max(1);
        self
    }

    /// How often to look for jobs when nobody wakes the runner.
    pub fn poll_every(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Wakes the runner at once (after this process enqueued something). Jobs enqueued
    /// by other processes are found by polling.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs until `stop` turns true, then lets jobs in flight finish.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if self.handlers.is_empty() {
            return;
        }
        let kinds: Vec<&'static str> = self.handlers.keys().copied().collect();
        let (finished, outcomes) = tokio::sync::mpsc::unbounded_channel();
        let first_retries = self
            .handlers
            .iter()
            .map(|(kind, handler)| ((*kind).to_owned(), handler.first_retry()))
            .collect();
        let recorder = tokio::spawn(record(
            self.pool.clone(),
            self.worker.clone(),
            first_retries,
            outcomes,
        ));
        let this = Arc::new(self);
        let mut in_flight: JoinSet<()> = JoinSet::new();
        let mut stopping = *stop.borrow();
        // Set after a quiet poll: claim even less than a batch, so no slot stays idle.
        let mut top_up = false;
        loop {
            while in_flight.try_join_next().is_some() {}
            if stopping {
                break;
            }
            let free = this.concurrency.saturating_sub(in_flight.len());
            let mut claimed = 0;
            // Claims come in batches (a quarter of the slots at least, unless idle or after
            // a quiet poll): one claim a finished job would be a write transaction a job.
            let batch = (this.concurrency / 4).max(1);
            if free > 0 && (free >= batch || in_flight.is_empty() || top_up) {
                match this.claim(&kinds, free).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            let runner = this.clone();
                            let finished = finished.clone();
                            runner.enter(job.partition_key.as_deref());
                            in_flight.spawn(async move {
                                let outcome = runner.run_one(&job).await;
                                runner.leave(job.partition_key.as_deref());
                                // Fails only once the recorder is gone, after every
                                // job has finished: never.
                                let _ = finished.send((job, outcome));
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not claim jobs"),
                }
            }
            top_up = false;
            if free == 0 || (claimed > 0 && claimed == free) {
                // Full: wait for a slot.
                tokio::select! {
                    _ = in_flight.join_next() => {}
                    _ = stop.changed() => stopping = true,
                }
            } else if claimed == 0 {
                // Nothing due, or fewer slots free than a batch: wait for news.
                tokio::select! {
                    _ = this.wake.notified() => {}
                    _ = tokio::time::sleep(this.poll) => top_up = true,
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                    _ = stop.changed() => stopping = true,
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
        drop(finished);
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "the job recorder failed");
        }
    }

    fn enter(&self, partition: Option<&str>) {
        if let (Some(p), Ok(mut map)) = (partition, self.in_flight.lock()) {
            *map.entry(p.to_owned()).or_default() += 1;
        }
    }

    fn leave(&self, partition: Option<&str>) {
        if let (Some(p), Ok(mut map)) = (partition, self.in_flight.lock())
            && let Some(count) = map.get_mut(p)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(p);
            }
        }
    }

    /// Partitions with as many jobs in flight here as one may have.
    fn busy(&self) -> Vec<String> {
        self.in_flight
            .lock()
            .map(|map| {
                map.iter()
                    .filter(|(_, n)| **n >= self.per_partition)
                    .map(|(p, _)| p.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn claim(&self, kinds: &[&'static str], free: usize) -> Result<Vec<Job>, String> {
        let pool = self.pool.clone();
        let worker = self.worker.clone();
        let kinds = kinds.to_vec();
        let busy = self.busy();
        let limit = i64::try_from(free).unwrap_or(1);
        let claimed = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            super::claim(&mut conn, &worker, &kinds, &busy, limit).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        Ok(self.within_partition_limits(claimed))
    }

    /// A batch may hold more jobs of one partition than its limit allows (they were all
    /// due at once); the extra ones go back to wait, due again at once.
    fn within_partition_limits(&self, claimed: Vec<Job>) -> Vec<Job> {
        let mut counts: HashMap<String, usize> =
            self.in_flight.lock().map(|m| m.clone()).unwrap_or_default();
        let mut keep = Vec::with_capacity(claimed.len());
        let mut release = Vec::new();
        for job in claimed {
            match &job.partition_key {
                Some(p) => {
                    let count = counts.entry(p.clone()).or_default();
                    if *count < self.per_partition {
                        *count += 1;
                        keep.push(job);
                    } else {
                        release.push(job.id);
                    }
                }
                None => keep.push(job),
            }
        }
        if !release.is_empty() {
            let pool = self.pool.clone();
            let worker = self.worker.clone();
            // The lease would hand them back anyway; giving them back now is faster.
            tokio::task::spawn_blocking(move || {
                if let Ok(mut conn) = pool.get() {
                    for id in release {
                        let _ = super::release(&mut conn, id, &worker);
                    }
                }
            });
        }
        keep
    }

    async fn run_one(&self, job: &Job) -> Outcome {
        if job.attempts > job.max_attempts {
            // Its worker died mid-job more times than the job may run.
            return Outcome::Fail(format!("gave up after {} attempts", job.max_attempts));
        }
        match self.handlers.get(job.kind.as_str()) {
            Some(handler) => handler.run(job).await,
            None => Outcome::Fail(format!("no handler for job kind {}", job.kind)),
        }
    }
}

/// The most outcomes written in one transaction.
const RECORD_BATCH: usize = 256;

/// Records finished jobs' outcomes, as many as have finished in one transaction: a
/// fan-out finishes hundreds of jobs a second, and one write transaction each would
/// have them queue for SQLite's single writer. Ends when every sender is gone and all
/// that were sent are written. A job whose outcome is lost (the process dies first)
/// keeps its lease and runs again when it runs out, as handlers allow.
async fn record(
    pool: Pool,
    worker: String,
    first_retries: HashMap<String, Duration>,
    mut outcomes: tokio::sync::mpsc::UnboundedReceiver<(Job, Outcome)>,
) {
    let first_retries = Arc::new(first_retries);
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let pool = pool.clone();
        let worker = worker.clone();
        let worker_for_batch = worker.clone();
        let first_retries = first_retries.clone();
        let write = move |conn: &mut crate::db::DbConnection, job: &Job, outcome: &Outcome| {
            let first_retry = first_retries.get(&job.kind).copied().unwrap_or(FIRST_RETRY);
            record_one(conn, &worker, job, outcome, first_retry)
        };
        let finished = std::mem::take(&mut batch);
        let count = finished.len();
        let recorded = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            // Jobs that succeeded, most of a fan-out, are marked done in one statement.
            let (done, others): (Vec<_>, Vec<_>) = finished
                .iter()
                .partition(|(_, outcome)| matches!(outcome, Outcome::Done));
            let done: Vec<i64> = done.iter().map(|(job, _)| job.id).collect();
            let all = crate::db::write_tx(&mut conn, |conn| {
                if !done.is_empty() {
                    super::complete_all(conn, &done, &worker_for_batch)?;
                }
                others
                    .iter()
                    .try_for_each(|(job, outcome)| write(conn, job, outcome))
            });
            if all.is_ok() {
                return Ok(());
            }
            // One bad write must not lose the others: each in a transaction of its own.
            let mut failed = None;
            for (job, outcome) in &finished {
                if let Err(e) =
                    crate::db::write_tx(&mut conn, |conn| write(conn, job, outcome))
                {
                    tracing::error!(job = job.id, kind = %job.kind, error = %e, "could not record job outcome");
                    failed = Some(e.to_string());
                }
            }
            failed.map_or(Ok(()), Err)
        })
        .await;
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(jobs = count, error = %e, "could not record job outcomes")
            }
            Err(e) => tracing::error!(jobs = count, error = %e, "job recording task failed"),
        }
    }
}

/// Writes one job's outcome (only if this worker still holds it); a retry waits its
/// kind's backoff from `first_retry`, or longer if the other side asked.
fn record_one(
    conn: &mut crate::db::DbConnection,
    worker: &str,
    job: &Job,
    outcome: &Outcome,
    first_retry: Duration,
) -> diesel::QueryResult<()> {
    let id = job.id;
    match outcome {
        Outcome::Done => super::complete(conn, id, worker),
        Outcome::Retry { error, .. } if job.attempts >= job.max_attempts => {
            tracing::warn!(job = id, kind = %job.kind, %error, "job failed for the last time");
            super::bury(conn, id, worker, error)
        }
        Outcome::Retry { after, error } => {
            let wait = backoff(first_retry, job.attempts).max(after.unwrap_or_default());
            let at = crate::domain::now()
                + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            tracing::info!(job = id, kind = %job.kind, %error, retry_in_secs = wait.as_secs(), "job will be retried");
            super::retry_at(conn, id, worker, at, error)
        }
        Outcome::Defer { until, reason } => {
            tracing::debug!(job = id, kind = %job.kind, %reason, %until, "job deferred");
            super::defer(conn, id, worker, *until, reason)
        }
        Outcome::Fail(error) => {
            tracing::warn!(job = id, kind = %job.kind, %error, "job dead-lettered");
            super::bury(conn, id, worker, error)
        }
        Outcome::Dropped(reason) => {
            tracing::info!(job = id, kind = %job.kind, %reason, "job dropped");
            super::drop_job(conn, id, worker, reason)
        }
    }
    .map(|_| ())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned())
}
