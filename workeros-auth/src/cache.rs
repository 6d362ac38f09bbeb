//! The credential cache: sessions and API keys resolved to their [`Subject`] in memory, so that a
//! request with a credential costs no database round trip once the credential was seen.
//!
//! Entries are keyed by the token's digest (what the database stores; the token itself is kept
//! nowhere), bounded in number ([`AuthConfig::credential_cache_size`]) and in age
//! ([`AuthConfig::credential_cache_ttl`]).
//!
//! Invalidation is exact in this process: every change that could alter or end what a credential
//! resolves to (logout, key revocation, password change or reset, suspension, deletion, role and
//! email changes, role deletion, a role-sync event) forgets the affected entries of every cache
//! over the same [`Db`] in this process (through its [`Notices`](workeros_store::Notices))
//! before it returns, and an entry resolved from the database while such a
//! change happened is not kept (a generation counter taken before the read must be unchanged
//! when the entry is inserted, under the same lock the change takes). Other instances on the same
//! PostgreSQL learn of each change from a notification on the namespace's auth channel
//! ([`Names::auth_channel`](workeros_store::Names::auth_channel)) that the change sends after it
//! commits and that a started [`Auth`] listens to ([`Auth::start`]); whatever a notification
//! does not reach (a listener not started, a dropped connection, a change made in SQL by hand)
//! ends at the entry's age limit. That limit is the bound across instances.
//!
//! What `GET /api/auth/me` answers is kept the same way, under the same invalidation: a user's
//! [`UserInfo`] by user id (forgotten with the user's credentials: every change to a user's
//! name, email, status or roles forgets them) and an organization by id (forgotten with
//! everything).
//!
//! The writes a use makes (a session's sliding expiry, an API key's `last_used_at`, each at most
//! once a minute per credential) leave the request path: they are gathered and written together
//! in one transaction shortly after, and before anything reads them back
//! ([`Auth::list_api_keys`]).
//!
//! [`Auth`]: crate::Auth
//! [`Auth::start`]: crate::Auth::start
//! [`Auth::list_api_keys`]: crate::Auth::list_api_keys
//! [`AuthConfig::credential_cache_size`]: crate::AuthConfig::credential_cache_size
//! [`AuthConfig::credential_cache_ttl`]: crate::AuthConfig::credential_cache_ttl

use crate::AuthError;
use crate::schema::{API_KEYS, SESSIONS};
use crate::users::{OrganizationInfo, UserInfo};
use sea_query::{Alias, Expr, ExprTrait, Query};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;
use workeros_core::Subject;
use workeros_store::Db;
use workeros_store::values::{ts_value, uuid_value};

/// How long gathered writes wait for company before they are written.
const FLUSH_AFTER: Duration = Duration::from_millis(500);

/// What a cached credential is.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A session: its row, its idle expiry as last written or scheduled (unix seconds), and its
    /// absolute expiry.
    Session {
        id: Uuid,
        idle_until: AtomicI64,
        max: OffsetDateTime,
    },
    /// An API key: its row, its expiry, and when its use was last recorded (unix seconds).
    Key {
        id: Uuid,
        expires: Option<OffsetDateTime>,
        last_used: AtomicI64,
    },
}

/// A credential resolved: the subject it acts as, whose user it is, and what it is.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) subject: Subject,
    pub(crate) user: Uuid,
    pub(crate) kind: Kind,
}

/// What a change makes the caches of every instance forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Forget {
    /// Every credential of one user.
    User(Uuid),
    /// One credential, by its token's digest (a logout).
    Token(String),
    /// Everything (a role deleted, a role-sync event, a lost notification).
    All,
}

impl Forget {
    /// The notification's payload.
    fn payload(&self) -> String {
        match self {
            Forget::User(u) => format!("u:{u}"),
            Forget::Token(t) => format!("t:{t}"),
            Forget::All => "*".into(),
        }
    }

