//! SQLite's one writer, with group commit.
//!
//! SQLite lets one transaction write at a time. The [`Writer`] of a [`Db`](crate::Db) (shared by
//! its clones) queues the process's write transactions, first come first served, in a queue that
//! hands over at once (SQLite's busy handler sleeps between tries), and lets writes that arrive
//! together share one SQLite transaction, a *group*, and so one commit:
//!
//! - the first write of a group opens it (`BEGIN IMMEDIATE`, sent with its first statement);
//!   each write then runs inside a savepoint of its own, opened with its first statement in the
//!   same call, so a write that fails, or is dropped without committing, rolls back to that
//!   savepoint alone (`ROLLBACK TO`) and the writes before it keep what they wrote;
//! - a write that commits while others wait for their turn hands the group on and waits; the
//!   group commits when nobody waits, or when it holds [`MAX_MEMBERS`] writes or has been open
//!   [`MAX_AGE`] (the defaults; [`Db::with_group_commit`](crate::Db::with_group_commit)); only
//!   then does each member's commit return. A write is acknowledged after the
//!   commit that makes it durable, never before;
//! - if the group's commit fails, or a statement fails in a way that ends SQLite's transaction
//!   (a full disk, an I/O error: the member's `ROLLBACK TO` then finds no savepoint), the group
//!   is rolled back and the commit of every member still in it fails: none was acknowledged.
//!
//! A write alone — it has run nothing yet, nobody else is in its group and nobody waits — sends
//! its last statements between the group's `BEGIN IMMEDIATE` and `COMMIT` in one call
//! ([`Member::commit_with`]), without a savepoint: one round trip to SQLite's thread. One that
//! has run statements (an update's read of its row) and is still alone sends `COMMIT` with its
//! last statements.
//!
//! A group of several writes commits in a task of its own, so a request dropped while its
//! group commits cannot leave the other members without an answer (a write alone in its group
//! commits in its own request). A group dropped mid-transaction closes its connection instead of
//! returning it to the pool. Nothing here runs on PostgreSQL, whose
//! transactions write side by side.

use crate::StoreError;
use futures::StreamExt;
use sea_query_sqlx::SqlxValues;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Either, Executor, Sqlite, SqliteConnection};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// The most writes one group holds before it commits.
pub(crate) const MAX_MEMBERS: usize = 32;

/// The longest a group stays open while writes keep arriving: the wait a write's commit can
/// add to the writes before it in the group.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(10);

/// How a member opens its savepoint: prefixed to its first statement (one round trip for both).
const SAVEPOINT: &str = "SAVEPOINT workeros_write;\n";

/// Rolls the latest member back to its savepoint; the savepoint stays, empty, on the stack.
const ROLLBACK_TO: &str = "ROLLBACK TO workeros_write";

/// The queue of a database's write transactions and the group open now, if any. Clones share
/// both.
#[derive(Clone)]
pub(crate) struct Writer {
    slot: Arc<Mutex<Slot>>,
    /// Writers queued for their turn: a member that commits hands the group on when some wait.
    waiting: Arc<AtomicUsize>,
    counts: Arc<Counts>,
    limits: Limits,
}

/// When a group commits although writers still wait.
#[derive(Debug, Clone, Copy)]
struct Limits {
    members: usize,
    age: Duration,
}

impl Default for Writer {
    fn default() -> Writer {
        let counts = Arc::new(Counts::default());
        Writer {
            slot: Arc::new(Mutex::new(Slot {
                group: None,
                counts: counts.clone(),
            })),
            waiting: Arc::default(),
            counts,
            limits: Limits {
                members: MAX_MEMBERS,
                age: MAX_AGE,
            },
        }
    }
}

