//! API keys: `pak_` and 256 random bits, shown once; stored as a SHA-256 with a short display
//! prefix; optional expiry; `last_used_at` (recorded at most once a minute, deferred); revocable.
//! A key acts as its user, with the user's current roles: never more than the user. Resolved
//! keys are cached ([`crate::cache`]).

use crate::AuthError;
use crate::cache::{Credentials, Entry, Kind};
use crate::schema::API_KEYS;
use crate::tokens;
use crate::users::{self, Credential, UserRow, UserStatus};
use sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_core::Subject;
use workeros_core::instant::rfc3339;
use workeros_store::Db;
use workeros_store::values::{self, RowRef, ts_value, uuid_value};

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    /// Its id (for revocation).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The first characters of the key (`pak_` and 8 more), to recognise it.
    pub prefix: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it stops working, if ever.
    pub expires_at: Option<String>,
    /// When it was last used (accurate to a minute).
    pub last_used_at: Option<String>,
}

/// A key just created: `key` is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApiKey {
    /// The key as listed.
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    /// The key: send it as `Authorization: Bearer <key>`. It cannot be shown again.
    pub key: String,
}

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: time::Duration = time::Duration::minutes(1);

fn info(r: &RowRef<'_>) -> Result<ApiKeyInfo, AuthError> {
    Ok(ApiKeyInfo {
        id: r.uuid_text("id")?.unwrap_or_default(),
        name: r.text("name")?.unwrap_or_default(),
        prefix: r.text("display_prefix")?.unwrap_or_default(),
        created_at: r.ts("created_at")?.map(rfc3339).unwrap_or_default(),
        expires_at: r.ts("expires_at")?.map(rfc3339),
        last_used_at: r.ts("last_used_at")?.map(rfc3339),
    })
}

/// Creates a key for `user`, named `name`, expiring at `expires_at` (in the future) if given.
pub(crate) async fn create(
    db: &Db,
    user: &UserRow,
    name: &str,
    expires_at: Option<OffsetDateTime>,
) -> Result<NewApiKey, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AuthError::Validation(
            "an API key needs a name of 1 to 100 characters".into(),
        ));
    }
    let now = values::now();
    if expires_at.is_some_and(|t| t <= now) {
        return Err(AuthError::Validation(
            "`expiresAt` must be in the future".into(),
        ));
    }
    let d = db.dialect();
    let key = tokens::random_api_key();
    let prefix: String = key.chars().take(tokens::DISPLAY_PREFIX_LEN).collect();
    let id = Uuid::now_v7();
    db.execute(
        Query::insert()
            .into_table(db.table(API_KEYS))
            .columns(
                [
                    "id",
                    "key_hash",
                    "display_prefix",
                    "name",
                    "tenant_id",
                    "user_id",
                    "created_at",
                    "expires_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(id, d)),
                Expr::val(tokens::digest(&key)),
                Expr::val(prefix.as_str()),
                Expr::val(name),
                Expr::val(user.tenant.as_str()),
                Expr::val(uuid_value(user.id, d)),
                Expr::val(ts_value(now, d)),
                Expr::val(match expires_at {
                    Some(t) => ts_value(t, d),
                    None => values::ts_null(d),
                }),
            ])
            .map_err(AuthError::internal)?,
    )
    .await?;
    Ok(NewApiKey {
        info: ApiKeyInfo {
            id: id.hyphenated().to_string(),
            name: name.to_owned(),
            prefix,
            created_at: rfc3339(now),
            expires_at: expires_at.map(rfc3339),
            last_used_at: None,
        },
        key,
    })
}

/// The keys of user `id` that are not revoked, newest first.
pub(crate) async fn list(db: &Db, id: Uuid) -> Result<Vec<ApiKeyInfo>, AuthError> {
    let d = db.dialect();
    let rows = db
        .fetch_all(
            Query::select()
                .columns(
                    [
                        "id",
                        "name",
                        "display_prefix",
                        "created_at",
                        "expires_at",
                        "last_used_at",
                    ]
                    .map(Alias::new),
                )
                .from(db.table(API_KEYS))
                .and_where(Expr::col(Alias::new("user_id")).eq(uuid_value(id, d)))
                .and_where(Expr::col(Alias::new("revoked_at")).is_null())
                .order_by(Alias::new("id"), Order::Desc),
        )
        .await?;
    rows.iter().map(|r| info(&r)).collect()
}

