//! Test support: a fresh, isolated database per test on SQLite (a temporary file) or PostgreSQL
//! (a new database on the server named by `SCREENING_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`).
//!
//! When `CI=true` an unreachable PostgreSQL fails the test; elsewhere the test is skipped with a notice.

use std::io::Write;
use std::sync::{Arc, Mutex};

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

/// Log lines captured in memory (JSON, debug level), for tests that check what was logged.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Starts capturing. With `Scope::Thread`, only this thread's logs until the guard drops (a
    /// current-thread tokio test runs its spawned tasks on this thread too); with
    /// `Scope::Process`, every thread's, for the rest of the process (once per test binary).
    pub fn start(scope: Scope) -> (CapturedLogs, Option<tracing::subscriber::DefaultGuard>) {
        let captured = CapturedLogs::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(move || writer.clone())
            .finish();
        let guard = match scope {
            Scope::Thread => Some(tracing::subscriber::set_default(subscriber)),
            Scope::Process => {
                tracing::subscriber::set_global_default(subscriber)
                    .expect("no other global subscriber in this test binary");
                None
            }
        };
        (captured, guard)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }

    /// Waits up to `within` for a line containing `needle`; the whole capture if it never comes.
    pub async fn until_contains(
        &self,
        needle: &str,
        within: std::time::Duration,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(text);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Which logs [`CapturedLogs::start`] captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This thread's, while the guard lives.
    Thread,
    /// The whole process's.
    Process,
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
