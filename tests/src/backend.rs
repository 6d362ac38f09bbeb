//! SQLite and PostgreSQL test backends.

use sea_query::{
    PostgresQueryBuilder, SchemaStatementBuilder, SelectStatement, SqliteQueryBuilder,
};
use sea_query_sqlx::SqlxBinder;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{AssertSqlSafe, Executor, PgPool, Row, SqlitePool};
use workeros_dsl::Dialect;

/// One database a test runs against.
pub enum Backend {
    /// An in-memory SQLite database (one connection).
    Sqlite(SqlitePool),
    /// A fresh schema in the PostgreSQL database of `WORKEROS_TEST_PG`.
    Postgres {
        /// The pool, with `search_path` set to `schema`.
        pool: PgPool,
        /// The schema this test owns.
        schema: String,
    },
}

fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The backends to run on: SQLite, and PostgreSQL when configured. Panics in CI when PostgreSQL
/// is not configured or cannot be reached.
pub async fn backends() -> Vec<Backend> {
    let mut out = vec![sqlite().await];
    if let Some(pg) = postgres().await {
        out.push(pg);
    }
    out
}

/// A fresh in-memory SQLite database.
pub async fn sqlite() -> Backend {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("open in-memory sqlite");
    Backend::Sqlite(pool)
}

/// A fresh schema on the PostgreSQL of `WORKEROS_TEST_PG`; `None` (skip) when it is not set and
/// `CI` is not set.
pub async fn postgres() -> Option<Backend> {
    let (url, schema) = fresh_pg_schema().await?;
    let pool = pg_pool(&url, &schema, 1).await;
    Some(Backend::Postgres { pool, schema })
}

/// Creates a fresh schema on the PostgreSQL of `WORKEROS_TEST_PG` and returns the URL and the
/// schema; `None` (skip) when the variable is not set and `CI` is not set. Panics in CI when
/// PostgreSQL is not configured or cannot be reached.
pub async fn fresh_pg_schema() -> Option<(String, String)> {
    let url = match std::env::var("WORKEROS_TEST_PG") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                !ci(),
                "CI is set but WORKEROS_TEST_PG is not: set it to a PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/test"
            );
            eprintln!("WORKEROS_TEST_PG is not set: skipping the PostgreSQL half of this test");
            return None;
        }
    };
    let schema = format!("wtest_{}", uuid::Uuid::now_v7().simple());
    let admin = match PgPoolOptions::new().max_connections(1).connect(&url).await {
        Ok(p) => p,
        Err(e) if !ci() => {
            eprintln!(
                "cannot reach PostgreSQL at WORKEROS_TEST_PG ({e}): skipping the PostgreSQL half"
            );
            return None;
        }
        Err(e) => panic!("CI is set and PostgreSQL at WORKEROS_TEST_PG is unreachable: {e}"),
    };
    // The schema name is generated above from a UUID: `[a-z0-9_]` only, never user input.
    assert!(
        schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    );
    let create = format!("CREATE SCHEMA \"{schema}\"");
    admin
        .execute(AssertSqlSafe(create))
        .await
        .expect("create test schema");
    admin.close().await;
    Some((url, schema))
}

/// A pool of at most `max` connections whose `search_path` is `schema`.
pub async fn pg_pool(url: &str, schema: &str, max: u32) -> PgPool {
    let path = schema.to_owned();
    PgPoolOptions::new()
        .max_connections(max)
        .after_connect(move |conn, _| {
            let path = path.clone();
            Box::pin(async move {
                sqlx::query("SELECT set_config('search_path', $1, false)")
                    .bind(path)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .expect("connect to PostgreSQL")
}

/// Drops a schema made by [`fresh_pg_schema`], and the workeros namespaces beside it (every
/// schema named after it: `<schema>_…`).
pub async fn drop_pg_schema(url: &str, schema: &str) {
    if let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(url).await {
        let mut schemas: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1 || '_')",
        )
        .bind(schema)
        .fetch_all(&admin)
        .await
        .unwrap_or_default();
        schemas.push(schema.to_owned());
        for s in schemas {
            // Names made by the tests from UUIDs: `[a-z0-9_]` only.
            if s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                let drop = format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE");
                let _ = admin.execute(AssertSqlSafe(drop)).await;
            }
        }
        admin.close().await;
    }
}

impl Backend {
    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        match self {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Runs a statement built by sea-query.
    pub async fn exec<S: SqlxBinder>(&self, stmt: &S) {
        match self {
            Backend::Sqlite(pool) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql.clone()), values)
                    .execute(pool)
                    .await
                    .unwrap_or_else(|e| panic!("sqlite: {e}\n{sql}"));
            }
            Backend::Postgres { pool, .. } => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                sqlx::query_with(AssertSqlSafe(sql.clone()), values)
                    .execute(pool)
                    .await
                    .unwrap_or_else(|e| panic!("postgres: {e}\n{sql}"));
            }
        }
    }

    /// Runs a DDL statement built by sea-query.
    pub async fn ddl<S: SchemaStatementBuilder>(&self, stmt: &S) {
        match self {
            Backend::Sqlite(pool) => {
                let sql = stmt.to_string(SqliteQueryBuilder);
                pool.execute(AssertSqlSafe(sql.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("sqlite: {e}\n{sql}"));
            }
            Backend::Postgres { pool, .. } => {
                let sql = stmt.to_string(PostgresQueryBuilder);
                pool.execute(AssertSqlSafe(sql.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("postgres: {e}\n{sql}"));
            }
        }
    }

    /// Runs a select whose first column is an integer id, and returns the ids.
    pub async fn ids(&self, stmt: &SelectStatement) -> Result<Vec<i64>, String> {
        self.first_column(stmt).await
    }

    /// Runs a select whose first column is text, and returns it.
    pub async fn texts(&self, stmt: &SelectStatement) -> Result<Vec<String>, String> {
        self.first_column(stmt).await
    }

    async fn first_column<T>(&self, stmt: &SelectStatement) -> Result<Vec<T>, String>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        match self {
            Backend::Sqlite(pool) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                let rows = sqlx::query_with(AssertSqlSafe(sql.clone()), values)
                    .persistent(false)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| format!("sqlite: {e}\n{sql}"))?;
                rows.iter()
                    .map(|r| r.try_get::<T, _>(0).map_err(|e| e.to_string()))
                    .collect()
            }
            Backend::Postgres { pool, .. } => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                let rows = sqlx::query_with(AssertSqlSafe(sql.clone()), values)
                    .persistent(false)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| format!("postgres: {e}\n{sql}"))?;
                rows.iter()
                    .map(|r| r.try_get::<T, _>(0).map_err(|e| e.to_string()))
                    .collect()
            }
        }
    }

    /// Drops what the test made (the PostgreSQL schema) and closes the pool.
    pub async fn close(self) {
        match self {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres { pool, schema } => {
                let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
                let _ = pool.execute(AssertSqlSafe(drop)).await;
                pool.close().await;
            }
        }
    }
}
