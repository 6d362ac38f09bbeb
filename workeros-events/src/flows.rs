//! Flows: a trigger and a chain of operations, configured by tenant admins at runtime, each run
//! recorded step by step.
//!
//! **Triggers.** `event` (collections, actions, a DSL filter on the row), `schedule` (cron, five
//! or six fields), `manual` (`POST /api/flows/{id}/run` by an admin, the body as the trigger
//! data) and `webhook` (`POST /api/flows/{id}/hook?token=…`, the token shown once on create).
//! Event and schedule runs are durable like webhook deliveries: the dispatcher (outbox consumer
//! `flows`) inserts a queued run per (flow, event) in the transaction that moves its cursor, and
//! one per (flow, schedule slot) whichever instance is first; workers claim queued runs with a
//! lease. Manual and webhook runs execute in the request and answer with the run.
//!
//! **Operations.** Each has a unique `key`, a `type` and `options`; it *resolves* (to `resolve`,
//! default the next operation in the list) or *rejects* (to `reject`, default: the run ends
//! failed). Options are templates: a string `"{{ path }}"` is replaced by the value at `path` in
//! the data chain (`$trigger`, `$last`, or an earlier operation's key, then `.field` steps); a
//! string with text around `{{ … }}` is interpolated. Types:
//!
//! | type | options | output |
//! |---|---|---|
//! | `condition` | `filter` (DSL, text or JSON), `on` (a path to an object; default `$last`) | the object; rejects when it does not match |
//! | `transform` | `json` (a template) | the rendered JSON |
//! | `log` | `message` | the message (also logged) |
//! | `request` | `method`, `url`, `headers`, `body` | `{status, data}`; rejects on a non-2xx answer; through the SSRF guard |
//! | `webhook` | `url`, `body` | `{status}`; Standard Webhooks-signed with the flow's secret; through the SSRF guard |
//! | `email` | `to`, `subject`, `body` | `{to}`; through the host's [`EmailSender`] |
//! | `item` | `collection`, `action` (`create`/`update`), `key` (update), `payload`, `permissions` (`admin`, `caller`, `public`) | the written item; through the store's permission pipeline as that subject |
//!
//! Every run keeps each step's key, type, rendered options (its input), output, error and
//! duration (`GET /api/flows/{id}/runs`).
//!
//! **Limits**, since tenant admins write flows: [`MAX_FLOWS`] per tenant, [`MAX_OPERATIONS`] per
//! flow, [`MAX_STEPS`] per run (a loop ends there), [`MAX_VALUE_BYTES`] of rendered options or
//! output per step and [`MAX_RUN_BYTES`] per run, [`FlowsConfig::run_timeout`] per run (shorter
//! than the lease, so a run is not claimed twice while it runs), [`FlowsConfig::min_interval`]
//! between schedule slots, [`FlowsConfig::max_sync_runs`] manual and webhook runs at once (more:
//! `429`), [`FlowsConfig::max_claims`] claims of a queued run. `item` operations state their
//! `permissions`; the events of writes made with `admin` permissions (as `workeros:flows`) start
//! no flow, so a flow cannot start itself. `request` headers are checked like webhook headers.

use crate::EventsError;
use crate::guard::Guard;
use crate::jobs::{Job, PENDING, Stop, Workers, claim_due, dispatch_loop, pump};
use crate::signing::Secret;
use sea_query::{Alias, Expr, ExprTrait, Order, Query, Table, TableCreateStatement};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;
use workeros_core::{Email, EmailSender, Event, EventAction, Subject};
use workeros_dsl::{BoundFilter, Dialect, FieldSpec, Schema, ValueKind};
use workeros_store::migrate::{ColumnKind as K, col};
use workeros_store::values::{
    RowRef, bool_value, json_value, now, ts_null, ts_value, uuid_null, uuid_value,
};
use workeros_store::{Db, NewItems, Store, Written};

/// The outbox consumer of flows.
pub const CONSUMER: &str = "flows";
/// Most operations in a flow.
pub const MAX_OPERATIONS: usize = 50;
/// Most steps in one run (operations can point back: a loop ends here).
pub const MAX_STEPS: usize = 100;
/// Most bytes of a `request` answer kept.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Most bytes (as JSON) of one operation's rendered options or output.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most bytes (as JSON) of all a run's steps together.
pub const MAX_RUN_BYTES: usize = 8 << 20;
/// Most flows per tenant.
pub const MAX_FLOWS: usize = 100;

/// How flows run.
#[derive(Debug, Clone)]
pub struct FlowsConfig {
    /// How long a claimed run belongs to its worker.
    pub lease: Duration,
    /// How often idle workers look for work and cron for due slots.
    pub poll: Duration,
    /// Most runs in flight per process.
    pub concurrency: usize,
    /// Most events one dispatch transaction consumes.
    pub dispatch_batch: u64,
    /// How far back schedules look for slots without a run at start.
    pub catch_up: Duration,
    /// The longest a run may take (shorter than `lease`, so a run is not claimed twice while
    /// it runs); a step still running then is cut off.
    pub run_timeout: Duration,
    /// The shortest interval a flow's schedule may have (tenant admins configure flows).
    pub min_interval: Duration,
    /// Most manual and incoming-webhook runs executing at once in this process (more: `429`).
    pub max_sync_runs: usize,
    /// How many times a queued run is claimed before it is marked failed (its worker died or
    /// could not record it each time).
    pub max_claims: i64,
    /// How long finished runs are kept.
    pub retention: Duration,
    /// How often the workers prune.
    pub prune_every: Duration,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(300),
            poll: Duration::from_secs(1),
            concurrency: 16,
            dispatch_batch: 500,
            catch_up: Duration::from_secs(300),
            run_timeout: Duration::from_secs(240),
            min_interval: Duration::from_secs(60),
            max_sync_runs: 16,
            max_claims: 3,
            retention: Duration::from_secs(30 * 24 * 3600),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// What starts a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Trigger {
    /// Committed item events.
    Event {
        /// Collection slugs; empty: all.
        #[serde(default)]
        collections: Vec<String>,
        /// Actions (`create`, `update`, `delete`); empty: all.
        #[serde(default)]
        actions: Vec<String>,
        /// A DSL filter on the row (needs `collections`).
        #[serde(default)]
        filter: Option<Json>,
    },
    /// A cron schedule.
    Schedule {
        /// Five fields, or six with seconds first.
        cron: String,
    },
    /// `POST /api/flows/{id}/run`.
    Manual,
    /// `POST /api/flows/{id}/hook?token=…`.
    Webhook,
}

/// One operation of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// Unique within the flow; names its output in the data chain.
    pub key: String,
    /// `condition`, `transform`, `log`, `request`, `webhook`, `email` or `item`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The type's options (templates).
    #[serde(default)]
    pub options: Map<String, Json>,
    /// Where to go when it resolves (default: the next operation).
    #[serde(default)]
    pub resolve: Option<String>,
    /// Where to go when it rejects (default: the run fails).
    #[serde(default)]
    pub reject: Option<String>,
}

