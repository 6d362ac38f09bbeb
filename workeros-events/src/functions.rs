//! Event functions: async Rust handlers the host registers for events (collections, actions, a
//! DSL filter) or for cron schedules, run durably and never in the write's path.
//!
//! **Events.** Each event function has its own outbox consumer (`function:<name>`), registered by
//! [`Functions::start`]: the dispatcher turns the committed events it matches into
//! `function_runs` rows in the transaction that moves its cursor, so an event is neither missed
//! (a process that was down catches up) nor turned into two runs. An instance dispatches and
//! runs only the functions it has registered.
//!
//! **Cron.** A schedule (`*/5 * * * *`, or with seconds first, six fields) is due at each of its
//! slots. Every instance running the function inserts the run of each slot since it last looked
//! with `ON CONFLICT DO NOTHING` on `(function, slot)`: whichever instance is first makes the
//! run, the others make nothing, so a tick is neither lost while any instance runs nor doubled.
//! A start resumes after the newest slot run, at most [`FunctionsConfig::catch_up`] back (a
//! function never run starts at its first start); older missed slots are skipped, not replayed.
//!
//! **Runs.** Workers claim due runs with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), call
//! the handler, and record the outcome. A handler that returns an error, panics, or outlives the
//! lease is retried on [`FunctionsConfig::schedule`] (with jitter) and then marked failed; the
//! error is logged and kept on the run ([`Functions::runs`]). Handlers are at-least-once: a
//! process killed mid-run runs it again after the lease; make them idempotent (the run id is
//! given).

use crate::EventsError;
use crate::cron::parse_cron;
use crate::jobs::{
    Job as Work, PENDING, Stop, Workers, claim_due, dispatch_loop, jittered, next_delay, pump,
};
use crate::schema::FUNCTION_RUNS;
use crate::trigger::EventTrigger;
use futures::future::BoxFuture;
use sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;
use workeros_core::Event;
use workeros_dsl::BoundFilter;
use workeros_store::values::{RowRef, json_value, now, ts_null, ts_value, uuid_null, uuid_value};
use workeros_store::{Db, Names, Store};

/// What an event function's handler returns: `Err` with a message to retry.
pub type Outcome = Result<(), String>;

/// An event function's handler.
pub type EventHandler = Arc<dyn Fn(EventCall) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// A cron function's handler.
pub type CronHandler = Arc<dyn Fn(Tick) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// What an event function is called with.
#[derive(Debug, Clone, PartialEq)]
pub struct EventCall {
    /// The run's id: the same on every retry (for idempotence).
    pub run: Uuid,
    /// Which attempt this is (from 1).
    pub attempt: i64,
    /// The event.
    pub event: Event,
}

/// What a cron function is called with.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// The run's id: the same on every retry.
    pub run: Uuid,
    /// Which attempt this is (from 1).
    pub attempt: i64,
    /// The schedule slot this run is for.
    pub slot: OffsetDateTime,
}

/// How functions run.
#[derive(Debug, Clone)]
pub struct FunctionsConfig {
    /// The delay before each attempt; its length is the number of attempts.
    pub schedule: Vec<Duration>,
    /// How long a claimed run belongs to its worker; a handler still running after it is
    /// abandoned (and its run retried).
    pub lease: Duration,
    /// How often idle workers look for work, and cron for due slots.
    pub poll: Duration,
    /// Most runs in flight per process.
    pub concurrency: usize,
    /// Most events one dispatch transaction consumes.
    pub dispatch_batch: u64,
    /// How far back cron looks for slots that have no run yet.
    pub catch_up: Duration,
    /// How long finished runs are kept.
    pub retention: Duration,
    /// How often the workers prune.
    pub prune_every: Duration,
}

