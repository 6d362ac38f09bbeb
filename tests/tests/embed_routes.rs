//! workeros inside a host's own app: its routers nested under `/cms` next to host routes named
//! `/api/users` and `/api/roles`, its auth layer wrapping the nested router or the whole app, a
//! host's own JWTs as subjects (without workeros-auth, and passed on by workeros-auth), and the
//! plain credential API a host on another framework calls. On SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::Router;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request, StatusCode, header};

use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use workeros_auth::http::AuthLayer;
use workeros_auth::{Auth, AuthConfig, AuthError, Signup};
use workeros_core::{Subject, User};
use workeros_store::Store;
use workeros_store::http::IdentifyLayer;
use workeros_tests::auth::Mailbox;
use workeros_tests::mount::host_routes;
use workeros_tests::stores::{TestDb, dbs};

const SECRET: &[u8] = b"the host's own signing secret";
const BOOTSTRAP: &str = "bootstrap-token-of-the-embed-routes-test";

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    roles: Vec<String>,
    exp: u64,
}

/// A token the host's own auth issues.
fn jwt(sub: &str, roles: &[&str], secret: &[u8]) -> String {
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let claims = Claims {
        sub: sub.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        exp: u64::try_from(exp).unwrap(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// The host's resolver: an HS256 JWT in `Authorization: Bearer` is its user; anything that is
/// not a JWT is not its business; a JWT that does not verify is refused with the host's 401.
fn host_jwt(parts: &Parts) -> Result<Option<Subject>, (StatusCode, axum::Json<Value>)> {
    let Some(token) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| t.split('.').count() == 3)
    else {
        return Ok(None);
    };
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(SECRET),
        &Validation::new(Algorithm::HS256),
    )
    .map_err(|_| {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"host": "bad token"})),
        )
    })?;
    Ok(Some(Subject::user(
        User::new(data.claims.sub).with_roles(data.claims.roles),
    )))
}

/// Sends a request with the given headers; the status, headers and JSON body.
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, v)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn auth_of(t: &TestDb, config: AuthConfig) -> (Auth, Store, Arc<Mailbox>) {
    workeros_store::migrate(&t.db).await.unwrap();
    workeros_auth::migrate(&t.db).await.unwrap();
    let mail = Arc::new(Mailbox::default());
    let auth = Auth::with_email_sender(t.db.clone(), config, mail.clone()).unwrap();
    let store = Store::with_cache_ttl(t.db.clone(), std::time::Duration::ZERO);
    (auth, store, mail)
}

fn workeros(auth: &Auth, store: &Store) -> Router {
    Router::new()
        .merge(workeros_store::http::router(store.clone()))
        .merge(workeros_auth::http::router(auth.clone()))
}

