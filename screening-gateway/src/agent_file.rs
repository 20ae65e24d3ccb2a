//! The agent's own SQLite file, which its inbox and its worklist share: created with its folder
//! on first use, WAL, and `synchronous=FULL`, so what either part reports as stored survives a
//! power cut, not just a crash.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// Opens the file at `path` with up to `connections` connections and runs `migrator`. Each part
/// keeps its own migrations in the one file (the inbox's from 1, the worklist's from 1001), so
/// each migrator ignores the versions it does not know.
pub(crate) async fn open(
    path: &std::path::Path,
    connections: u32,
    mut migrator: Migrator,
) -> Result<SqlitePool, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    let pool = pool(path, connections, SqliteSynchronous::Full).await?;
    migrator.set_ignore_missing(true);
    migrator
        .run(&pool)
        .await
        .map_err(|e| format!("migrate: {e}"))?;
    Ok(pool)
}

/// One more connection to the file [`open`] opened, whose commits do not wait for the disk
/// (`synchronous=NORMAL`): each is on disk once any later commit on a `synchronous=FULL`
/// connection is, since that commit syncs the whole write-ahead log. For a write that nothing
/// is told about until such a commit follows it.
pub(crate) async fn open_unsynced(path: &std::path::Path) -> Result<SqlitePool, String> {
    pool(path, 1, SqliteSynchronous::Normal).await
}

async fn pool(
    path: &std::path::Path,
    connections: u32,
    synchronous: SqliteSynchronous,
) -> Result<SqlitePool, String> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(|e| format!("{}: {e}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(Duration::from_secs(10));
    // No ping before each use: a local file cannot drop like a network connection, and the ping
    // is a round trip to the connection's worker thread on every inbox step (issue 11).
    SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(connections)
        .connect_with(options)
        .await
        .map_err(|e| format!("opening {}: {e}", path.display()))
}