/// Groups committed and the writes in them.
#[derive(Default)]
struct Counts {
    groups: AtomicU64,
    writes: AtomicU64,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What the turn guards: the open group.
pub(crate) struct Slot {
    group: Option<Group>,
    counts: Arc<Counts>,
}

struct Group {
    /// The group's connection. Its transaction begins with the first statement of the first
    /// member that runs one (`BEGIN IMMEDIATE` sent with it, one round trip for both).
    conn: PoolConnection<Sqlite>,
    /// Whether a `BEGIN` may have run and no `COMMIT` or `ROLLBACK` has ended it since: a group
    /// dropped so closes its connection rather than hand the pool a connection mid-transaction.
    begun: bool,
    /// The members that committed and wait for the group's commit.
    parked: Vec<oneshot::Sender<Result<(), String>>>,
    opened: Instant,
    /// What the last member left behind for the next holder to undo.
    undo: Undo,
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.begun {
            self.conn.close_on_drop();
        }
    }
}

/// Begins the group's transaction, sent before the first member's first statement.
const BEGIN: &str = "BEGIN IMMEDIATE;\n";

/// What a member dropped without committing leaves for the next holder of the turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    Nothing,
    /// Its savepoint is open: roll back to it.
    Savepoint,
    /// It was dropped while its first statement, the one that opens its savepoint, ran: whether
    /// the savepoint exists is unknown, so the whole group goes (its members were not
    /// acknowledged yet).
    Group,
}

/// One write transaction in a group: it holds the writer's turn until it commits or is dropped.
pub(crate) struct Member {
    turn: Option<OwnedMutexGuard<Slot>>,
    waiting: Arc<AtomicUsize>,
    state: State,
    limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No statement yet, so no savepoint.
    Fresh,
    /// The first statement, which opens the savepoint, is under way.
    Opening,
    /// The savepoint is open.
    Open,
    /// A statement failed and the member was rolled back: it can only be dropped.
    Failed,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// The same writer with other limits: a group commits once it holds `members` writes or
    /// has been open `age` (`members` of 1 commits every write on its own).
    pub(crate) fn with_limits(mut self, members: usize, age: Duration) -> Writer {
        self.limits = Limits {
            members: members.max(1),
            age,
        };
        self
    }

    /// The groups committed so far and the writes in them.
    pub(crate) fn commits(&self) -> (u64, u64) {
        (
            self.counts.groups.load(Ordering::Relaxed),
            self.counts.writes.load(Ordering::Relaxed),
        )
    }

    /// Waits for the turn (at most `timeout`, then fails as SQLite's busy handler would) and
    /// joins the open group, or opens one on `pool`.
    pub(crate) async fn begin(
        &self,
        pool: &SqlitePool,
        timeout: Duration,
    ) -> Result<Member, StoreError> {
        let ticket = Ticket::new(self.slot.clone(), self.waiting.clone());
        let turn = tokio::time::timeout(timeout, self.slot.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?;
        ticket.served();
        let mut member = Member {
            turn: Some(turn),
            waiting: self.waiting.clone(),
            state: State::Fresh,
            limits: self.limits,
        };
        settle(member.slot()?).await;
        if member.slot()?.group.is_none() {
            let conn = pool.acquire().await?;
            member.slot()?.group = Some(Group {
                conn,
                begun: false,
                parked: Vec::new(),
                opened: Instant::now(),
                undo: Undo::Nothing,
            });
        }
        Ok(member)
    }
}

/// A writer's place in the queue: counted in `waiting` until served; dropped unserved
/// (a timeout, a cancelled request) after the holder may have handed the group on to it, it
/// sees that the group is not left open with nobody to commit it.
struct Ticket {
    slot: Arc<Mutex<Slot>>,
    waiting: Arc<AtomicUsize>,
    served: bool,
}

impl Ticket {
    fn new(slot: Arc<Mutex<Slot>>, waiting: Arc<AtomicUsize>) -> Ticket {
        waiting.fetch_add(1, Ordering::SeqCst);
        Ticket {
            slot,
            waiting,
            served: false,
        }
    }

