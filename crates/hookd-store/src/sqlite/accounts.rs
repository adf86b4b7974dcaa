//! Accounts and API keys.

use async_trait::async_trait;
use hookd_core::{AccountId, ApiKey, ApiKeyId, TokenHash};
use sqlx::{Row, Sqlite, Transaction};

use super::{SqliteStore, json_array};
use crate::{Account, AccountStore, StoreError, StoreResult, StoredApiKey, UnixMillis};

pub(super) async fn insert_account(
    tx: &mut Transaction<'_, Sqlite>,
    account: &Account,
    key: &ApiKey,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO accounts (account_id, name, created_at) VALUES (?, ?, ?)")
        .bind(account.account_id.as_str())
        .bind(&account.name)
        .bind(account.created_at)
        .execute(&mut **tx)
        .await?;
    insert_key(tx, &account.account_id, key, account.created_at).await
}

async fn insert_key(
    tx: &mut Transaction<'_, Sqlite>,
    account_id: &AccountId,
    key: &ApiKey,
    now: UnixMillis,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO api_keys (key_id, account_id, key_hash, created_at) VALUES (?, ?, ?, ?)")
        .bind(key.key_id().as_str())
        .bind(account_id.as_str())
        .bind(key.hash().to_hex())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, name: &str, key: &ApiKey, now: UnixMillis) -> StoreResult<Account> {
        let account = Account { account_id: AccountId::new_random(), name: name.to_owned(), created_at: now };
        let mut tx = self.writer.begin().await?;
        insert_account(&mut tx, &account, key).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn add_api_key(&self, account_id: &AccountId, key: &ApiKey, now: UnixMillis) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM accounts WHERE account_id = ? AND account_id <> ?")
            .bind(account_id.as_str())
            .bind(hookd_core::operational::OPERATIONS_ACCOUNT_ID)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        insert_key(&mut tx, account_id, key, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_api_key(&self, key_id: &ApiKeyId, now: UnixMillis) -> StoreResult<()> {
        let result = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?")
            .bind(now)
            .bind(key_id.as_str())
            .execute(&self.writer)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn find_api_key(&self, key_id: &ApiKeyId) -> StoreResult<Option<StoredApiKey>> {
        let row =
            sqlx::query("SELECT account_id, key_hash, revoked_at IS NOT NULL FROM api_keys WHERE key_id = ?")
                .bind(key_id.as_str())
                .fetch_optional(&self.reader)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let account_id: String = row.try_get(0)?;
        let key_hash: String = row.try_get(1)?;
        Ok(Some(StoredApiKey {
            key_id: key_id.clone(),
            account_id: AccountId::parse(&account_id)
                .map_err(|_| StoreError::Corrupt("api key account".into()))?,
            key_hash: TokenHash::from_hex(&key_hash)
                .ok_or_else(|| StoreError::Corrupt("api key hash".into()))?,
            revoked: row.try_get(2)?,
        }))
    }

    async fn existing_accounts(&self, account_ids: &[AccountId]) -> StoreResult<Vec<AccountId>> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT account_id FROM accounts WHERE account_id IN (SELECT value FROM json_each(?)) AND account_id <> ?",
        )
        .bind(json_array(account_ids.iter()))
        .bind(hookd_core::operational::OPERATIONS_ACCOUNT_ID)
        .fetch_all(&self.reader)
        .await?;
        found
            .iter()
            .map(|id| AccountId::parse(id).map_err(|_| StoreError::Corrupt("account id".into())))
            .collect()
    }
}
