//! The auth component's tables, as migrations of the store's migration runner.
//!
//! | table | holds |
//! |---|---|
//! | `users` | id, tenant, email (+ lowercased, unique per deployment: the email→organization index), name, status, password hash |
//! | `user_roles` | local role assignments, per tenant |
//! | `roles` | roles an admin created, per tenant (`admin`, `authenticated`, `public` are built in) |
//! | `sessions` | SHA-256 of the session token, user, tenant, sliding and absolute expiry |
//! | `api_keys` | SHA-256 of the key, display prefix, owner, expiry, last use, revocation |
//! | `organizations` | organizations (tenants in org mode), with an optional external id |
//! | `one_time_tokens` | SHA-256 of invitation, verification and reset tokens, purpose, expiry |
//! | `sync_roles`, `sync_memberships`, `sync_assignments`, `sync_cursors` | external role sync ([`crate::sync`]) |

use crate::AuthError;
use sea_query::{Alias, Index, IndexCreateStatement, Table, TableCreateStatement};
use workeros_store::migrate::{ColumnKind as K, Component, Migration, col};
use workeros_store::{Db, Names, SystemTable};

/// System table `users`.
pub(crate) const USERS: SystemTable = SystemTable::new("users");
/// System table `user_roles`.
pub(crate) const USER_ROLES: SystemTable = SystemTable::new("user_roles");
/// System table `sessions`.
pub(crate) const SESSIONS: SystemTable = SystemTable::new("sessions");
/// System table `api_keys`.
pub(crate) const API_KEYS: SystemTable = SystemTable::new("api_keys");
/// System table `roles`.
pub(crate) const ROLES: SystemTable = SystemTable::new("roles");
/// System table `organizations`.
pub(crate) const ORGANIZATIONS: SystemTable = SystemTable::new("organizations");
/// System table `one_time_tokens`.
pub(crate) const ONE_TIME_TOKENS: SystemTable = SystemTable::new("one_time_tokens");
/// System table `sync_roles`.
pub(crate) const SYNC_ROLES: SystemTable = SystemTable::new("sync_roles");
/// System table `sync_memberships`.
pub(crate) const SYNC_MEMBERSHIPS: SystemTable = SystemTable::new("sync_memberships");
/// System table `sync_assignments`.
pub(crate) const SYNC_ASSIGNMENTS: SystemTable = SystemTable::new("sync_assignments");
/// System table `sync_cursors`.
pub(crate) const SYNC_CURSORS: SystemTable = SystemTable::new("sync_cursors");

/// The auth component: its system tables (see the [module](self)) and migrations.
pub const SCHEMA: Component = Component::new(
    "auth",
    &[
        USERS,
        USER_ROLES,
        SESSIONS,
        API_KEYS,
        ROLES,
        ORGANIZATIONS,
        ONE_TIME_TOKENS,
        SYNC_ROLES,
        SYNC_MEMBERSHIPS,
        SYNC_ASSIGNMENTS,
        SYNC_CURSORS,
    ],
    &[
        Migration::new(1).tables(auth_v1).indexes(auth_v1_indexes),
        Migration::new(2).tables(auth_v2).indexes(auth_v2_indexes),
        Migration::new(3).tables(sync_v1).indexes(sync_v1_indexes),
    ],
);

fn auth_v1(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    vec![
        Table::create()
            .table(names.table(USERS))
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
            .table(names.table(USER_ROLES))
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

fn auth_v1_indexes(names: &Names) -> Vec<sea_query::IndexCreateStatement> {
    vec![index(
        names,
        "users_email_lower",
        USERS,
        &["email_lower"],
        true,
    )]
}

/// Creates or upgrades the auth tables (see the [module](self)); idempotent, safe under
/// concurrent starts (the store's migration lock). Returns the versions it applied.
pub async fn migrate(db: &Db) -> Result<Vec<i64>, AuthError> {
    Ok(workeros_store::migrate::run(db, &SCHEMA).await?)
}

use workeros_store::migrate::index;

fn auth_v2(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    vec![
        Table::create()
            .table(names.table(SESSIONS))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("token_hash", K::Text, d).not_null())
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("user_id", K::Uuid, d).not_null())
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("expires_at", K::Ts, d).not_null())
            .col(col("max_expires_at", K::Ts, d).not_null())
            .to_owned(),
        Table::create()
            .table(names.table(API_KEYS))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("key_hash", K::Text, d).not_null())
            .col(col("display_prefix", K::Text, d).not_null())
            .col(col("name", K::Text, d).not_null())
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("user_id", K::Uuid, d).not_null())
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("expires_at", K::Ts, d))
            .col(col("last_used_at", K::Ts, d))
            .col(col("revoked_at", K::Ts, d))
            .to_owned(),
        Table::create()
            .table(names.table(ROLES))
            .if_not_exists()
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("name", K::Text, d).not_null())
            .col(col("description", K::Text, d))
            .col(col("created_at", K::Ts, d).not_null())
            .primary_key(
                Index::create()
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("name")),
            )
            .to_owned(),
        Table::create()
            .table(names.table(ORGANIZATIONS))
            .if_not_exists()
            .col(col("id", K::Text, d).not_null().primary_key())
            .col(col("name", K::Text, d).not_null())
            .col(col("external_id", K::Text, d))
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("updated_at", K::Ts, d).not_null())
            .to_owned(),
        Table::create()
            .table(names.table(ONE_TIME_TOKENS))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("token_hash", K::Text, d).not_null())
            .col(col("purpose", K::Text, d).not_null())
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("user_id", K::Uuid, d).not_null())
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("expires_at", K::Ts, d).not_null())
            .to_owned(),
    ]
}

