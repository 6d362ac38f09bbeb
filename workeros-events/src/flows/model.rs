//! What flows are on the wire: the trigger, the operations, the flow, its runs and their steps;
//! the limits and [`FlowsConfig`].

use crate::EventsError;
use crate::trigger::EventTrigger;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::time::Duration;
use uuid::Uuid;

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
    /// Most runs in flight for one tenant while another tenant's runs are due (when none is,
    /// a tenant may use all but this many of `concurrency`, kept for a tenant whose runs
    /// arrive). Of `max_sync_runs` (manual and webhook runs, which cannot wait) a tenant may
    /// use all but this many, kept for the other tenants. A tenant's long runs cannot hold
    /// every worker.
    pub per_tenant: usize,
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
    /// The longest chain of flow runs (default 2): a user's write starts runs of depth 1,
    /// whose writes may start runs of depth 2, and so on; an event written at depth
    /// `max_depth` starts no run (each run it would have started is recorded as failed, with
    /// the reason). Writes with `admin` permissions start no flow at all. One flow's writes
    /// can multiply (an `item` operation writes up to a list of items per run), so what a chain
    /// costs grows as that number to the power of `max_depth`: raise it with care.
    pub max_depth: u32,
    /// Outgoing requests (`request` and `webhook` operations) one tenant's flows make per
    /// minute in this process (default 120); past it the operation rejects without sending: in
    /// org mode a tenant's admin is anyone, and a flow is an HTTP client.
    pub requests_per_minute: u32,
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
            concurrency: 20,
            per_tenant: 4,
            dispatch_batch: 500,
            catch_up: Duration::from_secs(300),
            run_timeout: Duration::from_secs(240),
            min_interval: Duration::from_secs(60),
            max_sync_runs: 20,
            max_claims: 3,
            max_depth: 2,
            requests_per_minute: 120,
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
    /// `POST /api/flows/{id}/hook?token=…`. The caller gets the run's id and status, and only
    /// what the flow chooses to return: the output of operation `respond`, when it resolved.
    /// Nothing else of the run (rendered inputs, secret headers, other steps' responses) is
    /// answered; tenant admins read the whole run in `/api/flows/{id}/runs`.
    Webhook {
        /// The key of the operation whose output the hook answers with (none by default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        respond: Option<String>,
    },
}

impl Trigger {
    /// The events an `event` trigger selects (its action names checked; errors name
    /// `trigger`); `None` for the other triggers.
    pub(crate) fn events(&self) -> Result<Option<EventTrigger>, EventsError> {
        match self {
            Trigger::Event {
                collections,
                actions,
                filter,
            } => {
                EventTrigger::from_wire(collections, actions, filter.as_ref(), "trigger").map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// What an operation does (its `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// Goes on when a DSL filter matches an object of the data chain.
    Condition,
    /// Produces its rendered `json`.
    Transform,
    /// Logs a message.
    Log,
    /// An HTTP request through the SSRF guard.
    Request,
    /// A Standard Webhooks-signed request through the SSRF guard.
    Webhook,
    /// An email through the host's sender.
    Email,
    /// Creates or updates an item through the store's permission pipeline.
    Item,
}

/// Whom an `item` operation writes as (its `permissions` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemScope {
    /// The tenant's admin (`workeros:flows`); its writes start no flow.
    Admin,
    /// The admin who runs a manual flow.
    Caller,
    /// The anonymous subject of the tenant.
    Public,
}

impl ItemScope {
    /// The scope an option value names (`admin`, `caller`, `public`), if it names one.
    pub(crate) fn of(v: Option<&Json>) -> Option<ItemScope> {
        let name = v?.as_str()?;
        serde_json::from_value(Json::String(name.to_owned())).ok()
    }
}

/// One operation of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// Unique within the flow; names its output in the data chain.
    pub key: String,
    /// What it does.
    #[serde(rename = "type")]
    pub kind: OperationKind,
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

/// What `POST /api/flows/{id}/hook` answers: the run's id and status, and the output of the
/// operation the flow's trigger names in `respond` (when it resolved). Nothing else of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookAnswer {
    /// The run's id (tenant admins read it whole in `/api/flows/{id}/runs`).
    pub id: Uuid,
    /// `succeeded` or `failed`.
    pub status: String,
    /// The chosen operation's output; absent without `respond` or when it did not resolve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Json>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The operation's key.
    pub key: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: OperationKind,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_scopes_are_names() {
        let of = |v: Json| ItemScope::of(Some(&v));
        assert_eq!(of(Json::from("admin")), Some(ItemScope::Admin));
        assert_eq!(of(Json::from("caller")), Some(ItemScope::Caller));
        assert_eq!(of(Json::from("public")), Some(ItemScope::Public));
        assert_eq!(of(serde_json::json!({"admin": null})), None);
        assert_eq!(of(Json::from("Admin")), None);
        assert_eq!(ItemScope::of(None), None);
    }
}
