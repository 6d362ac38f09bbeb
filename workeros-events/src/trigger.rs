//! The one event selector webhooks, flows and event functions share, [`EventTrigger`]
//! (collections, actions, a DSL filter on the row): checked when configured, bound for
//! dispatch, matched; and the data an event hands to what it starts.

use crate::EventsError;
use serde_json::{Value as Json, json};
use workeros_core::{Event, EventAction};
use workeros_dsl::BoundFilter;
use workeros_store::Store;
use workeros_store::values::now;

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

/// Which committed events start something: a webhook's deliveries, an event flow's runs, an
/// event function's runs.
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

impl EventTrigger {
    /// A trigger from the wire, where actions are names (`create`, `update`, `delete`): an
    /// unknown name is refused on `field`.
    pub(crate) fn from_wire(
        collections: &[String],
        actions: &[String],
        filter: Option<&Json>,
        field: &'static str,
    ) -> Result<Self, EventsError> {
        let actions = actions
            .iter()
            .map(|a| {
                EventAction::from_name(a).ok_or_else(|| {
                    EventsError::invalid(
                        field,
                        format!("unknown event `{a}`: use `create`, `update` or `delete`"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            collections: collections.to_vec(),
            actions,
            filter: filter.cloned(),
        })
    }

    /// A trigger as it was saved (checked then): an action name it does not know selects
    /// nothing, and a list of names none of which it knows makes the trigger select no event
    /// (`None`), as matching the names against each event did.
    pub(crate) fn from_saved(
        collections: &[String],
        actions: &[String],
        filter: Option<&Json>,
    ) -> Option<Self> {
        let known: Vec<EventAction> = actions
            .iter()
            .filter_map(|a| EventAction::from_name(a))
            .collect();
        (actions.is_empty() || !known.is_empty()).then(|| Self {
            collections: collections.to_vec(),
            actions: known,
            filter: filter.cloned(),
        })
    }

    /// Refuses a filter without collections: they give it its fields. Errors name `field`.
    pub(crate) fn check_shape(&self, field: &'static str) -> Result<(), EventsError> {
        if self.filter.is_some() && self.collections.is_empty() {
            return Err(EventsError::invalid(
                field,
                "a filter needs `collections`: it is checked against their fields",
            ));
        }
        Ok(())
    }

    /// Checks the filter against each collection of `tenant` (as the admin `who` acts as); every
    /// collection must exist ([`check_shape`](Self::check_shape) first). Errors name `field`.
    pub(crate) async fn check(
        &self,
        store: &Store,
        who: &str,
        tenant: &str,
        field: &'static str,
    ) -> Result<(), EventsError> {
        self.check_shape(field)?;
        let admin = crate::admin::system_subject(who, tenant);
        for c in &self.collections {
            let rules = store.read_rules(tenant, c).await?;
            if let Some(f) = &self.filter {
                rules.access(&admin, now())?.check_filter(f)?;
            }
        }
        Ok(())
    }

    /// The filter bound for each collection of `tenant` (see [`bind`]); empty without a filter.
    pub(crate) async fn bind_each(
        &self,
        store: &Store,
        who: &str,
        tenant: &str,
    ) -> Result<Vec<(String, Option<BoundFilter>)>, EventsError> {
        let Some(filter) = &self.filter else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(self.collections.len());
        for c in &self.collections {
            out.push((c.clone(), bind(store, who, tenant, c, filter).await?));
        }
        Ok(out)
    }

    /// Whether `e` is one of these events: its action and collection among the trigger's
    /// (empty: any), and, when the trigger has a filter, the filter bound for the event's
    /// collection (`bound`, asked only then) matching the row after the write (before it, for
    /// deletes). A filter that did not bind matches nothing.
    pub(crate) fn selects<'b>(
        &self,
        e: &Event,
        bound: impl FnOnce() -> Option<&'b BoundFilter>,
    ) -> bool {
        let action_ok = self.actions.is_empty() || self.actions.contains(&e.action);
        let collection_ok = self.collections.is_empty() || self.collections.contains(&e.collection);
        if !action_ok || !collection_ok {
            return false;
        }
        if self.filter.is_none() {
            return true;
        }
        let row = match e.action {
            EventAction::Delete => e.previous.as_ref(),
            _ => e.data.as_ref(),
        };
        match (bound(), row.and_then(Json::as_object)) {
            (Some(f), Some(row)) => f.matches(row),
            _ => false,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_triggers_select_by_the_names_they_know() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let t = EventTrigger::from_saved(&[], &names(&["create", "bogus"]), None);
        assert_eq!(t.map(|t| t.actions), Some(vec![EventAction::Create]));
        assert_eq!(
            EventTrigger::from_saved(&[], &names(&["bogus"]), None),
            None
        );
        let all = EventTrigger::from_saved(&[], &[], None);
        assert_eq!(all.map(|t| t.actions), Some(Vec::new()));
        let refused = EventTrigger::from_wire(&[], &names(&["bogus"]), None, "events");
        assert!(matches!(
            refused,
            Err(EventsError::Invalid {
                field: "events",
                ..
            })
        ));
    }
}
