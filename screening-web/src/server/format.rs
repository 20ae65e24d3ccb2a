//! How times and dates read on screen: UK local time (GMT, or BST in summer), NHS date style.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// UK local time (Europe/London from the tz database): GMT in winter, BST in summer.
pub fn uk_local(at: DateTime<Utc>) -> NaiveDateTime {
    screening_core::london::local(at)
}

/// The text with its first letter in capitals: an error's words opening a sentence.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `09:30`.
pub fn clock(at: DateTime<Utc>) -> String {
    uk_local(at).format("%H:%M").to_string()
}

/// `09:30:05`: message times, where seconds matter.
pub fn clock_seconds(at: DateTime<Utc>) -> String {
    uk_local(at).format("%H:%M:%S").to_string()
}

/// `23 November 2026, 09:30:05`.
pub fn date_time(at: DateTime<Utc>) -> String {
    uk_local(at).format("%-d %B %Y, %H:%M:%S").to_string()
}

/// `23 November 2026`.
pub fn date(day: NaiveDate) -> String {
    day.format("%-d %B %Y").to_string()
}

/// `3 minutes`, `2 hours 5 minutes`, `4 days`: how old something is.
pub fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - since).num_minutes().max(0);
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match minutes {
        0 => "less than a minute".into(),
        m if m < 60 => plural(m, "minute"),
        m if m < 24 * 60 => match m % 60 {
            0 => plural(m / 60, "hour"),
            rest => format!("{} {}", plural(m / 60, "hour"), plural(rest, "minute")),
        },
        m => plural(m / (24 * 60), "day"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn winter_times_are_gmt_and_summer_times_are_bst() {
        assert_eq!(clock(utc("2026-11-23T09:30:00Z")), "09:30");
        assert_eq!(clock(utc("2026-07-01T09:30:00Z")), "10:30");
    }

    #[test]
    fn the_clocks_change_at_01_00_utc_on_the_last_sundays_of_march_and_october() {
        // 2026: 29 March and 25 October.
        assert_eq!(clock_seconds(utc("2026-03-29T00:59:59Z")), "00:59:59");
        assert_eq!(clock_seconds(utc("2026-03-29T01:00:00Z")), "02:00:00");
        assert_eq!(clock_seconds(utc("2026-10-25T00:59:59Z")), "01:59:59");
        assert_eq!(clock_seconds(utc("2026-10-25T01:00:00Z")), "01:00:00");
    }

    #[test]
    fn dates_read_as_the_nhs_writes_them() {
        assert_eq!(
            date(NaiveDate::from_ymd_opt(2026, 11, 3).unwrap()),
            "3 November 2026"
        );
        assert_eq!(
            date_time(utc("2026-11-23T09:30:05Z")),
            "23 November 2026, 09:30:05"
        );
    }

    #[test]
    fn ages_are_in_words() {
        let now = utc("2026-11-23T12:00:00Z");
        assert_eq!(age(now, now), "less than a minute");
        assert_eq!(age(utc("2026-11-23T11:59:00Z"), now), "1 minute");
        assert_eq!(age(utc("2026-11-23T10:00:00Z"), now), "2 hours");
        assert_eq!(age(utc("2026-11-23T09:55:00Z"), now), "2 hours 5 minutes");
        assert_eq!(age(utc("2026-11-20T12:00:00Z"), now), "3 days");
    }
}
