//! Users: created with an Argon2id password hash; the first user ever created gets `admin`, every
//! later one `authenticated`; emails are unique per deployment, compared case-insensitively.

use crate::schema::API_KEYS;
use crate::schema::ONE_TIME_TOKENS;
use crate::schema::SESSIONS;
use crate::schema::SYNC_MEMBERSHIPS;
use crate::schema::{ORGANIZATIONS, SYNC_ASSIGNMENTS, SYNC_ROLES, USER_ROLES, USERS};
use crate::{AuthError, password};
use sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_core::roles::{ADMIN, AUTHENTICATED};
use workeros_core::{Subject, User};
use workeros_store::SystemTable;
use workeros_store::values::{self, RowRef, bool_value, ts_value, uuid_value};
use workeros_store::{Db, Names, Rows, StoreError, Tx};

/// The PostgreSQL advisory lock of [`lock_users`].
const USERS_LOCK: i64 = 0x7573_6572_7300; // "users"

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

impl UserStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Invited => "invited",
            Self::Suspended => "suspended",
        }
    }

    fn parse(s: &str) -> Result<Self, AuthError> {
        match s {
            "active" => Ok(Self::Active),
            "invited" => Ok(Self::Invited),
            "suspended" => Ok(Self::Suspended),
            other => Err(AuthError::internal(format!("stored user status `{other}`"))),
        }
    }
}

/// An invitation as its sender sees it (`POST /api/auth/invite`, `202`): the same for every
/// address, whether or not it has an account (see
/// [`Auth::invite_member`](crate::Auth::invite_member)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    /// The address invited.
    pub email: String,
    /// The role the member gets on accepting.
    pub role: String,
    /// `invited`.
    pub status: &'static str,
    /// When the link stops working (RFC 3339).
    pub expires_at: String,
}

/// An organization (a tenant in org mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationInfo {
    /// Its id, which is its tenant id.
    pub id: String,
    /// Its name.
    pub name: String,
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
    /// Its roles in its tenant (local and synced), sorted.
    pub roles: Vec<String>,
    /// Whether the email address was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// The tenant (in org mode, the organization's id).
    #[serde(default)]
    pub tenant: String,
}

/// The subject attribute that says how the request signed in (`$user.credential` in filters):
/// `session` or `api_key`.
pub const CREDENTIAL_ATTR: &str = "credential";

/// How a request signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    Session,
    ApiKey,
}

impl Credential {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::ApiKey => "api_key",
        }
    }
}

/// A user row as stored (password hash included; never sent).
#[derive(Debug, Clone)]
pub(crate) struct UserRow {
    pub(crate) id: Uuid,
    pub(crate) tenant: String,
    pub(crate) email: String,
    pub(crate) name: Option<String>,
    pub(crate) status: UserStatus,
    pub(crate) email_verified: bool,
    pub(crate) password_hash: Option<String>,
}

pub(crate) const USER_COLUMNS: [&str; 7] = [
    "id",
    "tenant_id",
    "email",
    "name",
    "status",
    "email_verified_at",
    "password_hash",
];

impl UserRow {
    pub(crate) fn read(r: &RowRef<'_>) -> Result<Self, AuthError> {
        let id = r
            .uuid_text("id")?
            .and_then(|s| Uuid::try_parse(&s).ok())
            .ok_or_else(|| AuthError::internal("a user row without an id"))?;
        Ok(Self {
            id,
            tenant: r.text("tenant_id")?.unwrap_or_default(),
            email: r.text("email")?.unwrap_or_default(),
            name: r.text("name")?,
            status: UserStatus::parse(&r.text("status")?.unwrap_or_default())?,
            email_verified: r.ts("email_verified_at")?.is_some(),
            password_hash: r.text("password_hash")?,
        })
    }

    pub(crate) fn info(&self, roles: Vec<String>) -> UserInfo {
        UserInfo {
            id: self.id.hyphenated().to_string(),
            email: self.email.clone(),
            name: self.name.clone(),
            status: self.status,
            roles,
            email_verified: self.email_verified,
            tenant: self.tenant.clone(),
        }
    }

