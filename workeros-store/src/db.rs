//! The database handle: a sqlx pool for PostgreSQL or SQLite that knows its dialect.

use crate::StoreError;
use crate::names::{Names, Namespace, SystemTable};
use crate::notices::Notices;
#[cfg(feature = "postgres")]
use crate::pg_tx::PgTx;
pub use crate::statements::Write;
#[cfg(feature = "postgres")]
use crate::statements::{pg_query, pg_statement};
#[cfg(feature = "sqlite")]
use crate::statements::{sqlite_query, sqlite_script};
#[cfg(feature = "postgres")]
use sea_query::PostgresQueryBuilder;
use sea_query::SchemaStatementBuilder;
#[cfg(feature = "sqlite")]
use sea_query::SqliteQueryBuilder;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use sea_query_sqlx::SqlxBinder;

/// Stands for sea-query-sqlx's `SqlxBinder` in a build without a driver, so the statement
/// methods keep their signatures.
#[doc(hidden)]
#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
pub trait SqlxBinder {}
#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
impl<T> SqlxBinder for T {}
#[cfg(feature = "sqlite")]
use sea_query_sqlx::SqlxValues;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use sqlx::{AssertSqlSafe, Executor};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, Transaction};
use std::sync::Arc;
#[cfg(feature = "sqlite")]
use std::time::Duration;
use workeros_dsl::Dialect;

/// How long a SQLite connection waits for another writer before it gives up.
#[cfg(feature = "sqlite")]
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Stands for a driver in a build with none (`--no-default-features`): no value of it exists,
/// so no [`Db`] does either, and every match over drivers stays exhaustive.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum NoDriver {}

impl NoDriver {
    /// Anything: there is no `NoDriver` to call it on.
    pub fn absurd<T>(&self) -> T {
        match *self {}
    }
}

/// A PostgreSQL or SQLite connection pool (an enum over the two, not `sqlx::Any`, so each keeps
/// its own types) with the [`Names`] of its database: workeros's namespace and the host schema.
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct Db {
    pool: Pool,
    names: Arc<Names>,
    /// Shared by the clones (and [`Db::with_host_schema`]'s): the process's parts that use this
    /// database tell one another of changes through it.
    notices: Arc<Notices>,
    /// SQLite's one writer: write transactions of this handle and its clones take their turn
    /// here (first come, first served) and commit in groups ([`crate::writer`]).
    #[cfg(feature = "sqlite")]
    writer: crate::writer::Writer,
}

/// How a SQLite database's writes were committed since it was opened ([`Db::group_commits`]):
/// `writes / groups` is the mean number of writes that shared a commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommits {
    /// Commits of a group.
    pub groups: u64,
    /// Write transactions committed in them.
    pub writes: u64,
}

