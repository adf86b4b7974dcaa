//! Per-endpoint delivery settings, and the head of an endpoint's queue.

use async_trait::async_trait;
use hookd_core::{AccountId, DeliverySettings, EndpointId};
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use crate::rows;
use crate::{DeliverySettingsStore, QueueHead, StoreError, StoreResult, UnixMillis};

/// The endpoint's oldest pending delivery (`deliveries_by_endpoint` is in `seq` order).
const HEAD: &str = "
    SELECT d.delivery_id, d.event_id, e.event_type, d.attempts, d.next_attempt_at
    FROM deliveries d JOIN events e ON e.event_id = d.event_id
    WHERE d.seq = (SELECT MIN(seq) FROM deliveries INDEXED BY deliveries_by_endpoint
                   WHERE endpoint_id = ? AND state = 'pending')";

#[async_trait]
impl DeliverySettingsStore for SqliteStore {
    async fn delivery_settings(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
    ) -> StoreResult<DeliverySettings> {
        let row = sqlx::query(
            "SELECT ordering, rate_limit_per_second FROM endpoints
             WHERE account_id = ? AND endpoint_id = ? AND deleted_at IS NULL",
        )
        .bind(account_id.as_str())
        .bind(endpoint_id.as_str())
        .fetch_optional(&self.reader)
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
        let mut tx = self.writer.begin().await?;
        let updated = sqlx::query(
            "UPDATE endpoints SET ordering = ?, rate_limit_per_second = ?, updated_at = ?
             WHERE account_id = ? AND endpoint_id = ? AND deleted_at IS NULL",
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
            "INSERT INTO endpoint_pacing (endpoint_id) VALUES (?) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM endpoint_pacing WHERE endpoint_id = ?"
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
        let mut tx = self.reader.begin().await?;
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
        let mut tx = self.writer.begin().await?;
        ensure_live_endpoint(&mut tx, account_id, endpoint_id).await?;
        let Some(row) = sqlx::query(HEAD).bind(endpoint_id.as_str()).fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        let head = rows::queue_head(&row)?;
        sqlx::query(
            "UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, lease_until = NULL, updated_at = ?
             WHERE delivery_id = ? AND state = 'pending'",
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
    tx: &mut Transaction<'_, Sqlite>,
    account_id: &AccountId,
    endpoint_id: &EndpointId,
) -> StoreResult<()> {
    let live: Option<i64> = sqlx::query_scalar(
        "SELECT seq FROM endpoints WHERE account_id = ? AND endpoint_id = ? AND deleted_at IS NULL",
    )
    .bind(account_id.as_str())
    .bind(endpoint_id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    live.map(|_| ()).ok_or(StoreError::NotFound)
}
