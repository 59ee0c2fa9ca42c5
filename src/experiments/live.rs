//! A running (or finished) experiment in memory: who has seen which variant, who has
//! converted, and the tallies the results are computed from. The widget's hot path reads
//! and claims here without a database round trip; what it claims for the first time is
//! committed by the group commit before the widget is answered, and taken back if the
//! commit fails, so the tallies always equal what the store holds.
//!
//! A visitor is counted once per experiment. When a widget shows a customer (customer
//! token) and passes the browser's visitor id along, the two identities share one
//! assignment: whichever was seen first decides the variant and is the one counted, and
//! the other is recorded as an alias of it (`counted_as`), so signing in neither moves a
//! visitor to another variant nor counts it twice.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::experiments::assign;
use crate::experiments::model::{
    ExperimentView, Goal, Results, Status, Variant, VariantResult, READY_VISITORS, SRM_ALERT_BELOW,
};
use crate::experiments::stats::{self, Arm};
use crate::hashing::FastHash;
use crate::store::{ConversionWrite, ExposureWrite};
use crate::usage::period::rfc3339;

#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    pub status: Status,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
}

/// One identity's assignment.
#[derive(Debug, Clone)]
pub struct Seen {
    pub variant: usize,
    /// The identity counted among the variant's visitors (itself, or the one it aliases).
    pub counted_as: Arc<str>,
}

#[derive(Debug, Default)]
struct Tally {
    visitors: AtomicU64,
    conversions: AtomicU64,
    revenue: AtomicI64,
}

pub struct LiveExperiment {
    pub creator_id: Arc<str>,
    pub key: Arc<str>,
    pub embed: Arc<str>,
    pub variants: Vec<Variant>,
    /// Variant keys, shared by every exposure and conversion written.
    variant_keys: Vec<Arc<str>>,
    weights: Vec<f64>,
    pub goal: Goal,
    pub created_at: i64,
    lifecycle: ArcSwap<Lifecycle>,
    seen: DashMap<Arc<str>, Seen, FastHash>,
    /// Counted identities that converted, with how many conversions each (a visitor
    /// counts toward `conversions` while it has at least one).
    converted: DashMap<Arc<str>, u32, FastHash>,
    /// Conversion sources counted (Checkout Session ids, conversion ids).
    sources: DashMap<Arc<str>, (), FastHash>,
    tallies: Vec<Tally>,
}

/// What showing the experiment to one visitor claimed: its variant, and the rows to
/// commit when it was seen for the first time.
pub struct Exposure {
    pub variant: usize,
    pub writes: Vec<ExposureWrite>,
}

/// What counting one conversion claimed.
pub struct Conversion {
    pub variant: usize,
    /// `None`: the source was counted before; nothing to write.
    pub write: Option<ConversionWrite>,
}

impl LiveExperiment {
    pub fn new(
        creator_id: Arc<str>,
        key: Arc<str>,
        embed: Arc<str>,
        variants: Vec<Variant>,
        goal: Goal,
        created_at: i64,
        lifecycle: Lifecycle,
    ) -> Self {
        LiveExperiment {
            creator_id,
            variant_keys: variants.iter().map(|v| Arc::from(v.key.as_str())).collect(),
            weights: variants.iter().map(|v| v.weight).collect(),
            tallies: variants.iter().map(|_| Tally::default()).collect(),
            key,
            embed,
            variants,
            goal,
            created_at,
            lifecycle: ArcSwap::from_pointee(lifecycle),
            seen: DashMap::default(),
            converted: DashMap::default(),
            sources: DashMap::default(),
        }
    }

    pub fn lifecycle(&self) -> Lifecycle {
        **self.lifecycle.load()
    }

    pub fn set_lifecycle(&self, lifecycle: Lifecycle) {
        self.lifecycle.store(Arc::new(lifecycle));
    }

    pub fn variant_index(&self, key: &str) -> Option<usize> {
        self.variants.iter().position(|v| v.key == key)
    }

    /// The variant an identity gets, by the experiment's hash.
    fn assigned(&self, identity: &str) -> usize {
        // The hash takes the id without its `v:`/`c:` kind, as the visitor knows it.
        let id = identity.get(2..).unwrap_or(identity);
        assign::choose(assign::point(&self.key, id), &self.weights)
    }

