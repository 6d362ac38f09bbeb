//! The events component's tables (webhooks and their deliveries, function runs, flows and their
//! runs) and [`migrate`], which makes them and registers the webhook dispatcher's outbox cursor.

use crate::EventsError;
use crate::webhooks::CONSUMER;
use sea_query::{Table, TableCreateStatement};
use workeros_store::migrate::{ColumnKind as K, Component, Migration, col, index};
use workeros_store::{Db, Names, SystemTable};

/// System table `webhooks`.
pub(crate) const WEBHOOKS: SystemTable = SystemTable::new("webhooks");
/// System table `webhook_deliveries`.
pub(crate) const WEBHOOK_DELIVERIES: SystemTable = SystemTable::new("webhook_deliveries");
/// System table `webhook_attempts`.
pub(crate) const WEBHOOK_ATTEMPTS: SystemTable = SystemTable::new("webhook_attempts");
/// System table `function_runs`.
pub(crate) const FUNCTION_RUNS: SystemTable = SystemTable::new("function_runs");
/// System table `flows`.
pub(crate) const FLOWS: SystemTable = SystemTable::new("flows");
/// System table `flow_runs`.
pub(crate) const FLOW_RUNS: SystemTable = SystemTable::new("flow_runs");

/// The events component: its system tables (see the [module](self)) and migrations.
pub const SCHEMA: Component = Component::new(
    "events",
    &[
        WEBHOOKS,
        WEBHOOK_DELIVERIES,
        WEBHOOK_ATTEMPTS,
        FUNCTION_RUNS,
        FLOWS,
        FLOW_RUNS,
    ],
    &[
        Migration::new(1)
            .tables(events_v1)
            .indexes(events_v1_indexes),
        Migration::new(2)
            .tables(functions_v2)
            .indexes(functions_v2_indexes),
        Migration::new(3).tables(flows_v3).indexes(flows_v3_indexes),
        Migration::new(4).columns(flows_v4_columns),
    ],
);

/// Creates or upgrades the events component's tables and registers its outbox consumers (events
/// committed from then on are dispatched); idempotent and safe under concurrent starts. Run
/// after [`workeros_store::migrate`], before serving writes. Returns the versions it applied.
pub async fn migrate(db: &Db) -> Result<Vec<i64>, EventsError> {
    let applied = workeros_store::migrate::run(db, &SCHEMA).await?;
    // Webhooks made before the first dispatch get the events committed from here on. (Flows
    // and functions register when they start: a host that does not run them does not hold the
    // outbox back.) A host that never runs the webhook workers drops this consumer
    // (`Store::drop_consumer("webhooks")`) so that the outbox can be pruned.
    workeros_store::register_consumer(db, CONSUMER).await?;
    Ok(applied)
}

fn events_v1(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    vec![
        Table::create()
            .table(names.table(WEBHOOKS))
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
            .table(names.table(WEBHOOK_DELIVERIES))
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
            .table(names.table(WEBHOOK_ATTEMPTS))
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

fn events_v1_indexes(names: &Names) -> Vec<sea_query::IndexCreateStatement> {
    vec![
        index(names, "webhooks_tenant", WEBHOOKS, &["tenant_id"], false),
        index(
            names,
            "webhook_deliveries_once",
            WEBHOOK_DELIVERIES,
            &["webhook_id", "event_id"],
            true,
        ),
        index(
            names,
            "webhook_deliveries_due",
            WEBHOOK_DELIVERIES,
            &["state", "next_at"],
            false,
        ),
        index(
            names,
            "webhook_deliveries_log",
            WEBHOOK_DELIVERIES,
            &["webhook_id", "created_at"],
            false,
        ),
        index(
            names,
            "webhook_attempts_delivery",
            WEBHOOK_ATTEMPTS,
            &["delivery_id"],
            false,
        ),
    ]
}

pub(crate) fn functions_v2(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    vec![
        Table::create()
            .table(names.table(FUNCTION_RUNS))
            .if_not_exists()
            .col(col("id", K::Uuid, d).not_null().primary_key())
            .col(col("function", K::Text, d).not_null())
            .col(col("event_id", K::Uuid, d))
            .col(col("slot", K::Ts, d))
            .col(col("payload", K::Json, d))
            .col(col("state", K::Text, d).not_null())
            .col(col("attempts", K::BigInt, d).not_null())
            .col(col("next_at", K::Ts, d).not_null())
            .col(col("lease_until", K::Ts, d))
            .col(col("claim", K::Uuid, d))
            .col(col("last_error", K::Text, d))
            .col(col("created_at", K::Ts, d).not_null())
            .col(col("updated_at", K::Ts, d).not_null())
            .to_owned(),
    ]
}

pub(crate) fn functions_v2_indexes(names: &Names) -> Vec<sea_query::IndexCreateStatement> {
    use workeros_store::migrate::index;
    vec![
        index(
            names,
            "function_runs_event",
            FUNCTION_RUNS,
            &["function", "event_id"],
            true,
        ),
        index(
            names,
            "function_runs_slot",
            FUNCTION_RUNS,
            &["function", "slot"],
            true,
        ),
        index(
            names,
            "function_runs_due",
            FUNCTION_RUNS,
            &["state", "next_at"],
            false,
        ),
    ]
}

/// v4: a flow run's depth ([`workeros_core::Event::depth`] of the events it writes): 1 for a
/// run a request, a schedule or a user's write started; one more than its event's for a run a
/// flow's write started.
pub(crate) fn flows_v4_columns(names: &Names) -> Vec<workeros_store::migrate::NewColumn> {
    vec![workeros_store::migrate::NewColumn {
        table: FLOW_RUNS,
        column: col("depth", K::BigInt, names.dialect())
            .not_null()
            .default(1)
            .to_owned(),
    }]
}

pub(crate) fn flows_v3(names: &Names) -> Vec<TableCreateStatement> {
    let d = names.dialect();
    vec![
        Table::create()
            .table(names.table(FLOWS))
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
            .table(names.table(FLOW_RUNS))
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

pub(crate) fn flows_v3_indexes(names: &Names) -> Vec<sea_query::IndexCreateStatement> {
    use workeros_store::migrate::index;
    vec![
        index(names, "flows_tenant", FLOWS, &["tenant_id"], false),
        index(
            names,
            "flow_runs_event",
            FLOW_RUNS,
            &["flow_id", "event_id"],
            true,
        ),
        index(
            names,
            "flow_runs_slot",
            FLOW_RUNS,
            &["flow_id", "slot"],
            true,
        ),
        index(
            names,
            "flow_runs_due",
            FLOW_RUNS,
            &["state", "next_at"],
            false,
        ),
        index(
            names,
            "flow_runs_log",
            FLOW_RUNS,
            &["flow_id", "created_at"],
            false,
        ),
    ]
}
