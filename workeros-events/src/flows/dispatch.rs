//! Flow dispatch: committed events claimed from the outbox queue the runs of the event flows they
//! start, and due schedule slots queue the runs of schedule flows, whichever instance is first.

use super::admin::{FLOW_COLUMNS, loaded_of};
use super::engine::{Active, Flows, Loaded};
use super::model::CONSUMER;
use crate::EventsError;
use crate::jobs::{PENDING, Stop, dispatch_loop};
use crate::schema::{FLOW_RUNS, FLOWS};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_core::Event;
use workeros_dsl::BoundFilter;
use workeros_store::Names;
use workeros_store::values::{
    bool_value, json_value, now, ts_null, ts_value, uuid_null, uuid_value,
};

impl Flows {
    /// The active flows of every tenant with their event filters bound (cached for
    /// [`FlowsConfig::poll`]).
    pub(super) async fn active(&self) -> Result<Active, EventsError> {
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
                    .from(self.db().table(FLOWS))
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
    pub(super) async fn filters(
        &self,
        flows: &[Loaded],
    ) -> Result<HashMap<(Uuid, String), Option<BoundFilter>>, EventsError> {
        let mut filters = HashMap::new();
        for l in flows {
            let Some(events) = &l.events else {
                continue;
            };
            for (c, bound) in events
                .bind_each(&self.inner.store, "flows", &l.tenant)
                .await?
            {
                filters.insert((l.flow.id, c), bound);
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
            let now = crate::jobs::stamp(claim.tx(), FLOWS, "active").await?;
            let loaded = crate::jobs::stamp_of(flows.iter().map(|l| l.flow.updated_at.as_str()));
            if now == loaded || tries >= 3 {
                break (flows, filters, claim);
            }
            drop(claim);
            self.changed().await;
        };
        let events: Vec<Event> = claim.events().to_vec();
        let at = now();
        let mut made = 0;
        let cap = self.inner.config.max_depth;
        for e in &events {
            for l in flows.iter().filter(|l| wants(l, e, &filters)) {
                let data = crate::trigger::event_data(e);
                // Past the cap the run is recorded, not run: a chain of flows (or a flow that
                // starts itself) ends here, and its log says why.
                let stop = (e.depth >= cap).then(|| {
                    format!(
                        "not run: a chain of {} flow runs wrote the event that would start it, \
                         the most `max_depth` allows (a flow that starts itself, or flows that \
                         start each other)",
                        e.depth
                    )
                });
                claim
                    .tx()
                    .execute(&queue_run(
                        self.db().names(),
                        l,
                        Queued {
                            trigger: "event",
                            event: Some(e.id),
                            slot: None,
                            depth: e.depth.saturating_add(1),
                            stop,
                        },
                        &data,
                        at,
                    )?)
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
                    crate::cron::resume_after(self.db(), FLOW_RUNS, "flow_id", id, to).await?
                }
            };
            let (due, reached) =
                crate::cron::due_slots(schedule, since, to, self.inner.config.catch_up);
            for slot in due {
                let data = json!({"slot": workeros_core::instant::rfc3339(slot)});
                let n = self
                    .db()
                    .execute(&queue_run(
                        self.db().names(),
                        l,
                        Queued {
                            trigger: "schedule",
                            event: None,
                            slot: Some(slot),
                            depth: 1,
                            stop: None,
                        },
                        &data,
                        to,
                    )?)
                    .await?;
                made += usize::try_from(n).unwrap_or(0);
            }
            if let Ok(mut m) = self.inner.since.lock() {
                m.insert(l.flow.id, reached);
            }
        }
        Ok(made)
    }

    pub(super) async fn dispatch_loop(self, stop: Stop) {
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
}

/// The user id of the subject flows write as with `admin` permissions.
const FLOWS_ACTOR: &str = "workeros:flows";

pub(super) fn wants(
    l: &Loaded,
    e: &Event,
    filters: &HashMap<(Uuid, String), Option<BoundFilter>>,
) -> bool {
    let Some(events) = &l.events else {
        return false;
    };
    // A flow's own writes do not start flows: an event flow writing to its own collection
    // would start itself forever.
    if e.actor.as_deref() == Some(FLOWS_ACTOR) {
        return false;
    }
    l.tenant == e.tenant
        && events.selects(e, || {
            filters
                .get(&(l.flow.id, e.collection.clone()))
                .and_then(Option::as_ref)
        })
}

/// What starts a queued run.
struct Queued {
    trigger: &'static str,
    event: Option<Uuid>,
    slot: Option<OffsetDateTime>,
    /// The run's depth (what its writes' events record).
    depth: u32,
    /// Why it is recorded as failed without running (past the depth cap).
    stop: Option<String>,
}

fn queue_run(
    names: &Names,
    l: &Loaded,
    q: Queued,
    data: &Json,
    at: OffsetDateTime,
) -> Result<sea_query::InsertStatement, EventsError> {
    let Queued {
        trigger,
        event,
        slot,
        depth,
        stop,
    } = q;
    let d = names.dialect();
    let state = if stop.is_some() { "failed" } else { PENDING };
    let conflict = if event.is_some() { "event_id" } else { "slot" };
    Ok(Query::insert()
        .into_table(names.table(FLOW_RUNS))
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
                "depth",
                "error",
                "finished_at",
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
            Expr::val(state),
            Expr::val(0_i64),
            Expr::val(ts_value(at, d)),
            Expr::val(ts_value(at, d)),
            Expr::val(i64::from(depth)),
            Expr::val(stop.clone()),
            Expr::val(if stop.is_some() {
                ts_value(at, d)
            } else {
                ts_null(d)
            }),
        ])
        .map_err(EventsError::internal)?
        .on_conflict(
            sea_query::OnConflict::columns([Alias::new("flow_id"), Alias::new(conflict)])
                .do_nothing()
                .to_owned(),
        )
        .to_owned())
}
