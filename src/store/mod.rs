//! The durable store: one `Store` over SQLite or PostgreSQL, chosen by URL. It owns every
//! SQL statement in the daemon. Every method that touches a creator's rows takes the
//! creator id first, so no caller can read another creator's rows by accident.
//!
//! Both databases go through sqlx's `Any` driver with the same SQL, written with `$n`
//! placeholders (which both accept, numbered in order of appearance); the one dialect
//! difference is the two-argument maximum (`MAX` vs `GREATEST`).

pub mod audit;
pub mod billing;
pub mod embeds;
pub mod flusher;
pub mod health;
pub mod outbox;
pub mod people;
pub mod privacy;
pub mod reads;
pub mod retention;
pub mod writer_hold;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Row};

pub use flusher::{
    ActivityWrite, BucketWrite, ConversionWrite, ExposureWrite, FlushHandle, FlushJob, KeyWrite,
};

use audit::AuditEntry;
use flusher::MergedWrites;

pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;
pub use health::StoreHealth;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// What a conflict on a creator's custom domain names (`creators::service` answers it as
/// `domain_taken`).
pub const DOMAIN_TAKEN: &str = "a creator with this custom_domain";

/// The columns of `CreatorRow`.
const CREATOR_COLUMNS: &str = "id, slug, name, custom_domain, branding, stripe_account_id, \
     rate_limit_per_second, rate_limit_burst, created_at, allowed_origins, portal_hidden_meters";

/// The columns of `CustomerRow`.
const CUSTOMER_COLUMNS: &str = "id, tier_key, assigned_at, email, stripe_customer_id";

/// Rows per multi-row statement: at most 15 binds a row (usage reports) stays far below
/// both databases' limits (32,766 on SQLite, 65,535 on PostgreSQL).
const ROWS_PER_STATEMENT: usize = 500;
/// Log records folded in one transaction (one record is one group commit, up to a few
/// hundred KiB): bounds the memory and the write-lock time of one fold.
const RECORDS_PER_FOLD: i64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take the request now (down, locked, timed out); retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique key is taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
}

impl StoreError {
    fn from_sqlx(err: sqlx::Error, what: &'static str) -> Self {
        if let Some(db) = err.as_database_error() {
            if db.is_unique_violation() {
                return StoreError::Conflict(what);
            }
        }
        StoreError::Unavailable(err.to_string())
    }
}

fn unavailable(err: sqlx::Error) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// To open a connection outside the pool, whose error says why the pool has none.
    options: AnyConnectOptions,
    dialect: Dialect,
    write_timeout: Duration,
    fold_lock: Arc<tokio::sync::Mutex<()>>,
}

// --- rows -------------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CreatorRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub custom_domain: Option<String>,
    pub branding: String,
    pub stripe_account_id: Option<String>,
    pub rate_limit_per_second: Option<i64>,
    pub rate_limit_burst: Option<i64>,
    pub created_at: i64,
    /// JSON array of the origins embeds may be called from; empty: any.
    pub allowed_origins: String,
    /// JSON array of the meter keys the customer portal does not show.
    pub portal_hidden_meters: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    /// `key_…`: how the API and the audit log name the key.
    pub id: String,
    pub key_hash: String,
    pub creator_id: String,
    pub kind: String,
    pub name: String,
    /// The key's first characters, to tell keys apart without revealing them.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// A rolled publishable key answers until then.
    pub expires_at: Option<i64>,
}

const KEY_COLUMNS: &str = "id, key_hash, creator_id, kind, name, prefix, created_at, \
     last_used_at, revoked_at, expires_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MeterRow {
    pub key: String,
    pub name: String,
    pub unit: String,
    pub aggregation: String,
    pub reset: String,
    pub created_at: i64,
    pub serial: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TierRow {
    pub key: String,
    pub definition: String,
    /// 1 for the creator's default tier, else 0.
    pub is_default: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub serial: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: String,
    pub tier_key: Option<String>,
    pub assigned_at: i64,
    pub email: Option<String>,
    pub stripe_customer_id: Option<String>,
}

