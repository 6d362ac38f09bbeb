//! External role sync: roles and memberships from an identity provider (WorkOS style), applied
//! idempotently and in any order.
//!
//! The provider has global roles, per-organization roles, and memberships that give a provider
//! user a set of roles in a provider organization. Assignments are keyed by a role URN,
//! `role:global:<uuid>` or `role:organization:<uuid>`, where the uuid is derived from the role's
//! scope and slug (UUIDv5), so a membership can name a role whose own event has not arrived yet.
//! The local user of an assignment is nullable until a user with the membership's email signs in
//! (or exists when the event arrives).
//!
//! Ordering: every entity keeps the provider's `updated_at` beside the local one, and an event
//! applies only when it is newer than what is stored (deletions are kept as tombstones), so
//! replayed, duplicated and out-of-order events never overwrite newer state; each stream's
//! cursor keeps the greatest event id seen (provider event ids sort in event order, as WorkOS'
//! ULIDs do): per organization for organization-role events, singletons for global-role and
//! membership events. Synced assignments feed [`Subject`](workeros_core::Subject) roles in the
//! organization whose `external_id` is the provider organization
//! ([`set_external_id`]).

use crate::AuthError;
use crate::schema::{ORGANIZATIONS, SYNC_ASSIGNMENTS, SYNC_CURSORS, SYNC_MEMBERSHIPS, SYNC_ROLES};
use crate::users::{self, UserStatus};
use sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_store::SystemTable;
use workeros_store::values::{self, bool_value, ts_value, uuid_value};
use workeros_store::{Db, StoreError, Tx};

/// The PostgreSQL advisory lock that serialises sync events.
const SYNC_LOCK: i64 = 0x7379_6e63_0000; // "sync"

/// The namespace of derived role ids.
const ROLE_NAMESPACE: Uuid = Uuid::from_u128(0x6b2f_0c1e_5a7d_4f3b_9c21_8e4d_a0b7_1c55);

/// The name of the singleton cursor of membership events.
pub const MEMBERSHIP_CURSOR: &str = "memberships";
/// The name of the singleton cursor of global role events.
pub const GLOBAL_ROLE_CURSOR: &str = "global_roles";

/// The cursor name of an organization's role events.
pub fn organization_cursor(organization: &str) -> String {
    format!("organization:{organization}")
}

/// A role a membership names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "scope", content = "slug", rename_all = "snake_case")]
pub enum RoleRef {
    /// A global role, by slug.
    Global(String),
    /// A role of the membership's organization, by slug.
    Organization(String),
}

/// One provider event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncEvent {
    /// The provider's event id (sorts in event order).
    pub id: String,
    /// The provider's `updated_at` of the entity the event describes.
    #[serde(with = "workeros_core::instant::serde")]
    pub updated_at: OffsetDateTime,
    /// What happened.
    pub kind: SyncEventKind,
}

/// What a provider event says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SyncEventKind {
    /// A global role was created, updated or deleted.
    GlobalRole {
        /// Its slug (immutable at the provider).
        slug: String,
        /// Its display name.
        name: String,
        /// Its description.
        description: Option<String>,
        /// Whether it was deleted.
        deleted: bool,
    },
    /// An organization's role was created, updated or deleted.
    OrganizationRole {
        /// The provider organization id.
        organization: String,
        /// Its slug (immutable at the provider).
        slug: String,
        /// Its display name.
        name: String,
        /// Its description.
        description: Option<String>,
        /// Whether it was deleted.
        deleted: bool,
    },
    /// A membership was created, updated (its roles) or deleted.
    Membership {
        /// The provider organization id.
        organization: String,
        /// The provider user id.
        user: String,
        /// The provider membership id.
        membership_id: String,
        /// The user's email, to link a local user.
        email: Option<String>,
        /// The roles the membership gives (all of them, not a change).
        roles: Vec<RoleRef>,
        /// Whether the membership was deleted.
        deleted: bool,
    },
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event changed the state.
    Applied,
    /// Stored state was as new or newer; only the cursor moved (if the id was greater).
    Stale,
}

/// The URN of a role.
pub fn role_urn(role: &RoleRef, organization: &str) -> String {
    match role {
        RoleRef::Global(slug) => format!(
            "role:global:{}",
            Uuid::new_v5(&ROLE_NAMESPACE, format!("global\u{0}{slug}").as_bytes())
        ),
        RoleRef::Organization(slug) => format!(
            "role:organization:{}",
            Uuid::new_v5(
                &ROLE_NAMESPACE,
                format!("organization\u{0}{organization}\u{0}{slug}").as_bytes()
            )
        ),
    }
}