    fn served(mut self) {
        self.served = true;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let (slot, waiting) = (self.slot.clone(), self.waiting.clone());
        spawn(async move {
            let turn = slot.lock_owned().await;
            finish(turn, waiting).await;
        });
    }
}

impl Member {
    fn slot(&mut self) -> Result<&mut Slot, StoreError> {
        self.turn
            .as_deref_mut()
            .ok_or_else(|| StoreError::internal("a write transaction was used after it ended"))
    }

    fn group(&mut self) -> Result<&mut Group, StoreError> {
        self.slot()?
            .group
            .as_mut()
            .ok_or_else(|| StoreError::internal("the write group is closed"))
    }

    /// The group's connection, for a statement of this member.
    fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if self.state == State::Failed {
            return Err(StoreError::internal(
                "a write transaction was used after a statement of it failed",
            ));
        }
        Ok(&mut self.group()?.conn)
    }

    /// Runs `sql` with `values` (several statements allowed) and returns the rows and the
    /// number of rows the statements changed; the first statement of the member opens its
    /// savepoint in the same call.
    pub(crate) async fn run(
        &mut self,
        sql: String,
        values: SqlxValues,
    ) -> Result<(Vec<SqliteRow>, u64), StoreError> {
        let opening = self.state == State::Fresh;
        // The statements of ours in front of the caller's: the group's `BEGIN` if it has not
        // run, and the member's savepoint.
        let mut ours = 0;
        let sql = if opening {
            let group = self.group()?;
            let begin = !group.begun;
            group.begun = true;
            let mut s = String::with_capacity(BEGIN.len() + SAVEPOINT.len() + sql.len());
            if begin {
                s.push_str(BEGIN);
                ours += 1;
            }
            s.push_str(SAVEPOINT);
            ours += 1;
            s.push_str(&sql);
            self.state = State::Opening;
            s
        } else {
            sql
        };
        let conn = self.conn()?;
        let mut rows = Vec::new();
        let mut changed = 0;
        let mut results = 0usize;
        let mut failure = None;
        {
            let mut stream = conn.fetch_many(sqlx::query_with(AssertSqlSafe(sql), values));
            while let Some(item) = stream.next().await {
                match item {
                    Ok(Either::Left(done)) => {
                        // `BEGIN`'s and the savepoint's results carry SQLite's count of the
                        // statement before them, not their own.
                        if results >= ours {
                            changed += done.rows_affected();
                        }
                        results += 1;
                    }
                    Ok(Either::Right(row)) => rows.push(row),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        if opening && results >= ours {
            self.state = State::Open;
        }
        match failure {
            None => Ok((rows, changed)),
            Some(e) => {
                if ours == 2
                    && results == 0
                    && let Ok(group) = self.group()
                {
                    // `BEGIN` itself failed: no transaction is open.
                    group.begun = false;
                }
                self.fail(results < ours, &e).await;
                Err(e.into())
            }
        }
    }

    /// Runs constant SQL (a migration's, DDL built from validated names) without values.
    pub(crate) async fn fixed(&mut self, sql: String) -> Result<(), StoreError> {
        self.run(sql, SqlxValues(sea_query::Values(Vec::new())))
            .await
            .map(drop)
    }

    /// After a failed statement: back to the savepoint, or, when there is none to go back to
    /// (SQLite ended the transaction, or the savepoint itself failed), the whole group.
    async fn fail(&mut self, before_savepoint: bool, e: &sqlx::Error) {
        self.state = State::Failed;
        let Some(turn) = self.turn.as_deref_mut() else {
            return;
        };
        if before_savepoint {
            abort(turn, e).await;
            return;
        }
        if let Some(group) = turn.group.as_mut()
            && let Err(undo) = group.conn.execute(ROLLBACK_TO).await
        {
            abort(turn, &undo).await;
        }
    }

    /// Runs `script` (its last statements, if any) and commits. A write that has run nothing
    /// yet, in a group nobody else has joined, while no other writer waits, is alone: its
    /// statements go between the group's `BEGIN IMMEDIATE` and `COMMIT` in one call, with no
    /// savepoint (a failure rolls back the group, which is this write alone). Otherwise as
    /// [`run`](Self::run) then [`commit`](Self::commit).
    pub(crate) async fn commit_with(
        mut self,
        script: Option<(String, SqlxValues)>,
    ) -> Result<(), StoreError> {
        let Some((sql, values)) = script else {
            return self.commit().await;
        };
        // Nobody waits and nobody else is in the group: the write's last statements may end it.
        let alone = self.waiting.load(Ordering::SeqCst) == 0
            && self
                .group()
                .is_ok_and(|g| g.parked.is_empty() && g.undo == Undo::Nothing);
        let begun = self.group().is_ok_and(|g| g.begun);
        match (alone, self.state, begun) {
            // It has run statements (its savepoint is open): `COMMIT` rides on its last ones. A
            // failure (of a statement or of the COMMIT) rolls the write back to its savepoint as
            // any failed statement does, or the group when that is in doubt.
            (true, State::Open, true) => {
                self.run(format!("{sql};\nCOMMIT"), values).await?;
                let mut turn = self.take_turn()?;
                ended_alone(&mut turn);
                Ok(())
            }
            // It has run nothing: `BEGIN IMMEDIATE`, its statements and `COMMIT` in one call.
            (true, State::Fresh, false) => {
                if let Ok(group) = self.group() {
                    group.begun = true;
                }
                // Dropped during the call, the write's outcome is unknown to the next holder: it
                // rolls back whatever is open (nothing, if the COMMIT ran).
                self.state = State::Opening;
                let script = format!("{BEGIN}{sql};\nCOMMIT");
                let outcome = self
                    .conn()?
                    .execute(sqlx::query_with(AssertSqlSafe(script), values))
                    .await;
                let mut turn = self.take_turn()?;
                match outcome {
                    Ok(_) => {
                        ended_alone(&mut turn);
                        Ok(())
                    }
                    Err(e) => {
                        // A statement failed (a conflict, a check): the transaction, this write's
                        // alone, rolls back and the error is the write's. Were the rollback to
                        // fail, the group's drop closes the connection rather than return it
                        // mid-transaction.
                        if let Some(mut group) = turn.group.take()
                            && group.conn.execute("ROLLBACK").await.is_ok()
                        {
                            group.begun = false;
                        }
                        Err(e.into())
                    }
                }
            }
            _ => {
                self.run(sql, values).await?;
                self.commit().await
            }
        }
    }

    /// Takes the turn out of the member, which then has ended (its drop does nothing).
    fn take_turn(&mut self) -> Result<OwnedMutexGuard<Slot>, StoreError> {
        self.turn
            .take()
            .ok_or_else(|| StoreError::internal("a write transaction was committed twice"))
    }

    /// Commits: waits for the group's commit, in which this member's writes become durable.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        if self.state == State::Failed {
            return Err(StoreError::internal(
                "a write transaction was committed after a statement of it failed",
            ));
        }
        let mut turn = self.take_turn()?;
        let Some(group) = turn.group.as_mut() else {
            return Err(StoreError::Database(lost(
                "the write group was rolled back",
            )));
        };
        let (done, outcome) = oneshot::channel();
        group.parked.push(done);
        let hand_on = self.waiting.load(Ordering::SeqCst) > 0
            && group.parked.len() < self.limits.members
            && group.opened.elapsed() < self.limits.age;
        if hand_on {
            drop(turn);
        } else if group.parked.len() == 1 {
            // Alone in the group: nobody else's answer depends on this commit, so it runs here.
            close(turn).await;
        } else {
            spawn(close(turn));
        }
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Database(lost(&e))),
            Err(_) => Err(StoreError::Database(lost(
                "the write group ended unanswered",
            ))),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let Some(mut turn) = self.turn.take() else {
            return;
        };
        if let Some(group) = turn.group.as_mut() {
            match self.state {
                State::Fresh | State::Failed => {}
                State::Opening => group.undo = Undo::Group,
                State::Open => group.undo = Undo::Savepoint,
            }
        }
        leave(turn, self.waiting.clone());
    }
}

