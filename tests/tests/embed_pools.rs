//! The host's own pools: a SQLite pool the host opened is checked for the pragmas workeros
//! needs (foreign keys, a busy timeout, WAL on a file), each one off named with the option that
//! sets it; a PostgreSQL pool the host opened serves workeros beside the host's tables. And TLS
//! to PostgreSQL: `sslmode=require` connects encrypted, `verify-full` checks the certificate
//! against `sslrootcert` and the host name, and the wrong CA is refused with an error that says
//! what to check. The TLS tests need the CA `.ci/pg-tls` writes, in `WORKEROS_TEST_PG_TLS`
//! (skipped without it, failing in CI).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::path::PathBuf;
use std::time::Duration;
use workeros_store::{Db, DbPool, ListQuery, Namespace, NewItems, Store};
use workeros_tests::fixtures::admin;
use workeros_tests::stores::dbs;

/// A file for one test's SQLite database, removed with its WAL files when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "workeros-embed-pools-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir.join(format!("{name}.sqlite")))
    }

    /// Options as a host writes them: WAL, foreign keys and sqlx's busy timeout.
    fn options(&self) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(&self.0)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// workeros on `db`: migrated, a collection made, an item written and read back.
async fn serves(db: Db) {
    workeros_store::migrate(&db).await.unwrap();
    let store = Store::new(db);
    store
        .create_collection_json(
            &admin(),
            json!({"slug": "notes", "fields": [{"name": "body", "type": "text"}]}),
        )
        .await
        .unwrap();
    let item = json!({"body": "hello"}).as_object().unwrap().clone();
    store
        .create_items(&admin(), "notes", NewItems::One(item))
        .await
        .unwrap();
    let page = store
        .list_items(&admin(), "notes", &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
}

#[tokio::test]
async fn a_host_sqlite_pool_serves_workeros_beside_the_host_tables() {
    let file = TempDb::new("host");
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(file.options())
        .await
        .unwrap();
    sqlx::query("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO users (email) VALUES ('ann@example.com')")
        .execute(&pool)
        .await
        .unwrap();
    let db = Db::from_sqlite_pool(pool.clone(), Namespace::default())
        .await
        .unwrap();
    serves(db).await;
    let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM users")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(emails, ["ann@example.com"], "the host's table is untouched");
    // In memory, where there is no journal file to put in WAL mode, the same pool works.
    let memory = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().in_memory(true))
        .await
        .unwrap();
    serves(
        Db::from_sqlite_pool(memory, Namespace::default())
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn a_host_sqlite_pool_without_a_needed_pragma_is_refused_naming_it() {
    let file = TempDb::new("pragmas");
    let cases = [
        (
            file.options().foreign_keys(false),
            "foreign keys are off",
            "SqliteConnectOptions::foreign_keys(true)",
        ),
        (
            file.options().busy_timeout(Duration::ZERO),
            "the busy timeout is 0 ms",
            "SqliteConnectOptions::busy_timeout",
        ),
        (
            file.options().journal_mode(SqliteJournalMode::Delete),
            "the journal mode is `delete`",
            "SqliteConnectOptions::journal_mode(SqliteJournalMode::Wal)",
        ),
    ];
    for (options, says, fix) in cases {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let err = Db::from_sqlite_pool(pool.clone(), Namespace::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{says}: {err}");
        assert!(err.contains(fix), "{fix}: {err}");
        let made: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(made, 0, "{says}: nothing was created");
        pool.close().await;
    }
    // Every problem at once, in one message.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            file.options()
                .foreign_keys(false)
                .busy_timeout(Duration::ZERO)
                .journal_mode(SqliteJournalMode::Truncate),
        )
        .await
        .unwrap();
    let err = Db::from_sqlite_pool(pool, Namespace::default())
        .await
        .unwrap_err()
        .to_string();
    for says in ["foreign keys", "busy timeout", "`truncate`"] {
        assert!(err.contains(says), "{says}: {err}");
    }
}

#[tokio::test]
async fn a_host_postgres_pool_serves_workeros() {
    for t in dbs().await {
        let DbPool::Postgres(pool) = t.db.pool() else {
            continue;
        };
        // The host's own pool, as `PgPoolOptions` makes it, with its own `users` in its schema.
        let host = t.db.names().host_schema().unwrap().to_owned();
        let ns = Namespace::new(format!("{host}_cms")).unwrap();
        let db = Db::from_pg_pool(pool.clone(), ns).await.unwrap();
        assert_eq!(db.names().host_schema(), Some(host.as_str()));
        serves(db).await;
        t.close().await;
    }
}

/// The folder `.ci/pg-tls` wrote (`ca.pem`, `wrong-ca.pem`), and the server's URL parts.
fn tls() -> Option<(PathBuf, String)> {
    let Some(dir) = std::env::var_os("WORKEROS_TEST_PG_TLS") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but WORKEROS_TEST_PG_TLS is not: run `.ci/pg-tls <folder>` as root and \
             set WORKEROS_TEST_PG_TLS=<folder>"
        );
        eprintln!("WORKEROS_TEST_PG_TLS is not set: the TLS tests are skipped");
        return None;
    };
    let url =
        std::env::var("WORKEROS_TEST_PG").expect("WORKEROS_TEST_PG with WORKEROS_TEST_PG_TLS");
    // The certificate names `localhost` (not `127.0.0.1`); the tests connect by name.
    let url = url.replace("@127.0.0.1", "@localhost");
    Some((PathBuf::from(dir), url))
}

fn with(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// Whether the connection of `db` is encrypted, as the server sees it.
async fn encrypted(db: &Db) -> bool {
    let DbPool::Postgres(pool) = db.pool() else {
        panic!("a PostgreSQL pool");
    };
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_over_tls_require_and_verify_full() {
    let Some((dir, url)) = tls() else {
        return;
    };
    let ca = dir.join("ca.pem");
    let wrong = dir.join("wrong-ca.pem");

    let db = Db::connect(&with(&url, "sslmode=require")).await.unwrap();
    assert!(encrypted(&db).await, "sslmode=require is encrypted");
    db.close().await;

    let good = with(
        &url,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let db = Db::connect(&good).await.unwrap();
    assert!(encrypted(&db).await, "verify-full with the right CA");
    db.close().await;
    // The host's own pool over TLS is the same.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&good)
        .await
        .unwrap();
    let db = Db::from_pg_pool(pool, Namespace::default()).await.unwrap();
    assert!(encrypted(&db).await);
    db.close().await;

    let bad = with(
        &url,
        &format!("sslmode=verify-full&sslrootcert={}", wrong.display()),
    );
    let err = Db::connect(&bad).await.unwrap_err().to_string();
    assert!(err.contains("TLS"), "{err}");
    assert!(err.contains("sslrootcert"), "says what to check: {err}");
    // The right CA, but an address the certificate does not name (it names `localhost` only):
    // `verify-full` refuses it, `verify-ca` (the CA without the name) accepts it.
    let by_address = url.replace("@localhost", "@127.0.0.1");
    let err = Db::connect(&with(
        &by_address,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("TLS"), "{err}");
    let db = Db::connect(&with(
        &by_address,
        &format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    ))
    .await
    .unwrap();
    assert!(
        encrypted(&db).await,
        "verify-ca checks the CA, not the name"
    );
    db.close().await;
}