/// A flow as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    /// Its id.
    pub id: Uuid,
    /// A label.
    pub name: String,
    /// Whether its trigger starts it.
    pub active: bool,
    /// The trigger.
    pub trigger: Trigger,
    /// The operations; the first starts the chain.
    pub operations: Vec<Operation>,
    /// When it was made.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// A flow to create, or the changes to one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowInput {
    /// A label.
    pub name: Option<String>,
    /// Whether its trigger starts it (default `true`).
    pub active: Option<bool>,
    /// The trigger (required on create).
    pub trigger: Option<Trigger>,
    /// The operations (required on create, at least one).
    pub operations: Option<Vec<Operation>>,
}

/// A created flow with its secrets, shown once: the `webhook` operation's signing secret and
/// the incoming-webhook token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    /// The flow.
    pub flow: Flow,
    /// `whsec_…`: what receivers of its `webhook` operations verify with.
    pub secret: String,
    /// The `token` of `POST /api/flows/{id}/hook`.
    pub hook_token: String,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The operation's key.
    pub key: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// `resolved` or `rejected`.
    pub status: String,
    /// Its options, rendered.
    pub input: Json,
    /// What it produced.
    pub output: Json,
    /// Why it rejected.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

/// A run of a flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowRun {
    /// Its id.
    pub id: Uuid,
    /// The flow.
    pub flow_id: Uuid,
    /// `event`, `schedule`, `manual` or `webhook`.
    pub trigger: String,
    /// `queued`, `succeeded` or `failed`.
    pub status: String,
    /// The trigger's data.
    pub data: Json,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When it finished.
    pub finished_at: Option<String>,
}

pub(crate) fn flows_v3(d: Dialect) -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table(Alias::new("flows"))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("name", K::Text, d).not_null())
            .col(col("active", K::Bool, d).not_null())
            .col(col("trigger", K::Json, d).not_null())
            .col(col("operations", K::Json, d).not_null())
            .col(col("secret", K::Text, d).not_null())
            .col(col("hook_token_hash", K::Text, d).not_null())
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("updated_at", K::Ts, d).not_null())
            .to_owned(),
        Table::create()
            .table(Alias::new("flow_runs"))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("flow_id", K::Uuid, d).not_null())
            .col(col("tenant_id", K::Text, d).not_null())
            .col(col("trigger", K::Text, d).not_null())
            .col(col("event_id", K::Uuid, d))
            .col(col("slot", K::Ts, d))
            .col(col("data", K::Json, d))
            .col(col("state", K::Text, d).not_null())
            .col(col("claims", K::BigInt, d).not_null())
            .col(col("steps", K::Json, d))
            .col(col("error", K::Text, d))
            .col(col("next_at", K::Ts, d).not_null())
            .col(col("lease_until", K::Ts, d))
            .col(col("claim", K::Uuid, d))
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("finished_at", K::Ts, d))
            .to_owned(),
    ]
}

pub(crate) fn flows_v3_indexes() -> Vec<sea_query::IndexCreateStatement> {
    use workeros_store::migrate::index;
    vec![
        index("flows_tenant", "flows", &["tenant_id"], false),
        index(
            "flow_runs_event",
            "flow_runs",
            &["flow_id", "event_id"],
            true,
        ),
        index("flow_runs_slot", "flow_runs", &["flow_id", "slot"], true),
        index("flow_runs_due", "flow_runs", &["state", "next_at"], false),
        index(
            "flow_runs_log",
            "flow_runs",
            &["flow_id", "created_at"],
            false,
        ),
    ]
}

/// A flow as the engine needs it.
#[derive(Clone)]
struct Loaded {
    flow: Flow,
    tenant: String,
    secret: Secret,
    schedule: Option<cron::Schedule>,
}

/// Flows of every tenant: the admin API, the dispatcher, cron and the workers. Register it as
/// an [`EventSink`](workeros_core::EventSink) so writes wake the dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Flows {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    guard: Guard,
    email: Option<Arc<dyn EmailSender>>,
    config: FlowsConfig,
    dispatch_wake: Notify,
    run_wake: Notify,
    cache: tokio::sync::Mutex<Option<(Instant, Active)>>,
    /// Manual and incoming-webhook runs executing now.
    sync_runs: tokio::sync::Semaphore,
    /// Per schedule flow: slots after this were looked at.
    since: std::sync::Mutex<HashMap<Uuid, OffsetDateTime>>,
}

impl std::fmt::Debug for Flows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flows")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl workeros_core::EventSink for Flows {
    async fn deliver(&self, _events: &[Event]) -> Result<(), workeros_core::CoreError> {
        self.inner.dispatch_wake.notify_one();
        Ok(())
    }
}

fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const KINDS: [&str; 7] = [
    "condition",
    "transform",
    "log",
    "request",
    "webhook",
    "email",
    "item",
];

fn check_flow(
    trigger: &Trigger,
    ops: &[Operation],
    min_interval: Duration,
) -> Result<(), EventsError> {
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        return Err(EventsError::invalid(
            "operations",
            format!("a flow has 1 to {MAX_OPERATIONS} operations"),
        ));
    }
    let keys: Vec<&str> = ops.iter().map(|o| o.key.as_str()).collect();
    for (i, o) in ops.iter().enumerate() {
        let key_ok = !o.key.is_empty()
            && o.key.len() <= 64
            && !o.key.starts_with('$')
            && o.key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !key_ok {
            return Err(EventsError::invalid(
                "operations",
                format!(
                    "operation key `{}`: use 1 to 64 letters, digits, `_` or `-`",
                    o.key
                ),
            ));
        }
        if keys.iter().take(i).any(|k| *k == o.key) {
            return Err(EventsError::invalid(
                "operations",
                format!("operation key `{}` is used twice", o.key),
            ));
        }
        if !KINDS.contains(&o.kind.as_str()) {
            return Err(EventsError::invalid(
                "operations",
                format!(
                    "operation `{}` has unknown type `{}`: use one of {}",
                    o.key,
                    o.kind,
                    KINDS.join(", ")
                ),
            ));
        }
        if o.kind == "item"
            && !matches!(
                o.options.get("permissions").and_then(Json::as_str),
                Some("admin" | "caller" | "public")
            )
        {
            return Err(EventsError::invalid(
                "operations",
                format!(
                    "operation `{}` writes items: state its `permissions` (`admin`, `caller` or `public`)",
                    o.key
                ),
            ));
        }
        for target in [&o.resolve, &o.reject].into_iter().flatten() {
            if !keys.contains(&target.as_str()) {
                return Err(EventsError::invalid(
                    "operations",
                    format!(
                        "operation `{}` points to `{target}`, which is not an operation",
                        o.key
                    ),
                ));
            }
        }
    }
    match trigger {
        Trigger::Schedule { cron } => {
            let schedule = crate::functions::parse_cron(cron)?;
            if crate::functions::min_gap(&schedule).is_some_and(|g| g < min_interval) {
                return Err(EventsError::invalid(
                    "trigger",
                    format!(
                        "`{cron}` runs more often than every {} s, the shortest interval allowed",
                        min_interval.as_secs()
                    ),
                ));
            }
        }
        Trigger::Event { actions, .. } => {
            for a in actions {
                if EventAction::from_name(a).is_none() {
                    return Err(EventsError::invalid(
                        "trigger",
                        format!("unknown event `{a}`: use `create`, `update` or `delete`"),
                    ));
                }
            }
        }
        Trigger::Manual | Trigger::Webhook => {}
    }
    Ok(())
}

