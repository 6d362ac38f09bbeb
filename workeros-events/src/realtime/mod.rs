//! Realtime: committed events judged per subscriber in memory, and custom broadcasts.
//!
//! [`Realtime`] is an [`EventSink`]: register it on the [`Store`] and every committed write
//! reaches the subscribers of its tenant and collection. For each event and each subscriber the
//! subscriber's read permissions and its own filter are evaluated with the DSL matcher against
//! the row (before and after, for updates), and the row is presented as the items API would
//! present it to that subscriber. Nothing is read from the database per subscriber.
//!
//! Subscribers whose bound permissions, own filter and event types are identical share a
//! *group*: one judgement and one serialised frame serve them all. Groups whose filters require
//! `field = value` (such as `owner_id = $user.id`) are indexed by that value, so an event only
//! touches the groups that can match it.
//!
//! Each subscriber has a bounded queue. One that falls behind is cut off (its stream ends with an
//! `error` frame; it reconnects with `Last-Event-ID` and resumes from the outbox), so it never
//! slows the others nor grows memory.

mod frame;
mod hub;
mod topic;

pub use frame::{Broadcast, Frame, Subscribe, is_custom_event_name};
pub use hub::{Realtime, RealtimeConfig, Subscription};
