//! The [`Realtime`] hub: subscribing (checked like an items read, resumed from the outbox),
//! publishing committed events to the topics, custom broadcasts, the [`Subscription`] a
//! subscriber reads, and following the events of other instances on PostgreSQL.

use super::frame::{
    Broadcast, CREATE, DELETE, Frame, Subscribe, UPDATE, action_bit, is_custom_event_name,
    pattern_matches, pattern_ok,
};
use super::topic::{Ending, Listener, Member, Outlet, Topic};
use crate::EventsError;
use crate::jobs::Workers;
#[cfg(feature = "postgres")]
use crate::jobs::{Job, Stop};
use async_trait::async_trait;
use serde_json::json;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use workeros_core::DEFAULT_TENANT;
use workeros_core::{CoreError, Event, EventAction, EventSink, Subject};
use workeros_store::Store;

/// Realtime settings.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// Frames one subscriber may have waiting; when its queue is full it is cut off.
    pub queue: usize,
    /// How often an idle stream gets a heartbeat comment (proxies close silent connections).
    pub heartbeat: Duration,
    /// The most events a resume (`Last-Event-ID`) replays; a longer gap ends in `reset`.
    pub resume_limit: u64,
    /// The most subscribers one process holds.
    pub max_subscribers: usize,
    /// The most streams one user holds open in this process (tabs, devices).
    pub max_per_user: usize,
    /// The most streams one client address holds open (anonymous subscribers are counted here
    /// only; see [`Subscribe::client`]).
    pub max_per_address: usize,
    /// The most streams one tenant holds open in this process.
    pub max_per_tenant: usize,
    /// The most distinct subscriptions (read access × own filter × event types) one collection
    /// of one tenant holds: each is judged once per event, so this bounds what one write costs.
    /// Subscribers that ask alike share one.
    pub max_groups: usize,
    /// The most filter nodes (comparisons, `and`, `or`, `not`) the distinct subscriptions of one
    /// collection of one tenant hold together: judging one event runs at most this many
    /// comparisons of subscribers' own filters (each filter has at most
    /// [`MAX_NODES`](workeros_dsl::limits::MAX_NODES)).
    pub max_filter_nodes: usize,
    /// The most committed write batches waiting to be judged. Writes never wait for
    /// subscribers: when the queue is full, every stream is ended with a `lagged` error and its
    /// client resumes from the outbox with `Last-Event-ID`.
    pub backlog: usize,
    /// How long one stream stays open. The subject (and its permissions) is the one the stream
    /// opened with; ending streams after this bounds how long a revoked session or a removed
    /// role keeps receiving. `EventSource` reconnects by itself with `Last-Event-ID`, is
    /// authenticated again and resumes without loss.
    pub max_lifetime: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            queue: 1024,
            heartbeat: Duration::from_secs(15),
            resume_limit: 10_000,
            max_subscribers: 100_000,
            max_per_user: 32,
            max_per_address: 256,
            max_per_tenant: 10_000,
            max_groups: 1_000,
            max_filter_nodes: 16_384,
            backlog: 4_096,
            max_lifetime: Duration::from_secs(600),
        }
    }
}

/// The realtime hub. Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct Realtime {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime")
            .field("subscribers", &self.subscribers())
            .finish_non_exhaustive()
    }
}

type TopicKey = (String, String);

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) config: RealtimeConfig,
    topics: Mutex<HashMap<TopicKey, Arc<Mutex<Topic>>>>,
    pub(super) broadcasts: Mutex<HashMap<String, Vec<Listener>>>,
    pub(super) next: AtomicU64,
    pub(super) count: AtomicUsize,
    /// Ids of events already published here (the local sink and another instance's notice
    /// carry the same events): a bounded memory.
    seen: Mutex<Seen>,
    /// Set by [`Realtime::close`]: every subscription ends, new ones are refused.
    closing: tokio::sync::watch::Sender<bool>,
    /// Open streams per user, address and tenant.
    counts: Mutex<Counts>,
    /// The queue of committed batches to the task that judges them (made on first use).
    queue: std::sync::OnceLock<mpsc::Sender<Vec<Event>>>,
    /// Batches put in the queue.
    queued: AtomicU64,
    /// Batches the judging task finished (or dropped after a lag).
    done: tokio::sync::watch::Sender<u64>,
    /// Set when a batch found the queue full: the judging task ends every stream.
    lagged: std::sync::atomic::AtomicBool,
    /// Wakes the judging task after a lag (shared with it, not through the hub, which it holds
    /// only weakly).
    lag: Arc<tokio::sync::Notify>,
}

