//! Five-field cron expressions (`minute hour day-of-month month day-of-week`, UTC), as the
//! schedules of reconciliation runs are written: each field `*`, a number, a range `a-b`, a
//! step `*/n` or `a-b/n`, or a list of those joined by `,`; day of week 0-7 (0 and 7 Sunday).
//! When both day fields are restricted, a day matching either runs (as cron does).

use std::collections::BTreeSet;

use crate::ids::Timestamp;

/// A checked expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: BTreeSet<u32>,
    hours: BTreeSet<u32>,
    days: BTreeSet<u32>,
    months: BTreeSet<u32>,
    weekdays: BTreeSet<u32>,
    /// Whether the day-of-month and day-of-week fields were `*`.
    any_day: bool,
    any_weekday: bool,
}

/// Why an expression is refused (`invalid_cron`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidCron(pub String);

fn field(text: &str, name: &str, min: u32, max: u32) -> Result<(BTreeSet<u32>, bool), InvalidCron> {
    let bad = |why: &str| InvalidCron(format!("{name} {text:?}: {why} ({min} to {max})"));
    let mut out = BTreeSet::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| bad("a step is a positive number"))?)
            }
            None => (part, 1),
        };
        let number =
            |s: &str| s.parse::<u32>().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| bad("out of range"));
        let (from, to) = match range {
            "*" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None if step > 1 => return Err(bad("a step applies to * or a range")),
                None => {
                    let n = number(r)?;
                    (n, n)
                }
            },
        };
        if from > to {
            return Err(bad("a range goes upward"));
        }
        out.extend((from..=to).step_by(step as usize));
    }
    Ok((out, text == "*"))
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, InvalidCron> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(InvalidCron(format!("{text:?}: five fields, minute hour day-of-month month day-of-week")));
        };
        let (minutes, _) = field(minute, "minute", 0, 59)?;
        let (hours, _) = field(hour, "hour", 0, 23)?;
        let (days, any_day) = field(day, "day of month", 1, 31)?;
        let (months, _) = field(month, "month", 1, 12)?;
        let (mut weekdays, any_weekday) = field(weekday, "day of week", 0, 7)?;
        if weekdays.remove(&7) {
            weekdays.insert(0);
        }
        Ok(Cron { minutes, hours, days, months, weekdays, any_day, any_weekday })
    }

    fn runs_on(&self, day: i64) -> bool {
        let (_, month, dom) = Timestamp(day * 86_400 * Timestamp::MICROS_PER_SECOND).date();
        let weekday = u32::try_from((day + 4).rem_euclid(7)).unwrap_or_default();
        let (dom, month) = (u32::try_from(dom).unwrap_or_default(), u32::try_from(month).unwrap_or_default());
        if !self.months.contains(&month) {
            return false;
        }
        let by_day = self.days.contains(&dom);
        let by_weekday = self.weekdays.contains(&weekday);
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => by_day,
            (true, false) => by_weekday,
            (false, false) => by_day || by_weekday,
        }
    }

    /// The first minute strictly after `t` the expression names, within the next eight years
    /// (none: it names no day in them, e.g. February 30th).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let second = t.0.div_euclid(Timestamp::MICROS_PER_SECOND);
        let (first_day, second_of_day) = (second.div_euclid(86_400), second.rem_euclid(86_400));
        for day in first_day..first_day + 8 * 366 {
            if !self.runs_on(day) {
                continue;
            }
            for &h in &self.hours {
                for &m in &self.minutes {
                    let at = i64::from(h) * 3600 + i64::from(m) * 60;
                    if day > first_day || at > second_of_day {
                        return Some(Timestamp((day * 86_400 + at) * Timestamp::MICROS_PER_SECOND));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `YYYY-MM-DDTHH:MM:SSZ` as a timestamp, through `rfc3339` (checked both ways).
    fn at(text: &str) -> Timestamp {
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
        let ts = Timestamp(i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap());
        assert_eq!(ts.rfc3339(), text);
        ts
    }

    fn next(cron: &str, after: &str) -> String {
        Cron::parse(cron).unwrap().next_after(at(after)).unwrap().rfc3339()
    }

    #[test]
    fn the_next_run_is_the_first_named_minute_strictly_after() {
        assert_eq!(next("* * * * *", "2026-12-07T10:00:00Z"), "2026-12-07T10:01:00Z");
        assert_eq!(next("* * * * *", "2026-12-07T10:00:30Z"), "2026-12-07T10:01:00Z");
        assert_eq!(next("*/15 * * * *", "2026-12-07T10:14:59Z"), "2026-12-07T10:15:00Z");
        assert_eq!(next("*/15 * * * *", "2026-12-07T10:15:00Z"), "2026-12-07T10:30:00Z");
        assert_eq!(next("0 2 * * *", "2026-12-07T02:00:00Z"), "2026-12-08T02:00:00Z");
        assert_eq!(next("0 2 * * *", "2026-12-07T01:59:00Z"), "2026-12-07T02:00:00Z");
        assert_eq!(next("30 23 31 12 *", "2026-12-31T23:30:00Z"), "2027-12-31T23:30:00Z");
        assert_eq!(next("0 0 29 2 *", "2026-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
        assert_eq!(next("5,10-12 8 * * *", "2026-12-07T08:10:00Z"), "2026-12-07T08:11:00Z");
        assert_eq!(next("0 9-17/4 * * *", "2026-12-07T13:00:00Z"), "2026-12-07T17:00:00Z");
    }

    #[test]
    fn days_of_week_count_from_sunday_and_either_day_field_may_name_the_day() {
        // 2026-12-07 is a Monday.
        assert_eq!(next("0 6 * * 0", "2026-12-07T00:00:00Z"), "2026-12-13T06:00:00Z");
        assert_eq!(next("0 6 * * 7", "2026-12-07T00:00:00Z"), "2026-12-13T06:00:00Z");
        assert_eq!(next("0 6 * * 1-5", "2026-12-11T07:00:00Z"), "2026-12-14T06:00:00Z");
        assert_eq!(next("0 6 1 * 3", "2026-12-07T00:00:00Z"), "2026-12-09T06:00:00Z");
        assert_eq!(next("0 6 1 * *", "2026-12-07T00:00:00Z"), "2027-01-01T06:00:00Z");
        assert_eq!(next("0 0 * 2 *", "2026-12-07T00:00:00Z"), "2027-02-01T00:00:00Z");
        assert_eq!(Cron::parse("0 0 30 2 *").unwrap().next_after(at("2026-12-07T00:00:00Z")), None);
    }

    #[test]
    fn malformed_fields_are_refused_naming_the_field() {
        for (text, names) in [
            ("* * * *", "five fields"),
            ("* * * * * *", "five fields"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "minute"),
            ("5/2 * * * *", "minute"),
            ("10-5 * * * *", "minute"),
            ("a * * * *", "minute"),
            ("1,,2 * * * *", "minute"),
        ] {
            let e = Cron::parse(text).unwrap_err();
            assert!(e.0.contains(names), "{text:?}: {e}");
        }
        assert!(Cron::parse(" 0  2 * * * ").is_ok());
    }
}
