//! What the engines' workers share: rows claimed with a lease and retried on a schedule with
//! jitter ([`DEFAULT_SCHEDULE`]) and the loops that dispatch, run and prune; [`Workers`], the
//! handle every engine's `start` returns, is the store's (`workeros_store::workers`).
//!
//! A claimable table has `id`, `state` (`pending` while attempts remain), `next_at`,
//! `lease_until` and `claim`. A claim sets a lease and a token in one statement (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, so instances never take the same row; SQLite's single writer makes the
//! statement atomic); an outcome is written only where the token still matches, so a worker whose
//! lease ran out cannot overwrite the row's new owner.

use crate::EventsError;
use sea_query::{Alias, Expr, ExprTrait, Order, Query, SimpleExpr};
use std::time::Duration;
use uuid::Uuid;
use workeros_dsl::Dialect;
use workeros_store::SystemTable;
use workeros_store::values::{now, ts_value, uuid_value};
use workeros_store::{Db, Rows};

/// The retry schedule of the Standard Webhooks reference senders: the delay before each attempt.
pub const DEFAULT_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The state of a row that still has attempts to make.
pub(crate) const PENDING: &str = "pending";

/// 32 bytes from the operating system's random source.
pub(crate) fn random_bytes() -> Result<[u8; 32], EventsError> {
    let mut b = [0_u8; 32];
    getrandom::fill(&mut b).map_err(EventsError::internal)?;
    Ok(b)
}

/// `delay` stretched by up to 20 % of random jitter (so retries of many rows spread out).
pub(crate) fn jittered(delay: Duration) -> Duration {
    let r = random_bytes().map_or(0, |b| b[0]);
    delay + delay.mul_f64(f64::from(r) / 255.0 * 0.2)
}

/// The delay before the next attempt after `attempts` attempts, or `None` when the schedule is
/// spent.
pub(crate) fn next_delay(schedule: &[Duration], attempts: i64) -> Option<Duration> {
    usize::try_from(attempts)
        .ok()
        .and_then(|a| schedule.get(a))
        .copied()
}

/// Claims up to `n` due rows of `table` (and `only`, when given) for `lease` under token
/// `claim`; returns `columns` of the claimed rows.
pub(crate) async fn claim_due(
    db: &Db,
    table: SystemTable,
    columns: &[&str],
    only: Option<SimpleExpr>,
    n: usize,
    lease: Duration,
    claim: Uuid,
) -> Result<Rows, EventsError> {
    let d = db.dialect();
    let at = now();
    let mut due = Query::select();
    due.column(Alias::new("id"))
        .from(db.table(table))
        .and_where(Expr::col(Alias::new("state")).eq(PENDING))
        .and_where(Expr::col(Alias::new("next_at")).lte(ts_value(at, d)))
        .and_where(
            Expr::col(Alias::new("lease_until"))
                .is_null()
                .or(Expr::col(Alias::new("lease_until")).lte(ts_value(at, d))),
        )
        .order_by(Alias::new("next_at"), Order::Asc)
        .limit(n as u64);
    if let Some(o) = only {
        due.and_where(o);
    }
    if d == Dialect::Postgres {
        due.lock_with_behavior(
            sea_query::LockType::Update,
            sea_query::LockBehavior::SkipLocked,
        );
    }
    Ok(db
        .fetch_all(
            Query::update()
                .table(db.table(table))
                .value(Alias::new("lease_until"), ts_value(at + lease, d))
                .value(Alias::new("claim"), uuid_value(claim, d))
                .and_where(Expr::col(Alias::new("id")).in_subquery(due))
                .returning(Query::returning().columns(columns.iter().map(|c| Alias::new(*c)))),
        )
        .await?)
}

pub(crate) use workeros_store::workers::{Stop, Workers, every};

/// Waits for a wake-up, the poll interval or a stop; `true` when stopped.
async fn pause(stop: &mut Stop, wake: &tokio::sync::Notify, poll: Duration) -> bool {
    tokio::select! {
        () = wake.notified() => false,
        () = tokio::time::sleep(poll) => false,
        () = stop.wait() => true,
    }
}

