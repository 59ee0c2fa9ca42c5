//! The decision table of SPEC "The decision", as one pure function, and the lock-free
//! counter that applies it. A counter admits an event with one compare-and-swap on the
//! value the decision was made against, so under any concurrency a `block` cap is never
//! exceeded: a racing event re-decides against the newer value.

use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

use crate::usage::quantity::{Quantity, SCALE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Add each event's value.
    Sum,
    /// Each event counts 1, whatever its value.
    Count,
    /// The peak value in the period.
    Max,
}

impl Aggregation {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Count => "count",
            Aggregation::Max => "max",
        }
    }

    /// What an event of `value` adds: a `count` meter counts each event as 1.
    pub fn effective_value(self, value: Quantity) -> Quantity {
        match self {
            Aggregation::Count => Quantity::ONE,
            Aggregation::Sum | Aggregation::Max => value,
        }
    }

    pub fn parse(text: &str) -> Option<Aggregation> {
        match text {
            "sum" => Some(Aggregation::Sum),
            "count" => Some(Aggregation::Count),
            "max" => Some(Aggregation::Max),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    /// Refuse (and do not count) what would pass the limit.
    #[default]
    Block,
    /// Count it and flag it as overage.
    Overage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Warn,
    Block,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Warn => "warn",
            Decision::Block => "block",
        }
    }
}

/// A tier's cap on one meter, ready for deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub limit: Quantity,
    /// The warn fraction in millionths (0.8 → 800_000).
    pub warn_at_millionths: i64,
    pub on_exceed: OnExceed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    /// Whether the event is counted.
    pub counted: bool,
    pub overage: bool,
    /// Usage after the event (unchanged when not counted).
    pub used: Quantity,
}

/// A threshold a customer's usage passes, told to the creator's world once per customer,
/// meter, period and kind (`outbox`). Each is a bit, so a counter can remember which it
/// has told in one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// Usage passed the cap's `warn_at`.
    Warning = 1,
    /// Usage reached a `block` cap, or an event was refused by it.
    LimitReached = 2,
    /// Usage passed an `overage` cap.
    OverageStarted = 4,
}

impl Threshold {
    pub const ALL: [Threshold; 3] = [
        Threshold::Warning,
        Threshold::LimitReached,
        Threshold::OverageStarted,
    ];

    pub fn bit(self) -> u8 {
        self as u8
    }
}

/// The thresholds (as bits) an event passed, from the usage it was decided against and its
/// outcome: a handful of comparisons, made only for capped meters.
pub fn thresholds_passed(cap: &Cap, before: Quantity, outcome: &Outcome) -> u8 {
    let mut passed = 0;
    if outcome.counted && within_warn(cap, before) && !within_warn(cap, outcome.used) {
        passed |= Threshold::Warning.bit();
    }
    match cap.on_exceed {
        OnExceed::Block => {
            if !outcome.counted || (before < cap.limit && outcome.used >= cap.limit) {
                passed |= Threshold::LimitReached.bit();
            }
        }
        OnExceed::Overage => {
            if outcome.overage && before <= cap.limit {
                passed |= Threshold::OverageStarted.bit();
            }
        }
    }
    passed
}

/// `used <= warn·limit`, compared exactly in millionths of millionths.
fn within_warn(cap: &Cap, used: Quantity) -> bool {
    i128::from(used.micros()) * i128::from(SCALE)
        <= i128::from(cap.limit.micros()) * i128::from(cap.warn_at_millionths)
}

/// Counting the event would overflow the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterOverflow;

/// The decision for an event of `value` when `used` is already counted.
pub fn decide(
    aggregation: Aggregation,
    cap: Option<&Cap>,
    used: Quantity,
    value: Quantity,
) -> Result<Outcome, CounterOverflow> {
    let after = match aggregation {
        Aggregation::Max => used.max(value),
        Aggregation::Sum | Aggregation::Count => used.checked_add(value).ok_or(CounterOverflow)?,
    };
    let counted = |decision, overage| Outcome {
        decision,
        counted: true,
        overage,
        used: after,
    };
    let Some(cap) = cap else {
        return Ok(counted(Decision::Allow, false));
    };
    if after > cap.limit {
        return Ok(match cap.on_exceed {
            OnExceed::Block => Outcome {
                decision: Decision::Block,
                counted: false,
                overage: false,
                used,
            },
            OnExceed::Overage => counted(Decision::Warn, true),
        });
    }
    Ok(counted(
        if within_warn(cap, after) {
            Decision::Allow
        } else {
            Decision::Warn
        },
        false,
    ))
}

/// One customer's usage of one meter in one period.
#[derive(Debug, Default)]
pub struct Counter(AtomicI64);

impl Counter {
    pub fn new(used: Quantity) -> Self {
        Counter(AtomicI64::new(used.micros()))
    }

