//! Sessions: an opaque random token in a cookie, only its SHA-256 stored; a sliding expiry
//! bounded by an absolute one.

use crate::AuthError;
use crate::config::AuthConfig;
use crate::schema::SESSIONS;
use crate::tokens;
use crate::users::{self, UserRow, UserStatus};
use sea_query::{Alias, Expr, ExprTrait, Query};
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

/// The session's sliding expiry is written back at most this often (a write per request would
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
/// expired or revoked session, or a user no longer active, is `Unauthorized`.
pub(crate) async fn authenticate(
    db: &Db,
    token: &str,
    cfg: &AuthConfig,
) -> Result<Subject, AuthError> {
    if !tokens::plausible(token) {
        return Err(AuthError::Unauthorized);
    }
    let d = db.dialect();
    let hash = tokens::digest(token);
    let q = users::credential_with_user(
        db.names(),
        SESSIONS,
        &[
            ("id", "session_id"),
            ("expires_at", "expires_at"),
            ("max_expires_at", "max_expires_at"),
        ],
        "token_hash",
        hash,
    );
    let rows = db.fetch_all(&q).await?;
    let Some(row) = rows.iter().next() else {
        return Err(AuthError::Unauthorized);
    };
    let user = UserRow::read(&row)?;
    let session_id = row.uuid_text("session_id")?.unwrap_or_default();
    let expires = row.ts("expires_at")?.unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let max = row
        .ts("max_expires_at")?
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let now = values::now();
    if now >= expires || now >= max || user.status != UserStatus::Active {
        return Err(AuthError::Unauthorized);
    }
    // Slide the idle expiry forward, at most once a minute.
    let slid = Ord::min(now.saturating_add(duration(cfg.session_idle)), max);
    if slid - expires >= Ord::min(SLIDE_EVERY, duration(cfg.session_idle) / 2) {
        db.execute(
            Query::update()
                .table(db.table(SESSIONS))
                .value(Alias::new("expires_at"), ts_value(slid, d))
                .and_where(Expr::col(Alias::new("id")).eq(uuid_value(
                    Uuid::try_parse(&session_id).map_err(AuthError::internal)?,
                    d,
                ))),
        )
        .await?;
    }
    let roles = users::roles_of(db, &user.tenant, user.id).await?;
    Ok(user.subject(roles, users::Credential::Session))
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
