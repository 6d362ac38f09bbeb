//! How a host configures workeros-auth.

use std::time::Duration;

/// A rate limit: at most `max` attempts per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Attempts allowed in one window.
    pub max: u32,
    /// The window.
    pub window: Duration,
}

/// Who may create an organization (org mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrgCreation {
    /// Anyone: signing up creates an organization and makes its admin (the default, as in a
    /// self-serve SaaS). Signups are limited per address ([`AuthConfig::signup_per_address`]).
    #[default]
    Signup,
    /// Only the host, through [`Auth::create_organization`](crate::Auth::create_organization);
    /// signup is refused and people join an organization by invitation.
    Host,
}

/// The configuration of an [`Auth`](crate::Auth). [`AuthConfig::default`] is production-safe:
/// single-tenant, `Secure` cookies, signup open.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Organizations as tenants (signup creates an organization). Off: one fixed tenant,
    /// [`DEFAULT_TENANT`](workeros_core::DEFAULT_TENANT).
    pub org_mode: bool,
    /// Whether anyone may sign up (`POST /api/auth/signup`). Invitations work either way.
    pub allow_signup: bool,
    /// Who may create organizations (org mode): by signing up (the default), or the host only.
    pub organizations: OrgCreation,
    /// Set the `Secure` cookie attribute. Turn off only for plain-HTTP development.
    pub secure_cookies: bool,
    /// The session cookie's name. With [`secure_cookies`](Self::secure_cookies) it is sent with
    /// the `__Host-` prefix (see [`AuthConfig::session_cookie_name`]), which browsers accept only
    /// from the host itself, over HTTPS, for path `/`: a sibling subdomain cannot plant one.
    pub cookie_name: String,
    /// A session unused for this long expires (each use slides it forward).
    pub session_idle: Duration,
    /// No session outlives this, however much it is used.
    pub session_max: Duration,
    /// Login attempts per account (by email) from one client address. It holds a guesser at
    /// one address long before [`login_per_account`](Self::login_per_account), so the owner
    /// signing in from elsewhere is not locked out by them. Also the budget of password-change
    /// attempts per account and of reset requests per account.
    pub login_per_account_address: RateLimit,
    /// Login attempts per account from every address together: the bound on guessing spread
    /// over many addresses. Keep it well above
    /// [`login_per_account_address`](Self::login_per_account_address): an attacker needs
    /// `login_per_account / login_per_account_address` addresses to hold an account at it.
    pub login_per_account: RateLimit,
    /// Login attempts per client address.
    pub login_per_address: RateLimit,
    /// Signups per client address (in org mode each makes an organization, whose admin holds
    /// every tenant-admin power). Signups with no known address are not counted here; they
    /// still hash one password at a time.
    pub signup_per_address: RateLimit,
    /// Emails one user makes the deployment send (invitations, verification requests): a relay
    /// for strangers otherwise, in org mode where anyone can be an organization's admin.
    pub mail_per_user: RateLimit,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a proxy that
    /// sets it); otherwise from the connection (`axum::extract::ConnectInfo<SocketAddr>`).
    pub trust_forwarded_for: bool,
    /// The key of realtime tickets (≥ 32 bytes). `None`: a random key per process, so tickets
    /// do not survive a restart and are not accepted by another instance.
    pub ticket_secret: Option<Vec<u8>>,
    /// How long a realtime ticket is valid.
    pub ticket_ttl: Duration,
    /// How long an invitation is valid.
    pub invite_ttl: Duration,
    /// How long an email verification token is valid.
    pub verify_ttl: Duration,
    /// How long a password reset token is valid.
    pub reset_ttl: Duration,
    /// The base URL of links in emails (`<base>/accept-invite?token=…`), such as
    /// `https://app.example.com`.
    pub link_base: String,
    /// How long a resolved session or API key is kept in memory (default 10 s; zero: no cache,
    /// every request reads the database). Changes made through this [`Auth`](crate::Auth) are
    /// seen at once; other instances on the same PostgreSQL see them when notified (a started
    /// [`Auth`](crate::Auth), see [`Auth::start`](crate::Auth::start)), and at the latest after
    /// this long: the bound across instances.
    pub credential_cache_ttl: Duration,
    /// Most resolved credentials kept in memory (default 100,000).
    pub credential_cache_size: u64,
    /// A static bearer token that acts as an admin (a bootstrap credential, like Directus'
    /// `ADMIN_TOKEN`); compared in constant time. `None`: no such token.
    pub bootstrap_token: Option<String>,
}

impl AuthConfig {
    /// The session cookie's name as sent: `__Host-<cookie_name>` with secure cookies, else
    /// `cookie_name`.
    pub fn session_cookie_name(&self) -> String {
        if self.secure_cookies {
            format!("__Host-{}", self.cookie_name)
        } else {
            self.cookie_name.clone()
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            org_mode: false,
            allow_signup: true,
            organizations: OrgCreation::Signup,
            secure_cookies: true,
            cookie_name: "workeros_session".into(),
            session_idle: Duration::from_secs(7 * 24 * 3600),
            session_max: Duration::from_secs(30 * 24 * 3600),
            login_per_account_address: RateLimit {
                max: 10,
                window: Duration::from_secs(15 * 60),
            },
            login_per_account: RateLimit {
                max: 100,
                window: Duration::from_secs(15 * 60),
            },
            login_per_address: RateLimit {
                max: 100,
                window: Duration::from_secs(15 * 60),
            },
            signup_per_address: RateLimit {
                max: 10,
                window: Duration::from_secs(3600),
            },
            mail_per_user: RateLimit {
                max: 30,
                window: Duration::from_secs(3600),
            },
            trust_forwarded_for: false,
            ticket_secret: None,
            ticket_ttl: Duration::from_secs(60),
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            verify_ttl: Duration::from_secs(24 * 3600),
            reset_ttl: Duration::from_secs(3600),
            link_base: String::new(),
            bootstrap_token: None,
            credential_cache_ttl: Duration::from_secs(10),
            credential_cache_size: 100_000,
        }
    }
}