/// One period's total for one customer and meter, as sum and as max of its buckets.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PeriodTotalRow {
    pub customer_id: String,
    pub meter_key: String,
    pub period_start: i64,
    pub total: i64,
    pub peak: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyResultRow {
    pub key: String,
    pub result: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct PlatformCounts {
    pub creators: i64,
    pub customers: i64,
    pub meters: i64,
    pub tiers: i64,
}

impl Store {
    /// Connects, applies pragmas and runs this database's migrations.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        write_timeout: Duration,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        };
        let options: AnyConnectOptions = url.parse().map_err(unavailable)?;
        // Migrations run on a connection of their own, without the write timeout: a
        // migration of a big table may take far longer than one write, and must not be
        // cut off halfway (nor fail a start on a busy machine).
        let mut migrating = sqlx::AnyConnection::connect_with(&options)
            .await
            .map_err(unavailable)?;
        if dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA busy_timeout = 60000")
                .execute(&mut migrating)
                .await
                .map_err(unavailable)?;
        }
        let migrator = match dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&mut migrating)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrations failed: {e}")))?;
        migrating.close().await.map_err(unavailable)?;
        let timeout_ms = write_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(write_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    let pragmas = match dialect {
                        // WAL with NORMAL sync survives a killed process (the contract);
                        // the busy timeout turns a locked file into an error, not a hang.
                        Dialect::Sqlite => vec![
                            "PRAGMA journal_mode = WAL".to_string(),
                            "PRAGMA synchronous = NORMAL".to_string(),
                            "PRAGMA foreign_keys = ON".to_string(),
                            // The hourly buckets are read back by every upsert: keep them
                            // in memory rather than re-reading pages (64 MiB cache, mmap).
                            "PRAGMA cache_size = -65536".to_string(),
                            "PRAGMA mmap_size = 268435456".to_string(),
                            format!("PRAGMA busy_timeout = {timeout_ms}"),
                        ],
                        Dialect::Postgres => {
                            vec![format!("SET statement_timeout = {timeout_ms}")]
                        }
                    };
                    for pragma in pragmas {
                        sqlx::query(&pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        Ok(Store {
            pool,
            options,
            dialect,
            write_timeout,
            fold_lock: Arc::default(),
        })
    }

    /// The databases enforce `write_timeout` themselves (SQLite's busy timeout,
    /// PostgreSQL's statement timeout) and answer with an error; this later deadline only
    /// catches a connection that stopped answering at all.
    fn backstop_timeout(&self) -> Duration {
        self.write_timeout * 2
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The maximum of its arguments (not the aggregate): the one dialect difference.
    fn max_fn(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "MAX",
            Dialect::Postgres => "GREATEST",
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the store would take a write now, bounded by the write timeout: a write
    /// that touches no row still takes the write lock (a locked SQLite file still reads).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM idempotency_keys WHERE 1 = 0")
                .execute(&mut *tx)
                .await?;
            tx.rollback().await
        };
        match tokio::time::timeout(self.backstop_timeout(), ping).await {
            Ok(Err(sqlx::Error::PoolTimedOut)) => Err(self.why_no_connection().await),
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable("ping timed out".into())),
        }
    }

    /// The pool only says it timed out; a connection of our own says why (connection
    /// refused, authentication failed, too many clients, …).
    async fn why_no_connection(&self) -> StoreError {
        use sqlx::{ConnectOptions, Connection};
        let attempt = tokio::time::timeout(self.write_timeout, self.options.connect()).await;
        StoreError::Unavailable(match attempt {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                "no pooled connection came free in time (a new one connects)".into()
            }
            Ok(Err(err)) => format!("cannot connect: {err}"),
            Err(_) => "cannot connect: no answer within database.write_timeout_ms".into(),
        })
    }

    // --- creators and keys ----------------------------------------------------------------

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`): one that reads before it writes would otherwise fail at its first
    /// write whenever another write landed in between (`SQLITE_BUSY`, without waiting).
    pub(crate) async fn begin_write(&self) -> Result<Tx, StoreError> {
        let begin = match self.dialect {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.pool.begin_with(begin).await.map_err(unavailable)
    }

    /// A transaction for one creator's work. On PostgreSQL it runs as the role
    /// `staryer_tenant` with `staryer.creator_id` set, until it ends: row-level security
    /// then shows and takes only that creator's rows, whatever a statement forgets to
    /// filter (migration 0008). One round trip more than a plain `BEGIN`; SQLite has no
    /// roles, and its transaction is a plain one.
    pub async fn begin_tenant(&self, creator_id: &str) -> Result<Tx, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.dialect == Dialect::Postgres {
            // The search path first, while `$user` in it still means the daemon's role.
            sqlx::query(
                "SELECT set_config('search_path', quote_ident(current_schema()), true), \
                 set_config('role', 'staryer_tenant', true), \
                 set_config('staryer.creator_id', $1, true)",
            )
            .bind(creator_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        Ok(tx)
    }

    pub async fn insert_creator(
        &self,
        creator: &CreatorRow,
        keys: &[KeyRow],
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO creators (id, slug, name, custom_domain, branding, stripe_account_id, \
             rate_limit_per_second, rate_limit_burst, created_at, allowed_origins) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&creator.id)
        .bind(&creator.slug)
        .bind(&creator.name)
        .bind(&creator.custom_domain)
        .bind(&creator.branding)
        .bind(&creator.stripe_account_id)
        .bind(creator.rate_limit_per_second)
        .bind(creator.rate_limit_burst)
        .bind(creator.created_at)
        .bind(&creator.allowed_origins)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            // SQLite names the column, PostgreSQL the index.
            let on_domain = e.as_database_error().is_some_and(|db| {
                db.message().contains("custom_domain") || db.message().contains("by_domain")
            });
            let what = if on_domain {
                DOMAIN_TAKEN
            } else {
                "a creator with this slug"
            };
            StoreError::from_sqlx(e, what)
        })?;
        Self::insert_keys(&mut tx, keys)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn insert_keys(tx: &mut Tx, keys: &[KeyRow]) -> Result<(), sqlx::Error> {
        for key in keys {
            sqlx::query(
                "INSERT INTO api_keys (id, key_hash, creator_id, kind, name, prefix, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&key.id)
            .bind(&key.key_hash)
            .bind(&key.creator_id)
            .bind(&key.kind)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(key.created_at)
            .bind(key.expires_at)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Adds keys to a creator (a new secret key, a key minted by the admin).
    pub async fn add_keys(&self, keys: &[KeyRow], audit: &[AuditEntry]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        Self::insert_keys(&mut tx, keys)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// Every key of a creator, revoked ones included, oldest first.
    pub async fn creator_keys(&self, creator_id: &str) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE creator_id = $1 ORDER BY created_at, id"
        );
        sqlx::query_as(&sql)
            .bind(creator_id)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    /// Revokes a live key; `None` when the creator has no such live key. The last live
    /// secret key is not revoked (`Err(Conflict)`): a creator would lock itself out.
    pub async fn revoke_key(
        &self,
        creator_id: &str,
        key_id: &str,
        now: i64,
        audit: impl FnOnce(&KeyRow) -> AuditEntry,
    ) -> Result<Option<KeyRow>, StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        if self.dialect == Dialect::Postgres {
            // Two revokes of a creator's last two secret keys must not both see one left:
            // they take turns on the creator's row (SQLite has one writer anyway).
            sqlx::query("SELECT id FROM creators WHERE id = $1 FOR UPDATE")
                .bind(creator_id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        let sql = format!(
            "UPDATE api_keys SET revoked_at = $1 WHERE creator_id = $2 AND id = $3 \
             AND revoked_at IS NULL RETURNING {KEY_COLUMNS}"
        );
        let revoked: Option<KeyRow> = sqlx::query_as(&sql)
            .bind(now)
            .bind(creator_id)
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        let Some(revoked) = revoked else {
            return Ok(None);
        };
        let secrets_left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_keys WHERE creator_id = $1 AND kind = 'secret' \
             AND revoked_at IS NULL",
        )
        .bind(creator_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        if revoked.kind == "secret" && secrets_left == 0 {
            return Err(StoreError::Conflict("the last secret key"));
        }
        Self::append_audit(&mut tx, &[audit(&revoked)]).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(revoked))
    }

    /// Makes `new` the creator's publishable key; the ones before it answer until
    /// `old_until`.
    pub async fn roll_publishable_key(
        &self,
        new: &KeyRow,
        old_until: i64,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(&new.creator_id).await?;
        sqlx::query(
            "UPDATE api_keys SET expires_at = $1 WHERE creator_id = $2 AND kind = 'publishable' \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(old_until)
        .bind(&new.creator_id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::insert_keys(&mut tx, std::slice::from_ref(new))
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// Writes when keys were last used (background, every creator's keys).
    pub async fn note_key_uses(
        &self,
        uses: &[(std::sync::Arc<str>, i64)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for (id, at) in uses {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(*at)
                .bind(&**id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    pub async fn update_creator_rate_limit(
        &self,
        creator_id: &str,
        per_second: Option<i64>,
        burst: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "UPDATE creators SET rate_limit_per_second = $1, rate_limit_burst = $2 WHERE id = $3",
        )
        .bind(per_second)
        .bind(burst)
        .bind(creator_id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn load_creators(&self) -> Result<Vec<CreatorRow>, StoreError> {
        sqlx::query_as::<_, CreatorRow>(&format!(
            "SELECT {CREATOR_COLUMNS} FROM creators ORDER BY created_at, slug"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn creator_row(&self, creator_id: &str) -> Result<Option<CreatorRow>, StoreError> {
        sqlx::query_as::<_, CreatorRow>(&format!(
            "SELECT {CREATOR_COLUMNS} FROM creators WHERE id = $1"
        ))
        .bind(creator_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Every key that still answers (not revoked, not past its overlap) at `now`.
    pub async fn load_keys(&self, now: i64) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1)"
        );
        sqlx::query_as(&sql)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    /// Platform-wide figures. A customer exists once assigned or once an event named it,
    /// so customers are counted over the assigned ones and those with usage (a scan of the
    /// buckets' primary key: fine for an admin's page, not for a hot path).
    pub async fn platform_counts(&self) -> Result<PlatformCounts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM creators) AS creators, \
             (SELECT COUNT(*) FROM (SELECT creator_id, id FROM customers UNION \
              SELECT DISTINCT creator_id, customer_id FROM usage_buckets) AS known) AS customers, \
             (SELECT COUNT(*) FROM meters) AS meters, \
             (SELECT COUNT(*) FROM tiers) AS tiers",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let get = |name| row.try_get::<i64, _>(name).map_err(unavailable);
        Ok(PlatformCounts {
            creators: get("creators")?,
            customers: get("customers")?,
            meters: get("meters")?,
            tiers: get("tiers")?,
        })
    }

    // --- meters and tiers -----------------------------------------------------------------

    /// Inserts a meter after the creator's last one (`position` orders the list).
    pub async fn insert_meter(
        &self,
        creator_id: &str,
        meter: &MeterRow,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query(
            "INSERT INTO meters (creator_id, key, position, name, unit, aggregation, reset, \
             created_at, serial) \
             SELECT $1, $2, COALESCE(MAX(position) + 1, 0), $3, $4, $5, $6, $7, $8 \
             FROM meters WHERE creator_id = $9",
        )
        .bind(creator_id)
        .bind(&meter.key)
        .bind(&meter.name)
        .bind(&meter.unit)
        .bind(&meter.aggregation)
        .bind(&meter.reset)
        .bind(meter.created_at)
        .bind(meter.serial)
        .bind(creator_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "a meter with this key"))?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn load_meters(&self, creator_id: &str) -> Result<Vec<MeterRow>, StoreError> {
        sqlx::query_as::<_, MeterRow>(
            "SELECT key, name, unit, aggregation, reset, created_at, serial FROM meters \
             WHERE creator_id = $1 ORDER BY position",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Inserts or replaces a tier; when it becomes the default, no other tier stays one.
    pub async fn save_tier(
        &self,
        creator_id: &str,
        tier: &TierRow,
        is_new: bool,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        if tier.is_default != 0 {
            sqlx::query("UPDATE tiers SET is_default = 0 WHERE creator_id = $1")
                .bind(creator_id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        // A new tier goes after the creator's last one; a changed one keeps its place and
        // its serial.
        let statement = if is_new {
            "INSERT INTO tiers (creator_id, key, definition, is_default, created_at, updated_at, \
             serial, position) \
             SELECT $1, $2, $3, $4, $5, $6, $7, COALESCE(MAX(position) + 1, 0) \
             FROM tiers WHERE creator_id = $8"
        } else {
            "UPDATE tiers SET definition = $3, is_default = $4, created_at = $5, updated_at = $6 \
             WHERE creator_id = $1 AND key = $2"
        };
        let query = sqlx::query(statement)
            .bind(creator_id)
            .bind(&tier.key)
            .bind(&tier.definition)
            .bind(tier.is_default)
            .bind(tier.created_at)
            .bind(tier.updated_at);
        let query = if is_new {
            query.bind(tier.serial).bind(creator_id)
        } else {
            query
        };
        query
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "a tier with this key"))?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn load_tiers(&self, creator_id: &str) -> Result<Vec<TierRow>, StoreError> {
        sqlx::query_as::<_, TierRow>(
            "SELECT key, definition, is_default, created_at, updated_at, serial FROM tiers \
             WHERE creator_id = $1 ORDER BY position",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Deletes a meter and what it counted, in one transaction: its usage buckets (a later
    /// meter with the key starts empty), its Stripe report cursors and reports, and its
    /// Stripe meter, which becomes a tidy-up. Answers whether the meter existed.
    pub async fn delete_meter(
        &self,
        creator_id: &str,
        key: &str,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        let deleted = sqlx::query("DELETE FROM meters WHERE creator_id = $1 AND key = $2")
            .bind(creator_id)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        for table in [
            "usage_buckets",
            "usage_rollups",
            "stripe_report_cursors",
            "stripe_reports",
        ] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE creator_id = $1 AND meter_key = $2"
            ))
            .bind(creator_id)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        billing::retire_stripe_meter(&mut tx, creator_id, key, now)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(deleted > 0)
    }

    /// Deletes a tier, and turns its Stripe Product and Prices into tidy-ups, in one
    /// transaction. Answers whether the tier existed.
    pub async fn delete_tier(
        &self,
        creator_id: &str,
        key: &str,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        let deleted = sqlx::query("DELETE FROM tiers WHERE creator_id = $1 AND key = $2")
            .bind(creator_id)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        billing::retire_stripe_tier(&mut tx, creator_id, key, now)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(deleted > 0)
    }

    // --- customers ------------------------------------------------------------------------

    /// Creates or updates a customer, writing `announcements` (its tier change) in the same
    /// transaction.
    pub async fn upsert_customer(
        &self,
        creator_id: &str,
        customer: &CustomerRow,
        now: i64,
        announcements: &[outbox::Announcement],
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query(
            "INSERT INTO customers (creator_id, id, tier_key, assigned_at, email, stripe_customer_id, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (creator_id, id) DO UPDATE SET tier_key = excluded.tier_key, \
             assigned_at = excluded.assigned_at, email = excluded.email, \
             stripe_customer_id = excluded.stripe_customer_id, updated_at = excluded.updated_at",
        )
        .bind(creator_id)
        .bind(&customer.id)
        .bind(&customer.tier_key)
        .bind(customer.assigned_at)
        .bind(&customer.email)
        .bind(&customer.stripe_customer_id)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::insert_announcements(self.dialect, &mut tx, announcements)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// The emails the creator gave of these customers (those without one left out).
    pub async fn customer_emails(
        &self,
        creator_id: &str,
        customer_ids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut emails = HashMap::new();
        for chunk in customer_ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT id, email FROM customers WHERE creator_id = {} AND email IS NOT NULL \
                 AND id IN ({})",
                placeholders(self.dialect, 1, 1),
                placeholders(self.dialect, 2, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, String)>(&sql).bind(creator_id);
            for id in chunk {
                query = query.bind(id);
            }
            emails.extend(query.fetch_all(&self.pool).await.map_err(unavailable)?);
        }
        Ok(emails)
    }

    pub async fn load_customers(&self, creator_id: &str) -> Result<Vec<CustomerRow>, StoreError> {
        sqlx::query_as::<_, CustomerRow>(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE creator_id = $1"
        ))
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    // --- usage ----------------------------------------------------------------------------

    /// Totals of every period that starts at or after `since`, and of endless periods
    /// (start 0): what can still receive events.
    pub async fn load_period_totals(
        &self,
        creator_id: &str,
        since: i64,
    ) -> Result<Vec<PeriodTotalRow>, StoreError> {
        sqlx::query_as::<_, PeriodTotalRow>(
            "SELECT customer_id, meter_key, period_start, CAST(SUM(value) AS BIGINT) AS total, \
             MAX(value) AS peak FROM usage_buckets \
             WHERE creator_id = $1 AND (period_start >= $2 OR period_start = 0) \
             GROUP BY customer_id, meter_key, period_start",
        )
        .bind(creator_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn load_idempotency_keys(
        &self,
        creator_id: &str,
        since: i64,
    ) -> Result<Vec<KeyResultRow>, StoreError> {
        sqlx::query_as::<_, KeyResultRow>(
            "SELECT key, result, created_at FROM idempotency_keys \
             WHERE creator_id = $1 AND created_at >= $2",
        )
        .bind(creator_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Deletes a creator's idempotency keys older than `before`; returns how many went.
    pub async fn prune_idempotency_keys(
        &self,
        creator_id: &str,
        before: i64,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM idempotency_keys WHERE creator_id = $1 AND created_at < $2")
                .bind(creator_id)
                .bind(before)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    /// One group commit: the merged deltas and keys of every waiting request as one log
    /// record, with the outbox events they cause, bounded by the write timeout.
    pub async fn append_log(&self, record: &FlushJob) -> Result<(), StoreError> {
        let body = serde_json::to_vec(record).expect("a log record always serializes");
        // In a transaction, so that a write abandoned at the deadline is rolled back rather
        // than left to finish unseen in the driver's worker.
        let write = async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("INSERT INTO usage_log (body) VALUES ($1)")
                .bind(body)
                .execute(&mut *tx)
                .await?;
            Self::insert_announcements(self.dialect, &mut tx, &record.announcements).await?;
            tx.commit().await
        };
        match tokio::time::timeout(self.backstop_timeout(), write).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable("write timed out".into())),
        }
    }

    /// Moves the oldest log records into the hourly buckets and the idempotency keys, in one
    /// transaction; answers how many records went. The records are claimed and deleted by
    /// one statement (`DELETE … RETURNING`), so a record is folded once whatever else folds
    /// beside it: another fold of this process, or the shutdown fold of a daemon handing
    /// over to the next. On PostgreSQL a fold that selected rows another fold is deleting
    /// waits for it, then finds them gone and skips them; SQLite takes the write lock up
    /// front, so folds run one after the other.
    pub async fn fold_log(&self) -> Result<usize, StoreError> {
        // One fold at a time per process keeps our own folds from splitting the log into
        // smaller transactions; correctness does not rest on it.
        let _one_at_a_time = self.fold_lock.lock().await;
        // SQLite: the write lock up front (`begin_write`), since a group commit may land
        // between the fold's read and its writes.
        let mut tx = self.begin_write().await?;
        let records: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "DELETE FROM usage_log WHERE id IN \
             (SELECT id FROM usage_log ORDER BY id LIMIT $1) RETURNING id, body",
        )
        .bind(RECORDS_PER_FOLD)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        if records.is_empty() {
            return Ok(0);
        }
        let mut merged = MergedWrites::default();
        for (id, body) in &records {
            let record: FlushJob = serde_json::from_slice(body).map_err(|e| {
                StoreError::Unavailable(format!("usage_log record {id} is unreadable: {e}"))
            })?;
            merged.add(record);
        }
        let mut folded = merged.take();
        self.keep_live_meters(&mut tx, &mut folded)
            .await
            .map_err(unavailable)?;
        self.upsert(&mut tx, &folded).await.map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(records.len())
    }

    /// Drops the deltas of meters deleted since they were committed, even when a meter
    /// with the same key was made since (its serial differs): usage lands only on the
    /// meter it was counted for. On PostgreSQL the meters read stay locked (`FOR SHARE`)
    /// until the fold commits, so a delete cannot fall between this check and the upsert;
    /// SQLite's fold holds the write lock throughout.
    async fn keep_live_meters(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        folded: &mut FlushJob,
    ) -> Result<(), sqlx::Error> {
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR SHARE",
        };
        let sql = format!("SELECT key, serial FROM meters WHERE creator_id = $1{lock}");
        let mut live: HashMap<Arc<str>, HashMap<String, i64>> = HashMap::new();
        for write in &folded.buckets {
            if live.contains_key(&write.creator_id) {
                continue;
            }
            let meters: Vec<(String, i64)> = sqlx::query_as(&sql)
                .bind(&*write.creator_id)
                .fetch_all(&mut **tx)
                .await?;
            live.insert(write.creator_id.clone(), meters.into_iter().collect());
        }
        folded.buckets.retain(|write| {
            live.get(&write.creator_id)
                .and_then(|meters| meters.get(&*write.meter_key))
                == Some(&write.meter_serial)
        });
        Ok(())
    }

    /// Adds a fold's deltas to the hourly usage over every customer (`usage_rollups`).
    async fn upsert_rollups(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        buckets: &[BucketWrite],
    ) -> Result<(), sqlx::Error> {
        let conflict = "ON CONFLICT (creator_id, meter_key, bucket_start)";
        // Summed over every customer, an hour could pass what a counter holds: it stops
        // at the largest value rather than fail the fold.
        let sum_tail = format!(
            "{conflict} DO UPDATE SET value = CASE \
             WHEN usage_rollups.value > {max} - excluded.value THEN {max} \
             ELSE usage_rollups.value + excluded.value END",
            max = i64::MAX
        );
        let max_tail = format!(
            "{conflict} DO UPDATE SET value = {}(usage_rollups.value, excluded.value)",
            self.max_fn()
        );
        let (maxes, sums): (Vec<_>, Vec<_>) =
            rollup_rows(buckets).into_iter().partition(|row| row.4);
        for (rows, tail) in [(sums, &sum_tail), (maxes, &max_tail)] {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let sql = multi_row_insert(
                    self.dialect,
                    "INSERT INTO usage_rollups (creator_id, meter_key, bucket_start, value) \
                     VALUES ",
                    4,
                    chunk.len(),
                    tail,
                );
                let mut query = sqlx::query(&sql);
                for (creator, meter, hour, value, _) in chunk {
                    query = query.bind(*creator).bind(*meter).bind(*hour).bind(*value);
                }
                query.execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    /// Folds until the log is empty (start-up and shutdown).
    pub async fn fold_all(&self) -> Result<(), StoreError> {
        while self.fold_log().await? > 0 {}
        Ok(())
    }

    /// Folds every log record written so far, however much ingest appends meanwhile.
    pub async fn fold_written(&self) -> Result<(), StoreError> {
        let bounds = "SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM usage_log";
        let (_, end): (i64, i64) = sqlx::query_as(bounds)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        loop {
            let (first, _): (i64, i64) = sqlx::query_as(bounds)
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)?;
            if first == 0 || first > end || self.fold_log().await? == 0 {
                return Ok(());
            }
        }
    }

    /// Adds bucket deltas (summed or maxed) and inserts idempotency keys.
    async fn upsert(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        folded: &FlushJob,
    ) -> Result<(), sqlx::Error> {
        let max_fn = self.max_fn();
        let conflict =
            "ON CONFLICT (creator_id, customer_id, meter_key, period_start, bucket_start)";
        let sum_tail =
            format!("{conflict} DO UPDATE SET value = usage_buckets.value + excluded.value");
        let max_tail = format!(
            "{conflict} DO UPDATE SET value = {max_fn}(usage_buckets.value, excluded.value)"
        );
        let (mut maxes, mut sums): (Vec<&BucketWrite>, Vec<&BucketWrite>) =
            folded.buckets.iter().partition(|b| b.is_max);
        // Rows in key order: two folds at once (PostgreSQL) lock shared buckets in the same
        // order instead of deadlocking.
        for rows in [&mut sums, &mut maxes] {
            rows.sort_unstable_by(|a, b| bucket_order(a).cmp(&bucket_order(b)));
        }
        for (rows, tail) in [(sums, &sum_tail), (maxes, &max_tail)] {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let sql = multi_row_insert(
                    self.dialect,
                    "INSERT INTO usage_buckets (creator_id, customer_id, meter_key, period_start, \
                     bucket_start, value) VALUES ",
                    6,
                    chunk.len(),
                    tail,
                );
                let mut query = sqlx::query(&sql);
                for row in chunk {
                    query = query
                        .bind(&*row.creator_id)
                        .bind(&*row.customer_id)
                        .bind(&*row.meter_key)
                        .bind(row.period_start)
                        .bind(row.bucket_start)
                        .bind(row.value);
                }
                query.execute(&mut **tx).await?;
            }
        }
        self.upsert_rollups(tx, &folded.buckets).await?;
        self.upsert_embed_traffic(tx, folded).await?;
        for chunk in folded.keys.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(
                self.dialect,
                "INSERT INTO idempotency_keys (creator_id, key, result, created_at) VALUES ",
                4,
                chunk.len(),
                "ON CONFLICT (creator_id, key) DO NOTHING",
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query
                    .bind(&*key.creator_id)
                    .bind(&*key.key)
                    .bind(&*key.result)
                    .bind(key.created_at);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// The primary key of a bucket row, to order writes by.
/// A fold's deltas over every customer: one row per creator, meter and hour, summed (max
/// meters: their largest), in key order (two PostgreSQL folds lock shared rows alike).
fn rollup_rows(buckets: &[BucketWrite]) -> Vec<(&str, &str, i64, i64, bool)> {
    let mut rows: std::collections::BTreeMap<(&str, &str, i64), (i64, bool)> =
        std::collections::BTreeMap::new();
    for write in buckets {
        let key = (&*write.creator_id, &*write.meter_key, write.bucket_start);
        let entry = rows.entry(key).or_insert((0, write.is_max));
        entry.0 = if write.is_max {
            entry.0.max(write.value)
        } else {
            entry.0.saturating_add(write.value)
        };
    }
    rows.into_iter()
        .map(|((creator, meter, hour), (value, is_max))| (creator, meter, hour, value, is_max))
        .collect()
}

fn bucket_order(write: &BucketWrite) -> (&str, &str, &str, i64, i64) {
    (
        &write.creator_id,
        &write.customer_id,
        &write.meter_key,
        write.period_start,
        write.bucket_start,
    )
}

/// `head ($1, …, $n), (…), … tail` with placeholders numbered in order (one column gives
/// the list of an `IN (…)`); plain `?` on
/// SQLite, whose lookup of named parameters is linear in their number (a 3,000-parameter
/// statement spent most of its time there).
fn multi_row_insert(
    dialect: Dialect,
    head: &str,
    columns: usize,
    rows: usize,
    tail: &str,
) -> String {
    use std::fmt::Write;
    debug_assert!(
        !(head.contains(['$', '?']) || tail.contains(['$', '?'])),
        "placeholders are numbered from 1 here: head and tail must carry none"
    );
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * columns * 6);
    sql.push_str(head);
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            n += 1;
            let sep = if column == 0 { "" } else { ", " };
            let _ = match dialect {
                Dialect::Sqlite => write!(sql, "{sep}?"),
                Dialect::Postgres => write!(sql, "{sep}${n}"),
            };
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// `count` placeholders numbered from `first`, comma-separated (`$2, $3` or `?, ?`): the
/// list of an `IN (…)`.
fn placeholders(dialect: Dialect, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| match dialect {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::{multi_row_insert, placeholders, Dialect};

    #[test]
    fn in_lists_number_placeholders_from_where_they_start() {
        assert_eq!(placeholders(Dialect::Postgres, 2, 3), "$2, $3, $4");
        assert_eq!(placeholders(Dialect::Sqlite, 2, 2), "?, ?");
    }

    #[test]
    fn multi_row_inserts_number_placeholders_in_order() {
        let head = "INSERT INTO t (a, b) VALUES ";
        let tail = "ON CONFLICT DO NOTHING";
        assert_eq!(
            multi_row_insert(Dialect::Postgres, head, 2, 2, tail),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            multi_row_insert(Dialect::Sqlite, head, 2, 2, tail),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
    }
}