/// The pool under a [`Db`] ([`Db::pool`]).
#[derive(Debug, Clone, Copy)]
pub enum DbPool<'a> {
    /// PostgreSQL (feature `postgres`).
    #[cfg(feature = "postgres")]
    Postgres(&'a PgPool),
    /// SQLite (feature `sqlite`).
    #[cfg(feature = "sqlite")]
    Sqlite(&'a SqlitePool),
    /// No driver is built in.
    #[doc(hidden)]
    #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
    NoDriver(&'a NoDriver),
}

#[derive(Debug, Clone)]
enum Pool {
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
    NoDriver(NoDriver),
}

impl Db {
    /// Opens a pool from a URL: `postgres://…`, `sqlite://path/to/file.sqlite` (the folder and the
    /// file are created) or `sqlite::memory:` (one connection that lives as long as the pool).
    /// SQLite runs with WAL, foreign keys on and a busy timeout of five seconds. workeros's
    /// objects go to the default [`Namespace`] (`workeros`); see [`Db::connect_in`].
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        Self::connect_in(url, Namespace::default()).await
    }

    /// [`Db::connect`] with workeros's objects in `namespace`: a PostgreSQL schema, or on SQLite
    /// a prefix of table names. On PostgreSQL the host schema (where adopted tables are read) is
    /// the connection's `current_schema()`.
    pub async fn connect_in(url: &str, namespace: Namespace) -> Result<Db, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return connect_postgres(url, namespace).await;
            #[cfg(not(feature = "postgres"))]
            return Err(missing_driver("PostgreSQL", "postgres"));
        }
        if url.starts_with("sqlite:") {
            #[cfg(feature = "sqlite")]
            return connect_sqlite(url, namespace).await;
            #[cfg(not(feature = "sqlite"))]
            return Err(missing_driver("SQLite", "sqlite"));
        }
        let _ = namespace;
        Err(StoreError::Config(
            "unsupported database URL: use `postgres://…`, `sqlite://<file>` or `sqlite::memory:`"
                .into(),
        ))
    }

    /// A handle over a pool the host made, with workeros's objects in `namespace`; the host
    /// schema (where adopted tables are read) is the pool's `current_schema()`
    /// ([`Db::with_host_schema`] picks another).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn from_pg_pool(pool: PgPool, namespace: Namespace) -> Result<Db, StoreError> {
        let host: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&pool)
            .await
            .map_err(|e| connect_error("PostgreSQL", &e))?;
        Ok(Db {
            names: Arc::new(Names::new(Dialect::Postgres, namespace, Some(host))),
            pool: Pool::Postgres(pool),
            notices: Arc::default(),
            #[cfg(feature = "sqlite")]
            writer: crate::writer::Writer::default(),
        })
    }

    /// A handle over a SQLite pool the host made, with workeros's tables prefixed by
    /// `namespace` and `_`. The pool must open its connections with foreign keys on, a busy
    /// timeout and, on a file, WAL (sqlx's defaults give the first two;
    /// `SqliteConnectOptions::journal_mode(SqliteJournalMode::Wal)` the third): one of them off
    /// is a [`StoreError::Config`] that names it and the option that sets it, before anything is
    /// read or written.
    ///
    /// ```no_run
    /// use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    /// use workeros_store::{Db, Namespace};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let options = SqliteConnectOptions::new()
    ///     .filename("app.sqlite")
    ///     .create_if_missing(true)
    ///     .journal_mode(SqliteJournalMode::Wal);
    /// let pool = SqlitePoolOptions::new().connect_with(options).await?; // the host's own
    /// let db = Db::from_sqlite_pool(pool, Namespace::default()).await?; // tables `workeros_*`
    /// workeros_store::migrate(&db).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn from_sqlite_pool(
        pool: SqlitePool,
        namespace: Namespace,
    ) -> Result<Db, StoreError> {
        check_sqlite_pool(&pool).await?;
        Ok(Db {
            names: Arc::new(Names::new(Dialect::Sqlite, namespace, None)),
            pool: Pool::Sqlite(pool),
            notices: Arc::default(),
            #[cfg(feature = "sqlite")]
            writer: crate::writer::Writer::default(),
        })
    }

    /// The same database with adopted tables read in PostgreSQL schema `schema` (nothing changes
    /// on SQLite).
    pub fn with_host_schema(self, schema: impl Into<String>) -> Result<Db, StoreError> {
        let schema = schema.into();
        if schema.is_empty() || schema.len() > 63 || schema.chars().any(char::is_control) {
            return Err(StoreError::Config(format!(
                "`{}` cannot name the host schema: use 1 to 63 printable characters",
                schema.chars().take(60).collect::<String>()
            )));
        }
        let names = Names::new(
            self.names.dialect(),
            self.names.namespace().clone(),
            Some(schema),
        );
        Ok(Db {
            names: Arc::new(names),
            pool: self.pool,
            notices: self.notices,
            #[cfg(feature = "sqlite")]
            writer: self.writer,
        })
    }

    /// How SQLite's writes through this handle and its clones were committed: groups and the
    /// writes in them (zero on PostgreSQL, which commits each write on its own).
    pub fn group_commits(&self) -> GroupCommits {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => {
                let (groups, writes) = self.writer.commits();
                GroupCommits { groups, writes }
            }
            #[allow(unreachable_patterns)]
            _ => GroupCommits::default(),
        }
    }

    /// The same database with other group-commit limits on SQLite (nothing changes on
    /// PostgreSQL): a group of writes commits when no other write waits, or once it holds
    /// `max_writes` writes (default 32; 1 commits every write on its own), or once it has been
    /// open `max_wait` (default 10 ms: the most a write's answer waits for the writes queued
    /// after it). Call it before cloning the handle: the clones share the writer.
    pub fn with_group_commit(self, max_writes: usize, max_wait: std::time::Duration) -> Db {
        #[cfg(not(feature = "sqlite"))]
        let _ = (max_writes, max_wait);
        Db {
            #[cfg(feature = "sqlite")]
            writer: self.writer.with_limits(max_writes, max_wait),
            ..self
        }
    }

    /// The in-process notices of this handle and its clones ([`Notices`]).
    pub fn notices(&self) -> &Notices {
        &self.notices
    }

    /// The names of this database: workeros's namespace, the host schema, how tables are named.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// System table `table` in workeros's namespace (see [`Names::table`]).
    pub fn table(&self, table: SystemTable) -> sea_query::TableRef {
        self.names.table(table)
    }

    /// The driver's pool, for a host's own queries and for catalog reads.
    pub fn pool(&self) -> DbPool<'_> {
        match &self.pool {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Pool::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => DbPool::Postgres(p),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => DbPool::Sqlite(p),
        }
    }

    /// The PostgreSQL pool, when this is PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Pool::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Some(p),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => None,
        }
    }

    /// The SQLite pool, when this is SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Pool::NoDriver(n) => n.absurd(),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => Some(p),
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => None,
        }
    }

    /// The dialect, for compiling filters and building statements.
    pub fn dialect(&self) -> Dialect {
        self.names.dialect()
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, so a transaction that reads
    /// before it writes cannot fail to upgrade its lock).
    ///
    /// On SQLite, which has one writer, the write transactions of this handle and its clones
    /// queue for their turn first (in arrival order), so that concurrent writers wait on a queue
    /// that hands over at once rather than in SQLite's busy handler, which sleeps between tries;
    /// a writer that waited the busy timeout (5 s) fails as SQLite would. Writes that queue
    /// together commit together (group commit): each runs in a savepoint of its own, so it
    /// fails or is dropped alone, and its [`Tx::commit`] returns once the shared commit is done.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pool {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Pool::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => TxInner::Postgres(PgTx::new(p.acquire().await?)),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                TxInner::SqliteWrite(self.writer.begin(p, SQLITE_BUSY_TIMEOUT).await?)
            }
        };
        Ok(Tx {
            inner,
            names: self.names.clone(),
        })
    }

    /// Begins a read transaction (a consistent snapshot; on SQLite a deferred `BEGIN`, so readers
    /// do not queue behind each other).
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pool {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Pool::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => TxInner::Postgres(PgTx::new(p.acquire().await?)),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin().await?),
        };
        Ok(Tx {
            inner,
            names: self.names.clone(),
        })
    }

    /// Runs a statement built by sea-query; returns the rows it affected.
    pub async fn execute<S: SqlxBinder>(&self, stmt: &S) -> Result<u64, StoreError> {
        Ok(match &self.pool {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Pool::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                pg_query(sql, values).execute(p).await?.rows_affected()
            }
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                sqlite_query(sql, values).execute(p).await?.rows_affected()
            }
        })
    }

    /// Runs a query built by sea-query and returns its rows.
    pub async fn fetch_all<S: SqlxBinder>(&self, stmt: &S) -> Result<Rows, StoreError> {
        Ok(match &self.pool {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Pool::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                Rows::Postgres(pg_query(sql, values).fetch_all(p).await?)
            }
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
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
        Ok(match &self.pool {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Pool::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => {
                let (mut sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                sql.push_str(&page);
                Rows::Postgres(pg_query(sql, values).fetch_all(p).await?)
            }
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let (mut sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                sql.push_str(&page);
                Rows::Sqlite(sqlite_query(sql, values).fetch_all(p).await?)
            }
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match &self.pool {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Pool::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => p.close().await,
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

/// The error for a URL whose driver this build lacks.
#[cfg(not(all(feature = "postgres", feature = "sqlite")))]
fn missing_driver(what: &str, feature: &str) -> StoreError {
    StoreError::Config(format!(
        "this build of workeros-store has no {what} driver: turn on its `{feature}` feature (on by \
         default; `workeros` forwards it)"
    ))
}

/// [`Db::connect_in`] for a PostgreSQL URL.
#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str, namespace: Namespace) -> Result<Db, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await
        .map_err(|e| connect_error("PostgreSQL", &e))?;
    Db::from_pg_pool(pool, namespace).await
}

/// [`Db::connect_in`] for a SQLite URL: WAL, foreign keys, a busy timeout; the folder and the
/// file made; one lasting connection in memory.
#[cfg(feature = "sqlite")]
async fn connect_sqlite(url: &str, namespace: Namespace) -> Result<Db, StoreError> {
    use std::str::FromStr;
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
    Db::from_sqlite_pool(pool, namespace).await
}

/// What to check when TLS to PostgreSQL fails.
#[cfg(feature = "postgres")]
const TLS_CHECK: &str = "TLS to the server failed: check `sslmode`, that `sslrootcert` names the \
                         CA that signed the server's certificate, and, with \
                         `sslmode=verify-full`, that the URL's host is a name the certificate \
                         carries";

/// A start-up error for a database that cannot be opened: the driver's reason (it names no
/// secret) and what to check for that kind of failure.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn connect_error(what: &str, e: &sqlx::Error) -> StoreError {
    tracing::error!(error = %e, "cannot open the {what} database");
    // rustls reports a refused certificate as an I/O error of kind `InvalidData` that wraps it;
    // a refused or unreachable server is an I/O error of the operating system's.
    #[cfg(feature = "postgres")]
    let tls_io = matches!(e, sqlx::Error::Io(io)
        if io.kind() == std::io::ErrorKind::InvalidData && io.get_ref().is_some());
    let check = match e {
        #[cfg(feature = "postgres")]
        _ if tls_io => TLS_CHECK,
        #[cfg(feature = "postgres")]
        sqlx::Error::Tls(_) => TLS_CHECK,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => {
            "check the host and port in the URL and that the server is running"
        }
        sqlx::Error::Database(_) => {
            "the server refused: check the user, the password and the database name in the URL"
        }
        sqlx::Error::Configuration(_) => "the URL is not valid: check its form and parameters",
        _ => "check the URL, that the server is running and that the user may connect",
    };
    StoreError::Config(format!("cannot open the {what} database: {e}; {check}"))
}

/// Checks that a SQLite pool the host made runs as workeros needs, on one of its connections
/// (sqlx opens every connection of a pool with the same options): foreign keys on (workeros's
/// tables cascade through them), a busy timeout (without one a writer meeting another fails at
/// once with "database is locked"), and WAL on a file database (readers and the writer do not
/// block each other). Every pragma that is off is named in one error with the option that sets
/// it.
#[cfg(feature = "sqlite")]
async fn check_sqlite_pool(pool: &SqlitePool) -> Result<(), StoreError> {
    let failed = |e: sqlx::Error| connect_error("SQLite", &e);
    let mut conn = pool.acquire().await.map_err(failed)?;
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .map_err(failed)?;
    let busy_ms: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .map_err(failed)?;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .map_err(failed)?;
    // The main database's file: empty for an in-memory or temporary database.
    let file: String =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&mut *conn)
            .await
            .map_err(failed)?;
    let mut wrong = Vec::new();
    if foreign_keys != 1 {
        wrong.push(
            "foreign keys are off (open it with `SqliteConnectOptions::foreign_keys(true)`, \
             sqlx's default)"
                .to_owned(),
        );
    }
    if busy_ms <= 0 {
        wrong.push(format!(
            "the busy timeout is {busy_ms} ms (open it with \
             `SqliteConnectOptions::busy_timeout(Duration::from_secs(5))`, sqlx's default)"
        ));
    }
    let journal = journal.to_ascii_lowercase();
    if !file.is_empty() && journal != "wal" {
        wrong.push(format!(
            "the journal mode is `{journal}` (open it with \
             `SqliteConnectOptions::journal_mode(SqliteJournalMode::Wal)`; WAL stays set in the \
             file)"
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "the SQLite pool is not set up as workeros needs: {}",
            wrong.join("; ")
        )))
    }
}

/// Rows of one query, in their driver's representation.
#[derive(Debug)]
pub enum Rows {
    /// PostgreSQL rows.
    #[cfg(feature = "postgres")]
    Postgres(Vec<PgRow>),
    /// SQLite rows.
    #[cfg(feature = "sqlite")]
    Sqlite(Vec<SqliteRow>),
    /// No driver is built in.
    #[doc(hidden)]
    #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
    NoDriver(NoDriver),
}

impl Rows {
    /// How many rows there are.
    pub fn len(&self) -> usize {
        match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Rows::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Rows::Postgres(r) => r.len(),
            #[cfg(feature = "sqlite")]
            Rows::Sqlite(r) => r.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An open transaction, with the [`Names`] of its database. Dropped without
/// [`commit`](Tx::commit), it rolls back.
#[derive(Debug)]
pub struct Tx {
    inner: TxInner,
    names: Arc<Names>,
}

#[derive(Debug)]
enum TxInner {
    #[cfg(feature = "postgres")]
    /// Begun with its first statement ([`crate::pg_tx`]).
    Postgres(PgTx),
    /// A read transaction.
    #[cfg(feature = "sqlite")]
    Sqlite(Transaction<'static, Sqlite>),
    /// A write transaction: a member of a group ([`crate::writer`]).
    #[cfg(feature = "sqlite")]
    SqliteWrite(crate::writer::Member),
    #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
    NoDriver(NoDriver),
}

impl Tx {
    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.names.dialect()
    }

    /// The names of the transaction's database.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// System table `table` in workeros's namespace (see [`Names::table`]).
    pub fn table(&self, table: SystemTable) -> sea_query::TableRef {
        self.names.table(table)
    }

    /// Takes transaction-scoped lock `key` (PostgreSQL `pg_advisory_xact_lock`; on SQLite the
    /// write transaction's lock already serialises writers): changes that must be decided one
    /// at a time (the first user, the last admin, a migration) take it first.
    pub async fn lock(&mut self, key: i64) -> Result<(), StoreError> {
        #[cfg(not(feature = "postgres"))]
        let _ = key;
        #[cfg(feature = "postgres")]
        #[allow(irrefutable_let_patterns)]
        // a PostgreSQL-only build has no other transaction
        if let TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(t.conn().await?)
                .await?;
        }
        Ok(())
    }

    /// Runs a statement built by sea-query; returns the rows it affected.
    pub async fn execute<S: SqlxBinder>(&mut self, stmt: &S) -> Result<u64, StoreError> {
        Ok(match &mut self.inner {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            TxInner::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            TxInner::Postgres(t) => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                pg_query(sql, values)
                    .execute(t.conn().await?)
                    .await?
                    .rows_affected()
            }
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(t) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                sqlite_query(sql, values)
                    .execute(&mut **t)
                    .await?
                    .rows_affected()
            }
            #[cfg(feature = "sqlite")]
            TxInner::SqliteWrite(m) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                m.run(sql, values).await?.1
            }
        })
    }

    /// Runs write statements built by sea-query in one call: on SQLite as a script, in order
    /// (one round trip to the connection's thread, anonymous parameters numbering on from
    /// statement to statement); on PostgreSQL as one statement whose parts are data-modifying
    /// common table expressions ([`crate::statements`]). The PostgreSQL form runs its parts on
    /// one snapshot and in no set order, all or nothing: no statement may read or change a row
    /// another of them writes (an item's row and its journal rows qualify). Statements that
    /// depend on one another go in calls of their own ([`execute`](Self::execute)).
    pub async fn write_each(&mut self, stmts: &[Write]) -> Result<(), StoreError> {
        match &mut self.inner {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            TxInner::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            TxInner::Postgres(t) => {
                if let Some((sql, values)) = pg_statement(stmts) {
                    pg_query(sql, values).execute(t.conn().await?).await?;
                }
            }
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(t) => {
                if let Some((sql, values)) = sqlite_script(stmts) {
                    sqlite_query(sql, values).execute(&mut **t).await?;
                }
            }
            #[cfg(feature = "sqlite")]
            TxInner::SqliteWrite(m) => {
                if let Some((sql, values)) = sqlite_script(stmts) {
                    m.run(sql, values).await?;
                }
            }
        }
        Ok(())
    }

    /// Runs a query built by sea-query and returns its rows.
    pub async fn fetch_all<S: SqlxBinder>(&mut self, stmt: &S) -> Result<Rows, StoreError> {
        Ok(match &mut self.inner {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            TxInner::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            TxInner::Postgres(t) => {
                let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
                Rows::Postgres(pg_query(sql, values).fetch_all(t.conn().await?).await?)
            }
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(t) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                Rows::Sqlite(sqlite_query(sql, values).fetch_all(&mut **t).await?)
            }
            #[cfg(feature = "sqlite")]
            TxInner::SqliteWrite(m) => {
                let (sql, values) = stmt.build_sqlx(SqliteQueryBuilder);
                Rows::Sqlite(m.run(sql, values).await?.0)
            }
        })
    }

    /// Runs a schema statement (`CREATE TABLE`, `ALTER TABLE`, …) built by sea-query. Its
    /// identifiers come from validated types; it carries no values.
    pub async fn ddl<S: SchemaStatementBuilder>(&mut self, stmt: &S) -> Result<(), StoreError> {
        match &mut self.inner {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            TxInner::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            TxInner::Postgres(t) => {
                let sql = stmt.to_string(PostgresQueryBuilder);
                t.conn().await?.execute(AssertSqlSafe(sql)).await?;
            }
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(t) => {
                let sql = stmt.to_string(SqliteQueryBuilder);
                t.execute(AssertSqlSafe(sql)).await?;
            }
            #[cfg(feature = "sqlite")]
            TxInner::SqliteWrite(m) => m.fixed(stmt.to_string(SqliteQueryBuilder)).await?,
        }
        Ok(())
    }

    /// Reads the catalog: constant SQL (`sql`, never formatted from input) with `binds` bound in
    /// order, every column read as text. For the start-up check, inside the migration's
    /// transaction or a read one.
    pub(crate) async fn catalog(
        &mut self,
        sql: &'static str,
        binds: &[&str],
    ) -> Result<Vec<Vec<String>>, StoreError> {
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        use sqlx::Row;
        Ok(match &mut self.inner {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            TxInner::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            TxInner::Postgres(t) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                let rows = q.fetch_all(t.conn().await?).await?;
                rows.iter()
                    .map(|r| (0..r.len()).map(|i| r.try_get::<String, _>(i)).collect())
                    .collect::<Result<_, _>>()?
            }
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(t) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                let rows = q.fetch_all(&mut **t).await?;
                rows.iter()
                    .map(|r| (0..r.len()).map(|i| r.try_get::<String, _>(i)).collect())
                    .collect::<Result<_, _>>()?
            }
            #[cfg(feature = "sqlite")]
            TxInner::SqliteWrite(m) => {
                let values = binds
                    .iter()
                    .map(|b| sea_query::Value::String(Some((*b).to_owned())))
                    .collect();
                let (rows, _) = m
                    .run(sql.to_owned(), SqlxValues(sea_query::Values(values)))
                    .await?;
                rows.iter()
                    .map(|r| (0..r.len()).map(|i| r.try_get::<String, _>(i)).collect())
                    .collect::<Result<_, _>>()?
            }
        })
    }

    /// Runs a migration's [`statements`](crate::migrate::Migration::statements): constant SQL
    /// with, at most, workeros's namespace in it (validated by [`Namespace::new`]), so nothing
    /// from input can reach it.
    pub(crate) async fn fixed(&mut self, sql: String) -> Result<(), StoreError> {
        match &mut self.inner {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            TxInner::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            TxInner::Postgres(t) => {
                t.conn().await?.execute(AssertSqlSafe(sql)).await?;
            }
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(t) => {
                t.execute(AssertSqlSafe(sql)).await?;
            }
            #[cfg(feature = "sqlite")]
            TxInner::SqliteWrite(m) => m.fixed(sql).await?,
        }
        Ok(())
    }

    /// Commits. On SQLite a write transaction returns once the group it joined has committed
    /// ([`Db::begin`]).
    pub async fn commit(self) -> Result<(), StoreError> {
        self.commit_with(&[]).await
    }

    /// Runs `writes` as [`write_each`](Self::write_each) does, then commits: what a write sends
    /// last. On PostgreSQL a transaction that has sent nothing yet sends no `BEGIN` at all: the
    /// writes are one statement in autocommit, all or nothing — one round trip for a create.
    pub async fn commit_with(self, writes: &[Write]) -> Result<(), StoreError> {
        match self.inner {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            TxInner::NoDriver(n) => {
                let _ = writes;
                n.absurd()
            }
            #[cfg(feature = "postgres")]
            TxInner::Postgres(t) => t.commit_with(writes).await?,
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(mut t) => {
                if let Some((sql, values)) = sqlite_script(writes) {
                    sqlite_query(sql, values).execute(&mut *t).await?;
                }
                t.commit().await?;
            }
            #[cfg(feature = "sqlite")]
            TxInner::SqliteWrite(m) => m.commit_with(sqlite_script(writes)).await?,
        }
        Ok(())
    }
}