/// Links organization `tenant` to provider organization `external_id` (whose synced roles then
/// reach the organization's users); `None` unlinks. Cached credentials are forgotten as with
/// [`apply`].
pub async fn set_external_id(
    db: &Db,
    tenant: &str,
    external_id: Option<&str>,
) -> Result<(), AuthError> {
    let d = db.dialect();
    let n = db
        .execute(
            Query::update()
                .table(db.table(ORGANIZATIONS))
                .value(Alias::new("external_id"), external_id.map(str::to_owned))
                .value(Alias::new("updated_at"), ts_value(values::now(), d))
                .and_where(Expr::col(Alias::new("id")).eq(tenant)),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => AuthError::Conflict(
                "another organization is linked to this provider organization".into(),
            ),
            other => other.into(),
        })?;
    if n == 0 {
        return Err(AuthError::NotFound(format!("no organization `{tenant}`")));
    }
    crate::cache::announce_or_log(db, &crate::cache::Forget::All).await;
    Ok(())
}

/// The last event id of cursor `name`.
pub async fn cursor(db: &Db, name: &str) -> Result<Option<String>, AuthError> {
    let rows = db
        .fetch_all(
            Query::select()
                .column(Alias::new("last_event_id"))
                .from(db.table(SYNC_CURSORS))
                .and_where(Expr::col(Alias::new("name")).eq(name)),
        )
        .await?;
    Ok(match rows.iter().next() {
        Some(r) => r.text(0usize)?,
        None => None,
    })
}

/// Applies one provider event, in one transaction. Subjects' roles change with it, so every
/// [`Auth`](crate::Auth) over a clone of `db` in this process forgets the credentials it cached
/// before this returns, and other instances on PostgreSQL are notified
/// ([`Auth::start`](crate::Auth::start)).
pub async fn apply(db: &Db, event: &SyncEvent) -> Result<Applied, AuthError> {
    let applied = apply_event(db, event).await?;
    crate::cache::announce_or_log(db, &crate::cache::Forget::All).await;
    Ok(applied)
}

async fn apply_event(db: &Db, event: &SyncEvent) -> Result<Applied, AuthError> {
    if event.id.is_empty() || event.id.len() > 200 {
        return Err(AuthError::Validation(
            "an event id has 1 to 200 characters".into(),
        ));
    }
    let mut tx = db.begin().await?;
    // One event at a time: the staleness check and the write must not interleave with another
    // event's (SQLite's write lock already serialises; PostgreSQL takes a transaction lock).
    tx.lock(SYNC_LOCK).await?;
    let stamp = Stamp {
        at: event.updated_at,
        event: &event.id,
    };
    let applied = match &event.kind {
        SyncEventKind::GlobalRole {
            slug,
            name,
            description,
            deleted,
        } => {
            advance(&mut tx, GLOBAL_ROLE_CURSOR, &event.id).await?;
            let urn = role_urn(&RoleRef::Global(slug.clone()), "");
            put_role(
                &mut tx,
                &urn,
                "global",
                None,
                slug,
                name,
                description.as_deref(),
                *deleted,
                stamp,
            )
            .await?
        }
        SyncEventKind::OrganizationRole {
            organization,
            slug,
            name,
            description,
            deleted,
        } => {
            advance(&mut tx, &organization_cursor(organization), &event.id).await?;
            let urn = role_urn(&RoleRef::Organization(slug.clone()), organization);
            put_role(
                &mut tx,
                &urn,
                "organization",
                Some(organization),
                slug,
                name,
                description.as_deref(),
                *deleted,
                stamp,
            )
            .await?
        }
        SyncEventKind::Membership {
            organization,
            user,
            membership_id,
            email,
            roles,
            deleted,
        } => {
            advance(&mut tx, MEMBERSHIP_CURSOR, &event.id).await?;
            put_membership(
                &mut tx,
                organization,
                user,
                membership_id,
                email.as_deref(),
                roles,
                *deleted,
                stamp,
            )
            .await?
        }
    };
    tx.commit().await?;
    Ok(applied)
}

