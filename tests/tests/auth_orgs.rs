//! Org mode over HTTP on SQLite and PostgreSQL: signup creates an organization, login finds it by
//! email, and two organizations cannot see each other's users, collections, items, permissions
//! or activity.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::json;
use workeros_auth::AuthConfig;
use workeros_core::roles::{ADMIN, AUTHENTICATED};
use workeros_tests::auth::{Client, auth_app};
use workeros_tests::stores::dbs;

fn org_config() -> AuthConfig {
    AuthConfig {
        org_mode: true,
        ..AuthConfig::default()
    }
}

#[tokio::test]
async fn organizations_are_isolated() {
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(&t, org_config()).await;
        let app = &a.app;

        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(json!({"email": "x@example.com", "password": "long enough"})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: org mode needs a name"
        );

        let mut ann = Client::default();
        let r = ann
            .call(app, "POST", "/api/auth/signup", Some(json!({"email": "ann@acme.test", "password": "ann's password", "organizationName": "Acme"})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        assert_eq!(
            r.data()["roles"],
            json!([ADMIN]),
            "{name}: the founder is its admin"
        );
        let acme = r.data()["tenant"].as_str().unwrap().to_owned();
        let mut bob = Client::default();
        let r = bob
            .call(app, "POST", "/api/auth/signup", Some(json!({"email": "bob@globex.test", "password": "bob's password", "organizationName": "Globex"})))
            .await;
        assert_eq!(
            r.data()["roles"],
            json!([ADMIN]),
            "{name}: every founder is admin of its own"
        );
        let globex = r.data()["tenant"].as_str().unwrap().to_owned();
        let bob_id = r.data()["id"].as_str().unwrap().to_owned();
        assert_ne!(acme, globex);

        // Login finds the organization by email; `me` names it.
        let mut ann2 = Client::default();
        let r = ann2
            .call(
                app,
                "POST",
                "/api/auth/login",
                Some(json!({"email": "ANN@acme.test", "password": "ann's password"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        let r = ann2.call(app, "GET", "/api/auth/me", None).await;
        assert_eq!(
            r.body["organization"]["name"], "Acme",
            "{name}: {:?}",
            r.body
        );
        assert_eq!(r.body["organization"]["id"], acme.as_str());

        // The same slug in both organizations; items, permissions and activity per tenant.
        for (c, body) in [(&mut ann, "acme secret"), (&mut bob, "globex secret")] {
            let r = c
                .call(
                    app,
                    "POST",
                    "/api/collections",
                    Some(json!({"slug": "notes", "fields": [{"name": "body", "type": "text"}]})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
            let r = c
                .call(app, "POST", "/api/items/notes", Some(json!({"body": body})))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
            let r = c
                .call(app, "POST", "/api/permissions", Some(json!({"role": AUTHENTICATED, "collection": "notes", "action": "read", "filter": {}})))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        }
        for (c, own, other) in [
            (&mut ann, "acme secret", "globex secret"),
            (&mut bob, "globex secret", "acme secret"),
        ] {
            let r = c.call(app, "GET", "/api/items/notes", None).await;
            let bodies: Vec<_> = r
                .data()
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["body"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(bodies, [own], "{name}");
            let r = c.call(app, "GET", "/api/collections", None).await;
            assert_eq!(r.data().as_array().unwrap().len(), 1, "{name}");
            let r = c.call(app, "GET", "/api/permissions", None).await;
            assert_eq!(
                r.data().as_array().unwrap().len(),
                1,
                "{name}: {:?}",
                r.body
            );
            let r = c.call(app, "GET", "/api/activity", None).await;
            assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
            let text = r.body.to_string();
            assert!(
                !text.contains(other),
                "{name}: another tenant's activity: {text}"
            );
            let r = c.call(app, "GET", "/api/users", None).await;
            assert_eq!(
                r.data().as_array().unwrap().len(),
                1,
                "{name}: {:?}",
                r.body
            );
        }
        // Another organization's user is not there for an admin.
        assert_eq!(
            ann.call(app, "GET", &format!("/api/users/{bob_id}"), None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ann.call(
                app,
                "PATCH",
                &format!("/api/users/{bob_id}"),
                Some(json!({"status": "suspended"}))
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ann.call(
                app,
                "PUT",
                &format!("/api/users/{bob_id}/roles"),
                Some(json!({"roles": []}))
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ann.call(app, "DELETE", &format!("/api/users/{bob_id}"), None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // Roles are per organization.
        ann.call(app, "POST", "/api/roles", Some(json!({"name": "editor"})))
            .await;
        let r = bob.call(app, "GET", "/api/roles", None).await;
        assert_eq!(
            r.data().as_array().unwrap().len(),
            3,
            "{name}: only the built-in ones"
        );
        assert_eq!(
            bob.call(app, "DELETE", "/api/roles/editor", None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        // An invitation joins the inviter's organization.
        let r = ann
            .call(
                app,
                "POST",
                "/api/auth/invite",
                Some(json!({"email": "cleo@acme.test", "role": "editor"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{name}: {:?}", r.body);
        assert!(a.mail.all().last().unwrap().subject.contains("Acme"));
        let token = a.mail.last_token("cleo@acme.test");
        let mut cleo = Client::default();
        let r = cleo
            .call(
                app,
                "POST",
                "/api/auth/accept-invite",
                Some(json!({"token": token, "password": "cleo's password"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
        assert_eq!(r.data()["tenant"], acme.as_str());
        let r = cleo.call(app, "GET", "/api/items/notes", None).await;
        let bodies: Vec<_> = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["body"].clone())
            .collect();
        assert_eq!(bodies, [json!("acme secret")], "{name}: {:?}", r.body);
        // Emails are unique across organizations, and inviting does not tell which exist: an
        // address with an account elsewhere gets the answer any address gets, and no email.
        let sent = a.mail.count("cleo@acme.test");
        let fresh = bob
            .call(
                app,
                "POST",
                "/api/auth/invite",
                Some(json!({"email": "nobody@acme.test"})),
            )
            .await;
        let r = bob
            .call(
                app,
                "POST",
                "/api/auth/invite",
                Some(json!({"email": "Cleo@acme.test"})),
            )
            .await;
        assert_eq!(r.status, fresh.status, "{name}");
        assert_eq!(r.status, StatusCode::ACCEPTED, "{name}");
        let shape = |v: &serde_json::Value| {
            let mut keys: Vec<String> = v["data"].as_object().unwrap().keys().cloned().collect();
            keys.sort();
            (keys, v["data"]["status"].clone(), v["data"]["role"].clone())
        };
        assert_eq!(shape(&r.body), shape(&fresh.body), "{name}");
        assert_eq!(a.mail.count("cleo@acme.test"), sent, "{name}");
        let r = cleo.call(app, "GET", "/api/auth/me", None).await;
        assert_eq!(
            r.data()["tenant"],
            acme.as_str(),
            "{name}: cleo stays where she is"
        );

        // An invitation does not hold an address: its owner signs up all the same (the
        // invitation ends), and the stranger's link no longer works.
        let r = ann
            .call(
                app,
                "POST",
                "/api/auth/invite",
                Some(json!({"email": "dora@else.test"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{name}: {:?}", r.body);
        let squatted = a.mail.last_token("dora@else.test");
        let mut dora = Client::default();
        let r = dora
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(
                    json!({"email": "dora@else.test", "password": "dora's own password",
                            "organizationName": "Dora's"}),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
        assert_ne!(r.data()["tenant"], acme.as_str(), "{name}");
        let r = Client::default()
            .call(
                app,
                "POST",
                "/api/auth/accept-invite",
                Some(json!({"token": squatted, "password": "the inviter's choice"})),
            )
            .await;
        assert!(r.status.is_client_error(), "{name}: {:?}", r.body);
        t.close().await;
    }
}

/// `OrgCreation::Host`: signing up creates nothing (403, saying how to join); the host creates
/// an organization and invites its first admin, who joins it by the link.
#[tokio::test]
async fn the_host_may_keep_organization_creation_to_itself() {
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(
            &t,
            AuthConfig {
                organizations: workeros_auth::OrgCreation::Host,
                ..org_config()
            },
        )
        .await;
        let app = &a.app;
        let r = Client::default()
            .call(app, "POST", "/api/auth/signup", Some(json!({"email": "eve@evil.test", "password": "eve's password", "organizationName": "Mine"})))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {:?}", r.body);
        assert!(
            r.body.to_string().contains("invitation"),
            "{name}: the answer says how to join: {:?}",
            r.body
        );

        let org = a.auth.create_organization("Initech").await.unwrap();
        let ops = workeros_core::Subject::user(workeros_core::User::new("ops").with_roles([ADMIN]))
            .with_tenant(&org.id);
        a.auth
            .invite_member(&ops, "peter@initech.test", None, Some(ADMIN))
            .await
            .unwrap();
        let token = a.mail.last_token("peter@initech.test");
        let mut peter = Client::default();
        let r = peter
            .call(
                app,
                "POST",
                "/api/auth/accept-invite",
                Some(json!({"token": token, "password": "peter's password"})),
            )
            .await;
        assert!(r.status.is_success(), "{name}: {:?}", r.body);
        let r = peter.call(app, "GET", "/api/auth/me", None).await;
        assert_eq!(r.data()["tenant"], json!(org.id), "{name}");
        assert_eq!(r.data()["roles"], json!([ADMIN]), "{name}");

        // Outside org mode there is nothing to create.
        let single = workeros_auth::Auth::new(t.db.clone(), AuthConfig::default()).unwrap();
        assert!(single.create_organization("Nope").await.is_err(), "{name}");
        t.close().await;
    }
}
