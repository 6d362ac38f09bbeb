//! The database handle: a sqlx pool for PostgreSQL or SQLite that knows its dialect.

use crate::StoreError;
use sea_query::{PostgresQueryBuilder, SchemaStatementBuilder, SqliteQueryBuilder};
use sea_query_sqlx::{SqlxBinder, SqlxValues};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Executor, Postgres, Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;
use workeros_dsl::Dialect;

/// How long a SQLite connection waits for another writer before it gives up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL or SQLite connection pool (an enum over the two, not `sqlx::Any`, so each keeps
/// its own types). Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub enum Db {
    /// PostgreSQL 15+.
    Postgres(PgPool),
    /// SQLite (bundled), a file or memory.
    Sqlite(SqlitePool),
}

impl Db {
    /// Opens a pool from a URL: `postgres://…`, `sqlite://path/to/file.sqlite` (the folder and the
    /// file are created) or `sqlite::memory:` (one connection that lives as long as the pool).
    /// SQLite runs with WAL, foreign keys on and a busy timeout of five seconds.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await
                .map_err(|e| connect_error("PostgreSQL", &e))?;
            return Ok(Db::Postgres(pool));
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Config(
                "unsupported database URL: use `postgres://…`, `sqlite://<file>` or `sqlite::memory:`"
                    .into(),
            ));
        }
        let memory =
            url == "sqlite::memory:" || url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::Config("invalid SQLite URL".into()))?
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let options = if memory {
            options
        } else {
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Config(format!(
                        "cannot create the database folder `{}`: {e}",
                        dir.display()
                    ))
                })?;
            }
            options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        let pool = if memory {
            // Every connection to `:memory:` is its own database: keep exactly one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        }
        .connect_with(options)
        .await
        .map_err(|e| connect_error("SQLite", &e))?;
        Ok(Db::Sqlite(pool))
    }

    /// The dialect, for compiling filters and building statements.
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Postgres(_) => Dialect::Postgres,
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, so a transaction that reads
    /// before it writes cannot fail to upgrade its lock).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Begins a read transaction (a consistent snapshot; on SQLite a deferred `BEGIN`, so readers
    /// do not queue behind each other).
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
            Db::Sqlite(p) => Tx::Sqlite(p.begin().await?),
        })
    }

    /// Runs a statement built by sea-query; returns the rows it affected.
    pub async fn execute<S: SqlxBinder>(&self, stmt: &S) -> Result<u64, StoreError> {
        Ok(match self {
            Db::Postgres(p) => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                pg_query(sql, values).execute(p).await?.rows_affected()
            }
            Db::Sqlite(p) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                sqlite_query(sql, values).execute(p).await?.rows_affected()
            }
        })
    }

    /// Runs a query built by sea-query and returns its rows.
    pub async fn fetch_all<S: SqlxBinder>(&self, stmt: &S) -> Result<Rows, StoreError> {
        Ok(match self {
            Db::Postgres(p) => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                Rows::Postgres(pg_query(sql, values).fetch_all(p).await?)
            }
            Db::Sqlite(p) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                Rows::Sqlite(sqlite_query(sql, values).fetch_all(p).await?)
            }
        })
    }

    /// Runs a query built by sea-query (without `LIMIT`/`OFFSET`) with `LIMIT limit OFFSET offset`
    /// written as integer literals. SQLite re-prepares a statement on every run when its
    /// `LIMIT` is a bound parameter (the planner may use the value), which costs more than the
    /// query; integers written by `itoa`-style formatting of a `u64` cannot carry anything else.
    pub async fn fetch_page<S: SqlxBinder>(
        &self,
        stmt: &S,
        limit: u64,
        offset: u64,
    ) -> Result<Rows, StoreError> {
        let page = format!(" LIMIT {limit} OFFSET {offset}");
        Ok(match self {
            Db::Postgres(p) => {
                let (mut sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                sql.push_str(&page);
                Rows::Postgres(pg_query(sql, values).fetch_all(p).await?)
            }
            Db::Sqlite(p) => {
                let (mut sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                sql.push_str(&page);
                Rows::Sqlite(sqlite_query(sql, values).fetch_all(p).await?)
            }
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Db::Postgres(p) => p.close().await,
            Db::Sqlite(p) => p.close().await,
        }
    }
}

fn connect_error(what: &str, e: &sqlx::Error) -> StoreError {
    tracing::error!(error = %e, "cannot open the {what} database");
    StoreError::Config(format!(
        "cannot open the {what} database: check the URL, that the server is running and that the \
         user may connect"
    ))
}

/// Rows of one query, in their driver's representation.
#[derive(Debug)]
pub enum Rows {
    /// PostgreSQL rows.
    Postgres(Vec<PgRow>),
    /// SQLite rows.
    Sqlite(Vec<SqliteRow>),
}

impl Rows {
    /// How many rows there are.
    pub fn len(&self) -> usize {
        match self {
            Rows::Postgres(r) => r.len(),
            Rows::Sqlite(r) => r.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An open write transaction. Dropped without [`commit`](Tx::commit), it rolls back.
#[derive(Debug)]
pub enum Tx {
    /// On PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
    /// On SQLite.
    Sqlite(Transaction<'static, Sqlite>),
}

impl Tx {
    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Postgres(_) => Dialect::Postgres,
            Tx::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Runs a statement built by sea-query; returns the rows it affected.
    pub async fn execute<S: SqlxBinder>(&mut self, stmt: &S) -> Result<u64, StoreError> {
        Ok(match self {
            Tx::Postgres(t) => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                pg_query(sql, values)
                    .execute(&mut **t)
                    .await?
                    .rows_affected()
            }
            Tx::Sqlite(t) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                sqlite_query(sql, values)
                    .execute(&mut **t)
                    .await?
                    .rows_affected()
            }
        })
    }

    /// Runs a query built by sea-query and returns its rows.
    pub async fn fetch_all<S: SqlxBinder>(&mut self, stmt: &S) -> Result<Rows, StoreError> {
        Ok(match self {
            Tx::Postgres(t) => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                Rows::Postgres(pg_query(sql, values).fetch_all(&mut **t).await?)
            }
            Tx::Sqlite(t) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                Rows::Sqlite(sqlite_query(sql, values).fetch_all(&mut **t).await?)
            }
        })
    }

    /// Runs a schema statement (`CREATE TABLE`, `ALTER TABLE`, …) built by sea-query. Its
    /// identifiers come from validated types; it carries no values.
    pub async fn ddl<S: SchemaStatementBuilder>(&mut self, stmt: &S) -> Result<(), StoreError> {
        match self {
            Tx::Postgres(t) => {
                let sql = stmt.to_string(PostgresQueryBuilder);
                t.execute(AssertSqlSafe(sql)).await?;
            }
            Tx::Sqlite(t) => {
                let sql = stmt.to_string(SqliteQueryBuilder);
                t.execute(AssertSqlSafe(sql)).await?;
            }
        }
        Ok(())
    }

    /// Runs constant SQL (a migration's [`statements`](crate::migrate::Migration::statements)):
    /// `&'static str` only, so nothing from input can reach it.
    pub async fn fixed(&mut self, sql: &'static str) -> Result<(), StoreError> {
        match self {
            Tx::Postgres(t) => {
                t.execute(AssertSqlSafe(sql)).await?;
            }
            Tx::Sqlite(t) => {
                t.execute(AssertSqlSafe(sql)).await?;
            }
        }
        Ok(())
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Postgres(t) => t.commit().await?,
            Tx::Sqlite(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// A PostgreSQL query from sea-query output: the SQL text is built by sea-query from validated
/// identifiers, and every value is bound.
fn pg_query(sql: String, values: SqlxValues) -> sqlx::query::Query<'static, Postgres, SqlxValues> {
    sqlx::query_with(AssertSqlSafe(sql), values)
}

/// The SQLite counterpart of [`pg_query`].
fn sqlite_query(
    sql: String,
    values: SqlxValues,
) -> sqlx::query::Query<'static, Sqlite, SqlxValues> {
    sqlx::query_with(AssertSqlSafe(sql), values)
}
