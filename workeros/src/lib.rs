//! workeros, wired in one call: a [`Builder`] that migrates (or checks) the schema of every part
//! you turn on, makes the store, identity, events and the adopt wizard, connects them to one
//! another explicitly, and gives you one router and one handle that starts and stops every
//! background engine.
//!
//! This crate only wires; the work is in the crates it re-exports ([`store`], [`auth`],
//! [`events`], [`adopt`], [`dsl`], [`core`]), which a host can also use one by one.
//!
//! ```no_run
//! use workeros::{Workeros, store::Db};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let db = Db::connect("sqlite://./.data/app.sqlite").await?;
//! let wk = Workeros::builder(db)
//!     .auth(workeros::auth::AuthConfig::default())
//!     .events(workeros::EventsConfig::default())
//!     .adopt()
//!     .build()
//!     .await?;
//! let app = axum::Router::new() // the host's own routes here
//!     .nest("/cms", wk.router());
//! let running = wk.start().await?; // webhooks, flows, functions, realtime, outbox pruning
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         running.shutdown().await; // realtime streams end, so the server can drain
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! | feature | default | what it turns on |
//! |---|---|---|
//! | `auth` | yes | [`Builder::auth`]: users, sessions, API keys, roles ([`workeros_auth`]) |
//! | `events` | yes | [`Builder::events`]: realtime, webhooks, flows, event functions ([`workeros_events`]) |
//! | `adopt` | yes | [`Builder::adopt`]: the adopt wizard for existing tables ([`workeros_adopt`]) |

#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod error;
mod running;

pub use builder::{Builder, Migrations, Workeros};
#[cfg(feature = "events")]
pub use builder::{Events, EventsConfig};
pub use error::Error;
pub use running::Running;

#[cfg(feature = "adopt")]
#[cfg_attr(docsrs, doc(cfg(feature = "adopt")))]
pub use workeros_adopt as adopt;
#[cfg(feature = "auth")]
#[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
pub use workeros_auth as auth;
pub use workeros_core as core;
pub use workeros_dsl as dsl;
#[cfg(feature = "events")]
#[cfg_attr(docsrs, doc(cfg(feature = "events")))]
pub use workeros_events as events;
pub use workeros_store as store;
