//! What realtime subscribers ask for ([`Subscribe`]) and receive ([`Frame`]), event types as
//! bits, custom event names and their patterns, and custom [`Broadcast`]s.

use serde_json::{Value as Json, json};
use std::sync::Arc;
use workeros_core::EventAction;

/// One message to a subscriber (an SSE message): shared by every subscriber that receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The SSE `id`: the event id. Custom broadcasts and control frames have none.
    pub id: Option<Arc<str>>,
    /// The SSE `event`: `create`, `update`, `delete`, a custom event name, `reset` or `error`.
    pub event: Arc<str>,
    /// The SSE `data`: JSON text.
    pub data: Arc<str>,
}

impl Frame {
    pub(super) fn control(event: &str, code: &str, message: &str) -> Frame {
        Frame {
            id: None,
            event: event.into(),
            data: json!({ "code": code, "message": message })
                .to_string()
                .into(),
        }
    }
}

/// What a subscriber asks for.
#[derive(Debug, Clone, Default)]
pub struct Subscribe {
    /// The collection whose item events it wants (`None`: custom broadcasts only).
    pub collection: Option<String>,
    /// Its own filter on the rows, in the text or JSON form of the DSL (checked like a
    /// `GET /api/items` filter: only fields it may filter on).
    pub filter: Option<Json>,
    /// The event types: `create`, `update`, `delete` and custom event names (`ns:event`, or
    /// `ns:*` for a whole namespace). `None`: the three item events.
    pub events: Option<Vec<String>>,
    /// The last event id it received, to resume after it.
    pub last_event_id: Option<String>,
    /// The client's address, for the per-address cap
    /// ([`RealtimeConfig::max_per_address`](super::RealtimeConfig)); `None` when unknown.
    pub client: Option<std::net::IpAddr>,
}

pub(super) const CREATE: u8 = 1;

pub(super) const UPDATE: u8 = 2;

pub(super) const DELETE: u8 = 4;

pub(super) fn action_bit(a: EventAction) -> u8 {
    match a {
        EventAction::Create => CREATE,
        EventAction::Update => UPDATE,
        EventAction::Delete => DELETE,
    }
}

/// Whether `name` is a custom event name: `namespace:event`, lowercase letters, digits, `_`,
/// `-` and `.`, at most 100 characters.
pub fn is_custom_event_name(name: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
            })
    };
    name.len() <= 100
        && name
            .split_once(':')
            .is_some_and(|(ns, ev)| ok(ns) && ok(ev))
}

/// A custom event pattern: a name, or `ns:*`.
pub(super) fn pattern_ok(p: &str) -> bool {
    match p.strip_suffix(":*") {
        Some(ns) => is_custom_event_name(&format!("{ns}:x")),
        None => is_custom_event_name(p),
    }
}

pub(super) fn pattern_matches(p: &str, name: &str) -> bool {
    match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    }
}

/// A custom broadcast: a named event with any JSON payload, to the subscribers of a tenant that
/// asked for it, optionally only to one user or to some roles.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The tenant (`None`: the default tenant).
    pub tenant: Option<String>,
    /// The event name, `namespace:event`.
    pub name: String,
    /// The payload.
    pub payload: Json,
    /// Only this user receives it.
    pub user: Option<String>,
    /// Only subscribers with one of these roles receive it (empty: everyone who asked).
    pub roles: Vec<String>,
}
