//! Webhook endpoints. Every query is scoped by `account_id` and hides deleted rows.

use async_trait::async_trait;
use hookd_core::{AccountId, EndpointId, EndpointSecret, EndpointStatus, EndpointUrl, EntityId};

use super::{SqliteStore, operational};
use crate::rows::{self, fetch_limit, into_page};
use crate::schema::ENDPOINT_COLUMNS;
use crate::{
    Endpoint, EndpointPatch, EndpointSecrets, EndpointStore, Page, PageRequest, StoreError, StoreResult,
    UnixMillis,
};

#[async_trait]
impl EndpointStore for SqliteStore {
    async fn create_endpoint(&self, endpoint: &Endpoint, secret: &EndpointSecret) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO endpoints (endpoint_id, account_id, url, events, entity_id, status, secret, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(endpoint.endpoint_id.as_str())
        .bind(endpoint.account_id.as_str())
        .bind(endpoint.url.as_str())
        .bind(rows::events_column(&endpoint.events))
        .bind(endpoint.entity_id.as_ref().map(EntityId::as_str))
        .bind(endpoint.status.as_str())
        .bind(self.sealer.seal(secret, endpoint.endpoint_id.as_str()))
        .bind(endpoint.created_at)
        .bind(endpoint.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_endpoint(&self, account_id: &AccountId, endpoint_id: &EndpointId) -> StoreResult<Endpoint> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE account_id = ? AND endpoint_id = ? AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(account_id.as_str())
            .bind(endpoint_id.as_str())
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(rows::endpoint(&row)?.1)
    }

    async fn endpoint_secret(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
    ) -> StoreResult<EndpointSecrets> {
        let (sealed, previous, previous_until): (String, Option<String>, Option<i64>) = sqlx::query_as(
            "SELECT secret, previous_secret, previous_secret_until FROM endpoints
             WHERE account_id = ? AND endpoint_id = ? AND deleted_at IS NULL",
        )
        .bind(account_id.as_str())
        .bind(endpoint_id.as_str())
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?;
        rows::endpoint_secrets(&sealed, previous.zip(previous_until), endpoint_id, &self.sealer)
    }

    async fn list_endpoints(&self, account_id: &AccountId, page: PageRequest) -> StoreResult<Page<Endpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints
             WHERE account_id = ? AND deleted_at IS NULL AND seq < ?
             ORDER BY seq DESC LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(account_id.as_str())
            .bind(page.before.unwrap_or(i64::MAX))
            .bind(fetch_limit(page))
            .fetch_all(&self.reader)
            .await?;
        let rows = rows.iter().map(rows::endpoint).collect::<StoreResult<Vec<_>>>()?;
        Ok(into_page(rows, page))
    }

    async fn update_endpoint(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        patch: &EndpointPatch,
        now: UnixMillis,
    ) -> StoreResult<Endpoint> {
        // `events` needs a flag beside its value because NULL is a meaningful new value.
        let sql = format!(
            "UPDATE endpoints SET
                url = COALESCE(?1, url),
                events = CASE WHEN ?2 THEN ?3 ELSE events END,
                status = COALESCE(?4, status),
                -- Re-enabling starts a fresh failure run, so one more failure does not
                -- disable the endpoint again at once.
                failing_since = CASE WHEN ?4 = 'enabled' THEN NULL ELSE failing_since END,
                updated_at = ?5
             WHERE account_id = ?6 AND endpoint_id = ?7 AND deleted_at IS NULL
             RETURNING {ENDPOINT_COLUMNS}"
        );
        let mut tx = self.writer.begin().await?;
        let before = match patch.status {
            Some(_) => operational::endpoint_states(&mut tx, &[endpoint_id.as_str().to_owned()]).await?.pop(),
            None => None,
        };
        let row = sqlx::query(&sql)
            .bind(patch.url.as_ref().map(EndpointUrl::as_str))
            .bind(patch.events.is_some())
            .bind(patch.events.as_ref().and_then(rows::events_column))
            .bind(patch.status.map(EndpointStatus::as_str))
            .bind(now)
            .bind(account_id.as_str())
            .bind(endpoint_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let endpoint = rows::endpoint(&row)?.1;
        if let Some(before) = before {
            operational::after_status_change(&mut tx, &before, now).await?;
        }
        tx.commit().await?;
        Ok(endpoint)
    }

    async fn delete_endpoint(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        now: UnixMillis,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let result = sqlx::query(
            "UPDATE endpoints SET deleted_at = ?, updated_at = ?
             WHERE account_id = ? AND endpoint_id = ? AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(now)
        .bind(account_id.as_str())
        .bind(endpoint_id.as_str())
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // Nothing more is sent to a deleted endpoint; an attempt already in flight
        // finds its delivery cancelled when it reports back.
        sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL, lease_until = NULL, updated_at = ?
             WHERE endpoint_id = ? AND state = 'pending'",
        )
        .bind(now)
        .bind(endpoint_id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_endpoint_secret(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        secret: &EndpointSecret,
        overlap_until: Option<UnixMillis>,
        now: UnixMillis,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            // SET reads the row as it was: `previous_secret` takes the old `secret`.
            "UPDATE endpoints SET previous_secret = CASE WHEN ?1 IS NULL THEN NULL ELSE secret END,
                                  previous_secret_until = ?1, secret = ?2, updated_at = ?3
             WHERE account_id = ?4 AND endpoint_id = ?5 AND deleted_at IS NULL",
        )
        .bind(overlap_until)
        .bind(self.sealer.seal(secret, endpoint_id.as_str()))
        .bind(now)
        .bind(account_id.as_str())
        .bind(endpoint_id.as_str())
        .execute(&self.writer)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
