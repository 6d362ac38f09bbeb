//! [`Auth`]: every identity operation as a plain async API (the HTTP routes are thin wrappers).

use crate::api_keys::{self, ApiKeyInfo, NewApiKey};
use crate::cache::{Credentials, Forget};
use crate::config::{AuthConfig, OrgCreation};
use crate::email::ConsoleSender;
use crate::limit::Limiter;
use crate::one_time::{self, Purpose};
use crate::schema::{ORGANIZATIONS, USER_ROLES, USERS};
use crate::sessions::{self, NewSession};
use crate::ticket::Tickets;
use crate::users::{self, Invitation, NewUser, OrganizationInfo, UserInfo, UserRow, UserStatus};
use crate::{AuthError, password, roles, tokens};
use sea_query::{Alias, Expr, ExprTrait, Query};
use std::net::IpAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_core::DEFAULT_TENANT;
use workeros_core::instant::rfc3339;
use workeros_core::roles::{ADMIN, AUTHENTICATED};
use workeros_core::{Email, EmailSender, Subject, User};
use workeros_store::values::{self, ts_value, uuid_value};
use workeros_store::{Db, Tx};

mod mailed;

/// The user id of the subject that [`AuthConfig::bootstrap_token`] signs in. It has no row in
/// `users`: it cannot have sessions, API keys or a password.
pub const BOOTSTRAP_USER_ID: &str = "bootstrap-admin";

/// What `signup` takes.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signup {
    /// The email (unique per deployment, any case).
    pub email: String,
    /// The password (8 to 1024 characters).
    pub password: String,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The new organization's name: required in org mode, refused otherwise.
    #[serde(default)]
    pub organization_name: Option<String>,
}

/// An admin's change to a user.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    /// A new display name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new status (`active` or `suspended`; suspension ends the user's sessions).
    #[serde(default)]
    pub status: Option<UserStatus>,
}

struct Inner {
    db: Db,
    config: AuthConfig,
    /// Login attempts per account from all addresses ([`AuthConfig::login_per_account`]).
    per_account: Limiter,
    /// Login attempts per account and address, password changes and reset requests per account
    /// ([`AuthConfig::login_per_account_address`]).
    per_account_address: Limiter,
    /// [`AuthConfig::session_cookie_name`], computed once.
    cookie_name: String,
    per_address: Limiter,
    tickets: Tickets,
    email: Arc<dyn EmailSender>,
    /// A hash verified against when the account does not exist, so that an unknown email takes
    /// as long as a wrong password; made at the first such login, not at start-up.
    dummy_hash: std::sync::OnceLock<String>,
    /// Password hashes computed at once: the number of cores.
    hashing: tokio::sync::Semaphore,
    /// Signups per address ([`AuthConfig::signup_per_address`]).
    signups: Limiter,
    /// Emails per sending user ([`AuthConfig::mail_per_user`]).
    mailers: Limiter,
    /// One signup hashes at a time, so that a flood of signups leaves the other cores to logins.
    signup_gate: tokio::sync::Semaphore,
    /// Resolved sessions and API keys, and the use they record ([`crate::cache`]).
    creds: Credentials,
}

/// Identity over one [`Db`]: signup, login, sessions, API keys, users and roles, organizations,
/// invitations, one-time tokens, realtime tickets. Cloning is cheap and shares everything.
///
/// Run [`migrate`](crate::migrate) (and the store's) before using it.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("org_mode", &self.inner.config.org_mode)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Runs a CPU-heavy closure (Argon2id, 19 MiB each) off the async workers, at most
    /// [`Inner::hashing`]'s permits at once, so a flood of requests queues instead of taking
    /// every core and gigabytes of memory.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .inner
            .hashing
            .acquire()
            .await
            .map_err(AuthError::internal)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(AuthError::internal)?
    }
}

/// The subject's tenant, when it is an admin there.
fn admin_tenant(subject: &Subject) -> Result<&str, AuthError> {
    if subject.is_anonymous() {
        return Err(AuthError::Unauthorized);
    }
    if !subject.is_admin() {
        return Err(AuthError::admin_only());
    }
    Ok(subject.tenant_id())
}

