//! Business hours: opening intervals per weekday in an IANA time zone, and the pure function
//! that says whether the team is open at an instant and when it opens next.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::DomainError;

/// Most opening intervals in a week (four a day).
pub const MAX_INTERVALS: usize = 28;
/// Longest time zone name, in bytes.
pub const MAX_TIMEZONE_BYTES: usize = 64;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The team's weekly opening hours, as the API and the database hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"timezone": "Europe/Berlin", "weekly": [
    {"day": "mon", "open": "09:00", "close": "17:00"},
    {"day": "tue", "open": "09:00", "close": "12:00"},
    {"day": "tue", "open": "13:00", "close": "17:00"}
]}))]
pub struct BusinessHours {
    /// An IANA time zone name such as `Europe/Berlin`; the times below are local to it.
    #[schema(max_length = 64)]
    pub timezone: String,
    /// The opening intervals; a day without one is closed all day, an empty list means
    /// never open. At most 28, none overlapping another of its day.
    pub weekly: Vec<OpeningInterval>,
}

/// One opening interval of a weekday, in local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpeningInterval {
    /// `mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`.
    #[schema(pattern = "^(mon|tue|wed|thu|fri|sat|sun)$")]
    pub day: String,
    /// `HH:MM`, 24-hour.
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub open: String,
    /// `HH:MM`, after `open`; `24:00` is the end of the day.
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    pub close: String,
}

/// Business hours ready for computing: the zone loaded, the times in minutes.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: TimeZone,
    /// (day 0 = Monday, open minute, close minute), sorted.
    intervals: Vec<(usize, i16, i16)>,
}

/// Whether the team is open at an instant, and when it opens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenState {
    pub open_now: bool,
    /// The next opening when closed now; `None` when open now or never open.
    pub next_open_at: Option<Timestamp>,
}

