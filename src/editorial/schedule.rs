//! Publishing at a set time. People give a date and time in Europe/London (what the
//! clocks in England say, GMT or BST); it is stored in UTC. The publish runs from the
//! durable job queue, so it survives restarts: a job due at that time, keyed by post,
//! revision and time, so scheduling the same thing twice queues it once. The job checks
//! the post is still scheduled, for that revision and that time, under the post's lock:
//! a cancelled or moved schedule leaves a job that does nothing, and a post can only go
//! out once.

use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Europe::London;
use serde::{Deserialize, Serialize};

use crate::db::{DbConnection, Pool};
use crate::jobs::runner::{Handler, HandlerFuture, Outcome};
use crate::jobs::{self, Job, NewJob};

/// The job kind that publishes a scheduled post.
pub const PUBLISH_JOB: &str = "publish_scheduled";

/// What a scheduled-publish job carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledPublish {
    /// The post.
    pub post_id: i64,
    /// The approved revision to publish.
    pub revision_id: i64,
    /// The time it was scheduled for (UTC), so a moved schedule's old job is stale.
    pub scheduled_for: NaiveDateTime,
}

/// Queues the publish of `revision_id` at `at` (UTC), in the caller's transaction.
pub fn enqueue(
    conn: &mut DbConnection,
    post_id: i64,
    revision_id: i64,
    at: NaiveDateTime,
    suffix: Option<&str>,
) -> diesel::QueryResult<bool> {
    let payload = ScheduledPublish {
        post_id,
        revision_id,
        scheduled_for: at,
    };
    let run_at = at.max(crate::domain::now());
    let mut key = format!(
        "publish:{post_id}:{revision_id}:{}",
        at.and_utc().timestamp_micros()
    );
    if let Some(suffix) = suffix {
        key.push(':');
        key.push_str(suffix);
    }
    let job = NewJob::new(PUBLISH_JOB, &payload)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?
        .key(key)
        .at(run_at);
    jobs::enqueue(conn, &job)
}

/// After a freeze is lifted: queues every scheduled post whose time passed to go out
/// now; returns how many.
pub fn release_held(conn: &mut DbConnection, freeze_id: i64) -> diesel::QueryResult<usize> {
    let due = super::workflow::due_schedules(conn)?;
    let mut released = 0;
    for workflow in due {
        if let (Some(revision), Some(at)) = (workflow.scheduled_revision_id, workflow.scheduled_for)
        {
            enqueue(
                conn,
                workflow.post_id,
                revision,
                at,
                Some(&format!("after-freeze-{freeze_id}")),
            )?;
            released += 1;
        }
    }
    Ok(released)
}

/// Runs scheduled-publish jobs.
pub struct Publisher {
    /// The database.
    pub pool: Pool,
    /// The fediverse, for looking up the accounts a post mentions before it goes out.
    pub federation: crate::federation::Federation,
}

impl Handler for Publisher {
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            let payload: ScheduledPublish = match job.payload() {
                Ok(payload) => payload,
                Err(e) => return Outcome::Fail(e),
            };
            // The accounts the scheduled text mentions, looked up before the publishing
            // transaction (which holds no network I/O).
            let pool = self.pool.clone();
            let revision_id = payload.revision_id;
            let text = tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                super::revisions::find_id(&mut conn, revision_id)
                    .map(|r| r.map(|r| r.body_markdown))
                    .map_err(|e| e.to_string())
            })
            .await;
            let mentions = match text {
                Ok(Ok(Some(text))) => {
                    crate::federation::mentions::resolve(&self.federation, &text).await
                }
                // A revision gone or unreadable: the publish below decides what that means.
                _ => crate::federation::mentions::Mentions::none(),
            };
            let pool = self.pool.clone();
            let result = tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                crate::publishing::publish_scheduled(&mut conn, &payload, &mentions)
                    .map_err(|e| crate::error::chain(&e))
            })
            .await;
            match result {
                Ok(Ok(outcome)) => {
                    tracing::info!(job = job.id, ?outcome, "scheduled publish");
                    Outcome::Done
                }
                Ok(Err(error)) => Outcome::Retry { after: None, error },
                Err(e) => Outcome::Retry {
                    after: None,
                    error: e.to_string(),
                },
            }
        })
    }
}