    /// The subject this user is, with `roles`, signed in with `credential`.
    pub(crate) fn subject(&self, roles: Vec<String>, credential: Credential) -> Subject {
        let mut user = User::new(self.id.hyphenated().to_string())
            .with_email(self.email.clone())
            .with_roles(roles)
            .with_attr(CREDENTIAL_ATTR, credential.as_str());
        if let Some(n) = &self.name {
            user = user.with_attr("name", n.clone());
        }
        Subject::user(user).with_tenant(self.tenant.clone())
    }
}

/// A `SELECT` of the user columns from `users`.
pub(crate) fn select_users(names: &Names) -> SelectStatement {
    Query::select()
        .columns(USER_COLUMNS.map(Alias::new))
        .from(names.table(USERS))
        .to_owned()
}

/// The row of `table` (aliased `t`, with a `user_id` column) whose `key` column equals `value`,
/// joined with its user: the user columns, then `extra` columns of `t` under their aliases.
/// One round trip for a credential lookup (sessions, API keys).
pub(crate) fn credential_with_user(
    names: &Names,
    table: SystemTable,
    extra: &[(&str, &str)],
    key: &str,
    value: String,
) -> SelectStatement {
    let t = Alias::new("t");
    let u = Alias::new("u");
    let mut q = Query::select();
    for c in USER_COLUMNS {
        q.column((u.clone(), Alias::new(c)));
    }
    for (c, alias) in extra {
        q.expr_as(Expr::col((t.clone(), Alias::new(*c))), Alias::new(*alias));
    }
    q.from_as(names.table(table), t.clone())
        .inner_join(
            names.table(USERS).alias(u.clone()),
            Expr::col((u.clone(), Alias::new("id"))).equals((t.clone(), Alias::new("user_id"))),
        )
        .and_where(Expr::col((t, Alias::new(key))).eq(value))
        .limit(1);
    q
}

/// The rows of `rows` as users.
pub(crate) fn user_rows(rows: &Rows) -> Result<Vec<UserRow>, AuthError> {
    rows.iter().map(|r| UserRow::read(&r)).collect()
}

/// A user id from a client: a UUID, or the user is not there.
pub(crate) fn parse_user_id(id: &str) -> Result<Uuid, AuthError> {
    Uuid::try_parse(id).map_err(|_| AuthError::NotFound(format!("no user `{id}`")))
}

fn by_id_query(names: &Names, id: Uuid) -> SelectStatement {
    select_users(names)
        .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, names.dialect())))
        .limit(1)
        .to_owned()
}

/// The user with `id`.
pub(crate) async fn by_id(db: &Db, id: Uuid) -> Result<Option<UserRow>, AuthError> {
    let rows = db.fetch_all(&by_id_query(db.names(), id)).await?;
    Ok(user_rows(&rows)?.into_iter().next())
}

/// The user with `id`, read in `tx`.
pub(crate) async fn by_id_in(tx: &mut Tx, id: Uuid) -> Result<Option<UserRow>, AuthError> {
    let rows = tx.fetch_all(&by_id_query(tx.names(), id)).await?;
    Ok(user_rows(&rows)?.into_iter().next())
}

/// Deletes user `id` with its sessions, API keys, one-time tokens and local roles, and unlinks
/// it from provider memberships.
pub(crate) async fn delete(tx: &mut Tx, id: Uuid) -> Result<(), AuthError> {
    let d = tx.dialect();
    for (table, column) in [
        (SESSIONS, "user_id"),
        (API_KEYS, "user_id"),
        (ONE_TIME_TOKENS, "user_id"),
        (USER_ROLES, "user_id"),
        (USERS, "id"),
    ] {
        tx.execute(
            Query::delete()
                .from_table(tx.table(table))
                .and_where(Expr::col(Alias::new(column)).eq(uuid_value(id, d))),
        )
        .await?;
    }
    unlink_user(tx, id).await
}

