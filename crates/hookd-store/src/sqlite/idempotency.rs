//! Stored responses for `Idempotency-Key`.
//!
//! The primary key makes the claim atomic: of two concurrent first requests, exactly
//! one inserts the in-progress row; the other sees it and is told to wait (409).

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::{IdempotencyClaim, IdempotencyScope, IdempotencyStore, StoreResult, StoredResponse, UnixMillis};

const KEY_MATCH: &str = "scope = ? AND idempotency_key = ? AND method = ? AND path = ?";

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn claim_idempotency(
        &self,
        scope: &IdempotencyScope,
        request_hash: &str,
        now: UnixMillis,
        expire_before: UnixMillis,
        stale_before: UnixMillis,
    ) -> StoreResult<IdempotencyClaim> {
        let mut tx = self.writer.begin().await?;
        let sql = format!(
            "SELECT state, response_status, response_body, request_hash, created_at, locked_at
             FROM idempotency_records WHERE {KEY_MATCH}"
        );
        let existing = sqlx::query(&sql)
            .bind(&scope.owner)
            .bind(&scope.key)
            .bind(&scope.method)
            .bind(&scope.path)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            let created_at: i64 = row.try_get("created_at")?;
            let locked_at: i64 = row.try_get("locked_at")?;
            let state: String = row.try_get("state")?;
            let live = created_at >= expire_before;
            if live && state == "complete" {
                let status: i64 = row.try_get("response_status")?;
                return Ok(IdempotencyClaim::Replay(StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    body: row.try_get("response_body")?,
                    request_hash: row.try_get("request_hash")?,
                }));
            }
            if live && locked_at >= stale_before {
                return Ok(IdempotencyClaim::InProgress);
            }
        }
        let sql = "INSERT INTO idempotency_records
                (scope, idempotency_key, method, path, request_hash, state, created_at, locked_at)
             VALUES (?, ?, ?, ?, ?, 'in_progress', ?, ?)
             ON CONFLICT (scope, idempotency_key, method, path) DO UPDATE SET
                request_hash = excluded.request_hash, state = 'in_progress', response_status = NULL,
                response_body = NULL, created_at = excluded.created_at, locked_at = excluded.locked_at";
        sqlx::query(sql)
            .bind(&scope.owner)
            .bind(&scope.key)
            .bind(&scope.method)
            .bind(&scope.path)
            .bind(request_hash)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(IdempotencyClaim::Started)
    }

    async fn complete_idempotency(
        &self,
        scope: &IdempotencyScope,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()> {
        let sql = format!(
            "UPDATE idempotency_records SET state = 'complete', response_status = ?, response_body = ? WHERE {KEY_MATCH}"
        );
        sqlx::query(&sql)
            .bind(i64::from(status))
            .bind(body)
            .bind(&scope.owner)
            .bind(&scope.key)
            .bind(&scope.method)
            .bind(&scope.path)
            .execute(&self.writer)
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
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn prune_idempotency(&self, expire_before: UnixMillis) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM idempotency_records WHERE created_at < ?")
            .bind(expire_before)
            .execute(&self.writer)
            .await?;
        Ok(result.rows_affected())
    }
}
