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

use crate::EventsError;
use crate::guard::Guard;
use crate::jobs::{
    Job, Workers, claim_due, dispatch_loop, jittered, next_delay, pump, random_bytes,
};
use crate::signing::Secret;
use sea_query::{Alias, Expr, ExprTrait, Order, Query, Table, TableCreateStatement};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;
use workeros_core::{Event, Subject};
use workeros_dsl::{BoundFilter, Dialect};
use workeros_store::migrate::{ColumnKind as K, Migration, col, index, no_statements};
use workeros_store::values::{
    RowRef, bool_value, json_value, now, ts_null, ts_value, uuid_null, uuid_value,
};
use workeros_store::{Db, Store, Tx};

/// The outbox consumer name of webhook dispatch.
pub const CONSUMER: &str = "webhooks";

/// The retry schedule of the Standard Webhooks reference senders: the delay before each attempt.
pub const DEFAULT_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Most webhooks per tenant.
pub const MAX_WEBHOOKS: usize = 100;
/// Most custom headers per webhook.
pub const MAX_HEADERS: usize = 20;

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
    /// How often idle workers look for work other instances made (local writes wake them at
    /// once).
    pub poll: Duration,
    /// How long the previous secret still signs after a rotation (receivers switch meanwhile).
    pub rotation_overlap: Duration,
    /// How long finished deliveries and their attempt logs are kept.
    pub retention: Duration,
    /// How long outbox events are kept once every consumer has passed them (the realtime
    /// `Last-Event-ID` resume window); the webhook workers prune the outbox.
    pub outbox_retention: Duration,
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
            concurrency: 32,
            poll: Duration::from_secs(1),
            rotation_overlap: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
            outbox_retention: Duration::from_secs(7 * 24 * 3600),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// The events component's migrations (webhooks, and the flows and functions that come after).
pub(crate) const EVENTS: &[Migration] = &[
    Migration {
        version: 1,
        tables: events_v1,
        indexes: events_v1_indexes,
        statements: no_statements,
    },
    Migration {
        version: 2,
        tables: crate::functions::functions_v2,
        indexes: crate::functions::functions_v2_indexes,
        statements: no_statements,
    },
    Migration {
        version: 3,
        tables: crate::flows::flows_v3,
        indexes: crate::flows::flows_v3_indexes,
        statements: no_statements,
    },
];

/// Creates or upgrades the events component's tables and registers its outbox consumers (events
/// committed from then on are dispatched); idempotent and safe under concurrent starts. Run
/// after [`workeros_store::migrate`], before serving writes. Returns the versions it applied.
pub async fn migrate(db: &Db) -> Result<Vec<i64>, EventsError> {
    let applied = workeros_store::migrate::run(db, "events", EVENTS).await?;
    // Webhooks made before the first dispatch get the events committed from here on. (Flows
    // and functions register when they start: a host that does not run them does not hold the
    // outbox back.) A host that never runs the webhook workers drops this consumer
    // (`Store::drop_consumer("webhooks")`) so that the outbox can be pruned.
    workeros_store::register_consumer(db, CONSUMER).await?;
    Ok(applied)
}

fn events_v1(d: Dialect) -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table(Alias::new("webhooks"))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("name", K::Text, d).not_null())
            .col(col("url", K::Text, d).not_null())
            .col(col("actions", K::Json, d).not_null())
            .col(col("collections", K::Json, d).not_null())
            .col(col("filter", K::Json, d))
            .col(col("headers", K::Json, d).not_null())
            .col(col("secret", K::Text, d).not_null())
            .col(col("previous_secret", K::Text, d))
            .col(col("previous_until", K::Ts, d))
            .col(col("enabled", K::Bool, d).not_null())
            .col(col("disabled_reason", K::Text, d))
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("updated_at", K::Ts, d).not_null())
            .to_owned(),
        Table::create()
            .table(Alias::new("webhook_deliveries"))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("webhook_id", K::Uuid, d).not_null())
            .col(col("event_id", K::Uuid, d).not_null())
            .col(col("event_type", K::Text, d).not_null())
            .col(col("payload", K::Text, d).not_null())
            .col(col("state", K::Text, d).not_null())
            .col(col("attempts", K::BigInt, d).not_null())
            .col(col("tries", K::BigInt, d).not_null())
            .col(col("next_at", K::Ts, d).not_null())
            .col(col("lease_until", K::Ts, d))
            .col(col("claim", K::Uuid, d))
            .col(col("last_status", K::BigInt, d))
            .col(col("last_error", K::Text, d))
            .col(col("last_duration_ms", K::BigInt, d))
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("updated_at", K::Ts, d).not_null())
            .to_owned(),
        Table::create()
            .table(Alias::new("webhook_attempts"))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("delivery_id", K::Uuid, d).not_null())
            .col(col("attempt", K::BigInt, d).not_null())
            .col(col("started_at", K::Ts, d).not_null())
            .col(col("status", K::BigInt, d))
            .col(col("error", K::Text, d))
            .col(col("duration_ms", K::BigInt, d).not_null())
            .to_owned(),
    ]
}

