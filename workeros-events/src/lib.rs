//! workeros-events: realtime over Server-Sent Events, Standard Webhooks-signed webhooks with
//! durable delivery, flows and event functions: everything that follows a committed write.
//!
//! Modules:
//!
//! | module | what |
//! |---|---|
//! | [`realtime`] | [`Realtime`], an [`EventSink`](workeros_core::EventSink) that judges every committed event per subscriber in memory (read permissions, own DSL filter, field masks, enter/leave on updates), bounded queues, `Last-Event-ID` resume from the outbox, custom and user-targeted broadcasts |
//! | [`webhooks`] | [`Webhooks`]: admin API, dispatch from the outbox in the cursor's transaction, at-least-once signed delivery with leases, retries, a delivery log and redelivery |
//! | [`flows`] | [`Flows`]: triggers (event with a DSL filter, cron, manual, incoming webhook) and chains of operations (condition, transform, log, request, signed webhook, email, item), each run logged step by step |
//! | [`functions`] | [`Functions`]: async Rust handlers for events and cron schedules, durable, retried, cron slots run once across instances |
//! | [`guard`] | the SSRF guard every outgoing request goes through: refused ranges, pinned resolution, no redirects, an allow list |
//! | [`http`] | `GET /api/realtime` (SSE, heartbeats, `Subject` or ticket); the `/api/webhooks` and `/api/flows` routes |
//! | [`signing`] | Standard Webhooks signatures: `whsec_` secrets, signing, the receiver-side [`signing::verify`] with rotation |
//!
//! [`migrate`] makes the tables of webhooks, flows and functions. On PostgreSQL, a started
//! [`Realtime`] brings the events other instances commit (announced by an outbox trigger with
//! `NOTIFY`, read from the outbox) to this one's subscribers, and the workers of several instances
//! share the deliveries and runs.
//!
//! None of them is in the write's path: the store appends each event to its outbox in the
//! write's transaction, and webhooks, flows and functions each read the outbox with their own
//! cursor ([`workeros_store::Store::claim_outbox`]), turning events into rows (deliveries, runs)
//! in the transaction that moves the cursor. A rolled-back write delivers nothing; a crash loses
//! nothing; several instances share the work.
//!
//! Every engine starts one way. In short: run [`migrate`] after the store's; make [`Realtime`],
//! [`Webhooks`] (with a [`Guard`]), [`Flows`] and [`Functions`] (`new` has no side effect); add
//! each as a sink of the store (writes reach the hub and wake the dispatchers at once); mount
//! [`http::router`], [`http::webhooks`] and [`http::flows`]; and keep the [`Workers`] of each
//! engine's `start().await?` ([`Realtime::start`], [`Webhooks::start`], [`Flows::start`],
//! [`Functions::start`]) until [`Workers::shutdown`].
//!
//! ```
//! use std::sync::Arc;
//! use workeros_core::{Subject, User, roles};
//! use workeros_events::{Realtime, RealtimeConfig, Subscribe};
//! use workeros_store::{Db, NewItems, Store, migrate};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let db = Db::connect("sqlite::memory:").await?;
//! migrate(&db).await?;
//! let store = Store::new(db);
//! let realtime = Realtime::new(store.clone(), RealtimeConfig::default());
//! store.add_sink(Arc::new(realtime.clone()));
//!
//! let admin = Subject::user(User::new("ann").with_roles([roles::ADMIN]));
//! let posts = serde_json::json!({"slug": "posts", "fields": [{"name": "title", "type": "text"}]});
//! store.create_collection(&admin, serde_json::from_value(posts)?).await?;
//!
//! // Mount `workeros_events::http::router(realtime, tickets)` for SSE; or subscribe in Rust:
//! let wanted = Subscribe {
//!     collection: Some("posts".into()),
//!     filter: Some(r#"title starts_with "hello""#.into()),
//!     ..Subscribe::default()
//! };
//! let mut sub = realtime.subscribe(&admin, wanted).await?;
//! let item = NewItems::from_json(serde_json::json!({"title": "hello world"}))?;
//! store.create_items(&admin, "posts", item).await?;
//! let frame = sub.next().await.expect("a frame");
//! assert_eq!(&*frame.event, "create");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod cron;
mod error;
pub mod flows;
pub mod functions;
pub mod guard;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod http;
mod jobs;
pub mod realtime;
mod schema;
mod shares;
pub mod signing;
mod trigger;
pub mod webhooks;

pub use error::EventsError;
pub use flows::{Flows, FlowsConfig};
pub use functions::{Functions, FunctionsConfig};
pub use guard::{Allow, Guard};
pub use realtime::{Broadcast, Frame, Realtime, RealtimeConfig, Subscribe, Subscription};
pub use schema::{SCHEMA, migrate};
pub use trigger::EventTrigger;
pub use webhooks::{WebhookConfig, Webhooks};
pub use workeros_store::workers::Workers;
