//! The flow admin API of tenant admins: create (the secrets shown once), list, read, change,
//! delete, the runs; every flow checked (operations, keys, targets, trigger) when saved.

use super::engine::{Flows, Loaded};
use super::model::{
    Created, Flow, FlowInput, FlowRun, ItemScope, MAX_FLOWS, MAX_OPERATIONS, Operation,
    OperationKind, Trigger,
};
use crate::EventsError;
use crate::jobs::PENDING;
use crate::schema::{FLOW_RUNS, FLOWS};
use crate::signing::Secret;
use crate::trigger::EventTrigger;
use sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;
use workeros_core::Subject;
use workeros_store::values::{RowRef, bool_value, json_value, now, ts_value, uuid_value};

pub(super) fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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
        if o.kind == OperationKind::Item && ItemScope::of(o.options.get("permissions")).is_none() {
            return Err(EventsError::invalid(
                "operations",
                format!(
                    "operation `{}` writes items: state its `permissions` (`admin`, `caller` or `public`)",
                    o.key
                ),
            ));
        }
        if o.kind == OperationKind::Condition {
            let filter = match o.options.get("filter") {
                Some(Json::String(s)) => workeros_dsl::parse_any(s).ok(),
                Some(v @ Json::Object(_)) => workeros_dsl::from_json(v).ok(),
                _ => None,
            };
            if filter.is_some_and(|f| f.uses_op(workeros_dsl::Op::Regex)) {
                return Err(EventsError::invalid(
                    "operations",
                    format!("operation `{}`: {}", o.key, super::operations::NO_REGEX),
                ));
            }
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
            let schedule = crate::cron::parse_cron(cron)?;
            if crate::cron::min_gap(&schedule).is_some_and(|g| g < min_interval) {
                return Err(EventsError::invalid(
                    "trigger",
                    format!(
                        "`{cron}` runs more often than every {} s, the shortest interval allowed",
                        min_interval.as_secs()
                    ),
                ));
            }
        }
        Trigger::Event { .. } => {
            trigger.events()?;
        }
        Trigger::Webhook { respond: Some(key) } if !keys.contains(&key.as_str()) => {
            return Err(EventsError::invalid(
                "trigger",
                format!("`respond` names `{key}`, which is not an operation of this flow"),
            ));
        }
        Trigger::Manual | Trigger::Webhook { .. } => {}
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

pub(super) const FLOW_COLUMNS: [&str; 10] = [
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

pub(super) const RUN_COLUMNS: [&str; 10] = [
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

pub(super) fn run_of(r: RowRef<'_>) -> Result<FlowRun, EventsError> {
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

pub(super) fn trigger_name(t: &Trigger) -> &'static str {
    match t {
        Trigger::Event { .. } => "event",
        Trigger::Schedule { .. } => "schedule",
        Trigger::Manual => "manual",
        Trigger::Webhook { .. } => "webhook",
    }
}

pub(super) fn loaded_of(r: RowRef<'_>) -> Result<Loaded, EventsError> {
    let flow = flow_of(r)?;
    let secret =
        Secret::parse(&r.text("secret")?.unwrap_or_default()).map_err(EventsError::internal)?;
    let schedule = match &flow.trigger {
        Trigger::Schedule { cron } => crate::cron::parse_cron(cron).ok(),
        _ => None,
    };
    let events = match &flow.trigger {
        Trigger::Event {
            collections,
            actions,
            filter,
        } => EventTrigger::from_saved(collections, actions, filter.as_ref()),
        _ => None,
    };
    Ok(Loaded {
        events,
        flow,
        tenant: r.text("tenant_id")?.unwrap_or_default(),
        secret,
        schedule,
    })
}

impl Flows {
    async fn check_trigger_fields(
        &self,
        tenant: &str,
        trigger: &Trigger,
    ) -> Result<(), EventsError> {
        if let Some(events) = trigger.events()? {
            events
                .check(&self.inner.store, "flows", tenant, "trigger")
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
        let tenant = crate::admin::admin_tenant(subject, "flows")?;
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
                    .into_table(self.db().table(FLOWS))
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
    pub(super) async fn row(
        &self,
        tenant: Option<&str>,
        id: Uuid,
    ) -> Result<Option<(Loaded, String)>, EventsError> {
        let d = self.db().dialect();
        let mut q = Query::select();
        q.columns(FLOW_COLUMNS.map(Alias::new))
            .from(self.db().table(FLOWS))
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
        let tenant = crate::admin::admin_tenant(subject, "flows")?;
        self.row(Some(tenant), id)
            .await?
            .map(|(l, _)| l.flow)
            .ok_or_else(|| EventsError::NotFound(format!("flow `{id}` not found")))
    }

    /// The tenant's flows, oldest first.
    pub async fn list(&self, subject: &Subject) -> Result<Vec<Flow>, EventsError> {
        let tenant = crate::admin::admin_tenant(subject, "flows")?;
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(FLOW_COLUMNS.map(Alias::new))
                    .from(self.db().table(FLOWS))
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
        let tenant = crate::admin::admin_tenant(subject, "flows")?;
        let current = self.get(subject, id).await?;
        let trigger = input.trigger.unwrap_or(current.trigger);
        let operations = input.operations.unwrap_or(current.operations);
        check_flow(&trigger, &operations, self.inner.config.min_interval)?;
        self.check_trigger_fields(tenant, &trigger).await?;
        let d = self.db().dialect();
        let mut q = Query::update();
        q.table(self.db().table(FLOWS))
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
        let tenant = crate::admin::admin_tenant(subject, "flows")?.to_owned();
        self.get(subject, id).await?;
        let d = self.db().dialect();
        let mut tx = self.db().begin().await?;
        for (table, key) in [(FLOW_RUNS, "flow_id"), (FLOWS, "id")] {
            tx.execute(
                Query::delete()
                    .from_table(self.db().table(table))
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
                    .from(self.db().table(FLOW_RUNS))
                    .and_where(Expr::col(Alias::new("flow_id")).eq(uuid_value(id, d)))
                    .order_by(Alias::new("created_at"), Order::Desc)
                    .order_by(Alias::new("id"), Order::Desc),
                limit.clamp(1, 200),
                0,
            )
            .await?;
        rows.iter().map(run_of).collect()
    }
}