fn flow_of(r: RowRef<'_>) -> Result<Flow, EventsError> {
    let trigger = r
        .json("trigger")?
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or(Trigger::Manual);
    let operations = r
        .json("operations")?
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default();
    Ok(Flow {
        id: Uuid::try_parse(&r.uuid_text("id")?.unwrap_or_default())
            .map_err(EventsError::internal)?,
        name: r.text("name")?.unwrap_or_default(),
        active: r.boolean("active")?.unwrap_or(false),
        trigger,
        operations,
        created_at: r.ts_text("created_at")?.unwrap_or_default(),
        updated_at: r.ts_text("updated_at")?.unwrap_or_default(),
    })
}

const FLOW_COLUMNS: [&str; 10] = [
    "id",
    "tenant_id",
    "name",
    "active",
    "trigger",
    "operations",
    "secret",
    "hook_token_hash",
    "created_at",
    "updated_at",
];

const RUN_COLUMNS: [&str; 10] = [
    "id",
    "flow_id",
    "trigger",
    "state",
    "data",
    "steps",
    "error",
    "created_at",
    "finished_at",
    "tenant_id",
];

fn run_of(r: RowRef<'_>) -> Result<FlowRun, EventsError> {
    Ok(FlowRun {
        id: Uuid::try_parse(&r.uuid_text("id")?.unwrap_or_default())
            .map_err(EventsError::internal)?,
        flow_id: Uuid::try_parse(&r.uuid_text("flow_id")?.unwrap_or_default())
            .map_err(EventsError::internal)?,
        trigger: r.text("trigger")?.unwrap_or_default(),
        status: match r.text("state")?.as_deref() {
            Some(PENDING) => "queued".into(),
            Some(s) => s.to_owned(),
            None => String::new(),
        },
        data: r.json("data")?.unwrap_or(Json::Null),
        steps: r
            .json("steps")?
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default(),
        error: r.text("error")?,
        created_at: r.ts_text("created_at")?.unwrap_or_default(),
        finished_at: r.ts_text("finished_at")?,
    })
}