/// Who holds a stream, for the per-principal caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Principal {
    user: Option<String>,
    addr: Option<std::net::IpAddr>,
    tenant: String,
}

#[derive(Default)]
struct Counts {
    users: HashMap<String, usize>,
    addrs: HashMap<std::net::IpAddr, usize>,
    tenants: HashMap<String, usize>,
}

impl Counts {
    /// Counts `p` in, or says which cap it meets.
    fn admit(&mut self, p: &Principal, c: &RealtimeConfig) -> Result<(), &'static str> {
        if let Some(u) = &p.user
            && self.users.get(u).copied().unwrap_or(0) >= c.max_per_user
        {
            return Err("too many realtime streams for this user: close one, then try again");
        }
        // Signed-in users are capped per user; the address caps anonymous streams (many users
        // can share one address behind a NAT).
        if p.user.is_none()
            && let Some(a) = &p.addr
            && self.addrs.get(a).copied().unwrap_or(0) >= c.max_per_address
        {
            return Err("too many realtime streams from this address: close one, then try again");
        }
        if self.tenants.get(&p.tenant).copied().unwrap_or(0) >= c.max_per_tenant {
            return Err("too many realtime streams in this tenant: try again later");
        }
        if let Some(u) = &p.user {
            *self.users.entry(u.clone()).or_default() += 1;
        }
        if p.user.is_none()
            && let Some(a) = p.addr
        {
            *self.addrs.entry(a).or_default() += 1;
        }
        *self.tenants.entry(p.tenant.clone()).or_default() += 1;
        Ok(())
    }

    fn release(&mut self, p: &Principal) {
        fn down<K: std::hash::Hash + Eq>(m: &mut HashMap<K, usize>, k: &K) {
            if let Some(n) = m.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(k);
                }
            }
        }
        if let Some(u) = &p.user {
            down(&mut self.users, u);
        }
        if p.user.is_none()
            && let Some(a) = &p.addr
        {
            down(&mut self.addrs, a);
        }
        down(&mut self.tenants, &p.tenant);
    }
}

#[derive(Default)]
struct Seen {
    pub(super) set: HashSet<uuid::Uuid>,
    pub(super) order: VecDeque<uuid::Uuid>,
}

impl Seen {
    const CAP: usize = 65_536;

