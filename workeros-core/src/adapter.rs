//! Adapter traits: how a lower crate hands work to a higher one (or to the host).

use crate::{CoreError, Event};
use async_trait::async_trait;

/// Receives committed events. The store calls every registered sink after a write commits (a
/// rolled-back write calls none); `workeros-events` implements it for realtime, webhooks and flows.
///
/// A sink must not block for long: durable work belongs in an outbox, not in `deliver`.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Takes a batch of committed events, in commit order.
    async fn deliver(&self, events: &[Event]) -> Result<(), CoreError>;
}

/// An email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The recipient address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// An optional HTML body.
    pub html: Option<String>,
}

/// Sends email (invitations, password resets). The host picks the transport.
#[async_trait]
pub trait EmailSender: Send + Sync {
    /// Sends one email.
    async fn send(&self, email: &Email) -> Result<(), CoreError>;
}
