//! [`Builder`] and [`Workeros`]: what the host turns on, made and wired in one place, and the
//! router of all of it.

use crate::{Error, Running};
use axum::Router;
use std::sync::Arc;
use workeros_core::EmailSender;
use workeros_store::http::{Identifier, Identify, IdentifyLayer};
use workeros_store::{Db, OutboxConfig, Store};

/// Whether [`Builder::build`] changes the schema or only checks it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Migrations {
    /// Apply every pending migration of the parts turned on (idempotent; safe when several
    /// instances start at once).
    #[default]
    Run,
    /// Change nothing; fail naming what is missing or behind, for a host whose own migration
    /// tool applies workeros's exported SQL (`workeros_store::migrate::export`).
    Check,
}

/// The settings of the event engines ([`Builder::events`]).
#[cfg(feature = "events")]
#[cfg_attr(docsrs, doc(cfg(feature = "events")))]
#[derive(Debug, Clone, Default)]
pub struct EventsConfig {
    /// Realtime: queues, heartbeats, stream lifetime, subscriber cap.
    pub realtime: workeros_events::RealtimeConfig,
    /// Webhooks: timeouts, retries, retention.
    pub webhooks: workeros_events::WebhookConfig,
    /// Flows.
    pub flows: workeros_events::FlowsConfig,
    /// Event functions.
    pub functions: workeros_events::FunctionsConfig,
    /// Hosts and ranges webhooks and flow requests may reach despite the SSRF guard (none by
    /// default).
    pub allow: workeros_events::Allow,
}

/// The event engines over one store, connected to it ([`Workeros::events`]).
#[cfg(feature = "events")]
#[cfg_attr(docsrs, doc(cfg(feature = "events")))]
#[derive(Debug, Clone)]
pub struct Events {
    /// The realtime hub (`GET /api/realtime`).
    pub realtime: workeros_events::Realtime,
    /// Webhooks (`/api/webhooks`).
    pub webhooks: workeros_events::Webhooks,
    /// Flows (`/api/flows`).
    pub flows: workeros_events::Flows,
    /// Event functions: register handlers (`on_event`, `on_cron`) before [`Workeros::start`].
    pub functions: workeros_events::Functions,
}

/// What to make: [`Workeros::builder`], then one call per part, then [`Builder::build`].
#[must_use = "a builder does nothing until `build`"]
pub struct Builder {
    db: Db,
    migrations: Migrations,
    outbox: OutboxConfig,
    email: Option<Arc<dyn EmailSender>>,
    identify: Option<Identifier>,
    #[cfg(feature = "auth")]
    auth: Option<workeros_auth::AuthConfig>,
    #[cfg(feature = "events")]
    events: Option<EventsConfig>,
    #[cfg(feature = "adopt")]
    adopt: bool,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("db", &self.db)
            .field("migrations", &self.migrations)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Apply the migrations (the default) or only check them.
    pub fn migrations(mut self, migrations: Migrations) -> Self {
        self.migrations = migrations;
        self
    }

    /// How long outbox events are kept once every consumer has read them, and how often they
    /// are pruned (the store prunes whatever engines run).
    pub fn outbox(mut self, outbox: OutboxConfig) -> Self {
        self.outbox = outbox;
        self
    }

    /// Where emails go (invitations, password resets, flow emails); the console by default.
    pub fn email(mut self, sender: Arc<dyn EmailSender>) -> Self {
        self.email = Some(sender);
        self
    }

    /// The host's own identity: with workeros-auth, the resolver of credentials workeros did not
    /// issue (a host's JWT); without it, the only source of subjects.
    pub fn identify(mut self, identify: impl Identify) -> Self {
        self.identify = Some(Arc::new(identify));
        self
    }

    /// Users, sessions, API keys, roles and organizations, with `config`.
    #[cfg(feature = "auth")]
    #[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
    pub fn auth(mut self, config: workeros_auth::AuthConfig) -> Self {
        self.auth = Some(config);
        self
    }

    /// Realtime, webhooks, flows and event functions, with `config`.
    #[cfg(feature = "events")]
    #[cfg_attr(docsrs, doc(cfg(feature = "events")))]
    pub fn events(mut self, config: EventsConfig) -> Self {
        self.events = Some(config);
        self
    }