/// A date and time in England, checked, as UTC.
pub fn parse_london(
    day: &str,
    month: &str,
    year: &str,
    time: &str,
) -> Result<NaiveDateTime, String> {
    let number = |s: &str| s.trim().parse::<u32>().ok();
    let (Some(d), Some(m), Some(y)) = (number(day), number(month), number(year)) else {
        return Err("Enter the date as numbers, for example 23 11 2026".into());
    };
    let year = i32::try_from(y).map_err(|_| "Enter a real year".to_owned())?;
    if !(2000..=2200).contains(&year) {
        return Err("Enter the year in full, for example 2026".into());
    }
    let date = NaiveDate::from_ymd_opt(year, m, d)
        .ok_or_else(|| "Enter a real date, for example 23 11 2026".to_owned())?;
    let time = parse_time(time)?;
    let local = date.and_time(time);
    match London.from_local_datetime(&local) {
        LocalResult::Single(at) => Ok(at.naive_utc()),
        // When the clocks go back, 01:00 to 01:59 happens twice: the first (BST) is meant.
        LocalResult::Ambiguous(first, _) => Ok(first.naive_utc()),
        LocalResult::None => Err(
            "That time does not exist in the UK on that day (the clocks go forward): choose another time".into(),
        ),
    }
}

fn parse_time(raw: &str) -> Result<NaiveTime, String> {
    let raw = raw.trim().replace('.', ":");
    NaiveTime::parse_from_str(&raw, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(&raw, "%H:%M:%S"))
        .map_err(|_| "Enter the time in 24-hour form, for example 09:30 or 14:00".to_owned())
}

/// A UTC time as people in England read it: "Monday 23 November 2026 at 09:30 GMT".
pub fn format_london(at: NaiveDateTime) -> String {
    let local = London.from_utc_datetime(&at);
    let seconds = if local.format("%S").to_string() == "00" {
        ""
    } else {
        ":%S"
    };
    local
        .format(&format!("%A %-d %B %Y at %H:%M{seconds} %Z"))
        .to_string()
}

/// The London date and time fields for a UTC time (to fill the form again).
pub fn london_fields(at: NaiveDateTime) -> (String, String, String, String) {
    let local = London.from_utc_datetime(&at);
    (
        local.format("%-d").to_string(),
        local.format("%-m").to_string(),
        local.format("%Y").to_string(),
        local.format("%H:%M").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("time")
    }

    #[test]
    fn london_time_follows_the_clocks() {
        // Winter: GMT, the same as UTC.
        assert_eq!(
            parse_london("23", "11", "2026", "09:30"),
            Ok(utc("2026-11-23 09:30"))
        );
        // Summer: BST, an hour ahead.
        assert_eq!(
            parse_london("1", "7", "2026", "09:30"),
            Ok(utc("2026-07-01 08:30"))
        );
        // 29 March 2026: 01:00 GMT becomes 02:00 BST; 01:30 does not happen.
        assert!(parse_london("29", "3", "2026", "01:30").is_err());
        assert_eq!(
            parse_london("29", "3", "2026", "02:30"),
            Ok(utc("2026-03-29 01:30"))
        );
        // 25 October 2026: 01:30 happens twice; the first is in BST.
        assert_eq!(
            parse_london("25", "10", "2026", "01:30"),
            Ok(utc("2026-10-25 00:30"))
        );
        assert_eq!(
            parse_london("25", "10", "2026", "03:00"),
            Ok(utc("2026-10-25 03:00"))
        );
        assert!(parse_london("31", "2", "2026", "09:00").is_err());
        assert!(parse_london("1", "1", "26", "09:00").is_err());
        assert!(parse_london("1", "1", "2027", "9am").is_err());
        assert_eq!(
            parse_london("1", "1", "2027", "9.05"),
            Ok(utc("2027-01-01 09:05"))
        );
    }

    #[test]
    fn times_read_as_in_england() {
        assert_eq!(
            format_london(utc("2026-07-01 08:30")),
            "Wednesday 1 July 2026 at 09:30 BST"
        );
        assert_eq!(
            format_london(utc("2026-11-23 09:30")),
            "Monday 23 November 2026 at 09:30 GMT"
        );
        assert_eq!(
            london_fields(utc("2026-07-01 08:30")),
            ("1".into(), "7".into(), "2026".into(), "09:30".into())
        );
    }
}
