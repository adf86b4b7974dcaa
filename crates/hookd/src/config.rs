//! Startup: turns `ServeArgs` into a ready store and API configuration. Opens the data
//! directory and database, resolves the admin token, and creates the `default`
//! account on an empty database. Each failure is a [`StartupError`] with a message an
//! operator can act on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookd_core::secret::generate_admin_token;
use hookd_core::{
    ApiKey, DestinationPolicy, EventCatalog, PublicationRules, RetryPolicy, SecretSealer, TokenHash, UrlRules,
};
use hookd_delivery::DispatcherConfig;
use hookd_store::{PostgresOptions, PostgresStore, SqliteStore, Store, StoreError};

use crate::cli::{Role, ServeArgs};
use crate::master_key;

const ADMIN_TOKEN_FILE: &str = "admin-token";
const DEFAULT_KEY_FILE: &str = "default-api-key";
const DEFAULT_ACCOUNT_FILE: &str = "default-account-id";
const SQLITE_FILE: &str = "hookd.db";
const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Why hookd could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("data directory {path} is not usable: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("unknown database URL scheme in {0:?}: use sqlite://PATH or postgres://...")]
    UnknownDatabaseScheme(String),
    #[error(
        "--role {0} needs a database shared with other instances (--database-url postgres://...); a SQLite file belongs to one instance, so use --role all"
    )]
    RoleNeedsSharedDatabase(&'static str),
    #[error(
        "--retention ({retention}) must be longer than the retry schedule ({retries}), or 0s to keep everything"
    )]
    RetentionShorterThanRetries { retention: String, retries: String },
    #[error(
        "--outbox needs PostgreSQL (--database-url postgres://...): the outbox is a table in the producer's own database, written in the producer's own transaction, and a SQLite file belongs to hookd alone"
    )]
    OutboxNeedsPostgres,
    #[error("could not open the database: {0}")]
    Database(#[source] StoreError),
    #[error("--admin-token must be at least {MIN_ADMIN_TOKEN_LEN} characters")]
    AdminTokenTooShort,
    #[error("could not write {path}: {source}")]
    WriteFile { path: PathBuf, source: std::io::Error },
    #[error("could not read the master key from {path}: {reason}")]
    MasterKeyFile { path: PathBuf, reason: String },
    #[error(
        "the master key does not open this database, and a key rotation did not finish ({0} exists): run `hookd rotate-master-key` with the same flags to finish it"
    )]
    RotationInterrupted(PathBuf),
    #[error(
        "--master-key was given, so the key lives outside DATA_DIR: give the new one with --new-master-key"
    )]
    NewMasterKeyNeeded,
    #[error(
        "a rotation to another key did not finish ({0} exists): run again without --new-master-key to finish it first"
    )]
    RotationPendingWithOtherKey(PathBuf),
    #[error("{0}")]
    Catalog(#[from] hookd_core::catalog::InvalidEventTypeName),
    #[error(
        "--demo-renderer calls the operator API and needs the admin token: pass --admin-token, or keep DATA_DIR/admin-token"
    )]
    DemoRendererNeedsToken,
    #[error("could not set up the outbound HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("could not listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
}

/// What `serve` runs with once startup succeeded.
pub struct Prepared {
    pub store: Arc<dyn Store>,
    pub publication: PublicationRules,
    pub admin_token_hash: TokenHash,
    /// The admin token itself, only with `--demo-renderer`, which uses it to call the
    /// operator API.
    pub admin_token: Option<String>,
    pub dispatcher: DispatcherConfig,
}

pub async fn prepare(args: &ServeArgs) -> Result<Prepared, StartupError> {
    let catalog = EventCatalog::with_extra_types(args.event_types.clone())?;
    if args.admin_token.as_deref().is_some_and(|token| token.len() < MIN_ADMIN_TOKEN_LEN) {
        return Err(StartupError::AdminTokenTooShort);
    }
    check_retention(args)?;
    std::fs::create_dir_all(&args.storage.data_dir)
        .and_then(|()| std::fs::read_dir(&args.storage.data_dir).map(drop))
        .map_err(|source| StartupError::DataDir { path: args.storage.data_dir.clone(), source })?;
    let sealer =
        SecretSealer::new(&master_key::resolve(args.storage.master_key.as_ref(), &args.storage.data_dir)?);
    let url = args.storage.database_url.as_deref();
    let postgres = PostgresOptions {
        max_connections: args.database_max_connections,
        acquire_timeout: args.database_timeout,
    };
    let store = match open_database(&args.storage.data_dir, url, &postgres, sealer).await {
        Err(StartupError::Database(StoreError::WrongMasterKey))
            if master_key::rotation_pending(&args.storage.data_dir) =>
        {
            return Err(StartupError::RotationInterrupted(
                args.storage.data_dir.join(master_key::NEXT_KEY_FILE),
            ));
        }
        opened => opened?,
    };
    if !store.shared() && args.role != Role::All {
        store.close().await;
        return Err(StartupError::RoleNeedsSharedDatabase(if args.role == Role::Api {
            "api"
        } else {
            "worker"
        }));
    }
    if args.outbox == Some(true) && store.outbox().is_none() {
        store.close().await;
        return Err(StartupError::OutboxNeedsPostgres);
    }
    let admin_token_hash = resolve_admin_token(args, store.as_ref()).await?;
    bootstrap_default_account(&args.storage.data_dir, store.as_ref()).await?;
    let destinations = DestinationPolicy::new(args.allow_destinations.clone());
    let url_rules = UrlRules { allow_http: args.allow_http, destinations: destinations.clone() };
    let dispatcher = DispatcherConfig {
        retry: RetryPolicy { schedule: args.retry_schedule.clone() },
        attempt_timeout: args.attempt_timeout,
        destinations,
        max_in_flight: args.max_in_flight as usize,
        max_in_flight_per_endpoint: args.max_in_flight_per_endpoint,
        disable_after: args.disable_after,
        send_traceparent: args.send_traceparent,
    };
    // Only the demo renderer needs the token itself; otherwise only its hash is kept.
    let admin_token = if args.demo_renderer {
        let token = match &args.admin_token {
            Some(token) => Some(token.clone()),
            None => std::fs::read_to_string(args.storage.data_dir.join(ADMIN_TOKEN_FILE))
                .ok()
                .map(|t| t.trim().to_owned()),
        };
        if !token.as_deref().is_some_and(|token| admin_token_hash.matches(&TokenHash::of(token))) {
            return Err(StartupError::DemoRendererNeedsToken);
        }
        token
    } else {
        None
    };
    let publication = PublicationRules { catalog, url_rules };
    Ok(Prepared { store, publication, admin_token_hash, admin_token, dispatcher })
}

