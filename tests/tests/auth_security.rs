//! Security properties of workeros-auth on SQLite and PostgreSQL: no plaintext secret at rest,
//! no session fixation, revocation on the next request, invalid credentials never anonymous,
//! login rate limits, an API key never exceeds its user, one-time tokens single-use and expiring,
//! sliding and absolute session expiry.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::{StatusCode, header};
use sea_query::{Alias, Asterisk, Expr, PostgresQueryBuilder, Query, SqliteQueryBuilder};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Column, Row};
use std::time::Duration;
use workeros_auth::{AuthConfig, RateLimit};
use workeros_core::roles::ADMIN;
use workeros_store::Db;
use workeros_tests::auth::{Client, auth_app};
use workeros_tests::stores::{TestDb, dbs, system_table};

fn signup_body(email: &str) -> serde_json::Value {
    json!({"email": email, "password": "correct horse battery"})
}

fn login_body(email: &str, password: &str) -> serde_json::Value {
    json!({"email": email, "password": password})
}

/// Every text value of every table of the database, as one string per table.
async fn dump(db: &Db) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match db.pool() {
        workeros_store::DbPool::Postgres(pool) => {
            // workeros's tables: its namespace's schema.
            let ns = db.names().namespace().to_string();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            )
            .bind(&ns)
            .fetch_all(pool)
            .await
            .unwrap();
            for t in tables {
                // Identifiers quoted by sea-query (the catalog's own names).
                let sql = Query::select()
                    .expr(Expr::cust(
                        "coalesce(string_agg(row_to_json(x)::text, ' '), '')",
                    ))
                    .from_as(
                        (Alias::new(ns.as_str()), Alias::new(t.as_str())),
                        Alias::new("x"),
                    )
                    .to_string(PostgresQueryBuilder);
                let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(pool)
                    .await
                    .unwrap();
                out.push((t, text));
            }
        }
        workeros_store::DbPool::Sqlite(pool) => {
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(pool)
                    .await
                    .unwrap();
            for t in tables {
                let sql = Query::select()
                    .column(Asterisk)
                    .from(Alias::new(t.as_str()))
                    .to_string(SqliteQueryBuilder);
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                let mut text = String::new();
                for r in &rows {
                    for c in r.columns() {
                        if let Ok(Some(s)) = r.try_get::<Option<String>, _>(c.ordinal()) {
                            text.push_str(&s);
                            text.push(' ');
                        }
                    }
                }
                out.push((t, text));
            }
        }
    }
    out
}

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn no_plaintext_secret_at_rest() {
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(&t, AuthConfig::default()).await;
        let app = &a.app;
        let mut secrets = vec![
            "correct horse battery".to_owned(),
            "cleo's password".to_owned(),
        ];
        let mut ann = Client::default();
        ann.call(
            app,
            "POST",
            "/api/auth/signup",
            Some(signup_body("ann@example.com")),
        )
        .await;
        secrets.push(ann.session.clone().unwrap());
        let r = ann
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "k"})),
            )
            .await;
        let key = r.data()["key"].as_str().unwrap().to_owned();
        secrets.push(key.clone());
        ann.call(
            app,
            "POST",
            "/api/auth/invite",
            Some(json!({"email": "cleo@example.com"})),
        )
        .await;
        let invite = a.mail.last_token("cleo@example.com");
        secrets.push(invite.clone());
        ann.call(app, "POST", "/api/auth/verify-email/request", None)
            .await;
        secrets.push(a.mail.last_token("ann@example.com"));
        Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset/request",
                Some(json!({"email": "ann@example.com"})),
            )
            .await;
        secrets.push(a.mail.next_token("ann@example.com", 1).await);
        let mut cleo = Client::default();
        cleo.call(
            app,
            "POST",
            "/api/auth/accept-invite",
            Some(json!({"token": invite, "password": "cleo's password"})),
        )
        .await;
        secrets.push(cleo.session.clone().unwrap());
        let r = ann.call(app, "POST", "/api/realtime/ticket", None).await;
        secrets.push(r.data()["ticket"].as_str().unwrap().to_owned());

        let tables = dump(&t.db).await;
        let sessions = t.db.names().physical(system_table("sessions"));
        assert!(tables.iter().any(|(t, _)| *t == sessions), "{name}");
        let all: String = tables
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        for s in &secrets {
            for (table, text) in &tables {
                assert!(
                    !text.contains(s.as_str()),
                    "{name}: `{s}` in plain text in {table}"
                );
            }
        }
        // What is there is the digest.
        assert!(
            all.contains(&hex_sha256(ann.session.as_ref().unwrap())),
            "{name}"
        );
        assert!(all.contains(&hex_sha256(&key)), "{name}");
        assert!(all.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "{name}");
        t.close().await;
    }
}

