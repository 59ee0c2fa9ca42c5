//! `POST /v1/tiers` bodies: parsed (duplicate keys refused at any depth) and checked as the
//! tenant actor checks them, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staryer::http::body::parse_json;
use staryer::tiers::model::{NewTier, TierDefinition};

fuzz_target!(|data: &[u8]| {
    let Ok(tier) = parse_json::<NewTier>(data) else {
        return;
    };
    if let Err(err) = TierDefinition::parse(
        &tier.name,
        tier.price,
        tier.caps,
        tier.features,
        tier.trial_days,
    ) {
        assert!(err.status.is_client_error(), "{err:?}");
    }
});
