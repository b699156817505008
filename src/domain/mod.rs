//! What rounds is about: users, blogs, posts, media, and the rules for each.
//! Each module holds its row types and the queries that read and write them.

pub mod blogs;
pub mod html;
pub mod media;
pub mod mentions;
pub mod names;
pub mod password;
pub mod posts;
pub mod users;

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

/// The current time in UTC, to the microsecond (what PostgreSQL keeps), so a value
/// written and read back compares equal on both backends.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A stored UTC timestamp as a zoned one, for formatting.
pub fn utc(time: NaiveDateTime) -> DateTime<Utc> {
    time.and_utc()
}
