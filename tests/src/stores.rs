//! Store databases for tests: [`Db`] handles on SQLite and, when configured, on PostgreSQL (a
//! fresh schema each), with cleanup.

use crate::backend::{drop_pg_schema, fresh_pg_schema, pg_pool};
use std::path::PathBuf;
use workeros_store::{Db, DbPool, Namespace};

/// One database a store test runs against.
pub struct TestDb {
    /// The handle.
    pub db: Db,
    cleanup: Cleanup,
}

enum Cleanup {
    None,
    File(PathBuf),
    Schema { url: String, schema: String },
}

impl TestDb {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self.db.pool() {
            DbPool::Sqlite(_) => "sqlite",
            DbPool::Postgres(_) => "postgres",
        }
    }

    /// workeros's table `name` as raw test SQL writes it: quoted, in the namespace
    /// (`"wtest_…_wk"."collections"`, `"workeros_collections"`).
    pub fn table(&self, name: &str) -> String {
        sql_table(&self.db, name)
    }

    /// How another process opens this database: `[sqlite-url]` or `[postgres-url, schema]`
    /// (`None` for an in-memory database, or a handle that does not own the cleanup).
    pub fn child_args(&self) -> Option<Vec<String>> {
        match &self.cleanup {
            Cleanup::None => None,
            Cleanup::File(path) => Some(vec![format!("sqlite://{}", path.display())]),
            Cleanup::Schema { url, schema } => Some(vec![url.clone(), schema.clone()]),
        }
    }

    /// Closes the pool and drops what the test made.
    pub async fn close(self) {
        self.db.close().await;
        match self.cleanup {
            Cleanup::None => {}
            Cleanup::File(path) => remove_sqlite(&path),
            Cleanup::Schema { url, schema } => drop_pg_schema(&url, &schema).await,
        }
    }
}

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// An in-memory SQLite store database and, with `WORKEROS_TEST_PG`, a PostgreSQL one.
pub async fn dbs() -> Vec<TestDb> {
    let mut out = vec![TestDb {
        db: Db::connect("sqlite::memory:")
            .await
            .expect("open in-memory sqlite"),
        cleanup: Cleanup::None,
    }];
    if let Some((url, schema)) = fresh_pg_schema().await {
        let pool = pg_pool(&url, &schema, 8).await;
        out.push(TestDb {
            db: pg_db(pool, &schema).await,
            cleanup: Cleanup::Schema { url, schema },
        });
    }
    out
}

/// A SQLite database in a file of the temp folder (removed by [`TestDb::close`]).
pub async fn sqlite_file() -> TestDb {
    let path = std::env::temp_dir().join(format!("workeros-{}.sqlite", uuid::Uuid::now_v7()));
    TestDb {
        db: Db::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("open sqlite file"),
        cleanup: Cleanup::File(path),
    }
}

/// `n` separate pools on one database, as `n` processes would open it: a SQLite file in the temp
/// folder, and with `WORKEROS_TEST_PG` one PostgreSQL schema. The first of each group cleans up.
pub async fn shared(n: usize) -> Vec<Vec<TestDb>> {
    let mut groups = Vec::new();
    let path = std::env::temp_dir().join(format!("workeros-{}.sqlite", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}", path.display());
    let mut group = Vec::new();
    for i in 0..n {
        group.push(TestDb {
            db: Db::connect(&url).await.expect("open sqlite file"),
            cleanup: if i == 0 {
                Cleanup::File(path.clone())
            } else {
                Cleanup::None
            },
        });
    }
    groups.push(group);
    if let Some((url, schema)) = fresh_pg_schema().await {
        let mut group = Vec::new();
        for i in 0..n {
            group.push(TestDb {
                db: pg_db(pg_pool(&url, &schema, 2).await, &schema).await,
                cleanup: if i == 0 {
                    Cleanup::Schema {
                        url: url.clone(),
                        schema: schema.clone(),
                    }
                } else {
                    Cleanup::None
                },
            });
        }
        groups.push(group);
    }
    groups
}

/// The namespace of workeros in a test's PostgreSQL database: beside the test's own schema (the
/// host schema, where the test's own tables are).
pub fn pg_namespace(schema: &str) -> String {
    format!("{schema}_wk")
}

/// A handle on a test's PostgreSQL schema: the host schema is `schema` (the pool's
/// `search_path`), workeros's namespace [`pg_namespace`].
pub async fn pg_db(pool: sqlx::PgPool, schema: &str) -> Db {
    let ns = Namespace::new(pg_namespace(schema)).expect("a test namespace");
    Db::from_pg_pool(pool, ns)
        .await
        .expect("open the test database")
}

/// The system table `name` of whichever component owns it (the store, auth, events): the
/// registry the migrations declare. Panics for a name no component has.
pub fn system_table(name: &str) -> workeros_store::SystemTable {
    [
        workeros_store::SCHEMA,
        workeros_auth::SCHEMA,
        workeros_events::SCHEMA,
    ]
    .iter()
    .find_map(|c| c.table(name))
    .or((name == "migrations").then_some(workeros_store::migrate::MIGRATIONS))
    .unwrap_or_else(|| panic!("no workeros component has a system table `{name}`"))
}

/// How many events the outbox of `db` holds.
pub async fn outbox_len(db: &Db) -> usize {
    use sea_query::{Alias, Query};
    db.fetch_all(
        Query::select()
            .column(Alias::new("seq"))
            .from(db.table(system_table("events"))),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot read the outbox: {e}"))
    .len()
}

/// workeros's table `name` of `db` as raw SQL writes it (quoted, in the namespace).
pub fn sql_table(db: &Db, name: &str) -> String {
    let names = db.names();
    match db.pool() {
        DbPool::Postgres(_) => format!(
            "\"{}\".\"{}\"",
            names.namespace(),
            system_table(name).name()
        ),
        DbPool::Sqlite(_) => format!("\"{}\"", names.physical(system_table(name))),
    }
}

/// The store's routes over `t`, migrated (a fresh [`workeros_store::Store`]).
pub async fn app(t: &TestDb) -> axum::Router {
    workeros_store::migrate(&t.db).await.expect("migrate");
    crate::mount::mount(workeros_store::http::router(workeros_store::Store::new(
        t.db.clone(),
    )))
}
