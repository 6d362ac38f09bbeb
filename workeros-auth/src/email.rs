//! Email delivery for invitations, verification and password reset: the host's
//! [`EmailSender`]; [`ConsoleSender`] by default, [`SmtpSender`] with the `smtp` feature.

use async_trait::async_trait;
use workeros_core::{CoreError, Email, EmailSender};

/// Writes each email to the log (`tracing`, target `workeros_auth::email`) instead of sending it:
/// the default, for development. The tokens of the links it carries (invitation, verification,
/// reset) are redacted, since logs travel further than mailboxes; an operator who wants to follow
/// the links in development opts in with [`ConsoleSender::revealing_links`]. Use a real sender in
/// production.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleSender {
    reveal: bool,
}

impl ConsoleSender {
    /// The default: tokens in links are redacted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs links whole, tokens included: for a developer's machine only (anyone who reads the
    /// log can accept the invitations and reset the passwords it shows).
    pub fn revealing_links() -> Self {
        Self { reveal: true }
    }

    /// `text` as logged: every `token=` value redacted unless links are revealed.
    fn shown(&self, text: &str) -> String {
        if self.reveal {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("token=") {
            let (head, tail) = rest.split_at(i + "token=".len());
            out.push_str(head);
            out.push_str("<redacted>");
            let end = tail
                .find(|c: char| c.is_whitespace() || c == '&' || c == '"' || c == '<')
                .unwrap_or(tail.len());
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }
}

#[async_trait]
impl EmailSender for ConsoleSender {
    async fn send(&self, email: &Email) -> Result<(), CoreError> {
        tracing::info!(
            target: "workeros_auth::email",
            to = %email.to,
            subject = %email.subject,
            text = %self.shown(&email.text),
            "email (console sender; not delivered)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ConsoleSender;

    #[test]
    fn console_sender_redacts_tokens_unless_asked() {
        let text = "Set your password here: https://app.test/accept-invite?token=SECRET1\n\
                    or https://app.test/reset?x=1&token=SECRET2&y=2.";
        let shown = ConsoleSender::new().shown(text);
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("accept-invite?token=<redacted>"), "{shown}");
        assert!(shown.contains("&y=2."), "{shown}");
        assert_eq!(ConsoleSender::revealing_links().shown(text), text);
    }
}

#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub use smtp::SmtpSender;

#[cfg(feature = "smtp")]
mod smtp {
    use async_trait::async_trait;
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    use workeros_core::{CoreError, Email, EmailSender};

    /// Sends email over SMTP (STARTTLS or implicit TLS, by lettre on rustls).
    #[derive(Clone)]
    pub struct SmtpSender {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    }

    impl std::fmt::Debug for SmtpSender {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SmtpSender")
                .field("from", &self.from)
                .finish()
        }
    }

    impl SmtpSender {
        /// A sender through `url` (`smtps://user:pass@host:465` or
        /// `smtp://user:pass@host:587?tls=required`, lettre's URL form), from `from`
        /// (`Name <addr@example.com>`).
        pub fn new(url: &str, from: &str) -> Result<Self, CoreError> {
            Self::build(url, from, None)
        }

        /// The same sender with explicit credentials.
        pub fn with_credentials(
            url: &str,
            from: &str,
            user: &str,
            password: &str,
        ) -> Result<Self, CoreError> {
            Self::build(
                url,
                from,
                Some(Credentials::new(user.to_owned(), password.to_owned())),
            )
        }

        fn build(
            url: &str,
            from: &str,
            credentials: Option<Credentials>,
        ) -> Result<Self, CoreError> {
            let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| CoreError::Adapter(format!("the SMTP url is not usable: {e}")))?;
            if let Some(c) = credentials {
                builder = builder.credentials(c);
            }
            let from = from.parse().map_err(|e| {
                CoreError::Adapter(format!("`{from}` is not a sender address: {e}"))
            })?;
            Ok(Self {
                transport: builder.build(),
                from,
            })
        }
    }

    #[async_trait]
    impl EmailSender for SmtpSender {
        async fn send(&self, email: &Email) -> Result<(), CoreError> {
            let to: Mailbox = email.to.parse().map_err(|e| {
                CoreError::Adapter(format!("`{}` is not an address: {e}", email.to))
            })?;
            let builder = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(email.subject.clone());
            let message = match &email.html {
                Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                    email.text.clone(),
                    html.clone(),
                )),
                None => builder.body(email.text.clone()),
            }
            .map_err(|e| CoreError::Adapter(format!("the email could not be built: {e}")))?;
            self.transport
                .send(message)
                .await
                .map_err(|e| CoreError::Adapter(format!("the email could not be sent: {e}")))?;
            Ok(())
        }
    }
}