/// Gives the turn back: to the next writer if one waits, else to a task that ends the group.
fn leave(turn: OwnedMutexGuard<Slot>, waiting: Arc<AtomicUsize>) {
    if turn.group.is_none() || waiting.load(Ordering::SeqCst) > 0 {
        return;
    }
    spawn(finish(turn, waiting));
}

/// Undoes a member left behind, then hands the group on if somebody waits or commits it.
async fn finish(mut turn: OwnedMutexGuard<Slot>, waiting: Arc<AtomicUsize>) {
    settle(&mut turn).await;
    if turn.group.is_some() && waiting.load(Ordering::SeqCst) == 0 {
        close(turn).await;
    }
}

/// Undoes the member before the new holder of the turn if it left without committing.
async fn settle(slot: &mut Slot) {
    let Some(group) = slot.group.as_mut() else {
        return;
    };
    match group.undo {
        Undo::Nothing => {}
        Undo::Savepoint => match group.conn.execute(ROLLBACK_TO).await {
            Ok(_) => group.undo = Undo::Nothing,
            Err(e) => abort(slot, &e).await,
        },
        Undo::Group => {
            let e = lost("a write was dropped while it opened its savepoint");
            abort(slot, &e).await;
        }
    }
}

/// Ends the group that one write, alone in it, has just committed with its last statements:
/// its connection goes back to the pool, and it counts as a group of one write.
fn ended_alone(slot: &mut Slot) {
    if let Some(mut group) = slot.group.take() {
        group.begun = false;
    }
    slot.counts.groups.fetch_add(1, Ordering::Relaxed);
    slot.counts.writes.fetch_add(1, Ordering::Relaxed);
}

