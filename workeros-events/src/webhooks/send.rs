//! Webhook sending: due deliveries claimed with a lease, signed and sent through the SSRF guard,
//! their outcomes recorded in batches (retries on the schedule, `410 Gone` disables).

use super::admin::parse_uuid;
use super::engine::{Target, Webhooks};
use super::model::DeliveryState;
use crate::EventsError;
use crate::jobs::{Job, jittered, next_delay, pump};
use crate::schema::{WEBHOOK_ATTEMPTS, WEBHOOK_DELIVERIES, WEBHOOKS};
use crate::shares::Slot;
use sea_query::{Alias, Expr, ExprTrait, Query};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_store::values::{bool_value, now, ts_null, ts_value, uuid_null, uuid_value};

/// What one attempt came to.
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) id: Uuid,
    pub(super) claim: Uuid,
    /// Attempts on the current schedule, this one included.
    pub(super) attempts: i64,
    /// Attempts ever, this one included (the log's numbering).
    pub(super) tries: i64,
    /// No further attempt whatever the answer (the webhook is disabled or gone).
    give_up: bool,
    pub(super) webhook: Option<Uuid>,
    pub(super) started: OffsetDateTime,
    pub(super) status: Option<u16>,
    pub(super) error: Option<String>,
    pub(super) duration_ms: i64,
}

/// A claimed delivery, holding its tenant's sender slot.
struct Due {
    pub(super) id: Uuid,
    pub(super) webhook: Uuid,
    pub(super) payload: String,
    pub(super) attempts: i64,
    pub(super) tries: i64,
    /// Held until the attempt ends (or is cut off).
    _slot: Slot,
}

impl Webhooks {
    /// Claims up to `n` due deliveries for this process, shared fairly between tenants.
    async fn claim_due(&self, n: usize, claim: Uuid) -> Result<Vec<Due>, EventsError> {
        self.inner
            .senders
            .claim(
                self.db(),
                WEBHOOK_DELIVERIES,
                &[
                    "id",
                    "tenant_id",
                    "webhook_id",
                    "payload",
                    "attempts",
                    "tries",
                ],
                None,
                n,
                self.inner.config.lease,
                claim,
                |r, slot| {
                    Ok(Due {
                        id: parse_uuid(r.uuid_text("id")?)?,
                        webhook: parse_uuid(r.uuid_text("webhook_id")?)?,
                        payload: r.text("payload")?.unwrap_or_default(),
                        attempts: r.int("attempts")?.unwrap_or(0),
                        tries: r.int("tries")?.unwrap_or(0),
                        _slot: slot,
                    })
                },
            )
            .await
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
            .for_tenant(&t.tenant)
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
    pub(super) async fn record(&self, outcomes: &[Outcome]) -> Result<(), EventsError> {
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
                    .table(self.db().table(WEBHOOK_DELIVERIES))
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
                    .table(self.db().table(WEBHOOK_DELIVERIES))
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
                        .table(self.db().table(WEBHOOKS))
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
            q.into_table(self.db().table(WEBHOOK_ATTEMPTS)).columns(
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
    pub(super) async fn claim_jobs(&self, n: usize) -> Result<Vec<Job<Outcome>>, EventsError> {
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

    /// Keeps up to `concurrency` requests in flight; records outcomes in batches.
    pub(super) async fn send_loop(self, stop: crate::jobs::Stop) {
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
