//! workeros-auth over HTTP, through the real routers and the auth layer, on SQLite and
//! PostgreSQL: signup, login, logout, me, password change, API keys, admin users and roles,
//! invitations, verification, reset, tickets, and owner-scoped items per user.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::json;
use workeros_auth::AuthConfig;
use workeros_core::roles::{ADMIN, AUTHENTICATED, PUBLIC};
use workeros_tests::auth::{Client, auth_app};
use workeros_tests::stores::dbs;

fn signup_body(email: &str) -> serde_json::Value {
    json!({"email": email, "password": "correct horse battery", "name": email.split('@').next()})
}

#[tokio::test]
async fn signup_login_me_logout() {
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(&t, AuthConfig::default()).await;
        let app = &a.app;

        let mut ann = Client::default();
        let r = ann
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("Ann@Example.com")),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        assert_eq!(r.data()["roles"], json!([ADMIN]), "{name}: the first user");
        assert!(r.data().get("passwordHash").is_none());
        let cookie = &r.set_cookies()[0];
        assert!(
            cookie.starts_with("__Host-workeros_session="),
            "{name}: {cookie}"
        );
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age="] {
            assert!(cookie.contains(attr), "{name}: {cookie} lacks {attr}");
        }
        assert_eq!(r.headers["cache-control"], "no-store");
        let first_token = ann.session.clone().unwrap();
        assert!(first_token.len() >= 43, "≥ 256 bits");

        let r = ann.call(app, "GET", "/api/auth/me", None).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.data()["email"], "Ann@Example.com");
        assert_eq!(r.data()["roles"], json!([ADMIN]));

        let mut bob = Client::default();
        let r = bob
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("bob@example.com")),
            )
            .await;
        assert_eq!(r.data()["roles"], json!([AUTHENTICATED]), "{name}");

        // Same email, other case: 409.
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("ANN@example.COM")),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{name}");
        // Bad input: 422 / 400.
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(json!({"email": "x@y.z", "password": "short"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let r = Client::default()
            .call(app, "POST", "/api/auth/signup", Some(json!({"email": "x@y.z", "password": "long enough", "organizationName": "Acme"})))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: no orgs in single-tenant mode"
        );

        // Login: any case, a new token each time.
        let mut ann2 = Client::default();
        let r = ann2
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(json!({"email": "ann@EXAMPLE.com", "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_ne!(ann2.session, ann.session);
        for (email, pw) in [
            ("ann@example.com", "wrong password"),
            ("nobody@example.com", "correct horse battery"),
        ] {
            let r = Client::default()
                .call(
                    app,
                    "POST",
                    "/api/auth/login",
                    Some(json!({"email": email, "password": pw})),
                )
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
            assert_eq!(
                r.body["error"]["message"], "invalid credentials",
                "{name}: the same answer"
            );
        }

        // Logout ends that session only; the cookie is cleared.
        let r = ann2.call(app, "POST", "/api/auth/logout", None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.set_cookies()[0].contains("Max-Age=0"));
        assert!(ann2.session.is_none());
        let mut stale = Client {
            session: Some(first_token.clone()),
            ..Client::default()
        };
        assert_eq!(
            stale.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::OK
        );
        let r = ann.call(app, "POST", "/api/auth/logout", None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let mut stale = Client {
            session: Some(first_token.clone()),
            ..Client::default()
        };
        let r = stale.call(app, "GET", "/api/auth/me", None).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{name}: revoked on the next request"
        );
        assert!(stale.session.is_none(), "{name}: a stale cookie is cleared");
        // Anonymous `me` is 401; a stale cookie does not block logging in again.
        assert_eq!(
            Client::default()
                .call(app, "GET", "/api/auth/me", None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        let mut stale = Client {
            session: Some(first_token),
            ..Client::default()
        };
        let r = stale
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(json!({"email": "ann@example.com", "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(
            stale.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::OK
        );
        t.close().await;
    }
}

#[tokio::test]
async fn password_change_and_api_keys() {
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(&t, AuthConfig::default()).await;
        let app = &a.app;
        let mut ann = Client::default();
        ann.call(
            app,
            "POST",
            "/api/auth/signup",
            Some(signup_body("ann@example.com")),
        )
        .await;
        let mut ann_other_device = Client::default();
        ann_other_device
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(json!({"email": "ann@example.com", "password": "correct horse battery"})),
            )
            .await;

        // API keys: shown once, listed by prefix, used as bearer.
        let r = ann
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "ci"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        let key = r.data()["key"].as_str().unwrap().to_owned();
        let key_id = r.data()["id"].as_str().unwrap().to_owned();
        assert!(key.starts_with("pak_"));
        assert_eq!(r.data()["prefix"].as_str().unwrap(), &key[..12]);
        let r = ann.call(app, "GET", "/api/auth/api-keys", None).await;
        assert_eq!(r.data().as_array().unwrap().len(), 1);
        assert!(
            r.data()[0].get("key").is_none(),
            "{name}: never listed again"
        );
        let mut bot = Client::bearer(&key);
        let r = bot.call(app, "GET", "/api/auth/me", None).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(r.data()["email"], "ann@example.com");
        assert_eq!(r.data()["roles"], json!([ADMIN]));
        // last_used_at is set by the use.
        let r = ann.call(app, "GET", "/api/auth/api-keys", None).await;
        assert!(
            r.data()[0]["lastUsedAt"].is_string(),
            "{name}: {:?}",
            r.body
        );
        // Bad keys are 401, not anonymous.
        for bad in ["pak_nope", "nope", "pak_", &format!("{key}x")] {
            let r = Client::bearer(bad)
                .call(app, "GET", "/api/collections", None)
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {bad}");
        }
        // Validation.
        let r = ann
            .call(app, "POST", "/api/auth/api-keys", Some(json!({"name": ""})))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = ann
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "old", "expiresAt": "2001-01-01T00:00:00Z"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = ann
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "soon", "expiresAt": "2999-01-01T00:00:00Z"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.data()["expiresAt"], "2999-01-01T00:00:00.000000Z");
        // Anonymous may not make keys.
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        // Revoking a key takes effect on the next request.
        let r = ann
            .call(app, "DELETE", &format!("/api/auth/api-keys/{key_id}"), None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            bot.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        let r = ann
            .call(app, "DELETE", &format!("/api/auth/api-keys/{key_id}"), None)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Password change: wrong current password refused; right one ends every session and
        // every key (`security_credentials` checks a live key) and gives the caller a new one.
        let r = ann
            .call(
                app,
                "POST",
                "/api/auth/password",
                Some(json!({"currentPassword": "nope nope", "newPassword": "new password 1"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        let before = ann.session.clone();
        let r = ann
            .call(app, "POST", "/api/auth/password", Some(json!({"currentPassword": "correct horse battery", "newPassword": "new password 1"})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_ne!(ann.session, before);
        assert_eq!(
            ann.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::OK
        );
        assert_eq!(
            ann_other_device
                .call(app, "GET", "/api/auth/me", None)
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "{name}: other sessions end"
        );
        let mut old = Client {
            session: before,
            ..Client::default()
        };
        assert_eq!(
            old.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(json!({"email": "ann@example.com", "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{name}: the old password is gone"
        );

        t.close().await;
    }
}

#[tokio::test]
async fn admin_users_and_roles() {
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(&t, AuthConfig::default()).await;
        let app = &a.app;
        let mut admin = Client::default();
        let r = admin
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(signup_body("admin@example.com")),
            )
            .await;
        let admin_id = r.data()["id"].as_str().unwrap().to_owned();
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

        // Non-admins and anonymous are refused.
        assert_eq!(
            bob.call(app, "GET", "/api/users", None).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            Client::default()
                .call(app, "GET", "/api/users", None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            bob.call(app, "POST", "/api/roles", Some(json!({"name": "editor"})))
                .await
                .status,
            StatusCode::FORBIDDEN
        );

        let r = admin.call(app, "GET", "/api/users", None).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.data().as_array().unwrap().len(), 2);

        // Roles: create, assign, see on the user's next request, delete.
        let r = admin
            .call(
                app,
                "POST",
                "/api/roles",
                Some(json!({"name": "editor", "description": "edits"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        assert_eq!(
            admin
                .call(app, "POST", "/api/roles", Some(json!({"name": "editor"})))
                .await
                .status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            admin
                .call(app, "POST", "/api/roles", Some(json!({"name": "Bad Name"})))
                .await
                .status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            admin
                .call(app, "POST", "/api/roles", Some(json!({"name": ADMIN})))
                .await
                .status,
            StatusCode::CONFLICT
        );
        let r = admin.call(app, "GET", "/api/roles", None).await;
        let names: Vec<_> = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, [ADMIN, AUTHENTICATED, PUBLIC, "editor"]);
        let r = admin
            .call(
                app,
                "PUT",
                &format!("/api/users/{bob_id}/roles"),
                Some(json!({"roles": [AUTHENTICATED, "editor"]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(r.data()["roles"], json!([AUTHENTICATED, "editor"]));
        let r = bob.call(app, "GET", "/api/auth/me", None).await;
        assert_eq!(
            r.data()["roles"],
            json!([AUTHENTICATED, "editor"]),
            "{name}"
        );
        let r = admin
            .call(
                app,
                "PUT",
                &format!("/api/users/{bob_id}/roles"),
                Some(json!({"roles": ["ghost"]})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: unknown roles"
        );
        assert_eq!(
            admin
                .call(app, "DELETE", "/api/roles/editor", None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            admin
                .call(app, "DELETE", "/api/roles/editor", None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            admin
                .call(app, "DELETE", "/api/roles/admin", None)
                .await
                .status,
            StatusCode::CONFLICT
        );
        let r = bob.call(app, "GET", "/api/auth/me", None).await;
        assert_eq!(
            r.data()["roles"],
            json!([AUTHENTICATED]),
            "{name}: deleting a role unassigns it"
        );

        // The last admin cannot be demoted, suspended or deleted.
        let r = admin
            .call(
                app,
                "PUT",
                &format!("/api/users/{admin_id}/roles"),
                Some(json!({"roles": [AUTHENTICATED]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{name}");
        let r = admin
            .call(
                app,
                "PATCH",
                &format!("/api/users/{admin_id}"),
                Some(json!({"status": "suspended"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{name}");
        assert_eq!(
            admin
                .call(app, "DELETE", &format!("/api/users/{admin_id}"), None)
                .await
                .status,
            StatusCode::CONFLICT
        );

        // Promotion takes effect on the next request; then the first admin may step down.
        admin
            .call(
                app,
                "PUT",
                &format!("/api/users/{bob_id}/roles"),
                Some(json!({"roles": [ADMIN]})),
            )
            .await;
        assert_eq!(
            bob.call(app, "GET", "/api/users", None).await.status,
            StatusCode::OK,
            "{name}"
        );
        let r = bob
            .call(
                app,
                "PUT",
                &format!("/api/users/{admin_id}/roles"),
                Some(json!({"roles": []})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(
            admin.call(app, "GET", "/api/users", None).await.status,
            StatusCode::FORBIDDEN
        );

        // Suspension ends sessions and keys at once; reactivation lets the user sign in again.
        let r = admin
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "k"})),
            )
            .await;
        let mut admin_key = Client::bearer(r.data()["key"].as_str().unwrap());
        let r = bob
            .call(
                app,
                "PATCH",
                &format!("/api/users/{admin_id}"),
                Some(json!({"status": "suspended", "name": "Former"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(r.data()["status"], "suspended");
        assert_eq!(r.data()["name"], "Former");
        assert_eq!(
            admin.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            admin_key
                .call(app, "GET", "/api/auth/me", None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        let login = json!({"email": "admin@example.com", "password": "correct horse battery"});
        assert_eq!(
            Client::default()
                .call(app, "POST", "/api/auth/login", Some(login.clone()))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        bob.call(
            app,
            "PATCH",
            &format!("/api/users/{admin_id}"),
            Some(json!({"status": "active"})),
        )
        .await;
        assert_eq!(
            Client::default()
                .call(app, "POST", "/api/auth/login", Some(login))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            admin_key
                .call(app, "GET", "/api/auth/me", None)
                .await
                .status,
            StatusCode::OK,
            "{name}: the key lives on"
        );

        // Delete; unknown ids.
        assert_eq!(
            bob.call(app, "DELETE", &format!("/api/users/{admin_id}"), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            admin_key
                .call(app, "GET", "/api/auth/me", None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            bob.call(app, "GET", &format!("/api/users/{admin_id}"), None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            bob.call(app, "GET", "/api/users/not-a-uuid", None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        t.close().await;
    }
}

#[tokio::test]
async fn invitations_verification_and_reset() {
    for t in dbs().await {
        let name = t.name();
        let cfg = AuthConfig {
            link_base: "https://app.example.com/".into(),
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
            .call(app, "POST", "/api/roles", Some(json!({"name": "editor"})))
            .await;

        // Invite: an invited user without a password; the link goes by email.
        let r = admin
            .call(
                app,
                "POST",
                "/api/auth/invite",
                Some(json!({"email": "Cleo@example.com", "role": "editor"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{name}: {:?}", r.body);
        assert_eq!(r.data()["status"], "invited");
        // The invited member is among the tenant's users.
        let r = admin.call(app, "GET", "/api/users", None).await;
        let cleo_id = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == "Cleo@example.com")
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{name}: {:?}", r.body));
        let mail = a.mail.all();
        assert!(
            mail.last()
                .unwrap()
                .text
                .contains("https://app.example.com/accept-invite?token="),
            "{:?}",
            mail.last()
        );
        let token = a.mail.last_token("cleo@example.com");
        // An invited user cannot log in, and only admins invite.
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(json!({"email": "cleo@example.com", "password": "anything at all"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let mut bob = Client::default();
        bob.call(
            app,
            "POST",
            "/api/auth/signup",
            Some(signup_body("bob@example.com")),
        )
        .await;
        assert_eq!(
            bob.call(
                app,
                "POST",
                "/api/auth/invite",
                Some(json!({"email": "x@example.com"}))
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        // An address that has an account: the same answer as any other, and nothing is sent.
        let before = a.mail.count("bob@example.com");
        let r = admin
            .call(
                app,
                "POST",
                "/api/auth/invite",
                Some(json!({"email": "bob@example.com"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{name}: {:?}", r.body);
        assert_eq!(r.data()["status"], "invited", "{name}");
        assert_eq!(a.mail.count("bob@example.com"), before, "{name}");
        assert_eq!(
            admin
                .call(
                    app,
                    "POST",
                    "/api/auth/invite",
                    Some(json!({"email": "y@example.com", "role": "ghost"}))
                )
                .await
                .status,
            StatusCode::UNPROCESSABLE_ENTITY
        );

        // An admin cannot activate an invitation by decree, but may rename it.
        let r = admin
            .call(
                app,
                "PATCH",
                &format!("/api/users/{cleo_id}"),
                Some(json!({"status": "active", "name": "Cleo P."})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(r.data()["status"], "invited", "{name}");
        assert_eq!(r.data()["name"], "Cleo P.", "{name}");
        // Accept: once.
        let mut cleo = Client::default();
        let r = cleo
            .call(
                app,
                "POST",
                "/api/auth/accept-invite",
                Some(json!({"token": token, "password": "cleo's password", "name": "Cleo"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(r.data()["status"], "active");
        assert_eq!(r.data()["emailVerified"], true);
        assert_eq!(r.data()["roles"], json!(["editor"]));
        assert_eq!(
            cleo.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::OK
        );
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/accept-invite",
                Some(json!({"token": token, "password": "another password"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: single use");

        // Email verification.
        let r = bob
            .call(app, "POST", "/api/auth/verify-email/request", None)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{name}: {:?}", r.body);
        let token = a.mail.last_token("bob@example.com");
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/verify-email",
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(r.data()["emailVerified"], true);
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/verify-email",
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            bob.call(app, "POST", "/api/auth/verify-email/request", None)
                .await
                .status,
            StatusCode::CONFLICT
        );

        let r = bob
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "k"})),
            )
            .await;
        let mut bob_key = Client::bearer(r.data()["key"].as_str().unwrap());
        // Password reset: the same answer for unknown emails; the token works once, for its
        // purpose only, and ends every session and API key.
        let before = a.mail.all().len();
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset/request",
                Some(json!({"email": "nobody@example.com"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(a.mail.all().len(), before, "{name}: nothing sent");
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset/request",
                Some(json!({"email": "BOB@example.com"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let token = a.mail.next_token("bob@example.com", 1).await;
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/verify-email",
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{name}: a reset token does not verify"
        );
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset",
                Some(json!({"token": token, "password": "brand new pass"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(
            bob.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        assert_eq!(
            bob_key.call(app, "GET", "/api/auth/me", None).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}: keys end with a reset"
        );
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/password-reset",
                Some(json!({"token": token, "password": "another new pass"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: single use");
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(json!({"email": "bob@example.com", "password": "brand new pass"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        t.close().await;
    }
}

#[tokio::test]
async fn tickets_and_owner_scoped_items() {
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(&t, AuthConfig::default()).await;
        let app = &a.app;
        let mut ann = Client::default();
        ann.call(
            app,
            "POST",
            "/api/auth/signup",
            Some(signup_body("ann@example.com")),
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

        // Tickets.
        let r = bob.call(app, "POST", "/api/realtime/ticket", None).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        let ticket = r.data()["ticket"].as_str().unwrap();
        let s = a.auth.verify_ticket(ticket).unwrap();
        assert_eq!(s.user.as_ref().unwrap().id, bob_id);
        assert!(s.has_role(AUTHENTICATED));
        // A ticket opens one stream: a copy (a log, a proxy, a history) opens nothing.
        assert!(
            a.auth.verify_ticket(ticket).is_err(),
            "{name}: a ticket used twice"
        );
        assert!(a.auth.verify_ticket(&format!("{ticket}x")).is_err());
        assert_eq!(
            Client::default()
                .call(app, "POST", "/api/realtime/ticket", None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );

        // An owner-scoped collection: each user sees only their own items.
        let r = ann
            .call(app, "POST", "/api/collections", Some(json!({"slug": "notes", "ownerScoped": true, "fields": [{"name": "body", "type": "text"}]})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        for (c, body) in [(&mut ann, "ann's"), (&mut bob, "bob's")] {
            let r = c
                .call(app, "POST", "/api/items/notes", Some(json!({"body": body})))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        }
        let r = bob.call(app, "GET", "/api/items/notes", None).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        let bodies: Vec<_> = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["body"].clone())
            .collect();
        assert_eq!(bodies, [json!("bob's")], "{name}");
        // Ann is admin: she sees both.
        let r = ann.call(app, "GET", "/api/items/notes", None).await;
        assert_eq!(r.data().as_array().unwrap().len(), 2, "{name}");
        // Anonymous: nothing.
        let r = Client::default()
            .call(app, "GET", "/api/items/notes", None)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {:?}", r.body);
        t.close().await;
    }
}
