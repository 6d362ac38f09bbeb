//! What happened: the unit the store appends to its outbox and hands to event sinks.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The kind of change an [`Event`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// An item was created.
    Create,
    /// An item was updated.
    Update,
    /// An item was deleted.
    Delete,
}

impl EventAction {
    /// Every action.
    pub const ALL: [EventAction; 3] = [
        EventAction::Create,
        EventAction::Update,
        EventAction::Delete,
    ];

    /// The name (`create`, `update`, `delete`), as stored and sent.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventAction::Create => "create",
            EventAction::Update => "update",
            EventAction::Delete => "delete",
        }
    }

    /// The action named `s`.
    pub fn from_name(s: &str) -> Option<EventAction> {
        EventAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A committed change to one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The event id (UUID v7, so ids sort by time).
    pub id: Uuid,
    /// The tenant the item belongs to.
    pub tenant: String,
    /// The collection slug.
    pub collection: String,
    /// What happened.
    pub action: EventAction,
    /// The item's primary key, as text.
    pub item_id: String,
    /// The item after the change (`None` for deletes).
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    /// The item before the change (updates and deletes).
    #[serde(default)]
    pub previous: Option<serde_json::Value>,
    /// The user who made the change, when one did.
    #[serde(default)]
    pub actor: Option<String>,
    /// When the change committed.
    #[serde(with = "crate::instant::serde")]
    pub at: OffsetDateTime,
    /// How many flow runs led to the change: 0 for a write by a user or by host code, `n + 1`
    /// for a write made by a flow run that an event of depth `n` started. Flows start no run
    /// past their depth cap, so a flow cannot start itself without end.
    #[serde(default)]
    pub depth: u32,
}
