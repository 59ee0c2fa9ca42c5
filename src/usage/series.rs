//! `GET /v1/usage/series`: a meter's usage over time from the durable hours, for one
//! customer (its buckets) or for all (the rollups the fold keeps beside them). Hours are
//! merged into days or calendar months (UTC) here, and every step of the range is
//! answered, empty ones as 0, so a chart needs no gaps filled.

use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::store::reads::HourValue;
use crate::store::Store;
use crate::tenants::config::TenantConfig;
use crate::usage::decide::Aggregation;
use crate::usage::period::{hour_bucket, rfc3339};
use crate::usage::quantity::Quantity;

/// Most points one answer holds (a leap year of hours).
pub const MAX_POINTS: i64 = 8_784;
/// The range when none is given: the last 30 days.
const DEFAULT_SPAN_SECS: i64 = 30 * 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    Day,
    Month,
}

/// `?meter=&customer_id=&from=&to=&granularity=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// The meter's key.
    // `slug_schema`'s rules, as attributes: with `schema_with` the parameter would not be
    // documented as required (a test holds the two alike).
    #[param(pattern = "^[a-z0-9][a-z0-9_.-]*$", min_length = 1, max_length = 64)]
    pub meter: String,
    /// One customer; without it, summed over every customer (`max` meters: the largest).
    #[param(schema_with = crate::usage::model::id_schema)]
    pub customer_id: Option<String>,
    /// Start, RFC 3339 (rounded down to its step); default 30 days before `to`. At most
    /// 8,784 steps are answered: an earlier start is moved up to the 8,784th step before
    /// `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// End, RFC 3339, exclusive; default now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// `hour` (default), `day` or `month`, in UTC.
    pub granularity: Option<Granularity>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    /// The step's start, RFC 3339.
    pub start: String,
    pub value: Quantity,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Series {
    pub meter: String,
    pub customer_id: Option<String>,
    pub granularity: Granularity,
    /// The range answered, RFC 3339: `from` rounded down to its step, and moved up when
    /// the range held more than 8,784 steps; `to` exclusive. Empty when `from` is not
    /// before `to`.
    pub from: String,
    pub to: String,
    pub points: Vec<Point>,
}

/// A series request, checked.
pub struct SeriesRequest {
    pub meter: std::sync::Arc<str>,
    pub is_max: bool,
    pub customer_id: Option<String>,
    pub granularity: Granularity,
    pub from: i64,
    pub to: i64,
}

impl SeriesRequest {
    /// Checks `query` against the creator's meters, at `now`.
    pub fn parse(
        query: SeriesQuery,
        config: &TenantConfig,
        now: i64,
    ) -> Result<SeriesRequest, ApiError> {
        let bad = |message: String| ApiError::bad_request("invalid_query", message);
        let meter_key = crate::meters::model::parse_slug("meter", &query.meter)?;
        let meter = config
            .meter_id(&meter_key)
            .map(|id| config.meter(id))
            .ok_or_else(|| {
                ApiError::not_found("meter_not_found", format!("no meter `{meter_key}`"))
            })?;
        if let Some(id) = &query.customer_id {
            crate::usage::model::parse_id("customer_id", std::borrow::Cow::Borrowed(id))?;
        }
        let time = |text: &Option<String>, name: &str| -> Result<Option<i64>, ApiError> {
            text.as_deref()
                .map(|t| {
                    DateTime::parse_from_rfc3339(t)
                        .map(|at| at.timestamp())
                        .map_err(|_| bad(format!("{name} is not an RFC 3339 time")))
                })
                .transpose()
        };
        let granularity = query.granularity.unwrap_or(Granularity::Hour);
        let to = time(&query.to, "to")?.unwrap_or(now);
        let from = step_start(
            granularity,
            time(&query.from, "from")?.unwrap_or(to - DEFAULT_SPAN_SECS),
        );
        // A longer range keeps its last `MAX_POINTS` steps (the answer says where it starts).
        let from = match steps_back(granularity, to, MAX_POINTS) {
            Some(earliest) if earliest > from => earliest,
            _ => from,
        };
        Ok(SeriesRequest {
            meter: meter.key.clone(),
            is_max: meter.aggregation == Aggregation::Max,
            customer_id: query.customer_id,
            granularity,
            from,
            to,
        })
    }

    /// Reads the hours and merges them into the steps.
    pub async fn run(self, store: &Store, creator_id: &str) -> Result<Series, ApiError> {
        let range = (hour_bucket(self.from), self.to);
        let hours = match &self.customer_id {
            Some(customer) => {
                store
                    .customer_hours(creator_id, customer, &self.meter, self.is_max, range)
                    .await?
            }
            None => store.meter_hours(creator_id, &self.meter, range).await?,
        };
        Ok(Series {
            points: merge(self.granularity, self.is_max, self.from, self.to, &hours),
            from: rfc3339(self.from),
            to: rfc3339(self.to),
            meter: self.meter.to_string(),
            customer_id: self.customer_id,
            granularity: self.granularity,
        })
    }
}

