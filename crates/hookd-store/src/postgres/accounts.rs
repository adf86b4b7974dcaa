//! Accounts and API keys.

use async_trait::async_trait;
use hookd_core::{AccountId, ApiKey, ApiKeyId, TokenHash};
use sqlx::{Postgres, Row, Transaction};

use super::{PostgresStore, id_array};
use crate::rows::{self, RecordRow};
use crate::{Account, AccountStore, StoreError, StoreResult, StoredApiKey, UnixMillis};

pub(super) async fn insert_account(
    tx: &mut Transaction<'_, Postgres>,
    account: &Account,
    key: &ApiKey,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO accounts (account_id, name, created_at) VALUES ($1, $2, $3)")
        .bind(account.account_id.as_str())
        .bind(&account.name)
        .bind(account.created_at)
        .execute(&mut **tx)
        .await?;
    insert_key(tx, &account.account_id, key, account.created_at).await
}

async fn insert_key(
    tx: &mut Transaction<'_, Postgres>,
    account_id: &AccountId,
    key: &ApiKey,
    now: UnixMillis,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO api_keys (key_id, account_id, key_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(key.key_id().as_str())
        .bind(account_id.as_str())
        .bind(key.hash().to_hex())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_account(&self, name: &str, key: &ApiKey, now: UnixMillis) -> StoreResult<Account> {
        let account = Account { account_id: AccountId::new_random(), name: name.to_owned(), created_at: now };
        let mut tx = self.pool.begin().await?;
        insert_account(&mut tx, &account, key).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn add_api_key(&self, account_id: &AccountId, key: &ApiKey, now: UnixMillis) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // FOR SHARE keeps the account from vanishing before the key is inserted.
        let exists =
            sqlx::query("SELECT 1 FROM accounts WHERE account_id = $1 AND account_id <> $2 FOR SHARE")
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
        let result =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE key_id = $2")
                .bind(now)
                .bind(key_id.as_str())
                .execute(&self.pool)
                .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn find_api_key(&self, key_id: &ApiKeyId) -> StoreResult<Option<StoredApiKey>> {
        let row = sqlx::query(
            "SELECT account_id, key_hash, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE key_id = $1",
        )
        .bind(key_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(StoredApiKey {
            key_id: key_id.clone(),
            account_id: rows::account_id(&row)?,
            key_hash: TokenHash::from_hex(&row.text("key_hash")?)
                .ok_or_else(|| StoreError::Corrupt("api key hash".into()))?,
            revoked: row.try_get("revoked")?,
        }))
    }

    async fn existing_accounts(&self, account_ids: &[AccountId]) -> StoreResult<Vec<AccountId>> {
        let found = publishable_accounts(&self.pool, id_array(account_ids.iter())).await?;
        found
            .iter()
            .map(|id| AccountId::parse(id).map_err(|_| StoreError::Corrupt("account id".into())))
            .collect()
    }
}

/// Which of these accounts exist and may be published to: not the reserved operations
/// account, whose events only hookd itself emits.
pub(super) async fn publishable_accounts<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    account_ids: Vec<String>,
) -> StoreResult<Vec<String>> {
    let found =
        sqlx::query_scalar("SELECT account_id FROM accounts WHERE account_id = ANY($1) AND account_id <> $2")
            .bind(account_ids)
            .bind(hookd_core::operational::OPERATIONS_ACCOUNT_ID)
            .fetch_all(executor)
            .await?;
    Ok(found)
}
