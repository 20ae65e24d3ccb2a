//! sqlx keeps one migrations folder per database; the two must define the same tables and columns.

use std::collections::BTreeSet;

use screening_store::testing::{Backend, TestStore};
use screening_store::SqliteStore;

#[tokio::test]
async fn both_migration_folders_define_the_same_tables_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("m.db").display()))
        .await
        .unwrap();
    let sqlite_columns: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
    )
    .fetch_all(sqlite.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(sqlite_columns.len() > 20, "{sqlite_columns:?}");

    let Some(postgres) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let postgres_columns: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(postgres.postgres.as_ref().unwrap().pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    let only_sqlite: Vec<_> = sqlite_columns.difference(&postgres_columns).collect();
    let only_postgres: Vec<_> = postgres_columns.difference(&sqlite_columns).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only in SQLite: {only_sqlite:?}; only in PostgreSQL: {only_postgres:?}"
    );
    postgres.cleanup().await;
}
