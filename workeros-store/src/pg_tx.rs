//! A PostgreSQL transaction that sends `BEGIN` when its first statement comes, not when it is
//! made (still a round trip of its own, then). A write whose statements all go with its commit
//! ([`Tx::commit_with`](crate::Tx::commit_with)) so never begins one: its statements are one
//! statement ([`pg_statement`](crate::statements::pg_statement)) in autocommit, which
//! PostgreSQL runs all or nothing — one round trip where `BEGIN`, each statement and `COMMIT`
//! were one each.

use crate::StoreError;
use crate::statements::{Write, pg_query, pg_statement};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres, Transaction};

/// A connection of the pool, and the transaction on it once a statement has begun one.
#[derive(Debug)]
pub(crate) enum PgTx {
    /// Nothing sent yet: the connection is outside any transaction.
    Idle(PoolConnection<Postgres>),
    /// `BEGIN` sent. Dropped without a commit, it rolls back (sqlx queues the `ROLLBACK`).
    Begun(Transaction<'static, Postgres>),
    /// Its `BEGIN` failed (the connection went back to the pool, rolled back).
    Failed,
}

impl PgTx {
    /// A transaction on `conn`, begun with its first statement.
    pub(crate) fn new(conn: PoolConnection<Postgres>) -> Self {
        Self::Idle(conn)
    }

    /// The connection inside the transaction, sending `BEGIN` first if nothing has.
    pub(crate) async fn conn(&mut self) -> Result<&mut PgConnection, StoreError> {
        if matches!(self, Self::Idle(_))
            && let Self::Idle(conn) = std::mem::replace(self, Self::Failed)
        {
            // `Transaction::begin` is how sqlx's own `Acquire::begin` makes an owned
            // transaction from a pool connection (hidden from its docs, public).
            *self = Self::Begun(Transaction::begin(conn, None).await?);
        }
        match self {
            Self::Begun(t) => Ok(&mut **t),
            Self::Idle(_) | Self::Failed => Err(StoreError::internal(
                "a PostgreSQL transaction whose BEGIN failed was used again",
            )),
        }
    }

    /// Runs `writes` (one statement) and commits: without a transaction when nothing began
    /// one, else inside it, then `COMMIT`.
    pub(crate) async fn commit_with(self, writes: &[Write]) -> Result<(), StoreError> {
        let stmt = pg_statement(writes);
        match self {
            Self::Idle(mut conn) => {
                if let Some((sql, values)) = stmt {
                    pg_query(sql, values).execute(&mut *conn).await?;
                }
            }
            Self::Begun(mut t) => {
                if let Some((sql, values)) = stmt {
                    pg_query(sql, values).execute(&mut *t).await?;
                }
                t.commit().await?;
            }
            Self::Failed => {
                return Err(StoreError::internal(
                    "a PostgreSQL transaction whose BEGIN failed was committed",
                ));
            }
        }
        Ok(())
    }
}