    /// A notification's payload read back (anything unknown forgets everything: safe).
    pub(crate) fn parse(payload: &str) -> Self {
        if let Some(u) = payload.strip_prefix("u:")
            && let Ok(u) = Uuid::try_parse(u)
        {
            return Forget::User(u);
        }
        match payload.strip_prefix("t:") {
            Some(t) if !t.is_empty() => Forget::Token(t.to_owned()),
            _ => Forget::All,
        }
    }
}

/// The writes uses have asked for and not yet made.
#[derive(Debug, Default)]
struct Touches {
    /// Session id → its new idle expiry.
    sessions: HashMap<Uuid, OffsetDateTime>,
    /// API key id → when it was used.
    keys: HashMap<Uuid, OffsetDateTime>,
}

impl Touches {
    fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.keys.is_empty()
    }
}

/// The caches one change may have to forget from, under one age limit. `None`: caching is off
/// (a zero age limit); every request reads the database.
#[derive(Clone, Default)]
struct Caches {
    /// Credentials by their token's digest.
    entries: Option<moka::sync::Cache<String, Arc<Entry>>>,
    /// Users as `me` answers them, by id.
    users: Option<moka::sync::Cache<Uuid, Arc<UserInfo>>>,
    /// Organizations by id (`None`: the tenant has none).
    orgs: Option<moka::sync::Cache<String, Arc<Option<OrganizationInfo>>>>,
}

