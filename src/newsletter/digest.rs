//! When digests go out: a daily and a weekly time in a time zone (Europe/London by
//! default), right across the clock changes.

use chrono::{
    Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday,
};
use chrono_tz::Tz;

use super::Cadence;
use crate::config::Settings;

/// The configured digest times.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: Tz,
    daily: NaiveTime,
    weekly_day: Weekday,
    weekly: NaiveTime,
}

impl Schedule {
    /// The schedule the settings describe, or an error naming the bad key.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let tz: Tz = settings.newsletter_time_zone.parse().map_err(|_| {
            format!(
                "newsletter_time_zone: `{}` is not a time zone name like Europe/London",
                settings.newsletter_time_zone
            )
        })?;
        let time = |key: &str, value: &str| {
            NaiveTime::parse_from_str(value.trim(), "%H:%M")
                .map_err(|_| format!("{key}: `{value}` is not a time like 07:30"))
        };
        let weekly_day: Weekday = settings.newsletter_weekly_day.trim().parse().map_err(|_| {
            format!(
                "newsletter_weekly_day: `{}` is not a day like monday",
                settings.newsletter_weekly_day
            )
        })?;
        Ok(Self {
            tz,
            daily: time("newsletter_daily_time", &settings.newsletter_daily_time)?,
            weekly_day,
            weekly: time("newsletter_weekly_time", &settings.newsletter_weekly_time)?,
        })
    }

    /// The first digest of `cadence` due after `after` (UTC): when (UTC) and its period
    /// (the local date, which names the digest). Each post has no digest: `None`.
    pub fn next(&self, cadence: Cadence, after: NaiveDateTime) -> Option<(NaiveDateTime, String)> {
        let (time, weekday) = match cadence {
            Cadence::EachPost => return None,
            Cadence::Daily => (self.daily, None),
            Cadence::Weekly => (self.weekly, Some(self.weekly_day)),
        };
        let mut date = self.tz.from_utc_datetime(&after).date_naive();
        for _ in 0..16 {
            if weekday.is_none_or(|day| date.weekday() == day) {
                let due = self.utc(date, time);
                if due > after {
                    return Some((due, date.format("%Y-%m-%d").to_string()));
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// A local date and time in UTC. In the hour the clocks go back the first (summer)
    /// one counts; a time the clocks skip moves on by the hour skipped.
    fn utc(&self, date: NaiveDate, time: NaiveTime) -> NaiveDateTime {
        let local = date.and_time(time);
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at.naive_utc(),
            LocalResult::None => match self.tz.from_local_datetime(&(local + Duration::hours(1))) {
                LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at.naive_utc(),
                LocalResult::None => local,
            },
        }
    }
}

/// How far back a digest looks for posts (a little over its period, so a clock change
/// never drops a post; what a reader already has is left out anyway).
pub fn window(cadence: Cadence) -> Duration {
    match cadence {
        Cadence::Weekly => Duration::days(7) + Duration::hours(1),
        _ => Duration::hours(25),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("time")
    }

    #[test]
    fn daily_digest_is_at_0730_london_in_winter_and_summer() {
        let schedule = Schedule::from_settings(&Settings::default()).expect("defaults");
        // Winter: GMT, so 07:30 UTC.
        assert_eq!(
            schedule.next(Cadence::Daily, at("2026-01-10 08:00")),
            Some((at("2026-01-11 07:30"), "2026-01-11".into()))
        );
        // Summer: BST, so 06:30 UTC.
        assert_eq!(
            schedule.next(Cadence::Daily, at("2026-07-10 05:00")),
            Some((at("2026-07-10 06:30"), "2026-07-10".into()))
        );
        // The night the clocks go forward (29 March 2026) and back (25 October 2026).
        assert_eq!(
            schedule.next(Cadence::Daily, at("2026-03-28 08:00")),
            Some((at("2026-03-29 06:30"), "2026-03-29".into()))
        );
        assert_eq!(
            schedule.next(Cadence::Daily, at("2026-10-24 08:00")),
            Some((at("2026-10-25 07:30"), "2026-10-25".into()))
        );
    }

    #[test]
    fn weekly_digest_is_on_monday() {
        let schedule = Schedule::from_settings(&Settings::default()).expect("defaults");
        // Tuesday 24 November 2026 → Monday 30 November.
        assert_eq!(
            schedule.next(Cadence::Weekly, at("2026-11-24 12:00")),
            Some((at("2026-11-30 07:30"), "2026-11-30".into()))
        );
        assert_eq!(
            schedule.next(Cadence::EachPost, at("2026-11-24 12:00")),
            None
        );
    }

    #[test]
    fn bad_settings_name_the_key() {
        let settings = Settings {
            newsletter_daily_time: "7.30am".into(),
            ..Settings::default()
        };
        let error = Schedule::from_settings(&settings).expect_err("refused");
        assert!(error.starts_with("newsletter_daily_time"), "{error}");
    }
}
