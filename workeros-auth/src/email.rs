//! Email delivery for invitations, verification and password reset: the host's
//! [`EmailSender`]; [`ConsoleSender`] by default, [`SmtpSender`] with the `smtp` feature.

use async_trait::async_trait;
use workeros_core::{CoreError, Email, EmailSender};

/// Writes each email to the log (`tracing`, target `workeros_auth::email`) instead of sending it:
/// the default, for development. The log then holds the links, and so the tokens: use a real
/// sender in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleSender;

#[async_trait]
impl EmailSender for ConsoleSender {
    async fn send(&self, email: &Email) -> Result<(), CoreError> {
        tracing::info!(
            target: "workeros_auth::email",
            to = %email.to,
            subject = %email.subject,
            text = %email.text,
            "email (console sender; not delivered)"
        );
        Ok(())
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