    pub fn get(&self) -> Quantity {
        Quantity::from_micros(self.0.load(Ordering::Acquire))
    }

    /// Decides against the current value and, when counted, moves the counter in the same
    /// atomic step; retries if another event moved it first. Returns the outcome and the
    /// value it was decided against.
    pub fn apply(
        &self,
        aggregation: Aggregation,
        cap: Option<&Cap>,
        value: Quantity,
    ) -> Result<(Outcome, Quantity), CounterOverflow> {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let before = Quantity::from_micros(current);
            let outcome = decide(aggregation, cap, before, value)?;
            if !outcome.counted || outcome.used.micros() == current {
                return Ok((outcome, before));
            }
            match self.0.compare_exchange_weak(
                current,
                outcome.used.micros(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok((outcome, before)),
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes back a counted event whose write failed. A sum gives the value back; a max
    /// returns to `before` unless a later event already moved it on.
    pub fn undo(
        &self,
        aggregation: Aggregation,
        value: Quantity,
        before: Quantity,
        after: Quantity,
    ) {
        match aggregation {
            Aggregation::Sum | Aggregation::Count => {
                self.0.fetch_sub(value.micros(), Ordering::AcqRel);
            }
            Aggregation::Max => {
                let _ = self.0.compare_exchange(
                    after.micros(),
                    before.micros(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
        }
    }

    /// Sets a value loaded from the store.
    pub fn load(&self, used: Quantity) {
        self.0.store(used.micros(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(n: i64) -> Quantity {
        Quantity::from_units(n)
    }

    fn cap(limit: i64, on_exceed: OnExceed) -> Cap {
        Cap {
            limit: units(limit),
            warn_at_millionths: 800_000,
            on_exceed,
        }
    }

    #[test]
    fn follows_the_decision_table() {
        let block = cap(10, OnExceed::Block);
        let overage = cap(10, OnExceed::Overage);
        let d = |cap: Option<&Cap>, used, value| {
            decide(Aggregation::Sum, cap, units(used), units(value)).unwrap()
        };
        assert_eq!(d(None, 1_000, 5).decision, Decision::Allow);
        assert_eq!(d(Some(&block), 7, 1).decision, Decision::Allow);
        assert_eq!(d(Some(&block), 7, 1).used, units(8));
        assert_eq!(d(Some(&block), 8, 1).decision, Decision::Warn);
        assert_eq!(d(Some(&block), 9, 1).decision, Decision::Warn);
        let blocked = d(Some(&block), 10, 1);
        assert_eq!(
            (blocked.decision, blocked.counted, blocked.used),
            (Decision::Block, false, units(10))
        );
        let over = d(Some(&overage), 10, 1);
        assert_eq!(
            (over.decision, over.counted, over.overage),
            (Decision::Warn, true, true)
        );
    }

    #[test]
    fn max_meters_compare_the_peak() {
        let block = cap(10, OnExceed::Block);
        let d = |used, value| {
            decide(Aggregation::Max, Some(&block), units(used), units(value)).unwrap()
        };
        assert_eq!(d(9, 3).used, units(9));
        assert_eq!(d(9, 3).decision, Decision::Warn);
        assert_eq!(d(2, 5).decision, Decision::Allow);
        assert_eq!(d(2, 11).decision, Decision::Block);
    }

    #[test]
    fn thresholds_are_passed_once_on_the_way_up() {
        let block = cap(10, OnExceed::Block);
        let overage = cap(10, OnExceed::Overage);
        let passed = |cap: &Cap, used, value| {
            let outcome = decide(Aggregation::Sum, Some(cap), units(used), units(value)).unwrap();
            thresholds_passed(cap, units(used), &outcome)
        };
        let (warning, reached, over) = (
            Threshold::Warning.bit(),
            Threshold::LimitReached.bit(),
            Threshold::OverageStarted.bit(),
        );
        assert_eq!(passed(&block, 7, 1), 0);
        assert_eq!(passed(&block, 8, 1), warning);
        assert_eq!(passed(&block, 9, 1), reached, "reaching the cap exactly");
        assert_eq!(passed(&block, 10, 1), reached, "refused by the cap");
        assert_eq!(passed(&block, 2, 20), reached, "refused, usage unmoved");
        assert_eq!(passed(&overage, 9, 1), 0);
        assert_eq!(passed(&overage, 10, 1), over);
        assert_eq!(passed(&overage, 11, 1), 0, "already over");
        assert_eq!(passed(&overage, 0, 20), warning | over, "both in one event");
    }

    #[test]
    fn counters_refuse_to_overflow() {
        let c = Counter::new(Quantity::from_micros(i64::MAX - 1));
        assert_eq!(
            c.apply(Aggregation::Sum, None, units(1)),
            Err(CounterOverflow)
        );
    }
}