#[tokio::test]
async fn fixation_revocation_and_invalid_credentials() {
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(&t, AuthConfig::default()).await;
        let app = &a.app;
        Client::default()
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("ann@example.com")),
            )
            .await;

        // An attacker-chosen cookie at login is never adopted.
        let planted = "AttackerChosenSessionTokenAttackerChosen000".to_owned();
        let mut victim = Client {
            session: Some(planted.clone()),
            ..Client::default()
        };
        let r = victim
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(login_body("ann@example.com", "correct horse battery")),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_ne!(victim.session.as_deref(), Some(planted.as_str()));
        let mut attacker = Client {
            session: Some(planted),
            ..Client::default()
        };
        assert_eq!(
            attacker.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        // A session that was valid: every login is a new token.
        let first = victim.session.clone();
        victim
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(login_body("ann@example.com", "correct horse battery")),
            )
            .await;
        assert_ne!(victim.session, first, "{name}: rotated on login");

        // Presented but invalid credentials are 401 even on routes anonymous may use.
        for (cookie, authz) in [
            (Some("__Host-workeros_session=garbage"), None),
            (Some("__Host-workeros_session="), None),
            (None, Some("Bearer pak_invalid")),
            (None, Some("Bearer ")),
            (None, Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l")),
            (None, Some("pak_no_scheme")),
        ] {
            let mut req =
                axum::http::Request::builder().uri(workeros_tests::mount::uri("/api/collections"));
            if let Some(c) = cookie {
                req = req.header(header::COOKIE, c);
            }
            if let Some(h) = authz {
                req = req.header(header::AUTHORIZATION, h);
            }
            let res = tower::ServiceExt::oneshot(
                app.clone(),
                req.body(axum::body::Body::empty()).unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{name}: {cookie:?} {authz:?}"
            );
        }
        let r = Client::default()
            .call(app, "GET", "/api/collections", None)
            .await;
        assert_ne!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{name}: no credentials is anonymous"
        );
        t.close().await;
    }
}

#[tokio::test]
async fn login_rate_limits() {
    for t in dbs().await {
        let name = t.name();
        let cfg = AuthConfig {
            login_per_account: RateLimit {
                max: 3,
                window: Duration::from_secs(600),
            },
            login_per_address: RateLimit {
                max: 6,
                window: Duration::from_secs(600),
            },
            ..AuthConfig::default()
        };
        let a = auth_app(&t, cfg).await;
        let app = &a.app;
        Client::default()
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("ann@example.com")),
            )
            .await;
        Client::default()
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("bob@example.com")),
            )
            .await;
        let from = |last: u8| Client {
            addr: Some(([10, 0, 0, last], 4000).into()),
            ..Client::default()
        };

        // Per account: three failures, then 429 even with the right password, from anywhere.
        for i in 0..3 {
            let r = from(i)
                .call(
                    app,
                    "POST",
                    "/api/auth/login",
                    Some(login_body("ann@example.com", "wrong password")),
                )
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        }
        let r = from(9)
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(login_body("Ann@example.com", "correct horse battery")),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: {:?}",
            r.body
        );
        let retry: u64 = r.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=600).contains(&retry), "{retry}");
        assert_eq!(r.body["error"]["code"], "RATE_LIMITED");

        // A success clears the account's count.
        let r = from(20)
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(login_body("bob@example.com", "wrong password")),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = from(20)
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(login_body("bob@example.com", "correct horse battery")),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);

        // Per address: six attempts from one address, whatever the accounts.
        let mut c = from(30);
        for i in 0..6 {
            let r = c
                .call(
                    app,
                    "POST",
                    "/api/auth/login",
                    Some(login_body(&format!("u{i}@example.com"), "whatever pw")),
                )
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        }
        let r = c
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(login_body("bob@example.com", "correct horse battery")),
            )
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{name}");
        let r = from(31)
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(login_body("bob@example.com", "correct horse battery")),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{name}: other addresses are not limited"
        );
        t.close().await;
    }
}