/// The value at `path` (`$trigger.item.title`, `$last`, `key.field`, `list.0`) in `chain`.
fn lookup<'a>(chain: &'a Map<String, Json>, path: &str) -> Option<&'a Json> {
    let mut parts = path.trim().split('.');
    let mut v = chain.get(parts.next()?)?;
    for p in parts {
        v = match v {
            Json::Object(m) => m.get(p)?,
            Json::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// The approximate size of `v` as JSON text, counted up to `limit` (then `limit + 1`).
pub(crate) fn json_size(v: &Json, limit: usize) -> usize {
    fn walk(v: &Json, acc: &mut usize, limit: usize) {
        if *acc > limit {
            return;
        }
        match v {
            Json::Null | Json::Bool(_) => *acc += 5,
            Json::Number(_) => *acc += 20,
            // Quotes, backslashes and control characters are escaped (up to 6 bytes).
            Json::String(s) => {
                *acc += s.len()
                    + 2
                    + 5 * s
                        .bytes()
                        .filter(|b| *b < 0x20 || *b == b'"' || *b == b'\\')
                        .count();
            }
            Json::Array(a) => {
                *acc += 2;
                for x in a {
                    walk(x, acc, limit);
                    *acc += 1;
                }
            }
            Json::Object(m) => {
                *acc += 2;
                for (k, x) in m {
                    *acc += k.len() + 4;
                    walk(x, acc, limit);
                }
            }
        }
    }
    let mut acc = 0;
    walk(v, &mut acc, limit);
    acc.min(limit.saturating_add(1))
}

/// Renders a template: `"{{ path }}"` alone becomes the value (any type); `{{ path }}` inside
/// text is interpolated (strings as they are, other values as JSON); objects and arrays
/// render recursively. The result may not exceed [`MAX_VALUE_BYTES`] (a template that repeats a
/// large value is refused, not rendered).
pub fn render(template: &Json, chain: &Map<String, Json>) -> Result<Json, String> {
    let mut budget = MAX_VALUE_BYTES;
    render_within(template, chain, &mut budget)
}

fn charge(budget: &mut usize, n: usize) -> Result<(), String> {
    *budget = budget
        .checked_sub(n)
        .ok_or_else(|| format!("the rendered options exceed {MAX_VALUE_BYTES} bytes"))?;
    Ok(())
}

fn render_within(
    template: &Json,
    chain: &Map<String, Json>,
    budget: &mut usize,
) -> Result<Json, String> {
    Ok(match template {
        Json::String(s) => {
            let t = s.trim();
            if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
                && !inner.contains("{{")
            {
                let v = lookup(chain, inner).unwrap_or(&Json::Null);
                charge(budget, json_size(v, *budget))?;
                return Ok(v.clone());
            }
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some((before, after)) = rest.split_once("{{") {
                let Some((path, tail)) = after.split_once("}}") else {
                    break;
                };
                charge(budget, before.len())?;
                out.push_str(before);
                match lookup(chain, path) {
                    Some(Json::String(v)) => {
                        charge(budget, v.len())?;
                        out.push_str(v);
                    }
                    Some(Json::Null) | None => {}
                    Some(v) => {
                        charge(budget, json_size(v, *budget))?;
                        out.push_str(&v.to_string());
                    }
                }
                rest = tail;
            }
            charge(budget, rest.len())?;
            out.push_str(rest);
            Json::String(out)
        }
        Json::Array(a) => Json::Array(
            a.iter()
                .map(|v| render_within(v, chain, budget))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), render_within(v, chain, budget)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// A DSL filter (text or JSON form) matched against an object whose field types are read off
/// its values.
fn matches_object(filter: &Json, object: &Map<String, Json>) -> Result<bool, String> {
    let parsed = match filter {
        Json::String(s) => workeros_dsl::parse_any(s),
        other => workeros_dsl::from_json(other),
    }
    .map_err(|e| format!("the filter does not parse: {e}"))?;
    let mut schema = Schema::new();
    for (k, v) in object {
        let kind = match v {
            Json::String(_) => ValueKind::Text,
            Json::Number(n) if n.is_i64() => ValueKind::Integer,
            Json::Number(_) => ValueKind::Number,
            Json::Bool(_) => ValueKind::Boolean,
            _ => ValueKind::Json,
        };
        if let Ok(spec) = FieldSpec::new(k, kind) {
            let _ = schema.add(spec);
        }
    }
    let checked = parsed
        .check(&schema)
        .map_err(|e| format!("the filter does not fit the data: {e}"))?;
    let subject = Subject::anonymous();
    Ok(checked.bind(&subject, now()).matches(object))
}

impl Flows {
    /// Flows over `store`, making requests through `guard` and sending email through `email`
    /// (without one, `email` operations reject).
    pub fn new(
        store: Store,
        guard: Guard,
        email: Option<Arc<dyn EmailSender>>,
        config: FlowsConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                sync_runs: tokio::sync::Semaphore::new(config.max_sync_runs.max(1)),
                store,
                guard,
                email,
                config,
                dispatch_wake: Notify::new(),
                run_wake: Notify::new(),
                cache: tokio::sync::Mutex::new(None),
                since: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    fn db(&self) -> &Db {
        self.inner.store.db()
    }

    async fn changed(&self) {
        *self.inner.cache.lock().await = None;
    }

    async fn check_trigger_fields(
        &self,
        tenant: &str,
        trigger: &Trigger,
    ) -> Result<(), EventsError> {
        if let Trigger::Event {
            collections,
            filter,
            ..
        } = trigger
        {
            crate::trigger::check(
                &self.inner.store,
                "flows",
                tenant,
                collections,
                filter.as_ref(),
                "trigger",
            )
            .await?;
        }
        Ok(())
    }

    /// Creates a flow; returns it with its secrets (shown once).
    pub async fn create(
        &self,
        subject: &Subject,
        input: FlowInput,
    ) -> Result<Created, EventsError> {
        let tenant = crate::admin_tenant(subject, "flows")?;
        let Some(trigger) = input.trigger else {
            return Err(EventsError::invalid("trigger", "a flow needs a `trigger`"));
        };
        let operations = input.operations.unwrap_or_default();
        check_flow(&trigger, &operations, self.inner.config.min_interval)?;
        if self.list(subject).await?.len() >= MAX_FLOWS {
            return Err(EventsError::invalid(
                "trigger",
                format!("a tenant has at most {MAX_FLOWS} flows: delete one first"),
            ));
        }
        self.check_trigger_fields(tenant, &trigger).await?;
        let name = input.name.unwrap_or_else(|| "flow".into());
        if name.trim().is_empty() || name.len() > 200 {
            return Err(EventsError::invalid(
                "name",
                "a name is 1 to 200 characters",
            ));
        }
        let d = self.db().dialect();
        let id = Uuid::now_v7();
        let secret = Secret::from_bytes(crate::jobs::random_bytes()?.to_vec())
            .map_err(EventsError::internal)?;
        let token: String = crate::jobs::random_bytes()?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let at = now();
        self.db()
            .execute(
                Query::insert()
                    .into_table(Alias::new("flows"))
                    .columns(FLOW_COLUMNS.map(Alias::new))
                    .values([
                        Expr::val(uuid_value(id, d)),
                        Expr::val(tenant),
                        Expr::val(name),
                        Expr::val(bool_value(input.active.unwrap_or(true), d)),
                        Expr::val(json_value(Some(&json!(trigger)), d)),
                        Expr::val(json_value(Some(&json!(operations)), d)),
                        Expr::val(secret.expose()),
                        Expr::val(hash_token(&token)),
                        Expr::val(ts_value(at, d)),
                        Expr::val(ts_value(at, d)),
                    ])
                    .map_err(EventsError::internal)?,
            )
            .await?;
        self.changed().await;
        Ok(Created {
            flow: self.get(subject, id).await?,
            secret: secret.expose(),
            hook_token: token,
        })
    }

    /// Flow `id` (of `tenant`, when given) with the SHA-256 of its hook token.
    async fn row(
        &self,
        tenant: Option<&str>,
        id: Uuid,
    ) -> Result<Option<(Loaded, String)>, EventsError> {
        let d = self.db().dialect();
        let mut q = Query::select();
        q.columns(FLOW_COLUMNS.map(Alias::new))
            .from(Alias::new("flows"))
            .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, d)));
        if let Some(t) = tenant {
            q.and_where(Expr::col(Alias::new("tenant_id")).eq(t));
        }
        let rows = self.db().fetch_all(&q).await?;
        let Some(r) = rows.iter().next() else {
            return Ok(None);
        };
        Ok(Some((
            loaded_of(r)?,
            r.text("hook_token_hash")?.unwrap_or_default(),
        )))
    }

    /// One flow of the tenant.
    pub async fn get(&self, subject: &Subject, id: Uuid) -> Result<Flow, EventsError> {
        let tenant = crate::admin_tenant(subject, "flows")?;
        self.row(Some(tenant), id)
            .await?
            .map(|(l, _)| l.flow)
            .ok_or_else(|| EventsError::NotFound(format!("flow `{id}` not found")))
    }

    /// The tenant's flows, oldest first.
    pub async fn list(&self, subject: &Subject) -> Result<Vec<Flow>, EventsError> {
        let tenant = crate::admin_tenant(subject, "flows")?;
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(FLOW_COLUMNS.map(Alias::new))
                    .from(Alias::new("flows"))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                    .order_by(Alias::new("created_at"), Order::Asc)
                    .order_by(Alias::new("id"), Order::Asc),
            )
            .await?;
        rows.iter().map(flow_of).collect()
    }

    /// Changes a flow: the fields present.
    pub async fn update(
        &self,
        subject: &Subject,
        id: Uuid,
        input: FlowInput,
    ) -> Result<Flow, EventsError> {
        let tenant = crate::admin_tenant(subject, "flows")?;
        let current = self.get(subject, id).await?;
        let trigger = input.trigger.unwrap_or(current.trigger);
        let operations = input.operations.unwrap_or(current.operations);
        check_flow(&trigger, &operations, self.inner.config.min_interval)?;
        self.check_trigger_fields(tenant, &trigger).await?;
        let d = self.db().dialect();
        let mut q = Query::update();
        q.table(Alias::new("flows"))
            .value(Alias::new("trigger"), json_value(Some(&json!(trigger)), d))
            .value(
                Alias::new("operations"),
                json_value(Some(&json!(operations)), d),
            )
            .value(Alias::new("updated_at"), ts_value(now(), d))
            .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, d)))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
        if let Some(n) = input.name {
            if n.trim().is_empty() || n.len() > 200 {
                return Err(EventsError::invalid(
                    "name",
                    "a name is 1 to 200 characters",
                ));
            }
            q.value(Alias::new("name"), n);
        }
        if let Some(a) = input.active {
            q.value(Alias::new("active"), bool_value(a, d));
        }
        self.db().execute(&q).await?;
        self.changed().await;
        self.get(subject, id).await
    }

    /// Deletes a flow and its runs.
    pub async fn delete(&self, subject: &Subject, id: Uuid) -> Result<(), EventsError> {
        let tenant = crate::admin_tenant(subject, "flows")?.to_owned();
        self.get(subject, id).await?;
        let d = self.db().dialect();
        let mut tx = self.db().begin().await?;
        for (table, key) in [("flow_runs", "flow_id"), ("flows", "id")] {
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

    /// A flow's runs, newest first (at most `limit`, up to 200).
    pub async fn runs(
        &self,
        subject: &Subject,
        id: Uuid,
        limit: u64,
    ) -> Result<Vec<FlowRun>, EventsError> {
        self.get(subject, id).await?;
        let d = self.db().dialect();
        let rows = self
            .db()
            .fetch_page(
                Query::select()
                    .columns(RUN_COLUMNS.map(Alias::new))
                    .from(Alias::new("flow_runs"))
                    .and_where(Expr::col(Alias::new("flow_id")).eq(uuid_value(id, d)))
                    .order_by(Alias::new("created_at"), Order::Desc)
                    .order_by(Alias::new("id"), Order::Desc),
                limit.clamp(1, 200),
                0,
            )
            .await?;
        rows.iter().map(run_of).collect()
    }

    /// Runs a `manual` flow now as `subject` (an admin) with `data` as the trigger data; answers
    /// with the finished run.
    pub async fn run_manual(
        &self,
        subject: &Subject,
        id: Uuid,
        data: Json,
    ) -> Result<FlowRun, EventsError> {
        let tenant = crate::admin_tenant(subject, "flows")?.to_owned();
        let flow = self.get(subject, id).await?;
        if flow.trigger != Trigger::Manual {
            return Err(EventsError::BadRequest(format!(
                "flow `{id}` is not started manually: its trigger is `{}`",
                trigger_name(&flow.trigger)
            )));
        }
        if !flow.active {
            return Err(EventsError::BadRequest(format!("flow `{id}` is inactive")));
        }
        self.run_now(id, &tenant, "manual", data, Some(subject.clone()))
            .await
    }

    /// Runs a `webhook` flow for an incoming request presenting `token`.
    pub async fn run_hook(
        &self,
        id: Uuid,
        token: &str,
        data: Json,
    ) -> Result<FlowRun, EventsError> {
        let not_found = || EventsError::NotFound(format!("flow `{id}` not found"));
        let (Loaded { flow, tenant, .. }, hash) =
            self.row(None, id).await?.ok_or_else(not_found)?;
        let same: bool = hash_token(token).as_bytes().ct_eq(hash.as_bytes()).into();
        if !same || flow.trigger != Trigger::Webhook || !flow.active {
            return Err(not_found());
        }
        self.run_now(id, &tenant, "webhook", data, None).await
    }

    async fn run_now(
        &self,
        id: Uuid,
        tenant: &str,
        trigger: &str,
        data: Json,
        caller: Option<Subject>,
    ) -> Result<FlowRun, EventsError> {
        let _permit =
            self.inner.sync_runs.try_acquire().map_err(|_| {
                EventsError::Overloaded("too many flow runs at once: try again later")
            })?;
        let loaded = self.load_one(id).await?;
        let d = self.db().dialect();
        let run = Uuid::now_v7();
        let at = now();
        let (steps, error) = self.execute(&loaded, data.clone(), caller).await;
        let state = if error.is_none() {
            "succeeded"
        } else {
            "failed"
        };
        self.db()
            .execute(
                Query::insert()
                    .into_table(Alias::new("flow_runs"))
                    .columns(
                        [
                            "id",
                            "flow_id",
                            "tenant_id",
                            "trigger",
                            "data",
                            "state",
                            "claims",
                            "steps",
                            "error",
                            "next_at",
                            "created_at",
                            "finished_at",
                        ]
                        .map(Alias::new),
                    )
                    .values([
                        Expr::val(uuid_value(run, d)),
                        Expr::val(uuid_value(id, d)),
                        Expr::val(tenant),
                        Expr::val(trigger),
                        Expr::val(json_value(Some(&data), d)),
                        Expr::val(state),
                        Expr::val(0_i64),
                        Expr::val(json_value(Some(&json!(steps)), d)),
                        Expr::val(error),
                        Expr::val(ts_value(at, d)),
                        Expr::val(ts_value(at, d)),
                        Expr::val(ts_value(now(), d)),
                    ])
                    .map_err(EventsError::internal)?,
            )
            .await?;
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(RUN_COLUMNS.map(Alias::new))
                    .from(Alias::new("flow_runs"))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(run, d))),
            )
            .await?;
        rows.iter()
            .next()
            .map(run_of)
            .transpose()?
            .ok_or_else(|| EventsError::internal("a flow run vanished"))
    }

    async fn load_one(&self, id: Uuid) -> Result<Loaded, EventsError> {
        self.row(None, id)
            .await?
            .map(|(l, _)| l)
            .ok_or_else(|| EventsError::NotFound(format!("flow `{id}` not found")))
    }

    /// The active flows of every tenant with their event filters bound (cached for
    /// [`FlowsConfig::poll`]).
    async fn active(&self) -> Result<Active, EventsError> {
        let mut cache = self.inner.cache.lock().await;
        if let Some((at, v)) = cache.as_ref()
            && at.elapsed() < self.inner.config.poll
        {
            return Ok(v.clone());
        }
        let d = self.db().dialect();
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(FLOW_COLUMNS.map(Alias::new))
                    .from(Alias::new("flows"))
                    .and_where(Expr::col(Alias::new("active")).eq(bool_value(true, d))),
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            out.push(loaded_of(r)?);
        }
        let filters = self.filters(&out).await?;
        let out = (Arc::new(out), Arc::new(filters));
        *cache = Some((Instant::now(), out.clone()));
        Ok(out)
    }

    /// Registers the flows' outbox consumer and runs the dispatcher, the schedules and the
    /// workers until the handle is dropped. Call after [`crate::migrate`].
    pub async fn start(&self) -> Result<Workers, EventsError> {
        workeros_store::register_consumer(self.db(), CONSUMER).await?;
        let (a, b, c) = (self.clone(), self.clone(), self.clone());
        Ok(Workers::spawn(vec![
            Box::new(move |stop| Box::pin(a.dispatch_loop(stop))),
            Box::new(move |stop| Box::pin(b.run_loop(stop))),
            Box::new(move |stop| Box::pin(c.prune_loop(stop))),
        ]))
    }

    /// Queues runs of event flows for committed events, and of schedule flows for due slots;
    /// returns how many events it consumed.
    pub async fn dispatch_once(&self) -> Result<usize, EventsError> {
        let mut made = 0;
        let mut consumed = 0;
        // Event dispatch and schedules go on independently: trouble in one does not hold up
        // the other.
        let dispatched = self.dispatch_events().await;
        let (flows, _) = self.active().await?;
        let scheduled = self.schedule_once(&flows).await;
        if let Ok((c, m)) = &dispatched {
            consumed = *c;
            made += m;
        }
        if let Ok(m) = &scheduled {
            made += m;
        }
        if made > 0 {
            self.inner.run_wake.notify_one();
        }
        dispatched?;
        scheduled?;
        Ok(consumed)
    }

    /// The active flows' event filters, bound.
    async fn filters(
        &self,
        flows: &[Loaded],
    ) -> Result<HashMap<(Uuid, String), Option<BoundFilter>>, EventsError> {
        let mut filters = HashMap::new();
        for l in flows {
            if let Trigger::Event {
                collections,
                filter: Some(f),
                ..
            } = &l.flow.trigger
            {
                for c in collections {
                    let bound =
                        crate::trigger::bind(&self.inner.store, "flows", &l.tenant, c, f).await?;
                    filters.insert((l.flow.id, c.clone()), bound);
                }
            }
        }
        Ok(filters)
    }

    /// Queues the runs of the event flows the claimed events start; returns (events consumed,
    /// runs queued). Like webhook dispatch: flows and filters loaded before the claim, and
    /// loaded again when the active flows changed before the events committed.
    async fn dispatch_events(&self) -> Result<(usize, usize), EventsError> {
        let mut tries = 0;
        let (flows, filters, mut claim) = loop {
            tries += 1;
            let (flows, filters) = self.active().await?;
            let Some(mut claim) = self
                .inner
                .store
                .claim_outbox(CONSUMER, self.inner.config.dispatch_batch)
                .await?
            else {
                return Ok((0, 0));
            };
            if claim.events().is_empty() {
                return Ok((0, 0));
            }
            let now = crate::jobs::stamp(claim.tx(), "flows", "active").await?;
            let loaded = crate::jobs::stamp_of(flows.iter().map(|l| l.flow.updated_at.as_str()));
            if now == loaded || tries >= 3 {
                break (flows, filters, claim);
            }
            drop(claim);
            self.changed().await;
        };
        let events: Vec<Event> = claim.events().to_vec();
        let d = claim.tx().dialect();
        let at = now();
        let mut made = 0;
        for e in &events {
            for l in flows.iter().filter(|l| wants(l, e, &filters)) {
                let data = crate::webhooks::event_data(e);
                claim
                    .tx()
                    .execute(&queue_run(d, l, "event", Some(e.id), None, &data, at)?)
                    .await?;
                made += 1;
            }
        }
        claim.commit().await?;
        Ok((events.len(), made))
    }

    async fn schedule_once(&self, flows: &[Loaded]) -> Result<usize, EventsError> {
        let to = now();
        let d = self.db().dialect();
        let mut made = 0;
        for l in flows {
            let Some(schedule) = &l.schedule else {
                continue;
            };
            let since = self
                .inner
                .since
                .lock()
                .ok()
                .and_then(|m| m.get(&l.flow.id).copied());
            let since = match since {
                Some(s) => s,
                None => {
                    let id = uuid_value(l.flow.id, d);
                    crate::jobs::resume_after(self.db(), "flow_runs", "flow_id", id, to).await?
                }
            };
            let (due, reached) =
                crate::jobs::due_slots(schedule, since, to, self.inner.config.catch_up);
            for slot in due {
                let data = json!({"slot": workeros_core::instant::rfc3339(slot)});
                let n = self
                    .db()
                    .execute(&queue_run(d, l, "schedule", None, Some(slot), &data, to)?)
                    .await?;
                made += usize::try_from(n).unwrap_or(0);
            }
            if let Ok(mut m) = self.inner.since.lock() {
                m.insert(l.flow.id, reached);
            }
        }
        Ok(made)
    }

    /// Deletes finished runs (of every flow) made before `before`; returns how many.
    pub async fn prune(&self, before: OffsetDateTime) -> Result<u64, EventsError> {
        crate::jobs::prune_finished(self.db(), "flow_runs", "created_at", before, &[]).await
    }

    async fn prune_loop(self, stop: Stop) {
        let c = &self.inner.config;
        crate::jobs::every(stop, c.prune_every, "flow run pruning", || {
            self.prune(now() - c.retention)
        })
        .await;
    }

    async fn dispatch_loop(self, stop: Stop) {
        let c = &self.inner.config;
        dispatch_loop(
            stop,
            &self.inner.dispatch_wake,
            c.poll,
            c.dispatch_batch,
            "flow dispatch",
            || self.dispatch_once(),
        )
        .await;
    }

    /// Claims queued runs, executes them and records them; returns how many it ran.
    pub async fn run_due(&self) -> Result<usize, EventsError> {
        let jobs = self
            .claim_jobs(self.inner.config.concurrency.max(1))
            .await?;
        let n = jobs.len();
        for r in crate::jobs::run_all(jobs).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "recording a flow run failed; it runs again after its lease");
            }
        }
        Ok(n)
    }

    /// Claims up to `n` queued runs; each job executes its run and records it.
    async fn claim_jobs(&self, n: usize) -> Result<Vec<Job<Result<(), EventsError>>>, EventsError> {
        let claim = Uuid::now_v7();
        let d = self.db().dialect();
        let rows = claim_due(
            self.db(),
            "flow_runs",
            &["id", "flow_id", "data", "claims"],
            None,
            n,
            self.inner.config.lease,
            claim,
        )
        .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // Count the claim before running: a run whose worker dies every time stops after
        // `max_claims`.
        self.db()
            .execute(
                Query::update()
                    .table(Alias::new("flow_runs"))
                    .value(Alias::new("claims"), Expr::col(Alias::new("claims")).add(1))
                    .and_where(Expr::col(Alias::new("claim")).eq(uuid_value(claim, d))),
            )
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            let run = Uuid::try_parse(&r.uuid_text("id")?.unwrap_or_default())
                .map_err(EventsError::internal)?;
            let flow = Uuid::try_parse(&r.uuid_text("flow_id")?.unwrap_or_default())
                .map_err(EventsError::internal)?;
            let data = r.json("data")?.unwrap_or(Json::Null);
            let spent = r.int("claims")?.unwrap_or(0) >= self.inner.config.max_claims;
            let this = self.clone();
            jobs.push(Box::pin(async move {
                if spent {
                    let why = "the run was claimed too often without finishing (its worker stopped each time)";
                    this.finish(run, claim, &[], Some(why.to_owned())).await
                } else {
                    this.queued(run, flow, data, claim).await
                }
            }) as Job<Result<(), EventsError>>);
        }
        Ok(jobs)
    }

    async fn queued(
        &self,
        run: Uuid,
        flow: Uuid,
        data: Json,
        claim: Uuid,
    ) -> Result<(), EventsError> {
        let (steps, error) = match self.load_one(flow).await {
            Ok(l) if l.flow.active => self.execute(&l, data, None).await,
            Ok(_) => (Vec::new(), Some("the flow was deactivated".to_owned())),
            Err(EventsError::NotFound(e)) => (Vec::new(), Some(e)),
            // A fault of the database: leave the run to its lease, to be claimed again.
            Err(e) => return Err(e),
        };
        self.finish(run, claim, &steps, error).await
    }

    /// Records how a queued run ended (where the claim is still this worker's).
    async fn finish(
        &self,
        run: Uuid,
        claim: Uuid,
        steps: &[Step],
        error: Option<String>,
    ) -> Result<(), EventsError> {
        let d = self.db().dialect();
        self.db()
            .execute(
                Query::update()
                    .table(Alias::new("flow_runs"))
                    .value(
                        Alias::new("state"),
                        if error.is_none() {
                            "succeeded"
                        } else {
                            "failed"
                        },
                    )
                    .value(Alias::new("steps"), json_value(Some(&json!(steps)), d))
                    .value(Alias::new("error"), error)
                    .value(Alias::new("finished_at"), ts_value(now(), d))
                    .value(Alias::new("lease_until"), ts_null(d))
                    .value(Alias::new("claim"), uuid_null(d))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(run, d)))
                    .and_where(Expr::col(Alias::new("claim")).eq(uuid_value(claim, d))),
            )
            .await?;
        Ok(())
    }

    async fn run_loop(self, stop: Stop) {
        let c = &self.inner.config;
        pump(
            stop,
            &self.inner.run_wake,
            c.poll,
            c.concurrency,
            c.lease,
            "flow runs",
            |n| self.claim_jobs(n),
            |done: Vec<Result<(), EventsError>>| async move {
                for d in done {
                    d?;
                }
                Ok(())
            },
        )
        .await;
    }

    /// Executes a flow's chain on `data`; returns the steps and, when it failed, why.
    async fn execute(
        &self,
        l: &Loaded,
        data: Json,
        caller: Option<Subject>,
    ) -> (Vec<Step>, Option<String>) {
        let ops = &l.flow.operations;
        let mut chain = Map::new();
        chain.insert("$trigger".into(), data.clone());
        chain.insert("$last".into(), data);
        let mut steps = Vec::new();
        let mut at = 0_usize;
        let deadline = Instant::now() + self.inner.config.run_timeout;
        let mut total = 0_usize;
        while let Some(op) = ops.get(at) {
            if steps.len() >= MAX_STEPS {
                return (
                    steps,
                    Some(format!("the run took {MAX_STEPS} steps: a loop?")),
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let secs = self.inner.config.run_timeout.as_secs();
                return (steps, Some(format!("the run took longer than {secs} s")));
            }
            let started = Instant::now();
            let (input, result) = match render(&Json::Object(op.options.clone()), &chain) {
                Err(e) => (Json::Null, Err((Json::Null, e))),
                Ok(input) => {
                    let run = self.operate(l, op, &input, &chain, caller.as_ref());
                    // An item write is not cut off halfway (it may be committing); the others
                    // get what is left of the run's time.
                    let result = if op.kind == "item" {
                        run.await
                    } else {
                        match tokio::time::timeout(left, run).await {
                            Ok(r) => r,
                            Err(_) => Err((Json::Null, "the run's time ran out".to_owned())),
                        }
                    };
                    (input, result)
                }
            };
            let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let (status, mut output, mut error) = match result {
                Ok(o) => ("resolved", o, None),
                Err((o, e)) => ("rejected", o, Some(e)),
            };
            if json_size(&output, MAX_VALUE_BYTES) > MAX_VALUE_BYTES {
                output = Json::Null;
                error = Some(format!("the output exceeds {MAX_VALUE_BYTES} bytes"));
            }
            total += json_size(&input, MAX_RUN_BYTES) + json_size(&output, MAX_RUN_BYTES);
            if total > MAX_RUN_BYTES {
                return (
                    steps,
                    Some(format!("the run's data exceeds {MAX_RUN_BYTES} bytes")),
                );
            }
            steps.push(Step {
                key: op.key.clone(),
                kind: op.kind.clone(),
                status: status.into(),
                input,
                output: output.clone(),
                error: error.clone(),
                duration_ms,
            });
            chain.insert(op.key.clone(), output.clone());
            chain.insert("$last".into(), output);
            let next = match &error {
                None => op
                    .resolve
                    .as_ref()
                    .map_or(Some(at + 1), |k| ops.iter().position(|o| &o.key == k)),
                Some(e) => match &op.reject {
                    Some(k) => ops.iter().position(|o| &o.key == k),
                    None if op.kind == "condition" && e == NO_MATCH => return (steps, None),
                    None => return (steps, Some(format!("operation `{}`: {e}", op.key))),
                },
            };
            match next {
                Some(n) => at = n,
                None => break,
            }
        }
        (steps, None)
    }

    /// One operation: its output, or (output so far, error).
    async fn operate(
        &self,
        l: &Loaded,
        op: &Operation,
        input: &Json,
        chain: &Map<String, Json>,
        caller: Option<&Subject>,
    ) -> Result<Json, (Json, String)> {
        let opt = |k: &str| input.get(k).cloned().unwrap_or(Json::Null);
        let text = |k: &str| match input.get(k) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        let fail = |e: String| (Json::Null, e);
        match op.kind.as_str() {
            "condition" => {
                let on = op
                    .options
                    .get("on")
                    .and_then(Json::as_str)
                    .unwrap_or("$last");
                let target = lookup(chain, on).cloned().unwrap_or(Json::Null);
                let Some(object) = target.as_object() else {
                    return Err((target.clone(), format!("`{on}` is not an object")));
                };
                // The filter is matched as written, not rendered.
                let filter = op.options.get("filter").cloned().unwrap_or(Json::Null);
                match matches_object(&filter, object) {
                    Ok(true) => Ok(target.clone()),
                    Ok(false) => Err((target.clone(), NO_MATCH.into())),
                    Err(e) => Err((target.clone(), e)),
                }
            }
            "transform" => Ok(opt("json")),
            "log" => {
                let message = text("message");
                tracing::info!(flow = %l.flow.id, operation = op.key, message, "flow log");
                Ok(json!({"message": message}))
            }
            "request" => {
                let method = text("method");
                let method = if method.is_empty() {
                    "GET".to_owned()
                } else {
                    method.to_ascii_uppercase()
                };
                let method = reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|_| fail(format!("unknown method `{method}`")))?;
                let mut req = self
                    .inner
                    .guard
                    .request(method, &text("url"))
                    .map_err(|e| fail(e.to_string()))?;
                if let Some(h) = input.get("headers").and_then(Json::as_object) {
                    let h: std::collections::BTreeMap<String, String> = h
                        .iter()
                        .map(|(k, v)| {
                            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                            (k.clone(), v)
                        })
                        .collect();
                    crate::webhooks::check_headers(&h).map_err(|e| fail(e.to_string()))?;
                    for (k, v) in h {
                        req = req.header(k, v);
                    }
                }
                match input.get("body") {
                    None | Some(Json::Null) => {}
                    Some(Json::String(s)) => req = req.body(s.clone()),
                    Some(b) => {
                        req = req
                            .header("content-type", "application/json")
                            .body(b.to_string());
                    }
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| fail(crate::guard::describe(&e)))?;
                let status = resp.status().as_u16();
                let mut bytes = Vec::new();
                let mut resp = resp;
                while let Ok(Some(c)) = resp.chunk().await {
                    bytes.extend_from_slice(&c);
                    if bytes.len() > MAX_RESPONSE_BYTES {
                        bytes.truncate(MAX_RESPONSE_BYTES);
                        break;
                    }
                }
                let data = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into_owned()));
                let out = json!({"status": status, "data": data});
                if (200..300).contains(&status) {
                    Ok(out)
                } else {
                    Err((out, format!("the answer was {status}")))
                }
            }
            "webhook" => {
                let body = match input.get("body") {
                    None | Some(Json::Null) => chain.get("$last").cloned().unwrap_or(Json::Null),
                    Some(b) => b.clone(),
                }
                .to_string();
                let id = Uuid::now_v7().to_string();
                let ts = now().unix_timestamp();
                let req = self
                    .inner
                    .guard
                    .request(reqwest::Method::POST, &text("url"))
                    .map_err(|e| fail(e.to_string()))?;
                let resp = req
                    .header("content-type", "application/json")
                    .header("webhook-id", id.as_str())
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", l.secret.sign(&id, ts, body.as_bytes()))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| fail(crate::guard::describe(&e)))?;
                let status = resp.status().as_u16();
                let out = json!({"status": status, "id": id});
                if (200..300).contains(&status) {
                    Ok(out)
                } else {
                    Err((out, format!("the answer was {status}")))
                }
            }
            "email" => {
                let Some(sender) = &self.inner.email else {
                    return Err(fail("no email sender is configured".into()));
                };
                let email = Email {
                    to: text("to"),
                    subject: text("subject"),
                    text: text("body"),
                    html: None,
                };
                if !email.to.contains('@') {
                    return Err(fail(format!("`{}` is not an email address", email.to)));
                }
                sender
                    .send(&email)
                    .await
                    .map_err(|e| fail(format!("sending failed: {e}")))?;
                Ok(json!({"to": email.to}))
            }
            "item" => {
                let subject =
                    match text("permissions").as_str() {
                        "" | "admin" => crate::system_subject("flows", &l.tenant),
                        "public" => Subject::anonymous().with_tenant(&l.tenant),
                        "caller" => match caller {
                            Some(s) => s.clone(),
                            None => return Err(fail(
                                "`caller` permissions need a manual run: this run has no caller"
                                    .into(),
                            )),
                        },
                        other => {
                            return Err(fail(format!(
                                "unknown permissions `{other}`: use `admin`, `caller` or `public`"
                            )));
                        }
                    };
                let collection = text("collection");
                let payload = opt("payload");
                let store = &self.inner.store;
                let written = match text("action").as_str() {
                    "" | "create" => {
                        let items =
                            NewItems::from_json(payload).map_err(|e| fail(e.to_string()))?;
                        store
                            .create_items(&subject, &collection, items)
                            .await
                            .map(|w| match w {
                                Written::One(m) => Json::Object(m),
                                Written::Many(v) => {
                                    Json::Array(v.into_iter().map(Json::Object).collect())
                                }
                            })
                    }
                    "update" => {
                        let Json::Object(patch) = payload else {
                            return Err(fail("an update's `payload` is an object".into()));
                        };
                        store
                            .update_item(&subject, &collection, &text("key"), patch)
                            .await
                            .map(Json::Object)
                    }
                    other => {
                        return Err(fail(format!(
                            "unknown action `{other}`: use `create` or `update`"
                        )));
                    }
                };
                written.map_err(|e| fail(e.to_string()))
            }
            other => Err(fail(format!("unknown operation type `{other}`"))),
        }
    }
}

