//! The commit log's fold: a record is folded exactly once, whatever folds beside it. Two
//! stores on one database (as two daemons in a rolling deploy, or a shutdown fold racing a
//! start-up fold) fold the same log at once; the buckets hold every record once.

use std::sync::Arc;
use std::time::Duration;

use staryer::store::{BucketWrite, FlushJob, KeyWrite, Store};

use crate::helpers::Backend;
use crate::on_both_databases;

on_both_databases!(two_folds_racing_on_one_log_fold_each_record_once);

const RECORDS: i64 = 600;
const CREATOR: &str = "cr_fold";

async fn open_store(url: &str) -> Store {
    Store::connect(url, 4, Duration::from_secs(5))
        .await
        .expect("the store connects")
}

/// One record: one millionth-scaled unit for customer `c<n % 7>`, and a key.
fn record(n: i64) -> FlushJob {
    FlushJob {
        buckets: vec![BucketWrite {
            creator_id: Arc::from(CREATOR),
            customer_id: Arc::from(format!("c{}", n % 7)),
            meter_key: Arc::from("calls"),
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
    }
}

async fn two_folds_racing_on_one_log_fold_each_record_once(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let url = match backend.fresh_database().await {
        url if url.is_empty() => format!(
            "sqlite://{}?mode=rwc",
            data_dir.path().join("staryer.db").display()
        ),
        url => url,
    };
    let first = open_store(&url).await;
    let second = open_store(&url).await;
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