/// The user with `email` (any case), read in `tx`.
pub(crate) async fn by_email_in(tx: &mut Tx, email: &str) -> Result<Option<UserRow>, AuthError> {
    let rows = tx.fetch_all(&by_email_query(tx.names(), email)).await?;
    Ok(user_rows(&rows)?.into_iter().next())
}

/// The user with `email` (any case).
pub(crate) async fn by_email(db: &Db, email: &str) -> Result<Option<UserRow>, AuthError> {
    let rows = db.fetch_all(&by_email_query(db.names(), email)).await?;
    Ok(user_rows(&rows)?.into_iter().next())
}

fn by_email_query(names: &Names, email: &str) -> SelectStatement {
    select_users(names)
        .and_where(Expr::col(Alias::new("email_lower")).eq(email.trim().to_lowercase()))
        .limit(1)
        .to_owned()
}

/// The roles of user `id` in `tenant`: local assignments and synced ones, sorted, distinct.
pub(crate) async fn roles_of(db: &Db, tenant: &str, id: Uuid) -> Result<Vec<String>, AuthError> {
    let d = db.dialect();
    // One query: the local assignments and the synced ones.
    let rows = db
        .fetch_all(
            Query::select()
                .column(Alias::new("role"))
                .from(db.table(USER_ROLES))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("user_id")).eq(uuid_value(id, d)))
                .union(
                    sea_query::UnionType::Distinct,
                    synced_roles_query(db.names(), tenant, id),
                ),
        )
        .await?;
    let mut roles = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        // A synced slug that is not a valid role name names no permission: left out.
        if let Some(role) = r
            .text(0usize)?
            .filter(|n| crate::roles::check_name(n).is_ok())
        {
            roles.push(role);
        }
    }
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// Checks an email's shape (one `@`, something on each side, no spaces or controls, ≤ 254 bytes).
pub(crate) fn check_email(email: &str) -> Result<(), AuthError> {
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

/// Checks a display name (≤ 200 characters, no control characters).
pub(crate) fn check_name(name: Option<&str>) -> Result<(), AuthError> {
    match name {
        Some(n) if n.chars().count() > 200 || n.chars().any(char::is_control) => {
            Err(AuthError::Validation(
                "a name has at most 200 characters, none of them control characters".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// A user to insert.
pub(crate) struct NewUser<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) email: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) status: UserStatus,
    pub(crate) password_hash: Option<String>,
    pub(crate) email_verified_at: Option<OffsetDateTime>,
}

/// Inserts a user and its first role in `tx`. An email already in use (any case) is a conflict.
pub(crate) async fn insert(tx: &mut Tx, u: NewUser<'_>, role: &str) -> Result<UserRow, AuthError> {
    let d = tx.dialect();
    let id = Uuid::now_v7();
    let now = ts_value(values::now(), d);
    tx.execute(
        Query::insert()
            .into_table(tx.table(USERS))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "email",
                    "email_lower",
                    "name",
                    "status",
                    "email_verified_at",
                    "password_hash",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(id, d)),
                Expr::val(u.tenant),
                Expr::val(u.email),
                Expr::val(u.email.to_lowercase()),
                Expr::val(u.name.map(str::to_owned)),
                Expr::val(u.status.as_str()),
                Expr::val(match u.email_verified_at {
                    Some(t) => ts_value(t, d),
                    None => values::ts_null(d),
                }),
                Expr::val(u.password_hash.clone()),
                Expr::val(now.clone()),
                Expr::val(now),
            ])
            .map_err(AuthError::internal)?,
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict { .. } => {
            AuthError::Conflict("an account with this email already exists".into())
        }
        other => other.into(),
    })?;
    add_role(tx, u.tenant, id, role).await?;
    Ok(UserRow {
        id,
        tenant: u.tenant.to_owned(),
        email: u.email.to_owned(),
        name: u.name.map(str::to_owned),
        status: u.status,
        email_verified: u.email_verified_at.is_some(),
        password_hash: u.password_hash,
    })
}

