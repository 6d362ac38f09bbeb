//! workeros-auth: identity. It answers "who is asking" with the [`Subject`](workeros_core::Subject)
//! every other workeros crate takes; a host with its own identity system can skip it.
//!
//! - Users with Argon2id passwords ([`password`]); the first user becomes `admin`, later ones
//!   `authenticated`; emails unique per deployment in any case; statuses `active`, `invited`,
//!   `suspended`.
//! - Sessions: 256-bit opaque tokens in an `HttpOnly`, `Secure`, `SameSite=Lax` cookie, only
//!   their SHA-256 stored; a new session on every login; revoked on logout, password change and
//!   suspension; sliding expiry with an absolute cap.
//! - API keys (`pak_…`): shown once, stored hashed with a display prefix, optional expiry,
//!   `last_used_at`, revocable; a key acts as its user with the user's current roles.
//! - [`http`]: the axum [`AuthLayer`](http::AuthLayer) (session cookie, then bearer; presented but
//!   invalid credentials are 401, never anonymous) and the routes; login is rate limited per
//!   account and per client address.
//! - Org mode: organizations as tenants; invitations, email verification and password reset
//!   with single-use, expiring, hashed tokens through an [`EmailSender`](workeros_core::EmailSender)
//!   ([`email::ConsoleSender`] by default, `email::SmtpSender` with the `smtp` feature).
//! - Credentials seen once are resolved from memory: no database round trip per request. Every
//!   change made through any `Auth` over the same [`Db`](workeros_store::Db) takes effect on the
//!   next request; other instances on the same PostgreSQL learn of it by notification when they
//!   run [`Auth::start`], and at the latest after [`AuthConfig::credential_cache_ttl`].
//! - [`sync`]: roles and memberships from an external identity provider, order-independent.
//! - Realtime tickets: 60-second HMAC-SHA256 tickets for `EventSource`, verified in constant time.
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | [`http`]: routes and the auth layer |
//! | `smtp` | no | `email::SmtpSender` (lettre, rustls on ring) |
//!
//! ```no_run
//! use workeros_auth::{Auth, AuthConfig, Signup};
//! use workeros_core::roles::ADMIN;
//! # async fn demo() -> Result<(), workeros_auth::AuthError> {
//! let db = workeros_store::Db::connect("sqlite::memory:").await?;
//! workeros_store::migrate(&db).await?;
//! workeros_auth::migrate(&db).await?;
//! let auth = Auth::new(db, AuthConfig::default())?;
//! let (user, _session) = auth
//!     .signup(&Signup {
//!         email: "ada@example.com".into(),
//!         password: "correct horse battery".into(),
//!         ..Signup::default()
//!     })
//!     .await?;
//! assert_eq!(user.roles, [ADMIN]); // the first user
//! let (_, session) = auth.login("ADA@example.com", "correct horse battery", None).await?;
//! let subject = auth.authenticate_session(&session.token).await?;
//! assert!(subject.is_admin());
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod api_keys;
mod cache;
mod config;
mod credentials;
pub mod email;
mod error;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod http;
mod limit;
mod one_time;
pub mod password;
mod roles;
mod schema;
mod service;
mod sessions;
pub mod sync;
mod ticket;
mod tokens;
mod users;

pub use api_keys::{ApiKeyInfo, NewApiKey};
pub use config::{AuthConfig, OrgCreation, RateLimit};
pub use error::AuthError;
pub use roles::RoleInfo;
pub use schema::{SCHEMA, migrate};
pub use service::{Auth, BOOTSTRAP_USER_ID, Signup, UserPatch};
pub use sessions::NewSession;
pub use tokens::API_KEY_PREFIX;
pub use users::{CREDENTIAL_ATTR, Invitation, OrganizationInfo, UserInfo, UserStatus, create_user};
