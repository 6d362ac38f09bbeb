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
//! `429`), [`FlowsConfig::max_claims`] claims of a queued run, [`FlowsConfig::requests_per_minute`]
//! outgoing requests (`request`, `webhook`) per tenant. `item` operations state their
//! `permissions`; the events of writes made with `admin` permissions (as `workeros:flows`) start
//! no flow. Every event a run writes, whatever its `permissions`, records the run's depth
//! ([`workeros_core::Event::depth`]: 1 for a run a request, a schedule or a user's write started,
//! one more for a run a flow's write started), and an event at [`FlowsConfig::max_depth`] starts
//! no run: each run it would have started is recorded as failed with the reason, so a flow that
//! starts itself (or flows that start each other) stops there. `request` headers are checked like
//! webhook headers. A `condition` filter cannot use `_regex`.

mod admin;
mod dispatch;
mod engine;
mod model;
mod operations;
mod run;
mod template;

pub use engine::Flows;
pub use model::{
    CONSUMER, Created, Flow, FlowInput, FlowRun, FlowsConfig, HookAnswer, ItemScope, MAX_FLOWS,
    MAX_OPERATIONS, MAX_RESPONSE_BYTES, MAX_RUN_BYTES, MAX_STEPS, MAX_VALUE_BYTES, Operation,
    OperationKind, Step, Trigger,
};
pub use template::render;
