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
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        inner.count.fetch_sub(1, Ordering::Relaxed);
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
        };
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
                    .or_insert_with(|| Arc::new(Mutex::new(Topic::new(rules.serial()))))
                    .clone()
            };
            let member = Member {
                subject: subject.clone(),
                filter: req.filter.clone().filter(|f| !f.is_null()),
                actions,
                out: out.clone(),
                gid: 0,
            };
            let judge = {
                let mut t = topic
                    .lock()
                    .map_err(|_| EventsError::internal("a poisoned lock"))?;
                if t.serial != rules.serial() {
                    t.rebuild(&rules);
                }
                t.place(sid, member, &rules, time::OffsetDateTime::now_utc())?
            };
            guard.topic = Some(key);
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
                    Some(events) if (events.len() as u64) <= inner.config.resume_limit => {
                        for e in &events {
                            let id: Arc<str> = e.id.to_string().into();
                            if let Some(f) = judge.judge(e, &id) {
                                replayed.insert(id);
                                backlog.push_back(Arc::new(f));
                            }
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
    /// queued. An event already published here (by id) is skipped.
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
            let Ok(mut t) = topic.lock() else {
                continue;
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
                    continue;
                }
                Err(err) => {
                    tracing::error!(error = %err, "realtime: the read rules could not be loaded");
                    continue;
                }
            }
            sent += t.dispatch(e);
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

#[async_trait]
impl EventSink for Realtime {
    async fn deliver(&self, events: &[Event]) -> Result<(), CoreError> {
        self.publish(events).await;
        Ok(())
    }
}
