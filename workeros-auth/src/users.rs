//! Users: created with an Argon2id password hash; the first user ever created gets `admin`, every
//! later one `authenticated`; emails are unique per deployment, compared case-insensitively.

use crate::{AuthError, password};
use sea_query::{Alias, Expr, Index, Query, Table, TableCreateStatement};
use serde::{Deserialize, Serialize};
use workeros_dsl::Dialect;
use workeros_store::migrate::{ColumnKind as K, Migration, col};
use workeros_store::values::{self, ts_value, uuid_value};
use workeros_store::{Db, StoreError};

/// The PostgreSQL advisory lock that serialises user creation.
const USER_CREATION_LOCK: i64 = 0x7573_6572_7300; // "users"

/// The auth component's migrations.
pub(crate) const AUTH: &[Migration] = &[Migration {
    version: 1,
    tables: auth_v1,
    indexes: auth_v1_indexes,
}];

fn auth_v1(d: Dialect) -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table(Alias::new("users"))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("email", K::Text, d).not_null())
            .col(col("email_lower", K::Text, d).not_null())
            .col(col("name", K::Text, d))
            .col(col("status", K::Text, d).not_null())
            .col(col("email_verified_at", K::Ts, d))
            .col(col("password_hash", K::Text, d))
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("updated_at", K::Ts, d).not_null())
            .to_owned(),
        Table::create()
            .table(Alias::new("user_roles"))
            .if_not_exists()
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("user_id", K::Uuid, d).not_null())
            .col(col("role", K::Text, d).not_null())
            .primary_key(
                Index::create()
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("user_id"))
                    .col(Alias::new("role")),
            )
            .to_owned(),
    ]
}

fn auth_v1_indexes() -> Vec<sea_query::IndexCreateStatement> {
    vec![
        Index::create()
            .name("users_email_lower")
            .table(Alias::new("users"))
            .col(Alias::new("email_lower"))
            .unique()
            .if_not_exists()
            .to_owned(),
    ]
}

/// Creates or upgrades the auth tables (`users`, `user_roles`); idempotent, safe under
/// concurrent starts (the store's migration lock).
pub async fn migrate(db: &Db) -> Result<Vec<i64>, AuthError> {
    Ok(workeros_store::migrate::run(db, "auth", AUTH).await?)
}

/// A user's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// May sign in.
    Active,
    /// Invited, not yet accepted.
    Invited,
    /// May not sign in; sessions revoked.
    Suspended,
}

/// A user as the API returns it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// Its id.
    pub id: String,
    /// The email as given.
    pub email: String,
    /// The display name.
    pub name: Option<String>,
    /// The status.
    pub status: UserStatus,
    /// Its roles.
    pub roles: Vec<String>,
}

/// Checks an email's shape (one `@`, something on each side, no spaces or controls, ≤ 254 bytes).
fn check_email(email: &str) -> Result<(), AuthError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Validation(format!(
            "`{}` is not an email address",
            email.chars().take(64).collect::<String>()
        )))
    }
}

/// Creates an active user in `tenant` with a password. The first user of the deployment gets
/// `admin`, every later one `authenticated`. The email must be new (any case): 409 otherwise.
pub async fn create_user(
    db: &Db,
    tenant: &str,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> Result<UserInfo, AuthError> {
    let email = email.trim();
    check_email(email)?;
    password::check_new_password(password)?;
    let hash = password::hash_password(password)?;
    let id = uuid::Uuid::now_v7();
    let mut tx = db.begin().await?;
    let d = tx.dialect();
    // "First user" must mean one user: creations queue behind each other (SQLite's write lock
    // already does that; PostgreSQL takes a transaction lock).
    if let workeros_store::Tx::Postgres(t) = &mut tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(USER_CREATION_LOCK)
            .execute(&mut **t)
            .await
            .map_err(StoreError::from)?;
    }
    let first = tx
        .fetch_all(
            Query::select()
                .expr(Expr::cust("1"))
                .from(Alias::new("users"))
                .limit(1),
        )
        .await?
        .is_empty();
    let now = ts_value(values::now(), d);
    tx.execute(
        Query::insert()
            .into_table(Alias::new("users"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "email",
                    "email_lower",
                    "name",
                    "status",
                    "password_hash",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(id, d)),
                Expr::val(tenant),
                Expr::val(email),
                Expr::val(email.to_lowercase()),
                Expr::val(name.map(str::to_owned)),
                Expr::val("active"),
                Expr::val(hash),
                Expr::val(now.clone()),
                Expr::val(now),
            ])
            .map_err(|_| AuthError::Internal)?,
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict { .. } => {
            AuthError::Conflict("an account with this email already exists".into())
        }
        other => other.into(),
    })?;
    let role = if first { "admin" } else { "authenticated" };
    tx.execute(
        Query::insert()
            .into_table(Alias::new("user_roles"))
            .columns(["tenant_id", "user_id", "role"].map(Alias::new))
            .values([
                Expr::val(tenant),
                Expr::val(uuid_value(id, d)),
                Expr::val(role),
            ])
            .map_err(|_| AuthError::Internal)?,
    )
    .await?;
    tx.commit().await?;
    Ok(UserInfo {
        id: id.hyphenated().to_string(),
        email: email.to_owned(),
        name: name.map(str::to_owned),
        status: UserStatus::Active,
        roles: vec![role.to_owned()],
    })
}
