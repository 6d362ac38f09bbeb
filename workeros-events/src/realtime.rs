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

use crate::EventsError;
use async_trait::async_trait;
use serde_json::{Map, Value as Json, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use workeros_core::DEFAULT_TENANT;
use workeros_core::{CoreError, Event, EventAction, EventSink, Subject};
use workeros_dsl::{BoundFilter, CheckedFilter, EqKey, Equality, ValueKind};
use workeros_store::{AccessKey, ReadAccess, ReadRules, Store};

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

/// One message to a subscriber (an SSE message): shared by every subscriber that receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The SSE `id`: the event id. Custom broadcasts and control frames have none.
    pub id: Option<Arc<str>>,
    /// The SSE `event`: `create`, `update`, `delete`, a custom event name, `reset` or `error`.
    pub event: Arc<str>,
    /// The SSE `data`: JSON text.
    pub data: Arc<str>,
}

impl Frame {
    fn control(event: &str, code: &str, message: &str) -> Frame {
        Frame {
            id: None,
            event: event.into(),
            data: json!({ "code": code, "message": message })
                .to_string()
                .into(),
        }
    }
}

/// What a subscriber asks for.
#[derive(Debug, Clone, Default)]
pub struct Subscribe {
    /// The collection whose item events it wants (`None`: custom broadcasts only).
    pub collection: Option<String>,
    /// Its own filter on the rows, in the text or JSON form of the DSL (checked like a
    /// `GET /api/items` filter: only fields it may filter on).
    pub filter: Option<Json>,
    /// The event types: `create`, `update`, `delete` and custom event names (`ns:event`, or
    /// `ns:*` for a whole namespace). `None`: the three item events.
    pub events: Option<Vec<String>>,
    /// The last event id it received, to resume after it.
    pub last_event_id: Option<String>,
}

const CREATE: u8 = 1;
const UPDATE: u8 = 2;
const DELETE: u8 = 4;

fn action_bit(a: EventAction) -> u8 {
    match a {
        EventAction::Create => CREATE,
        EventAction::Update => UPDATE,
        EventAction::Delete => DELETE,
    }
}

/// Whether `name` is a custom event name: `namespace:event`, lowercase letters, digits, `_`,
/// `-` and `.`, at most 100 characters.
pub fn is_custom_event_name(name: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
            })
    };
    name.len() <= 100
        && name
            .split_once(':')
            .is_some_and(|(ns, ev)| ok(ns) && ok(ev))
}

/// A custom event pattern: a name, or `ns:*`.
fn pattern_ok(p: &str) -> bool {
    match p.strip_suffix(":*") {
        Some(ns) => is_custom_event_name(&format!("{ns}:x")),
        None => is_custom_event_name(p),
    }
}

fn pattern_matches(p: &str, name: &str) -> bool {
    match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    }
}

/// A custom broadcast: a named event with any JSON payload, to the subscribers of a tenant that
/// asked for it, optionally only to one user or to some roles.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The tenant (`None`: the default tenant).
    pub tenant: Option<String>,
    /// The event name, `namespace:event`.
    pub name: String,
    /// The payload.
    pub payload: Json,
    /// Only this user receives it.
    pub user: Option<String>,
    /// Only subscribers with one of these roles receive it (empty: everyone who asked).
    pub roles: Vec<String>,
}

/// The realtime hub. Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct Realtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime")
            .field("subscribers", &self.subscribers())
            .finish_non_exhaustive()
    }
}

type TopicKey = (String, String);

struct Inner {
    store: Store,
    config: RealtimeConfig,
    topics: Mutex<HashMap<TopicKey, Arc<Mutex<Topic>>>>,
    broadcasts: Mutex<HashMap<String, Vec<Listener>>>,
    next: AtomicU64,
    count: AtomicUsize,
    /// Ids of events already published here (the local sink and another instance's notice
    /// carry the same events): a bounded memory.
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    set: HashSet<uuid::Uuid>,
    order: VecDeque<uuid::Uuid>,
}

impl Seen {
    const CAP: usize = 65_536;

