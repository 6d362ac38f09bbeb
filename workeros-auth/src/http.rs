//! HTTP: the auth layer that turns credentials into a [`Subject`] request extension, and the
//! routes.
//!
//! ```no_run
//! use axum::Router;
//! use workeros_auth::{Auth, AuthConfig, http::{AuthLayer, router}};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let db = workeros_store::Db::connect("sqlite://app.db?mode=rwc").await?;
//! workeros_store::migrate(&db).await?;
//! workeros_auth::migrate(&db).await?;
//! let store = workeros_store::Store::new(db.clone());
//! let auth = Auth::new(db, AuthConfig::default())?;
//! let app: Router = Router::new()
//!     .merge(workeros_store::http::router(store))
//!     .merge(router(auth.clone()))
//!     .layer(AuthLayer::new(auth));
//! # Ok(()) }
//! ```
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /api/auth/signup` | anyone (if open) | `{email, password, name?, organizationName?}` → 201, session cookie |
//! | `POST /api/auth/login` | anyone | `{email, password}` → 200, a new session cookie; 429 when limited |
//! | `POST /api/auth/logout` | anyone | ends the cookie's session; 204 |
//! | `GET /api/auth/me` | signed in | the user, its roles and organization |
//! | `POST /api/auth/password` | signed in | `{currentPassword, newPassword}`: ends every session and API key, new cookie |
//! | `GET, POST /api/auth/api-keys` | signed in | list; `{name, expiresAt?}` → 201 with the key, shown once |
//! | `DELETE /api/auth/api-keys/{id}` | signed in | revoke |
//! | `POST /api/auth/invite` | admin | `{email, name?, role?}` → 202 `{email, role, status, expiresAt}`, the same whether or not the address has an account (one that has gets nothing); the token goes by email |
//! | `POST /api/auth/accept-invite` | anyone with the token | `{token, password, name?}` → 200, session cookie |
//! | `POST /api/auth/verify-email/request` | signed in | emails a verification link; 202 |
//! | `POST /api/auth/verify-email` | anyone with the token | `{token}` |
//! | `POST /api/auth/password-reset/request` | anyone | `{email}` → 202 whatever the email |
//! | `POST /api/auth/password-reset` | anyone with the token | `{token, password}`: ends every session |
//! | `GET /api/users`, `GET, PATCH, DELETE /api/users/{id}` | admin | users of the tenant; `{name?, status?}` |
//! | `PUT /api/users/{id}/roles` | admin | `{roles: [...]}` replaces the local roles |
//! | `GET, POST /api/roles`, `DELETE /api/roles/{name}` | admin | roles of the tenant; `{name, description?}` |
//! | `POST /api/realtime/ticket` | signed in | `{ticket, expiresAt}`, valid 60 s |
//!
//! [`router`] is [`account_router`] (`/api/auth/*` and the realtime ticket) merged with
//! [`admin_router`] (`/api/users`, `/api/roles`): a host with routes of its own under those
//! names mounts only the first, or nests both under a prefix. Every router nests anywhere
//! (`Router::new().nest("/cms", router(auth))`); the layer compares paths by their end, so it can
//! wrap the nested router or the host's whole app.
//!
//! Beside a host's own authentication, [`AuthLayer::with_fallback`] passes every credential
//! workeros did not issue to the host's [`Identify`] resolver; a host without workeros-auth puts
//! [`workeros_store::http::IdentifyLayer`] in its place.

use crate::credentials::{bearer_of, session_token};
use crate::{ApiKeyInfo, Auth, AuthError, Signup, UserPatch};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use time::OffsetDateTime;
use workeros_core::Subject;
use workeros_store::http::{Body, BoxFuture, Caller, Identifier, Identify};

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, Json(self.body())).into_response();
        match &self {
            Self::RateLimited { retry_after_secs } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Self::Unauthorized => {
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        res
    }
}

// ---- the layer ----

/// The tower layer that authenticates every request and sets its [`Subject`] extension: the
/// session cookie first, then `Authorization: Bearer` (an API key, or the bootstrap token); no
/// credentials is anonymous. Credentials that are presented but invalid are 401, except that an
/// invalid session cookie on the routes that sign in (`login`, `signup`, `logout`,
/// `accept-invite`, `password-reset`, wherever the router is nested) is ignored and cleared, so a
/// stale cookie never locks a browser out.
///
/// Beside a host's own authentication, [`with_fallback`](Self::with_fallback) hands every request
/// that carries no credential workeros issues (a bearer that is not an API key, another scheme, or
/// none) to the host's [`Identify`] resolver instead of refusing it.
///
/// It also sets a [`ClientAddr`] extension (the connection's address, or the last
/// `X-Forwarded-For` entry when [`AuthConfig::trust_forwarded_for`](crate::AuthConfig) is on).
#[derive(Clone)]
pub struct AuthLayer {
    auth: Auth,
    fallback: Option<Identifier>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("auth", &self.auth)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl AuthLayer {
    /// A layer authenticating with `auth`; any other credential is refused (401).
    pub fn new(auth: Auth) -> Self {
        Self {
            auth,
            fallback: None,
        }
    }

    /// Passes requests without a workeros credential on to the host's resolver: its subject is
    /// the request's; `Ok(None)` is anonymous, except that a bearer nobody recognises stays 401.
    ///
    /// ```
    /// use axum::http::request::Parts;
    /// use axum::response::Response;
    /// use workeros_core::Subject;
    ///
    /// fn host_jwt(parts: &Parts) -> Result<Option<Subject>, Response> {
    ///     // verify the host's own token here
    ///     # let _ = parts;
    ///     Ok(None)
    /// }
    /// fn layer(auth: workeros_auth::Auth) -> workeros_auth::http::AuthLayer {
    ///     workeros_auth::http::AuthLayer::new(auth).with_fallback(host_jwt)
    /// }
    /// ```
    pub fn with_fallback(mut self, identify: impl Identify) -> Self {
        self.fallback = Some(Arc::new(identify));
        self
    }

    /// [`with_fallback`](Self::with_fallback) with a resolver shared with other layers.
    pub fn with_shared_fallback(mut self, identify: Identifier) -> Self {
        self.fallback = Some(identify);
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            auth: self.auth.clone(),
            fallback: self.fallback.clone(),
            inner,
        }
    }
}

/// The service [`AuthLayer`] wraps around the host's.
#[derive(Clone)]
pub struct AuthService<S> {
    auth: Auth,
    fallback: Option<Identifier>,
    inner: S,
}

impl<S: std::fmt::Debug> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The client's address, as [`AuthLayer`] determined it (the type is `workeros-core`'s, so that
/// other crates' routes read the same extension).
pub use workeros_core::ClientAddr;

impl<S> tower::Service<Request> for AuthService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        let fallback = self.fallback.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let addr = client_addr(
                &auth,
                &parts.headers,
                parts.extensions.get::<ConnectInfo<SocketAddr>>(),
            );
            parts.extensions.insert(ClientAddr(addr));
            let mut clear_cookie = false;
            let subject = match authenticate(&auth, fallback.as_deref(), &parts).await {
                Ok(s) => s,
                Err(Presented::Cookie(_)) if signs_in(parts.uri.path()) => {
                    clear_cookie = true;
                    Subject::anonymous()
                }
                Err(Presented::Cookie(e)) => {
                    let mut res = e.into_response();
                    set_cookie(&mut res, &clear(&auth));
                    return Ok(res);
                }
                Err(Presented::Bearer(e)) => return Ok(e.into_response()),
                Err(Presented::Host(res)) => return Ok(res),
            };
            parts.extensions.insert(subject);
            let mut res = inner.call(Request::from_parts(parts, body)).await?;
            if clear_cookie && !res.headers().contains_key(header::SET_COOKIE) {
                set_cookie(&mut res, &clear(&auth));
            }
            Ok(res)
        })
    }
}

/// Which presented credential failed.
enum Presented {
    Cookie(AuthError),
    Bearer(AuthError),
    /// The host's resolver refused the request with this response.
    Host(Response),
}

/// The routes that sign in or out, where an invalid cookie is ignored.
const SIGNS_IN: [&str; 6] = [
    "/api/auth/login",
    "/api/auth/signup",
    "/api/auth/logout",
    "/api/auth/accept-invite",
    "/api/auth/password-reset",
    "/api/auth/password-reset/request",
];

/// Whether `path` is a route that signs in or out. Compared by suffix, so the exemption holds
/// whether the layer wraps the nested router (which sees `/api/auth/login`) or the host's whole
/// app (which sees `/cms/api/auth/login`).
fn signs_in(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    // Each route starts with `/`, so a suffix match is on a segment boundary.
    SIGNS_IN.iter().any(|r| path.ends_with(r))
}

/// The session token of the request's cookie, if it has one.
fn session_cookie<'h>(auth: &Auth, headers: &'h HeaderMap) -> Option<&'h str> {
    session_token(
        auth.cookie_name(),
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

async fn authenticate(
    auth: &Auth,
    fallback: Option<&dyn Identify>,
    parts: &Parts,
) -> Result<Subject, Presented> {
    if let Some(token) = session_cookie(auth, &parts.headers) {
        return auth
            .authenticate_session(token)
            .await
            .map_err(Presented::Cookie);
    }
    let authorization = parts.headers.get(header::AUTHORIZATION);
    let bearer = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_of);
    if let Some(b) = bearer.filter(|b| fallback.is_none() || auth.recognises_bearer(b)) {
        return auth.authenticate_bearer(b).await.map_err(Presented::Bearer);
    }
    let host = match fallback {
        Some(identify) => identify.identify(parts).await.map_err(Presented::Host)?,
        None => None,
    };
    match (host, authorization) {
        (Some(subject), _) => Ok(subject),
        (None, None) => Ok(Subject::anonymous()),
        // An `Authorization` nobody recognises is refused, never anonymous.
        (None, Some(_)) => Err(Presented::Bearer(AuthError::Unauthorized)),
    }
}

fn client_addr(
    auth: &Auth,
    headers: &HeaderMap,
    connect: Option<&ConnectInfo<SocketAddr>>,
) -> Option<IpAddr> {
    if auth.config().trust_forwarded_for {
        // The entry the trusted proxy appended: the last one. Earlier entries are the client's
        // to choose, so an unparsable last entry does not fall back to them.
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    connect.map(|ConnectInfo(a)| a.ip())
}

// ---- cookies ----

fn session_cookie_for(auth: &Auth, token: &str, until: OffsetDateTime) -> String {
    let cfg = auth.config();
    let secs = (until - workeros_store::values::now())
        .whole_seconds()
        .max(0);
    Cookie::build((auth.cookie_name().to_owned(), token.to_owned()))
        .http_only(true)
        .secure(cfg.secure_cookies)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::seconds(secs))
        .build()
        .to_string()
}

fn clear(auth: &Auth) -> String {
    let cfg = auth.config();
    Cookie::build((auth.cookie_name().to_owned(), ""))
        .http_only(true)
        .secure(cfg.secure_cookies)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

fn set_cookie(res: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn with_session(
    auth: &Auth,
    status: StatusCode,
    body: serde_json::Value,
    s: &crate::NewSession,
) -> Response {
    let mut res = secret(status, body);
    set_cookie(
        &mut res,
        &session_cookie_for(auth, &s.token, s.max_expires_at),
    );
    res
}

/// A JSON response that carries a secret (a session, a key, a ticket): never cached.
fn secret(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = (status, Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

// ---- routes ----

/// Every auth route (see the [module](self) table): [`account_router`] and [`admin_router`].
/// Mount it beside the store's and wrap the whole app in [`AuthLayer`]. It nests anywhere
/// (`Router::new().nest("/cms", router(auth))`).
pub fn router<S: Clone + Send + Sync + 'static>(auth: Auth) -> Router<S> {
    account_router(auth.clone()).merge(admin_router(auth))
}

/// The routes of one's own account: sign-up, sign-in and out, `me`, password, API keys,
/// invitations, email verification, password reset (`/api/auth/*`) and realtime tickets
/// (`/api/realtime/ticket`).
pub fn account_router<S: Clone + Send + Sync + 'static>(auth: Auth) -> Router<S> {
    Router::new()
        .route("/api/auth/signup", post(signup))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .route("/api/auth/password", post(change_password))
        .route("/api/auth/api-keys", get(list_keys).post(create_key))
        .route("/api/auth/api-keys/{id}", delete(revoke_key))
        .route("/api/auth/invite", post(invite))
        .route("/api/auth/accept-invite", post(accept_invite))
        .route("/api/auth/verify-email/request", post(request_verification))
        .route("/api/auth/verify-email", post(verify_email))
        .route("/api/auth/password-reset/request", post(request_reset))
        .route("/api/auth/password-reset", post(reset_password))
        .route("/api/realtime/ticket", post(ticket))
        .with_state(auth)
}

/// The administration of users and roles (`/api/users`, `/api/roles`). A host with its own
/// `/api/users` leaves it out, or nests it under a prefix of its own.
pub fn admin_router<S: Clone + Send + Sync + 'static>(auth: Auth) -> Router<S> {
    Router::new()
        .route("/api/users", get(list_users))
        .route(
            "/api/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/api/users/{id}/roles", put(set_roles))
        .route("/api/roles", get(list_roles).post(create_role))
        .route("/api/roles/{name}", delete(delete_role))
        .with_state(auth)
}

fn addr(ext: Option<Extension<ClientAddr>>) -> Option<IpAddr> {
    ext.and_then(|Extension(ClientAddr(a))| a)
}

fn signed_in(s: &Subject) -> Result<(), AuthError> {
    if s.is_anonymous() {
        Err(AuthError::Unauthorized)
    } else {
        Ok(())
    }
}

async fn signup(
    State(auth): State<Auth>,
    client: Option<Extension<ClientAddr>>,
    Body(input): Body<Signup>,
) -> Result<Response, AuthError> {
    let (user, session) = auth.signup_from(&input, addr(client)).await?;
    Ok(with_session(
        &auth,
        StatusCode::CREATED,
        json!({ "data": user }),
        &session,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

async fn login(
    State(auth): State<Auth>,
    client: Option<Extension<ClientAddr>>,
    Body(input): Body<Login>,
) -> Result<Response, AuthError> {
    let (user, session) = auth
        .login(&input.email, &input.password, addr(client))
        .await?;
    Ok(with_session(
        &auth,
        StatusCode::OK,
        json!({ "data": user }),
        &session,
    ))
}

async fn logout(State(auth): State<Auth>, headers: HeaderMap) -> Result<Response, AuthError> {
    if let Some(token) = session_cookie(&auth, &headers) {
        auth.logout(token).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut res, &clear(&auth));
    Ok(res)
}

async fn me(State(auth): State<Auth>, Caller(subject): Caller) -> Result<Response, AuthError> {
    let s = subject;
    signed_in(&s)?;
    let user = auth.me(&s).await?;
    let org = auth.organization(&s).await?;
    Ok(Json(json!({ "data": user, "organization": org })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Body(input): Body<PasswordChange>,
) -> Result<Response, AuthError> {
    let s = subject;
    signed_in(&s)?;
    let session = auth
        .change_password(&s, &input.current_password, &input.new_password)
        .await?;
    Ok(with_session(
        &auth,
        StatusCode::OK,
        json!({ "data": { "passwordChanged": true } }),
        &session,
    ))
}

async fn list_keys(
    State(auth): State<Auth>,
    Caller(subject): Caller,
) -> Result<Response, AuthError> {
    let keys: Vec<ApiKeyInfo> = auth.list_api_keys(&subject).await?;
    Ok(Json(json!({ "data": keys })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewKey {
    name: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

async fn create_key(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Body(input): Body<NewKey>,
) -> Result<Response, AuthError> {
    let key = auth
        .create_api_key(&subject, &input.name, input.expires_at)
        .await?;
    Ok(secret(StatusCode::CREATED, json!({ "data": key })))
}

async fn revoke_key(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    auth.revoke_api_key(&subject, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invite {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

async fn invite(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Body(input): Body<Invite>,
) -> Result<Response, AuthError> {
    let invitation = auth
        .invite_member(
            &subject,
            &input.email,
            input.name.as_deref(),
            input.role.as_deref(),
        )
        .await?;
    // Accepted, not created: the answer is the same whether or not the address has an account.
    Ok((StatusCode::ACCEPTED, Json(json!({ "data": invitation }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptInvite {
    token: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

async fn accept_invite(
    State(auth): State<Auth>,
    Body(input): Body<AcceptInvite>,
) -> Result<Response, AuthError> {
    let (user, session) = auth
        .accept_invite(&input.token, &input.password, input.name.as_deref())
        .await?;
    Ok(with_session(
        &auth,
        StatusCode::OK,
        json!({ "data": user }),
        &session,
    ))
}

async fn request_verification(
    State(auth): State<Auth>,
    Caller(subject): Caller,
) -> Result<Response, AuthError> {
    auth.request_email_verification(&subject).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenOnly {
    token: String,
}

async fn verify_email(
    State(auth): State<Auth>,
    Body(input): Body<TokenOnly>,
) -> Result<Response, AuthError> {
    let user = auth.verify_email(&input.token).await?;
    Ok(Json(json!({ "data": user })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailOnly {
    email: String,
}

async fn request_reset(
    State(auth): State<Auth>,
    client: Option<Extension<ClientAddr>>,
    Body(input): Body<EmailOnly>,
) -> Result<Response, AuthError> {
    auth.request_password_reset(&input.email, addr(client))
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    token: String,
    password: String,
}

async fn reset_password(
    State(auth): State<Auth>,
    Body(input): Body<Reset>,
) -> Result<Response, AuthError> {
    let user = auth.reset_password(&input.token, &input.password).await?;
    Ok(Json(json!({ "data": user })).into_response())
}

async fn list_users(
    State(auth): State<Auth>,
    Caller(subject): Caller,
) -> Result<Response, AuthError> {
    let users = auth.list_users(&subject).await?;
    Ok(Json(json!({ "data": users })).into_response())
}

async fn get_user(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    let user = auth.get_user(&subject, &id).await?;
    Ok(Json(json!({ "data": user })).into_response())
}

async fn update_user(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    Body(patch): Body<UserPatch>,
) -> Result<Response, AuthError> {
    let user = auth.update_user(&subject, &id, &patch).await?;
    Ok(Json(json!({ "data": user })).into_response())
}

async fn delete_user(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    auth.delete_user(&subject, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Roles {
    roles: Vec<String>,
}

async fn set_roles(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    Body(input): Body<Roles>,
) -> Result<Response, AuthError> {
    let user = auth.set_user_roles(&subject, &id, &input.roles).await?;
    Ok(Json(json!({ "data": user })).into_response())
}

async fn list_roles(
    State(auth): State<Auth>,
    Caller(subject): Caller,
) -> Result<Response, AuthError> {
    let roles = auth.list_roles(&subject).await?;
    Ok(Json(json!({ "data": roles })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRole {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

async fn create_role(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Body(input): Body<NewRole>,
) -> Result<Response, AuthError> {
    let role = auth
        .create_role(&subject, &input.name, input.description.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "data": role }))).into_response())
}

async fn delete_role(
    State(auth): State<Auth>,
    Caller(subject): Caller,
    Path(name): Path<String>,
) -> Result<Response, AuthError> {
    auth.delete_role(&subject, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn ticket(State(auth): State<Auth>, Caller(subject): Caller) -> Result<Response, AuthError> {
    let s = subject;
    signed_in(&s)?;
    let (ticket, expires) = auth.issue_ticket(&s)?;
    let expires = workeros_core::instant::rfc3339(expires);
    Ok(secret(
        StatusCode::OK,
        json!({ "data": { "ticket": ticket, "expiresAt": expires } }),
    ))
}
