//! Throwaway PostgreSQL databases for tests and benchmarks: each gets an empty
//! database of its own on a shared server, so runs never see each other's rows.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::StoreResult;

/// An empty database created on the server that `admin_url` points to.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates `hookd_scratch_<random>` on the server of `admin_url` (a URL of any
    /// database there that may `CREATE DATABASE`).
    pub async fn create(admin_url: &str) -> StoreResult<Self> {
        let name = format!("hookd_scratch_{}", hookd_core::EventId::new_random());
        let mut admin = PgConnection::connect(admin_url).await?;
        // A name cannot be a bound parameter; this one is ours and only [a-z0-9_].
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
        admin.close().await?;
        let url = with_database(admin_url, &name);
        Ok(Self { admin_url: admin_url.to_owned(), name, url })
    }

    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops it, closing any connection still open to it.
    pub async fn drop_database(self) -> StoreResult<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        Ok(())
    }
}

/// `url` with its database name replaced (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[authority_start..].find('/').map(|i| authority_start + i);
    let query_start = url.find('?');
    match (path_start, query_start) {
        (Some(path), Some(query)) if path < query => format!("{}/{database}{}", &url[..path], &url[query..]),
        (Some(path), _) => format!("{}/{database}", &url[..path]),
        (None, Some(query)) => format!("{}/{database}{}", &url[..query], &url[query..]),
        (None, None) => format!("{url}/{database}"),
    }
}

/// The variable that points the test suites at a PostgreSQL server.
pub const TEST_DATABASE_URL_VAR: &str = "HOOKD_TEST_DATABASE_URL";

/// The test suites' PostgreSQL server from `HOOKD_TEST_DATABASE_URL`. Without it the
/// PostgreSQL tests are skipped (and it says so once, past the test harness's output
/// capture), except in CI (`CI=true`), where a missing server must fail the run.
///
/// # Panics
/// When `CI=true` and the variable is not set.
pub fn test_server_url() -> Option<String> {
    static SAID: std::sync::Once = std::sync::Once::new();
    match std::env::var(TEST_DATABASE_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {TEST_DATABASE_URL_VAR} is not set: the PostgreSQL tests must run in CI"
            );
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: {TEST_DATABASE_URL_VAR} is not set; the PostgreSQL tests are skipped"
                );
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(with_database("postgres://u@h?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    }
}