    /// Shows the experiment to `primary` (the customer when there is one, else the
    /// visitor), with `also` the browser's visitor id when both are known. Answers the
    /// variant and, for identities seen for the first time, the rows to commit; the
    /// tallies already count them (`forget` takes them back).
    pub fn expose(&self, primary: &Arc<str>, also: Option<&Arc<str>>, now: i64) -> Exposure {
        let known = self
            .seen
            .get(primary)
            .map(|seen| seen.clone())
            .or_else(|| also.and_then(|other| self.seen.get(other).map(|s| s.clone())));
        let mut writes = Vec::new();
        let seen = match known {
            Some(seen) => seen,
            None => {
                let fresh = Seen {
                    variant: self.assigned(primary),
                    counted_as: primary.clone(),
                };
                // The other identity first, as an alias of the new one: a request that
                // shows it alone meanwhile then finds it taken, rather than counting it
                // as a second visitor; if such a request took it first, its assignment
                // stands for both.
                let standing = match also {
                    Some(other) => self.claim(other, fresh.clone(), now, &mut writes),
                    None => fresh,
                };
                self.claim(primary, standing, now, &mut writes)
            }
        };
        // Whichever identity is not yet known becomes an alias of the counted one.
        for identity in std::iter::once(primary).chain(also) {
            if !self.seen.contains_key(identity) {
                self.claim(identity, seen.clone(), now, &mut writes);
            }
        }
        Exposure {
            variant: seen.variant,
            writes,
        }
    }

    /// Records `identity` as `seen` unless another request got there first; answers the
    /// assignment that stands.
    fn claim(
        &self,
        identity: &Arc<str>,
        seen: Seen,
        now: i64,
        writes: &mut Vec<ExposureWrite>,
    ) -> Seen {
        match self.seen.entry(identity.clone()) {
            Entry::Occupied(taken) => taken.get().clone(),
            Entry::Vacant(slot) => {
                if seen.counted_as == *identity {
                    self.tallies[seen.variant]
                        .visitors
                        .fetch_add(1, Ordering::Relaxed);
                }
                writes.push(ExposureWrite {
                    creator_id: self.creator_id.clone(),
                    experiment_key: self.key.clone(),
                    visitor: identity.clone(),
                    variant: self.variant_keys[seen.variant].clone(),
                    counted_as: seen.counted_as.clone(),
                    exposed_at: now,
                });
                slot.insert(seen.clone());
                seen
            }
        }
    }

