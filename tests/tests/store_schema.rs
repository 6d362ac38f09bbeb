//! Migrations a host can own, on SQLite and PostgreSQL: the SQL that `migrate::export` writes,
//! applied by a plain SQL runner, makes the same schema as `migrate` (catalog comparison); the
//! start-up check reports a missing, behind, ahead or hand-changed schema by object name and
//! changes nothing; a migration that meets a foreign object names it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use workeros_store::migrate::{self, Component, SchemaProblem};
use workeros_store::{Db, DbPool, Namespace};
use workeros_tests::stores::dbs;

const COMPONENTS: [Component; 3] = [
    workeros_store::SCHEMA,
    workeros_auth::SCHEMA,
    workeros_events::SCHEMA,
];

/// Another deployment in the same database as `db`: namespace `name` (on PostgreSQL, beside the
/// test's own, so the test's cleanup drops it).
async fn beside(db: &Db, suffix: &str) -> Db {
    match db.pool() {
        DbPool::Sqlite(p) => Db::from_sqlite_pool(p.clone(), Namespace::new(suffix).unwrap())
            .await
            .unwrap(),
        DbPool::Postgres(p) => {
            let host = db.names().host_schema().unwrap();
            let ns = format!("{host}_{suffix}");
            Db::from_pg_pool(p.clone(), Namespace::new(ns).unwrap())
                .await
                .unwrap()
        }
    }
}

/// Runs `sql` as a plain SQL runner would: the whole file, in one go, without workeros.
async fn plain(db: &Db, sql: &str) {
    match db.pool() {
        DbPool::Sqlite(p) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(p)
                .await
                .unwrap_or_else(|e| panic!("sqlite: {e}\n{sql}"));
        }
        DbPool::Postgres(p) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(p)
                .await
                .unwrap_or_else(|e| panic!("postgres: {e}\n{sql}"));
        }
    }
}

/// Everything of `db`'s namespace in the catalog, with the namespace's name replaced by `NS`:
/// tables, columns with type, nullability and default, indexes with their definition,
/// constraints, triggers and functions (PostgreSQL), or `sqlite_master`'s text (SQLite).
async fn catalog(db: &Db) -> Vec<String> {
    let ns = db.names().namespace().to_string();
    let mut out: Vec<String> = match db.pool() {
        DbPool::Sqlite(p) => {
            let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name LIKE ?1 ESCAPE '\\'",
            )
            .bind(format!("{ns}\\_%"))
            .fetch_all(p)
            .await
            .unwrap();
            rows.into_iter()
                .map(|(ty, name, table, sql)| {
                    format!("{ty} {name} on {table}: {}", sql.unwrap_or_default())
                })
                .collect()
        }
        DbPool::Postgres(p) => {
            let mut out = Vec::new();
            let columns: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, \
                 column_default::text FROM information_schema.columns WHERE table_schema = $1",
            )
            .bind(&ns)
            .fetch_all(p)
            .await
            .unwrap();
            out.extend(
                columns
                    .into_iter()
                    .map(|(t, c, ty, null, def)| format!("column {t}.{c} {ty} {null} {def:?}")),
            );
            let indexes: Vec<(String, String)> = sqlx::query_as(
                "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1",
            )
            .bind(&ns)
            .fetch_all(p)
            .await
            .unwrap();
            out.extend(indexes.into_iter().map(|(i, d)| format!("index {i}: {d}")));
            let constraints: Vec<(String, String)> = sqlx::query_as(
                "SELECT conname::text, pg_get_constraintdef(c.oid) FROM pg_constraint c \
                 JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1",
            )
            .bind(&ns)
            .fetch_all(p)
            .await
            .unwrap();
            out.extend(
                constraints
                    .into_iter()
                    .map(|(c, d)| format!("constraint {c}: {d}")),
            );
            let triggers: Vec<(String, String)> = sqlx::query_as(
                "SELECT t.tgname::text, pg_get_triggerdef(t.oid) FROM pg_trigger t \
                 JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND NOT t.tgisinternal",
            )
            .bind(&ns)
            .fetch_all(p)
            .await
            .unwrap();
            out.extend(
                triggers
                    .into_iter()
                    .map(|(t, d)| format!("trigger {t}: {d}")),
            );
            let functions: Vec<(String, String)> = sqlx::query_as(
                "SELECT p.proname::text, p.prosrc FROM pg_proc p \
                 JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1",
            )
            .bind(&ns)
            .fetch_all(p)
            .await
            .unwrap();
            out.extend(
                functions
                    .into_iter()
                    .map(|(f, s)| format!("function {f}: {s}")),
            );
            out
        }
    };
    for line in &mut out {
        *line = line.replace(&ns, "NS");
    }
    out.sort();
    out
}