fn auth_v2_indexes(names: &Names) -> Vec<IndexCreateStatement> {
    vec![
        index(
            names,
            "sessions_token_hash",
            SESSIONS,
            &["token_hash"],
            true,
        ),
        index(names, "sessions_user", SESSIONS, &["user_id"], false),
        index(names, "api_keys_key_hash", API_KEYS, &["key_hash"], true),
        index(names, "api_keys_user", API_KEYS, &["user_id"], false),
        index(
            names,
            "organizations_external_id",
            ORGANIZATIONS,
            &["external_id"],
            true,
        ),
        index(
            names,
            "one_time_tokens_token_hash",
            ONE_TIME_TOKENS,
            &["token_hash"],
            true,
        ),
        index(
            names,
            "one_time_tokens_user",
            ONE_TIME_TOKENS,
            &["user_id"],
            false,
        ),
        index(names, "users_tenant", USERS, &["tenant_id"], false),
    ]
}

/// The tables of role sync (auth migration 3).
pub(crate) fn sync_v1(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    let pk = |cols: &[&str]| {
        let mut i = sea_query::Index::create();
        for c in cols {
            i.col(Alias::new(*c));
        }
        i.to_owned()
    };
    vec![
        Table::create()
            .table(names.table(SYNC_ROLES))
            .if_not_exists()
            .col(col("urn", K::Text, d).not_null().primary_key())
            .col(col("scope", K::Text, d).not_null())
            .col(col("provider_org_id", K::Text, d))
            .col(col("slug", K::Text, d).not_null())
            .col(col("name", K::Text, d).not_null())
            .col(col("description", K::Text, d))
            .col(col("deleted", K::Bool, d).not_null())
            .col(col("provider_updated_at", K::Ts, d).not_null())
            .col(col("provider_event_id", K::Text, d).not_null())
            .col(col("updated_at", K::Ts, d).not_null())
            .to_owned(),
        Table::create()
            .table(names.table(SYNC_MEMBERSHIPS))
            .if_not_exists()
            .col(col("provider_org_id", K::Text, d).not_null())
            .col(col("provider_user_id", K::Text, d).not_null())
            .col(col("membership_id", K::Text, d).not_null())
            .col(col("email_lower", K::Text, d))
            .col(col("user_id", K::Uuid, d))
            .col(col("deleted", K::Bool, d).not_null())
            .col(col("provider_updated_at", K::Ts, d).not_null())
            .col(col("provider_event_id", K::Text, d).not_null())
            .col(col("updated_at", K::Ts, d).not_null())
            .primary_key(&mut pk(&["provider_org_id", "provider_user_id"]))
            .to_owned(),
        Table::create()
            .table(names.table(SYNC_ASSIGNMENTS))
            .if_not_exists()
            .col(col("provider_org_id", K::Text, d).not_null())
            .col(col("provider_user_id", K::Text, d).not_null())
            .col(col("role_urn", K::Text, d).not_null())
            .col(col("membership_id", K::Text, d).not_null())
            .col(col("user_id", K::Uuid, d))
            .col(col("provider_updated_at", K::Ts, d).not_null())
            .primary_key(&mut pk(&[
                "provider_org_id",
                "provider_user_id",
                "role_urn",
            ]))
            .to_owned(),
        Table::create()
            .table(names.table(SYNC_CURSORS))
            .if_not_exists()
            .col(col("name", K::Text, d).not_null().primary_key())
            .col(col("last_event_id", K::Text, d).not_null())
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("updated_at", K::Ts, d).not_null())
            .to_owned(),
    ]
}

pub(crate) fn sync_v1_indexes(names: &Names) -> Vec<IndexCreateStatement> {
    vec![
        index(
            names,
            "sync_assignments_user",
            SYNC_ASSIGNMENTS,
            &["user_id"],
            false,
        ),
        index(
            names,
            "sync_memberships_email",
            SYNC_MEMBERSHIPS,
            &["email_lower"],
            false,
        ),
    ]
}