impl Default for FunctionsConfig {
    fn default() -> Self {
        Self {
            schedule: crate::jobs::DEFAULT_SCHEDULE.to_vec(),
            lease: Duration::from_secs(300),
            poll: Duration::from_secs(1),
            concurrency: 16,
            dispatch_batch: 500,
            catch_up: Duration::from_secs(300),
            retention: Duration::from_secs(30 * 24 * 3600),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// A run as [`Functions::runs`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// Its id.
    pub id: Uuid,
    /// The function.
    pub function: String,
    /// The event it is for (event functions).
    pub event_id: Option<Uuid>,
    /// The slot it is for (cron functions).
    pub slot: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

struct EventFn {
    name: String,
    trigger: EventTrigger,
    handler: EventHandler,
}

struct CronFn {
    name: String,
    schedule: cron::Schedule,
    handler: CronHandler,
    /// Slots after this have not been looked at by this instance.
    since: std::sync::Mutex<Option<OffsetDateTime>>,
}

#[derive(Clone)]
enum Handler {
    Event(EventHandler),
    Cron(CronHandler),
}

/// Registered functions and their workers. Cheap to clone.
#[derive(Clone)]
pub struct Functions {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: FunctionsConfig,
    events: RwLock<Vec<Arc<EventFn>>>,
    crons: RwLock<Vec<Arc<CronFn>>>,
    dispatch_wake: Notify,
    run_wake: Notify,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl workeros_core::EventSink for Functions {
    async fn deliver(&self, _events: &[Event]) -> Result<(), workeros_core::CoreError> {
        // The events are in the outbox; the dispatcher reads them there.
        self.inner.dispatch_wake.notify_one();
        Ok(())
    }
}

/// The outbox consumer of event function `name`.
fn consumer(name: &str) -> String {
    format!("function:{name}")
}

fn valid_name(name: &str) -> Result<(), EventsError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(EventsError::invalid(
            "name",
            format!("function name `{name}`: use 1 to 100 letters, digits, `_`, `-`, `.` or `:`"),
        ))
    }
}

impl Functions {
    /// Functions over `store` (register them, then [`start`](Functions::start)).
    pub fn new(store: Store, config: FunctionsConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                events: RwLock::new(Vec::new()),
                crons: RwLock::new(Vec::new()),
                dispatch_wake: Notify::new(),
                run_wake: Notify::new(),
            }),
        }
    }

    fn db(&self) -> &Db {
        self.inner.store.db()
    }

    fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .inner
            .events
            .read()
            .map(|v| v.iter().map(|f| f.name.clone()).collect())
            .unwrap_or_default();
        if let Ok(c) = self.inner.crons.read() {
            out.extend(c.iter().map(|f| f.name.clone()));
        }
        out
    }

    fn taken(&self, name: &str) -> Result<(), EventsError> {
        valid_name(name)?;
        if self.names().iter().any(|n| n == name) {
            return Err(EventsError::invalid(
                "name",
                format!("a function named `{name}` is registered already"),
            ));
        }
        Ok(())
    }

    /// Registers `handler` for the events `trigger` matches, under a unique `name` (its runs
    /// and outbox position are kept under it, across restarts).
    pub fn on_event<F, Fut>(
        &self,
        name: &str,
        trigger: EventTrigger,
        handler: F,
    ) -> Result<(), EventsError>
    where
        F: Fn(EventCall) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Outcome> + Send + 'static,
    {
        self.taken(name)?;
        trigger.check_shape("filter")?;
        let handler: EventHandler = Arc::new(move |c| Box::pin(handler(c)));
        self.inner
            .events
            .write()
            .map_err(EventsError::internal)?
            .push(Arc::new(EventFn {
                name: name.to_owned(),
                trigger,
                handler,
            }));
        Ok(())
    }

    /// Registers `handler` for the slots of cron `schedule` (five fields, or six with seconds
    /// first), under a unique `name`.
    pub fn on_cron<F, Fut>(&self, name: &str, schedule: &str, handler: F) -> Result<(), EventsError>
    where
        F: Fn(Tick) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Outcome> + Send + 'static,
    {
        self.taken(name)?;
        let schedule = parse_cron(schedule)?;
        let handler: CronHandler = Arc::new(move |t| Box::pin(handler(t)));
        self.inner
            .crons
            .write()
            .map_err(EventsError::internal)?
            .push(Arc::new(CronFn {
                name: name.to_owned(),
                schedule,
                handler,
                since: std::sync::Mutex::new(None),
            }));
        Ok(())
    }

    /// Registers the event functions' outbox consumers (events committed from now on reach
    /// them) and runs the dispatcher, cron and the workers until [`Workers::shutdown`] (or the
    /// handle's drop). Call it after registering, and after [`crate::migrate`].
    pub async fn start(&self) -> Result<Workers, EventsError> {
        let event_fns: Vec<Arc<EventFn>> = self
            .inner
            .events
            .read()
            .map_err(EventsError::internal)?
            .clone();
        for f in &event_fns {
            workeros_store::register_consumer(self.db(), &consumer(&f.name)).await?;
        }
        let crons: Vec<Arc<CronFn>> = self
            .inner
            .crons
            .read()
            .map_err(EventsError::internal)?
            .clone();
        for c in &crons {
            let since = crate::cron::resume_after(
                self.db(),
                FUNCTION_RUNS,
                "function",
                c.name.as_str().into(),
                now(),
            )
            .await?;
            if let Ok(mut s) = c.since.lock() {
                *s = Some(since);
            }
        }
        let (a, b, c) = (self.clone(), self.clone(), self.clone());
        Ok(Workers::spawn(vec![
            Box::new(move |stop| Box::pin(a.schedule_loop(stop))),
            Box::new(move |stop| Box::pin(b.run_loop(stop))),
            Box::new(move |stop| Box::pin(c.prune_loop(stop))),
        ]))
    }

    /// Turns committed events into runs of the event functions, and due cron slots into runs of
    /// the cron functions; returns how many events it consumed.
    pub async fn dispatch_once(&self) -> Result<usize, EventsError> {
        let event_fns: Vec<Arc<EventFn>> = self
            .inner
            .events
            .read()
            .map_err(EventsError::internal)?
            .clone();
        let mut consumed = 0;
        let mut made = 0;
        let mut failed = None;
        // One function's trouble does not hold up the others, nor cron.
        for f in &event_fns {
            match self.dispatch_function(f).await {
                Ok((c, m)) => {
                    consumed += c;
                    made += m;
                }
                Err(e) => {
                    tracing::warn!(function = f.name, error = %e, "function dispatch failed; retrying");
                    failed = Some(e);
                }
            }
        }
        made += self.cron_once().await?;
        if made > 0 {
            self.inner.run_wake.notify_one();
        }
        match failed {
            Some(e) if consumed == 0 => Err(e),
            _ => Ok(consumed),
        }
    }

    /// Turns the committed events `f` has not read into its runs; returns (events consumed,
    /// runs made).
    async fn dispatch_function(&self, f: &EventFn) -> Result<(usize, usize), EventsError> {
        let mut filters = Filters::new();
        // The filters are bound before the claim (nothing but the claim's transaction may
        // touch the database while it is held); a batch with an unbound (tenant,
        // collection) is let go, the pair bound, and the batch claimed again.
        let mut tries = 0;
        let (mut claim, events) = loop {
            tries += 1;
            let Some(claim) = self
                .inner
                .store
                .claim_outbox(&consumer(&f.name), self.inner.config.dispatch_batch)
                .await?
            else {
                break (None, Vec::new());
            };
            let events: Vec<Event> = claim.events().to_vec();
            let missing: Vec<(String, String)> = match &f.trigger.filter {
                None => Vec::new(),
                Some(_) => events
                    .iter()
                    .filter(|e| f.trigger.collections.contains(&e.collection))
                    .map(|e| (e.tenant.clone(), e.collection.clone()))
                    .filter(|k| !filters.contains_key(k))
                    .collect(),
            };
            if missing.is_empty() {
                break (Some(claim), events);
            }
            if tries > 3 {
                // New (tenant, collection) pairs keep arriving: leave the batch for the
                // next round rather than consume it unmatched.
                return Err(EventsError::internal(format!(
                    "function `{}`: its filter could not be bound for every collection of the batch",
                    f.name
                )));
            }
            drop(claim);
            for (tenant, collection) in missing {
                let bound = match &f.trigger.filter {
                    Some(filter) => {
                        crate::trigger::bind(
                            &self.inner.store,
                            "functions",
                            &tenant,
                            &collection,
                            filter,
                        )
                        .await?
                    }
                    None => None,
                };
                filters.insert((tenant, collection), bound);
            }
        };
        let Some(mut claim) = claim.take() else {
            return Ok((0, 0));
        };
        let at = now();
        let mut made = 0;
        for e in events.iter().filter(|e| wants(f, e, &filters)) {
            made += 1;
            let payload = serde_json::to_value(e).map_err(EventsError::internal)?;
            claim
                .tx()
                .execute(&insert_run(
                    self.db().names(),
                    &f.name,
                    Some(e.id),
                    None,
                    Some(&payload),
                    at,
                )?)
                .await?;
        }
        claim.commit().await?;
        Ok((events.len(), made))
    }

    /// Makes the runs of the cron slots of the catch-up window that have none; returns how many
    /// this instance made.
    async fn cron_once(&self) -> Result<usize, EventsError> {
        let crons: Vec<Arc<CronFn>> = self
            .inner
            .crons
            .read()
            .map_err(EventsError::internal)?
            .clone();
        let to = now();
        let mut made = 0;
        for c in &crons {
            let since = c.since.lock().ok().and_then(|s| *s).unwrap_or(to);
            let (due, reached) =
                crate::cron::due_slots(&c.schedule, since, to, self.inner.config.catch_up);
            for slot in due {
                let n = self
                    .db()
                    .execute(&insert_run(
                        self.db().names(),
                        &c.name,
                        None,
                        Some(slot),
                        None,
                        to,
                    )?)
                    .await?;
                made += usize::try_from(n).unwrap_or(0);
            }
            if let Ok(mut s) = c.since.lock() {
                *s = Some(reached);
            }
        }
        Ok(made)
    }

    /// Deletes finished runs (of every function) last changed before `before`; returns how many.
    /// The slot of a function's newest run is what a start resumes after, so keep `before`
    /// older than [`FunctionsConfig::catch_up`].
    pub async fn prune(&self, before: OffsetDateTime) -> Result<u64, EventsError> {
        crate::jobs::prune_finished(self.db(), FUNCTION_RUNS, "updated_at", before, &[]).await
    }

    async fn prune_loop(self, stop: Stop) {
        let c = &self.inner.config;
        crate::jobs::every(stop, c.prune_every, "function run pruning", || {
            self.prune(now() - c.retention)
        })
        .await;
    }

    async fn schedule_loop(self, stop: Stop) {
        let c = &self.inner.config;
        dispatch_loop(
            stop,
            &self.inner.dispatch_wake,
            c.poll,
            c.dispatch_batch,
            "function dispatch",
            || self.dispatch_once(),
        )
        .await;
    }

    /// Claims up to `n` due runs of the functions registered here.
    async fn claim_runs(&self, n: usize, claim: Uuid) -> Result<Vec<Job>, EventsError> {
        let names = self.names();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let rows = claim_due(
            self.db(),
            FUNCTION_RUNS,
            &["id", "function", "event_id", "slot", "payload", "attempts"],
            Some(Expr::col(Alias::new("function")).is_in(names)),
            n,
            self.inner.config.lease,
            claim,
        )
        .await?;
        rows.iter().map(|r| self.job(r, claim)).collect()
    }

    /// Claims due runs of the functions registered here, runs them, records the outcomes;
    /// returns how many it ran. The workers do this continuously; hosts without workers may
    /// call it.
    pub async fn run_due(&self) -> Result<usize, EventsError> {
        let jobs = self
            .claim_work(self.inner.config.concurrency.max(1))
            .await?;
        let n = jobs.len();
        self.record_all(crate::jobs::run_all(jobs).await).await?;
        Ok(n)
    }

    /// Keeps up to `concurrency` runs in flight, recording each as it ends.
    async fn run_loop(self, stop: Stop) {
        let c = &self.inner.config;
        pump(
            stop,
            &self.inner.run_wake,
            c.poll,
            c.concurrency,
            c.lease,
            "function runs",
            |n| self.claim_work(n),
            |done: Vec<Done>| self.record_all(done),
        )
        .await;
    }

    /// Claims up to `n` due runs, each ready to execute on its own task.
    async fn claim_work(&self, n: usize) -> Result<Vec<Work<Done>>, EventsError> {
        let jobs = self.claim_runs(n, Uuid::now_v7()).await?;
        Ok(jobs
            .into_iter()
            .map(|job| {
                let this = self.clone();
                Box::pin(async move { this.execute(job).await }) as Work<Done>
            })
            .collect())
    }

    async fn record_all(&self, done: Vec<Done>) -> Result<(), EventsError> {
        for d in done {
            self.record(d).await?;
        }
        Ok(())
    }

    fn handler(&self, name: &str) -> Option<Handler> {
        if let Some(f) = self
            .inner
            .events
            .read()
            .ok()?
            .iter()
            .find(|f| f.name == name)
        {
            return Some(Handler::Event(f.handler.clone()));
        }
        self.inner
            .crons
            .read()
            .ok()?
            .iter()
            .find(|f| f.name == name)
            .map(|f| Handler::Cron(f.handler.clone()))
    }

    fn job(&self, r: RowRef<'_>, claim: Uuid) -> Result<Job, EventsError> {
        let id = Uuid::try_parse(&r.uuid_text("id")?.unwrap_or_default())
            .map_err(EventsError::internal)?;
        let name = r.text("function")?.unwrap_or_default();
        let attempts = r.int("attempts")?.unwrap_or(0) + 1;
        let call = match self.handler(&name) {
            Some(Handler::Event(h)) => {
                let event: Option<Event> = r
                    .json("payload")?
                    .and_then(|p| serde_json::from_value(p).ok());
                event.map(|event| {
                    let c = EventCall {
                        run: id,
                        attempt: attempts,
                        event,
                    };
                    h(c)
                })
            }
            Some(Handler::Cron(h)) => r.ts("slot")?.map(|slot| {
                let t = Tick {
                    run: id,
                    attempt: attempts,
                    slot,
                };
                h(t)
            }),
            None => None,
        };
        Ok(Job {
            id,
            claim,
            name,
            attempts,
            call,
        })
    }

    /// Runs one job's handler within the lease; a panic or an overrun is a failure.
    async fn execute(&self, job: Job) -> Done {
        let Some(call) = job.call else {
            return Done {
                id: job.id,
                claim: job.claim,
                attempts: job.attempts,
                outcome: Err("the run's input is unreadable".into()),
            };
        };
        let limit = self.inner.config.lease.mul_f64(0.9);
        // The handler runs on its own task (a panic is caught); the guard aborts it when this
        // future is dropped (workers aborted) or times out, so a retry never runs beside it.
        let mut task = AbortOnDrop(tokio::spawn(call));
        let outcome = match tokio::time::timeout(limit, &mut task.0).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) if e.is_panic() => Err("the handler panicked".into()),
            Ok(Err(_)) => Err("the handler was cancelled".into()),
            Err(_) => Err("the handler did not finish within the lease".into()),
        };
        drop(task);
        if let Err(e) = &outcome {
            tracing::warn!(function = job.name, run = %job.id, attempt = job.attempts, error = %e, "function failed");
        }
        Done {
            id: job.id,
            claim: job.claim,
            attempts: job.attempts,
            outcome,
        }
    }

    async fn record(&self, done: Done) -> Result<(), EventsError> {
        let Done {
            id,
            claim,
            attempts,
            outcome,
        } = done;
        let d = self.db().dialect();
        let at = now();
        let next = next_delay(&self.inner.config.schedule, attempts);
        let (state, error) = match (&outcome, next) {
            (Ok(()), _) => ("succeeded", None),
            (Err(e), Some(_)) => (PENDING, Some(e.clone())),
            (Err(e), None) => ("failed", Some(e.clone())),
        };
        self.db()
            .execute(
                Query::update()
                    .table(self.db().table(FUNCTION_RUNS))
                    .value(Alias::new("state"), state)
                    .value(Alias::new("attempts"), attempts)
                    .value(
                        Alias::new("next_at"),
                        ts_value(at + jittered(next.unwrap_or_default()), d),
                    )
                    .value(Alias::new("lease_until"), ts_null(d))
                    .value(Alias::new("claim"), uuid_null(d))
                    .value(Alias::new("last_error"), error)
                    .value(Alias::new("updated_at"), ts_value(at, d))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, d)))
                    .and_where(Expr::col(Alias::new("claim")).eq(uuid_value(claim, d))),
            )
            .await?;
        Ok(())
    }

    /// The runs of function `name`, newest first (at most `limit`, up to 500).
    pub async fn runs(&self, name: &str, limit: u64) -> Result<Vec<Run>, EventsError> {
        let rows = self
            .db()
            .fetch_page(
                Query::select()
                    .columns(
                        [
                            "id",
                            "function",
                            "event_id",
                            "slot",
                            "state",
                            "attempts",
                            "last_error",
                            "created_at",
                            "updated_at",
                        ]
                        .map(Alias::new),
                    )
                    .from(self.db().table(FUNCTION_RUNS))
                    .and_where(Expr::col(Alias::new("function")).eq(name))
                    .order_by(Alias::new("created_at"), Order::Desc)
                    .order_by(Alias::new("id"), Order::Desc),
                limit.clamp(1, 500),
                0,
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            out.push(Run {
                id: Uuid::try_parse(&r.uuid_text("id")?.unwrap_or_default())
                    .map_err(EventsError::internal)?,
                function: r.text("function")?.unwrap_or_default(),
                event_id: r
                    .uuid_text("event_id")?
                    .and_then(|s| Uuid::try_parse(&s).ok()),
                slot: r.ts_text("slot")?,
                state: r.text("state")?.unwrap_or_default(),
                attempts: r.int("attempts")?.unwrap_or(0),
                last_error: r.text("last_error")?,
                created_at: r.ts_text("created_at")?.unwrap_or_default(),
                updated_at: r.ts_text("updated_at")?.unwrap_or_default(),
            });
        }
        Ok(out)
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A run that ended (this attempt).
struct Done {
    id: Uuid,
    claim: Uuid,
    attempts: i64,
    outcome: Outcome,
}

/// A claimed run: its handler call, ready to go.
struct Job {
    id: Uuid,
    claim: Uuid,
    name: String,
    attempts: i64,
    call: Option<BoxFuture<'static, Outcome>>,
}

/// Bound filters by (tenant, collection).
type Filters = HashMap<(String, String), Option<BoundFilter>>;

/// Whether event function `f` receives `e`.
fn wants(f: &EventFn, e: &Event, filters: &Filters) -> bool {
    f.trigger.selects(e, || {
        filters
            .get(&(e.tenant.clone(), e.collection.clone()))
            .and_then(Option::as_ref)
    })
}

fn insert_run(
    names: &Names,
    name: &str,
    event: Option<Uuid>,
    slot: Option<OffsetDateTime>,
    payload: Option<&Json>,
    at: OffsetDateTime,
) -> Result<sea_query::InsertStatement, EventsError> {
    let d = names.dialect();
    let conflict = if event.is_some() { "event_id" } else { "slot" };
    Ok(Query::insert()
        .into_table(names.table(FUNCTION_RUNS))
        .columns(
            [
                "id",
                "function",
                "event_id",
                "slot",
                "payload",
                "state",
                "attempts",
                "next_at",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values([
            Expr::val(uuid_value(Uuid::now_v7(), d)),
            Expr::val(name),
            Expr::val(event.map_or_else(|| uuid_null(d), |e| uuid_value(e, d))),
            Expr::val(slot.map_or_else(|| ts_null(d), |s| ts_value(s, d))),
            Expr::val(json_value(payload, d)),
            Expr::val(PENDING),
            Expr::val(0_i64),
            Expr::val(ts_value(at, d)),
            Expr::val(ts_value(at, d)),
            Expr::val(ts_value(at, d)),
        ])
        .map_err(EventsError::internal)?
        .on_conflict(
            sea_query::OnConflict::columns([Alias::new("function"), Alias::new(conflict)])
                .do_nothing()
                .to_owned(),
        )
        .to_owned())
}
