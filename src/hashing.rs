//! The hasher of the daemon's hot in-memory maps (tenants' customers and keys, the group
//! commit's merge).

/// foldhash, seeded per process, several times cheaper than the default SipHash on short
/// ids (SipHash was 3.5 % of the CPU under batch load). Keys come from authenticated
/// creators only.
pub type FastHash = foldhash::fast::RandomState;
