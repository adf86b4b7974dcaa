//! Where the master key lives, and its rotation (`hookd rotate-master-key`).
//!
//! The key comes from `--master-key` / `HOOKD_MASTER_KEY`, or from DATA_DIR/master-key,
//! generated there on first start. Whether it is the right key is decided by the
//! database (its key check), when the store opens.
//!
//! A rotation with the key file is crash-safe: the new key is written to
//! DATA_DIR/master-key.new before the database re-seals (one transaction), and renamed
//! over master-key after; the old key is kept as master-key.previous for restoring
//! older backups. If it stops in between, running the command again finishes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookd_core::{MasterKey, SecretSealer};
use hookd_store::{Store, StoreError};

use crate::cli::RotateMasterKeyArgs;
use crate::config::{StartupError, open_database, write_private_file};

/// Where the master key lives when `--master-key` is not given.
pub const MASTER_KEY_FILE: &str = "master-key";
/// The next key, while a rotation is under way.
pub const NEXT_KEY_FILE: &str = "master-key.new";
/// The key before the last rotation: backups from before it need it.
pub const PREVIOUS_KEY_FILE: &str = "master-key.previous";

/// The flag (or `HOOKD_MASTER_KEY`) wins; else DATA_DIR/master-key; else a new key is
/// generated there (0600) and its place printed.
pub fn resolve(explicit: Option<&MasterKey>, data_dir: &Path) -> Result<MasterKey, StartupError> {
    if let Some(key) = explicit {
        return Ok(key.clone());
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    match read_key(&path)? {
        Some(key) => Ok(key),
        None => {
            let key = MasterKey::generate();
            write_private_file(&path, &key.to_hex())?;
            println!(
                "hookd: generated the master key that seals endpoint secrets, saved to {}; back it up with the database: without it no endpoint secret can be read",
                path.display()
            );
            Ok(key)
        }
    }
}

/// Whether DATA_DIR holds the next key of a rotation that did not finish.
pub fn rotation_pending(data_dir: &Path) -> bool {
    data_dir.join(NEXT_KEY_FILE).exists()
}

/// What a rotation did, for the command to print.
#[derive(Debug)]
pub struct Rotated {
    /// How many secrets were re-sealed; `None` when this run only finished an earlier
    /// rotation whose re-seal had already committed.
    pub secrets: Option<u64>,
    /// Where the new key was saved (`None`: the operator holds it).
    pub saved_to: Option<PathBuf>,
}

pub async fn rotate(args: &RotateMasterKeyArgs) -> Result<Rotated, StartupError> {
    match &args.storage.master_key {
        Some(current) => {
            let next = args.new_master_key.clone().ok_or(StartupError::NewMasterKeyNeeded)?;
            let secrets = reseal(args, current, &next).await?;
            Ok(Rotated { secrets: Some(secrets), saved_to: None })
        }
        None => rotate_key_file(args).await,
    }
}

async fn rotate_key_file(args: &RotateMasterKeyArgs) -> Result<Rotated, StartupError> {
    let current_path = args.storage.data_dir.join(MASTER_KEY_FILE);
    let next_path = args.storage.data_dir.join(NEXT_KEY_FILE);
    let current = read_key(&current_path)?.ok_or_else(|| StartupError::MasterKeyFile {
        path: current_path.clone(),
        reason: "there is no key file to rotate".into(),
    })?;
    let pending = read_key(&next_path)?;
    let next = match (pending, &args.new_master_key) {
        (Some(pending), Some(given)) if pending.to_hex() != given.to_hex() => {
            return Err(StartupError::RotationPendingWithOtherKey(next_path));
        }
        (Some(pending), _) => pending,
        (None, Some(given)) => given.clone(),
        (None, None) => MasterKey::generate(),
    };
    // Saved before the database moves to it, so that the key the data needs always
    // exists somewhere.
    write_private_file(&next_path, &next.to_hex())?;
    let secrets = match reseal(args, &current, &next).await {
        Ok(secrets) => Some(secrets),
        // The re-seal committed before an interruption: only the files are left to move.
        Err(StartupError::Database(StoreError::WrongMasterKey)) => {
            open(args, &next).await?.close().await;
            None
        }
        Err(error) => return Err(error),
    };
    // Copy, then replace in one rename: master-key exists at every instant, so a
    // crash here leaves nothing a rerun cannot finish.
    write_private_file(&args.storage.data_dir.join(PREVIOUS_KEY_FILE), &current.to_hex())?;
    std::fs::rename(&next_path, &current_path)
        .and_then(|()| std::fs::File::open(&args.storage.data_dir)?.sync_all())
        .map_err(|source| StartupError::WriteFile { path: current_path.clone(), source })?;
    Ok(Rotated { secrets, saved_to: Some(current_path) })
}

async fn reseal(
    args: &RotateMasterKeyArgs,
    current: &MasterKey,
    next: &MasterKey,
) -> Result<u64, StartupError> {
    let store = open(args, current).await?;
    let resealed = store.reseal_secrets(&SecretSealer::new(next)).await;
    store.close().await;
    resealed.map_err(StartupError::Database)
}

/// Opens the database with `key`; a wrong key is `Database(WrongMasterKey)`. Two
/// connections: the command runs one transaction.
async fn open(args: &RotateMasterKeyArgs, key: &MasterKey) -> Result<Arc<dyn Store>, StartupError> {
    let url = args.storage.database_url.as_deref();
    let postgres = hookd_store::PostgresOptions { max_connections: 2, ..Default::default() };
    open_database(&args.storage.data_dir, url, &postgres, SecretSealer::new(key)).await
}

fn read_key(path: &Path) -> Result<Option<MasterKey>, StartupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::from_hex(&text).map(Some).map_err(|error| StartupError::MasterKeyFile {
            path: path.to_owned(),
            reason: error.to_string(),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(StartupError::MasterKeyFile { path: path.to_owned(), reason: error.to_string() }),
    }
}
