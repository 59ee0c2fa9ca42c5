//! A creator's configuration as one immutable snapshot: meters, tiers and which tier is
//! the default. The hot path loads the current snapshot with one atomic read; the tenant
//! actor, the only writer, builds a new snapshot per change and swaps it in.
//!
//! Meter and tier ids are positions in these lists, and the hot path holds them (a
//! tier's `caps_by_meter`, each customer's counters), so positions never shift while the
//! daemon runs: a deleted meter or tier stays in its list as a tombstone, no longer found
//! by key nor listed, and an event or a snapshot that resolved it earlier still reads a
//! valid entry. The lists are rebuilt from the store, without tombstones, at the next
//! start.

use std::collections::HashMap;
use std::sync::Arc;

use crate::meters::model::{Meter, MeterId};
use crate::tiers::model::{Tier, TierId};

#[derive(Debug, Clone, Default)]
pub struct TenantConfig {
    /// Indexed by `MeterId` (position), append-only; deleted meters stay as tombstones.
    meters: Vec<Arc<Meter>>,
    /// Live meters only.
    meter_ids: HashMap<Arc<str>, MeterId>,
    /// Indexed by `TierId` (position), append-only; deleted tiers stay as tombstones.
    tiers: Vec<Arc<Tier>>,
    /// Live tiers only.
    tier_ids: HashMap<Arc<str>, TierId>,
    pub default_tier: Option<TierId>,
}

impl TenantConfig {
    pub fn meter_id(&self, key: &str) -> Option<MeterId> {
        self.meter_ids.get(key).copied()
    }

    /// The meter at `id`, live or a tombstone.
    pub fn meter(&self, id: MeterId) -> &Arc<Meter> {
        &self.meters[id as usize]
    }

    /// Positions taken, tombstones included: the length of a list indexed by `MeterId`.
    pub fn meter_slots(&self) -> usize {
        self.meters.len()
    }

    pub fn is_live_meter(&self, id: MeterId) -> bool {
        self.meters
            .get(id as usize)
            .is_some_and(|meter| self.meter_ids.get(&meter.key) == Some(&id))
    }

    /// The live meters, in creation order.
    pub fn live_meters(&self) -> impl Iterator<Item = (MeterId, &Arc<Meter>)> {
        (0..self.meters.len() as MeterId)
            .filter(|id| self.is_live_meter(*id))
            .map(|id| (id, self.meter(id)))
    }

    pub fn tier_id(&self, key: &str) -> Option<TierId> {
        self.tier_ids.get(key).copied()
    }

    /// The tier at `id`, live or a tombstone.
    pub fn tier(&self, id: TierId) -> &Arc<Tier> {
        &self.tiers[id as usize]
    }

    /// Positions taken, tombstones included.
    pub fn tier_slots(&self) -> usize {
        self.tiers.len()
    }

    /// The live tiers, in creation order.
    pub fn live_tiers(&self) -> impl Iterator<Item = &Arc<Tier>> {
        self.tiers
            .iter()
            .enumerate()
            .filter(|(id, tier)| self.tier_ids.get(&tier.key) == Some(&(*id as TierId)))
            .map(|(_, tier)| tier)
    }

    /// The tier a customer is on: its own, else the default, else none (nothing capped).
    pub fn effective_tier(&self, assigned: Option<TierId>) -> Option<&Arc<Tier>> {
        assigned.or(self.default_tier).map(|id| self.tier(id))
    }

    pub fn with_meter(&self, meter: Meter) -> TenantConfig {
        let mut next = self.clone();
        next.meter_ids
            .insert(meter.key.clone(), next.meters.len() as MeterId);
        next.meters.push(Arc::new(meter));
        next
    }

    /// Makes the meter a tombstone: no longer found by key, its position kept.
    pub fn without_meter(&self, id: MeterId) -> TenantConfig {
        let mut next = self.clone();
        next.meter_ids.remove(&self.meter(id).key);
        next
    }

    /// Makes the tier a tombstone; a deleted default leaves the creator without one.
    pub fn without_tier(&self, id: TierId) -> TenantConfig {
        let mut next = self.clone();
        next.tier_ids.remove(&self.tier(id).key);
        if next.default_tier == Some(id) {
            next.default_tier = None;
        }
        next
    }

    /// Adds or replaces a tier (by key) and keeps `default_tier` consistent.
    pub fn with_tier(&self, tier: Tier) -> TenantConfig {
        let mut next = self.clone();
        let id = match next.tier_ids.get(&tier.key) {
            Some(id) => *id,
            None => {
                let id = next.tiers.len() as TierId;
                next.tier_ids.insert(tier.key.clone(), id);
                next.tiers.push(Arc::new(tier.clone()));
                id
            }
        };
        if tier.is_default && next.default_tier != Some(id) {
            if let Some(old) = next.default_tier {
                let mut demoted = (*next.tiers[old as usize]).clone();
                demoted.is_default = false;
                next.tiers[old as usize] = Arc::new(demoted);
            }
            next.default_tier = Some(id);
        } else if !tier.is_default && next.default_tier == Some(id) {
            next.default_tier = None;
        }
        next.tiers[id as usize] = Arc::new(tier);
        next
    }
}
