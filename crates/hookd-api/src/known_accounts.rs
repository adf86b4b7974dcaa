//! Accounts known to exist, so that a publish does not ask the database each time
//! (on SQLite, a round trip to sqlx's thread per request).
//!
//! hookd never deletes an account, so an account once seen stays valid for the
//! process's life, on every instance; an id not in the set is looked up. The set is
//! bounded: past [`CAPACITY`] ids, the rest are looked up every time.

use std::collections::HashSet;
use std::sync::RwLock;

use hookd_core::AccountId;

/// About 10 MiB of ids at most.
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct KnownAccounts {
    ids: RwLock<HashSet<AccountId>>,
}

impl KnownAccounts {
    /// Those of `ids` not known to exist.
    pub(crate) fn unknown<'a>(&self, ids: impl IntoIterator<Item = &'a AccountId>) -> Vec<AccountId> {
        // A poisoned lock only means a panic elsewhere mid-insert: the set is still a
        // set of existing accounts.
        let known = self.ids.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        ids.into_iter().filter(|id| !known.contains(*id)).cloned().collect()
    }

    /// Records accounts the database said exist.
    pub(crate) fn remember(&self, ids: &[AccountId]) {
        let mut known = self.ids.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in ids {
            if known.len() >= CAPACITY {
                return;
            }
            known.insert(id.clone());
        }
    }
}

/// Those of `ids` that do not exist, asking the database only about ids not yet known.
pub(crate) async fn ensure_exist(
    state: &crate::ApiState,
    ids: &[AccountId],
) -> Result<Vec<AccountId>, hookd_store::StoreError> {
    let unknown = state.known_accounts.unknown(ids);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let existing = state.store.existing_accounts(&unknown).await?;
    state.known_accounts.remember(&existing);
    Ok(unknown.into_iter().filter(|id| !existing.contains(id)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u8) -> AccountId {
        AccountId::parse(&format!("{n:032x}")).expect("account id")
    }

    #[test]
    fn an_account_is_unknown_until_the_database_says_it_exists() {
        let known = KnownAccounts::default();
        assert_eq!(known.unknown([&account(1), &account(2)]), vec![account(1), account(2)]);
        known.remember(&[account(1)]);
        assert_eq!(known.unknown([&account(1), &account(2)]), vec![account(2)]);
    }
}
