//! Server-wide settings (cursor key, admin token hash, master key check), the
//! first-start bootstrap, and re-sealing secrets for a master key rotation.

use async_trait::async_trait;
use hookd_core::{AccountId, ApiKey, CursorKey, EndpointSecret, SecretSealer, TokenHash};
use sqlx::Row;

use super::SqliteStore;
use crate::schema::{ADMIN_TOKEN_HASH, CURSOR_KEY, MASTER_KEY_CHECK};
use crate::{Account, SettingsStore, StoreError, StoreResult, UnixMillis};

impl SqliteStore {
    /// Refuses a master key other than the one this database was first opened with
    /// (so a wrong key fails at startup, not at the first delivery), then seals any
    /// secret stored in clear by a hookd from before secrets were sealed.
    pub(super) async fn prepare_sealing(&self) -> StoreResult<()> {
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(MASTER_KEY_CHECK)
            .bind(self.sealer.key_check().into_bytes())
            .execute(&self.writer)
            .await?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(MASTER_KEY_CHECK)
            .fetch_one(&self.writer)
            .await?;
        let stored = String::from_utf8(stored).map_err(|_| StoreError::Corrupt("master key check".into()))?;
        self.sealer.verify_key_check(&stored).map_err(|_| StoreError::WrongMasterKey)?;

        let stored: Vec<(String, String)> =
            sqlx::query_as("SELECT endpoint_id, secret FROM endpoints").fetch_all(&self.writer).await?;
        for (endpoint_id, secret) in stored.into_iter().filter(|(_, secret)| !SecretSealer::is_sealed(secret))
        {
            let sealed = self.sealer.seal(&EndpointSecret::from_stored(secret.clone()), &endpoint_id);
            sqlx::query("UPDATE endpoints SET secret = ? WHERE endpoint_id = ? AND secret = ?")
                .bind(sealed)
                .bind(&endpoint_id)
                .bind(&secret)
                .execute(&self.writer)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    fn availability(&self) -> &crate::Availability {
        &self.availability
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    fn shared(&self) -> bool {
        false
    }

    fn outbox(&self) -> Option<std::sync::Arc<dyn crate::OutboxStore>> {
        None
    }

    async fn cursor_key(&self) -> StoreResult<CursorKey> {
        let candidate = CursorKey::generate();
        // Insert-if-absent then read: every instance ends up with the same key.
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(CURSOR_KEY)
            .bind(&candidate.as_bytes()[..])
            .execute(&self.writer)
            .await?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(CURSOR_KEY)
            .fetch_one(&self.writer)
            .await?;
        let bytes: [u8; 32] =
            stored.try_into().map_err(|_| StoreError::Corrupt("cursor key is not 32 bytes".into()))?;
        Ok(CursorKey::from_bytes(bytes))
    }

    async fn admin_token_hash(&self) -> StoreResult<Option<TokenHash>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = ?")
            .bind(ADMIN_TOKEN_HASH)
            .fetch_optional(&self.writer)
            .await?;
        row.map(|row| {
            let hex: Vec<u8> = row.try_get(0)?;
            std::str::from_utf8(&hex)
                .ok()
                .and_then(TokenHash::from_hex)
                .ok_or_else(|| StoreError::Corrupt("admin token hash".into()))
        })
        .transpose()
    }

    async fn save_admin_token_hash(&self, hash: &TokenHash) -> StoreResult<bool> {
        let result =
            sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
                .bind(ADMIN_TOKEN_HASH)
                .bind(hash.to_hex().into_bytes())
                .execute(&self.writer)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn bootstrap_default_account(&self, key: &ApiKey, now: UnixMillis) -> StoreResult<Option<Account>> {
        let mut tx = self.writer.begin().await?;
        let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE account_id <> ?")
            .bind(hookd_core::operational::OPERATIONS_ACCOUNT_ID)
            .fetch_one(&mut *tx)
            .await?;
        if accounts > 0 {
            return Ok(None);
        }
        let account =
            Account { account_id: AccountId::new_random(), name: "default".into(), created_at: now };
        super::accounts::insert_account(&mut tx, &account, key).await?;
        tx.commit().await?;
        Ok(Some(account))
    }

    async fn reseal_secrets(&self, next: &SecretSealer) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let stored: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT endpoint_id, secret, previous_secret FROM endpoints")
                .fetch_all(&mut *tx)
                .await?;
        for (endpoint_id, secret, previous) in &stored {
            let reseal = |sealed: &str| {
                self.sealer
                    .reseal(sealed, endpoint_id, next)
                    .map_err(|_| StoreError::unopenable_secret(endpoint_id))
            };
            sqlx::query("UPDATE endpoints SET secret = ?, previous_secret = ? WHERE endpoint_id = ?")
                .bind(reseal(secret)?)
                .bind(previous.as_deref().map(reseal).transpose()?)
                .bind(endpoint_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE settings SET value = ? WHERE name = ?")
            .bind(next.key_check().into_bytes())
            .bind(MASTER_KEY_CHECK)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored.len() as u64)
    }
}