/// The active flows and their event filters, bound, as the dispatcher caches them.
type Active = (
    Arc<Vec<Loaded>>,
    Arc<HashMap<(Uuid, String), Option<BoundFilter>>>,
);

/// The user id of the subject flows write as with `admin` permissions.
const FLOWS_ACTOR: &str = "workeros:flows";

/// The rejection of a condition that did not match (not a failure of the run by itself).
const NO_MATCH: &str = "the condition does not match";

fn trigger_name(t: &Trigger) -> &'static str {
    match t {
        Trigger::Event { .. } => "event",
        Trigger::Schedule { .. } => "schedule",
        Trigger::Manual => "manual",
        Trigger::Webhook => "webhook",
    }
}

fn loaded_of(r: RowRef<'_>) -> Result<Loaded, EventsError> {
    let flow = flow_of(r)?;
    let secret =
        Secret::parse(&r.text("secret")?.unwrap_or_default()).map_err(EventsError::internal)?;
    let schedule = match &flow.trigger {
        Trigger::Schedule { cron } => crate::functions::parse_cron(cron).ok(),
        _ => None,
    };
    Ok(Loaded {
        flow,
        tenant: r.text("tenant_id")?.unwrap_or_default(),
        secret,
        schedule,
    })
}

fn wants(l: &Loaded, e: &Event, filters: &HashMap<(Uuid, String), Option<BoundFilter>>) -> bool {
    let Trigger::Event {
        collections,
        actions,
        filter,
    } = &l.flow.trigger
    else {
        return false;
    };
    // A flow's own writes do not start flows: an event flow writing to its own collection
    // would start itself forever.
    if e.actor.as_deref() == Some(FLOWS_ACTOR) {
        return false;
    }
    let action_ok = actions.is_empty() || actions.iter().any(|a| a == e.action.as_str());
    let filter = filter.as_ref().map(|_| {
        filters
            .get(&(l.flow.id, e.collection.clone()))
            .and_then(Option::as_ref)
    });
    l.tenant == e.tenant && crate::trigger::passes(e, action_ok, collections, filter)
}

