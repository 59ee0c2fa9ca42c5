//! The audit log's rows and its chain. A change's record is appended inside the change's
//! own transaction (`append`), so a change and its record commit or vanish together.
//! Appending takes the chain's end row first (its lock serializes appends on PostgreSQL;
//! SQLite has one writer anyway), so records are numbered without gaps in commit order
//! and each one's hash covers the hash before it.
//!
//! Retention cuts the chain's beginning only: it moves the anchor (`pruned_through`,
//! `pruned_hash`) past the oldest records and removes them, in one transaction; the
//! database's triggers refuse every other change or removal.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{unavailable, Store, StoreError, Tx};

/// One change, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    /// Empty for the platform's own changes (creators made, keys minted by the admin).
    pub creator_id: String,
    pub at: i64,
    /// `admin`, `key:<key id>`, `stripe` (a webhook), `system:<job>`.
    pub actor: String,
    /// `<object type>.<verb>`, e.g. `tier.update`.
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    /// The object's JSON before and after the change (secrets never included).
    pub before_state: Option<String>,
    pub after_state: Option<String>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    pub hash: String,
}

/// A change to record: everything but its place in the chain.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub creator_id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub object_type: &'static str,
    pub object_id: String,
    pub before_state: Option<String>,
    pub after_state: Option<String>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
}

impl AuditEntry {
    /// The object's state before the change, as JSON.
    pub fn before(mut self, state: &impl serde::Serialize) -> AuditEntry {
        self.before_state = serde_json::to_string(state).ok();
        self
    }

    /// The object's state after the change, as JSON.
    pub fn after(mut self, state: &impl serde::Serialize) -> AuditEntry {
        self.after_state = serde_json::to_string(state).ok();
        self
    }
}

/// The chain's ends as the database holds them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChainState {
    pub last_seq: i64,
    pub last_hash: String,
    pub pruned_through: i64,
    pub pruned_hash: String,
}

/// What to list: one creator's records (or the platform's: `None`), filtered.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub actor: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Records older than this sequence number (the cursor: newest first).
    pub before_seq: Option<i64>,
}

const COLUMNS: &str = "seq, creator_id, at, actor, action, object_type, object_id, \
     before_state, after_state, client_addr, request_id, hash";

/// The hash of a record: SHA-256 over the previous record's hash and each field of this
/// one, each preceded by its length (so no two different records read the same), hex.
pub fn chain_hash(previous: &str, row: &AuditRow) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(previous.as_bytes());
    field(&row.seq.to_be_bytes());
    field(row.creator_id.as_bytes());
    field(&row.at.to_be_bytes());
    field(row.actor.as_bytes());
    field(row.action.as_bytes());
    field(row.object_type.as_bytes());
    field(row.object_id.as_bytes());
    for part in [
        &row.before_state,
        &row.after_state,
        &row.client_addr,
        &row.request_id,
    ] {
        match part.as_deref().map(str::as_bytes) {
            // An absent part and an empty one hash apart.
            None => field(b"\xff"),
            Some(bytes) => {
                field(b"\x01");
                field(bytes);
            }
        }
    }
    hex::encode(hasher.finalize())
}

impl Store {
    /// Appends `entries` to the chain inside the caller's transaction.
    pub(crate) async fn append_audit(
        tx: &mut Tx,
        entries: &[AuditEntry],
    ) -> Result<(), StoreError> {
        Self::append_entries(tx, entries).await.map_err(unavailable)
    }