/// The cache and the writes it defers. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Credentials {
    caches: Caches,
    /// The generation: bumped by every invalidation, under the write lock; inserts hold the read
    /// lock and happen only when the generation is the one taken before the database read.
    generation: Arc<RwLock<u64>>,
    touches: Arc<Mutex<Touches>>,
    flushing: Arc<AtomicBool>,
    db: Db,
    /// What the [`Db`]'s notices call (kept alive here; the registry holds it weakly).
    _listener: Option<workeros_store::Listener>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "entries",
                &self
                    .caches
                    .entries
                    .as_ref()
                    .map(moka::sync::Cache::entry_count),
            )
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// A cache of at most `size` credentials, each kept at most `ttl` (zero: no cache).
    pub(crate) fn new(db: Db, size: u64, ttl: Duration) -> Self {
        let on = !ttl.is_zero() && size > 0;
        let caches = Caches {
            entries: on.then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(size)
                    .time_to_live(ttl)
                    .support_invalidation_closures()
                    .build()
            }),
            users: on.then(|| bounded(size, ttl)),
            orgs: on.then(|| bounded(size, ttl)),
        };
        let mut this = Self {
            caches,
            generation: Arc::default(),
            touches: Arc::default(),
            flushing: Arc::default(),
            db,
            _listener: None,
        };
        // Changes made through any handle of this database in this process (another `Auth`, the
        // plain role-sync functions) reach this cache before they return.
        let (caches, generation) = (this.caches.clone(), this.generation.clone());
        let listener: workeros_store::Listener = Arc::new(move |payload: &str| {
            forget_in(&caches, &generation, &Forget::parse(payload));
        });
        this.db.notices().subscribe(TOPIC, &listener);
        this._listener = Some(listener);
        this
    }

    /// The entry of the token with digest `digest`, if cached.
    pub(crate) fn get(&self, digest: &str) -> Option<Arc<Entry>> {
        self.caches.entries.as_ref()?.get(digest)
    }

    /// User `id` as `me` answers it, if cached.
    pub(crate) fn user(&self, id: Uuid) -> Option<Arc<UserInfo>> {
        self.caches.users.as_ref()?.get(&id)
    }

    /// Organization `id`, if cached (`Some(None)`: it has none).
    pub(crate) fn organization(&self, id: &str) -> Option<Arc<Option<OrganizationInfo>>> {
        self.caches.orgs.as_ref()?.get(id)
    }

    /// Keeps `user` (read after `generation` was taken) unless something was forgotten since.
    pub(crate) fn keep_user(&self, id: Uuid, user: UserInfo, generation: u64) {
        if let Some(users) = &self.caches.users {
            self.if_current(generation, || users.insert(id, Arc::new(user)));
        }
    }

    /// Keeps organization `id` (read after `generation` was taken) unless something was
    /// forgotten since.
    pub(crate) fn keep_organization(
        &self,
        id: String,
        org: Option<OrganizationInfo>,
        generation: u64,
    ) {
        if let Some(orgs) = &self.caches.orgs {
            self.if_current(generation, || orgs.insert(id, Arc::new(org)));
        }
    }

    /// Runs `keep` under the generation's read lock if the generation is still `generation`.
    fn if_current(&self, generation: u64, keep: impl FnOnce()) {
        let now = self
            .generation
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if *now == generation {
            keep();
        }
    }

    /// The generation to hand back to [`insert`](Self::insert): take it before reading the
    /// database.
    pub(crate) fn generation(&self) -> u64 {
        *self
            .generation
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `entry` under `digest` unless something was forgotten since `generation` was
    /// taken (the entry may predate that change).
    pub(crate) fn insert(&self, digest: String, entry: Entry, generation: u64) {
        if let Some(entries) = &self.caches.entries {
            self.if_current(generation, || entries.insert(digest, Arc::new(entry)));
        }
    }

    /// Forgets what `what` names in every cache of this process over this database, and tells
    /// the other instances on PostgreSQL (call it after the change committed). A notification
    /// that cannot be sent is logged: the others then forget at the entries' age limit.
    pub(crate) async fn forget(&self, what: Forget) {
        announce_or_log(&self.db, &what).await;
    }

    /// Asks for session `id`'s idle expiry to be written as `until`.
    pub(crate) fn touch_session(&self, id: Uuid, until: OffsetDateTime) {
        self.touch(|t| {
            t.sessions.insert(id, until);
        });
    }

    /// Asks for API key `id`'s use at `at` to be written.
    pub(crate) fn touch_key(&self, id: Uuid, at: OffsetDateTime) {
        self.touch(|t| {
            t.keys.insert(id, at);
        });
    }

    fn touch(&self, f: impl FnOnce(&mut Touches)) {
        f(&mut self.touches.lock().unwrap_or_else(PoisonError::into_inner));
        if !self.flushing.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(FLUSH_AFTER).await;
                    if let Err(e) = this.flush().await {
                        tracing::warn!(error = %e, "auth: recording credential use failed; the next use records it");
                    }
                    this.flushing.store(false, Ordering::Release);
                    let more = !this
                        .touches
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .is_empty();
                    if !more || this.flushing.swap(true, Ordering::AcqRel) {
                        return;
                    }
                }
            });
        }
    }

    /// Writes every deferred use now, in one transaction.
    pub(crate) async fn flush(&self) -> Result<(), AuthError> {
        let touches =
            std::mem::take(&mut *self.touches.lock().unwrap_or_else(PoisonError::into_inner));
        if touches.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        let d = tx.dialect();
        for (id, until) in &touches.sessions {
            // Forward only: another instance may have slid it further.
            tx.execute(
                Query::update()
                    .table(tx.table(SESSIONS))
                    .value(Alias::new("expires_at"), ts_value(*until, d))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(*id, d)))
                    .and_where(Expr::col(Alias::new("expires_at")).lt(ts_value(*until, d))),
            )
            .await?;
        }
        for (id, at) in &touches.keys {
            tx.execute(
                Query::update()
                    .table(tx.table(API_KEYS))
                    .value(Alias::new("last_used_at"), ts_value(*at, d))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(*id, d))),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A cache of at most `size` entries, each kept at most `ttl`.
fn bounded<K, V>(size: u64, ttl: Duration) -> moka::sync::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .max_capacity(size)
        .time_to_live(ttl)
        .build()
}

/// The topic of the [`Db`]'s notices on which credential changes are told.
const TOPIC: &str = "workeros-auth";