fn queue_run(
    d: Dialect,
    l: &Loaded,
    trigger: &str,
    event: Option<Uuid>,
    slot: Option<OffsetDateTime>,
    data: &Json,
    at: OffsetDateTime,
) -> Result<sea_query::InsertStatement, EventsError> {
    let conflict = if event.is_some() { "event_id" } else { "slot" };
    Ok(Query::insert()
        .into_table(Alias::new("flow_runs"))
        .columns(
            [
                "id",
                "flow_id",
                "tenant_id",
                "trigger",
                "event_id",
                "slot",
                "data",
                "state",
                "claims",
                "next_at",
                "created_at",
            ]
            .map(Alias::new),
        )
        .values([
            Expr::val(uuid_value(Uuid::now_v7(), d)),
            Expr::val(uuid_value(l.flow.id, d)),
            Expr::val(l.tenant.as_str()),
            Expr::val(trigger),
            Expr::val(event.map_or_else(|| uuid_null(d), |e| uuid_value(e, d))),
            Expr::val(slot.map_or_else(|| ts_null(d), |s| ts_value(s, d))),
            Expr::val(json_value(Some(data), d)),
            Expr::val(PENDING),
            Expr::val(0_i64),
            Expr::val(ts_value(at, d)),
            Expr::val(ts_value(at, d)),
        ])
        .map_err(EventsError::internal)?
        .on_conflict(
            sea_query::OnConflict::columns([Alias::new("flow_id"), Alias::new(conflict)])
                .do_nothing()
                .to_owned(),
        )
        .to_owned())
}
