//! The embed tables: embeds and their versions, experiments with their exposures and
//! conversions (written by the group commit's fold), widget activity per day, customer
//! sessions and the keys that sign them. Same SQL on both databases.

use super::audit::AuditEntry;
use super::{multi_row_insert, unavailable, FlushJob, Store, StoreError, ROWS_PER_STATEMENT};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmbedRow {
    pub key: String,
    pub kind: String,
    pub published_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmbedVersionRow {
    pub embed_key: String,
    pub version: i64,
    /// The checked config, as JSON.
    pub config: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExperimentRow {
    pub key: String,
    pub embed_key: String,
    /// JSON `[{key, version, weight}]`.
    pub variants: String,
    pub goal: String,
    pub status: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExposureRow {
    pub experiment_key: String,
    pub visitor: String,
    pub variant: String,
    pub counted_as: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversionRow {
    pub experiment_key: String,
    pub source: String,
    pub visitor: String,
    pub variant: String,
    pub revenue: i64,
}

/// One embed version's widget activity of one kind, all days summed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityTotalRow {
    pub version: i64,
    pub kind: String,
    pub total: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub customer_id: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    /// Hex, sealed (`sessions::tokens::key_owner`); in clear in rows of earlier versions.
    pub secret: String,
    pub created_at: i64,
}

impl Store {
    // --- embeds ---------------------------------------------------------------------------

    /// A new embed with its first version, published, and its audit record.
    pub async fn insert_embed(
        &self,
        creator_id: &str,
        embed: &EmbedRow,
        first: &EmbedVersionRow,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query(
            "INSERT INTO embeds (creator_id, key, kind, published_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(creator_id)
        .bind(&embed.key)
        .bind(&embed.kind)
        .bind(embed.published_version)
        .bind(embed.created_at)
        .bind(embed.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "an embed with this key"))?;
        insert_version(&mut tx, creator_id, first).await?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn insert_embed_version(
        &self,
        creator_id: &str,
        version: &EmbedVersionRow,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        insert_version(&mut tx, creator_id, version).await?;
        sqlx::query("UPDATE embeds SET updated_at = $1 WHERE creator_id = $2 AND key = $3")
            .bind(version.created_at)
            .bind(creator_id)
            .bind(&version.embed_key)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn publish_embed_version(
        &self,
        creator_id: &str,
        key: &str,
        version: i64,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query(
            "UPDATE embeds SET published_version = $1, updated_at = $2 \
             WHERE creator_id = $3 AND key = $4",
        )
        .bind(version)
        .bind(now)
        .bind(creator_id)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn load_embeds(&self, creator_id: &str) -> Result<Vec<EmbedRow>, StoreError> {
        sqlx::query_as::<_, EmbedRow>(
            "SELECT key, kind, published_version, created_at, updated_at FROM embeds \
             WHERE creator_id = $1 ORDER BY created_at, key",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn load_embed_versions(
        &self,
        creator_id: &str,
    ) -> Result<Vec<EmbedVersionRow>, StoreError> {
        sqlx::query_as::<_, EmbedVersionRow>(
            "SELECT embed_key, version, config, created_at FROM embed_versions \
             WHERE creator_id = $1 ORDER BY embed_key, version",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Clicks and checkouts started per version of an embed, committed and folded.
    pub async fn embed_activity(
        &self,
        creator_id: &str,
        embed_key: &str,
    ) -> Result<Vec<ActivityTotalRow>, StoreError> {
        sqlx::query_as::<_, ActivityTotalRow>(
            "SELECT version, kind, CAST(SUM(count) AS BIGINT) AS total FROM embed_activity \
             WHERE creator_id = $1 AND embed_key = $2 GROUP BY version, kind ORDER BY version, kind",
        )
        .bind(creator_id)
        .bind(embed_key)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn set_allowed_origins(
        &self,
        creator_id: &str,
        origins_json: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query("UPDATE creators SET allowed_origins = $1 WHERE id = $2")
            .bind(origins_json)
            .bind(creator_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// Sets the meters the creator's portal does not show (a JSON array of keys).
    pub async fn set_portal_hidden_meters(
        &self,
        creator_id: &str,
        keys_json: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query("UPDATE creators SET portal_hidden_meters = $1 WHERE id = $2")
            .bind(keys_json)
            .bind(creator_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    // --- experiments ----------------------------------------------------------------------

    pub async fn insert_experiment(
        &self,
        creator_id: &str,
        experiment: &ExperimentRow,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query(
            "INSERT INTO experiments (creator_id, key, embed_key, variants, goal, status, \
             created_at, started_at, stopped_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(creator_id)
        .bind(&experiment.key)
        .bind(&experiment.embed_key)
        .bind(&experiment.variants)
        .bind(&experiment.goal)
        .bind(&experiment.status)
        .bind(experiment.created_at)
        .bind(experiment.started_at)
        .bind(experiment.stopped_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "an experiment with this key"))?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn set_experiment_status(
        &self,
        creator_id: &str,
        key: &str,
        status: &str,
        started_at: Option<i64>,
        stopped_at: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query(
            "UPDATE experiments SET status = $1, started_at = $2, stopped_at = $3 \
             WHERE creator_id = $4 AND key = $5",
        )
        .bind(status)
        .bind(started_at)
        .bind(stopped_at)
        .bind(creator_id)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn load_experiments(
        &self,
        creator_id: &str,
    ) -> Result<Vec<ExperimentRow>, StoreError> {
        sqlx::query_as::<_, ExperimentRow>(
            "SELECT key, embed_key, variants, goal, status, created_at, started_at, stopped_at \
             FROM experiments WHERE creator_id = $1 ORDER BY created_at, key",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn load_exposures(&self, creator_id: &str) -> Result<Vec<ExposureRow>, StoreError> {
        sqlx::query_as::<_, ExposureRow>(
            "SELECT experiment_key, visitor, variant, counted_as FROM experiment_exposures \
             WHERE creator_id = $1",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn load_conversions(
        &self,
        creator_id: &str,
    ) -> Result<Vec<ConversionRow>, StoreError> {
        sqlx::query_as::<_, ConversionRow>(
            "SELECT experiment_key, source, visitor, variant, revenue FROM experiment_conversions \
             WHERE creator_id = $1",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// The fold's share of embed traffic: exposures and conversions are inserted once
    /// (a record folded twice, or a commit retried after a timeout that had landed, adds
    /// nothing), activity counts are added.
    pub(super) async fn upsert_embed_traffic(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        folded: &FlushJob,
    ) -> Result<(), sqlx::Error> {
        for chunk in folded.exposures.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(
                self.dialect,
                "INSERT INTO experiment_exposures (creator_id, experiment_key, visitor, variant, \
                 counted_as, exposed_at) VALUES ",
                6,
                chunk.len(),
                "ON CONFLICT (creator_id, experiment_key, visitor) DO NOTHING",
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(&*row.creator_id)
                    .bind(&*row.experiment_key)
                    .bind(&*row.visitor)
                    .bind(&*row.variant)
                    .bind(&*row.counted_as)
                    .bind(row.exposed_at);
            }
            query.execute(&mut **tx).await?;
        }
        for chunk in folded.conversions.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(
                self.dialect,
                "INSERT INTO experiment_conversions (creator_id, experiment_key, source, visitor, \
                 variant, revenue, converted_at) VALUES ",
                7,
                chunk.len(),
                "ON CONFLICT (creator_id, experiment_key, source) DO NOTHING",
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(&*row.creator_id)
                    .bind(&*row.experiment_key)
                    .bind(&*row.source)
                    .bind(&*row.visitor)
                    .bind(&*row.variant)
                    .bind(row.revenue)
                    .bind(row.converted_at);
            }
            query.execute(&mut **tx).await?;
        }
        for chunk in folded.activity.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(
                self.dialect,
                "INSERT INTO embed_activity (creator_id, embed_key, version, experiment_key, \
                 variant, kind, day, count) VALUES ",
                8,
                chunk.len(),
                "ON CONFLICT (creator_id, embed_key, version, experiment_key, variant, kind, day) \
                 DO UPDATE SET count = embed_activity.count + excluded.count",
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(&*row.creator_id)
                    .bind(&*row.embed_key)
                    .bind(row.version)
                    .bind(&*row.experiment_key)
                    .bind(&*row.variant)
                    .bind(&*row.kind)
                    .bind(row.day)
                    .bind(row.count);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    // --- customer sessions ----------------------------------------------------------------

    pub async fn insert_session(
        &self,
        creator_id: &str,
        session: &SessionRow,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query(
            "INSERT INTO customer_sessions (id, creator_id, customer_id, scope, created_at, \
             expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&session.id)
        .bind(creator_id)
        .bind(&session.customer_id)
        .bind(&session.scope)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(session.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// Marks the creator's session revoked (the first revocation's time stays); answers the
    /// session, or `None` when the creator has no such session. The revocation's record,
    /// made from the revoked session, is written with it (none when it was revoked before).
    pub async fn revoke_session(
        &self,
        creator_id: &str,
        id: &str,
        now: i64,
        audit: impl FnOnce(&SessionRow) -> AuditEntry,
    ) -> Result<Option<SessionRow>, StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        let revoked = sqlx::query(
            "UPDATE customer_sessions SET revoked_at = $1 \
             WHERE creator_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(creator_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        let session = sqlx::query_as::<_, SessionRow>(
            "SELECT id, customer_id, scope, created_at, expires_at, revoked_at \
             FROM customer_sessions WHERE creator_id = $1 AND id = $2",
        )
        .bind(creator_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        if let Some(session) = session.as_ref().filter(|_| revoked > 0) {
            Self::append_audit(&mut tx, &[audit(session)]).await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(session)
    }

    /// Revoked sessions whose tokens have not expired yet (start-up).
    pub async fn load_revoked_sessions(&self, now: i64) -> Result<Vec<SessionRow>, StoreError> {
        sqlx::query_as::<_, SessionRow>(
            "SELECT id, customer_id, scope, created_at, expires_at, revoked_at \
             FROM customer_sessions WHERE revoked_at IS NOT NULL AND expires_at > $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn load_signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        sqlx::query_as::<_, SigningKeyRow>(
            "SELECT kid, secret, created_at FROM session_signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Adds a signing key and drops `retired` ones (whose tokens have all expired), with the
    /// rotation's records.
    pub async fn add_signing_key(
        &self,
        key: &SigningKeyRow,
        retired: &[String],
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO session_signing_keys (kid, secret, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&key.kid)
        .bind(&key.secret)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        for kid in retired {
            sqlx::query("DELETE FROM session_signing_keys WHERE kid = $1")
                .bind(kid)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        Self::append_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(unavailable)
    }
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    creator_id: &str,
    version: &EmbedVersionRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO embed_versions (creator_id, embed_key, version, config, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(creator_id)
    .bind(&version.embed_key)
    .bind(version.version)
    .bind(&version.config)
    .bind(version.created_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| StoreError::from_sqlx(e, "this version"))?;
    Ok(())
}
