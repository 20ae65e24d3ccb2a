//! Test support: a fresh, isolated database per test on SQLite (a temporary file) or PostgreSQL
//! (a new database on the server named by `SCREENING_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`).
//!
//! When `CI=true` an unreachable PostgreSQL fails the test; elsewhere the test is skipped with a notice.

use std::sync::Arc;

use sqlx::{Connection, PgConnection};

use crate::{PgStore, ScreeningStore, SqliteStore};

/// The default administrative URL of the test server on these machines.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store on a database that exists only for one test.
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn ScreeningStore>,
    /// The concrete PostgreSQL store, when the backend is PostgreSQL.
    pub postgres: Option<PgStore>,
    /// The database URL, so a second instance can connect to the same database.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

impl TestStore {
    /// A store on a fresh database, or `None` (with a printed notice) when PostgreSQL is not
    /// reachable outside CI.
    pub async fn new(backend: Backend) -> Option<TestStore> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite().await),
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A store on a temporary SQLite file.
    pub async fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = SqliteStore::connect(&url).await.expect("SQLite opens");
        TestStore {
            store: Arc::new(store),
            postgres: None,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A store on a new PostgreSQL database.
    pub async fn postgres() -> Option<TestStore> {
        let admin_url = std::env::var("SCREENING_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(connection) => connection,
            Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!(
                    "NOTICE: skipping a PostgreSQL test, {admin_url} is unreachable: {error}"
                );
                return None;
            }
            Err(error) => panic!("PostgreSQL at {admin_url} is required when CI=true: {error}"),
        };
        let database = format!("screening_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        let url = with_database(&admin_url, &database);
        let store = PgStore::connect(&url)
            .await
            .expect("PostgreSQL store connects");
        Some(TestStore {
            store: Arc::new(store.clone()),
            postgres: Some(store),
            url,
            cleanup: Cleanup::Postgres {
                admin_url,
                database,
            },
        })
    }

    /// Drops the test database (PostgreSQL); SQLite's temporary directory goes when this is dropped.
    pub async fn cleanup(self) {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
        {
            if let Ok(mut admin) = PgConnection::connect(admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
            }
        }
    }
}

/// The same server URL with another database name.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = match base.rsplit_once('/') {
        Some((server, _))
            if server.contains("//") && server.len() > server.find("//").unwrap() + 2 =>
        {
            server
        }
        _ => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}