    /// Remembers `id`; false when it was already there.
    pub(super) fn insert(&mut self, id: uuid::Uuid) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::CAP
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// A live subscription: the frames for one subscriber, in order.
pub struct Subscription {
    backlog: VecDeque<Arc<Frame>>,
    pub(super) replayed: HashSet<Arc<str>>,
    pub(super) rx: mpsc::Receiver<Arc<Frame>>,
    pub(super) end: Arc<Ending>,
    pub(super) ended: bool,
    /// Set once the hub closes ([`Realtime::close`]): the subscription ends.
    closing: tokio::sync::watch::Receiver<bool>,
    _guard: Guard,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("backlog", &self.backlog.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next frame; `None` once the subscription ended (after its final `error` frame, when
    /// it was cut off; at once when the hub closed).
    pub async fn next(&mut self) -> Option<Arc<Frame>> {
        if let Some(f) = self.backlog.pop_front() {
            return Some(f);
        }
        if self.ended || self.closed() {
            return None;
        }
        loop {
            let next = if self.end.frame.get().is_some() {
                // Cut off: what is queued, then the final frame.
                self.rx.try_recv().ok()
            } else {
                tokio::select! {
                    f = self.rx.recv() => f,
                    () = self.end.wake.notified() => continue,
                    _ = self.closing.wait_for(|c| *c) => {
                        self.ended = true;
                        return None;
                    }
                }
            };
            match next {
                Some(f) => {
                    // Already replayed from the outbox while the live feed was filling up.
                    if !self.replayed.is_empty()
                        && f.id.as_ref().is_some_and(|i| self.replayed.remove(i))
                    {
                        continue;
                    }
                    return Some(f);
                }
                None => {
                    self.ended = true;
                    return self.end.frame.get().cloned().map(Arc::new);
                }
            }
        }
    }
}

impl Subscription {
    /// Whether the hub closed; marks the subscription ended if so.
    fn closed(&mut self) -> bool {
        if *self.closing.borrow() {
            self.ended = true;
        }
        self.ended
    }

    /// The next frame if one is ready, without waiting.
    pub fn try_next(&mut self) -> Option<Arc<Frame>> {
        if let Some(f) = self.backlog.pop_front() {
            return Some(f);
        }
        if self.ended || self.closed() {
            return None;
        }
        loop {
            match self.rx.try_recv() {
                Ok(f) => {
                    if !self.replayed.is_empty()
                        && f.id.as_ref().is_some_and(|i| self.replayed.remove(i))
                    {
                        continue;
                    }
                    return Some(f);
                }
                Err(mpsc::error::TryRecvError::Empty) => return None,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.ended = true;
                    return self.end.frame.get().cloned().map(Arc::new);
                }
            }
        }
    }
}

/// Takes a subscriber out of the hub when its subscription is dropped.
pub(super) struct Guard {
    pub(super) inner: Weak<Inner>,
    pub(super) sid: u64,
    pub(super) topic: Option<TopicKey>,
    pub(super) tenant: Option<String>,
    pub(super) principal: Option<Principal>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        inner.count.fetch_sub(1, Ordering::Relaxed);
        if let Some(p) = &self.principal
            && let Ok(mut c) = inner.counts.lock()
        {
            c.release(p);
        }
        if let Some(key) = &self.topic {
            let topic = inner.topics.lock().ok().and_then(|t| t.get(key).cloned());
            if let Some(topic) = topic {
                let empty = topic.lock().is_ok_and(|mut t| {
                    t.remove(self.sid);
                    t.members.is_empty()
                });
                if empty && let Ok(mut topics) = inner.topics.lock() {
                    // Still empty under the map's lock: no subscriber joined meanwhile.
                    let still = topics
                        .get(key)
                        .is_some_and(|t| t.lock().is_ok_and(|t| t.members.is_empty()));
                    if still {
                        topics.remove(key);
                    }
                }
            }
        }
        if let Some(tenant) = &self.tenant
            && let Ok(mut b) = inner.broadcasts.lock()
            && let Some(list) = b.get_mut(tenant)
        {
            list.retain(|l| l.sid != self.sid);
            if list.is_empty() {
                b.remove(tenant);
            }
        }
    }
}

impl Realtime {
    /// A hub over `store`. Register it as a sink (`store.add_sink(Arc::new(realtime.clone()))`)
    /// so that committed writes reach it.
    pub fn new(store: Store, config: RealtimeConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                topics: Mutex::new(HashMap::new()),
                broadcasts: Mutex::new(HashMap::new()),
                next: AtomicU64::new(1),
                count: AtomicUsize::new(0),
                seen: Mutex::new(Seen::default()),
                closing: tokio::sync::watch::Sender::new(false),
                counts: Mutex::new(Counts::default()),
                queue: std::sync::OnceLock::new(),
                queued: AtomicU64::new(0),
                done: tokio::sync::watch::Sender::new(0),
                lagged: std::sync::atomic::AtomicBool::new(false),
                lag: Arc::new(tokio::sync::Notify::new()),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &RealtimeConfig {
        &self.inner.config
    }

    /// The store it reads permissions and the outbox from.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// How many subscribers are connected to this process.
    pub fn subscribers(&self) -> usize {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// Closes the hub for a graceful shutdown: every open subscription ends at once (an SSE
    /// stream's response completes, so a server's graceful shutdown is not held by it; clients
    /// reconnect elsewhere with `Last-Event-ID`) and new subscriptions are refused.
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        *self.inner.closing.borrow()
    }

    /// Subscribes `subject`. Fails when the collection does not exist, the subject may not read
    /// it, the filter does not check, or an event type is unknown. With `last_event_id`, the
    /// events committed after it are replayed first (or a `reset` frame says they cannot be).
    pub async fn subscribe(
        &self,
        subject: &Subject,
        req: Subscribe,
    ) -> Result<Subscription, EventsError> {
        let inner = &self.inner;
        let mut actions = 0u8;
        let mut patterns = Vec::new();
        match &req.events {
            None => actions = CREATE | UPDATE | DELETE,
            Some(list) => {
                for e in list.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
                    match EventAction::from_name(e) {
                        Some(a) => actions |= action_bit(a),
                        None if pattern_ok(e) => patterns.push(e.to_owned()),
                        None => {
                            return Err(EventsError::BadRequest(format!(
                                "unknown event type `{e}`: use create, update, delete or a \
                                 custom `namespace:event` (or `namespace:*`)"
                            )));
                        }
                    }
                }
            }
        }
        if req.collection.is_none() && patterns.is_empty() {
            return Err(EventsError::BadRequest(
                "name a `collection`, or custom events in `events`".into(),
            ));
        }
        if actions != 0 && req.collection.is_none() {
            return Err(EventsError::BadRequest(
                "item events need a `collection`".into(),
            ));
        }
        let last = match &req.last_event_id {
            None => None,
            Some(s) if s.trim().is_empty() => None,
            Some(s) => Some(uuid::Uuid::try_parse(s.trim()).map_err(|_| {
                EventsError::BadRequest(format!("`Last-Event-ID` `{s}` is not an event id"))
            })?),
        };
        if *inner.closing.borrow() {
            return Err(EventsError::Overloaded(
                "realtime is shutting down: reconnect in a moment",
            ));
        }
        if inner.count.fetch_add(1, Ordering::Relaxed) >= inner.config.max_subscribers {
            inner.count.fetch_sub(1, Ordering::Relaxed);
            return Err(EventsError::Overloaded(
                "too many realtime subscribers: try again later",
            ));
        }
        let sid = inner.next.fetch_add(1, Ordering::Relaxed);
        let tenant = subject.tenant_id().to_owned();
        let mut guard = Guard {
            inner: Arc::downgrade(inner),
            sid,
            topic: None,
            tenant: None,
            principal: None,
        };
        let principal = Principal {
            user: subject.user.as_ref().map(|u| u.id.clone()),
            addr: req.client,
            tenant: tenant.clone(),
        };
        inner
            .counts
            .lock()
            .map_err(|_| EventsError::internal("a poisoned lock"))?
            .admit(&principal, &inner.config)
            .map_err(EventsError::Overloaded)?;
        guard.principal = Some(principal);
        let (tx, rx) = mpsc::channel(inner.config.queue.max(1));
        let end = Arc::new(Ending::default());
        let out = Outlet {
            tx,
            end: end.clone(),
        };
        let mut backlog = VecDeque::new();
        let mut replayed = HashSet::new();
        if let Some(collection) = &req.collection {
            let rules = inner.store.read_rules(&tenant, collection).await?;
            let key = (tenant.clone(), collection.clone());
            let topic = {
                let mut topics = inner
                    .topics
                    .lock()
                    .map_err(|_| EventsError::internal("a poisoned lock"))?;
                topics
                    .entry(key.clone())
                    .or_insert_with(|| {
                        Arc::new(Mutex::new(Topic::new(
                            rules.serial(),
                            inner.config.max_groups,
                            inner.config.max_filter_nodes,
                        )))
                    })
                    .clone()
            };
            let member = Member {
                subject: subject.clone(),
                filter: req.filter.clone().filter(|f| !f.is_null()),
                actions,
                out: out.clone(),
                gid: 0,
            };
            // Before placing: a refused subscriber's drop takes an emptied topic away.
            guard.topic = Some(key);
            let judge = {
                let mut t = topic
                    .lock()
                    .map_err(|_| EventsError::internal("a poisoned lock"))?;
                if t.serial != rules.serial() {
                    t.rebuild(&rules);
                }
                t.place(sid, member, &rules, time::OffsetDateTime::now_utc())?
            };
            // Live first, then the outbox: an event committed in between is in both, and the
            // live copy is skipped.
            if let Some(last) = last {
                let replay = inner
                    .store
                    .events_after(
                        &tenant,
                        Some(collection),
                        last,
                        inner.config.resume_limit + 1,
                    )
                    .await?;
                match replay {
                    Some(mut events) if (events.len() as u64) <= inner.config.resume_limit => {
                        // Events of an earlier collection of the same slug are not this one's.
                        if let Some(born) = rules.created_at() {
                            events.retain(|e| e.at >= born);
                        }
                        let mut keys: Vec<String> =
                            events.iter().map(|e| e.item_id.clone()).collect();
                        keys.sort_unstable();
                        keys.dedup();
                        let now = inner.store.rows_now(&tenant, collection, &keys).await?;
                        // Every replayed event's id is skipped live, not only the frames' ids:
                        // the resume already shows the item as it is after them.
                        for e in &events {
                            replayed.insert(e.id.to_string().into());
                        }
                        for (_, f) in judge.resume(&events, &now) {
                            backlog.push_back(Arc::new(f));
                        }
                    }
                    _ => backlog.push_back(Arc::new(Frame::control(
                        "reset",
                        "resume_unavailable",
                        "the events after `Last-Event-ID` are no longer available: reload the \
                         collection, then follow this stream",
                    ))),
                }
            }
        }
        if !patterns.is_empty() {
            let mut b = inner
                .broadcasts
                .lock()
                .map_err(|_| EventsError::internal("a poisoned lock"))?;
            b.entry(tenant.clone()).or_default().push(Listener {
                sid,
                user: subject.user.as_ref().map(|u| u.id.clone()),
                subject: subject.clone(),
                patterns,
                out,
            });
            guard.tenant = Some(tenant);
        }
        Ok(Subscription {
            backlog,
            replayed,
            rx,
            end,
            ended: false,
            closing: inner.closing.subscribe(),
            _guard: guard,
        })
    }