    /// The adopt wizard: existing tables as collections (`POST /api/collections` with
    /// `adopted: true`, `/api/admin/adopt/*`).
    #[cfg(feature = "adopt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "adopt")))]
    pub fn adopt(mut self) -> Self {
        self.adopt = true;
        self
    }

    /// Migrates or checks the schema of every part turned on (store, then auth, then events),
    /// makes the parts and wires them: the event engines as the store's sinks, the wizard as its
    /// adopter. Nothing runs in the background until [`Workeros::start`].
    pub async fn build(self) -> Result<Workeros, Error> {
        let db = self.db;
        self.migrations.apply(&db, &workeros_store::SCHEMA).await?;
        #[cfg(feature = "auth")]
        if self.auth.is_some() {
            match self.migrations {
                Migrations::Run => {
                    workeros_auth::migrate(&db).await?;
                }
                Migrations::Check => self.migrations.apply(&db, &workeros_auth::SCHEMA).await?,
            }
        }
        #[cfg(feature = "events")]
        if self.events.is_some() {
            match self.migrations {
                Migrations::Run => {
                    workeros_events::migrate(&db).await?;
                }
                Migrations::Check => self.migrations.apply(&db, &workeros_events::SCHEMA).await?,
            }
        }
        let store = Store::new(db.clone());
        #[cfg(feature = "auth")]
        let auth = match self.auth {
            Some(config) => Some(match &self.email {
                Some(email) => {
                    workeros_auth::Auth::with_email_sender(db.clone(), config, email.clone())?
                }
                None => workeros_auth::Auth::new(db.clone(), config)?,
            }),
            None => None,
        };
        #[cfg(feature = "events")]
        let events = self.events.map(|c| {
            let guard = workeros_events::Guard::new(c.allow, c.webhooks.timeout);
            let events = Events {
                realtime: workeros_events::Realtime::new(store.clone(), c.realtime),
                webhooks: workeros_events::Webhooks::new(store.clone(), guard.clone(), c.webhooks),
                flows: workeros_events::Flows::new(
                    store.clone(),
                    guard,
                    self.email.clone(),
                    c.flows,
                ),
                functions: workeros_events::Functions::new(store.clone(), c.functions),
            };
            store.add_sink(Arc::new(events.realtime.clone()));
            store.add_sink(Arc::new(events.webhooks.clone()));
            store.add_sink(Arc::new(events.flows.clone()));
            store.add_sink(Arc::new(events.functions.clone()));
            events
        });
        #[cfg(feature = "adopt")]
        let adopt = self.adopt.then(|| {
            let adopt = workeros_adopt::Adopt::new(store.clone());
            store.set_adopter(adopt.adopter());
            adopt
        });
        Ok(Workeros {
            store,
            outbox: self.outbox,
            identify: self.identify,
            #[cfg(feature = "auth")]
            auth,
            #[cfg(feature = "events")]
            events,
            #[cfg(feature = "adopt")]
            adopt,
        })
    }
}

impl Migrations {
    /// Runs or checks `component`'s migrations.
    async fn apply(
        self,
        db: &Db,
        component: &workeros_store::migrate::Component,
    ) -> Result<(), Error> {
        match self {
            Migrations::Run => {
                workeros_store::migrate::run(db, component).await?;
            }
            Migrations::Check => workeros_store::migrate::check(db, component).await?,
        }
        Ok(())
    }
}

/// workeros, made and wired: the parts, [`Workeros::router`] and [`Workeros::start`]. Cloning is
/// cheap and shares everything.
#[derive(Clone)]
pub struct Workeros {
    store: Store,
    outbox: OutboxConfig,
    identify: Option<Identifier>,
    #[cfg(feature = "auth")]
    auth: Option<workeros_auth::Auth>,
    #[cfg(feature = "events")]
    events: Option<Events>,
    #[cfg(feature = "adopt")]
    adopt: Option<workeros_adopt::Adopt>,
}