#[tokio::test]
async fn an_api_key_never_exceeds_its_user() {
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(&t, AuthConfig::default()).await;
        let app = &a.app;
        let mut admin = Client::default();
        admin
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("admin@example.com")),
            )
            .await;
        let mut bob = Client::default();
        let r = bob
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("bob@example.com")),
            )
            .await;
        let bob_id = r.data()["id"].as_str().unwrap().to_owned();
        let r = bob
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "k"})),
            )
            .await;
        let mut key = Client::bearer(r.data()["key"].as_str().unwrap());

        assert_eq!(
            key.call(app, "GET", "/api/users", None).await.status,
            StatusCode::FORBIDDEN,
            "{name}"
        );
        assert_eq!(
            key.call(
                app,
                "POST",
                "/api/collections",
                Some(json!({"slug": "x", "fields": []}))
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        // The key follows the user's roles: up, and down again.
        admin
            .call(
                app,
                "PUT",
                &format!("/api/users/{bob_id}/roles"),
                Some(json!({"roles": [ADMIN]})),
            )
            .await;
        assert_eq!(
            key.call(app, "GET", "/api/users", None).await.status,
            StatusCode::OK,
            "{name}"
        );
        admin
            .call(
                app,
                "PUT",
                &format!("/api/users/{bob_id}/roles"),
                Some(json!({"roles": []})),
            )
            .await;
        assert_eq!(
            key.call(app, "GET", "/api/users", None).await.status,
            StatusCode::FORBIDDEN,
            "{name}"
        );
        // A key cannot mint keys (a leaked key must not outlive its revocation).
        let r = key
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "forever"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {:?}", r.body);
        // Keys cannot mint sessions or change the password without it.
        let r = key
            .call(
                app,
                "POST",
                "/api/auth/password",
                Some(json!({"currentPassword": "guess guess", "newPassword": "taken over!"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        // Suspended or deleted user: the key is dead.
        admin
            .call(
                app,
                "PATCH",
                &format!("/api/users/{bob_id}"),
                Some(json!({"status": "suspended"})),
            )
            .await;
        assert_eq!(
            key.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        admin
            .call(
                app,
                "PATCH",
                &format!("/api/users/{bob_id}"),
                Some(json!({"status": "active"})),
            )
            .await;
        assert_eq!(
            key.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::OK
        );
        admin
            .call(app, "DELETE", &format!("/api/users/{bob_id}"), None)
            .await;
        assert_eq!(
            key.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        // An expired key is dead.
        let r = admin
            .call(app, "POST", "/api/auth/api-keys", Some(json!({"name": "brief", "expiresAt": time::OffsetDateTime::now_utc().checked_add(time::Duration::seconds(2)).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        let mut brief = Client::bearer(r.data()["key"].as_str().unwrap());
        assert_eq!(
            brief.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::OK
        );
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert_eq!(
            brief.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        t.close().await;
    }
}

#[tokio::test]
async fn one_time_tokens_expire() {
    for t in dbs().await {
        let name = t.name();
        let cfg = AuthConfig {
            invite_ttl: Duration::from_millis(200),
            reset_ttl: Duration::from_millis(200),
            ..AuthConfig::default()
        };
        let a = auth_app(&t, cfg).await;
        let app = &a.app;
        let mut admin = Client::default();
        admin
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("admin@example.com")),
            )
            .await;
        admin
            .call(
                app,
                "POST",
                "/api/auth/invite",
                Some(json!({"email": "late@example.com"})),
            )
            .await;
        let invite = a.mail.last_token("late@example.com");
        Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset/request",
                Some(json!({"email": "admin@example.com"})),
            )
            .await;
        let reset = a.mail.next_token("admin@example.com", 0).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/accept-invite",
                Some(json!({"token": invite, "password": "too late now"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {:?}", r.body);
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset",
                Some(json!({"token": reset, "password": "too late now"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        // A new request replaces the old token, which then stops working (default lifetimes:
        // hashing a password in a debug build takes longer than 200 ms).
        let a = auth_app(&t, AuthConfig::default()).await;
        let app = &a.app;
        Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset/request",
                Some(json!({"email": "admin@example.com"})),
            )
            .await;
        let first = a.mail.next_token("admin@example.com", 0).await;
        Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset/request",
                Some(json!({"email": "admin@example.com"})),
            )
            .await;
        let second = a.mail.next_token("admin@example.com", 1).await;
        assert_ne!(first, second);
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset",
                Some(json!({"token": first, "password": "replaced one"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset",
                Some(json!({"token": second, "password": "the new one"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        t.close().await;
    }
}

#[tokio::test]
async fn sessions_slide_and_hit_the_cap() {
    for t in dbs().await {
        let name = t.name();
        check_expiry(&t, name).await;
        t.close().await;
    }
}

async fn check_expiry(t: &TestDb, name: &str) {
    // Idle expiry of 4 s that slides with use. The margins are wide (seconds) because CI runs
    // other tests, hashing passwords, on the same two cores: a sleep may overshoot by a lot.
    let cfg = AuthConfig {
        session_idle: Duration::from_secs(4),
        session_max: Duration::from_secs(60),
        ..AuthConfig::default()
    };
    let a = auth_app(t, cfg).await;
    let app = &a.app;
    let mut ann = Client::default();
    ann.call(
        app,
        "POST",
        "/api/auth/signup",
        Some(signup_body("ann@example.com")),
    )
    .await;
    // Two uses 2.2 s apart outlive one idle period only if each use slid the expiry.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert_eq!(
            ann.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::OK,
            "{name}: used, so it slides"
        );
    }
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(
        ann.call(app, "GET", "/api/auth/me", None).await.status,
        StatusCode::UNAUTHORIZED,
        "{name}: idle"
    );

    // The absolute cap ends a session however much it is used.
    let cfg = AuthConfig {
        session_idle: Duration::from_secs(60),
        session_max: Duration::from_secs(3),
        ..AuthConfig::default()
    };
    let auth = workeros_auth::Auth::new(t.db.clone(), cfg).unwrap();
    let (_, s) = auth
        .login("ann@example.com", "correct horse battery", None)
        .await
        .unwrap();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(auth.authenticate_session(&s.token).await.is_ok(), "{name}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        auth.authenticate_session(&s.token).await.is_err(),
        "{name}: capped"
    );
}