    /// Publishes committed events to the subscribers of their collections; returns the frames
    /// queued. An event already published here (by id) is skipped. Judging runs on the blocking
    /// pool (`spawn_blocking`), never on the threads that serve requests: its cost is bounded
    /// ([`RealtimeConfig::max_groups`] judgements per event, each of a checked filter) but
    /// not small.
    pub async fn publish(&self, events: &[Event]) -> usize {
        let inner = &self.inner;
        let mut sent = 0;
        for e in events {
            let fresh = inner.seen.lock().is_ok_and(|mut s| s.insert(e.id));
            if !fresh {
                continue;
            }
            let key = (e.tenant.clone(), e.collection.clone());
            let Some(topic) = inner.topics.lock().ok().and_then(|t| t.get(&key).cloned()) else {
                continue;
            };
            let rules = inner.store.read_rules(&e.tenant, &e.collection).await;
            let e = e.clone();
            let judged = tokio::task::spawn_blocking(move || {
                let Ok(mut t) = topic.lock() else {
                    return 0;
                };
                match rules {
                    Ok(r) => {
                        if r.serial() != t.serial {
                            t.rebuild(&r);
                        }
                    }
                    Err(err) if err.code() == workeros_core::ErrorCode::NotFound => {
                        t.close_all(&Frame::control(
                            "error",
                            "not_found",
                            &format!("collection `{}` is gone", e.collection),
                        ));
                        return 0;
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "realtime: the read rules could not be loaded");
                        return 0;
                    }
                }
                t.dispatch(&e)
            })
            .await;
            sent += judged.unwrap_or(0);
        }
        sent
    }