/// The recorded versions of `db`'s namespace.
async fn versions(db: &Db) -> Vec<(String, i64)> {
    let table = workeros_tests::stores::sql_table(db, "migrations");
    let sql = format!("SELECT component, version FROM {table} ORDER BY component, version");
    let mut out: Vec<(String, i64)> = match db.pool() {
        DbPool::Sqlite(p) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(p)
            .await
            .unwrap(),
        DbPool::Postgres(p) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(p)
            .await
            .unwrap(),
    };
    out.sort();
    out
}

#[tokio::test]
async fn exported_sql_makes_the_schema_migrate_makes() {
    for t in dbs().await {
        let by_migrate = &t.db;
        for c in &COMPONENTS {
            migrate::run(by_migrate, c).await.unwrap();
        }
        let by_sql = beside(by_migrate, "plain").await;
        for c in &COMPONENTS {
            for file in migrate::export(by_sql.names(), c).unwrap() {
                plain(&by_sql, &file.sql).await;
            }
        }
        let (a, b) = (catalog(by_migrate).await, catalog(&by_sql).await);
        assert!(a.len() > 40, "{}: {a:#?}", t.name());
        let only_a: Vec<_> = a.iter().filter(|l| !b.contains(l)).collect();
        let only_b: Vec<_> = b.iter().filter(|l| !a.contains(l)).collect();
        assert!(
            only_a.is_empty() && only_b.is_empty(),
            "{}: only by migrate: {only_a:#?}\nonly by the SQL: {only_b:#?}",
            t.name()
        );
        assert_eq!(versions(by_migrate).await, versions(&by_sql).await);
        // The start-up check accepts it, and `migrate` finds nothing left to do.
        for c in &COMPONENTS {
            migrate::check(&by_sql, c).await.unwrap();
            assert!(migrate::run(&by_sql, c).await.unwrap().is_empty());
        }
        // Applying a file twice changes nothing (a re-run migration tool).
        let again = migrate::export(by_sql.names(), &workeros_store::SCHEMA).unwrap();
        plain(&by_sql, &again[3].sql).await;
        assert_eq!(catalog(&by_sql).await, b, "{}", t.name());
        t.close().await;
    }
}