/// An owner-scoped `posts` collection, created by `admin` (headers) under `/cms`.
async fn posts(app: &Router, admin: &[(&str, &str)]) {
    let (s, _, v) = send(
        app,
        "POST",
        "/cms/api/collections",
        admin,
        Some(json!({"slug": "posts", "ownerScoped": true,
                    "fields": [{"name": "title", "type": "text"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn nested_routers_sit_beside_host_routes_of_the_same_name() {
    for t in dbs().await {
        let name = t.name();
        let config = AuthConfig {
            bootstrap_token: Some(BOOTSTRAP.into()),
            link_base: "https://shop.example/cms/".into(),
            ..AuthConfig::default()
        };
        let (auth, store, mail) = auth_of(&t, config).await;
        auth.signup(&Signup {
            email: "ann@example.com".into(),
            password: "correct horse battery".into(),
            name: None,
            organization_name: None,
        })
        .await
        .unwrap();
        // The auth layer around the nested router (it sees `/api/…`), or around the host's
        // whole app (it sees `/cms/api/…`): the same behaviour.
        let inside = Router::new()
            .nest(
                "/cms",
                workeros(&auth, &store).layer(AuthLayer::new(auth.clone())),
            )
            .merge(host_routes());
        let outside = Router::new()
            .nest("/cms", workeros(&auth, &store))
            .merge(host_routes())
            .layer(AuthLayer::new(auth.clone()));
        let boot = bearer(BOOTSTRAP);
        let admin = [("authorization", boot.as_str())];
        for (layout, app) in [("inside", &inside), ("outside", &outside)] {
            let at = format!("{name}, layer {layout}");
            // The host's routes answer at their names, workeros's under the prefix.
            for (path, who) in [("/api/users", "users"), ("/api/roles", "roles")] {
                let (s, _, v) = send(app, "GET", path, &[], None).await;
                assert_eq!((s, &v["host"]), (StatusCode::OK, &json!(who)), "{at}");
            }
            let (s, _, v) = send(app, "GET", "/cms/api/users", &admin, None).await;
            assert_eq!(s, StatusCode::OK, "{at}: {v}");
            assert_eq!(v["data"][0]["email"], "ann@example.com", "{at}");
            let (s, _, _) = send(app, "GET", "/cms/api/users", &[], None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{at}: anonymous");

            // A stale cookie does not lock the browser out of signing in under the prefix…
            let stale = "__Host-workeros_session=stale-token";
            let (s, h, v) = send(
                app,
                "POST",
                "/cms/api/auth/login",
                &[("cookie", stale)],
                Some(json!({"email": "ann@example.com", "password": "correct horse battery"})),
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{at}: {v}");
            let cookie = h[header::SET_COOKIE].to_str().unwrap();
            assert!(
                cookie.starts_with("__Host-workeros_session=") && !cookie.contains("Max-Age=0"),
                "{at}: a new session, {cookie}"
            );
            // …but is refused elsewhere, and cleared.
            let (s, h, _) = send(
                app,
                "GET",
                "/cms/api/collections",
                &[("cookie", stale)],
                None,
            )
            .await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{at}");
            assert!(
                h[header::SET_COOKIE]
                    .to_str()
                    .unwrap()
                    .contains("Max-Age=0"),
                "{at}"
            );
        }

        // Links in emails carry the base path the host configured.
        let before = mail.count("ann@example.com");
        let (s, _, _) = send(
            &inside,
            "POST",
            "/cms/api/auth/password-reset/request",
            &[],
            Some(json!({"email": "ann@example.com"})),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{name}");
        let token = mail.next_token("ann@example.com", before).await;
        let text = mail.all().last().unwrap().text.clone();
        assert!(
            text.contains(&format!(
                "https://shop.example/cms/reset-password?token={token}"
            )),
            "{name}: {text}"
        );
        let (s, _, v) = send(
            &inside,
            "POST",
            "/cms/api/auth/password-reset",
            &[],
            Some(json!({"token": token, "password": "a brand new passphrase"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        t.close().await;
    }
}

#[tokio::test]
async fn a_host_jwt_is_a_subject_and_owner_scoping_holds_for_it() {
    for t in dbs().await {
        let name = t.name();
        workeros_store::migrate(&t.db).await.unwrap();
        let store = Store::new(t.db.clone());
        // No workeros-auth: the host's own JWTs are the only identity.
        let app = Router::new()
            .nest("/cms", workeros_store::http::router(store))
            .merge(host_routes())
            .layer(IdentifyLayer::new(host_jwt));
        let (root, alice, bob) = (
            bearer(&jwt("root", &["admin"], SECRET)),
            bearer(&jwt("alice", &["authenticated"], SECRET)),
            bearer(&jwt("bob", &["authenticated"], SECRET)),
        );
        let [root, alice, bob] = [&root, &alice, &bob].map(|b| [("authorization", b.as_str())]);
        posts(&app, &root).await;

        let (s, _, v) = send(
            &app,
            "POST",
            "/cms/api/items/posts",
            &alice,
            Some(json!({"title": "alice's"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let id = v["data"]["id"].to_string();
        let id = id.trim_matches('"');
        assert_eq!(
            v["data"]["ownerId"], "alice",
            "{name}: owned by the JWT's subject"
        );

        let (s, _, v) = send(&app, "GET", "/cms/api/items/posts", &alice, None).await;
        assert_eq!(s, StatusCode::OK, "{name}");
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{name}: {v}");
        let (s, _, v) = send(&app, "GET", "/cms/api/items/posts", &bob, None).await;
        assert_eq!(s, StatusCode::OK, "{name}");
        assert_eq!(v["data"], json!([]), "{name}: bob sees none of alice's");
        let item = format!("/cms/api/items/posts/{id}");
        let (s, _, _) = send(&app, "GET", &item, &bob, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        let (s, _, _) = send(
            &app,
            "PATCH",
            &item,
            &bob,
            Some(json!({"title": "bob's now"})),
        )
        .await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
            "{name}: {s}"
        );
        let (s, _, v) = send(&app, "GET", &item, &alice, None).await;
        assert_eq!(
            (s, &v["data"]["title"]),
            (StatusCode::OK, &json!("alice's"))
        );

        // A JWT signed with another key is refused by the host's own answer; none is anonymous.
        let forged = bearer(&jwt("root", &["admin"], b"not the host's secret"));
        let (s, _, v) = send(
            &app,
            "GET",
            "/cms/api/items/posts",
            &[("authorization", forged.as_str())],
            None,
        )
        .await;
        assert_eq!(
            (s, &v["host"]),
            (StatusCode::UNAUTHORIZED, &json!("bad token"))
        );
        let (s, _, _) = send(&app, "GET", "/cms/api/collections", &[], None).await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "{name}: no credential is the anonymous subject, not an admin"
        );
        let (s, _, _) = send(&app, "POST", "/cms/api/items/posts", &[], Some(json!({}))).await;
        assert!(s.is_client_error(), "{name}: anonymous cannot write: {s}");
        t.close().await;
    }
}

#[tokio::test]
async fn workeros_auth_passes_credentials_it_did_not_issue_to_the_host() {
    for t in dbs().await {
        let name = t.name();
        let config = AuthConfig {
            bootstrap_token: Some(BOOTSTRAP.into()),
            ..AuthConfig::default()
        };
        let (auth, store, _) = auth_of(&t, config).await;
        let (ann, session) = auth
            .signup(&Signup {
                email: "ann@example.com".into(),
                password: "correct horse battery".into(),
                name: None,
                organization_name: None,
            })
            .await
            .unwrap();
        let subject = auth.authenticate_session(&session.token).await.unwrap();
        let key = auth.create_api_key(&subject, "ci", None).await.unwrap().key;
        let with = |fallback: bool| {
            let layer = AuthLayer::new(auth.clone());
            let layer = if fallback {
                layer.with_fallback(host_jwt)
            } else {
                layer
            };
            Router::new()
                .nest("/cms", workeros(&auth, &store))
                .merge(host_routes())
                .layer(layer)
        };
        let app = with(true);
        let boot = bearer(BOOTSTRAP);
        posts(&app, &[("authorization", boot.as_str())]).await;

        // The host's JWT reaches the host's resolver and is its subject.
        let alice = bearer(&jwt("alice", &["authenticated"], SECRET));
        let (s, _, v) = send(
            &app,
            "POST",
            "/cms/api/items/posts",
            &[("authorization", alice.as_str())],
            Some(json!({"title": "alice's"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["data"]["ownerId"], "alice", "{name}");
        // workeros's own credentials are still workeros's: a session, an API key.
        let cookie = format!("__Host-workeros_session={}", session.token);
        let (s, _, v) = send(
            &app,
            "GET",
            "/cms/api/auth/me",
            &[("cookie", &cookie)],
            None,
        )
        .await;
        assert_eq!(
            (s, &v["data"]["id"]),
            (StatusCode::OK, &json!(ann.id)),
            "{name}"
        );
        let k = bearer(&key);
        let (s, _, v) = send(
            &app,
            "GET",
            "/cms/api/auth/me",
            &[("authorization", &k)],
            None,
        )
        .await;
        assert_eq!(
            (s, &v["data"]["id"]),
            (StatusCode::OK, &json!(ann.id)),
            "{name}"
        );
        // An invalid workeros key is refused, never handed to the host; so is a bearer nobody
        // recognises, and a forged JWT gets the host's own refusal.
        let forged = bearer(&jwt("root", &["admin"], b"not the host's secret"));
        for (authz, host) in [
            ("Bearer pak_invalid", Value::Null),
            ("Bearer neither-a-key-nor-a-jwt", Value::Null),
            ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", Value::Null),
            (forged.as_str(), json!("bad token")),
        ] {
            let (s, _, v) = send(
                &app,
                "GET",
                "/cms/api/collections",
                &[("authorization", authz)],
                None,
            )
            .await;
            assert_eq!(
                (s, &v["host"]),
                (StatusCode::UNAUTHORIZED, &host),
                "{name}: {authz}"
            );
        }
        // Without the fallback the host's JWT is refused: the pass-on is configuration.
        let (s, _, _) = send(
            &with(false),
            "GET",
            "/cms/api/collections",
            &[("authorization", alice.as_str())],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{name}");

        // The same decisions from raw header values, for hosts that are not axum.
        let got = auth
            .authenticate_headers([cookie.as_str()], None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.user.unwrap().id, ann.id, "{name}");
        let got = auth
            .authenticate_headers(["theme=dark"], Some(&k))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.user.unwrap().id, ann.id, "{name}");
        assert!(
            auth.authenticate_headers(None::<&str>, Some(&alice))
                .await
                .unwrap()
                .is_none(),
            "{name}: not ours"
        );
        assert!(matches!(
            auth.authenticate_headers(None::<&str>, Some("Bearer pak_invalid"))
                .await,
            Err(AuthError::Unauthorized)
        ));
        assert!(matches!(
            auth.authenticate_headers(["__Host-workeros_session=stale"], Some(&k))
                .await,
            Err(AuthError::Unauthorized)
        ));
        t.close().await;
    }
}
