//! Per-endpoint delivery settings, and the head of an endpoint's queue.

use async_trait::async_trait;
use hookd_core::{AccountId, DeliverySettings, EndpointId};
use sqlx::{Postgres, Transaction};

use super::PostgresStore;
use crate::rows;
use crate::{DeliverySettingsStore, QueueHead, StoreError, StoreResult, UnixMillis};

/// The endpoint's oldest pending delivery (on `deliveries_by_endpoint`, in `seq` order).
const HEAD: &str = "
    SELECT d.delivery_id, d.event_id, e.event_type, d.attempts, d.next_attempt_at
    FROM deliveries d JOIN events e ON e.event_id = d.event_id
    WHERE d.seq = (SELECT MIN(seq) FROM deliveries
                   WHERE endpoint_id = $1 AND state = 'pending')";

#[async_trait]
impl DeliverySettingsStore for PostgresStore {
    async fn delivery_settings(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
    ) -> StoreResult<DeliverySettings> {
        let row = sqlx::query(
            "SELECT ordering, rate_limit_per_second FROM endpoints
             WHERE account_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL",
        )
        .bind(account_id.as_str())
        .bind(endpoint_id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        rows::delivery_settings(&row)
    }

    async fn set_delivery_settings(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        settings: DeliverySettings,
        now: UnixMillis,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE endpoints SET ordering = $1, rate_limit_per_second = $2, updated_at = $3
             WHERE account_id = $4 AND endpoint_id = $5 AND deleted_at IS NULL",
        )
        .bind(settings.ordering.as_str())
        .bind(settings.rate_limit.map(|limit| i64::from(limit.per_second())))
        .bind(now)
        .bind(account_id.as_str())
        .bind(endpoint_id.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let pacing = if settings.rate_limit.is_some() {
            "INSERT INTO endpoint_pacing (endpoint_id) VALUES ($1) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM endpoint_pacing WHERE endpoint_id = $1"
        };
        sqlx::query(pacing).bind(endpoint_id.as_str()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_head(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
    ) -> StoreResult<Option<QueueHead>> {
        let mut tx = self.pool.begin().await?;
        ensure_live_endpoint(&mut tx, account_id, endpoint_id).await?;
        let row = sqlx::query(HEAD).bind(endpoint_id.as_str()).fetch_optional(&mut *tx).await?;
        row.as_ref().map(rows::queue_head).transpose()
    }

    async fn skip_queue_head(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        now: UnixMillis,
    ) -> StoreResult<Option<QueueHead>> {
        let mut tx = self.pool.begin().await?;
        ensure_live_endpoint(&mut tx, account_id, endpoint_id).await?;
        // Locked, so two skips at once skip two heads, one each, not the same one twice.
        let head_for_update = format!("{HEAD} FOR UPDATE OF d");
        let Some(row) =
            sqlx::query(&head_for_update).bind(endpoint_id.as_str()).fetch_optional(&mut *tx).await?
        else {
            return Ok(None);
        };
        let head = rows::queue_head(&row)?;
        sqlx::query(
            "UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, lease_until = NULL, updated_at = $1
             WHERE delivery_id = $2 AND state = 'pending'",
        )
        .bind(now)
        .bind(head.delivery_id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(head))
    }
}

async fn ensure_live_endpoint(
    tx: &mut Transaction<'_, Postgres>,
    account_id: &AccountId,
    endpoint_id: &EndpointId,
) -> StoreResult<()> {
    let live: Option<i64> = sqlx::query_scalar(
        "SELECT seq FROM endpoints WHERE account_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL",
    )
    .bind(account_id.as_str())
    .bind(endpoint_id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    live.map(|_| ()).ok_or(StoreError::NotFound)
}
