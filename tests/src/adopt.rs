//! Adoption test support: Chinook loaded as a user's existing schema, the tests' own setup
//! statements, and an adopt wizard over a migrated store.

use crate::stores::TestDb;
use workeros_adopt::Adopt;
use workeros_store::{Db, DbPool, Store};

/// Loads Chinook as the user's existing schema (SQLite: the script as is; PostgreSQL: from the
/// first `CREATE TABLE`, as its README says).
pub async fn load_chinook(db: &Db) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/chinook");
    let sql = match db.pool() {
        DbPool::Sqlite(_) => std::fs::read_to_string(format!("{dir}/Chinook_Sqlite.sql")).unwrap(),
        DbPool::Postgres(_) => {
            let sql = std::fs::read_to_string(format!("{dir}/Chinook_PostgreSql.sql")).unwrap();
            let start = sql.find("CREATE TABLE").unwrap();
            sql[start..].to_owned()
        }
    };
    exec(db, &sql).await;
}

/// Runs test setup SQL (the test's own statements, standing in for another application; never
/// workeros').
pub async fn exec(db: &Db, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.pool() {
        DbPool::Sqlite(pool) => {
            sqlx::raw_sql(sql).execute(pool).await.unwrap();
        }
        DbPool::Postgres(pool) => {
            sqlx::raw_sql(sql).execute(pool).await.unwrap();
        }
    }
}

/// The rows of a test query, every column as text (`NULL` as `None`): what another application
/// reading the table directly sees.
pub async fn texts(db: &Db, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::Row;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.pool() {
        DbPool::Sqlite(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .or_else(|_| {
                                r.try_get::<Option<i64>, _>(i)
                                    .map(|v| v.map(|v| v.to_string()))
                            })
                            .or_else(|_| {
                                r.try_get::<Option<f64>, _>(i)
                                    .map(|v| v.map(|v| v.to_string()))
                            })
                            .unwrap()
                    })
                    .collect()
            })
            .collect(),
        DbPool::Postgres(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                    .collect()
            })
            .collect(),
    }
}

/// Migrates the store and auth tables and opens the wizard (installed in the store).
pub async fn setup(t: &TestDb) -> Adopt {
    workeros_store::migrate(&t.db).await.unwrap();
    workeros_auth::migrate(&t.db).await.unwrap();
    let store = Store::new(t.db.clone());
    let adopt = Adopt::new(store.clone());
    store.set_adopter(adopt.adopter());
    adopt
}
