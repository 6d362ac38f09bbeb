//! workeros-events: realtime, webhooks, flows and event functions.
//!
//! **Status: in progress (issue 6).** Here now: [`signing`], Standard Webhooks signatures
//! (`whsec_` secrets, signing, and the receiver-side [`signing::verify`] with rotation).
//!
//! ```
//! use workeros_events::signing::{Secret, SignedHeaders, verify};
//! let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let body = br#"{"test": 2432232314}"#;
//! let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
//! let headers = SignedHeaders {
//!     id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
//!     timestamp: "1614265330",
//!     signature: &signature,
//! };
//! verify(&[secret], headers, body, 1614265330, 300)?;
//! # Ok::<(), workeros_events::signing::SignatureError>(())
//! ```
//!
//! To come (see `spec/events.md` and issue 6): a realtime hub that filters committed events per
//! SSE subscriber in memory with the `workeros-dsl` matcher; durable webhook delivery through an
//! outbox; flows and event functions; cross-instance fan-out on PostgreSQL. It implements
//! `workeros_core::EventSink` and sits above `workeros-store`.

pub mod signing;
