//! The event outbox: every write appends its [`Event`] to `events` in its own transaction; after
//! the commit the events go to every registered [`EventSink`]. A rolled-back write emits nothing.

use crate::value::{json_value, ts_value, uuid_value};
use crate::{StoreError, Tx};
use sea_query::{Alias, Expr, Query};
use serde_json::Value as Json;
use time::OffsetDateTime;
use workeros_core::{Event, EventAction, Subject};

fn action_name(a: EventAction) -> &'static str {
    match a {
        EventAction::Create => "create",
        EventAction::Update => "update",
        EventAction::Delete => "delete",
    }
}

/// Appends `e` to the outbox inside the write's transaction.
pub(crate) async fn append(tx: &mut Tx, e: &Event) -> Result<(), StoreError> {
    let d = tx.dialect();
    tx.execute(
        Query::insert()
            .into_table(Alias::new("events"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "collection",
                    "action",
                    "item_id",
                    "data",
                    "previous",
                    "actor",
                    "created_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(e.id, d)),
                Expr::val(e.tenant.as_str()),
                Expr::val(e.collection.as_str()),
                Expr::val(action_name(e.action)),
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