impl Auth {
    /// Identity over `db` with `config`, sending email to the log ([`ConsoleSender`]).
    pub fn new(db: Db, config: AuthConfig) -> Result<Self, AuthError> {
        Self::with_email_sender(db, config, Arc::new(ConsoleSender::new()))
    }

    /// Identity over `db` with `config`, sending email through `email`.
    pub fn with_email_sender(
        db: Db,
        config: AuthConfig,
        email: Arc<dyn EmailSender>,
    ) -> Result<Self, AuthError> {
        let key = match &config.ticket_secret {
            Some(k) if k.len() < 32 => {
                return Err(AuthError::Validation(
                    "the ticket secret must have at least 32 bytes".into(),
                ));
            }
            Some(k) => k.clone(),
            None => tokens::random_bytes(32),
        };
        if config
            .bootstrap_token
            .as_ref()
            .is_some_and(|t| t.len() < 16)
        {
            return Err(AuthError::Validation(
                "the bootstrap token must have at least 16 characters".into(),
            ));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                per_account: Limiter::new(config.login_per_account),
                per_account_address: Limiter::new(config.login_per_account_address),
                signups: Limiter::new(config.signup_per_address),
                mailers: Limiter::new(config.mail_per_user),
                signup_gate: tokio::sync::Semaphore::new(1),
                cookie_name: config.session_cookie_name(),
                per_address: Limiter::new(config.login_per_address),
                tickets: Tickets::new(key),
                creds: Credentials::new(
                    db.clone(),
                    config.credential_cache_size,
                    config.credential_cache_ttl,
                ),
                db,
                config,
                email,
                dummy_hash: std::sync::OnceLock::new(),
                hashing: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
                ),
            }),
        })
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The session cookie's name as sent ([`AuthConfig::session_cookie_name`]).
    pub fn cookie_name(&self) -> &str {
        &self.inner.cookie_name
    }

    // ---- sign up, log in, log out ----

    /// Creates an account and signs it in. Single-tenant: the first user of the deployment gets
    /// `admin`, later ones `authenticated`. Org mode: `organization_name` is required; a new
    /// organization is created and the user is its admin.
    pub async fn signup(&self, input: &Signup) -> Result<(UserInfo, NewSession), AuthError> {
        self.signup_from(input, None).await
    }

    /// [`signup`](Self::signup) from client `address`: at most
    /// [`AuthConfig::signup_per_address`] signups per address (`429` past it; the HTTP route
    /// passes the address).
    pub async fn signup_from(
        &self,
        input: &Signup,
        address: Option<IpAddr>,
    ) -> Result<(UserInfo, NewSession), AuthError> {
        if let Some(a) = address {
            self.inner
                .signups
                .attempt(&address_key(a))
                .map_err(AuthError::rate_limited)?;
        }
        let cfg = &self.inner.config;
        if !cfg.allow_signup {
            return Err(AuthError::Forbidden(
                "signup is closed; ask an admin for an invitation".into(),
            ));
        }
        let email = input.email.trim();
        users::check_email(email)?;
        users::check_name(input.name.as_deref())?;
        password::check_new_password(&input.password)?;
        if cfg.org_mode && cfg.organizations == OrgCreation::Host {
            return Err(AuthError::Forbidden(
                "organizations are created by the deployment; ask an organization's admin for an invitation"
                    .into(),
            ));
        }
        let org = match (&input.organization_name, cfg.org_mode) {
            (Some(n), true) => Some(check_org_name(n)?),
            (None, true) => {
                return Err(AuthError::Validation(
                    "`organizationName` is required: signing up creates an organization".into(),
                ));
            }
            (Some(_), false) => {
                return Err(AuthError::Validation(
                    "`organizationName` is only accepted in org mode".into(),
                ));
            }
            (None, false) => None,
        };
        let pw = input.password.clone();
        let hash = {
            let _one = self
                .inner
                .signup_gate
                .acquire()
                .await
                .map_err(AuthError::internal)?;
            self.blocking(move || password::hash_password(&pw)).await?
        };
        let mut tx = self.inner.db.begin().await?;
        users::lock_users(&mut tx).await?;
        // An invitation nobody accepted does not hold the address: whoever owns it may sign up
        // (the invitation ends; an admin anywhere can invite any address).
        if let Some(invited) = users::by_email_in(&mut tx, email).await?
            && invited.status == UserStatus::Invited
        {
            users::delete(&mut tx, invited.id).await?;
        }
        let (tenant, role) = match org {
            Some(name) => (self.insert_organization(&mut tx, name).await?, ADMIN),
            None => (
                DEFAULT_TENANT.to_owned(),
                users::default_role(&mut tx).await?,
            ),
        };
        let user = users::insert(
            &mut tx,
            NewUser {
                tenant: &tenant,
                email,
                name: input.name.as_deref(),
                status: UserStatus::Active,
                password_hash: Some(hash),
                email_verified_at: None,
            },
            role,
        )
        .await?;
        let session = sessions::create(&mut tx, &user, cfg).await?;
        tx.commit().await?;
        tracing::info!(user = %user.id, tenant = %user.tenant, "signup");
        // A new account's email is unverified, so no provider membership links to it yet: its
        // roles are the one it was given.
        Ok((user.info(vec![role.to_owned()]), session))
    }

    /// Signs in with email and password; a new session every time (never a client-chosen one).
    /// Limited per account and per client `address`; every failure is the same
    /// [`AuthError::Unauthorized`], and an unknown email costs the same hash as a wrong password.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<(UserInfo, NewSession), AuthError> {
        self.limit_address(address)
            .map_err(AuthError::rate_limited)?;
        let account = email.trim().to_lowercase();
        if account.len() > 254 || password.len() > password::MAX_PASSWORD_LEN {
            // Not an account of ours; never a limiter key (memory stays bounded).
            return Err(AuthError::Unauthorized);
        }
        self.limit_account(&account, address)
            .map_err(AuthError::rate_limited)?;
        let user = users::by_email(&self.inner.db, &account).await?;
        let hash = match &user {
            Some(u) if u.status == UserStatus::Active => u.password_hash.clone(),
            _ => None,
        };
        let ok = {
            let pw = password.to_owned();
            let inner = self.inner.clone();
            self.blocking(move || {
                Ok(match &hash {
                    Some(h) => password::verify_password(&pw, h),
                    None => {
                        // An unknown email costs the same hash as a wrong password.
                        let dummy = inner.dummy_hash.get_or_init(|| {
                            password::hash_password(&tokens::random_token()).unwrap_or_default()
                        });
                        password::verify_password(&pw, dummy);
                        false
                    }
                })
            })
            .await?
        };
        let Some(user) = user.filter(|_| ok) else {
            tracing::info!("login failed");
            return Err(AuthError::Unauthorized);
        };
        self.clear_account(&account, address);
        let mut tx = self.inner.db.begin().await?;
        sessions::sweep(&mut tx, user.id).await?;
        let session = sessions::create(&mut tx, &user, &self.inner.config).await?;
        tx.commit().await?;
        tracing::info!(user = %user.id, "login");
        Ok((self.signed_in(&user).await?, session))
    }

    /// Counts a login attempt on `account` from `address`: first against the account from that
    /// address, then (only if that allowed it) against the account from anywhere. A guesser at
    /// one address thus spends at most [`AuthConfig::login_per_account_address`] of the
    /// account-wide budget, and the owner elsewhere signs in while that address is held.
    fn limit_account(&self, account: &str, address: Option<IpAddr>) -> Result<(), u64> {
        self.inner
            .per_account_address
            .attempt(&account_address_key(account, address))?;
        self.inner.per_account.attempt(account)
    }

    /// Forgets the attempts on `account` (a successful sign-in from `address`).
    fn clear_account(&self, account: &str, address: Option<IpAddr>) {
        self.inner
            .per_account_address
            .clear(&account_address_key(account, address));
        self.inner.per_account.clear(account);
    }

    /// Counts an attempt from `address`: IPv4 addresses one by one, IPv6 by /64 (what one host
    /// usually has). Without an address there is no per-address limit, which is logged once.
    fn limit_address(&self, address: Option<IpAddr>) -> Result<(), u64> {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let key = match address {
            Some(a) => address_key(a),
            None => {
                if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(
                        "login without a client address: no per-address rate limit (serve with \
                         `into_make_service_with_connect_info::<SocketAddr>()`, or trust a proxy's \
                         X-Forwarded-For)"
                    );
                }
                return Ok(());
            }
        };
        self.inner.per_address.attempt(&key)
    }

    /// Ends the session `token` (unknown tokens are ignored).
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        sessions::revoke(&self.inner.db, token).await?;
        self.forget(Forget::Token(tokens::digest(token))).await;
        Ok(())
    }

    /// Runs what the service does beside the requests: on PostgreSQL, listening on the
    /// namespace's auth channel ([`Names::auth_channel`](workeros_store::Names::auth_channel))
    /// so that a credential change another instance makes (a logout, a revocation, a role
    /// change) is forgotten here at once instead of at the cache's age limit. It reconnects after
    /// a lost connection, forgetting everything (notifications may have been missed). On SQLite
    /// there is nothing to follow: the handle runs no loop. Stop it with
    /// [`Workers::shutdown`](workeros_store::workers::Workers::shutdown).
    pub async fn start(&self) -> Result<workeros_store::workers::Workers, AuthError> {
        crate::cache::follow(&self.inner.creds, &self.inner.db).await
    }

    /// Forgets cached credentials here and on the other instances (after a change committed).
    pub(crate) async fn forget(&self, what: Forget) {
        self.inner.creds.forget(what).await;
    }

    // ---- authentication ----

    /// The subject of a session token.
    pub async fn authenticate_session(&self, token: &str) -> Result<Subject, AuthError> {
        sessions::authenticate(&self.inner.db, token, &self.inner.config, &self.inner.creds).await
    }

    /// The subject of a bearer credential: an API key (`pak_…`) or the bootstrap token.
    pub async fn authenticate_bearer(&self, bearer: &str) -> Result<Subject, AuthError> {
        if let Some(t) = &self.inner.config.bootstrap_token {
            // Digests of equal length compared whole, in constant time.
            let given = tokens::digest(bearer);
            let want = tokens::digest(t);
            if bool::from(given.as_bytes().ct_eq(want.as_bytes())) {
                return Ok(
                    Subject::user(User::new(BOOTSTRAP_USER_ID).with_roles([ADMIN]))
                        .with_tenant(DEFAULT_TENANT),
                );
            }
        }
        api_keys::authenticate(&self.inner.db, bearer, &self.inner.creds).await
    }

    /// The signed-in user's row; `Unauthorized` for anonymous or a subject without one.
    async fn current(&self, subject: &Subject) -> Result<UserRow, AuthError> {
        let id = subject
            .user
            .as_ref()
            .and_then(|u| Uuid::try_parse(&u.id).ok())
            .ok_or(AuthError::Unauthorized)?;
        users::by_id(&self.inner.db, id)
            .await?
            .filter(|u| u.status == UserStatus::Active && u.tenant == subject.tenant_id())
            .ok_or(AuthError::Unauthorized)
    }

    /// What a sign-in answers: the user with its current roles, after linking its provider
    /// memberships when its email is verified (see [`crate::sync`]).
    async fn signed_in(&self, user: &UserRow) -> Result<UserInfo, AuthError> {
        if user.email_verified {
            crate::sync::link_user(&self.inner.db, user.id, &user.email).await?;
        }
        let roles = users::roles_of(&self.inner.db, &user.tenant, user.id).await?;
        Ok(user.info(roles))
    }

    /// The signed-in user, with its current roles.
    pub async fn me(&self, subject: &Subject) -> Result<UserInfo, AuthError> {
        if let Some(u) = subject.user.as_ref().filter(|u| u.id == BOOTSTRAP_USER_ID) {
            return Ok(UserInfo {
                id: u.id.clone(),
                email: String::new(),
                name: Some("bootstrap admin token".into()),
                status: UserStatus::Active,
                roles: u.roles.clone(),
                email_verified: false,
                tenant: subject.tenant_id().to_owned(),
            });
        }
        // Kept in memory like the credentials and forgotten with them (`crate::cache`): every
        // change to a user's name, email, status or roles forgets the user.
        let creds = &self.inner.creds;
        if let Some(id) = subject
            .user
            .as_ref()
            .and_then(|u| Uuid::try_parse(&u.id).ok())
            && let Some(info) = creds.user(id)
            && info.tenant == subject.tenant_id()
        {
            return Ok((*info).clone());
        }
        let generation = creds.generation();
        let user = self.current(subject).await?;
        let roles = users::roles_of(&self.inner.db, &user.tenant, user.id).await?;
        let info = user.info(roles);
        creds.keep_user(user.id, info.clone(), generation);
        Ok(info)
    }

    /// Creates an organization (org mode) for the host to populate, whatever
    /// [`AuthConfig::organizations`] says: the way organizations come to exist under
    /// [`OrgCreation::Host`]. Its first admin joins by invitation: call
    /// [`invite_member`](Self::invite_member) as a subject with the `admin` role in the new
    /// tenant (`Subject::user(User::new("ops").with_roles(["admin"])).with_tenant(&org.id)`)
    /// and role `admin`.
    pub async fn create_organization(&self, name: &str) -> Result<OrganizationInfo, AuthError> {
        if !self.inner.config.org_mode {
            return Err(AuthError::Validation(
                "organizations exist only in org mode (`AuthConfig::org_mode`)".into(),
            ));
        }
        let name = check_org_name(name)?;
        let mut tx = self.inner.db.begin().await?;
        let id = self.insert_organization(&mut tx, name).await?;
        tx.commit().await?;
        tracing::info!(tenant = %id, "organization created by the host");
        Ok(OrganizationInfo {
            id,
            name: name.to_owned(),
        })
    }

    /// Inserts an organization named `name` (checked); returns its id, the tenant's.
    async fn insert_organization(&self, tx: &mut Tx, name: &str) -> Result<String, AuthError> {
        // Random (v4) ids: the store names tables by the tenant id's first 12 hex digits, which
        // for time-ordered ids would repeat within a millisecond.
        let id = Uuid::new_v4().hyphenated().to_string();
        let now = ts_value(values::now(), tx.dialect());
        tx.execute(
            Query::insert()
                .into_table(self.inner.db.table(ORGANIZATIONS))
                .columns(["id", "name", "created_at", "updated_at"].map(Alias::new))
                .values([
                    Expr::val(id.as_str()),
                    Expr::val(name),
                    Expr::val(now.clone()),
                    Expr::val(now),
                ])
                .map_err(AuthError::internal)?,
        )
        .await?;
        Ok(id)
    }

    /// The organization the subject acts in (org mode), if there is one.
    pub async fn organization(
        &self,
        subject: &Subject,
    ) -> Result<Option<OrganizationInfo>, AuthError> {
        let creds = &self.inner.creds;
        if let Some(org) = creds.organization(subject.tenant_id()) {
            return Ok((*org).clone());
        }
        let generation = creds.generation();
        let rows = self
            .inner
            .db
            .fetch_all(
                Query::select()
                    .columns(["id", "name"].map(Alias::new))
                    .from(self.inner.db.table(ORGANIZATIONS))
                    .and_where(Expr::col(Alias::new("id")).eq(subject.tenant_id()))
                    .limit(1),
            )
            .await?;
        let org = rows
            .iter()
            .next()
            .map(|r| {
                Ok::<_, AuthError>(OrganizationInfo {
                    id: r.text("id")?.unwrap_or_default(),
                    name: r.text("name")?.unwrap_or_default(),
                })
            })
            .transpose()?;
        creds.keep_organization(subject.tenant_id().to_owned(), org.clone(), generation);
        Ok(org)
    }

    /// Changes the signed-in user's password: the current one must match. Every session and
    /// every API key of the user ends (a user changes a password when they fear someone else has
    /// it, and a key minted from a stolen session must not outlive that), and a new session is
    /// returned for the caller.
    pub async fn change_password(
        &self,
        subject: &Subject,
        current: &str,
        new: &str,
    ) -> Result<NewSession, AuthError> {
        let user = self.current(subject).await?;
        password::check_new_password(new)?;
        let account = user.email.to_lowercase();
        // A signed-in subject guessing the current password (a stolen session): the tight
        // budget, on a key of its own.
        let key = format!("change:{account}");
        self.inner
            .per_account_address
            .attempt(&key)
            .map_err(AuthError::rate_limited)?;
        let stored = user.password_hash.clone().unwrap_or_default();
        let (cur, new_pw) = (current.to_owned(), new.to_owned());
        let hash = self
            .blocking(move || {
                if password::verify_password(&cur, &stored) {
                    password::hash_password(&new_pw).map(Some)
                } else {
                    Ok(None)
                }
            })
            .await?
            .ok_or(AuthError::Unauthorized)?;
        self.inner.per_account_address.clear(&key);
        self.inner.per_account.clear(&account);
        let mut tx = self.inner.db.begin().await?;
        set_password(&mut tx, user.id, &hash).await?;
        sessions::revoke_all(&mut tx, user.id).await?;
        api_keys::revoke_all(&mut tx, user.id).await?;
        one_time::forget(&mut tx, user.id, Some(Purpose::ResetPassword)).await?;
        let session = sessions::create(&mut tx, &user, &self.inner.config).await?;
        tx.commit().await?;
        self.forget(Forget::User(user.id)).await;
        tracing::info!(user = %user.id, "password changed; sessions and API keys revoked");
        Ok(session)
    }

    // ---- API keys ----

    /// Creates an API key for the signed-in user.
    pub async fn create_api_key(
        &self,
        subject: &Subject,
        name: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<NewApiKey, AuthError> {
        // A key cannot mint keys: a leaked key must not outlive its own revocation.
        if subject
            .user
            .as_ref()
            .and_then(|u| u.attrs.get(users::CREDENTIAL_ATTR))
            .and_then(|v| v.as_str())
            == Some(users::Credential::ApiKey.as_str())
        {
            return Err(AuthError::Forbidden(
                "an API key cannot create API keys; sign in to create one".into(),
            ));
        }
        let user = self.current(subject).await?;
        api_keys::create(&self.inner.db, &user, name, expires_at).await
    }

    /// The signed-in user's live API keys.
    pub async fn list_api_keys(&self, subject: &Subject) -> Result<Vec<ApiKeyInfo>, AuthError> {
        let user = self.current(subject).await?;
        // Uses recorded but not yet written are written first, so the list shows them.
        self.inner.creds.flush().await?;
        api_keys::list(&self.inner.db, user.id).await
    }

    /// Revokes one of the signed-in user's API keys.
    pub async fn revoke_api_key(&self, subject: &Subject, id: &str) -> Result<(), AuthError> {
        let user = self.current(subject).await?;
        api_keys::revoke(&self.inner.db, user.id, id).await?;
        self.forget(Forget::User(user.id)).await;
        Ok(())
    }

    // ---- realtime tickets ----

    /// A realtime ticket for a signed-in subject, and when it expires.
    pub fn issue_ticket(&self, subject: &Subject) -> Result<(String, OffsetDateTime), AuthError> {
        let ttl = time::Duration::try_from(self.inner.config.ticket_ttl)
            .unwrap_or(time::Duration::MINUTE);
        let expires = values::now().saturating_add(ttl);
        let ticket = self
            .inner
            .tickets
            .issue(subject, expires.unix_timestamp())?;
        Ok((ticket, expires))
    }

    /// The subject a realtime ticket was issued to, if it is genuine and unexpired.
    pub fn verify_ticket(&self, ticket: &str) -> Result<Subject, AuthError> {
        self.inner
            .tickets
            .verify(ticket, values::now().unix_timestamp())
    }

    // ---- administration (admins, within their tenant) ----

    /// The users of the admin's tenant.
    pub async fn list_users(&self, subject: &Subject) -> Result<Vec<UserInfo>, AuthError> {
        let tenant = admin_tenant(subject)?;
        let db = &self.inner.db;
        let rows = db
            .fetch_all(
                users::select_users(db.names())
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                    .order_by(Alias::new("id"), sea_query::Order::Asc),
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for u in users::user_rows(&rows)? {
            let roles = users::roles_of(db, tenant, u.id).await?;
            out.push(u.info(roles));
        }
        Ok(out)
    }

    /// A user of the admin's tenant (`NotFound` for another tenant's).
    async fn tenant_user(&self, tenant: &str, id: &str) -> Result<UserRow, AuthError> {
        let uid = users::parse_user_id(id)?;
        users::by_id(&self.inner.db, uid)
            .await?
            .filter(|u| u.tenant == tenant)
            .ok_or_else(|| AuthError::NotFound(format!("no user `{id}`")))
    }

    /// One user of the admin's tenant.
    pub async fn get_user(&self, subject: &Subject, id: &str) -> Result<UserInfo, AuthError> {
        let tenant = admin_tenant(subject)?;
        let user = self.tenant_user(tenant, id).await?;
        let roles = users::roles_of(&self.inner.db, tenant, user.id).await?;
        Ok(user.info(roles))
    }

    /// Renames, suspends or reactivates a user. Suspension ends its sessions at once; the last
    /// active admin of a tenant cannot be suspended.
    pub async fn update_user(
        &self,
        subject: &Subject,
        id: &str,
        patch: &UserPatch,
    ) -> Result<UserInfo, AuthError> {
        let tenant = admin_tenant(subject)?;
        users::check_name(patch.name.as_deref())?;
        if patch.status == Some(UserStatus::Invited) {
            return Err(AuthError::Validation(
                "`status` can be set to `active` or `suspended`".into(),
            ));
        }
        let user = self.tenant_user(tenant, id).await?;
        let mut tx = self.inner.db.begin().await?;
        let d = tx.dialect();
        users::lock_users(&mut tx).await?;
        let now = ts_value(values::now(), d);
        let this_user = || Expr::col(Alias::new("id")).eq(uuid_value(user.id, d));
        if let Some(n) = &patch.name {
            tx.execute(
                Query::update()
                    .table(self.inner.db.table(USERS))
                    .value(Alias::new("name"), n.as_str())
                    .value(Alias::new("updated_at"), now.clone())
                    .and_where(this_user()),
            )
            .await?;
        }
        // Only a status the patch names is written (a rename never writes back a status read
        // earlier), and never over `invited`: an invitation is accepted, not decreed.
        if let Some(status) = patch.status {
            if status == UserStatus::Suspended {
                roles::keep_an_admin(&mut tx, tenant, user.id).await?;
            }
            let n = tx
                .execute(
                    Query::update()
                        .table(self.inner.db.table(USERS))
                        .value(Alias::new("status"), status.as_str())
                        .value(Alias::new("updated_at"), now)
                        .and_where(this_user())
                        .and_where(
                            Expr::col(Alias::new("status")).ne(UserStatus::Invited.as_str()),
                        ),
                )
                .await?;
            if n == 1 && status == UserStatus::Suspended {
                sessions::revoke_all(&mut tx, user.id).await?;
            }
        }
        tx.commit().await?;
        self.forget(Forget::User(user.id)).await;
        self.get_user(subject, id).await
    }

    /// Deletes a user of the admin's tenant with its sessions, API keys, tokens and roles. The
    /// last active admin cannot be deleted.
    pub async fn delete_user(&self, subject: &Subject, id: &str) -> Result<(), AuthError> {
        let tenant = admin_tenant(subject)?;
        let user = self.tenant_user(tenant, id).await?;
        let mut tx = self.inner.db.begin().await?;
        users::lock_users(&mut tx).await?;
        roles::keep_an_admin(&mut tx, tenant, user.id).await?;
        users::delete(&mut tx, user.id).await?;
        tx.commit().await?;
        self.forget(Forget::User(user.id)).await;
        Ok(())
    }

    /// Replaces a user's local roles (synced roles are the provider's). Every role must exist
    /// in the tenant; the last active admin keeps `admin`. Takes effect on the user's next
    /// request.
    pub async fn set_user_roles(
        &self,
        subject: &Subject,
        id: &str,
        new_roles: &[String],
    ) -> Result<UserInfo, AuthError> {
        let tenant = admin_tenant(subject)?;
        let user = self.tenant_user(tenant, id).await?;
        let mut tx = self.inner.db.begin().await?;
        users::lock_users(&mut tx).await?;
        for r in new_roles {
            roles::check_assignable(&mut tx, tenant, r).await?;
        }
        if !new_roles.iter().any(|r| r == ADMIN) {
            roles::keep_an_admin(&mut tx, tenant, user.id).await?;
        }
        let d = tx.dialect();
        tx.execute(
            Query::delete()
                .from_table(self.inner.db.table(USER_ROLES))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("user_id")).eq(uuid_value(user.id, d))),
        )
        .await?;
        for r in new_roles {
            users::add_role(&mut tx, tenant, user.id, r).await?;
        }
        tx.commit().await?;
        self.forget(Forget::User(user.id)).await;
        self.get_user(subject, id).await
    }

    /// The roles of the admin's tenant: the built-in ones and those it created.
    pub async fn list_roles(&self, subject: &Subject) -> Result<Vec<roles::RoleInfo>, AuthError> {
        let tenant = admin_tenant(subject)?;
        roles::list(&self.inner.db, tenant).await
    }

    /// Creates a role in the admin's tenant.
    pub async fn create_role(
        &self,
        subject: &Subject,
        name: &str,
        description: Option<&str>,
    ) -> Result<roles::RoleInfo, AuthError> {
        let tenant = admin_tenant(subject)?;
        roles::create(&self.inner.db, tenant, name, description).await
    }

    /// Deletes a created role of the admin's tenant and its assignments.
    pub async fn delete_role(&self, subject: &Subject, name: &str) -> Result<(), AuthError> {
        let tenant = admin_tenant(subject)?;
        roles::delete(&self.inner.db, tenant, name).await?;
        // Its holders lose it: whoever they are, forget them all.
        self.forget(Forget::All).await;
        Ok(())
    }
}

/// The limiter key of a client address: IPv4 addresses one by one, IPv6 by /64 (what one host
/// usually has).
fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The limiter key of an account at a client address (`?` when the address is unknown: such
/// attempts share one key per account).
fn account_address_key(account: &str, address: Option<IpAddr>) -> String {
    match address {
        Some(a) => format!("{account}|{}", address_key(a)),
        None => format!("{account}|?"),
    }
}

/// Checks an organization name: 1 to 100 characters after trimming, no control characters.
fn check_org_name(name: &str) -> Result<&str, AuthError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(AuthError::Validation(
            "`organizationName` has 1 to 100 characters".into(),
        ));
    }
    Ok(n)
}

async fn set_password(tx: &mut workeros_store::Tx, id: Uuid, hash: &str) -> Result<(), AuthError> {
    let d = tx.dialect();
    tx.execute(
        Query::update()
            .table(tx.table(USERS))
            .value(Alias::new("password_hash"), hash)
            .value(Alias::new("updated_at"), ts_value(values::now(), d))
            .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, d))),
    )
    .await?;
    Ok(())
}