    /// Remembers `id`; false when it was already there.
    fn insert(&mut self, id: uuid::Uuid) -> bool {
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

/// How a subscription ends when it is cut off: the final frame, and a wake-up for its reader.
#[derive(Default)]
struct Ending {
    frame: OnceLock<Frame>,
    wake: tokio::sync::Notify,
}

/// The sending half of one subscriber.
#[derive(Clone)]
struct Outlet {
    tx: mpsc::Sender<Arc<Frame>>,
    end: Arc<Ending>,
}

impl Outlet {
    /// Ends the subscription: its reader gets what is queued, then `frame`, then nothing.
    fn cut(&self, frame: Frame) {
        let _ = self.end.frame.set(frame);
        self.end.wake.notify_one();
    }
}

/// A subscriber to custom broadcasts.
struct Listener {
    sid: u64,
    user: Option<String>,
    subject: Subject,
    patterns: Vec<String>,
    out: Outlet,
}

/// A subscriber to one collection.
struct Member {
    subject: Subject,
    filter: Option<Json>,
    actions: u8,
    out: Outlet,
    gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    access: AccessKey,
    filter: Option<(u64, Vec<String>)>,
    actions: u8,
}

/// How subscribers judge rows: their read access, their own filter (checked and bound), the
/// event types they asked for.
#[derive(Clone)]
struct Judge {
    access: ReadAccess,
    own: Option<(Arc<CheckedFilter>, BoundFilter)>,
    actions: u8,
}

/// Subscribers that judge every row alike.
struct Group {
    key: GroupKey,
    judge: Judge,
    members: Vec<u64>,
    eq: Option<Equality>,
}

impl Judge {
    fn sees(
        access: &ReadAccess,
        own: Option<&BoundFilter>,
        row: Option<&Map<String, Json>>,
    ) -> bool {
        row.is_some_and(|r| access.visible(r) && own.is_none_or(|f| f.matches(r)))
    }

    /// What these subscribers receive of `e`: the action they see it as, and the frame.
    fn judge(&self, e: &Event, id: &Arc<str>) -> Option<Frame> {
        let rebound;
        let uses_now =
            self.access.uses_now() || self.own.as_ref().is_some_and(|(c, _)| c.uses_now());
        let (access, own) = if uses_now {
            let at = time::OffsetDateTime::now_utc();
            let a = self.access.at(at).ok()?;
            let o = self
                .own
                .as_ref()
                .map(|(c, _)| c.bind(self.access.subject(), at));
            rebound = (a, o);
            (&rebound.0, rebound.1.as_ref())
        } else {
            (&self.access, self.own.as_ref().map(|(_, b)| b))
        };
        let before = Judge::sees(access, own, e.previous.as_ref().and_then(Json::as_object));
        let after = Judge::sees(access, own, e.data.as_ref().and_then(Json::as_object));
        let seen_as = match (e.action, before, after) {
            (EventAction::Create, _, true) | (EventAction::Update, false, true) => {
                EventAction::Create
            }
            (EventAction::Update, true, true) => EventAction::Update,
            (EventAction::Update, true, false) | (EventAction::Delete, true, _) => {
                EventAction::Delete
            }
            _ => return None,
        };
        if self.actions & action_bit(seen_as) == 0 {
            return None;
        }
        let name = seen_as.as_str();
        let body = match (seen_as, e.data.as_ref().and_then(Json::as_object)) {
            (EventAction::Delete, _) | (_, None) => json!({
                "collection": e.collection,
                "action": name,
                "key": e.item_id,
            }),
            (_, Some(row)) => json!({
                "collection": e.collection,
                "action": name,
                "key": e.item_id,
                "data": access.present(row),
            }),
        };
        Some(Frame {
            id: Some(id.clone()),
            event: name.into(),
            data: body.to_string().into(),
        })
    }
}

type FieldIndex = HashMap<(Arc<str>, ValueKind), HashMap<EqKey, Vec<u64>>>;

/// The subscribers of one collection of one tenant.
struct Topic {
    serial: u64,
    members: HashMap<u64, Member>,
    groups: HashMap<u64, Group>,
    by_key: HashMap<GroupKey, u64>,
    index: FieldIndex,
    scan: Vec<u64>,
    /// Checked own filters by their text, so that equal filters share one id (and a group).
    filters: HashMap<String, Arc<CheckedFilter>>,
    next_gid: u64,
}

impl Topic {
    fn new(serial: u64) -> Self {
        Self {
            serial,
            members: HashMap::new(),
            groups: HashMap::new(),
            by_key: HashMap::new(),
            index: HashMap::new(),
            scan: Vec::new(),
            filters: HashMap::new(),
            next_gid: 1,
        }
    }

    /// Judges a subscriber under `rules` and puts it in its group (made if new); returns how the
    /// group judges rows.
    fn place(
        &mut self,
        sid: u64,
        mut m: Member,
        rules: &ReadRules,
        at: time::OffsetDateTime,
    ) -> Result<Judge, EventsError> {
        let access = rules.access(&m.subject, at)?;
        let own = match &m.filter {
            None => None,
            Some(f) => match access.check_filter(f)? {
                None => None,
                Some(checked) => {
                    if self.filters.len() >= 10_000 {
                        self.filters.clear();
                    }
                    let shared = self
                        .filters
                        .entry(f.to_string())
                        .or_insert_with(|| Arc::new(checked))
                        .clone();
                    let bound = shared.bind(&m.subject, at);
                    Some((shared, bound))
                }
            },
        };
        let key = GroupKey {
            access: access.key().clone(),
            filter: own.as_ref().map(|(c, _)| {
                (
                    c.id(),
                    c.binding_key(&m.subject)
                        .iter()
                        .map(|v| v.as_ref().map_or_else(String::new, Json::to_string))
                        .collect(),
                )
            }),
            actions: m.actions,
        };
        let gid = match self.by_key.get(&key) {
            Some(g) => *g,
            None => {
                let gid = self.next_gid;
                self.next_gid += 1;
                let eq = own
                    .as_ref()
                    .and_then(|(_, b)| b.equalities().into_iter().next())
                    .or_else(|| access.equalities().into_iter().next());
                match &eq {
                    Some(e) => self
                        .index
                        .entry((e.key.clone(), e.kind))
                        .or_default()
                        .entry(e.value.clone())
                        .or_default()
                        .push(gid),
                    None => self.scan.push(gid),
                }
                self.by_key.insert(key.clone(), gid);
                self.groups.insert(
                    gid,
                    Group {
                        key,
                        judge: Judge {
                            access,
                            own,
                            actions: m.actions,
                        },
                        members: Vec::new(),
                        eq,
                    },
                );
                gid
            }
        };
        let g = self
            .groups
            .get_mut(&gid)
            .ok_or_else(|| EventsError::internal("a group left its topic"))?;
        g.members.push(sid);
        let judge = g.judge.clone();
        m.gid = gid;
        self.members.insert(sid, m);
        Ok(judge)
    }

    /// Takes a subscriber out (its group goes when it was the last).
    fn remove(&mut self, sid: u64) -> Option<Member> {
        let m = self.members.remove(&sid)?;
        let empty = match self.groups.get_mut(&m.gid) {
            Some(g) => {
                g.members.retain(|s| *s != sid);
                g.members.is_empty()
            }
            None => false,
        };
        if empty && let Some(g) = self.groups.remove(&m.gid) {
            self.by_key.remove(&g.key);
            match &g.eq {
                Some(e) => {
                    if let Some(values) = self.index.get_mut(&(e.key.clone(), e.kind)) {
                        if let Some(list) = values.get_mut(&e.value) {
                            list.retain(|x| *x != m.gid);
                            if list.is_empty() {
                                values.remove(&e.value);
                            }
                        }
                        if values.is_empty() {
                            self.index.remove(&(e.key.clone(), e.kind));
                        }
                    }
                }
                None => self.scan.retain(|x| *x != m.gid),
            }
        }
        Some(m)
    }

    /// The collection's rules changed: every subscriber is judged again (one that may no longer
    /// read the collection, or whose filter no longer checks, is cut off).
    fn rebuild(&mut self, rules: &ReadRules) {
        let at = time::OffsetDateTime::now_utc();
        let members: Vec<(u64, Member)> = self.members.drain().collect();
        self.groups.clear();
        self.by_key.clear();
        self.index.clear();
        self.scan.clear();
        self.filters.clear();
        self.serial = rules.serial();
        for (sid, m) in members {
            let out = m.out.clone();
            if let Err(e) = self.place(sid, m, rules, at) {
                out.cut(Frame::control("error", e.code().as_str(), &e.to_string()));
            }
        }
    }

    /// Cuts every subscriber off with `frame` (the collection is gone).
    fn close_all(&mut self, frame: &Frame) {
        for (_, m) in self.members.drain() {
            m.out.cut(frame.clone());
        }
        self.groups.clear();
        self.by_key.clear();
        self.index.clear();
        self.scan.clear();
    }

    /// The groups that can see `e`: unindexed ones, and indexed ones whose value the row (before
    /// or after) has.
    fn candidates(&self, e: &Event) -> Vec<u64> {
        let mut out = self.scan.clone();
        let rows = [
            e.data.as_ref().and_then(Json::as_object),
            e.previous.as_ref().and_then(Json::as_object),
        ];
        for ((field, kind), values) in &self.index {
            for row in rows.iter().flatten() {
                if let Some(k) = row.get(&**field).and_then(|v| EqKey::of(*kind, v))
                    && let Some(gids) = values.get(&k)
                {
                    out.extend_from_slice(gids);
                }
            }
        }
        if !self.index.is_empty() {
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    /// Sends `e` to every subscriber that may see it; returns the frames queued.
    fn dispatch(&mut self, e: &Event) -> usize {
        let id: Arc<str> = e.id.to_string().into();
        let mut sent = 0;
        let mut slow = Vec::new();
        let mut gone = Vec::new();
        for gid in self.candidates(e) {
            let Some(g) = self.groups.get(&gid) else {
                continue;
            };
            let Some(frame) = g.judge.judge(e, &id) else {
                continue;
            };
            let frame = Arc::new(frame);
            for sid in &g.members {
                let Some(m) = self.members.get(sid) else {
                    continue;
                };
                match m.out.tx.try_send(frame.clone()) {
                    Ok(()) => sent += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => slow.push(*sid),
                    Err(mpsc::error::TrySendError::Closed(_)) => gone.push(*sid),
                }
            }
        }
        for sid in slow {
            if let Some(m) = self.remove(sid) {
                m.out.cut(Frame::control(
                    "error",
                    "slow_consumer",
                    "the stream fell behind and was closed: reconnect with Last-Event-ID to resume",
                ));
            }
        }
        for sid in gone {
            self.remove(sid);
        }
        sent
    }
}

/// A live subscription: the frames for one subscriber, in order.
pub struct Subscription {
    backlog: VecDeque<Arc<Frame>>,
    replayed: HashSet<Arc<str>>,
    rx: mpsc::Receiver<Arc<Frame>>,
    end: Arc<Ending>,
    ended: bool,
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
    /// it was cut off).
    pub async fn next(&mut self) -> Option<Arc<Frame>> {
        if let Some(f) = self.backlog.pop_front() {
            return Some(f);
        }
        if self.ended {
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
    /// The next frame if one is ready, without waiting.
    pub fn try_next(&mut self) -> Option<Arc<Frame>> {
        if let Some(f) = self.backlog.pop_front() {
            return Some(f);
        }
        if self.ended {
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
struct Guard {
    inner: Weak<Inner>,
    sid: u64,
    topic: Option<TopicKey>,
    tenant: Option<String>,
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
    /// On PostgreSQL, follows the events that other instances of the app commit: listens on
    /// [`EVENTS_CHANNEL`](workeros_store::migrate::EVENTS_CHANNEL) (the outbox trigger announces
    /// each committed event's id there), reads those events from the outbox and publishes them
    /// here (events this process published already are skipped). Runs until the hub is dropped;
    /// reconnects after a lost connection (events committed while it was away reach subscribers
    /// that resume with `Last-Event-ID`). On SQLite (one process) there is nothing to follow and
    /// it returns `None`.
    pub async fn follow_other_instances(
        &self,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, EventsError> {
        let workeros_store::Db::Postgres(pool) = self.inner.store.db() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool)
            .await
            .map_err(EventsError::internal)?;
        listener
            .listen(workeros_store::migrate::EVENTS_CHANNEL)
            .await
            .map_err(EventsError::internal)?;
        let weak = Arc::downgrade(&self.inner);
        Ok(Some(tokio::spawn(async move {
            loop {
                let first = match listener.recv().await {
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
        })))
    }
}

#[async_trait]
impl EventSink for Realtime {
    async fn deliver(&self, events: &[Event]) -> Result<(), CoreError> {
        self.publish(events).await;
        Ok(())
    }
}