/// Minutes since midnight of `HH:MM` (`24:00` only where `end_of_day` is allowed).
fn parse_clock(raw: &str, end_of_day: bool) -> Option<i16> {
    let (h, m) = raw.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i16, i16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end_of_day => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl BusinessHours {
    /// Checks every rule and loads the zone; the hours sorted, as they are stored.
    pub fn validate(mut self) -> Result<(Self, Schedule), DomainError> {
        let schedule = self.schedule()?;
        self.weekly.sort_by_key(|i| {
            (
                DAYS.iter().position(|d| *d == i.day),
                parse_clock(&i.open, false),
            )
        });
        Ok((self, schedule))
    }

    /// The computable form, or `Invalid` naming the first broken rule.
    pub fn schedule(&self) -> Result<Schedule, DomainError> {
        if self.timezone.is_empty() || self.timezone.len() > MAX_TIMEZONE_BYTES {
            return Err(DomainError::invalid(format!(
                "timezone must be 1-{MAX_TIMEZONE_BYTES} bytes"
            )));
        }
        let tz = TimeZone::get(&self.timezone).map_err(|_| {
            DomainError::invalid("timezone is not a known IANA time zone (e.g. Europe/Berlin)")
        })?;
        if self.weekly.len() > MAX_INTERVALS {
            return Err(DomainError::invalid(format!(
                "weekly holds at most {MAX_INTERVALS} intervals"
            )));
        }
        let mut intervals = Vec::with_capacity(self.weekly.len());
        for interval in &self.weekly {
            let day = DAYS
                .iter()
                .position(|d| *d == interval.day)
                .ok_or_else(|| {
                    DomainError::invalid("day must be one of mon, tue, wed, thu, fri, sat, sun")
                })?;
            let open = parse_clock(&interval.open, false)
                .ok_or_else(|| DomainError::invalid("open must be a time HH:MM (00:00-23:59)"))?;
            let close = parse_clock(&interval.close, true)
                .ok_or_else(|| DomainError::invalid("close must be a time HH:MM (00:01-24:00)"))?;
            if close <= open {
                return Err(DomainError::invalid(format!(
                    "{}: close must be after open",
                    interval.day
                )));
            }
            intervals.push((day, open, close));
        }
        intervals.sort_unstable();
        if let Some(pair) = intervals
            .windows(2)
            .find(|w| w[0].0 == w[1].0 && w[1].1 < w[0].2)
        {
            return Err(DomainError::invalid(format!(
                "{}: intervals overlap",
                DAYS[pair[0].0]
            )));
        }
        Ok(Schedule { tz, intervals })
    }
}

fn day_index(weekday: Weekday) -> usize {
    weekday.to_monday_zero_offset() as usize
}

impl Schedule {
    /// Whether the team is open at `now` and, if not, when it opens next: a pure function
    /// of the clock, so its tests choose the instant.
    ///
    /// Each interval is placed on the calendar in the zone, so DST is the zone's: a local
    /// time that a spring-forward skips counts as the first instant after the gap, and one
    /// that a fall-back repeats as its first occurrence.
    pub fn state_at(&self, now: Timestamp) -> OpenState {
        let today = now.to_zoned_datetime(self.tz.clone()).date();
        let mut next: Option<Timestamp> = None;
        let mut date = today;
        // Intervals never cross midnight: today and the next seven days hold every
        // candidate, the same weekday a week on included.
        for _ in 0..8 {
            for &(day, open, close) in &self.intervals {
                if day != day_index(date.weekday()) {
                    continue;
                }
                let (Some(start), Some(end)) =
                    (self.instant(date, open), self.instant(date, close))
                else {
                    continue;
                };
                if start <= now && now < end {
                    return OpenState {
                        open_now: true,
                        next_open_at: None,
                    };
                }
                if start > now && start < end && next.is_none_or(|n| start < n) {
                    next = Some(start);
                }
            }
            if next.is_some() {
                break;
            }
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        OpenState {
            open_now: false,
            next_open_at: next,
        }
    }

    /// The instant of a local minute of `date` (1440 is the next midnight).
    fn instant(&self, date: Date, minute: i16) -> Option<Timestamp> {
        let (date, minute) = if minute >= 24 * 60 {
            (date.tomorrow().ok()?, minute - 24 * 60)
        } else {
            (date, minute)
        };
        let local = date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
        self.tz.to_zoned_datetime(local).ok().map(|z| z.timestamp())
    }
}

/// The contract's timestamp of an instant (RFC 3339 UTC, milliseconds).
pub fn timestamp_of(at: Timestamp) -> String {
    let nanos = i128::from(at.as_millisecond()) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(crate::domain::timestamp)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(tz: &str, weekly: &[(&str, &str, &str)]) -> BusinessHours {
        BusinessHours {
            timezone: tz.into(),
            weekly: weekly
                .iter()
                .map(|(day, open, close)| OpeningInterval {
                    day: (*day).into(),
                    open: (*open).into(),
                    close: (*close).into(),
                })
                .collect(),
        }
    }

    fn office() -> Schedule {
        let days = ["mon", "tue", "wed", "thu", "fri"].map(|d| (d, "09:00", "17:00"));
        hours("Europe/Berlin", &days).schedule().unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(state: OpenState) -> String {
        timestamp_of(state.next_open_at.expect("a next opening"))
    }

    #[test]
    fn on_a_winter_saturday_berlin_office_hours_open_monday_at_eight_utc() {
        let state = office().state_at(at("2026-01-17T12:00:00Z"));
        assert!(!state.open_now);
        assert_eq!(next(state), "2026-01-19T08:00:00.000Z");
    }

    #[test]
    fn on_a_summer_saturday_berlin_office_hours_open_monday_at_seven_utc() {
        let state = office().state_at(at("2026-07-18T12:00:00Z"));
        assert!(!state.open_now);
        assert_eq!(next(state), "2026-07-20T07:00:00.000Z");
    }

    #[test]
    fn inside_an_interval_it_is_open_with_no_next_opening() {
        let schedule = office();
        // Wednesday 10:00 in Berlin (CET).
        assert_eq!(
            schedule.state_at(at("2026-01-14T09:00:00Z")),
            OpenState {
                open_now: true,
                next_open_at: None
            }
        );
        // Open is inclusive, close exclusive.
        assert!(schedule.state_at(at("2026-01-14T08:00:00Z")).open_now);
        let closing = schedule.state_at(at("2026-01-14T16:00:00Z"));
        assert!(!closing.open_now);
        assert_eq!(next(closing), "2026-01-15T08:00:00.000Z");
    }

    #[test]
    fn before_opening_the_same_day_opens_later_today() {
        let state = office().state_at(at("2026-01-14T06:30:00Z"));
        assert!(!state.open_now);
        assert_eq!(next(state), "2026-01-14T08:00:00.000Z");
    }

    #[test]
    fn dst_change_days_use_the_offset_of_the_day() {
        let sundays = hours("Europe/Berlin", &[("sun", "09:00", "17:00")])
            .schedule()
            .unwrap();
        // Summer time starts on Sunday 2026-03-29 at 01:00 UTC: 09:00 is CEST that day.
        let spring = sundays.state_at(at("2026-03-28T12:00:00Z"));
        assert_eq!(next(spring), "2026-03-29T07:00:00.000Z");
        // It ends on Sunday 2026-10-25 at 01:00 UTC: 09:00 is CET again.
        let autumn = sundays.state_at(at("2026-10-24T12:00:00Z"));
        assert_eq!(next(autumn), "2026-10-25T08:00:00.000Z");
        // 16:30 local on the autumn Sunday is 15:30 UTC: still open.
        assert!(sundays.state_at(at("2026-10-25T15:30:00Z")).open_now);
        assert!(!sundays.state_at(at("2026-10-25T16:00:00Z")).open_now);
    }

    #[test]
    fn an_interval_across_the_skipped_hour_counts_real_time() {
        // 01:00-04:00 on the spring Sunday is 00:00Z-02:00Z: two real hours.
        let night = hours("Europe/Berlin", &[("sun", "01:00", "04:00")])
            .schedule()
            .unwrap();
        assert!(night.state_at(at("2026-03-29T00:30:00Z")).open_now);
        assert!(night.state_at(at("2026-03-29T01:30:00Z")).open_now);
        assert!(!night.state_at(at("2026-03-29T02:00:00Z")).open_now);
    }

    #[test]
    fn a_week_with_no_hours_is_never_open() {
        let never = hours("Europe/Berlin", &[]).schedule().unwrap();
        assert_eq!(
            never.state_at(at("2026-01-14T09:00:00Z")),
            OpenState {
                open_now: false,
                next_open_at: None
            }
        );
    }

    #[test]
    fn the_same_weekday_next_week_is_found_once_today_is_over() {
        let mondays = hours("UTC", &[("mon", "09:00", "10:00")])
            .schedule()
            .unwrap();
        // Monday 2026-01-19 11:00 UTC: next is the Monday after.
        let state = mondays.state_at(at("2026-01-19T11:00:00Z"));
        assert_eq!(next(state), "2026-01-26T09:00:00.000Z");
    }

    #[test]
    fn an_interval_to_midnight_runs_into_the_next_days_interval() {
        let late = hours(
            "UTC",
            &[("mon", "20:00", "24:00"), ("tue", "00:00", "02:00")],
        )
        .schedule()
        .unwrap();
        assert!(late.state_at(at("2026-01-19T23:59:59Z")).open_now);
        assert!(late.state_at(at("2026-01-20T00:00:00Z")).open_now);
        assert!(!late.state_at(at("2026-01-20T02:00:00Z")).open_now);
    }

    #[test]
    fn bad_hours_are_refused() {
        let bad = [
            hours("Mars/Olympus", &[]),
            hours("", &[]),
            hours(&"a".repeat(65), &[]),
            hours("UTC", &[("monday", "09:00", "17:00")]),
            hours("UTC", &[("Mon", "09:00", "17:00")]),
            hours("UTC", &[("mon", "9:00", "17:00")]),
            hours("UTC", &[("mon", "09:00", "25:00")]),
            hours("UTC", &[("mon", "24:00", "24:00")]),
            hours("UTC", &[("mon", "09:60", "17:00")]),
            hours("UTC", &[("mon", "17:00", "09:00")]),
            hours("UTC", &[("mon", "09:00", "09:00")]),
            hours(
                "UTC",
                &[("mon", "09:00", "12:00"), ("mon", "11:00", "17:00")],
            ),
            hours("UTC", &[("mon", "+9:00", "17:00")]),
            hours("UTC", &vec![("mon", "09:00", "09:01"); 29]),
        ];
        for hours in bad {
            assert!(hours.schedule().is_err(), "{hours:?}");
        }
    }

    #[test]
    fn good_hours_are_sorted_for_storage() {
        let (sorted, _) = hours(
            "America/New_York",
            &[
                ("tue", "13:00", "17:00"),
                ("mon", "09:00", "24:00"),
                ("tue", "09:00", "12:00"),
                ("tue", "12:00", "13:00"),
            ],
        )
        .validate()
        .unwrap();
        let order: Vec<_> = sorted
            .weekly
            .iter()
            .map(|i| format!("{} {}", i.day, i.open))
            .collect();
        assert_eq!(order, ["mon 09:00", "tue 09:00", "tue 12:00", "tue 13:00"]);
    }
}