/// How long a dispatcher woken by a write waits for the writes that follow it, so that one
/// claim (a write transaction of its own) takes many events: without it, every write of a
/// steady stream costs each dispatcher a transaction, which on SQLite queues behind the writes.
const GATHER: Duration = Duration::from_millis(10);

/// [`pause`] for a dispatcher: after a wake-up, [`GATHER`] more for the writes that follow.
async fn gather(stop: &mut Stop, wake: &tokio::sync::Notify, poll: Duration) -> bool {
    let woken = tokio::select! {
        () = wake.notified() => true,
        () = tokio::time::sleep(poll) => false,
        () = stop.wait() => return true,
    };
    if woken {
        tokio::select! {
            () = tokio::time::sleep(GATHER) => {}
            () = stop.wait() => return true,
        }
    }
    false
}

/// Runs `step` (a dispatch: events consumed) until stopped: again at once after a full batch,
/// else after a wake-up or the poll interval.
pub(crate) async fn dispatch_loop<F, Fut>(
    mut stop: Stop,
    wake: &tokio::sync::Notify,
    poll: Duration,
    batch: u64,
    what: &'static str,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, EventsError>>,
{
    let batch = usize::try_from(Ord::max(batch, 1)).unwrap_or(usize::MAX);
    while !stop.is_set() {
        match step().await {
            Ok(n) if n >= batch => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "{what} failed; retrying"),
        }
        if gather(&mut stop, wake, poll).await {
            break;
        }
    }
}

/// A claimed piece of work, ready to run on its own task.
pub(crate) type Job<O> = futures::future::BoxFuture<'static, O>;

/// Keeps up to `limit` jobs in flight until stopped: `claim(n)` gives up to `n` jobs; finished
/// jobs' outputs go to `record` in batches (whatever has finished when it looks). On stop, jobs
/// still running get `grace` to finish and be recorded; the rest are left to their leases.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn pump<O, C, CF, R, RF>(
    mut stop: Stop,
    wake: &tokio::sync::Notify,
    poll: Duration,
    limit: usize,
    grace: Duration,
    what: &'static str,
    mut claim: C,
    mut record: R,
) where
    O: Send + 'static,
    C: FnMut(usize) -> CF,
    CF: std::future::Future<Output = Result<Vec<Job<O>>, EventsError>>,
    R: FnMut(Vec<O>) -> RF,
    RF: std::future::Future<Output = Result<(), EventsError>>,
{
    let limit = limit.max(1);
    // Claims and records are round trips: claim when a quarter of the slots are free (or none
    // is busy), and record when a quarter of `limit` outcomes are waiting, nothing is in
    // flight, or the oldest has waited 10 ms.
    let chunk = (limit / 4).max(1);
    let mut set = tokio::task::JoinSet::new();
    let mut quiet = false;
    let mut done: Vec<O> = Vec::new();
    let mut since = tokio::time::Instant::now();
    while !stop.is_set() {
        let free = limit.saturating_sub(set.len());
        if !quiet && (free >= chunk || set.is_empty()) {
            match claim(free).await {
                Ok(jobs) => {
                    quiet = jobs.is_empty();
                    for j in jobs {
                        set.spawn(j);
                    }
                }
                Err(e) => {
                    quiet = true;
                    tracing::warn!(error = %e, "claiming {what} failed; retrying");
                }
            }
        }
        if set.is_empty() && done.is_empty() {
            if pause(&mut stop, wake, poll).await {
                break;
            }
            quiet = false;
            continue;
        }
        if !set.is_empty() {
            let flush_at = since + Duration::from_millis(10);
            tokio::select! {
                d = set.join_next() => {
                    if done.is_empty() {
                        since = tokio::time::Instant::now();
                    }
                    done.extend(d.and_then(Result::ok));
                }
                () = wake.notified() => quiet = false,
                () = tokio::time::sleep(poll) => quiet = false,
                () = tokio::time::sleep_until(flush_at), if !done.is_empty() => {}
                () = stop.wait() => {}
            }
            while let Some(d) = set.try_join_next() {
                done.extend(d.ok());
            }
        }
        let due =
            done.len() >= chunk || set.is_empty() || since.elapsed() >= Duration::from_millis(10);
        if !done.is_empty() && due {
            quiet = false;
            if let Err(e) = record(std::mem::take(&mut done)).await {
                tracing::warn!(error = %e, "recording {what} failed; their leases expire and they run again");
            }
        }
    }
    let deadline = tokio::time::Instant::now() + grace;
    while let Ok(Some(d)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        done.extend(d.ok());
    }
    if !done.is_empty()
        && let Err(e) = record(done).await
    {
        tracing::warn!(error = %e, "recording {what} at shutdown failed");
    }
}

