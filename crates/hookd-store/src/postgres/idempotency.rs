//! Stored responses for `Idempotency-Key`.
//!
//! The primary key makes the claim atomic across instances: of two concurrent first
//! requests, exactly one inserts the in-progress row; the other waits for that insert
//! to commit, sees the row, and is told to wait (409).

use async_trait::async_trait;
use sqlx::Row;

use super::{Duty, PostgresStore, try_duty};
use crate::{IdempotencyClaim, IdempotencyScope, IdempotencyStore, StoreResult, StoredResponse, UnixMillis};

const KEY_MATCH: &str = "scope = $1 AND idempotency_key = $2 AND method = $3 AND path = $4";

#[async_trait]
impl IdempotencyStore for PostgresStore {
    async fn claim_idempotency(
        &self,
        scope: &IdempotencyScope,
        request_hash: &str,
        now: UnixMillis,
        expire_before: UnixMillis,
        stale_before: UnixMillis,
    ) -> StoreResult<IdempotencyClaim> {
        let mut tx = self.pool.begin().await?;
        // One statement decides: insert, or take over an expired or stale record. A
        // record it leaves alone is still locked by it, so the read below is stable.
        let started = sqlx::query(
            "INSERT INTO idempotency_records AS r
                 (scope, idempotency_key, method, path, request_hash, state, created_at, locked_at)
             VALUES ($1, $2, $3, $4, $5, 'in_progress', $6, $6)
             ON CONFLICT (scope, idempotency_key, method, path) DO UPDATE SET
                 request_hash = excluded.request_hash, state = 'in_progress', response_status = NULL,
                 response_body = NULL, created_at = excluded.created_at, locked_at = excluded.locked_at
             WHERE r.created_at < $7 OR (r.state = 'in_progress' AND r.locked_at < $8)
             RETURNING 1",
        )
        .bind(&scope.owner)
        .bind(&scope.key)
        .bind(&scope.method)
        .bind(&scope.path)
        .bind(request_hash)
        .bind(now)
        .bind(expire_before)
        .bind(stale_before)
        .fetch_optional(&mut *tx)
        .await?;
        if started.is_some() {
            tx.commit().await?;
            return Ok(IdempotencyClaim::Started);
        }
        let sql = format!(
            "SELECT state, response_status, response_body, request_hash FROM idempotency_records WHERE {KEY_MATCH}"
        );
        let row = sqlx::query(&sql)
            .bind(&scope.owner)
            .bind(&scope.key)
            .bind(&scope.method)
            .bind(&scope.path)
            .fetch_one(&mut *tx)
            .await?;
        let state: String = row.try_get("state")?;
        if state != "complete" {
            return Ok(IdempotencyClaim::InProgress);
        }
        let status: i64 = row.try_get("response_status")?;
        Ok(IdempotencyClaim::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            body: row.try_get("response_body")?,
            request_hash: row.try_get("request_hash")?,
        }))
    }

    async fn complete_idempotency(
        &self,
        scope: &IdempotencyScope,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()> {
        let sql = format!(
            "UPDATE idempotency_records SET state = 'complete', response_status = $5, response_body = $6 WHERE {KEY_MATCH}"
        );
        sqlx::query(&sql)
            .bind(&scope.owner)
            .bind(&scope.key)
            .bind(&scope.method)
            .bind(&scope.path)
            .bind(i64::from(status))
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn abandon_idempotency(&self, scope: &IdempotencyScope) -> StoreResult<()> {
        let sql = format!("DELETE FROM idempotency_records WHERE state = 'in_progress' AND {KEY_MATCH}");
        sqlx::query(&sql)
            .bind(&scope.owner)
            .bind(&scope.key)
            .bind(&scope.method)
            .bind(&scope.path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_idempotency(&self, expire_before: UnixMillis) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        if !try_duty(&mut tx, Duty::PruneIdempotency).await? {
            return Ok(0);
        }
        let result = sqlx::query("DELETE FROM idempotency_records WHERE created_at < $1")
            .bind(expire_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(result.rows_affected())
    }
}