    /// Sends a custom broadcast to this process's subscribers that asked for it; returns how many
    /// received it. The name must be `namespace:event`.
    pub fn broadcast(&self, b: &Broadcast) -> Result<usize, EventsError> {
        if !is_custom_event_name(&b.name) {
            return Err(EventsError::BadRequest(format!(
                "`{}` is not a custom event name: use `namespace:event` (lowercase)",
                b.name
            )));
        }
        let tenant = b.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
        let frame = Arc::new(Frame {
            id: None,
            event: b.name.as_str().into(),
            data: json!({ "event": b.name, "payload": b.payload })
                .to_string()
                .into(),
        });
        let Ok(mut all) = self.inner.broadcasts.lock() else {
            return Ok(0);
        };
        let Some(list) = all.get_mut(tenant) else {
            return Ok(0);
        };
        let mut sent = 0;
        list.retain(|l| {
            let wanted = l.patterns.iter().any(|p| pattern_matches(p, &b.name))
                && b.user.as_ref().is_none_or(|u| l.user.as_ref() == Some(u))
                && (b.roles.is_empty() || b.roles.iter().any(|r| l.subject.has_role(r)));
            if !wanted {
                return true;
            }
            match l.out.tx.try_send(frame.clone()) {
                Ok(()) => {
                    sent += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    l.out.cut(Frame::control(
                        "error",
                        "slow_consumer",
                        "the stream fell behind and was closed: reconnect to resume",
                    ));
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        Ok(sent)
    }
}

impl Realtime {
    /// Runs what the hub does beside the requests: on PostgreSQL, following the events that
    /// other instances of the app commit. It listens on the namespace's events channel
    /// ([`Names::events_channel`](workeros_store::Names::events_channel): the outbox trigger
    /// announces each committed event's id there), reads those events from the outbox and
    /// publishes them
    /// here (events this process published already are skipped), until [`Workers::shutdown`],
    /// the handle's drop or the hub's; it reconnects after a lost connection (events committed
    /// while it was away reach subscribers that resume with `Last-Event-ID`). On SQLite (one
    /// process) there is nothing to follow: the handle runs no loop.
    pub async fn start(&self) -> Result<Workers, EventsError> {
        #[cfg(feature = "postgres")]
        if let Some(pool) = self.inner.store.db().pg_pool() {
            return self.follow(pool).await;
        }
        Ok(Workers::spawn(Vec::new()))
    }

    /// [`start`](Self::start) on PostgreSQL: the loop that follows `LISTEN`.
    #[cfg(feature = "postgres")]
    async fn follow(&self, pool: &sqlx::PgPool) -> Result<Workers, EventsError> {
        let db = self.inner.store.db();
        let mut listener = sqlx::postgres::PgListener::connect_with(pool)
            .await
            .map_err(EventsError::internal)?;
        listener
            .listen(&db.names().events_channel())
            .await
            .map_err(EventsError::internal)?;
        let weak = Arc::downgrade(&self.inner);
        let follow = move |mut stop: Stop| -> Job<()> {
            Box::pin(async move {
                loop {
                    let received = tokio::select! {
                        r = listener.recv() => r,
                        () = stop.wait() => return,
                    };
                    let first = match received {
                        Ok(n) => n,
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "realtime: the event listener lost its connection");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    let rt = Realtime { inner };
                    // Whatever else has arrived, in one read of the outbox.
                    let mut ids = Vec::new();
                    let mut next = Some(first);
                    while let Some(n) = next.take() {
                        if let Ok(id) = uuid::Uuid::try_parse(n.payload()) {
                            let fresh = rt.inner.seen.lock().is_ok_and(|s| !s.set.contains(&id));
                            if fresh {
                                ids.push(id);
                            }
                        }
                        if ids.len() >= 500 {
                            break;
                        }
                        next = listener.next_buffered();
                    }
                    match rt.inner.store.events_by_id(&ids).await {
                        Ok(events) => {
                            rt.publish(&events).await;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "realtime: announced events could not be read")
                        }
                    }
                }
            })
        };
        Ok(Workers::spawn(vec![Box::new(follow)]))
    }
}

impl Realtime {
    /// Hands committed events to the task that judges them for the subscribers, without
    /// waiting for it (see [`RealtimeConfig::backlog`]): what a write's request does. Call it
    /// within a tokio runtime (the first call starts the task there).
    pub fn enqueue(&self, events: &[Event]) {
        let inner = &self.inner;
        if events.is_empty() {
            return;
        }
        let tx = inner.queue.get_or_init(|| self.spawn_judge());
        inner.queued.fetch_add(1, Ordering::SeqCst);
        if tx.try_send(events.to_vec()).is_err() {
            // Not queued: counted as done at once, and every stream ends so that its client
            // resumes from the outbox.
            inner.done.send_modify(|d| *d += 1);
            inner
                .lagged
                .store(true, std::sync::atomic::Ordering::SeqCst);
            inner.lag.notify_one();
        }
    }

    /// Waits until the events handed over so far ([`enqueue`](Self::enqueue), the sink) are
    /// judged and queued to their subscribers: for tests, and before a graceful shutdown.
    pub async fn settled(&self) {
        let target = self.inner.queued.load(Ordering::SeqCst);
        let mut done = self.inner.done.subscribe();
        let _ = done.wait_for(|d| *d >= target).await;
    }

    /// The task that judges queued batches, in order, one event at a time (yielding between
    /// events, so that it shares the runtime's threads with requests). It holds the hub weakly
    /// and ends with it.
    fn spawn_judge(&self) -> mpsc::Sender<Vec<Event>> {
        let (tx, mut rx) = mpsc::channel::<Vec<Event>>(self.inner.config.backlog.max(1));
        let weak = Arc::downgrade(&self.inner);
        let lag = self.inner.lag.clone();
        tokio::spawn(async move {
            loop {
                let batch = tokio::select! {
                    b = rx.recv() => b,
                    () = lag.notified() => Some(Vec::new()),
                };
                let Some(batch) = batch else { return };
                let Some(inner) = weak.upgrade() else { return };
                let rt = Realtime { inner };
                let lagged = rt
                    .inner
                    .lagged
                    .swap(false, std::sync::atomic::Ordering::SeqCst);
                if lagged {
                    // Some batch was dropped: what is queued goes too, and every stream ends.
                    let mut dropped = u64::from(!batch.is_empty());
                    while rx.try_recv().is_ok() {
                        dropped += 1;
                    }
                    rt.cut_all();
                    rt.inner.done.send_modify(|d| *d += dropped);
                    continue;
                }
                if batch.is_empty() {
                    continue;
                }
                rt.publish(&batch).await;
                rt.inner.done.send_modify(|d| *d += 1);
            }
        });
        tx
    }

    /// Ends every stream of every collection with a `lagged` error (their clients resume).
    fn cut_all(&self) {
        let topics: Vec<_> = self
            .inner
            .topics
            .lock()
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default();
        tracing::warn!("realtime fell behind the writes: every stream is ended to resume");
        let frame = Frame::control(
            "error",
            "lagged",
            "realtime fell behind and closed the stream: reconnect with Last-Event-ID to resume",
        );
        for t in topics {
            if let Ok(mut t) = t.lock() {
                t.close_all(&frame);
            }
        }
    }
}

#[async_trait]
impl EventSink for Realtime {
    /// Queues the events for judging ([`Realtime::enqueue`]): the write does not wait for its
    /// subscribers.
    async fn deliver(&self, events: &[Event]) -> Result<(), CoreError> {
        self.enqueue(events);
        Ok(())
    }
}