/// Revokes key `key_id` of user `id`; `NotFound` when the user has no such live key.
pub(crate) async fn revoke(db: &Db, id: Uuid, key_id: &str) -> Result<(), AuthError> {
    let not_found = || AuthError::NotFound(format!("no API key `{key_id}`"));
    let key_id = Uuid::try_parse(key_id).map_err(|_| not_found())?;
    let d = db.dialect();
    let n = db
        .execute(
            Query::update()
                .table(db.table(API_KEYS))
                .value(Alias::new("revoked_at"), ts_value(values::now(), d))
                .and_where(Expr::col(Alias::new("id")).eq(uuid_value(key_id, d)))
                .and_where(Expr::col(Alias::new("user_id")).eq(uuid_value(id, d)))
                .and_where(Expr::col(Alias::new("revoked_at")).is_null()),
        )
        .await?;
    if n == 0 {
        return Err(not_found());
    }
    Ok(())
}

/// The subject of API key `key`: its user, active, with the user's current roles. Unknown,
/// revoked or expired keys are `Unauthorized`. Resolved from `creds` when cached there, else
/// from the database and cached.
pub(crate) async fn authenticate(
    db: &Db,
    key: &str,
    creds: &Credentials,
) -> Result<Subject, AuthError> {
    if !key.starts_with(tokens::API_KEY_PREFIX) || !tokens::plausible(key) {
        return Err(AuthError::Unauthorized);
    }
    let hash = tokens::digest(key);
    let now = values::now();
    if let Some(e) = creds.get(&hash)
        && let Kind::Key {
            id,
            expires,
            last_used,
        } = &e.kind
    {
        if expires.is_some_and(|t| now >= t) {
            return Err(AuthError::Unauthorized);
        }
        used(creds, *id, last_used, now);
        return Ok(e.subject.clone());
    }
    let generation = creds.generation();
    let rows = db
        .fetch_all(&users::credential_with_user(
            db.names(),
            API_KEYS,
            &[
                ("id", "key_id"),
                ("expires_at", "expires_at"),
                ("last_used_at", "last_used_at"),
                ("revoked_at", "revoked_at"),
            ],
            "key_hash",
            hash.clone(),
        ))
        .await?;
    let Some(row) = rows.iter().next() else {
        return Err(AuthError::Unauthorized);
    };
    let expires = row.ts("expires_at")?;
    if row.ts("revoked_at")?.is_some() || expires.is_some_and(|t| now >= t) {
        return Err(AuthError::Unauthorized);
    }
    let key_id = Uuid::try_parse(&row.uuid_text("key_id")?.unwrap_or_default())
        .map_err(|_| AuthError::internal("an API key row without ids"))?;
    let user = UserRow::read(&row)?;
    if user.status != UserStatus::Active {
        return Err(AuthError::Unauthorized);
    }
    let roles = users::roles_of(db, &user.tenant, user.id).await?;
    let subject = user.subject(roles, Credential::ApiKey);
    let last = row
        .ts("last_used_at")?
        .map_or(i64::MIN, |t| t.unix_timestamp());
    let last_used = AtomicI64::new(last);
    used(creds, key_id, &last_used, now);
    let entry = Entry {
        subject: subject.clone(),
        user: user.id,
        kind: Kind::Key {
            id: key_id,
            expires,
            last_used,
        },
    };
    creds.insert(hash, entry, generation);
    Ok(subject)
}

/// Records a key's use at `now` (deferred), at most once a minute.
fn used(creds: &Credentials, id: Uuid, last_used: &AtomicI64, now: OffsetDateTime) {
    let last = last_used.load(Ordering::Acquire);
    if now.unix_timestamp().saturating_sub(last) >= TOUCH_EVERY.whole_seconds()
        && last_used
            .compare_exchange(
                last,
                now.unix_timestamp(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    {
        creds.touch_key(id, now);
    }
}

/// Revokes every live key of user `id` (a password reset).
pub(crate) async fn revoke_all(tx: &mut workeros_store::Tx, id: Uuid) -> Result<u64, AuthError> {
    let d = tx.dialect();
    Ok(tx
        .execute(
            Query::update()
                .table(tx.table(API_KEYS))
                .value(Alias::new("revoked_at"), ts_value(values::now(), d))
                .and_where(Expr::col(Alias::new("user_id")).eq(uuid_value(id, d)))
                .and_where(Expr::col(Alias::new("revoked_at")).is_null()),
        )
        .await?)
}
