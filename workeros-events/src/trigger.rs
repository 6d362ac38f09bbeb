//! What webhooks, flows and functions share about choosing events: the DSL filter on a
//! collection's rows, checked when configured and bound for matching, and the match itself.

use crate::EventsError;
use serde_json::{Value as Json, json};
use workeros_core::{Event, EventAction};
use workeros_dsl::BoundFilter;
use workeros_store::Store;
use workeros_store::values::now;

/// Checks `filter` against each of `collections` of `tenant` (as the admin `who` acts as);
/// every collection must exist. A filter needs collections: they give it its fields.
pub(crate) async fn check(
    store: &Store,
    who: &str,
    tenant: &str,
    collections: &[String],
    filter: Option<&Json>,
    field: &'static str,
) -> Result<(), EventsError> {
    if filter.is_some() && collections.is_empty() {
        return Err(EventsError::invalid(
            field,
            "a filter needs `collections`: it is checked against their fields",
        ));
    }
    let admin = crate::admin::system_subject(who, tenant);
    for c in collections {
        let rules = store.read_rules(tenant, c).await?;
        if let Some(f) = filter {
            rules.access(&admin, now())?.check_filter(f)?;
        }
    }
    Ok(())
}

/// `filter` checked against `collection` of `tenant` and bound, or `None` when it no longer
/// checks there (the collection changed or went): then nothing of it matches, and a warning says
/// so. A fault of the database is an error, so that the dispatcher stops before it claims
/// events it could not judge.
pub(crate) async fn bind(
    store: &Store,
    who: &str,
    tenant: &str,
    collection: &str,
    filter: &Json,
) -> Result<Option<BoundFilter>, EventsError> {
    let admin = crate::admin::system_subject(who, tenant);
    let at = now();
    let checked = async {
        let rules = store.read_rules(tenant, collection).await?;
        rules.access(&admin, at)?.check_filter(filter)
    }
    .await;
    match checked {
        Ok(c) => Ok(c.map(|c| c.bind(&admin, at))),
        Err(e) if e.code() == workeros_core::ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            tracing::warn!(who, tenant, collection, error = %e, "a filter no longer checks; its events are skipped");
            Ok(None)
        }
    }
}

/// Whether `e` passes a trigger: its action allowed (`action_ok`), its collection among
/// `collections` (empty: any), and, when the trigger has a filter (`Some`), the bound filter
/// matching the row after the write (before it, for deletes). A filter that did not bind
/// (`Some(None)`) matches nothing.
pub(crate) fn passes(
    e: &Event,
    action_ok: bool,
    collections: &[String],
    filter: Option<Option<&BoundFilter>>,
) -> bool {
    if !action_ok || !(collections.is_empty() || collections.contains(&e.collection)) {
        return false;
    }
    let Some(bound) = filter else {
        return true;
    };
    let row = match e.action {
        EventAction::Delete => e.previous.as_ref(),
        _ => e.data.as_ref(),
    };
    match (bound, row.and_then(Json::as_object)) {
        (Some(f), Some(row)) => f.matches(row),
        _ => false,
    }
}

/// Which events an event function receives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventTrigger {
    /// Collection slugs; empty: all.
    pub collections: Vec<String>,
    /// Actions; empty: all.
    pub actions: Vec<EventAction>,
    /// A DSL filter (text or JSON form) on the row after the write (before it, for deletes),
    /// checked against each of `collections` (so it needs them).
    pub filter: Option<Json>,
}

/// The `data` of an event's payload (also a flow's trigger data).
pub(crate) fn event_data(e: &Event) -> Json {
    json!({
        "event": e.id,
        "collection": e.collection,
        "action": e.action.as_str(),
        "key": e.item_id,
        "item": e.data,
        "previous": e.previous,
        "actor": e.actor,
    })
}
