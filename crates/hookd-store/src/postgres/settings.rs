//! Server-wide settings (cursor key, admin token hash, master key check), the
//! first-start bootstrap, and re-sealing secrets for a master key rotation.

use async_trait::async_trait;
use hookd_core::{AccountId, ApiKey, CursorKey, EndpointSecret, SecretSealer, TokenHash};

use super::{Duty, PostgresStore};
use crate::schema::{ADMIN_TOKEN_HASH, CURSOR_KEY, MASTER_KEY_CHECK};
use crate::{Account, SettingsStore, StoreError, StoreResult, UnixMillis};

impl PostgresStore {
    /// Refuses a master key other than the one this database was first opened with
    /// (every instance must be given the same key), then seals any secret stored in
    /// clear by a hookd from before secrets were sealed. Instances starting together
    /// agree on the first check written; sealing a row is conditional on its old
    /// value, so two instances sealing at once do not clash.
    pub(super) async fn prepare_sealing(&self) -> StoreResult<()> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(MASTER_KEY_CHECK)
            .bind(self.sealer.key_check().into_bytes())
            .execute(&self.pool)
            .await?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(MASTER_KEY_CHECK)
            .fetch_one(&self.pool)
            .await?;
        let stored = String::from_utf8(stored).map_err(|_| StoreError::Corrupt("master key check".into()))?;
        self.sealer.verify_key_check(&stored).map_err(|_| StoreError::WrongMasterKey)?;

        let stored: Vec<(String, String)> =
            sqlx::query_as("SELECT endpoint_id, secret FROM endpoints").fetch_all(&self.pool).await?;
        for (endpoint_id, secret) in stored.into_iter().filter(|(_, secret)| !SecretSealer::is_sealed(secret))
        {
            let sealed = self.sealer.seal(&EndpointSecret::from_stored(secret.clone()), &endpoint_id);
            sqlx::query("UPDATE endpoints SET secret = $1 WHERE endpoint_id = $2 AND secret = $3")
                .bind(sealed)
                .bind(&endpoint_id)
                .bind(&secret)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl SettingsStore for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn availability(&self) -> &crate::Availability {
        &self.availability
    }

    async fn close(&self) {
        PostgresStore::close(self).await;
    }

    async fn reseal_secrets(&self, next: &SecretSealer) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        // Row locks: a create or rotate running now waits, then sees the new check.
        let stored: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT endpoint_id, secret, previous_secret FROM endpoints FOR UPDATE")
                .fetch_all(&mut *tx)
                .await?;
        let mut ids = Vec::with_capacity(stored.len());
        let mut secrets = Vec::with_capacity(stored.len());
        let mut previous_secrets = Vec::with_capacity(stored.len());
        for (endpoint_id, secret, previous) in &stored {
            let reseal = |sealed: &str| {
                self.sealer
                    .reseal(sealed, endpoint_id, next)
                    .map_err(|_| StoreError::unopenable_secret(endpoint_id))
            };
            ids.push(endpoint_id.clone());
            secrets.push(reseal(secret)?);
            previous_secrets.push(previous.as_deref().map(reseal).transpose()?);
        }
        sqlx::query(
            "UPDATE endpoints SET secret = r.secret, previous_secret = r.previous_secret \
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS r(endpoint_id, secret, previous_secret) \
             WHERE endpoints.endpoint_id = r.endpoint_id",
        )
        .bind(&ids)
        .bind(&secrets)
        .bind(&previous_secrets)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE settings SET value = $1 WHERE name = $2")
            .bind(next.key_check().into_bytes())
            .bind(MASTER_KEY_CHECK)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored.len() as u64)
    }

    fn shared(&self) -> bool {
        true
    }

    fn outbox(&self) -> Option<std::sync::Arc<dyn crate::OutboxStore>> {
        Some(std::sync::Arc::new(self.clone()))
    }

    async fn cursor_key(&self) -> StoreResult<CursorKey> {
        // One statement that always returns the stored row, ours or the first
        // instance's. (An insert-if-absent CTE beside a SELECT is not enough: when
        // another instance inserts concurrently, the insert waits for it and does
        // nothing, and the SELECT's snapshot predates that row, so it finds none.)
        // `DO UPDATE` to the same value locks the committed row and returns it.
        let stored: Vec<u8> = sqlx::query_scalar(
            "INSERT INTO settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = settings.value
             RETURNING value",
        )
        .bind(CURSOR_KEY)
        .bind(&CursorKey::generate().as_bytes()[..])
        .fetch_one(&self.pool)
        .await?;
        let bytes: [u8; 32] =
            stored.try_into().map_err(|_| StoreError::Corrupt("cursor key is not 32 bytes".into()))?;
        Ok(CursorKey::from_bytes(bytes))
    }

    async fn admin_token_hash(&self) -> StoreResult<Option<TokenHash>> {
        let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(ADMIN_TOKEN_HASH)
            .fetch_optional(&self.pool)
            .await?;
        stored
            .map(|hex| {
                std::str::from_utf8(&hex)
                    .ok()
                    .and_then(TokenHash::from_hex)
                    .ok_or_else(|| StoreError::Corrupt("admin token hash".into()))
            })
            .transpose()
    }

    async fn save_admin_token_hash(&self, hash: &TokenHash) -> StoreResult<bool> {
        let result =
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(ADMIN_TOKEN_HASH)
                .bind(hash.to_hex().into_bytes())
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn bootstrap_default_account(&self, key: &ApiKey, now: UnixMillis) -> StoreResult<Option<Account>> {
        let mut tx = self.pool.begin().await?;
        // Instances starting together queue here, so exactly one creates `default`.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(Duty::Bootstrap as i64)
            .execute(&mut *tx)
            .await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE account_id <> $1)")
                .bind(hookd_core::operational::OPERATIONS_ACCOUNT_ID)
                .fetch_one(&mut *tx)
                .await?;
        if exists {
            return Ok(None);
        }
        let account =
            Account { account_id: AccountId::new_random(), name: "default".into(), created_at: now };
        super::accounts::insert_account(&mut tx, &account, key).await?;
        tx.commit().await?;
        Ok(Some(account))
    }
}