/// Forgets what `what` names in `caches`, bumping `generation` under its write lock.
fn forget_in(caches: &Caches, generation: &RwLock<u64>, what: &Forget) {
    let mut g = generation.write().unwrap_or_else(PoisonError::into_inner);
    *g = g.wrapping_add(1);
    if let Some(users) = &caches.users {
        match what {
            Forget::Token(_) => {}
            Forget::User(u) => users.invalidate(u),
            Forget::All => users.invalidate_all(),
        }
    }
    if let (Some(orgs), Forget::All) = (&caches.orgs, what) {
        orgs.invalidate_all();
    }
    let Some(entries) = &caches.entries else {
        return;
    };
    match what {
        Forget::Token(t) => entries.invalidate(t),
        Forget::All => entries.invalidate_all(),
        Forget::User(u) => {
            let u = *u;
            if entries
                .invalidate_entries_if(move |_, e| e.user == u)
                .is_err()
            {
                entries.invalidate_all();
            }
        }
    }
}

/// [`announce`], logging a failure: the others then forget at the entries' age limit.
pub(crate) async fn announce_or_log(db: &Db, what: &Forget) {
    if let Err(e) = announce(db, what).await {
        tracing::warn!(error = %e, "auth: other instances were not told of a credential change; they forget it at the cache's age limit");
    }
}

/// Tells every cache of this process over `db` to forget `what`, at once, and the instances
/// listening on PostgreSQL (nothing more to tell on SQLite).
async fn announce(db: &Db, what: &Forget) -> Result<(), AuthError> {
    db.notices().publish(TOPIC, &what.payload());
    #[cfg(feature = "postgres")]
    if db.pg_pool().is_some() {
        db.fetch_all(
            Query::select().expr(
                sea_query::Func::cust(Alias::new("pg_notify"))
                    .arg(db.names().auth_channel())
                    .arg(what.payload()),
            ),
        )
        .await?;
    }
    #[cfg(not(feature = "postgres"))]
    let _ = (db, what);
    Ok(())
}

/// [`Auth::start`](crate::Auth::start): on PostgreSQL, a loop that forgets what other
/// instances announce; on SQLite, none.
pub(crate) async fn follow(
    creds: &Credentials,
    db: &Db,
) -> Result<workeros_store::workers::Workers, AuthError> {
    use workeros_store::workers::Workers;
    #[cfg(feature = "postgres")]
    if let Some(pool) = db.pg_pool() {
        use workeros_store::workers::Stop;
        let mut listener = sqlx::postgres::PgListener::connect_with(pool)
            .await
            .map_err(AuthError::internal)?;
        listener
            .listen(&db.names().auth_channel())
            .await
            .map_err(AuthError::internal)?;
        let creds = creds.clone();
        let follow = move |mut stop: Stop| -> workeros_store::workers::Task {
            Box::pin(async move {
                loop {
                    let received = tokio::select! {
                        r = listener.recv() => r,
                        () = stop.wait() => return,
                    };
                    match received {
                        Ok(n) => forget_in(
                            &creds.caches,
                            &creds.generation,
                            &Forget::parse(n.payload()),
                        ),
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(e) => {
                            // Whatever was announced meanwhile is lost: forget everything.
                            tracing::warn!(error = %e, "auth: the credential listener lost its connection");
                            forget_in(&creds.caches, &creds.generation, &Forget::All);
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            })
        };
        return Ok(Workers::spawn(vec![Box::new(follow)]));
    }
    let _ = (creds, db);
    Ok(Workers::spawn(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unknown_ones_forget_everything() {
        let u = Uuid::now_v7();
        for f in [Forget::User(u), Forget::Token("abc".into()), Forget::All] {
            assert_eq!(Forget::parse(&f.payload()), f);
        }
        for odd in ["", "u:nope", "t:", "x:1"] {
            assert_eq!(Forget::parse(odd), Forget::All, "{odd}");
        }
    }
}
