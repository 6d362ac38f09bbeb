//! An existing service that adds workeros: it has its own database pool, its own `users` and
//! `orders` tables made by its own migrations, its own JWT authentication and its own
//! `/api/users` routes. [`app`] adds workeros under `/cms` in a few lines (the block marked
//! "workeros"): the service's pool, its JWTs as workeros subjects, and its own `orders` and
//! `users` tables adopted as collections — so its customers get the items API, permissions and
//! realtime over the service's own rows, and nothing of the service changes.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use sqlx::{Executor, PgPool, SqlitePool};
use std::sync::Arc;
use workeros::store::{Db, Namespace, StoreError};
use workeros::{EventsConfig, Workeros};
use workeros_core::{Subject, User, roles};

/// The service's own pool: PostgreSQL in production, SQLite in development.
#[derive(Debug, Clone)]
pub enum HostPool {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

impl HostPool {
    /// Runs one of the service's constant statements.
    async fn execute(&self, sql: &'static str) -> Result<(), sqlx::Error> {
        match self {
            HostPool::Postgres(p) => {
                p.execute(sql).await?;
            }
            HostPool::Sqlite(p) => {
                p.execute(sql).await?;
            }
        }
        Ok(())
    }
}

/// The service's own migrations, in order (its migration tool: a `schema_migrations` table).
const MIGRATIONS: [(i64, &str, &str); 2] = [
    (
        1,
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, \
         name TEXT NOT NULL, role TEXT NOT NULL DEFAULT 'customer')",
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, \
         name TEXT NOT NULL, role TEXT NOT NULL DEFAULT 'customer')",
    ),
    (
        2,
        "CREATE TABLE orders (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (id), \
         total DOUBLE PRECISION NOT NULL, status TEXT NOT NULL DEFAULT 'open')",
        "CREATE TABLE orders (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (id), \
         total REAL NOT NULL, status TEXT NOT NULL DEFAULT 'open')",
    ),
];

/// Runs the service's own migrations (PostgreSQL text, SQLite text) that have not run yet.
pub async fn migrate(pool: &HostPool) -> Result<(), sqlx::Error> {
    pool.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
        .await?;
    for (version, pg, sqlite) in MIGRATIONS {
        match pool {
            HostPool::Postgres(p) => {
                let mut tx = p.begin().await?;
                let done: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM schema_migrations WHERE version = $1")
                        .bind(version)
                        .fetch_one(&mut *tx)
                        .await?;
                if done == 0 {
                    tx.execute(pg).await?;
                    sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                        .bind(version)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            HostPool::Sqlite(p) => {
                let mut tx = p.begin().await?;
                let done: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM schema_migrations WHERE version = ?")
                        .bind(version)
                        .fetch_one(&mut *tx)
                        .await?;
                if done == 0 {
                    tx.execute(sqlite).await?;
                    sqlx::query("INSERT INTO schema_migrations (version) VALUES (?)")
                        .bind(version)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
    }
    Ok(())
}

/// The claims of the service's own tokens.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user's id (`users.id`).
    pub sub: String,
    /// The user's role (`users.role`): `customer` or `admin`.
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// The service's signing key.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A key from bytes (at least 32).
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self(bytes.into())
    }

    /// A token for `user` with `role`, valid for an hour: what the service's login issues.
    pub fn issue(&self, user: &str, role: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 3600;
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: user.to_owned(),
                role: role.to_owned(),
                exp,
            },
            &EncodingKey::from_secret(&self.0),
        )
    }

    /// The claims of the request's `Authorization: Bearer` token: `Ok(None)` without one, 401
    /// for one that does not verify.
    fn claims(&self, parts: &Parts) -> Result<Option<Claims>, StatusCode> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(StatusCode::UNAUTHORIZED)?;
        jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&self.0),
            &Validation::new(Algorithm::HS256),
        )
        .map(|d| Some(d.claims))
        .map_err(|_| StatusCode::UNAUTHORIZED)
    }

    /// The service's users as workeros subjects: its `admin` role is workeros's admin, every
    /// signed-in user is `authenticated` (what owner-scoped collections grant).
    pub fn subject(&self, parts: &Parts) -> Result<Option<Subject>, StatusCode> {
        Ok(self.claims(parts)?.map(|c| {
            let role = if c.role == "admin" {
                roles::ADMIN
            } else {
                c.role.as_str()
            };
            Subject::user(User::new(c.sub).with_roles([role, roles::AUTHENTICATED]))
        }))
    }
}