    /// Takes back exposures whose commit failed: the visitor is counted at its next view.
    pub fn forget(&self, writes: &[ExposureWrite]) {
        for write in writes {
            if let Some((identity, seen)) = self.seen.remove(&write.visitor) {
                if seen.counted_as == identity {
                    self.tallies[seen.variant]
                        .visitors
                        .fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Loads one stored exposure (start-up).
    pub fn load_exposure(&self, visitor: &str, variant: &str, counted_as: &str) {
        let Some(variant) = self.variant_index(variant) else {
            return;
        };
        let visitor: Arc<str> = Arc::from(visitor);
        let counted_as: Arc<str> = if counted_as == &*visitor {
            visitor.clone()
        } else {
            Arc::from(counted_as)
        };
        if counted_as == visitor {
            self.tallies[variant]
                .visitors
                .fetch_add(1, Ordering::Relaxed);
        }
        self.seen.insert(
            visitor,
            Seen {
                variant,
                counted_as,
            },
        );
    }

    /// The assignment of an identity seen before.
    pub fn seen(&self, identity: &str) -> Option<Seen> {
        self.seen.get(identity).map(|seen| seen.clone())
    }

    /// Counts a conversion of `seen` from `source` (once per source); the rate counts a
    /// visitor once however often it converts, the revenue counts every conversion.
    pub fn convert(&self, seen: &Seen, source: Arc<str>, revenue: i64, now: i64) -> Conversion {
        if self.sources.insert(source.clone(), ()).is_some() {
            return Conversion {
                variant: seen.variant,
                write: None,
            };
        }
        let tally = &self.tallies[seen.variant];
        let first_for_visitor = {
            let mut count = self.converted.entry(seen.counted_as.clone()).or_insert(0);
            *count += 1;
            *count == 1
        };
        if first_for_visitor {
            tally.conversions.fetch_add(1, Ordering::Relaxed);
        }
        tally.revenue.fetch_add(revenue, Ordering::Relaxed);
        Conversion {
            variant: seen.variant,
            write: Some(ConversionWrite {
                creator_id: self.creator_id.clone(),
                experiment_key: self.key.clone(),
                source,
                visitor: seen.counted_as.clone(),
                variant: self.variant_keys[seen.variant].clone(),
                revenue,
                converted_at: now,
            }),
        }
    }

    /// Takes back a conversion whose commit failed.
    pub fn unconvert(&self, conversion: &Conversion) {
        let Some(write) = &conversion.write else {
            return;
        };
        let tally = &self.tallies[conversion.variant];
        self.sources.remove(&write.source);
        // The visitor leaves `conversions` when its last conversion goes, whichever that is.
        let last_for_visitor = match self.converted.entry(write.visitor.clone()) {
            Entry::Occupied(mut count) => {
                *count.get_mut() -= 1;
                let last = *count.get() == 0;
                if last {
                    count.remove();
                }
                last
            }
            Entry::Vacant(_) => false,
        };
        if last_for_visitor {
            tally.conversions.fetch_sub(1, Ordering::Relaxed);
        }
        tally.revenue.fetch_sub(write.revenue, Ordering::Relaxed);
    }

    /// Names an identity anew (an erased customer's `c:<id>` becomes `c:<reference>`), as
    /// the erase rewrites its stored exposures and conversions: the counts stay, and the
    /// id leaves memory.
    /// When `to` is known already (the same id, erased before), its exposure stands and
    /// `from`'s is dropped, as the erase drops its row.
    pub fn rename_identity(&self, from: &str, to: &Arc<str>) {
        if let Some((_, mut seen)) = self.seen.remove(from) {
            let counted_itself = &*seen.counted_as == from;
            if self.seen.contains_key(to) {
                if counted_itself {
                    self.tallies[seen.variant]
                        .visitors
                        .fetch_sub(1, Ordering::Relaxed);
                }
            } else {
                if counted_itself {
                    seen.counted_as = to.clone();
                }
                self.seen.insert(to.clone(), seen);
            }
        }
        for mut alias in self.seen.iter_mut() {
            if &*alias.counted_as == from {
                alias.counted_as = to.clone();
            }
        }
        if let Some((_, count)) = self.converted.remove(from) {
            *self.converted.entry(to.clone()).or_insert(0) += count;
        }
    }

    /// Loads one stored conversion (start-up).
    pub fn load_conversion(&self, source: &str, visitor: &str, variant: &str, revenue: i64) {
        let Some(variant) = self.variant_index(variant) else {
            return;
        };
        let seen = Seen {
            variant,
            counted_as: Arc::from(visitor),
        };
        self.convert(&seen, Arc::from(source), revenue, 0);
    }

    pub fn view(&self) -> ExperimentView {
        let lifecycle = self.lifecycle();
        ExperimentView {
            key: self.key.to_string(),
            embed: self.embed.to_string(),
            variants: self.variants.clone(),
            goal: self.goal.as_str().to_string(),
            status: lifecycle.status,
            created_at: rfc3339(self.created_at),
            started_at: lifecycle.started_at.map(rfc3339),
            stopped_at: lifecycle.stopped_at.map(rfc3339),
        }
    }

    /// The results as the SPEC defines them, from the tallies.
    pub fn results(&self) -> Results {
        let arms: Vec<(Arm, i64)> = self
            .tallies
            .iter()
            .map(|tally| {
                (
                    Arm {
                        visitors: tally.visitors.load(Ordering::Relaxed),
                        conversions: tally.conversions.load(Ordering::Relaxed),
                    },
                    tally.revenue.load(Ordering::Relaxed),
                )
            })
            .collect();
        let control = arms[0].0;
        let per_visitor = |amount: f64, visitors: u64| {
            if visitors == 0 {
                0.0
            } else {
                amount / visitors as f64
            }
        };
        let variants = self
            .variants
            .iter()
            .zip(&arms)
            .enumerate()
            .map(|(index, (variant, (arm, revenue)))| VariantResult {
                key: variant.key.clone(),
                visitors: arm.visitors,
                conversions: arm.conversions,
                conversion_rate: per_visitor(arm.conversions as f64, arm.visitors),
                revenue: *revenue,
                revenue_per_visitor: per_visitor(*revenue as f64, arm.visitors),
                chance_to_beat_control: (index > 0)
                    .then(|| stats::chance_to_beat_control(control, *arm)),
                p_value: if index > 0 {
                    stats::p_value(control, *arm)
                } else {
                    None
                },
            })
            .collect();
        let visitors: Vec<u64> = arms.iter().map(|(arm, _)| arm.visitors).collect();
        let srm_p_value = stats::srm_p_value(&visitors, &self.weights);
        Results {
            status: self.lifecycle().status,
            variants,
            srm_p_value,
            srm_alert: srm_p_value < SRM_ALERT_BELOW,
            ready: visitors.iter().all(|&n| n >= READY_VISITORS),
        }
    }
}