fn events_v1_indexes() -> Vec<sea_query::IndexCreateStatement> {
    vec![
        index("webhooks_tenant", "webhooks", &["tenant_id"], false),
        index(
            "webhook_deliveries_once",
            "webhook_deliveries",
            &["webhook_id", "event_id"],
            true,
        ),
        index(
            "webhook_deliveries_due",
            "webhook_deliveries",
            &["state", "next_at"],
            false,
        ),
        index(
            "webhook_deliveries_log",
            "webhook_deliveries",
            &["webhook_id", "created_at"],
            false,
        ),
        index(
            "webhook_attempts_delivery",
            "webhook_attempts",
            &["delivery_id"],
            false,
        ),
    ]
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
    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
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

/// Webhooks of every tenant: the admin API, the dispatcher and the senders. Register it as an
/// [`EventSink`](workeros_core::EventSink) so local writes wake the dispatcher at once, and run
/// the workers with [`Webhooks::spawn_workers`]. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    guard: Guard,
    config: WebhookConfig,
    dispatch_wake: Notify,
    send_wake: Notify,
    /// The enabled webhooks of every tenant as the dispatcher last loaded them: reloaded at most
    /// every `poll` and after a change through this instance.
    targets: tokio::sync::Mutex<Option<(Instant, Cached)>>,
}

/// The filters of the dispatcher's targets, checked against their collections.
type Filters = HashMap<(Uuid, String), Option<BoundFilter>>;

/// The enabled webhooks and their bound filters, as the dispatcher caches them.
type Cached = (Arc<Vec<Target>>, Arc<Filters>);

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

fn new_secret() -> Result<Secret, EventsError> {
    Secret::from_bytes(random_bytes()?.to_vec()).map_err(EventsError::internal)
}

const HEADER_DENY: [&str; 9] = [
    "content-type",
    "content-length",
    "host",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
    "proxy-authorization",
];

