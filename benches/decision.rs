//! The in-process hot path, without HTTP or the store: deciding and counting one event on
//! one counter and across many (10k customers × 3 meters), on one thread and with two
//! threads contending, and a 100-event batch from JSON bytes to decisions.
//!
//! Run: `cargo bench --bench decision`. Numbers go to BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use staryer::http::body::parse_json;
use staryer::meters::model::Meter;
use staryer::tenants::config::TenantConfig;
use staryer::tenants::state::Tenant;
use staryer::tiers::model::{CapSpec, Interval, Price, Tier, TierDefinition};
use staryer::usage::decide::{Aggregation, OnExceed};
use staryer::usage::model::{EventsRequest, RawEventsBody, UsageEvent};
use staryer::usage::period::Reset;
use staryer::usage::quantity::Quantity;

const NOW: i64 = 1_773_576_000;
const METERS: [&str; 3] = ["calls", "tokens", "seats"];
const CUSTOMERS: usize = 10_000;

/// A tenant with three meters and a default tier capping each far above what the bench
/// reaches, so every event is counted (the expensive path).
fn tenant() -> (Tenant, Arc<TenantConfig>) {
    let mut config = TenantConfig::default();
    for (key, aggregation) in
        METERS
            .iter()
            .zip([Aggregation::Count, Aggregation::Sum, Aggregation::Max])
    {
        config = config.with_meter(Meter {
            key: Arc::from(*key),
            name: key.to_string(),
            unit: "units".into(),
            aggregation,
            reset: Reset::Month,
            created_at: NOW,
            serial: 1,
        });
    }
    let caps: BTreeMap<String, CapSpec> = METERS
        .iter()
        .map(|m| {
            (
                m.to_string(),
                CapSpec {
                    limit: Quantity::from_units(1_000_000_000),
                    warn_at: Quantity::from_micros(800_000),
                    on_exceed: OnExceed::Block,
                    overage_price: None,
                },
            )
        })
        .collect();
    let definition = TierDefinition {
        name: "pro".into(),
        price: Price {
            amount: 1000,
            currency: "usd".into(),
            interval: Interval::Month,
        },
        caps,
        features: vec![],
        trial_days: 0,
    };
    let tier = Tier::build(Arc::from("pro"), definition, true, &config, NOW, NOW, 1).unwrap();
    config = config.with_tier(tier);
    let tenant = Tenant::new(Arc::from("cr_bench"), Arc::from("bench"), config);
    let config = tenant.config();
    (tenant, config)
}

fn customer_ids() -> Vec<String> {
    (0..CUSTOMERS).map(|i| format!("customer-{i}")).collect()
}

fn decide_and_count(c: &mut Criterion) {
    let (tenant, config) = tenant();
    let value = Quantity::from_units(1);
    let mut group = c.benchmark_group("decide_and_count");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_counter", |b| {
        b.iter(|| tenant.apply(&config, "customer-0", 1, value, NOW).unwrap())
    });
    let ids = customer_ids();
    for id in &ids {
        for meter in 0..3 {
            tenant.apply(&config, id, meter, value, NOW).unwrap();
        }
    }
    let mut next = 0usize;
    group.bench_function("10k_customers_x_3_meters", |b| {
        b.iter(|| {
            next = next.wrapping_add(7919);
            let id = &ids[next % CUSTOMERS];
            tenant
                .apply(&config, id, (next % 3) as u32, value, NOW)
                .unwrap()
        })
    });
    group.finish();

    // Two threads: one measured, one hammering the same counter (worst contention) or
    // other customers (typical), for the measured thread's whole run.
    let mut group = c.benchmark_group("decide_and_count_two_threads");
    group.throughput(Throughput::Elements(1));
    for (name, other) in [
        ("same_counter", "customer-0"),
        ("other_customers", "customer-1"),
    ] {
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tenant.apply(&config, other, 1, value, NOW).unwrap();
                }
            });
            group.bench_function(name, |b| {
                b.iter(|| tenant.apply(&config, "customer-0", 1, value, NOW).unwrap())
            });
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    group.finish();
}

fn batch_parse_to_decision(c: &mut Criterion) {
    let (tenant, config) = tenant();
    let events: Vec<String> = (0..100)
        .map(|i| {
            format!(
                r#"{{"customer_id":"customer-{}","meter":"{}","value":{}}}"#,
                i * 37 % CUSTOMERS,
                METERS[i % 3],
                i % 5 + 1
            )
        })
        .collect();
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(100));
    group.bench_function("parse_to_decision_100_events", |b| {
        b.iter_batched(
            || body.as_bytes(),
            |bytes| {
                let request = parse_json::<RawEventsBody>(bytes)
                    .unwrap()
                    .into_request()
                    .unwrap();
                let EventsRequest::Batch(raw) = request else {
                    unreachable!("a batch")
                };
                let mut decided = 0;
                for raw in raw {
                    let event = UsageEvent::parse(raw, &config, NOW).unwrap();
                    tenant
                        .apply(
                            &config,
                            &event.customer_id,
                            event.meter,
                            event.value,
                            event.at,
                        )
                        .unwrap();
                    decided += 1;
                }
                decided
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, decide_and_count, batch_parse_to_decision);
criterion_main!(benches);