/// One point per step of `[from, to)`, each the sum (or the max) of its hours. `hours`
/// come in time order.
pub fn merge(
    granularity: Granularity,
    is_max: bool,
    from: i64,
    to: i64,
    hours: &[HourValue],
) -> Vec<Point> {
    let mut hours = hours.iter().peekable();
    steps(granularity, from, to)
        .map(|(start, end)| {
            let mut value = 0i64;
            while let Some(hour) = hours.next_if(|hour| hour.bucket_start < end) {
                if hour.bucket_start >= start {
                    value = if is_max {
                        value.max(hour.value)
                    } else {
                        value.saturating_add(hour.value)
                    };
                }
            }
            Point {
                start: rfc3339(start),
                value: Quantity::from_micros(value),
            }
        })
        .collect()
}

/// The steps `[start, end)` covering `[from, to)`.
fn steps(granularity: Granularity, from: i64, to: i64) -> impl Iterator<Item = (i64, i64)> {
    let mut start = step_start(granularity, from);
    std::iter::from_fn(move || {
        if start >= to {
            return None;
        }
        let end = next_step(granularity, start);
        let step = (start, end);
        start = end;
        Some(step)
    })
}

/// The start of the step `count` steps before the one holding `at`'s end; `None` when
/// that is before any time we can write.
fn steps_back(granularity: Granularity, to: i64, count: i64) -> Option<i64> {
    let last = step_start(granularity, to - 1);
    match granularity {
        Granularity::Hour => last.checked_sub((count - 1) * 3_600),
        Granularity::Day => last.checked_sub((count - 1) * 86_400),
        Granularity::Month => utc(last)
            .checked_sub_months(Months::new((count - 1) as u32))
            .map(|first| first.timestamp()),
    }
}

/// The start of the step holding `at`.
fn step_start(granularity: Granularity, at: i64) -> i64 {
    match granularity {
        Granularity::Hour => hour_bucket(at),
        Granularity::Day => at.div_euclid(86_400) * 86_400,
        Granularity::Month => {
            let day = utc(at);
            Utc.with_ymd_and_hms(day.year(), day.month(), 1, 0, 0, 0)
                .single()
                .map_or(at, |first| first.timestamp())
        }
    }
}

fn next_step(granularity: Granularity, start: i64) -> i64 {
    match granularity {
        Granularity::Hour => start + 3_600,
        Granularity::Day => start + 86_400,
        Granularity::Month => utc(start)
            .checked_add_months(Months::new(1))
            .map_or(start + 31 * 86_400, |next| next.timestamp()),
    }
}

fn utc(at: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(at, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp()
    }

    fn hour(text: &str, millionths: i64) -> HourValue {
        HourValue {
            bucket_start: at(text),
            value: millionths,
        }
    }

    #[test]
    fn hours_merge_into_calendar_months_with_empty_months_as_zero() {
        let hours = [
            hour("2026-01-31T23:00:00Z", 2_000_000),
            hour("2026-02-01T00:00:00Z", 3_000_000),
            hour("2026-02-28T10:00:00Z", 1_000_000),
        ];
        let from = at("2026-01-15T00:00:00Z");
        let to = at("2026-04-01T00:00:00Z");
        let points = merge(Granularity::Month, false, from, to, &hours);
        let shown: Vec<(String, String)> = points
            .iter()
            .map(|p| (p.start.clone(), p.value.to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                ("2026-01-01T00:00:00Z".to_string(), "2".to_string()),
                ("2026-02-01T00:00:00Z".to_string(), "4".to_string()),
                ("2026-03-01T00:00:00Z".to_string(), "0".to_string()),
            ]
        );
    }

    #[test]
    fn a_range_too_long_keeps_its_last_steps() {
        let to = at("2026-03-01T00:00:00Z");
        let from = steps_back(Granularity::Hour, to, MAX_POINTS).unwrap();
        assert_eq!(
            steps(Granularity::Hour, from, to).count() as i64,
            MAX_POINTS
        );
        let months = steps_back(Granularity::Month, to, 3).unwrap();
        assert_eq!(months, at("2025-12-01T00:00:00Z"));
        assert_eq!(steps(Granularity::Day, to, to).count(), 0, "an empty range");
    }

    #[test]
    fn the_documented_meter_parameter_is_required() {
        let document = serde_json::to_value(crate::openapi::document()).unwrap();
        let parameters = &document["paths"]["/v1/usage/series"]["get"]["parameters"];
        let meter = parameters
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "meter")
            .unwrap();
        assert_eq!(meter["required"], true, "{meter}");
        let slug = serde_json::to_value(crate::meters::model::slug_schema()).unwrap();
        for rule in ["pattern", "minLength", "maxLength"] {
            assert_eq!(meter["schema"][rule], slug[rule], "{rule}");
        }
    }

    #[test]
    fn a_max_meter_keeps_the_largest_hour_of_each_day() {
        let hours = [
            hour("2026-03-01T01:00:00Z", 5),
            hour("2026-03-01T02:00:00Z", 9),
            hour("2026-03-02T02:00:00Z", 4),
        ];
        let points = merge(
            Granularity::Day,
            true,
            at("2026-03-01T00:00:00Z"),
            at("2026-03-03T00:00:00Z"),
            &hours,
        );
        let values: Vec<i64> = points.iter().map(|p| p.value.micros()).collect();
        assert_eq!(values, [9, 4]);
    }
}
