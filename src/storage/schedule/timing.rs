//! When a schedule fires: a 5-field cron pattern (or `@hourly`, `@daily` …) read in an IANA
//! time zone, by `croner` over `jiff`. Daylight saving follows the Open Cron Pattern
//! Specification: a fixed-time job whose time falls in a spring-forward gap runs once, at
//! the first instant after the gap; on a fall-back day it runs once, at the first of the
//! repeated times; an interval job (`*/15 * * * *`) runs through both halves of the repeat.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A parsed cron pattern in its time zone.
#[derive(Debug, Clone)]
pub struct Timing {
    cron: Cron,
    zone: TimeZone,
}

impl Timing {
    /// Reads `pattern` (five fields, or a nickname) and `timezone` (an IANA name such as
    /// `Europe/Berlin`, or `UTC`); the error names which is wrong.
    pub fn parse(pattern: &str, timezone: &str) -> Result<Timing, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(pattern)
            .map_err(|e| {
                format!(
                    "cron {pattern:?} is not a 5-field pattern (minute hour day month weekday) \
                     or @hourly/@daily/@weekly/@monthly/@yearly: {e}"
                )
            })?;
        let zone = TimeZone::get(timezone).map_err(|_| {
            format!("timezone {timezone:?} is not an IANA time zone such as Europe/Berlin or UTC")
        })?;
        let timing = Timing { cron, zone };
        // A pattern that never fires (`0 0 31 2 *`) is refused now, not found out later.
        if timing
            .next_after(jiff::Timestamp::now().as_millisecond())
            .is_none()
        {
            return Err(format!("cron {pattern:?} never fires"));
        }
        Ok(timing)
    }

    /// The first firing strictly after `after_ms` (ms since the epoch).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = Timestamp::from_millisecond(after_ms)
            .ok()?
            .to_zoned(self.zone.clone());
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .map(|next| next.timestamp().as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The firings in `[from, to)` as local wall-clock text with offsets.
    fn firings(pattern: &str, zone: &str, from: &str, to: &str) -> Vec<String> {
        let timing = Timing::parse(pattern, zone).expect("parses");
        let tz = TimeZone::get(zone).expect("zone");
        let at = |text: &str| {
            text.parse::<jiff::civil::DateTime>()
                .expect("civil")
                .to_zoned(tz.clone())
                .expect("zoned")
                .timestamp()
                .as_millisecond()
        };
        let (mut cursor, end) = (at(from) - 1, at(to));
        let mut seen = Vec::new();
        while let Some(next) = timing.next_after(cursor) {
            if next >= end {
                break;
            }
            let local = Timestamp::from_millisecond(next)
                .expect("ts")
                .to_zoned(tz.clone());
            seen.push(local.strftime("%H:%M%:z").to_string());
            cursor = next;
        }
        seen
    }

    #[test]
    fn a_job_in_the_spring_forward_gap_runs_once_right_after_it() {
        // Berlin, 2027-03-28: 02:00 CET becomes 03:00 CEST; 02:30 never happens.
        assert_eq!(
            firings(
                "30 2 * * *",
                "Europe/Berlin",
                "2027-03-28T00:00",
                "2027-03-29T00:00"
            ),
            ["03:00+02:00"]
        );
        // The days around it run at 02:30 as usual.
        assert_eq!(
            firings(
                "30 2 * * *",
                "Europe/Berlin",
                "2027-03-27T00:00",
                "2027-03-28T00:00"
            ),
            ["02:30+01:00"]
        );
    }

    #[test]
    fn a_job_in_the_repeated_fall_back_hour_runs_once() {
        // Berlin, 2027-10-31: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        assert_eq!(
            firings(
                "30 2 * * *",
                "Europe/Berlin",
                "2027-10-31T00:00",
                "2027-11-01T00:00"
            ),
            ["02:30+02:00"]
        );
    }

    #[test]
    fn an_interval_job_runs_through_both_halves_of_the_repeated_hour() {
        assert_eq!(
            firings(
                "*/30 2 * * *",
                "Europe/Berlin",
                "2027-10-31T00:00",
                "2027-11-01T00:00"
            ),
            ["02:00+02:00", "02:30+02:00", "02:00+01:00", "02:30+01:00"]
        );
    }

    #[test]
    fn nicknames_and_zones_are_read_and_bad_ones_named() {
        assert_eq!(
            firings(
                "@daily",
                "America/New_York",
                "2027-01-01T00:00",
                "2027-01-03T00:00"
            ),
            ["00:00-05:00", "00:00-05:00"]
        );
        assert_eq!(
            firings("0 9 * * 1-5", "UTC", "2027-01-01T00:00", "2027-01-06T00:00"),
            ["09:00+00:00", "09:00+00:00", "09:00+00:00"],
            "Friday, Monday, Tuesday"
        );
        let bad_cron = Timing::parse("* * * *", "UTC").expect_err("four fields");
        assert!(bad_cron.contains("cron"), "{bad_cron}");
        assert!(
            Timing::parse("0 0 * * * *", "UTC").is_err(),
            "no seconds field"
        );
        let bad_zone = Timing::parse("@hourly", "Mars/Olympus").expect_err("zone");
        assert!(bad_zone.contains("timezone"), "{bad_zone}");
        assert!(Timing::parse("0 0 31 2 *", "UTC").is_err(), "never fires");
    }
}
