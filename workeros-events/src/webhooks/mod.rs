//! Webhooks: configuration by tenant admins, durable dispatch from the store's outbox, and
//! signed delivery with retries.
//!
//! **Durability.** Deliveries are rows. The dispatcher claims committed events from the outbox
//! ([`Store::claim_outbox`], consumer `"webhooks"`) and inserts one `webhook_deliveries` row per
//! matching webhook in the same transaction that moves its cursor, so a crash either keeps both
//! or neither, and a rolled-back write (never in the outbox) produces nothing. A row is unique
//! per (webhook, event), so a repeated dispatch cannot double it. Senders claim due rows with a
//! lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so instances share the work); a sender that
//! dies mid-request leaves the lease to expire and the row is sent again with the same
//! `webhook-id` (at least once; receivers deduplicate by that id).
//!
//! **Attempts.** Immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (each delay
//! stretched by up to 20 % of random jitter); then the delivery has failed. A `2xx` answer
//! succeeds; `410 Gone` fails it and disables the webhook; anything else (a `3xx` too: redirects
//! are not followed) is retried. Every attempt is logged with its status, error and duration.
//!
//! | table | holds |
//! |---|---|
//! | `webhooks` | tenant, name, URL, actions, collections, DSL filter, headers, secret (and the previous one during a rotation), enabled |
//! | `webhook_deliveries` | one per (webhook, event): the exact body, state, attempts, next attempt, lease, last outcome |
//! | `webhook_attempts` | every attempt: when, status, error, duration |

mod admin;
mod dispatch;
mod engine;
mod model;
mod send;

pub use crate::jobs::DEFAULT_SCHEDULE;
pub use dispatch::payload;
pub use engine::Webhooks;
pub use model::{
    Attempt, CONSUMER, Delivery, DeliveryQuery, DeliveryState, MAX_WEBHOOKS, Webhook,
    WebhookConfig, WebhookInput, WithSecret,
};
