//! The webhook admin API of tenant admins: create (the secret shown once), list, read, change,
//! delete, rotate the secret; the delivery log and redelivery.

use super::engine::Webhooks;
use super::model::{
    Attempt, Delivery, DeliveryQuery, DeliveryState, MAX_WEBHOOKS, Webhook, WebhookInput,
    WithSecret,
};
use crate::EventsError;
use crate::guard::check_headers;
use crate::jobs::random_bytes;
use crate::schema::{WEBHOOK_ATTEMPTS, WEBHOOK_DELIVERIES, WEBHOOKS};
use crate::signing::Secret;
use crate::trigger::EventTrigger;
use sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::{Value as Json, json};
use uuid::Uuid;
use workeros_core::Subject;
use workeros_store::values::{
    RowRef, bool_value, json_value, now, ts_null, ts_value, uuid_null, uuid_value,
};

fn new_secret() -> Result<Secret, EventsError> {
    Secret::from_bytes(random_bytes()?.to_vec()).map_err(EventsError::internal)
}

/// Reads a webhook row.
pub(super) fn webhook_of(r: RowRef<'_>) -> Result<Webhook, EventsError> {
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

pub(super) fn parse_uuid(s: Option<String>) -> Result<Uuid, EventsError> {
    Uuid::try_parse(s.as_deref().unwrap_or_default()).map_err(EventsError::internal)
}

pub(super) const WEBHOOK_COLUMNS: [&str; 12] = [
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

impl Webhooks {
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
                .for_tenant(tenant)
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
        let actions = input.events.as_deref().unwrap_or_default();
        let trigger = EventTrigger::from_wire(collections, actions, filter, "events")?;
        if let Some(h) = &input.headers {
            check_headers(h)?;
        }
        trigger
            .check(&self.inner.store, "webhooks", tenant, "filter")
            .await
    }

    /// Creates a webhook (`url` required); returns it with its new secret.
    pub async fn create(
        &self,
        subject: &Subject,
        input: WebhookInput,
    ) -> Result<WithSecret, EventsError> {
        let tenant = crate::admin::admin_tenant(subject, "webhooks")?;
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
                    .into_table(self.db().table(WEBHOOKS))
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
        let tenant = crate::admin::admin_tenant(subject, "webhooks")?;
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(WEBHOOK_COLUMNS.map(Alias::new))
                    .from(self.db().table(WEBHOOKS))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                    .order_by(Alias::new("created_at"), Order::Asc)
                    .order_by(Alias::new("id"), Order::Asc),
            )
            .await?;
        rows.iter().map(webhook_of).collect()
    }

    /// One webhook of the tenant.
    pub async fn get(&self, subject: &Subject, id: Uuid) -> Result<Webhook, EventsError> {
        let tenant = crate::admin::admin_tenant(subject, "webhooks")?;
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(WEBHOOK_COLUMNS.map(Alias::new))
                    .from(self.db().table(WEBHOOKS))
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
        let tenant = crate::admin::admin_tenant(subject, "webhooks")?;
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
        q.table(self.db().table(WEBHOOKS))
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
        let tenant = crate::admin::admin_tenant(subject, "webhooks")?.to_owned();
        self.get(subject, id).await?;
        let d = self.d();
        let mut tx = self.db().begin().await?;
        tx.execute(
            Query::delete()
                .from_table(self.db().table(WEBHOOK_ATTEMPTS))
                .and_where(
                    Expr::col(Alias::new("delivery_id")).in_subquery(
                        Query::select()
                            .column(Alias::new("id"))
                            .from(self.db().table(WEBHOOK_DELIVERIES))
                            .and_where(Expr::col(Alias::new("webhook_id")).eq(uuid_value(id, d)))
                            .to_owned(),
                    ),
                ),
        )
        .await?;
        for table in [WEBHOOK_DELIVERIES, WEBHOOKS] {
            let key = if table == WEBHOOKS {
                "id"
            } else {
                "webhook_id"
            };
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

    /// Gives a webhook a new secret and returns it; the previous one keeps signing alongside
    /// for [`WebhookConfig::rotation_overlap`] (receivers accept either meanwhile).
    pub async fn rotate(&self, subject: &Subject, id: Uuid) -> Result<WithSecret, EventsError> {
        let tenant = crate::admin::admin_tenant(subject, "webhooks")?;
        self.get(subject, id).await?;
        let d = self.d();
        let secret = new_secret()?;
        let until = now() + self.inner.config.rotation_overlap;
        self.db()
            .execute(
                Query::update()
                    .table(self.db().table(WEBHOOKS))
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
            .from(self.db().table(WEBHOOK_DELIVERIES))
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
                    .from(self.db().table(WEBHOOK_DELIVERIES))
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
                    .from(self.db().table(WEBHOOK_ATTEMPTS))
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
                    .table(self.db().table(WEBHOOK_DELIVERIES))
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
}
