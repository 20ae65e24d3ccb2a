//! UK local time (Europe/London, from the tz database through `chrono-tz`): clinics are booked, shown
//! and handed to modalities in the time on the clinic's wall clock, GMT in winter and BST in summer.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::London;

/// The wall-clock time in the UK at `at`.
pub fn local(at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&London).naive_local()
}

/// The UK calendar date at `at`: "today's clinic" at 00:30 BST is the new day's, though UTC is
/// still on the day before.
pub fn today(at: DateTime<Utc>) -> NaiveDate {
    local(at).date()
}

/// The instant a UK wall-clock time denotes. In the autumn's repeated hour this is the first
/// (BST) instant; a time in the spring's skipped hour is read an hour later, as the clocks go.
pub fn to_utc(wall_clock: NaiveDateTime) -> DateTime<Utc> {
    match London.from_local_datetime(&wall_clock) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at.with_timezone(&Utc),
        LocalResult::None => London
            .from_local_datetime(&(wall_clock + TimeDelta::hours(1)))
            .earliest()
            .expect("the hour after a skipped hour exists")
            .with_timezone(&Utc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn wall(day: (i32, u32, u32), hour: u32, minute: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(day.0, day.1, day.2)
            .unwrap()
            .and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap())
    }

    #[test]
    fn a_gmt_date_reads_as_utc() {
        assert_eq!(
            local(utc("2026-01-15T09:30:00Z")),
            wall((2026, 1, 15), 9, 30)
        );
        assert_eq!(
            to_utc(wall((2026, 1, 15), 9, 30)),
            utc("2026-01-15T09:30:00Z")
        );
    }

    #[test]
    fn a_bst_date_reads_an_hour_ahead() {
        assert_eq!(
            local(utc("2026-07-01T08:30:00Z")),
            wall((2026, 7, 1), 9, 30)
        );
        assert_eq!(
            to_utc(wall((2026, 7, 1), 9, 0)),
            utc("2026-07-01T08:00:00Z")
        );
    }

    #[test]
    fn the_hour_after_midnight_bst_is_already_the_next_day() {
        // 23:30 UTC on 30 June is 00:30 BST on 1 July.
        let at = utc("2026-06-30T23:30:00Z");
        assert_eq!(
            at.date_naive(),
            NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
        );
        assert_eq!(today(at), NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
        assert_eq!(local(at), wall((2026, 7, 1), 0, 30));
    }

    #[test]
    fn the_clock_changes_follow_the_tz_database() {
        // 2026: BST from 01:00 UTC on 29 March to 01:00 UTC on 25 October.
        assert_eq!(
            local(utc("2026-03-29T00:59:00Z")),
            wall((2026, 3, 29), 0, 59)
        );
        assert_eq!(
            local(utc("2026-03-29T01:00:00Z")),
            wall((2026, 3, 29), 2, 0)
        );
        assert_eq!(
            local(utc("2026-10-25T00:59:00Z")),
            wall((2026, 10, 25), 1, 59)
        );
        assert_eq!(
            local(utc("2026-10-25T01:00:00Z")),
            wall((2026, 10, 25), 1, 0)
        );
        // The repeated hour means its first (BST) instant; the skipped hour is read an hour on.
        assert_eq!(
            to_utc(wall((2026, 10, 25), 1, 30)),
            utc("2026-10-25T00:30:00Z")
        );
        assert_eq!(
            to_utc(wall((2026, 3, 29), 1, 30)),
            utc("2026-03-29T01:30:00Z")
        );
    }
}
