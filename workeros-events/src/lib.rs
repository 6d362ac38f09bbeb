//! workeros-events: realtime over Server-Sent Events, Standard Webhooks signatures, and (to come)
//! durable webhook delivery, flows and event functions.
//!
//! **Status: in progress (issue 6).** Here now:
//!
//! | module | what |
//! |---|---|
//! | [`realtime`] | [`Realtime`], an [`EventSink`](workeros_core::EventSink) that judges every committed event per subscriber in memory (read permissions, own DSL filter, field masks, enter/leave on updates), bounded queues, `Last-Event-ID` resume from the outbox, custom and user-targeted broadcasts |
//! | [`http`] | `GET /api/realtime` (SSE, heartbeats, `Subject` or ticket) |
//! | [`signing`] | Standard Webhooks signatures: `whsec_` secrets, signing, the receiver-side [`signing::verify`] with rotation |
//!
//! On PostgreSQL, [`Realtime::follow_other_instances`] brings the events other instances commit
//! (announced by an outbox trigger with `NOTIFY`, read from the outbox) to this one's subscribers.
//!
//! To come (see `spec/events.md`): webhooks with durable at-least-once delivery and an SSRF
//! guard, flows, event functions.
//!
//! ```
//! use std::sync::Arc;
//! use workeros_core::{Subject, User};
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
//! let admin = Subject::user(User::new("admin").with_roles(["admin"]));
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

mod error;
#[cfg(feature = "axum")]
pub mod http;
pub mod realtime;
pub mod signing;

pub use error::EventsError;
pub use realtime::{Broadcast, Frame, Realtime, RealtimeConfig, Subscribe, Subscription};