    async fn append_entries(tx: &mut Tx, entries: &[AuditEntry]) -> Result<(), sqlx::Error> {
        for entry in entries {
            let end = sqlx::query(
                "UPDATE audit_chain SET last_seq = last_seq + 1 WHERE id = 1 \
                 RETURNING last_seq, last_hash",
            )
            .fetch_one(&mut **tx)
            .await?;
            let seq: i64 = end.try_get(0)?;
            let previous: String = end.try_get(1)?;
            let mut row = AuditRow {
                seq,
                creator_id: entry.creator_id.clone(),
                at: entry.at,
                actor: entry.actor.clone(),
                action: entry.action.clone(),
                object_type: entry.object_type.to_string(),
                object_id: entry.object_id.clone(),
                before_state: entry.before_state.clone(),
                after_state: entry.after_state.clone(),
                client_addr: entry.client_addr.clone(),
                request_id: entry.request_id.clone(),
                hash: String::new(),
            };
            row.hash = chain_hash(&previous, &row);
            sqlx::query(
                "INSERT INTO audit_log (seq, creator_id, at, actor, action, object_type, \
                 object_id, before_state, after_state, client_addr, request_id, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(row.seq)
            .bind(&row.creator_id)
            .bind(row.at)
            .bind(&row.actor)
            .bind(&row.action)
            .bind(&row.object_type)
            .bind(&row.object_id)
            .bind(&row.before_state)
            .bind(&row.after_state)
            .bind(&row.client_addr)
            .bind(&row.request_id)
            .bind(&row.hash)
            .execute(&mut **tx)
            .await?;
            sqlx::query("UPDATE audit_chain SET last_hash = $1 WHERE id = 1")
                .bind(&row.hash)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// One page of a creator's records (`Some`) or the platform's own (`None`), newest
    /// first.
    pub async fn audit_records(
        &self,
        creator_id: Option<&str>,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        // Conditions that do not apply compare a parameter with itself as NULL.
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE creator_id = $1 \
             AND ($2 IS NULL OR object_type = $2) AND ($3 IS NULL OR object_id = $3) \
             AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR at >= $5) \
             AND ($6 IS NULL OR at < $6) AND ($7 IS NULL OR seq < $7) \
             ORDER BY seq DESC LIMIT $8"
        );
        sqlx::query_as(&sql)
            .bind(creator_id.unwrap_or(""))
            .bind(&filter.object_type)
            .bind(&filter.object_id)
            .bind(&filter.actor)
            .bind(filter.from)
            .bind(filter.to)
            .bind(filter.before_seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    /// Cuts at most `batch` audit records older than `before` off the chain's beginning:
    /// the anchor moves past them (to the last one's hash) and they go, in one
    /// transaction. Only a run of records from the beginning is cut, and only after it is
    /// checked to chain from the anchor: a tampered record is not cut away unseen, the
    /// cut stops and says so. Answers how many went.
    pub async fn prune_audit(&self, before: i64, batch: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // Taking the chain's row first serializes with appends (PostgreSQL) and retention
        // runs of another daemon.
        let (pruned_through, pruned_hash): (i64, String) = sqlx::query_as(
            "UPDATE audit_chain SET pruned_through = pruned_through WHERE id = 1 \
             RETURNING pruned_through, pruned_hash",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let oldest: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(pruned_through)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let (mut through, mut hash) = (pruned_through, pruned_hash);
        for row in oldest.iter().take_while(|row| row.at < before) {
            if row.seq != through + 1 || chain_hash(&hash, row) != row.hash {
                return Err(StoreError::Unavailable(format!(
                    "audit record {} does not chain (run `staryer audit verify`); \
                     retention cut nothing past it",
                    through + 1
                )));
            }
            (through, hash) = (row.seq, row.hash.clone());
        }
        if through == pruned_through {
            return Ok(0);
        }
        sqlx::query("UPDATE audit_chain SET pruned_through = $1, pruned_hash = $2 WHERE id = 1")
            .bind(through)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let done = sqlx::query("DELETE FROM audit_log WHERE seq > $1 AND seq <= $2")
            .bind(pruned_through)
            .bind(through)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    /// Records of every creator in chain order, after `seq` (verification).
    pub async fn audit_chain_page(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        sqlx::query_as(&sql)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    pub async fn audit_chain_state(&self) -> Result<ChainState, StoreError> {
        sqlx::query_as(
            "SELECT last_seq, last_hash, pruned_through, pruned_hash FROM audit_chain WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)
    }
}
