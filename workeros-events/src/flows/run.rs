//! Running flows: manual and incoming-webhook runs in the request, queued runs claimed by the
//! workers with a lease; the chain walked operation by operation, each step recorded.

use super::admin::{RUN_COLUMNS, hash_token, run_of, trigger_name};
use super::engine::{Flows, Loaded};
use super::model::{
    FlowRun, HookAnswer, MAX_RUN_BYTES, MAX_STEPS, MAX_VALUE_BYTES, OperationKind, Step, Trigger,
};
use super::operations::NO_MATCH;
use super::template::{json_size, render};
use crate::EventsError;
use crate::jobs::{Job, Stop, pump};
use crate::schema::FLOW_RUNS;
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::{Map, Value as Json, json};
use std::time::Instant;
use subtle::ConstantTimeEq;
use uuid::Uuid;
use workeros_core::Subject;
use workeros_store::values::{json_value, now, ts_null, ts_value, uuid_null, uuid_value};

impl Flows {
    /// Runs a `manual` flow now as `subject` (an admin) with `data` as the trigger data; answers
    /// with the finished run.
    pub async fn run_manual(
        &self,
        subject: &Subject,
        id: Uuid,
        data: Json,
    ) -> Result<FlowRun, EventsError> {
        let tenant = crate::admin::admin_tenant(subject, "flows")?.to_owned();
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
    ) -> Result<HookAnswer, EventsError> {
        let not_found = || EventsError::NotFound(format!("flow `{id}` not found"));
        let (Loaded { flow, tenant, .. }, hash) =
            self.row(None, id).await?.ok_or_else(not_found)?;
        let same: bool = hash_token(token).as_bytes().ct_eq(hash.as_bytes()).into();
        let Trigger::Webhook { respond } = &flow.trigger else {
            return Err(not_found());
        };
        if !same || !flow.active {
            return Err(not_found());
        }
        let run = self.run_now(id, &tenant, "webhook", data, None).await?;
        let output = respond.as_ref().and_then(|key| {
            run.steps
                .iter()
                .find(|s| &s.key == key && s.status == "resolved")
                .map(|s| s.output.clone())
        });
        Ok(HookAnswer {
            id: run.id,
            status: run.status,
            output,
        })
    }

    async fn run_now(
        &self,
        id: Uuid,
        tenant: &str,
        trigger: &str,
        data: Json,
        caller: Option<Subject>,
    ) -> Result<FlowRun, EventsError> {
        // A tenant may use all but `per_tenant` slots, which stay free for the others.
        let _slot = self
            .inner
            .sync_runs
            .take(tenant, true)
            .ok_or(EventsError::Overloaded(
                "too many flow runs at once: try again later",
            ))?;
        let loaded = self.load_one(id).await?;
        let d = self.db().dialect();
        let run = Uuid::now_v7();
        let at = now();
        // A run a request starts is the first of its chain.
        let (steps, error) =
            workeros_store::with_event_depth(1, self.execute(&loaded, data.clone(), caller)).await;
        let state = if error.is_none() {
            "succeeded"
        } else {
            "failed"
        };
        self.db()
            .execute(
                Query::insert()
                    .into_table(self.db().table(FLOW_RUNS))
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
                    .from(self.db().table(FLOW_RUNS))
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
    pub(super) async fn claim_jobs(
        &self,
        n: usize,
    ) -> Result<Vec<Job<Result<(), EventsError>>>, EventsError> {
        let claim = Uuid::now_v7();
        let d = self.db().dialect();
        let max_claims = self.inner.config.max_claims;
        let jobs = self
            .inner
            .workers
            .claim(
                self.db(),
                FLOW_RUNS,
                &["id", "tenant_id", "flow_id", "data", "claims", "depth"],
                None,
                n,
                self.inner.config.lease,
                claim,
                |r, slot| {
                    let run = Uuid::try_parse(&r.uuid_text("id")?.unwrap_or_default())
                        .map_err(EventsError::internal)?;
                    let flow = Uuid::try_parse(&r.uuid_text("flow_id")?.unwrap_or_default())
                        .map_err(EventsError::internal)?;
                    let data = r.json("data")?.unwrap_or(Json::Null);
                    let spent = r.int("claims")?.unwrap_or(0) >= max_claims;
                    let depth = r
                        .int("depth")?
                        .and_then(|d| u32::try_from(d).ok())
                        .unwrap_or(1);
                    let this = self.clone();
                    Ok(Box::pin(async move {
                        let _slot = slot;
                        if spent {
                            let why = "the run was claimed too often without finishing (its worker stopped each time)";
                            this.finish(run, claim, &[], Some(why.to_owned())).await
                        } else {
                            this.queued(run, flow, data, claim, depth).await
                        }
                    }) as Job<Result<(), EventsError>>)
                },
            )
            .await?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        // Count the claim before running: a run whose worker dies every time stops after
        // `max_claims`.
        self.db()
            .execute(
                Query::update()
                    .table(self.db().table(FLOW_RUNS))
                    .value(Alias::new("claims"), Expr::col(Alias::new("claims")).add(1))
                    .and_where(Expr::col(Alias::new("claim")).eq(uuid_value(claim, d))),
            )
            .await?;
        Ok(jobs)
    }

    pub(super) async fn queued(
        &self,
        run: Uuid,
        flow: Uuid,
        data: Json,
        claim: Uuid,
        depth: u32,
    ) -> Result<(), EventsError> {
        let (steps, error) = match self.load_one(flow).await {
            // Its writes' events carry its depth, whatever subject they are written as.
            Ok(l) if l.flow.active => {
                workeros_store::with_event_depth(depth, self.execute(&l, data, None)).await
            }
            Ok(_) => (Vec::new(), Some("the flow was deactivated".to_owned())),
            Err(EventsError::NotFound(e)) => (Vec::new(), Some(e)),
            // A fault of the database: leave the run to its lease, to be claimed again.
            Err(e) => return Err(e),
        };
        self.finish(run, claim, &steps, error).await
    }

    /// Records how a queued run ended (where the claim is still this worker's).
    pub(super) async fn finish(
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
                    .table(self.db().table(FLOW_RUNS))
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

    pub(super) async fn run_loop(self, stop: Stop) {
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
    pub(super) async fn execute(
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
                    let result = if op.kind == OperationKind::Item {
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
                kind: op.kind,
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
                    None if op.kind == OperationKind::Condition && e == NO_MATCH => {
                        return (steps, None);
                    }
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
}
