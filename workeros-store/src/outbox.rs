//! The event outbox: every write appends its [`Event`] to `events` in its own transaction; after
//! the commit the events go to every registered [`EventSink`]. A rolled-back write emits nothing.

use crate::value::{json_value, ts_value, uuid_value};
use crate::{StoreError, Tx};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::Value as Json;
use time::OffsetDateTime;
use workeros_core::{Event, EventAction, Subject};

/// Appends `e` to the outbox inside the write's transaction.
pub(crate) async fn append(tx: &mut Tx, e: &Event) -> Result<(), StoreError> {
    let d = tx.dialect();
    tx.execute(
        Query::insert()
            .into_table(Alias::new("events"))
            // Every column but `seq`, which the database numbers.
            .columns(EVENT_COLUMNS.iter().skip(1).map(|c| Alias::new(*c)))
            .values([
                Expr::val(uuid_value(e.id, d)),
                Expr::val(e.tenant.as_str()),
                Expr::val(e.collection.as_str()),
                Expr::val(e.action.as_str()),
                Expr::val(e.item_id.as_str()),
                Expr::val(json_value(e.data.as_ref(), d)),
                Expr::val(json_value(e.previous.as_ref(), d)),
                Expr::val(e.actor.clone()),
                Expr::val(ts_value(e.at, d)),
            ])
            .map_err(StoreError::internal)?,
    )
    .await?;
    Ok(())
}

/// Builds the event of a write to `item` of `collection` by `subject` and appends it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record(
    tx: &mut Tx,
    subject: &Subject,
    collection: &str,
    action: EventAction,
    item: String,
    data: Option<Json>,
    previous: Option<Json>,
    at: OffsetDateTime,
) -> Result<Event, StoreError> {
    let event = Event {
        id: uuid::Uuid::now_v7(),
        tenant: crate::collections::tenant_of(subject).to_owned(),
        collection: collection.to_owned(),
        action,
        item_id: item,
        data,
        previous,
        actor: subject.user.as_ref().map(|u| u.id.clone()),
        at,
    };
    append(tx, &event).await?;
    Ok(event)
}

fn event_of(r: crate::value::RowRef<'_>) -> Result<Event, StoreError> {
    let id = r.uuid_text("id")?.unwrap_or_default();
    let action = r.text("action")?.unwrap_or_default();
    Ok(Event {
        id: uuid::Uuid::try_parse(&id).map_err(StoreError::internal)?,
        tenant: r.text("tenant_id")?.unwrap_or_default(),
        collection: r.text("collection")?.unwrap_or_default(),
        action: EventAction::from_name(&action)
            .ok_or_else(|| StoreError::internal(format!("an event with action `{action}`")))?,
        item_id: r.text("item_id")?.unwrap_or_default(),
        data: r.json("data")?,
        previous: r.json("previous")?,
        actor: r.text("actor")?,
        at: r.ts("created_at")?.unwrap_or(OffsetDateTime::UNIX_EPOCH),
    })
}

const EVENT_COLUMNS: [&str; 10] = [
    "seq",
    "id",
    "tenant_id",
    "collection",
    "action",
    "item_id",
    "data",
    "previous",
    "actor",
    "created_at",
];

impl crate::Store {
    /// The committed events of `tenant` recorded after event `after`, in outbox order, of
    /// `collection` when one is given, at most `limit` (a realtime stream resuming from
    /// `Last-Event-ID`). `None` when `after` is not in the outbox: it never was, or it is older
    /// than what the outbox keeps.
    pub async fn events_after(
        &self,
        tenant: &str,
        collection: Option<&str>,
        after: uuid::Uuid,
        limit: u64,
    ) -> Result<Option<Vec<Event>>, StoreError> {
        let d = self.db().dialect();
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .column(Alias::new("seq"))
                    .from(Alias::new("events"))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(after, d)))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant)),
            )
            .await?;
        let Some(seq) = rows
            .iter()
            .next()
            .map(|r| r.int("seq"))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let mut q = Query::select();
        q.columns(EVENT_COLUMNS.map(Alias::new))
            .from(Alias::new("events"))
            .and_where(Expr::col(Alias::new("seq")).gt(seq))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .order_by(Alias::new("seq"), sea_query::Order::Asc);
        if let Some(c) = collection {
            q.and_where(Expr::col(Alias::new("collection")).eq(c));
        }
        let rows = self.db().fetch_page(&q, limit, 0).await?;
        rows.iter()
            .map(event_of)
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// The committed events with these ids (any tenant), in outbox order: what another
    /// instance's notification names.
    pub async fn events_by_id(&self, ids: &[uuid::Uuid]) -> Result<Vec<Event>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.db().dialect();
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(EVENT_COLUMNS.map(Alias::new))
                    .from(Alias::new("events"))
                    .and_where(
                        Expr::col(Alias::new("id")).is_in(ids.iter().map(|i| uuid_value(*i, d))),
                    )
                    .order_by(Alias::new("seq"), sea_query::Order::Asc),
            )
            .await?;
        rows.iter().map(event_of).collect()
    }
}