/// Deletes the rows of `table` that are finished (not pending) and whose `time` column is before
/// `before`; `children` first: `(table, column)` pairs whose rows point at them.
pub(crate) async fn prune_finished(
    db: &Db,
    table: SystemTable,
    time: &str,
    before: time::OffsetDateTime,
    children: &[(SystemTable, &str)],
) -> Result<u64, EventsError> {
    let d = db.dialect();
    let old = || {
        Query::select()
            .column(Alias::new("id"))
            .from(db.table(table))
            .and_where(Expr::col(Alias::new("state")).ne(PENDING))
            .and_where(Expr::col(Alias::new(time)).lt(ts_value(before, d)))
            .to_owned()
    };
    let mut tx = db.begin().await?;
    for (child, column) in children {
        tx.execute(
            Query::delete()
                .from_table(db.table(*child))
                .and_where(Expr::col(Alias::new(*column)).in_subquery(old())),
        )
        .await?;
    }
    let n = tx
        .execute(
            Query::delete()
                .from_table(db.table(table))
                .and_where(Expr::col(Alias::new("id")).in_subquery(old())),
        )
        .await?;
    tx.commit().await?;
    Ok(n)
}

/// What identifies the set of rows of `table` whose `flag` column is true: how many there are
/// and the newest `updated_at` (any addition, change or removal changes it), read in `tx` (a
/// claim's transaction, so it is as of the claimed events).
pub(crate) async fn stamp(
    tx: &mut workeros_store::Tx,
    table: SystemTable,
    flag: &str,
) -> Result<(i64, Option<String>), EventsError> {
    let d = tx.dialect();
    let rows = tx
        .fetch_all(
            Query::select()
                .expr_as(Expr::col(Alias::new("id")).count(), Alias::new("n"))
                .expr_as(Expr::col(Alias::new("updated_at")).max(), Alias::new("at"))
                .from(tx.table(table))
                .and_where(
                    Expr::col(Alias::new(flag)).eq(workeros_store::values::bool_value(true, d)),
                ),
        )
        .await?;
    let Some(r) = rows.iter().next() else {
        return Ok((0, None));
    };
    Ok((r.int("n")?.unwrap_or(0), r.ts_text("at")?))
}

/// The stamp of rows already loaded: their count and newest `updated_at`.
pub(crate) fn stamp_of<'a>(updated: impl Iterator<Item = &'a str>) -> (i64, Option<String>) {
    let mut n = 0_i64;
    let mut newest: Option<&str> = None;
    for u in updated {
        n += 1;
        if newest.is_none_or(|m| u > m) {
            newest = Some(u);
        }
    }
    (n, newest.map(str::to_owned))
}

/// Runs `jobs` on their own tasks and returns their outputs (a job that panicked gives none):
/// the one-shot form of [`pump`], for hosts and tests without workers.
pub(crate) async fn run_all<O: Send + 'static>(jobs: Vec<Job<O>>) -> Vec<O> {
    let mut set = tokio::task::JoinSet::new();
    for j in jobs {
        set.spawn(j);
    }
    let mut out = Vec::with_capacity(set.len());
    while let Some(o) = set.join_next().await {
        out.extend(o.ok());
    }
    out
}