/// The service's state for its own routes.
#[derive(Debug, Clone)]
struct Service {
    pool: HostPool,
    secret: Secret,
}

/// The signed-in user of one of the service's own routes.
struct SignedIn(Claims);

impl FromRequestParts<Service> for SignedIn {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, s: &Service) -> Result<Self, StatusCode> {
        s.secret
            .claims(parts)?
            .map(SignedIn)
            .ok_or(StatusCode::UNAUTHORIZED)
    }
}

/// `GET /api/users`: the service's own user list (admins only).
async fn users(State(s): State<Service>, SignedIn(c): SignedIn) -> Result<Json<Value>, StatusCode> {
    if c.role != "admin" {
        return Err(StatusCode::FORBIDDEN);
    }
    let sql = "SELECT id, email FROM users ORDER BY id";
    let rows: Vec<(String, String)> = match &s.pool {
        HostPool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
        HostPool::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await,
    }
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let users: Vec<Value> = rows
        .into_iter()
        .map(|(id, email)| json!({"id": id, "email": email}))
        .collect();
    Ok(Json(json!({ "users": users })))
}

/// `GET /api/users/me`: the signed-in user, as the service's own route answers it.
async fn me(SignedIn(c): SignedIn) -> Json<Value> {
    Json(json!({ "id": c.sub, "role": c.role }))
}

/// The service's app: its own routes, and workeros under `/cms` over the same database. Runs
/// the service's migrations, then workeros's (in workeros's own namespace), and adopts the
/// service's `orders` (owned by `user_id`, so a customer reads and writes only its own) and
/// `users` (as `customers`, for admins) once.
/// `namespace` is where workeros keeps its own tables (`Namespace::default()`: schema `workeros`,
/// or on SQLite the prefix `workeros_`).
pub async fn app(
    pool: HostPool,
    secret: Secret,
    namespace: Namespace,
) -> Result<(Router, Workeros), StoreError> {
    migrate(&pool)
        .await
        .map_err(|e| StoreError::Config(format!("the service's migrations failed: {e}")))?;

    // workeros: the service's pool, its JWTs as subjects, its tables adopted.
    let db = match &pool {
        HostPool::Postgres(p) => Db::from_pg_pool(p.clone(), namespace).await?,
        HostPool::Sqlite(p) => Db::from_sqlite_pool(p.clone(), namespace).await?,
    };
    let identity = secret.clone();
    let wk = Workeros::builder(db)
        .identify(move |parts: &Parts| identity.subject(parts))
        .events(EventsConfig::default())
        .adopt()
        .build()
        .await
        .map_err(|e| StoreError::Config(e.to_string()))?;
    adopt_tables(&wk).await?;

    let app = Router::new()
        .route("/api/users", get(users))
        .route("/api/users/me", get(me))
        .with_state(Service { pool, secret })
        .nest("/cms", wk.router());
    Ok((app, wk))
}

/// Adopts `orders` and `users` unless done already (a restart adopts nothing twice).
async fn adopt_tables(wk: &Workeros) -> Result<(), StoreError> {
    let admin = Subject::user(User::new("service").with_roles([roles::ADMIN]));
    let store = wk.store();
    let have: Vec<String> = store
        .list_collections(&admin, true)
        .await?
        .into_iter()
        .map(|c| c.slug.to_string())
        .collect();
    let tables = [
        json!({"adopted": true, "physicalTable": "orders", "slug": "orders",
               "ownerScoped": true, "ownerIdColumn": "user_id",
               "fields": [{"name": "total", "type": "number", "required": true},
                          {"name": "status", "type": "text"}]}),
        json!({"adopted": true, "physicalTable": "users", "slug": "customers",
               "fields": [{"name": "email", "type": "text"}, {"name": "name", "type": "text"},
                          {"name": "role", "type": "text"}]}),
    ];
    for body in tables {
        if !have.iter().any(|s| body.get("slug") == Some(&json!(s))) {
            store.create_collection_json(&admin, body).await?;
        }
    }
    Ok(())
}
