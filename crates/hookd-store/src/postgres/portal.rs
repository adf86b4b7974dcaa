//! Customer portal sessions: minted, redeemed once, looked up, revoked.

use async_trait::async_trait;
use hookd_core::operational::OPERATIONS_ACCOUNT_ID;
use hookd_core::{PortalSessionId, TokenHash};
use sqlx::Row;

use super::PostgresStore;
use crate::{PortalSession, PortalStore, StoreError, StoreResult, UnixMillis};

#[async_trait]
impl PortalStore for PostgresStore {
    async fn create_portal_session(&self, session: &PortalSession, link_hash: &TokenHash) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM accounts WHERE account_id = $1 AND account_id <> $2")
            .bind(session.account_id.as_str())
            .bind(OPERATIONS_ACCOUNT_ID)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO portal_sessions (session_id, account_id, read_only, link_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.session_id.as_str())
        .bind(session.account_id.as_str())
        .bind(session.read_only)
        .bind(link_hash.to_hex())
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn redeem_portal_link(
        &self,
        session_id: &PortalSessionId,
        link_hash: &TokenHash,
        credential_hash: &TokenHash,
        now: UnixMillis,
    ) -> StoreResult<Option<PortalSession>> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT link_hash FROM portal_sessions WHERE session_id = $1")
                .bind(session_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        let Some(stored) = stored.as_deref().and_then(TokenHash::from_hex) else { return Ok(None) };
        if !stored.matches(link_hash) {
            return Ok(None);
        }
        // One statement: of two redemptions at once, one finds it redeemed.
        let row = sqlx::query(
            "UPDATE portal_sessions SET redeemed_at = $1, credential_hash = $2
             WHERE session_id = $3 AND redeemed_at IS NULL AND revoked_at IS NULL AND expires_at > $1
             RETURNING session_id, account_id, read_only, created_at, expires_at",
        )
        .bind(now)
        .bind(credential_hash.to_hex())
        .bind(session_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(crate::rows::portal_session).transpose()
    }

    async fn find_portal_session(
        &self,
        session_id: &PortalSessionId,
        now: UnixMillis,
    ) -> StoreResult<Option<(PortalSession, TokenHash)>> {
        let row = sqlx::query(
            "SELECT session_id, account_id, read_only, created_at, expires_at, credential_hash FROM portal_sessions
             WHERE session_id = $1 AND credential_hash IS NOT NULL AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(session_id.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let credential: String = row.try_get("credential_hash")?;
        let credential = TokenHash::from_hex(&credential)
            .ok_or_else(|| StoreError::Corrupt("portal session credential hash".into()))?;
        Ok(Some((crate::rows::portal_session(&row)?, credential)))
    }

    async fn revoke_portal_session(&self, session_id: &PortalSessionId, now: UnixMillis) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE portal_sessions SET revoked_at = COALESCE(revoked_at, $1) WHERE session_id = $2",
        )
        .bind(now)
        .bind(session_id.as_str())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn prune_portal_sessions(&self, ended_before: UnixMillis) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM portal_sessions WHERE expires_at < $1")
            .bind(ended_before)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
