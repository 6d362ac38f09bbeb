//! workeros-store: runtime-defined collections over PostgreSQL or SQLite.
//!
//! **Status: skeleton.** This crate will hold (see `spec/store.md` and issue 3):
//!
//! - `Db`, a sqlx pool for PostgreSQL or SQLite that knows its dialect, and `migrate(&db)` for the
//!   store's system tables (`collections`, `permissions`, `activity`, `revisions`,
//!   `item_ownership`, `events`);
//! - managed collections with additive DDL (`POST/PATCH/DELETE /api/collections`), adopted
//!   collections as metadata only;
//! - the items API and its permission pipeline, compiled through `workeros-dsl` so that SQL and the
//!   in-memory matcher agree;
//! - activity, revisions and the event outbox, handed to `workeros_core::EventSink`s after commit.
//!
//! It depends on `workeros-core` and `workeros-dsl` only.
