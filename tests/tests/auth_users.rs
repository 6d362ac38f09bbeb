//! Users of workeros-auth on SQLite and PostgreSQL: migrations, the first user becomes admin,
//! emails unique in any case, passwords stored only as Argon2id hashes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sea_query::{Alias, Query};
use workeros_auth::{AuthError, create_user, migrate};
use workeros_core::ErrorCode;
use workeros_core::roles::{ADMIN, AUTHENTICATED};
use workeros_store::Db;
use workeros_tests::stores::{dbs, system_table};

async fn hashes(db: &Db) -> Vec<String> {
    let rows = db
        .fetch_all(
            Query::select()
                .column(Alias::new("password_hash"))
                .from(db.table(system_table("users"))),
        )
        .await
        .unwrap();
    match rows {
        workeros_store::Rows::Sqlite(r) => r.iter().map(|r| sqlx::Row::get(r, 0)).collect(),
        workeros_store::Rows::Postgres(r) => r.iter().map(|r| sqlx::Row::get(r, 0)).collect(),
    }
}

#[tokio::test]
async fn users_first_admin_unique_emails_hashed_passwords() {
    for t in dbs().await {
        let name = t.name();
        let db = &t.db;
        assert_eq!(migrate(db).await.unwrap(), vec![1, 2, 3], "{name}");
        assert!(migrate(db).await.unwrap().is_empty(), "{name}");
        let tenant = workeros_core::DEFAULT_TENANT;
        let first = create_user(
            db,
            tenant,
            "Ann@Example.com",
            "correct horse 1",
            Some("Ann"),
        )
        .await
        .unwrap();
        assert_eq!(first.roles, [ADMIN], "{name}");
        let second = create_user(db, tenant, "bob@example.com", "correct horse 2", None)
            .await
            .unwrap();
        assert_eq!(second.roles, [AUTHENTICATED], "{name}");
        let e: AuthError = create_user(db, tenant, "ann@EXAMPLE.com", "another pass", None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Conflict, "{name}: {e}");
        for (email, password) in [
            ("not-an-email", "long enough"),
            ("a b@c.d", "long enough"),
            ("c@d.e", "short"),
        ] {
            let e = create_user(db, tenant, email, password, None)
                .await
                .unwrap_err();
            assert_eq!(e.code(), ErrorCode::Validation, "{name}: {email}");
        }
        let stored = hashes(db).await;
        assert_eq!(stored.len(), 2, "{name}");
        for h in &stored {
            assert!(h.starts_with("$argon2id$"), "{name}: {h}");
            assert!(!h.contains("correct horse"), "{name}: plaintext at rest");
        }
        assert!(
            workeros_auth::password::verify_password("correct horse 1", &stored[0])
                || workeros_auth::password::verify_password("correct horse 1", &stored[1]),
            "{name}"
        );
        t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_signups_make_one_admin() {
    for group in workeros_tests::stores::shared(4).await {
        let name = group[0].name();
        migrate(&group[0].db).await.unwrap();
        let handles: Vec<_> = group
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let db = t.db.clone();
                tokio::spawn(async move {
                    create_user(
                        &db,
                        workeros_core::DEFAULT_TENANT,
                        &format!("u{i}@example.com"),
                        "long enough",
                        None,
                    )
                    .await
                })
            })
            .collect();
        let mut admins = 0;
        for h in handles {
            let u = h.await.unwrap().unwrap_or_else(|e| panic!("{name}: {e}"));
            admins += usize::from(u.roles == [ADMIN]);
        }
        assert_eq!(admins, 1, "{name}: exactly one first user");
        for t in group {
            t.close().await;
        }
    }
}