pub(crate) fn check_headers(h: &BTreeMap<String, String>) -> Result<(), EventsError> {
    if h.len() > MAX_HEADERS {
        return Err(EventsError::invalid(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    for (name, value) in h {
        let lower = name.to_ascii_lowercase();
        let token = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || lower.starts_with("webhook-") || HEADER_DENY.contains(&lower.as_str()) {
            return Err(EventsError::invalid(
                "headers",
                format!(
                    "header `{name}` cannot be set: use a token name other than `webhook-*`, \
                     `content-type` and hop-by-hop headers"
                ),
            ));
        }
        if value.len() > 4096 || value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(EventsError::invalid(
                "headers",
                format!("the value of header `{name}` has control characters or is too long"),
            ));
        }
    }
    Ok(())
}

fn check_actions(actions: &[String]) -> Result<(), EventsError> {
    for a in actions {
        if !matches!(a.as_str(), "create" | "update" | "delete") {
            return Err(EventsError::invalid(
                "events",
                format!("unknown event `{a}`: use `create`, `update` or `delete`"),
            ));
        }
    }
    Ok(())
}

/// Reads a webhook row.
fn webhook_of(r: RowRef<'_>) -> Result<Webhook, EventsError> {
    let list = |c: &str| -> Result<Vec<String>, EventsError> {
        Ok(r.json(c)?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default())
    };
    Ok(Webhook {
        id: parse_uuid(r.uuid_text("id")?)?,
        name: r.text("name")?.unwrap_or_default(),
        url: r.text("url")?.unwrap_or_default(),
        events: list("actions")?,
        collections: list("collections")?,
        filter: r.json("filter")?.filter(|f| !f.is_null()),
        headers: r
            .json("headers")?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        enabled: r.boolean("enabled")?.unwrap_or(false),
        disabled_reason: r.text("disabled_reason")?,
        created_at: r.ts_text("created_at")?.unwrap_or_default(),
        updated_at: r.ts_text("updated_at")?.unwrap_or_default(),
    })
}

fn parse_uuid(s: Option<String>) -> Result<Uuid, EventsError> {
    Uuid::try_parse(s.as_deref().unwrap_or_default()).map_err(EventsError::internal)
}

const WEBHOOK_COLUMNS: [&str; 12] = [
    "id",
    "name",
    "url",
    "actions",
    "collections",
    "filter",
    "headers",
    "enabled",
    "disabled_reason",
    "created_at",
    "updated_at",
    "tenant_id",
];

const DELIVERY_COLUMNS: [&str; 13] = [
    "id",
    "webhook_id",
    "event_id",
    "event_type",
    "state",
    "attempts",
    "next_at",
    "last_status",
    "last_error",
    "last_duration_ms",
    "created_at",
    "updated_at",
    "tenant_id",
];

fn delivery_of(r: RowRef<'_>) -> Result<Delivery, EventsError> {
    let state = DeliveryState::parse(&r.text("state")?.unwrap_or_default());
    Ok(Delivery {
        id: parse_uuid(r.uuid_text("id")?)?,
        webhook_id: parse_uuid(r.uuid_text("webhook_id")?)?,
        event_id: parse_uuid(r.uuid_text("event_id")?)?,
        event_type: r.text("event_type")?.unwrap_or_default(),
        state,
        attempts: r.int("attempts")?.unwrap_or(0),
        next_at: if state == DeliveryState::Pending {
            r.ts_text("next_at")?
        } else {
            None
        },
        last_status: r.int("last_status")?,
        last_error: r.text("last_error")?,
        last_duration_ms: r.int("last_duration_ms")?,
        created_at: r.ts_text("created_at")?.unwrap_or_default(),
        updated_at: r.ts_text("updated_at")?.unwrap_or_default(),
        log: None,
    })
}

/// A webhook as the dispatcher and senders need it.
struct Target {
    webhook: Webhook,
    tenant: String,
    secrets: Vec<Secret>,
}

/// The `data` of an event's payload (also a flow's trigger data).
pub(crate) fn event_data(e: &Event) -> Json {
    json!({
        "event": e.id,
        "collection": e.collection,
        "action": e.action.as_str(),
        "key": e.item_id,
        "item": e.data,
        "previous": e.previous,
        "actor": e.actor,
    })
}

/// The body of a delivery: Standard Webhooks' `type` / `timestamp` / `data` envelope.
pub fn payload(e: &Event) -> String {
    let body = json!({
        "type": format!("{}.{}", e.collection, e.action.as_str()),
        "timestamp": workeros_core::instant::rfc3339(e.at),
        "data": event_data(e),
    });
    body.to_string()
}

/// What one attempt came to.
#[derive(Debug)]
struct Outcome {
    id: Uuid,
    claim: Uuid,
    /// Attempts on the current schedule, this one included.
    attempts: i64,
    /// Attempts ever, this one included (the log's numbering).
    tries: i64,
    /// No further attempt whatever the answer (the webhook is disabled or gone).
    give_up: bool,
    webhook: Option<Uuid>,
    started: OffsetDateTime,
    status: Option<u16>,
    error: Option<String>,
    duration_ms: i64,
}

/// A claimed delivery.
struct Due {
    id: Uuid,
    webhook: Uuid,
    payload: String,
    attempts: i64,
    tries: i64,
}

impl Webhooks {
    /// Webhooks over `store`, sending through `guard`.
    pub fn new(store: Store, guard: Guard, config: WebhookConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
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

    fn db(&self) -> &Db {
        self.inner.store.db()
    }

    fn d(&self) -> Dialect {
        self.db().dialect()
    }

    /// Checks an input's fields that are present; `collections` is the effective list.
    async fn check_input(
        &self,
        tenant: &str,
        input: &WebhookInput,
        collections: &[String],
        filter: Option<&Json>,
    ) -> Result<(), EventsError> {
        if let Some(url) = &input.url {
            self.inner
                .guard
                .parse(url)
                .map_err(|e| EventsError::invalid("url", e.to_string()))?;
        }
        if let Some(name) = &input.name
            && (name.trim().is_empty() || name.len() > 200)
        {
            return Err(EventsError::invalid(
                "name",
                "a name is 1 to 200 characters",
            ));
        }
        if let Some(a) = &input.events {
            check_actions(a)?;
        }
        if let Some(h) = &input.headers {
            check_headers(h)?;
        }
        crate::trigger::check(
            &self.inner.store,
            "webhooks",
            tenant,
            collections,
            filter,
            "filter",
        )
        .await
    }

    /// Creates a webhook (`url` required); returns it with its new secret.
    pub async fn create(
        &self,
        subject: &Subject,
        input: WebhookInput,
    ) -> Result<WithSecret, EventsError> {
        let tenant = crate::admin_tenant(subject, "webhooks")?;
        let Some(url) = input.url.clone() else {
            return Err(EventsError::invalid("url", "a webhook needs a `url`"));
        };
        let collections = input.collections.clone().unwrap_or_default();
        let filter = input.filter.clone().filter(|f| !f.is_null());
        self.check_input(tenant, &input, &collections, filter.as_ref())
            .await?;
        if self.list(subject).await?.len() >= MAX_WEBHOOKS {
            return Err(EventsError::invalid(
                "url",
                format!("a tenant has at most {MAX_WEBHOOKS} webhooks: delete one first"),
            ));
        }
        let d = self.d();
        let id = Uuid::now_v7();
        let secret = new_secret()?;
        let at = now();
        let name = input.name.clone().unwrap_or_else(|| {
            reqwest::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "webhook".into())
        });
        self.db()
            .execute(
                Query::insert()
                    .into_table(Alias::new("webhooks"))
                    .columns(
                        [
                            "id",
                            "tenant_id",
                            "name",
                            "url",
                            "actions",
                            "collections",
                            "filter",
                            "headers",
                            "secret",
                            "enabled",
                            "created_at",
                            "updated_at",
                        ]
                        .map(Alias::new),
                    )
                    .values([
                        Expr::val(uuid_value(id, d)),
                        Expr::val(tenant),
                        Expr::val(name),
                        Expr::val(url),
                        Expr::val(json_value(
                            Some(&json!(input.events.clone().unwrap_or_default())),
                            d,
                        )),
                        Expr::val(json_value(Some(&json!(collections)), d)),
                        Expr::val(json_value(filter.as_ref(), d)),
                        Expr::val(json_value(
                            Some(&json!(input.headers.clone().unwrap_or_default())),
                            d,
                        )),
                        Expr::val(secret.expose()),
                        Expr::val(bool_value(input.enabled.unwrap_or(true), d)),
                        Expr::val(ts_value(at, d)),
                        Expr::val(ts_value(at, d)),
                    ])
                    .map_err(EventsError::internal)?,
            )
            .await?;
        self.changed().await;
        Ok(WithSecret {
            webhook: self.get(subject, id).await?,
            secret: secret.expose(),
        })
    }

    /// The tenant's webhooks, oldest first.
    pub async fn list(&self, subject: &Subject) -> Result<Vec<Webhook>, EventsError> {
        let tenant = crate::admin_tenant(subject, "webhooks")?;
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(WEBHOOK_COLUMNS.map(Alias::new))
                    .from(Alias::new("webhooks"))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                    .order_by(Alias::new("created_at"), Order::Asc)
                    .order_by(Alias::new("id"), Order::Asc),
            )
            .await?;
        rows.iter().map(webhook_of).collect()
    }

    /// One webhook of the tenant.
    pub async fn get(&self, subject: &Subject, id: Uuid) -> Result<Webhook, EventsError> {
        let tenant = crate::admin_tenant(subject, "webhooks")?;
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(WEBHOOK_COLUMNS.map(Alias::new))
                    .from(Alias::new("webhooks"))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, self.d())))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant)),
            )
            .await?;
        rows.iter()
            .next()
            .map(webhook_of)
            .transpose()?
            .ok_or_else(|| EventsError::NotFound(format!("webhook `{id}` not found")))
    }

    /// Changes a webhook: the fields present in `input`.
    pub async fn update(
        &self,
        subject: &Subject,
        id: Uuid,
        input: WebhookInput,
    ) -> Result<Webhook, EventsError> {
        let tenant = crate::admin_tenant(subject, "webhooks")?;
        let current = self.get(subject, id).await?;
        let collections = input
            .collections
            .clone()
            .unwrap_or_else(|| current.collections.clone());
        let filter = match &input.filter {
            Some(Json::Null) => None,
            Some(f) => Some(f.clone()),
            None => current.filter.clone(),
        };
        self.check_input(tenant, &input, &collections, filter.as_ref())
            .await?;
        let d = self.d();
        let mut q = Query::update();
        q.table(Alias::new("webhooks"))
            .value(Alias::new("updated_at"), ts_value(now(), d))
            .value(
                Alias::new("collections"),
                json_value(Some(&json!(collections)), d),
            )
            .value(Alias::new("filter"), json_value(filter.as_ref(), d))
            .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, d)))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
        if let Some(n) = input.name {
            q.value(Alias::new("name"), n);
        }
        if let Some(u) = input.url {
            q.value(Alias::new("url"), u);
        }
        if let Some(a) = input.events {
            q.value(Alias::new("actions"), json_value(Some(&json!(a)), d));
        }
        if let Some(h) = input.headers {
            q.value(Alias::new("headers"), json_value(Some(&json!(h)), d));
        }
        if let Some(e) = input.enabled {
            q.value(Alias::new("enabled"), bool_value(e, d));
            if e {
                q.value(
                    Alias::new("disabled_reason"),
                    sea_query::Value::String(None),
                );
            }
        }
        self.db().execute(&q).await?;
        self.changed().await;
        self.get(subject, id).await
    }

    /// Deletes a webhook with its deliveries and their log.
    pub async fn delete(&self, subject: &Subject, id: Uuid) -> Result<(), EventsError> {
        let tenant = crate::admin_tenant(subject, "webhooks")?.to_owned();
        self.get(subject, id).await?;
        let d = self.d();
        let mut tx = self.db().begin().await?;
        tx.execute(
            Query::delete()
                .from_table(Alias::new("webhook_attempts"))
                .and_where(
                    Expr::col(Alias::new("delivery_id")).in_subquery(
                        Query::select()
                            .column(Alias::new("id"))
                            .from(Alias::new("webhook_deliveries"))
                            .and_where(Expr::col(Alias::new("webhook_id")).eq(uuid_value(id, d)))
                            .to_owned(),
                    ),
                ),
        )
        .await?;
        for table in ["webhook_deliveries", "webhooks"] {
            let key = if table == "webhooks" {
                "id"
            } else {
                "webhook_id"
            };
            tx.execute(
                Query::delete()
                    .from_table(Alias::new(table))
                    .and_where(Expr::col(Alias::new(key)).eq(uuid_value(id, d)))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.as_str())),
            )
            .await?;
        }
        tx.commit().await?;
        self.changed().await;
        Ok(())
    }

    /// Gives a webhook a new secret and returns it; the previous one keeps signing alongside
    /// for [`WebhookConfig::rotation_overlap`] (receivers accept either meanwhile).
    pub async fn rotate(&self, subject: &Subject, id: Uuid) -> Result<WithSecret, EventsError> {
        let tenant = crate::admin_tenant(subject, "webhooks")?;
        self.get(subject, id).await?;
        let d = self.d();
        let secret = new_secret()?;
        let until = now() + self.inner.config.rotation_overlap;
        self.db()
            .execute(
                Query::update()
                    .table(Alias::new("webhooks"))
                    .value(
                        Alias::new("previous_secret"),
                        Expr::col(Alias::new("secret")),
                    )
                    .value(Alias::new("previous_until"), ts_value(until, d))
                    .value(Alias::new("secret"), secret.expose())
                    .value(Alias::new("updated_at"), ts_value(now(), d))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, d)))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant)),
            )
            .await?;
        self.changed().await;
        Ok(WithSecret {
            webhook: self.get(subject, id).await?,
            secret: secret.expose(),
        })
    }

    /// A webhook's deliveries, newest first.
    pub async fn deliveries(
        &self,
        subject: &Subject,
        id: Uuid,
        query: &DeliveryQuery,
    ) -> Result<Vec<Delivery>, EventsError> {
        self.get(subject, id).await?;
        let d = self.d();
        let mut q = Query::select();
        q.columns(DELIVERY_COLUMNS.map(Alias::new))
            .from(Alias::new("webhook_deliveries"))
            .and_where(Expr::col(Alias::new("webhook_id")).eq(uuid_value(id, d)))
            .order_by(Alias::new("created_at"), Order::Desc)
            .order_by(Alias::new("id"), Order::Desc);
        if let Some(s) = query.state {
            q.and_where(Expr::col(Alias::new("state")).eq(s.as_str()));
        }
        let limit = query.limit.unwrap_or(50).clamp(1, 500);
        let offset = Ord::min(query.offset.unwrap_or(0), 1_000_000);
        let rows = self.db().fetch_page(&q, limit, offset).await?;
        rows.iter().map(delivery_of).collect()
    }

    /// One delivery of a webhook, with every attempt.
    pub async fn delivery(
        &self,
        subject: &Subject,
        id: Uuid,
        delivery: Uuid,
    ) -> Result<Delivery, EventsError> {
        self.get(subject, id).await?;
        let d = self.d();
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(DELIVERY_COLUMNS.map(Alias::new))
                    .from(Alias::new("webhook_deliveries"))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(delivery, d)))
                    .and_where(Expr::col(Alias::new("webhook_id")).eq(uuid_value(id, d))),
            )
            .await?;
        let mut out = rows
            .iter()
            .next()
            .map(delivery_of)
            .transpose()?
            .ok_or_else(|| EventsError::NotFound(format!("delivery `{delivery}` not found")))?;
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(
                        ["attempt", "started_at", "status", "error", "duration_ms"].map(Alias::new),
                    )
                    .from(Alias::new("webhook_attempts"))
                    .and_where(Expr::col(Alias::new("delivery_id")).eq(uuid_value(delivery, d)))
                    .order_by(Alias::new("started_at"), Order::Asc)
                    .order_by(Alias::new("attempt"), Order::Asc),
            )
            .await?;
        let mut log = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            log.push(Attempt {
                attempt: r.int("attempt")?.unwrap_or(0),
                started_at: r.ts_text("started_at")?.unwrap_or_default(),
                status: r.int("status")?,
                error: r.text("error")?,
                duration_ms: r.int("duration_ms")?.unwrap_or(0),
            });
        }
        out.log = Some(log);
        Ok(out)
    }

    /// Sends a delivery again now, with the same `webhook-id` and body, whatever its state; a
    /// failure is retried on the schedule from its start.
    pub async fn redeliver(
        &self,
        subject: &Subject,
        id: Uuid,
        delivery: Uuid,
    ) -> Result<Delivery, EventsError> {
        let mut out = self.delivery(subject, id, delivery).await?;
        let d = self.d();
        let at = now();
        // One statement, so a sender cannot claim it between a check and the reset: a delivery
        // being sent (leased) is not sent again beside it.
        let reset = self
            .db()
            .execute(
                Query::update()
                    .table(Alias::new("webhook_deliveries"))
                    .value(Alias::new("state"), DeliveryState::Pending.as_str())
                    .value(Alias::new("next_at"), ts_value(at, d))
                    .value(Alias::new("lease_until"), ts_null(d))
                    .value(Alias::new("claim"), uuid_null(d))
                    .value(Alias::new("updated_at"), ts_value(at, d))
                    // The schedule restarts; the attempt numbers in the log continue.
                    .value(Alias::new("attempts"), 0)
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(out.id, d)))
                    .and_where(
                        Expr::col(Alias::new("lease_until"))
                            .is_null()
                            .or(Expr::col(Alias::new("lease_until")).lte(ts_value(at, d))),
                    ),
            )
            .await?;
        if reset == 0 {
            return Err(EventsError::Conflict(
                "the delivery is being sent now: redeliver it once this attempt is logged".into(),
            ));
        }
        self.inner.send_wake.notify_one();
        // What was set (a sender may already be at it).
        let stamp = workeros_core::instant::rfc3339(at);
        out.state = DeliveryState::Pending;
        out.attempts = 0;
        out.next_at = Some(stamp.clone());
        out.updated_at = stamp;
        out.log = None;
        Ok(out)
    }

    /// These webhooks (by id), or every enabled one when `ids` is empty, with their signing
    /// secrets.
    async fn targets(&self, ids: &[Uuid]) -> Result<Vec<Target>, EventsError> {
        let d = self.d();
        let mut q = Query::select();
        q.columns(WEBHOOK_COLUMNS.map(Alias::new))
            .columns(["secret", "previous_secret", "previous_until"].map(Alias::new))
            .from(Alias::new("webhooks"));
        if ids.is_empty() {
            q.and_where(Expr::col(Alias::new("enabled")).eq(bool_value(true, d)));
        } else {
            q.and_where(Expr::col(Alias::new("id")).is_in(ids.iter().map(|i| uuid_value(*i, d))));
        }
        let rows = self.db().fetch_all(&q).await?;
        let at = now();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            let mut secrets = Vec::new();
            if let Some(s) = r.text("secret")? {
                secrets.push(Secret::parse(&s).map_err(EventsError::internal)?);
            }
            if let (Some(p), Some(until)) = (r.text("previous_secret")?, r.ts("previous_until")?)
                && until > at
            {
                secrets.push(Secret::parse(&p).map_err(EventsError::internal)?);
            }
            out.push(Target {
                webhook: webhook_of(r)?,
                tenant: r.text("tenant_id")?.unwrap_or_default(),
                secrets,
            });
        }
        Ok(out)
    }

    /// Moves committed events from the outbox into deliveries: one transaction per batch, which
    /// also moves the dispatcher's cursor. Returns how many events it consumed (0: none waiting,
    /// or another instance is dispatching).
    ///
    /// The webhooks and their filters are loaded before the claim: while it is held, nothing
    /// but its own transaction touches the database (an in-memory SQLite database has one
    /// connection). Inside the claim a stamp of the enabled webhooks (count, newest change) is
    /// compared with what was loaded; when it differs the claim is let go and the webhooks
    /// loaded again, so an event is matched against the webhooks as of its commit.
    pub async fn dispatch_once(&self) -> Result<usize, EventsError> {
        let store = &self.inner.store;
        let mut tries = 0;
        let (targets, filters, mut claim) = loop {
            tries += 1;
            let (targets, filters) = self.current_targets().await?;
            let Some(mut claim) = store
                .claim_outbox(CONSUMER, self.inner.config.dispatch_batch)
                .await?
            else {
                return Ok(0);
            };
            if claim.events().is_empty() {
                return Ok(0);
            }
            // The webhooks as of the claimed events: a webhook made or changed since they were
            // loaded (here or on another instance) is loaded before the events are matched.
            let now = crate::jobs::stamp(claim.tx(), "webhooks", "enabled").await?;
            let loaded =
                crate::jobs::stamp_of(targets.iter().map(|t| t.webhook.updated_at.as_str()));
            if now == loaded || tries >= 3 {
                break (targets, filters, claim);
            }
            drop(claim);
            self.changed().await;
        };
        let n = claim.events().len();
        let mut made = 0;
        if !targets.is_empty() {
            let events: Vec<Event> = claim.events().to_vec();
            let at = now();
            let d = claim.tx().dialect();
            let mut rows: Vec<(&Target, &Event, Arc<str>)> = Vec::new();
            for e in &events {
                let mut body: Option<Arc<str>> = None;
                for t in targets.iter() {
                    if !wants(t, e, &filters) {
                        continue;
                    }
                    let payload = body.get_or_insert_with(|| payload(e).into()).clone();
                    rows.push((t, e, payload));
                }
            }
            made = rows.len();
            for chunk in rows.chunks(200) {
                insert_deliveries(claim.tx(), d, chunk, at).await?;
            }
        }
        claim.commit().await?;
        if made > 0 {
            self.inner.send_wake.notify_one();
        }
        Ok(n)
    }

    /// The enabled webhooks of every tenant with their filters bound (cached for
    /// [`WebhookConfig::poll`]: filters are checked when the webhooks are loaded, not at every
    /// dispatch).
    async fn current_targets(&self) -> Result<Cached, EventsError> {
        let mut cached = self.inner.targets.lock().await;
        if let Some((at, t)) = cached.as_ref()
            && at.elapsed() < self.inner.config.poll
        {
            return Ok(t.clone());
        }
        let targets = self.targets(&[]).await?;
        let filters = self.filters(&targets).await?;
        let fresh = (Arc::new(targets), Arc::new(filters));
        *cached = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// Forgets the cached webhooks (after a change through this instance).
    async fn changed(&self) {
        *self.inner.targets.lock().await = None;
    }

    /// Checks and binds the targets' filters against their collections.
    async fn filters(&self, targets: &[Target]) -> Result<Filters, EventsError> {
        let mut out = Filters::new();
        for t in targets {
            let Some(filter) = &t.webhook.filter else {
                continue;
            };
            for c in &t.webhook.collections {
                let bound =
                    crate::trigger::bind(&self.inner.store, "webhooks", &t.tenant, c, filter)
                        .await?;
                out.insert((t.webhook.id, c.clone()), bound);
            }
        }
        Ok(out)
    }

    /// Claims up to `n` due deliveries for this process.
    async fn claim_due(&self, n: usize, claim: Uuid) -> Result<Vec<Due>, EventsError> {
        let rows = claim_due(
            self.db(),
            "webhook_deliveries",
            &["id", "webhook_id", "payload", "attempts", "tries"],
            None,
            n,
            self.inner.config.lease,
            claim,
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            out.push(Due {
                id: parse_uuid(r.uuid_text("id")?)?,
                webhook: parse_uuid(r.uuid_text("webhook_id")?)?,
                payload: r.text("payload")?.unwrap_or_default(),
                attempts: r.int("attempts")?.unwrap_or(0),
                tries: r.int("tries")?.unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// [`attempt`](Self::attempt) within the request timeout (whatever the guard's client was
    /// built with), so an attempt never outlives the lease it holds.
    async fn attempt_within(&self, due: Due, target: Option<Arc<Target>>, claim: Uuid) -> Outcome {
        let (id, attempts, tries) = (due.id, due.attempts, due.tries);
        let limit = self
            .inner
            .config
            .timeout
            .min(self.inner.config.lease.mul_f64(0.9));
        let started = now();
        match tokio::time::timeout(limit, self.attempt(due, target, claim)).await {
            Ok(o) => o,
            Err(_) => Outcome {
                id,
                claim,
                attempts: attempts + 1,
                tries: tries + 1,
                give_up: false,
                webhook: None,
                started,
                status: None,
                error: Some("the request timed out".into()),
                duration_ms: i64::try_from(limit.as_millis()).unwrap_or(i64::MAX),
            },
        }
    }

    /// Sends one delivery.
    async fn attempt(&self, due: Due, target: Option<Arc<Target>>, claim: Uuid) -> Outcome {
        let started = now();
        let clock = Instant::now();
        let mut out = Outcome {
            id: due.id,
            claim,
            attempts: due.attempts + 1,
            tries: due.tries + 1,
            give_up: false,
            webhook: None,
            started,
            status: None,
            error: None,
            duration_ms: 0,
        };
        let Some(t) = target.filter(|t| t.webhook.enabled) else {
            out.error = Some("the webhook is disabled or gone".into());
            out.give_up = true;
            return out;
        };
        out.webhook = Some(t.webhook.id);
        let id = due.id.to_string();
        let ts = started.unix_timestamp();
        let signature = t
            .secrets
            .iter()
            .map(|s| s.sign(&id, ts, due.payload.as_bytes()))
            .collect::<Vec<_>>()
            .join(" ");
        let sent = match self
            .inner
            .guard
            .request(reqwest::Method::POST, &t.webhook.url)
        {
            Err(e) => Err(e.to_string()),
            Ok(mut req) => {
                for (k, v) in &t.webhook.headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                req.header("content-type", "application/json")
                    .header("webhook-id", id.as_str())
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", signature)
                    .body(due.payload)
                    .send()
                    .await
                    .map_err(|e| crate::guard::describe(&e))
            }
        };
        match sent {
            Ok(mut resp) => {
                out.status = Some(resp.status().as_u16());
                // Read a little of the body so the connection can be reused; the rest is
                // dropped with it.
                let mut read = 0;
                while read < 16 * 1024 {
                    match resp.chunk().await {
                        Ok(Some(c)) => read += c.len(),
                        _ => break,
                    }
                }
            }
            Err(e) => out.error = Some(e),
        }
        out.duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        out
    }

    /// Writes what attempts came to, in one transaction: the attempt log in one multi-row
    /// insert and the successes in one update per chunk (a round trip per statement is what
    /// bounds throughput on PostgreSQL); failures one by one.
    async fn record(&self, outcomes: &[Outcome]) -> Result<(), EventsError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let d = self.d();
        let schedule = &self.inner.config.schedule;
        let at = now();
        let mut tx = self.db().begin().await?;
        let mut disabled = false;
        let mut errors: Vec<Option<String>> = Vec::with_capacity(outcomes.len());
        let (ok, failed): (Vec<&Outcome>, Vec<&Outcome>) = outcomes
            .iter()
            .partition(|o| o.status.is_some_and(|s| (200..300).contains(&s)));
        for chunk in ok.chunks(256) {
            let case = |f: &dyn Fn(&Outcome) -> sea_query::Value| {
                let mut c = sea_query::CaseStatement::new();
                for o in chunk {
                    c = c.case(
                        Expr::col(Alias::new("id")).eq(uuid_value(o.id, d)),
                        Expr::val(f(o)),
                    );
                }
                c
            };
            let mut matching = sea_query::Condition::any();
            for o in chunk {
                matching = matching.add(
                    Expr::col(Alias::new("id"))
                        .eq(uuid_value(o.id, d))
                        .and(Expr::col(Alias::new("claim")).eq(uuid_value(o.claim, d))),
                );
            }
            tx.execute(
                Query::update()
                    .table(Alias::new("webhook_deliveries"))
                    .value(Alias::new("state"), DeliveryState::Succeeded.as_str())
                    .value(Alias::new("attempts"), case(&|o| o.attempts.into()))
                    .value(Alias::new("tries"), case(&|o| o.tries.into()))
                    .value(
                        Alias::new("last_status"),
                        case(&|o| o.status.map(i64::from).into()),
                    )
                    .value(Alias::new("last_error"), sea_query::Value::String(None))
                    .value(
                        Alias::new("last_duration_ms"),
                        case(&|o| o.duration_ms.into()),
                    )
                    .value(Alias::new("lease_until"), ts_null(d))
                    .value(Alias::new("claim"), uuid_null(d))
                    .value(Alias::new("updated_at"), ts_value(at, d))
                    .cond_where(matching),
            )
            .await?;
        }
        for o in &failed {
            let gone = o.status == Some(410);
            let next = next_delay(schedule, o.attempts).filter(|_| !o.give_up);
            let state = if gone || next.is_none() {
                DeliveryState::Failed
            } else {
                DeliveryState::Pending
            };
            let error = match (&o.error, o.status) {
                (Some(e), _) => Some(e.clone()),
                (None, Some(410)) => {
                    Some("the endpoint answered 410 Gone: webhook disabled".into())
                }
                (None, Some(s)) if (300..400).contains(&s) => Some(format!(
                    "the endpoint answered {s}: redirects are not followed"
                )),
                (None, Some(s)) => Some(format!("the endpoint answered {s}")),
                (None, None) => None,
            };
            errors.push(error.clone());
            let next_at = at + jittered(next.unwrap_or_default());
            tx.execute(
                Query::update()
                    .table(Alias::new("webhook_deliveries"))
                    .value(Alias::new("state"), state.as_str())
                    .value(Alias::new("attempts"), o.attempts)
                    .value(Alias::new("tries"), o.tries)
                    .value(Alias::new("next_at"), ts_value(next_at, d))
                    .value(Alias::new("lease_until"), ts_null(d))
                    .value(Alias::new("claim"), uuid_null(d))
                    .value(Alias::new("last_status"), o.status.map(i64::from))
                    .value(Alias::new("last_error"), error)
                    .value(Alias::new("last_duration_ms"), o.duration_ms)
                    .value(Alias::new("updated_at"), ts_value(at, d))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(o.id, d)))
                    .and_where(Expr::col(Alias::new("claim")).eq(uuid_value(o.claim, d))),
            )
            .await?;
            if let (true, Some(w)) = (gone, o.webhook) {
                disabled = true;
                tx.execute(
                    Query::update()
                        .table(Alias::new("webhooks"))
                        .value(Alias::new("enabled"), bool_value(false, d))
                        .value(
                            Alias::new("disabled_reason"),
                            "the endpoint answered 410 Gone",
                        )
                        .value(Alias::new("updated_at"), ts_value(at, d))
                        .and_where(Expr::col(Alias::new("id")).eq(uuid_value(w, d))),
                )
                .await?;
            }
        }
        let logged: Vec<(&Outcome, Option<String>)> = ok
            .iter()
            .map(|o| (*o, None))
            .chain(failed.iter().copied().zip(errors))
            .collect();
        for chunk in logged.chunks(256) {
            let mut q = Query::insert();
            q.into_table(Alias::new("webhook_attempts")).columns(
                [
                    "id",
                    "delivery_id",
                    "attempt",
                    "started_at",
                    "status",
                    "error",
                    "duration_ms",
                ]
                .map(Alias::new),
            );
            for (o, error) in chunk {
                q.values([
                    Expr::val(uuid_value(Uuid::now_v7(), d)),
                    Expr::val(uuid_value(o.id, d)),
                    Expr::val(o.tries),
                    Expr::val(ts_value(o.started, d)),
                    Expr::val(o.status.map(i64::from)),
                    Expr::val(error.clone()),
                    Expr::val(o.duration_ms),
                ])
                .map_err(EventsError::internal)?;
            }
            tx.execute(&q).await?;
        }
        tx.commit().await?;
        if disabled {
            self.changed().await;
        }
        Ok(())
    }

    /// Claims due deliveries, sends them concurrently and records the outcomes; returns how many
    /// it sent. The workers do this continuously; tests and hosts without workers may call it.
    pub async fn send_due(&self) -> Result<usize, EventsError> {
        let jobs = self
            .claim_jobs(self.inner.config.concurrency.max(1))
            .await?;
        let n = jobs.len();
        self.record(&crate::jobs::run_all(jobs).await).await?;
        Ok(n)
    }

    /// Claims up to `n` due deliveries and makes their attempts.
    async fn claim_jobs(&self, n: usize) -> Result<Vec<Job<Outcome>>, EventsError> {
        let claim = Uuid::now_v7();
        let due = self.claim_due(n, claim).await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<Uuid> = due.iter().map(|d| d.webhook).collect();
        ids.sort_unstable();
        ids.dedup();
        let targets: HashMap<Uuid, Arc<Target>> = self
            .targets(&ids)
            .await?
            .into_iter()
            .map(|t| (t.webhook.id, Arc::new(t)))
            .collect();
        Ok(due
            .into_iter()
            .map(|d| {
                let this = self.clone();
                let t = targets.get(&d.webhook).cloned();
                Box::pin(async move { this.attempt_within(d, t, claim).await }) as Job<Outcome>
            })
            .collect())
    }

    /// Runs the dispatcher, the senders and the pruning until [`Workers::shutdown`] (or the
    /// handle's drop).
    pub fn spawn_workers(&self) -> Workers {
        let (a, b, c) = (self.clone(), self.clone(), self.clone());
        Workers::spawn(vec![
            Box::new(move |stop| Box::pin(a.dispatch_loop(stop))),
            Box::new(move |stop| Box::pin(b.send_loop(stop))),
            Box::new(move |stop| Box::pin(c.prune_loop(stop))),
        ])
    }

    /// Deletes finished deliveries (with their attempt logs) last changed before `before`, and
    /// the outbox events older than [`WebhookConfig::outbox_retention`] that every consumer has
    /// passed; returns how many rows went.
    pub async fn prune(&self, before: OffsetDateTime) -> Result<u64, EventsError> {
        let n = crate::jobs::prune_finished(
            self.db(),
            "webhook_deliveries",
            "updated_at",
            before,
            &[("webhook_attempts", "delivery_id")],
        )
        .await?;
        let events = self
            .inner
            .store
            .prune_outbox(now() - self.inner.config.outbox_retention)
            .await?;
        Ok(n + events)
    }

    async fn prune_loop(self, stop: crate::jobs::Stop) {
        let c = &self.inner.config;
        crate::jobs::every(stop, c.prune_every, "webhook and outbox pruning", || {
            self.prune(now() - c.retention)
        })
        .await;
    }

    async fn dispatch_loop(self, stop: crate::jobs::Stop) {
        let c = &self.inner.config;
        dispatch_loop(
            stop,
            &self.inner.dispatch_wake,
            c.poll,
            c.dispatch_batch,
            "webhook dispatch",
            || self.dispatch_once(),
        )
        .await;
    }

    /// Keeps up to `concurrency` requests in flight; records outcomes in batches.
    async fn send_loop(self, stop: crate::jobs::Stop) {
        let c = &self.inner.config;
        pump(
            stop,
            &self.inner.send_wake,
            c.poll,
            c.concurrency,
            c.timeout,
            "webhook deliveries",
            |n| self.claim_jobs(n),
            |outcomes: Vec<Outcome>| {
                let this = &self;
                async move { this.record(&outcomes).await }
            },
        )
        .await;
    }
}

/// Whether webhook `t` receives event `e`.
fn wants(t: &Target, e: &Event, filters: &Filters) -> bool {
    let w = &t.webhook;
    let action_ok = w.events.is_empty() || w.events.iter().any(|a| a == e.action.as_str());
    let filter = w.filter.as_ref().map(|_| {
        filters
            .get(&(w.id, e.collection.clone()))
            .and_then(Option::as_ref)
    });
    t.tenant == e.tenant && crate::trigger::passes(e, action_ok, &w.collections, filter)
}

/// Inserts deliveries in one statement; an existing (webhook, event) pair is left alone.
async fn insert_deliveries(
    tx: &mut Tx,
    d: Dialect,
    rows: &[(&Target, &Event, Arc<str>)],
    at: OffsetDateTime,
) -> Result<(), EventsError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = Query::insert();
    q.into_table(Alias::new("webhook_deliveries")).columns(
        [
            "id",
            "tenant_id",
            "webhook_id",
            "event_id",
            "event_type",
            "payload",
            "state",
            "attempts",
            "tries",
            "next_at",
            "created_at",
            "updated_at",
        ]
        .map(Alias::new),
    );
    for (t, e, payload) in rows {
        q.values([
            Expr::val(uuid_value(Uuid::now_v7(), d)),
            Expr::val(e.tenant.as_str()),
            Expr::val(uuid_value(t.webhook.id, d)),
            Expr::val(uuid_value(e.id, d)),
            Expr::val(format!("{}.{}", e.collection, e.action.as_str())),
            Expr::val(payload.as_ref()),
            Expr::val(DeliveryState::Pending.as_str()),
            Expr::val(0_i64),
            Expr::val(0_i64),
            Expr::val(ts_value(at, d)),
            Expr::val(ts_value(at, d)),
            Expr::val(ts_value(at, d)),
        ])
        .map_err(EventsError::internal)?;
    }
    q.on_conflict(
        sea_query::OnConflict::columns([Alias::new("webhook_id"), Alias::new("event_id")])
            .do_nothing()
            .to_owned(),
    );
    tx.execute(&q).await?;
    Ok(())
}