/// Commits the group and answers its members.
async fn close(mut turn: OwnedMutexGuard<Slot>) {
    let Some(mut group) = turn.group.take() else {
        return;
    };
    let outcome = if group.begun {
        match group.conn.execute("COMMIT").await {
            Ok(_) => {
                group.begun = false;
                Ok(())
            }
            Err(e) => {
                if group.conn.execute("ROLLBACK").await.is_ok() {
                    group.begun = false;
                }
                Err(e)
            }
        }
    } else {
        Ok(())
    };
    if outcome.is_ok() {
        turn.counts.groups.fetch_add(1, Ordering::Relaxed);
        let writes = u64::try_from(group.parked.len()).unwrap_or(u64::MAX);
        turn.counts.writes.fetch_add(writes, Ordering::Relaxed);
    }
    drop(turn);
    let parked = std::mem::take(&mut group.parked);
    drop(group);
    let outcome = outcome.map_err(|e| {
        tracing::error!(error = %e, members = parked.len(), "a group commit failed");
        e.to_string()
    });
    for member in parked {
        let _ = member.send(outcome.clone());
    }
}

/// Rolls the whole group back after `e` and fails the members that wait for its commit.
async fn abort(slot: &mut Slot, e: &sqlx::Error) {
    let Some(mut group) = slot.group.take() else {
        return;
    };
    tracing::error!(error = %e, members = group.parked.len(), "a write group was rolled back");
    if group.begun && group.conn.execute("ROLLBACK").await.is_ok() {
        group.begun = false;
    }
    let parked = std::mem::take(&mut group.parked);
    drop(group);
    for member in parked {
        let _ = member.send(Err(format!("the write group was rolled back: {e}")));
    }
}

fn lost(e: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!("not committed: {e}")))
}

/// Runs `work` on the current runtime; with none (a write dropped outside one) the turn is
/// given back and the next writer settles the group.
fn spawn(work: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(work);
    }
}
