//! What webhooks are on the wire and how they are delivered: the webhook, its input, the
//! delivery log's rows, and [`WebhookConfig`].

use crate::jobs::DEFAULT_SCHEDULE;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// The outbox consumer name of webhook dispatch.
pub const CONSUMER: &str = "webhooks";

/// Most webhooks per tenant.
pub const MAX_WEBHOOKS: usize = 100;

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The delay before each attempt (the first is normally zero); its length is the number of
    /// attempts.
    pub schedule: Vec<Duration>,
    /// How long a claimed delivery belongs to its sender; a sender that vanished (crash, kill)
    /// is presumed dead after it and the delivery is sent again. Longer than `timeout`.
    pub lease: Duration,
    /// The request timeout.
    pub timeout: Duration,
    /// Most events one dispatch transaction consumes.
    pub dispatch_batch: u64,
    /// Most requests in flight per process.
    pub concurrency: usize,
    /// Most requests in flight for one tenant while another tenant's deliveries are due (when
    /// none is, a tenant may use all but this many of `concurrency`, kept for a tenant whose
    /// deliveries arrive): a tenant's slow receivers cannot hold every sender.
    pub per_tenant: usize,
    /// How often idle workers look for work other instances made (local writes wake them at
    /// once).
    pub poll: Duration,
    /// How long the previous secret still signs after a rotation (receivers switch meanwhile).
    pub rotation_overlap: Duration,
    /// How long finished deliveries and their attempt logs are kept.
    pub retention: Duration,
    /// How often the workers prune.
    pub prune_every: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            schedule: DEFAULT_SCHEDULE.to_vec(),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
            dispatch_batch: 500,
            concurrency: 40,
            per_tenant: 8,
            poll: Duration::from_secs(1),
            rotation_overlap: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// A webhook as the admin API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Its id.
    pub id: Uuid,
    /// A label.
    pub name: String,
    /// Where deliveries go.
    pub url: String,
    /// The actions it receives (`create`, `update`, `delete`); empty: all.
    pub events: Vec<String>,
    /// The collections it receives events of; empty: all.
    pub collections: Vec<String>,
    /// A DSL filter the row (after the write; before it for deletes) must match.
    pub filter: Option<Json>,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Whether events are delivered to it.
    pub enabled: bool,
    /// Why it was disabled automatically (`410 Gone`).
    pub disabled_reason: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// A webhook to create, or the changes to one (absent fields stay as they are).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookInput {
    /// A label (default: the URL's host).
    pub name: Option<String>,
    /// Where deliveries go: `http(s)`, checked by the SSRF guard.
    pub url: Option<String>,
    /// Actions (`create`, `update`, `delete`); empty or absent: all.
    pub events: Option<Vec<String>>,
    /// Collection slugs; empty or absent: all.
    pub collections: Option<Vec<String>>,
    /// A DSL filter (text or JSON form) on the row; `null` removes it. Needs `collections`.
    #[serde(default, deserialize_with = "some_json")]
    pub filter: Option<Json>,
    /// Extra request headers (not `webhook-*`, `content-type` or hop-by-hop ones).
    pub headers: Option<BTreeMap<String, String>>,
    /// Whether to deliver (default `true`); enabling clears an automatic disable.
    pub enabled: Option<bool>,
}

/// `filter: null` is `Some(Json::Null)` (remove), an absent filter `None` (keep).
fn some_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

/// A created webhook, or a rotated secret: the only times the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WithSecret {
    /// The webhook.
    pub webhook: Webhook,
    /// `whsec_…`: what the receiver verifies signatures with.
    pub secret: String,
}

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next attempt (or being attempted).
    Pending,
    /// A `2xx` answer.
    Succeeded,
    /// Out of attempts, `410 Gone`, or its webhook was disabled.
    Failed,
}

impl DeliveryState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }

    pub(super) fn parse(s: &str) -> Self {
        match s {
            "succeeded" => DeliveryState::Succeeded,
            "failed" => DeliveryState::Failed,
            _ => DeliveryState::Pending,
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Its number within the delivery (from 1; a manual redelivery continues the count).
    pub attempt: i64,
    /// When it started.
    pub started_at: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i64>,
    /// What went wrong, when something did.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Its id: the `webhook-id` header of every attempt.
    pub id: Uuid,
    /// The webhook.
    pub webhook_id: Uuid,
    /// The event it carries.
    pub event_id: Uuid,
    /// The payload's `type` (`<collection>.<action>`).
    pub event_type: String,
    /// Its state.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending deliveries).
    pub next_at: Option<String>,
    /// The last answer's HTTP status.
    pub last_status: Option<i64>,
    /// The last error.
    pub last_error: Option<String>,
    /// How long the last attempt took.
    pub last_duration_ms: Option<i64>,
    /// When it was made.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Every attempt, oldest first (in [`Webhooks::delivery`] only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<Vec<Attempt>>,
}

/// Which deliveries [`Webhooks::deliveries`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryQuery {
    /// Only in this state.
    pub state: Option<DeliveryState>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<u64>,
    /// Skipping this many (newest first).
    pub offset: Option<u64>,
}