impl std::fmt::Debug for Workeros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workeros")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Workeros {
    /// Starts describing what to make over `db`.
    pub fn builder(db: Db) -> Builder {
        Builder {
            db,
            migrations: Migrations::default(),
            outbox: OutboxConfig::default(),
            email: None,
            identify: None,
            #[cfg(feature = "auth")]
            auth: None,
            #[cfg(feature = "events")]
            events: None,
            #[cfg(feature = "adopt")]
            adopt: false,
        }
    }

    /// The store: collections, permissions, items, activity.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Identity, when turned on.
    #[cfg(feature = "auth")]
    #[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
    pub fn auth(&self) -> Option<&workeros_auth::Auth> {
        self.auth.as_ref()
    }

    /// The event engines, when turned on.
    #[cfg(feature = "events")]
    #[cfg_attr(docsrs, doc(cfg(feature = "events")))]
    pub fn events(&self) -> Option<&Events> {
        self.events.as_ref()
    }

    /// The adopt wizard, when turned on.
    #[cfg(feature = "adopt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "adopt")))]
    pub fn adopt(&self) -> Option<&workeros_adopt::Adopt> {
        self.adopt.as_ref()
    }

    /// Every route of the parts turned on, with paths relative to where the host nests or merges
    /// it, behind the layer that sets each request's subject: workeros-auth's (sessions, API
    /// keys, the bootstrap token; credentials it did not issue go to [`Builder::identify`]) or,
    /// without auth, the host's [`Builder::identify`] (no credential: anonymous). To mount only
    /// some routes, use each crate's per-concern routers and layers instead.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let router = Router::new().merge(workeros_store::http::router(self.store.clone()));
        #[cfg(feature = "auth")]
        let router = match &self.auth {
            Some(auth) => router.merge(workeros_auth::http::router(auth.clone())),
            None => router,
        };
        #[cfg(feature = "adopt")]
        let router = match &self.adopt {
            Some(adopt) => router.merge(workeros_adopt::http::router(adopt.clone())),
            None => router,
        };
        #[cfg(feature = "events")]
        let router = match &self.events {
            Some(e) => router
                .merge(workeros_events::http::router(
                    e.realtime.clone(),
                    self.tickets(),
                ))
                .merge(workeros_events::http::webhooks(e.webhooks.clone()))
                .merge(workeros_events::http::flows(e.flows.clone())),
            None => router,
        };
        #[cfg(feature = "auth")]
        if let Some(auth) = &self.auth {
            let layer = workeros_auth::http::AuthLayer::new(auth.clone());
            let layer = match &self.identify {
                Some(identify) => layer.with_shared_fallback(identify.clone()),
                None => layer,
            };
            return router.layer(layer);
        }
        match &self.identify {
            Some(identify) => router.layer(IdentifyLayer::shared(identify.clone())),
            None => router,
        }
    }

    /// Realtime tickets (`POST /api/realtime/ticket`) resolve through workeros-auth.
    #[cfg(feature = "events")]
    fn tickets(&self) -> Option<workeros_events::http::TicketCheck> {
        #[cfg(feature = "auth")]
        if let Some(auth) = self.auth.clone() {
            return Some(Arc::new(move |t: &str| auth.verify_ticket(t).ok()));
        }
        None
    }

    /// Starts every background engine of the parts turned on — outbox pruning, with auth (on
    /// PostgreSQL) following other instances' credential changes, and with events
    /// webhook dispatch and delivery, flow runs, event functions and (on PostgreSQL) realtime
    /// following other instances — and returns the one handle that stops them all. An instance
    /// that cannot follow the others (a pooler that refuses `LISTEN`) logs it and serves its own
    /// events.
    pub async fn start(&self) -> Result<Running, Error> {
        #[cfg_attr(not(any(feature = "events", feature = "auth")), allow(unused_mut))]
        let mut workers = vec![self.store.start(self.outbox.clone())];
        // On PostgreSQL, credential changes other instances make are forgotten here at once.
        #[cfg(feature = "auth")]
        if let Some(auth) = &self.auth {
            match auth.start().await {
                Ok(w) => workers.push(w),
                Err(err) => tracing::error!(
                    error = %err,
                    "auth: cannot follow other instances' credential changes; they reach this one at the cache's age limit"
                ),
            }
        }
        #[cfg(feature = "events")]
        let mut realtime = None;
        #[cfg(feature = "events")]
        if let Some(e) = &self.events {
            workers.push(e.webhooks.start().await?);
            workers.push(e.flows.start().await?);
            workers.push(e.functions.start().await?);
            match e.realtime.start().await {
                Ok(w) => workers.push(w),
                Err(err) => {
                    tracing::error!(error = %err, "realtime: cannot follow other instances");
                }
            }
            realtime = Some(e.realtime.clone());
        }
        Ok(Running {
            workers,
            #[cfg(feature = "events")]
            realtime,
        })
    }
}
