//! Roles: `admin`, `authenticated` and `public` are built in; an admin creates others per tenant
//! and assigns them to users. Permissions name roles; a user's roles (local and synced) are its
//! subject's.

use crate::AuthError;
use crate::schema::{ROLES, USER_ROLES, USERS};
use sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use workeros_core::roles::{ADMIN, AUTHENTICATED, BUILT_IN, PUBLIC};
use workeros_store::values::{self, ts_value};
use workeros_store::{Db, StoreError, Tx};

/// A role as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleInfo {
    /// Its name, as permissions and subjects carry it.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Whether it is built in (cannot be deleted).
    pub built_in: bool,
}

/// Checks a role name: 1 to 64 of `a-z`, `0-9`, `_`, `-`, `.`, `:`, starting with a letter or
/// digit.
pub(crate) fn check_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b':')
        });
    if ok {
        Ok(())
    } else {
        Err(AuthError::Validation(format!(
            "`{}` is not a role name: use 1 to 64 of a-z, 0-9, _, -, . and :",
            name.chars().take(64).collect::<String>()
        )))
    }
}

fn built_in(description: &str, name: &str) -> RoleInfo {
    RoleInfo {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        built_in: true,
    }
}

/// The roles of `tenant`: built-in first, then created ones by name.
pub(crate) async fn list(db: &Db, tenant: &str) -> Result<Vec<RoleInfo>, AuthError> {
    let mut out = vec![
        built_in("every permission, in its tenant", ADMIN),
        built_in("every signed-in user", AUTHENTICATED),
        built_in("anyone, signed in or not", PUBLIC),
    ];
    let rows = db
        .fetch_all(
            Query::select()
                .columns(["name", "description"].map(Alias::new))
                .from(db.table(ROLES))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .order_by(Alias::new("name"), Order::Asc),
        )
        .await?;
    for r in rows.iter() {
        out.push(RoleInfo {
            name: r.text("name")?.unwrap_or_default(),
            description: r.text("description")?,
            built_in: false,
        });
    }
    Ok(out)
}

/// Creates role `name` in `tenant`.
pub(crate) async fn create(
    db: &Db,
    tenant: &str,
    name: &str,
    description: Option<&str>,
) -> Result<RoleInfo, AuthError> {
    check_name(name)?;
    if BUILT_IN.contains(&name) {
        return Err(AuthError::Conflict(format!("`{name}` is a built-in role")));
    }
    if description.is_some_and(|d| d.chars().count() > 500) {
        return Err(AuthError::Validation(
            "a role description has at most 500 characters".into(),
        ));
    }
    let d = db.dialect();
    db.execute(
        Query::insert()
            .into_table(db.table(ROLES))
            .columns(["tenant_id", "name", "description", "created_at"].map(Alias::new))
            .values([
                Expr::val(tenant),
                Expr::val(name),
                Expr::val(description.map(str::to_owned)),
                Expr::val(ts_value(values::now(), d)),
            ])
            .map_err(AuthError::internal)?,
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict { .. } => AuthError::Conflict(format!("role `{name}` already exists")),
        other => other.into(),
    })?;
    Ok(RoleInfo {
        name: name.to_owned(),
        description: description.map(str::to_owned),
        built_in: false,
    })
}

/// Deletes created role `name` of `tenant` and its local assignments.
pub(crate) async fn delete(db: &Db, tenant: &str, name: &str) -> Result<(), AuthError> {
    if BUILT_IN.contains(&name) {
        return Err(AuthError::Conflict(format!(
            "`{name}` is a built-in role and cannot be deleted"
        )));
    }
    let mut tx = db.begin().await?;
    let n = tx
        .execute(
            Query::delete()
                .from_table(db.table(ROLES))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("name")).eq(name)),
        )
        .await?;
    if n == 0 {
        return Err(AuthError::NotFound(format!("no role `{name}`")));
    }
    tx.execute(
        Query::delete()
            .from_table(db.table(USER_ROLES))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("role")).eq(name)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Checks that `role` may be assigned in `tenant`: `admin`, `authenticated`, or a created role.
pub(crate) async fn check_assignable(
    tx: &mut Tx,
    tenant: &str,
    role: &str,
) -> Result<(), AuthError> {
    check_name(role)?;
    if role == ADMIN || role == AUTHENTICATED {
        return Ok(());
    }
    let rows = tx
        .fetch_all(
            Query::select()
                .expr(Expr::cust("1"))
                .from(tx.table(ROLES))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("name")).eq(role))
                .limit(1),
        )
        .await?;
    if rows.is_empty() {
        return Err(AuthError::Validation(format!(
            "there is no role `{role}`; create it first (`POST /api/roles`)"
        )));
    }
    Ok(())
}

/// Refuses a change that would leave `tenant` without an active admin other than `user`, when
/// `user` is one. (Called under `users::lock_users`, so two such changes cannot both pass.)
pub(crate) async fn keep_an_admin(tx: &mut Tx, tenant: &str, user: Uuid) -> Result<(), AuthError> {
    let r = Alias::new("r");
    let u = Alias::new("u");
    let admins = tx
        .fetch_all(
            Query::select()
                .column((r.clone(), Alias::new("user_id")))
                .from_as(tx.table(USER_ROLES), r.clone())
                .inner_join(
                    tx.table(USERS).alias(u.clone()),
                    Expr::col((u.clone(), Alias::new("id")))
                        .equals((r.clone(), Alias::new("user_id"))),
                )
                .and_where(Expr::col((r.clone(), Alias::new("tenant_id"))).eq(tenant))
                .and_where(Expr::col((r.clone(), Alias::new("role"))).eq(ADMIN))
                .and_where(Expr::col((u.clone(), Alias::new("status"))).eq("active")),
        )
        .await?;
    let me = user.hyphenated().to_string();
    let mut is_admin = false;
    let mut others = 0usize;
    for row in admins.iter() {
        if row.uuid_text(0usize)?.as_deref() == Some(me.as_str()) {
            is_admin = true;
        } else {
            others += 1;
        }
    }
    if is_admin && others == 0 {
        return Err(AuthError::Conflict(
            "this is the last active admin; make another user admin first".into(),
        ));
    }
    Ok(())
}