/// Moves cursor `name` to `id` when `id` is greater.
async fn advance(tx: &mut Tx, name: &str, id: &str) -> Result<(), AuthError> {
    let d = tx.dialect();
    let now = ts_value(values::now(), d);
    let current = tx
        .fetch_all(
            Query::select()
                .column(Alias::new("last_event_id"))
                .from(tx.table(SYNC_CURSORS))
                .and_where(Expr::col(Alias::new("name")).eq(name)),
        )
        .await?;
    let last = match current.iter().next() {
        Some(r) => r.text(0usize)?,
        None => None,
    };
    match last {
        None => {
            tx.execute(
                Query::insert()
                    .into_table(tx.table(SYNC_CURSORS))
                    .columns(["name", "last_event_id", "created_at", "updated_at"].map(Alias::new))
                    .values([
                        Expr::val(name),
                        Expr::val(id),
                        Expr::val(now.clone()),
                        Expr::val(now),
                    ])
                    .map_err(AuthError::internal)?,
            )
            .await?;
        }
        Some(last) if last.as_str() < id => {
            tx.execute(
                Query::update()
                    .table(tx.table(SYNC_CURSORS))
                    .value(Alias::new("last_event_id"), id)
                    .value(Alias::new("updated_at"), now)
                    .and_where(Expr::col(Alias::new("name")).eq(name)),
            )
            .await?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// When an event happened at the provider: its `updated_at`, ties broken by event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp<'a> {
    at: OffsetDateTime,
    event: &'a str,
}

/// Whether the row `table.keys` holds state as new as `stamp` or newer.
async fn is_stale(
    tx: &mut Tx,
    table: SystemTable,
    keys: &[(&str, &str)],
    stamp: Stamp<'_>,
) -> Result<bool, AuthError> {
    let mut q = Query::select();
    q.columns(["provider_updated_at", "provider_event_id"].map(Alias::new))
        .from(tx.table(table));
    for (k, v) in keys {
        q.and_where(Expr::col(Alias::new(*k)).eq(*v));
    }
    let rows = tx.fetch_all(&q).await?;
    Ok(match rows.iter().next() {
        Some(r) => {
            let event = r.text(1usize)?.unwrap_or_default();
            let stored = Stamp {
                at: r.ts(0usize)?.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                event: &event,
            };
            stored >= stamp
        }
        None => false,
    })
}

#[allow(clippy::too_many_arguments)]
async fn put_role(
    tx: &mut Tx,
    urn: &str,
    scope: &str,
    organization: Option<&str>,
    slug: &str,
    name: &str,
    description: Option<&str>,
    deleted: bool,
    stamp: Stamp<'_>,
) -> Result<Applied, AuthError> {
    if is_stale(tx, SYNC_ROLES, &[("urn", urn)], stamp).await? {
        return Ok(Applied::Stale);
    }
    let d = tx.dialect();
    let now = ts_value(values::now(), d);
    let cols = [
        "urn",
        "scope",
        "provider_org_id",
        "slug",
        "name",
        "description",
        "deleted",
        "provider_updated_at",
        "provider_event_id",
        "updated_at",
    ];
    tx.execute(
        Query::insert()
            .into_table(tx.table(SYNC_ROLES))
            .columns(cols.map(Alias::new))
            .values([
                Expr::val(urn),
                Expr::val(scope),
                Expr::val(organization.map(str::to_owned)),
                Expr::val(slug),
                Expr::val(name),
                Expr::val(description.map(str::to_owned)),
                Expr::val(bool_value(deleted, d)),
                Expr::val(ts_value(stamp.at, d)),
                Expr::val(stamp.event),
                Expr::val(now),
            ])
            .map_err(AuthError::internal)?
            .on_conflict(
                OnConflict::column(Alias::new("urn"))
                    .update_columns(
                        [
                            "name",
                            "description",
                            "deleted",
                            "provider_updated_at",
                            "provider_event_id",
                            "updated_at",
                        ]
                        .map(Alias::new),
                    )
                    .to_owned(),
            ),
    )
    .await?;
    Ok(Applied::Applied)
}

#[allow(clippy::too_many_arguments)]
async fn put_membership(
    tx: &mut Tx,
    organization: &str,
    user: &str,
    membership_id: &str,
    email: Option<&str>,
    roles: &[RoleRef],
    deleted: bool,
    stamp: Stamp<'_>,
) -> Result<Applied, AuthError> {
    let at = stamp.at;
    let keys = [
        ("provider_org_id", organization),
        ("provider_user_id", user),
    ];
    if is_stale(tx, SYNC_MEMBERSHIPS, &keys, stamp).await? {
        return Ok(Applied::Stale);
    }
    let d = tx.dialect();
    let email_lower = email.map(|e| e.trim().to_lowercase());
    // A local user with the email is linked now; otherwise at its first sign-in.
    let local = match &email_lower {
        Some(e) => {
            let rows = tx
                .fetch_all(
                    users::select_users(tx.names())
                        .and_where(Expr::col(Alias::new("email_lower")).eq(e.as_str()))
                        .limit(1),
                )
                .await?;
            users::user_rows(&rows)?
                .into_iter()
                .next()
                // Only an address the user proved (an accepted invitation, a verification):
                // anyone can sign up with someone else's email.
                .filter(|u| u.status != UserStatus::Suspended && u.email_verified)
                .map(|u| u.id)
        }
        None => None,
    };
    let local_value = match local {
        Some(id) => uuid_value(id, d),
        None => values::uuid_null(d),
    };
    let now = ts_value(values::now(), d);
    tx.execute(
        Query::insert()
            .into_table(tx.table(SYNC_MEMBERSHIPS))
            .columns(
                [
                    "provider_org_id",
                    "provider_user_id",
                    "membership_id",
                    "email_lower",
                    "user_id",
                    "deleted",
                    "provider_updated_at",
                    "provider_event_id",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(organization),
                Expr::val(user),
                Expr::val(membership_id),
                Expr::val(email_lower.clone()),
                Expr::val(local_value.clone()),
                Expr::val(bool_value(deleted, d)),
                Expr::val(ts_value(at, d)),
                Expr::val(stamp.event),
                Expr::val(now),
            ])
            .map_err(AuthError::internal)?
            .on_conflict(
                OnConflict::columns(["provider_org_id", "provider_user_id"].map(Alias::new))
                    .update_columns(
                        [
                            "membership_id",
                            "email_lower",
                            "user_id",
                            "deleted",
                            "provider_updated_at",
                            "provider_event_id",
                            "updated_at",
                        ]
                        .map(Alias::new),
                    )
                    .to_owned(),
            ),
    )
    .await?;
    // The membership's assignments are replaced by the event's set.
    tx.execute(
        Query::delete()
            .from_table(tx.table(SYNC_ASSIGNMENTS))
            .and_where(Expr::col(Alias::new("provider_org_id")).eq(organization))
            .and_where(Expr::col(Alias::new("provider_user_id")).eq(user)),
    )
    .await?;
    if !deleted {
        let mut urns: Vec<String> = roles.iter().map(|r| role_urn(r, organization)).collect();
        urns.sort();
        urns.dedup();
        for urn in urns {
            tx.execute(
                Query::insert()
                    .into_table(tx.table(SYNC_ASSIGNMENTS))
                    .columns(
                        [
                            "provider_org_id",
                            "provider_user_id",
                            "role_urn",
                            "membership_id",
                            "user_id",
                            "provider_updated_at",
                        ]
                        .map(Alias::new),
                    )
                    .values([
                        Expr::val(organization),
                        Expr::val(user),
                        Expr::val(urn),
                        Expr::val(membership_id),
                        Expr::val(local_value.clone()),
                        Expr::val(ts_value(at, d)),
                    ])
                    .map_err(AuthError::internal)?,
            )
            .await?;
        }
    }
    Ok(Applied::Applied)
}

/// Links the memberships (and assignments) carrying `email` to local user `id`, where no user is
/// linked yet: at sign-in, for a user whose email is verified.
pub(crate) async fn link_user(db: &Db, id: Uuid, email: &str) -> Result<(), AuthError> {
    let d = db.dialect();
    let email_lower = email.trim().to_lowercase();
    let rows = db
        .fetch_all(
            Query::select()
                .columns(["provider_org_id", "provider_user_id"].map(Alias::new))
                .from(db.table(SYNC_MEMBERSHIPS))
                .and_where(Expr::col(Alias::new("email_lower")).eq(email_lower.as_str()))
                .and_where(Expr::col(Alias::new("user_id")).is_null()),
        )
        .await?;
    let keys = rows
        .iter()
        .map(|r| {
            Ok((
                r.text(0usize)?.unwrap_or_default(),
                r.text(1usize)?.unwrap_or_default(),
            ))
        })
        .collect::<Result<Vec<_>, AuthError>>()?;
    if keys.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for (org, user) in keys {
        for table in [SYNC_MEMBERSHIPS, SYNC_ASSIGNMENTS] {
            tx.execute(
                Query::update()
                    .table(tx.table(table))
                    .value(Alias::new("user_id"), uuid_value(id, d))
                    .and_where(Expr::col(Alias::new("provider_org_id")).eq(org.as_str()))
                    .and_where(Expr::col(Alias::new("provider_user_id")).eq(user.as_str()))
                    .and_where(Expr::col(Alias::new("user_id")).is_null()),
            )
            .await?;
        }
    }
    tx.commit().await?;
    // The user's synced roles changed: what caches hold of it (its credentials, what `me`
    // answers) is forgotten, after the change, so nothing read before it is kept.
    crate::cache::announce_or_log(db, &crate::cache::Forget::User(id)).await;
    Ok(())
}
