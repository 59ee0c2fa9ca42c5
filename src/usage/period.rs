//! Reset periods: which period contains a timestamp, for each kind of meter reset.
//! Periods are half-open `[start, end)` in Unix seconds, UTC. A `billing_cycle` period is
//! monthly from the customer's tier assignment (the anchor); a day past the end of a
//! shorter month falls on that month's last day (Jan 31 → Feb 28 → Mar 31).

use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reset {
    /// Calendar month, UTC.
    Month,
    /// Calendar day, UTC.
    Day,
    /// Monthly from the customer's tier assignment.
    BillingCycle,
    /// One period forever.
    Never,
}

impl Reset {
    pub fn as_str(self) -> &'static str {
        match self {
            Reset::Month => "month",
            Reset::Day => "day",
            Reset::BillingCycle => "billing_cycle",
            Reset::Never => "never",
        }
    }

    pub fn parse(text: &str) -> Option<Reset> {
        match text {
            "month" => Some(Reset::Month),
            "day" => Some(Reset::Day),
            "billing_cycle" => Some(Reset::BillingCycle),
            "never" => Some(Reset::Never),
            _ => None,
        }
    }
}

/// `[start, end)`; `end` is `None` for a period that never ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: i64,
    pub end: Option<i64>,
}

/// The longest period that ends (a 31-day month), in seconds.
pub const LONGEST_PERIOD_SECS: i64 = 31 * 86_400;

const DAY: i64 = 86_400;

/// The period of `reset` that contains `at`; `anchor` is the billing-cycle anchor.
pub fn period_containing(reset: Reset, at: i64, anchor: i64) -> Period {
    match reset {
        Reset::Never => Period {
            start: 0,
            end: None,
        },
        Reset::Day => {
            let start = at.div_euclid(DAY) * DAY;
            Period {
                start,
                end: Some(start + DAY),
            }
        }
        Reset::Month => {
            let date = utc(at);
            let start = Utc
                .with_ymd_and_hms(date.year(), date.month(), 1, 0, 0, 0)
                .single()
                .unwrap_or(date);
            let end = start + Months::new(1);
            Period {
                start: start.timestamp(),
                end: Some(end.timestamp()),
            }
        }
        Reset::BillingCycle => {
            let anchor_date = utc(anchor);
            let date = utc(at);
            let mut months = (date.year() - anchor_date.year()) * 12 + date.month() as i32
                - anchor_date.month() as i32;
            while cycle_boundary(anchor_date, months) > at {
                months -= 1;
            }
            while cycle_boundary(anchor_date, months + 1) <= at {
                months += 1;
            }
            Period {
                start: cycle_boundary(anchor_date, months),
                end: Some(cycle_boundary(anchor_date, months + 1)),
            }
        }
    }
}

/// The start of the hour containing `at`: the grain of the stored time series.
pub fn hour_bucket(at: i64) -> i64 {
    at.div_euclid(3_600) * 3_600
}

fn utc(at: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(at, 0).unwrap_or_default()
}

/// `anchor + months` (negative goes back), computed from the anchor each time so that a
/// clamped short month does not shift later boundaries.
fn cycle_boundary(anchor: DateTime<Utc>, months: i32) -> i64 {
    let shifted = if months >= 0 {
        anchor.checked_add_months(Months::new(months as u32))
    } else {
        anchor.checked_sub_months(Months::new(months.unsigned_abs()))
    };
    shifted.unwrap_or(anchor).timestamp()
}

/// RFC 3339 text of a Unix time, for answers.
pub fn rfc3339(at: i64) -> String {
    utc(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp()
    }

    #[test]
    fn month_periods_are_calendar_months() {
        let p = period_containing(Reset::Month, t("2026-02-14T10:00:00Z"), 0);
        assert_eq!(p.start, t("2026-02-01T00:00:00Z"));
        assert_eq!(p.end, Some(t("2026-03-01T00:00:00Z")));
        let p = period_containing(Reset::Month, t("2026-12-31T23:59:59Z"), 0);
        assert_eq!(p.end, Some(t("2027-01-01T00:00:00Z")));
    }

    #[test]
    fn day_periods_are_utc_days() {
        let p = period_containing(Reset::Day, t("2026-02-14T23:59:59Z"), 0);
        assert_eq!(p.start, t("2026-02-14T00:00:00Z"));
        assert_eq!(p.end, Some(t("2026-02-15T00:00:00Z")));
    }

    #[test]
    fn billing_cycles_run_monthly_from_the_anchor_and_clamp_short_months() {
        let anchor = t("2026-01-31T12:00:00Z");
        let p = period_containing(Reset::BillingCycle, t("2026-02-27T00:00:00Z"), anchor);
        assert_eq!(p.start, anchor);
        assert_eq!(p.end, Some(t("2026-02-28T12:00:00Z")));
        let p = period_containing(Reset::BillingCycle, t("2026-03-30T00:00:00Z"), anchor);
        assert_eq!(p.start, t("2026-02-28T12:00:00Z"));
        assert_eq!(p.end, Some(t("2026-03-31T12:00:00Z")));
        let p = period_containing(Reset::BillingCycle, t("2026-01-15T00:00:00Z"), anchor);
        assert_eq!(p.end, Some(anchor));
    }

    #[test]
    fn never_is_one_endless_period() {
        let p = period_containing(Reset::Never, t("2026-02-14T10:00:00Z"), 0);
        assert_eq!(
            p,
            Period {
                start: 0,
                end: None
            }
        );
    }
}
