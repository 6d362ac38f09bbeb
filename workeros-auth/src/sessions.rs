//! Sessions: an opaque random token in a cookie, only its SHA-256 stored; a sliding expiry
//! bounded by an absolute one.

use crate::AuthError;
use crate::cache::{Credentials, Entry, Kind};
use crate::config::AuthConfig;
use crate::schema::SESSIONS;
use crate::tokens;
use crate::users::{self, UserRow, UserStatus};
use sea_query::{Alias, Expr, ExprTrait, Query};
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_core::Subject;
use workeros_store::values::{self, ts_value, uuid_value};
use workeros_store::{Db, Tx};

/// A session just created: the token goes to the client (in the cookie) and nowhere else.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session token (256 random bits, URL-safe base64). Only its digest is stored.
    pub token: String,
    /// When the session ends however much it is used.
    pub max_expires_at: OffsetDateTime,
}

/// The session's sliding expiry is recorded at most this often (a write per request would
/// serialise readers on SQLite), or every half idle period when that is shorter; a session's idle
/// expiry is therefore accurate to a minute.
const SLIDE_EVERY: time::Duration = time::Duration::minutes(1);

fn duration(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Creates a session for `user` in `tx`.
pub(crate) async fn create(
    tx: &mut Tx,
    user: &UserRow,
    cfg: &AuthConfig,
) -> Result<NewSession, AuthError> {
    let d = tx.dialect();
    let token = tokens::random_token();
    let now = values::now();
    let max = now.saturating_add(duration(cfg.session_max));
    let idle = Ord::min(now.saturating_add(duration(cfg.session_idle)), max);
    tx.execute(
        Query::insert()
            .into_table(tx.table(SESSIONS))
            .columns(
                [
                    "id",
                    "token_hash",
                    "tenant_id",
                    "user_id",
                    "created_at",
                    "expires_at",
                    "max_expires_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(Uuid::now_v7(), d)),
                Expr::val(tokens::digest(&token)),
                Expr::val(user.tenant.as_str()),
                Expr::val(uuid_value(user.id, d)),
                Expr::val(ts_value(now, d)),
                Expr::val(ts_value(idle, d)),
                Expr::val(ts_value(max, d)),
            ])
            .map_err(AuthError::internal)?,
    )
    .await?;
    Ok(NewSession {
        token,
        max_expires_at: max,
    })
}

/// The subject of session `token`: its user, active, with its current roles. An unknown,
/// expired or revoked session, or a user no longer active, is `Unauthorized`. Resolved from
/// `creds` when cached there (no database round trip), else from the database and cached.
pub(crate) async fn authenticate(
    db: &Db,
    token: &str,
    cfg: &AuthConfig,
    creds: &Credentials,
) -> Result<Subject, AuthError> {
    if !tokens::plausible(token) {
        return Err(AuthError::Unauthorized);
    }
    let hash = tokens::digest(token);
    let now = values::now();
    if let Some(e) = creds.get(&hash)
        && let Kind::Session {
            id,
            idle_until,
            max,
        } = &e.kind
    {
        let idle = OffsetDateTime::from_unix_timestamp(idle_until.load(Ordering::Acquire))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        if now >= *max {
            return Err(AuthError::Unauthorized);
        }
        // Idle past its expiry as this process knows it: another instance may have slid it,
        // so the database decides.
        if now < idle {
            slide(creds, cfg, *id, idle_until, idle, *max, now);
            return Ok(e.subject.clone());
        }
    }
    let generation = creds.generation();
    let q = users::credential_with_user(
        db.names(),
        SESSIONS,
        &[
            ("id", "session_id"),
            ("expires_at", "expires_at"),
            ("max_expires_at", "max_expires_at"),
        ],
        "token_hash",
        hash.clone(),
    );
    let rows = db.fetch_all(&q).await?;
    let Some(row) = rows.iter().next() else {
        return Err(AuthError::Unauthorized);
    };
    let user = UserRow::read(&row)?;
    let session_id = Uuid::try_parse(&row.uuid_text("session_id")?.unwrap_or_default())
        .map_err(AuthError::internal)?;
    let expires = row.ts("expires_at")?.unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let max = row
        .ts("max_expires_at")?
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if now >= expires || now >= max || user.status != UserStatus::Active {
        return Err(AuthError::Unauthorized);
    }
    let roles = users::roles_of(db, &user.tenant, user.id).await?;
    let subject = user.subject(roles, users::Credential::Session);
    let idle_until = AtomicI64::new(expires.unix_timestamp());
    slide(creds, cfg, session_id, &idle_until, expires, max, now);
    let entry = Entry {
        subject: subject.clone(),
        user: user.id,
        kind: Kind::Session {
            id: session_id,
            idle_until,
            max,
        },
    };
    creds.insert(hash, entry, generation);
    Ok(subject)
}

/// Slides a session's idle expiry forward on use: recorded (and written, deferred) at most once
/// a minute, or every half idle period when that is shorter, so its idle expiry is accurate to
/// that.
fn slide(
    creds: &Credentials,
    cfg: &AuthConfig,
    id: Uuid,
    idle_until: &AtomicI64,
    idle: OffsetDateTime,
    max: OffsetDateTime,
    now: OffsetDateTime,
) {
    let slid = Ord::min(now.saturating_add(duration(cfg.session_idle)), max);
    if slid - idle >= Ord::min(SLIDE_EVERY, duration(cfg.session_idle) / 2) {
        idle_until.store(slid.unix_timestamp(), Ordering::Release);
        creds.touch_session(id, slid);
    }
}

/// Ends session `token` (logout). Unknown tokens are ignored.
pub(crate) async fn revoke(db: &Db, token: &str) -> Result<(), AuthError> {
    if !tokens::plausible(token) {
        return Ok(());
    }
    db.execute(
        Query::delete()
            .from_table(db.table(SESSIONS))
            .and_where(Expr::col(Alias::new("token_hash")).eq(tokens::digest(token))),
    )
    .await?;
    Ok(())
}

/// Ends every session of user `id` (password change, suspension, deletion).
pub(crate) async fn revoke_all(tx: &mut Tx, id: Uuid) -> Result<u64, AuthError> {
    let d = tx.dialect();
    Ok(tx
        .execute(
            Query::delete()
                .from_table(tx.table(SESSIONS))
                .and_where(Expr::col(Alias::new("user_id")).eq(uuid_value(id, d))),
        )
        .await?)
}

/// Deletes user `id`'s expired sessions (at login, so that the table does not grow).
pub(crate) async fn sweep(tx: &mut Tx, id: Uuid) -> Result<(), AuthError> {
    let d = tx.dialect();
    let now = ts_value(values::now(), d);
    tx.execute(
        Query::delete()
            .from_table(tx.table(SESSIONS))
            .and_where(Expr::col(Alias::new("user_id")).eq(uuid_value(id, d)))
            .and_where(
                Expr::col(Alias::new("expires_at"))
                    .lte(now.clone())
                    .or(Expr::col(Alias::new("max_expires_at")).lte(now)),
            ),
    )
    .await?;
    Ok(())
}
