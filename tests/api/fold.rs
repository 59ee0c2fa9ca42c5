//! The commit log's fold: a record is folded exactly once, whatever folds beside it. Two
//! stores on one database (as two daemons in a rolling deploy, or a shutdown fold racing a
//! start-up fold) fold the same log at once; the buckets hold every record once. A record
//! of a meter deleted since it was committed lands on no meter, not even on one made since
//! with the same key.

use std::sync::Arc;
use std::time::Duration;

use staryer::store::{BucketWrite, CreatorRow, FlushJob, KeyWrite, MeterRow, Store};

use crate::helpers::Backend;
use crate::on_both_databases;

on_both_databases!(
    two_folds_racing_on_one_log_fold_each_record_once,
    a_record_of_a_deleted_meter_lands_on_no_meter_made_since,
);

const RECORDS: i64 = 600;
const CREATOR: &str = "cr_fold";

async fn open_store(url: &str) -> Store {
    Store::connect(url, 4, Duration::from_secs(5))
        .await
        .expect("the store connects")
}

/// The creator and its meter `calls` (serial 0, as the records carry).
async fn with_meter(store: &Store) {
    let creator = CreatorRow {
        id: CREATOR.into(),
        slug: "fold".into(),
        name: "fold".into(),
        custom_domain: None,
        branding: "{}".into(),
        stripe_account_id: None,
        rate_limit_per_second: None,
        rate_limit_burst: None,
        created_at: 0,
        allowed_origins: "[]".into(),
        portal_hidden_meters: "[]".into(),
    };
    store.insert_creator(&creator, &[], &[]).await.unwrap();
    store
        .insert_meter(CREATOR, &meter(0), &audited())
        .await
        .unwrap();
}

fn meter(serial: i64) -> MeterRow {
    MeterRow {
        key: "calls".into(),
        name: "calls".into(),
        unit: "units".into(),
        aggregation: "sum".into(),
        reset: "never".into(),
        created_at: 0,
        serial,
    }
}

async fn store_at(backend: &Backend, data_dir: &tempfile::TempDir) -> String {
    match backend.fresh_database().await {
        url if url.is_empty() => format!(
            "sqlite://{}?mode=rwc",
            data_dir.path().join("staryer.db").display()
        ),
        url => url,
    }
}

/// One record: one millionth-scaled unit for customer `c<n % 7>`, and a key.
fn record(n: i64) -> FlushJob {
    FlushJob {
        buckets: vec![BucketWrite {
            creator_id: Arc::from(CREATOR),
            customer_id: Arc::from(format!("c{}", n % 7)),
            meter_key: Arc::from("calls"),
            meter_serial: 0,
            period_start: 1_000,
            bucket_start: 3_600 * (n % 3),
            value: 1_000_000,
            is_max: false,
        }],
        keys: vec![KeyWrite {
            creator_id: Arc::from(CREATOR),
            key: Arc::from(format!("k{n}")),
            result: Arc::from("{}"),
            created_at: 1_000,
        }],
        ..FlushJob::default()
    }
}

async fn two_folds_racing_on_one_log_fold_each_record_once(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let url = store_at(&backend, &data_dir).await;
    let first = open_store(&url).await;
    let second = open_store(&url).await;
    with_meter(&first).await;
    // Rounds of appends, each followed by both stores folding at once.
    for round in 0..3 {
        for n in 0..RECORDS {
            first
                .append_log(&record(round * RECORDS + n))
                .await
                .unwrap();
        }
        let (a, b) = tokio::join!(first.fold_all(), second.fold_all());
        a.unwrap();
        b.unwrap();
    }
    let totals = first.load_period_totals(CREATOR, 0).await.unwrap();
    let sum: i64 = totals.iter().map(|row| row.total).sum();
    assert_eq!(sum, 3 * RECORDS * 1_000_000, "totals: {totals:?}");
    let keys = first.load_idempotency_keys(CREATOR, 0).await.unwrap();
    assert_eq!(keys.len() as i64, 3 * RECORDS);
    assert_eq!(first.fold_log().await.unwrap(), 0, "the log is empty");
}

async fn a_record_of_a_deleted_meter_lands_on_no_meter_made_since(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let store = open_store(&store_at(&backend, &data_dir).await).await;
    with_meter(&store).await;
    store.append_log(&record(0)).await.unwrap();
    store.fold_all().await.unwrap();
    // Committed for the meter (serial 0), not folded before it is deleted and made again.
    store.append_log(&record(1)).await.unwrap();
    assert!(store
        .delete_meter(CREATOR, "calls", 0, &audited())
        .await
        .unwrap());
    assert!(store
        .load_period_totals(CREATOR, 0)
        .await
        .unwrap()
        .is_empty());
    store
        .insert_meter(CREATOR, &meter(42), &audited())
        .await
        .unwrap();
    store.fold_all().await.unwrap();
    assert!(
        store
            .load_period_totals(CREATOR, 0)
            .await
            .unwrap()
            .is_empty(),
        "the old meter's record went nowhere"
    );
    // The new meter's own records land.
    let mut new = record(2);
    new.buckets[0].meter_serial = 42;
    store.append_log(&new).await.unwrap();
    store.fold_all().await.unwrap();
    let totals = store.load_period_totals(CREATOR, 0).await.unwrap();
    assert_eq!(totals.iter().map(|t| t.total).sum::<i64>(), 1_000_000);
    // Its idempotency keys were kept (they name requests, not meters).
    assert_eq!(
        store.load_idempotency_keys(CREATOR, 0).await.unwrap().len(),
        3
    );
}

/// The audit record the store writes with a change.
fn audited() -> staryer::store::audit::AuditEntry {
    staryer::audit::model::Who::system("test").change(CREATOR, 0, "meter", "change", "calls")
}
