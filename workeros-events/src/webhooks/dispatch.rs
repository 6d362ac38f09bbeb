//! Webhook dispatch: committed events claimed from the outbox become delivery rows, one per
//! matching webhook, in the transaction that moves the dispatcher's cursor.

use super::admin::{WEBHOOK_COLUMNS, webhook_of};
use super::engine::{Cached, Filters, Target, Webhooks};
use super::model::{CONSUMER, DeliveryState};
use crate::EventsError;
use crate::jobs::dispatch_loop;
use crate::schema::{WEBHOOK_DELIVERIES, WEBHOOKS};
use crate::signing::Secret;
use crate::trigger::{EventTrigger, event_data};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_core::Event;
use workeros_dsl::Dialect;
use workeros_store::Tx;
use workeros_store::values::{bool_value, now, ts_value, uuid_value};

impl Webhooks {
    /// These webhooks (by id), or every enabled one when `ids` is empty, with their signing
    /// secrets.
    pub(super) async fn targets(&self, ids: &[Uuid]) -> Result<Vec<Target>, EventsError> {
        let d = self.d();
        let mut q = Query::select();
        q.columns(WEBHOOK_COLUMNS.map(Alias::new))
            .columns(["secret", "previous_secret", "previous_until"].map(Alias::new))
            .from(self.db().table(WEBHOOKS));
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
            let webhook = webhook_of(r)?;
            let trigger = EventTrigger::from_saved(
                &webhook.collections,
                &webhook.events,
                webhook.filter.as_ref(),
            );
            out.push(Target {
                webhook,
                trigger,
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
            let now = crate::jobs::stamp(claim.tx(), WEBHOOKS, "enabled").await?;
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
    pub(super) async fn changed(&self) {
        *self.inner.targets.lock().await = None;
    }

    /// Checks and binds the targets' filters against their collections.
    pub(super) async fn filters(&self, targets: &[Target]) -> Result<Filters, EventsError> {
        let mut out = Filters::new();
        for t in targets {
            let Some(trigger) = &t.trigger else {
                continue;
            };
            let bound = trigger
                .bind_each(&self.inner.store, "webhooks", &t.tenant)
                .await?;
            for (c, b) in bound {
                out.insert((t.webhook.id, c), b);
            }
        }
        Ok(out)
    }

    pub(super) async fn dispatch_loop(self, stop: crate::jobs::Stop) {
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
}

/// Whether webhook `t` receives event `e`.
pub(super) fn wants(t: &Target, e: &Event, filters: &Filters) -> bool {
    t.tenant == e.tenant
        && t.trigger.as_ref().is_some_and(|trigger| {
            trigger.selects(e, || {
                filters
                    .get(&(t.webhook.id, e.collection.clone()))
                    .and_then(Option::as_ref)
            })
        })
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
    q.into_table(tx.table(WEBHOOK_DELIVERIES)).columns(
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

/// The body of a delivery: Standard Webhooks' `type` / `timestamp` / `data` envelope.
pub fn payload(e: &Event) -> String {
    let body = json!({
        "type": format!("{}.{}", e.collection, e.action.as_str()),
        "timestamp": workeros_core::instant::rfc3339(e.at),
        "data": event_data(e),
    });
    body.to_string()
}
