//! One-time tokens: invitations, email verification and password reset. Each is 256 random bits
//! handed to the host's `EmailSender`; the database keeps its SHA-256, its purpose, its user and
//! its expiry. Consuming a token deletes it in the same transaction that acts on it, so a token
//! works once, and issuing a new token of a purpose replaces the user's older ones.

use crate::AuthError;
use crate::schema::ONE_TIME_TOKENS;
use crate::tokens;
use crate::users::UserRow;
use sea_query::{Alias, Expr, ExprTrait, Query};
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_store::values::{self, ts_value, uuid_value};
use workeros_store::{Db, Tx};

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Invite,
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// Issues a token of `purpose` for `user`, valid for `ttl`, replacing the user's older tokens of
/// that purpose. Returns the token (for the email) and its expiry.
pub(crate) async fn issue(
    tx: &mut Tx,
    user: &UserRow,
    purpose: Purpose,
    ttl: std::time::Duration,
) -> Result<(String, OffsetDateTime), AuthError> {
    let d = tx.dialect();
    forget(tx, user.id, Some(purpose)).await?;
    let token = tokens::random_token();
    let now = values::now();
    let expires = now.saturating_add(time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX));
    tx.execute(
        Query::insert()
            .into_table(tx.table(ONE_TIME_TOKENS))
            .columns(
                [
                    "id",
                    "token_hash",
                    "purpose",
                    "tenant_id",
                    "user_id",
                    "created_at",
                    "expires_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(Uuid::now_v7(), d)),
                Expr::val(tokens::digest(&token)),
                Expr::val(purpose.as_str()),
                Expr::val(user.tenant.as_str()),
                Expr::val(uuid_value(user.id, d)),
                Expr::val(ts_value(now, d)),
                Expr::val(ts_value(expires, d)),
            ])
            .map_err(AuthError::internal)?,
    )
    .await?;
    Ok((token, expires))
}

/// Consumes `token` for `purpose` in `tx`: the user it was issued for. Unknown, spent, expired
/// or other-purpose tokens are [`AuthError::InvalidToken`].
pub(crate) async fn consume(tx: &mut Tx, token: &str, purpose: Purpose) -> Result<Uuid, AuthError> {
    if !tokens::plausible(token) {
        return Err(AuthError::InvalidToken);
    }
    let hash = tokens::digest(token);
    let rows = tx
        .fetch_all(
            Query::select()
                .columns(["id", "user_id", "purpose", "expires_at"].map(Alias::new))
                .from(tx.table(ONE_TIME_TOKENS))
                .and_where(Expr::col(Alias::new("token_hash")).eq(hash.as_str()))
                .limit(1),
        )
        .await?;
    let Some(row) = rows.iter().next() else {
        return Err(AuthError::InvalidToken);
    };
    if row.text("purpose")?.as_deref() != Some(purpose.as_str()) {
        return Err(AuthError::InvalidToken);
    }
    let user = row
        .uuid_text("user_id")?
        .and_then(|s| Uuid::try_parse(&s).ok())
        .ok_or_else(|| AuthError::internal("a one-time token without a user"))?;
    let expired = row.ts("expires_at")?.is_none_or(|t| values::now() >= t);
    // Deleting is what makes it single-use: of two concurrent consumers, one deletes the row and
    // the other deletes nothing (PostgreSQL waits for the first; SQLite's write lock serialises).
    let n = tx
        .execute(
            Query::delete()
                .from_table(tx.table(ONE_TIME_TOKENS))
                .and_where(Expr::col(Alias::new("token_hash")).eq(hash)),
        )
        .await?;
    if n != 1 || expired {
        return Err(AuthError::InvalidToken);
    }
    Ok(user)
}

/// Checks, without using it, that `token` is a live token for `purpose`: done before the costly
/// work a token allows (hashing a new password), so that junk tokens cost a lookup only.
pub(crate) async fn check(db: &Db, token: &str, purpose: Purpose) -> Result<(), AuthError> {
    if !tokens::plausible(token) {
        return Err(AuthError::InvalidToken);
    }
    let rows = db
        .fetch_all(
            Query::select()
                .columns(["purpose", "expires_at"].map(Alias::new))
                .from(db.table(ONE_TIME_TOKENS))
                .and_where(Expr::col(Alias::new("token_hash")).eq(tokens::digest(token)))
                .limit(1),
        )
        .await?;
    let live = match rows.iter().next() {
        Some(r) => {
            r.text(0usize)?.as_deref() == Some(purpose.as_str())
                && r.ts(1usize)?.is_some_and(|t| values::now() < t)
        }
        None => false,
    };
    if live {
        Ok(())
    } else {
        Err(AuthError::InvalidToken)
    }
}

/// Deletes user `id`'s tokens (of `purpose`, or all).
pub(crate) async fn forget(
    tx: &mut Tx,
    id: Uuid,
    purpose: Option<Purpose>,
) -> Result<(), AuthError> {
    let d = tx.dialect();
    let mut q = Query::delete();
    q.from_table(tx.table(ONE_TIME_TOKENS))
        .and_where(Expr::col(Alias::new("user_id")).eq(uuid_value(id, d)));
    if let Some(p) = purpose {
        q.and_where(Expr::col(Alias::new("purpose")).eq(p.as_str()));
    }
    tx.execute(&q).await?;
    Ok(())
}
