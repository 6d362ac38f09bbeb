//! workeros-events: realtime, webhooks, flows and event functions.
//!
//! **Status: skeleton.** This crate will hold (see `spec/events.md` and issue 6): a realtime hub
//! that filters committed events per SSE subscriber in memory with the `workeros-dsl` matcher;
//! Standard Webhooks signing and a receiver helper; durable webhook delivery through an outbox;
//! flows and event functions; cross-instance fan-out on PostgreSQL. It implements
//! `workeros_core::EventSink` and sits above `workeros-store`.