#[tokio::test]
async fn the_check_names_what_is_missing_and_changes_nothing() {
    for t in dbs().await {
        let name = t.name();
        let db = beside(&t.db, "checked").await;
        let auth = &workeros_auth::SCHEMA;

        // Nothing there yet.
        let r = migrate::report(&db, auth).await.unwrap();
        let expect = if name == "postgres" {
            SchemaProblem::MissingNamespace
        } else {
            SchemaProblem::NotInstalled
        };
        assert_eq!(r.problems, vec![expect], "{name}");
        let msg = migrate::check(&db, auth).await.unwrap_err().to_string();
        assert!(msg.contains("not installed"), "{name}: {msg}");
        assert!(msg.contains("needs version 3"), "{name}: {msg}");
        assert!(
            catalog(&db).await.is_empty(),
            "{name}: the check created something"
        );

        // Versions 1 and 2 only, as a host's migration tool would have left it.
        for file in &migrate::export(db.names(), auth).unwrap()[..2] {
            plain(&db, &file.sql).await;
        }
        let before = catalog(&db).await;
        let r = migrate::report(&db, auth).await.unwrap();
        assert_eq!((r.at, r.needs), (Some(2), 3), "{name}");
        assert!(r.problems.contains(&SchemaProblem::Behind), "{name}");
        let ns = db.names().namespace().to_string();
        let msg = migrate::check(&db, auth).await.unwrap_err().to_string();
        let sync = db.names().shown(auth.table("sync_roles").unwrap());
        let sync2 = db.names().shown(auth.table("sync_memberships").unwrap());
        assert!(
            msg.starts_with(&format!(
                "table `{sync}` does not exist, table `{sync2}` does not exist"
            )),
            "{name}: {msg}"
        );
        assert!(
            msg.contains(&format!(
                "the `auth` schema in namespace `{ns}` is at version 2, this build needs 3"
            )),
            "{name}: {msg}"
        );
        assert!(msg.contains("workeros_auth_v*.sql"), "{name}: {msg}");
        assert_eq!(
            catalog(&db).await,
            before,
            "{name}: the check changed something"
        );

        // Migrating finishes the job; then a column removed by hand is named.
        assert_eq!(migrate::run(&db, auth).await.unwrap(), vec![3], "{name}");
        let users = db.names().shown(auth.table("users").unwrap());
        let sql = format!(
            "ALTER TABLE {} DROP COLUMN email_lower",
            workeros_tests::stores::sql_table(&db, "users")
        );
        plain(&db, &format!("DROP INDEX IF EXISTS {};", index_sql(&db))).await;
        plain(&db, &sql).await;
        let msg = migrate::check(&db, auth).await.unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("table `{users}` has no column `email_lower`")),
            "{name}: {msg}"
        );
        assert!(msg.contains("changed by hand"), "{name}: {msg}");

        // A database newer than this build: named, and `migrate` refuses to touch it.
        plain(
            &db,
            &format!(
                "INSERT INTO {} (component, version, applied_at) VALUES ('auth', 9, '2030-01-01T00:00:00.000000Z')",
                workeros_tests::stores::sql_table(&db, "migrations")
            ),
        )
        .await;
        let msg = migrate::run(&db, auth).await.unwrap_err().to_string();
        assert!(
            msg.contains("is at version 9, newer than this build knows (3)"),
            "{name}: {msg}"
        );
        db.close().await;
        t.close().await;
    }
}

/// The index on `users.email_lower` as a `DROP INDEX` names it.
fn index_sql(db: &Db) -> String {
    let index = db.names().index("users_email_lower");
    match db.pool() {
        DbPool::Postgres(_) => format!("\"{}\".\"{index}\"", db.names().namespace()),
        DbPool::Sqlite(_) => format!("\"{index}\""),
    }
}

#[tokio::test]
async fn a_foreign_table_in_the_namespace_is_named_at_start_up() {
    for t in dbs().await {
        let name = t.name();
        let db = beside(&t.db, "foreign").await;
        // Somebody made `users` in workeros's namespace by hand, with another shape.
        let users = workeros_tests::stores::sql_table(&db, "users");
        if name == "postgres" {
            plain(
                &db,
                &format!("CREATE SCHEMA \"{}\"", db.names().namespace()),
            )
            .await;
        }
        plain(
            &db,
            &format!("CREATE TABLE {users} (id integer PRIMARY KEY)"),
        )
        .await;
        let err = workeros_auth::migrate(&db).await.unwrap_err().to_string();
        if name == "postgres" {
            // PostgreSQL refuses the index on the missing column, named.
            assert!(
                err.starts_with("could not create index `users_email_lower` for workeros \
                                 component `auth` (version 1): column \"email_lower\" does not exist"),
                "{name}: {err}"
            );
        } else {
            // SQLite takes an unknown quoted name for a string and builds the index; the check
            // before commit names the table.
            assert!(
                err.starts_with(&format!(
                    "table `{}` has no column `tenant_id`",
                    db.names()
                        .shown(workeros_auth::SCHEMA.table("users").unwrap())
                )),
                "{name}: {err}"
            );
        }
        // Nothing of the failed run was kept: the check still finds the component missing.
        let r = migrate::report(&db, &workeros_auth::SCHEMA).await.unwrap();
        assert_eq!(r.problems, vec![SchemaProblem::NotInstalled], "{name}");
        assert!(!err.contains("could not complete the request"), "{name}");
        db.close().await;
        t.close().await;
    }
}

#[test]
fn every_component_holds_together_in_both_dialects() {
    for d in [
        workeros_dsl::Dialect::Postgres,
        workeros_dsl::Dialect::Sqlite,
    ] {
        let names = workeros_store::Names::new(d, Namespace::default(), None);
        for c in &COMPONENTS {
            c.validate(&names).unwrap();
            assert_eq!(
                migrate::export(&names, c).unwrap().len() as i64,
                c.latest(),
                "{}",
                c.name()
            );
        }
    }
}