/// Opens the database `database_url` names (SQLite under `data_dir` if none).
pub(crate) async fn open_database(
    data_dir: &Path,
    database_url: Option<&str>,
    postgres: &PostgresOptions,
    sealer: SecretSealer,
) -> Result<Arc<dyn Store>, StartupError> {
    let opened: Result<Arc<dyn Store>, StoreError> = match database_url {
        None => SqliteStore::open(&data_dir.join(SQLITE_FILE), sealer).await.map(|s| Arc::new(s) as _),
        Some(url) if url.starts_with("sqlite:") => {
            SqliteStore::open_url(url, sealer).await.map(|s| Arc::new(s) as _)
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            PostgresStore::connect(url, postgres, sealer).await.map(|s| Arc::new(s) as _)
        }
        Some(url) => {
            let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
            return Err(StartupError::UnknownDatabaseScheme(scheme.to_owned()));
        }
    };
    opened.map_err(StartupError::Database)
}

/// Pruning a delivery that still has retries ahead would silently drop it.
fn check_retention(args: &ServeArgs) -> Result<(), StartupError> {
    let retries: std::time::Duration = args.retry_schedule.delays().iter().sum();
    if !args.retention.is_zero() && args.retention <= retries {
        return Err(StartupError::RetentionShorterThanRetries {
            retention: humantime::format_duration(args.retention).to_string(),
            retries: humantime::format_duration(retries).to_string(),
        });
    }
    Ok(())
}

/// The flag wins; else the hash saved at first start; else a new token is generated,
/// written to DATA_DIR/admin-token and printed once.
async fn resolve_admin_token(args: &ServeArgs, store: &dyn Store) -> Result<TokenHash, StartupError> {
    if let Some(token) = &args.admin_token {
        return Ok(TokenHash::of(token));
    }
    if let Some(hash) = store.admin_token_hash().await.map_err(StartupError::Database)? {
        return Ok(hash);
    }
    let token = generate_admin_token();
    let path = args.storage.data_dir.join(ADMIN_TOKEN_FILE);
    write_private_file(&path, &token)?;
    let hash = TokenHash::of(&token);
    if !store.save_admin_token_hash(&hash).await.map_err(StartupError::Database)? {
        // Another instance saved one first; use that one and drop ours.
        let _ = std::fs::remove_file(&path);
        return store
            .admin_token_hash()
            .await
            .map_err(StartupError::Database)?
            .ok_or_else(|| StartupError::Database(StoreError::Corrupt("admin token hash vanished".into())));
    }
    println!("hookd: generated an admin token, saved to {} (shown once): {token}", path.display());
    Ok(hash)
}

/// On an empty database, creates account `default` and saves its key. The key file is
/// written before the account is committed, so a crash cannot leave a key nobody has.
async fn bootstrap_default_account(data_dir: &Path, store: &dyn Store) -> Result<(), StartupError> {
    let key = ApiKey::generate();
    let pending = data_dir.join(format!("{DEFAULT_KEY_FILE}.pending"));
    write_private_file(&pending, key.expose())?;
    let created = store.bootstrap_default_account(&key, hookd_store::now_millis()).await;
    let final_path = data_dir.join(DEFAULT_KEY_FILE);
    match created {
        Ok(Some(account)) => {
            std::fs::rename(&pending, &final_path)
                .map_err(|source| StartupError::WriteFile { path: final_path.clone(), source })?;
            // Not a secret; saved so scripts (and the README) can publish to it.
            write_private_file(&data_dir.join(DEFAULT_ACCOUNT_FILE), account.account_id.as_str())?;
            println!(
                "hookd: created account 'default'; its API key is saved to {} (shown once): {}",
                final_path.display(),
                key.expose()
            );
            Ok(())
        }
        Ok(None) => {
            let _ = std::fs::remove_file(&pending);
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_file(&pending);
            Err(StartupError::Database(error))
        }
    }
}

/// Writes a credential readable by the owner only, durably.
pub(crate) fn write_private_file(path: &Path, contents: &str) -> Result<(), StartupError> {
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        writeln!(file, "{contents}")?;
        file.sync_all()
    };
    write().map_err(|source| StartupError::WriteFile { path: path.to_owned(), source })
}
