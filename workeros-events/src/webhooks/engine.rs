//! The [`Webhooks`] handle: its state (the dispatcher's cache of targets, the wake-ups), its
//! construction, its workers and the pruning they do.

use super::model::{CONSUMER, Webhook, WebhookConfig};
use crate::EventsError;
use crate::guard::Guard;
use crate::jobs::Workers;
use crate::schema::WEBHOOK_ATTEMPTS;
use crate::schema::WEBHOOK_DELIVERIES;
use crate::shares::Shares;
use crate::signing::Secret;
use crate::trigger::EventTrigger;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;
use workeros_core::Event;
use workeros_dsl::{BoundFilter, Dialect};
use workeros_store::values::now;
use workeros_store::{Db, Store};

/// Webhooks of every tenant: the admin API, the dispatcher and the senders. Register it as an
/// [`EventSink`](workeros_core::EventSink) so local writes wake the dispatcher at once, and run
/// the workers with [`Webhooks::start`]. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) guard: Guard,
    pub(super) config: WebhookConfig,
    pub(super) dispatch_wake: Notify,
    pub(super) send_wake: Notify,
    /// The senders, shared fairly between tenants.
    pub(super) senders: Shares,
    /// The enabled webhooks of every tenant as the dispatcher last loaded them: reloaded at most
    /// every `poll` and after a change through this instance.
    pub(super) targets: tokio::sync::Mutex<Option<(Instant, Cached)>>,
}

/// The filters of the dispatcher's targets, checked against their collections.
pub(super) type Filters = HashMap<(Uuid, String), Option<BoundFilter>>;

/// The enabled webhooks and their bound filters, as the dispatcher caches them.
pub(super) type Cached = (Arc<Vec<Target>>, Arc<Filters>);

/// A webhook as the dispatcher and senders need it.
pub(super) struct Target {
    pub(super) webhook: Webhook,
    /// Which events it receives (`None`: none, its saved actions name none this version knows).
    pub(super) trigger: Option<EventTrigger>,
    pub(super) tenant: String,
    pub(super) secrets: Vec<Secret>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl workeros_core::EventSink for Webhooks {
    async fn deliver(&self, _events: &[Event]) -> Result<(), workeros_core::CoreError> {
        // The events are in the outbox already; the dispatcher reads them from there.
        self.inner.dispatch_wake.notify_one();
        Ok(())
    }
}

impl Webhooks {
    /// Webhooks over `store`, sending through `guard`.
    pub fn new(store: Store, guard: Guard, config: WebhookConfig) -> Self {
        let senders = Shares::new(config.concurrency, config.per_tenant);
        Self {
            inner: Arc::new(Inner {
                senders,
                store,
                guard,
                config,
                dispatch_wake: Notify::new(),
                send_wake: Notify::new(),
                targets: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The SSRF guard deliveries go through.
    pub fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    pub(super) fn db(&self) -> &Db {
        self.inner.store.db()
    }

    pub(super) fn d(&self) -> Dialect {
        self.db().dialect()
    }

    /// Registers the dispatcher's outbox consumer (again, if the host dropped it) and runs the
    /// dispatcher, the senders and the pruning until [`Workers::shutdown`] (or the handle's
    /// drop). Call after [`crate::migrate`].
    pub async fn start(&self) -> Result<Workers, EventsError> {
        workeros_store::register_consumer(self.db(), CONSUMER).await?;
        let (a, b, c) = (self.clone(), self.clone(), self.clone());
        Ok(Workers::spawn(vec![
            Box::new(move |stop| Box::pin(a.dispatch_loop(stop))),
            Box::new(move |stop| Box::pin(b.send_loop(stop))),
            Box::new(move |stop| Box::pin(c.prune_loop(stop))),
        ]))
    }

    /// Deletes finished deliveries (with their attempt logs) last changed before `before`;
    /// returns how many rows went. (The outbox is the store's to prune: `Store::start`.)
    pub async fn prune(&self, before: OffsetDateTime) -> Result<u64, EventsError> {
        crate::jobs::prune_finished(
            self.db(),
            WEBHOOK_DELIVERIES,
            "updated_at",
            before,
            &[(WEBHOOK_ATTEMPTS, "delivery_id")],
        )
        .await
    }

    pub(super) async fn prune_loop(self, stop: crate::jobs::Stop) {
        let c = &self.inner.config;
        crate::jobs::every(stop, c.prune_every, "webhook delivery pruning", || {
            self.prune(now() - c.retention)
        })
        .await;
    }
}
