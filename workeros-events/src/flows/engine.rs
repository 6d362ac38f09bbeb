//! The [`Flows`] handle: its state (the cache of active flows, the schedules' positions, the
//! limit on runs in requests), its construction, its workers and the pruning they do.

use super::model::{CONSUMER, Flow, FlowsConfig};
use crate::EventsError;
use crate::guard::Guard;
use crate::jobs::{Stop, Workers};
use crate::schema::FLOW_RUNS;
use crate::shares::Shares;
use crate::signing::Secret;
use crate::trigger::EventTrigger;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;
use workeros_core::{EmailSender, Event};
use workeros_dsl::BoundFilter;
use workeros_store::values::now;
use workeros_store::{Db, Store};

/// A flow as the engine needs it.
#[derive(Clone)]
pub(super) struct Loaded {
    pub(super) flow: Flow,
    /// The events its trigger selects (an `event` trigger).
    pub(super) events: Option<EventTrigger>,
    pub(super) tenant: String,
    pub(super) secret: Secret,
    pub(super) schedule: Option<cron::Schedule>,
}

/// Flows of every tenant: the admin API, the dispatcher, cron and the workers. Register it as
/// an [`EventSink`](workeros_core::EventSink) so writes wake the dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Flows {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) guard: Guard,
    pub(super) email: Option<Arc<dyn EmailSender>>,
    pub(super) config: FlowsConfig,
    pub(super) dispatch_wake: Notify,
    pub(super) run_wake: Notify,
    pub(super) cache: tokio::sync::Mutex<Option<(Instant, Active)>>,
    /// Manual and incoming-webhook runs executing now, shared fairly between tenants.
    pub(super) sync_runs: Shares,
    /// The workers running queued runs, shared fairly between tenants.
    pub(super) workers: Shares,
    /// Per schedule flow: slots after this were looked at.
    pub(super) since: std::sync::Mutex<HashMap<Uuid, OffsetDateTime>>,
    /// Per tenant: the minute's window of outgoing requests (start, count).
    pub(super) outgoing: std::sync::Mutex<HashMap<String, (Instant, u32)>>,
}

/// The active flows and their event filters, bound, as the dispatcher caches them.
pub(super) type Active = (
    Arc<Vec<Loaded>>,
    Arc<HashMap<(Uuid, String), Option<BoundFilter>>>,
);

impl std::fmt::Debug for Flows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flows")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl workeros_core::EventSink for Flows {
    async fn deliver(&self, _events: &[Event]) -> Result<(), workeros_core::CoreError> {
        self.inner.dispatch_wake.notify_one();
        Ok(())
    }
}

impl Flows {
    /// Flows over `store`, making requests through `guard` and sending email through `email`
    /// (without one, `email` operations reject).
    pub fn new(
        store: Store,
        guard: Guard,
        email: Option<Arc<dyn EmailSender>>,
        config: FlowsConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                sync_runs: Shares::new(config.max_sync_runs, config.per_tenant),
                workers: Shares::new(config.concurrency, config.per_tenant),
                store,
                guard,
                email,
                config,
                dispatch_wake: Notify::new(),
                run_wake: Notify::new(),
                cache: tokio::sync::Mutex::new(None),
                since: std::sync::Mutex::new(HashMap::new()),
                outgoing: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    pub(super) fn db(&self) -> &Db {
        self.inner.store.db()
    }

    pub(super) async fn changed(&self) {
        *self.inner.cache.lock().await = None;
    }

    /// Registers the flows' outbox consumer and runs the dispatcher, the schedules and the
    /// workers until [`Workers::shutdown`] (or the handle's drop). Call after
    /// [`crate::migrate`].
    pub async fn start(&self) -> Result<Workers, EventsError> {
        workeros_store::register_consumer(self.db(), CONSUMER).await?;
        let (a, b, c) = (self.clone(), self.clone(), self.clone());
        Ok(Workers::spawn(vec![
            Box::new(move |stop| Box::pin(a.dispatch_loop(stop))),
            Box::new(move |stop| Box::pin(b.run_loop(stop))),
            Box::new(move |stop| Box::pin(c.prune_loop(stop))),
        ]))
    }

    /// Deletes finished runs (of every flow) made before `before`; returns how many.
    pub async fn prune(&self, before: OffsetDateTime) -> Result<u64, EventsError> {
        crate::jobs::prune_finished(self.db(), FLOW_RUNS, "created_at", before, &[]).await
    }

    pub(super) async fn prune_loop(self, stop: Stop) {
        let c = &self.inner.config;
        crate::jobs::every(stop, c.prune_every, "flow run pruning", || {
            self.prune(now() - c.retention)
        })
        .await;
    }
}

impl Flows {
    /// Counts one outgoing request (`request` or `webhook` operation) of `tenant`'s flows; an
    /// error past [`FlowsConfig::requests_per_minute`].
    pub(super) fn spend_request(&self, tenant: &str) -> Result<(), String> {
        let max = self.inner.config.requests_per_minute;
        let Ok(mut windows) = self.inner.outgoing.lock() else {
            return Err("the request budget is unavailable".into());
        };
        let now = Instant::now();
        let minute = std::time::Duration::from_secs(60);
        if windows.len() >= 10_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < minute);
        }
        let w = windows.entry(tenant.to_owned()).or_insert((now, 0));
        if now.duration_since(w.0) >= minute {
            *w = (now, 0);
        }
        if w.1 >= max {
            return Err(format!(
                "this tenant's flows made {max} requests this minute, the most allowed: the \
                 operation was not sent"
            ));
        }
        w.1 += 1;
        Ok(())
    }
}