/// Assigns `role` to user `id` in `tenant` (no-op when it has it).
pub(crate) async fn add_role(
    tx: &mut Tx,
    tenant: &str,
    id: Uuid,
    role: &str,
) -> Result<(), AuthError> {
    let d = tx.dialect();
    tx.execute(
        Query::insert()
            .into_table(tx.table(USER_ROLES))
            .columns(["tenant_id", "user_id", "role"].map(Alias::new))
            .values([
                Expr::val(tenant),
                Expr::val(uuid_value(id, d)),
                Expr::val(role),
            ])
            .map_err(AuthError::internal)?
            .on_conflict(sea_query::OnConflict::new().do_nothing().to_owned()),
    )
    .await?;
    Ok(())
}

/// Takes the lock that serialises user creation and admin changes to users and roles
/// (PostgreSQL; SQLite's write lock already does), so "the first user" and "the last admin" are
/// decided one change at a time.
pub(crate) async fn lock_users(tx: &mut Tx) -> Result<(), AuthError> {
    tx.lock(USERS_LOCK).await?;
    Ok(())
}

/// The role of a new single-tenant user, decided under [`lock_users`]: `admin` for the
/// deployment's first user, `authenticated` after.
pub(crate) async fn default_role(tx: &mut Tx) -> Result<&'static str, AuthError> {
    let none_yet = tx
        .fetch_all(
            Query::select()
                .expr(Expr::cust("1"))
                .from(tx.table(USERS))
                .limit(1),
        )
        .await?
        .is_empty();
    Ok(if none_yet { ADMIN } else { AUTHENTICATED })
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
    check_name(name)?;
    password::check_new_password(password)?;
    let hash = password::hash_password(password)?;
    let mut tx = db.begin().await?;
    // "First user" must mean one user: creations queue behind each other.
    lock_users(&mut tx).await?;
    let role = default_role(&mut tx).await?;
    let user = insert(
        &mut tx,
        NewUser {
            tenant,
            email,
            name,
            status: UserStatus::Active,
            password_hash: Some(hash),
            email_verified_at: None,
        },
        role,
    )
    .await?;
    tx.commit().await?;
    Ok(user.info(vec![role.to_owned()]))
}

/// Unlinks local user `id` (deleted) from its memberships and assignments.
pub(crate) async fn unlink_user(tx: &mut Tx, id: Uuid) -> Result<(), AuthError> {
    let d = tx.dialect();
    for table in [SYNC_MEMBERSHIPS, SYNC_ASSIGNMENTS] {
        tx.execute(
            Query::update()
                .table(tx.table(table))
                .value(Alias::new("user_id"), values::uuid_null(d))
                .and_where(Expr::col(Alias::new("user_id")).eq(uuid_value(id, d))),
        )
        .await?;
    }
    Ok(())
}

/// The synced role slugs of local user `id` in `tenant`: assignments of the provider
/// organization linked to the tenant, whose roles exist and are not deleted.
pub(crate) fn synced_roles_query(
    names: &Names,
    tenant: &str,
    id: Uuid,
) -> sea_query::SelectStatement {
    let d = names.dialect();
    let (a, o, r) = (Alias::new("a"), Alias::new("o"), Alias::new("r"));
    Query::select()
        .expr_as(
            Expr::col((r.clone(), Alias::new("slug"))),
            Alias::new("role"),
        )
        .from_as(names.table(SYNC_ASSIGNMENTS), a.clone())
        .inner_join(
            names.table(ORGANIZATIONS).alias(o.clone()),
            Expr::col((o.clone(), Alias::new("external_id")))
                .equals((a.clone(), Alias::new("provider_org_id"))),
        )
        .inner_join(
            names.table(SYNC_ROLES).alias(r.clone()),
            Expr::col((r.clone(), Alias::new("urn"))).equals((a.clone(), Alias::new("role_urn"))),
        )
        .and_where(Expr::col((o.clone(), Alias::new("id"))).eq(tenant))
        .and_where(Expr::col((a.clone(), Alias::new("user_id"))).eq(uuid_value(id, d)))
        .and_where(Expr::col((r.clone(), Alias::new("deleted"))).eq(bool_value(false, d)))
        .to_owned()
}
