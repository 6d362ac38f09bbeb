//! The subscribers of one collection of one tenant: their outlets, groups of subscribers that
//! judge alike (one [`Judge`] and one frame per event each), the equality index that picks the
//! groups an event can reach, and the re-judging when the read rules change.

use super::frame::{Frame, action_bit};
use crate::EventsError;
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use workeros_core::{Event, EventAction, Subject};
use workeros_dsl::{BoundFilter, CheckedFilter, EqKey, Equality, ValueKind};
use workeros_store::{AccessKey, ReadAccess, ReadRules};

/// How a subscription ends when it is cut off: the final frame, and a wake-up for its reader.
#[derive(Default)]
pub(super) struct Ending {
    pub(super) frame: OnceLock<Frame>,
    pub(super) wake: tokio::sync::Notify,
}

/// The sending half of one subscriber.
#[derive(Clone)]
pub(super) struct Outlet {
    pub(super) tx: mpsc::Sender<Arc<Frame>>,
    pub(super) end: Arc<Ending>,
}

impl Outlet {
    /// Ends the subscription: its reader gets what is queued, then `frame`, then nothing.
    pub(super) fn cut(&self, frame: Frame) {
        let _ = self.end.frame.set(frame);
        self.end.wake.notify_one();
    }
}

/// A subscriber to custom broadcasts.
pub(super) struct Listener {
    pub(super) sid: u64,
    pub(super) user: Option<String>,
    pub(super) subject: Subject,
    pub(super) patterns: Vec<String>,
    pub(super) out: Outlet,
}

/// A subscriber to one collection.
pub(super) struct Member {
    pub(super) subject: Subject,
    pub(super) filter: Option<Json>,
    pub(super) actions: u8,
    pub(super) out: Outlet,
    pub(super) gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct GroupKey {
    pub(super) access: AccessKey,
    pub(super) filter: Option<(u64, Vec<String>)>,
    pub(super) actions: u8,
}

/// How subscribers judge rows: their read access, their own filter (checked and bound), the
/// event types they asked for.
#[derive(Clone)]
pub(super) struct Judge {
    pub(super) access: ReadAccess,
    pub(super) own: Option<(Arc<CheckedFilter>, BoundFilter)>,
    pub(super) actions: u8,
}

/// Subscribers that judge every row alike.
pub(super) struct Group {
    pub(super) key: GroupKey,
    pub(super) judge: Judge,
    pub(super) members: Vec<u64>,
    pub(super) eq: Option<Equality>,
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
    pub(super) fn judge(&self, e: &Event, id: &Arc<str>) -> Option<Frame> {
        self.with_bound(|access, own| self.judge_as(access, own, e, id))
            .flatten()
    }

    /// Runs `f` with the access and own filter bound now: the bound ones, or (when either uses
    /// `$now`) both bound again; `None` when they no longer bind.
    fn with_bound<R>(&self, f: impl FnOnce(&ReadAccess, Option<&BoundFilter>) -> R) -> Option<R> {
        let uses_now =
            self.access.uses_now() || self.own.as_ref().is_some_and(|(c, _)| c.uses_now());
        if !uses_now {
            return Some(f(&self.access, self.own.as_ref().map(|(_, b)| b)));
        }
        let at = time::OffsetDateTime::now_utc();
        let access = self.access.at(at).ok()?;
        let own = self
            .own
            .as_ref()
            .map(|(c, _)| c.bind(self.access.subject(), at));
        Some(f(&access, own.as_ref()))
    }

    fn judge_as(
        &self,
        access: &ReadAccess,
        own: Option<&BoundFilter>,
        e: &Event,
        id: &Arc<str>,
    ) -> Option<Frame> {
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

impl Judge {
    /// The frames of a resume: one per item the `events` touched, in the order of each item's
    /// last event (whose id the frame carries), showing the item as it is `now` (rows by key),
    /// never as the events recorded it: what the items API would answer now, nothing it would
    /// not (a value since overwritten, a field since dropped, a row since deleted). An item the
    /// subscriber sees now is `create` when it did not see it before the first event (`update`
    /// otherwise); one it no longer sees is `delete` when it saw it at some point of the events.
    pub(super) fn resume(
        &self,
        events: &[Event],
        now: &HashMap<String, Map<String, Json>>,
    ) -> Vec<(Arc<str>, Frame)> {
        self.with_bound(|access, own| self.resume_as(access, own, events, now))
            .unwrap_or_default()
    }

    fn resume_as(
        &self,
        access: &ReadAccess,
        own: Option<&BoundFilter>,
        events: &[Event],
        now: &HashMap<String, Map<String, Json>>,
    ) -> Vec<(Arc<str>, Frame)> {
        // Per item: whether it was seen before the first event, whether any event showed it,
        // and the index of its last event.
        let mut items: HashMap<&str, (bool, bool, usize)> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let row = |v: &Option<Json>| v.as_ref().and_then(Json::as_object).cloned();
            let shown = Judge::sees(access, own, row(&e.data).as_ref())
                || Judge::sees(access, own, row(&e.previous).as_ref());
            items
                .entry(e.item_id.as_str())
                .and_modify(|(_, any, last)| {
                    *any |= shown;
                    *last = i;
                })
                .or_insert_with(|| {
                    let before = e.action != EventAction::Create
                        && Judge::sees(access, own, row(&e.previous).as_ref());
                    (before, shown || before, i)
                });
        }
        let mut order: Vec<(&str, (bool, bool, usize))> = items.into_iter().collect();
        order.sort_unstable_by_key(|(_, (_, _, last))| *last);
        let mut out = Vec::with_capacity(order.len());
        for (key, (before, any, last)) in order {
            let Some(e) = events.get(last) else { continue };
            let current = now.get(key).filter(|r| Judge::sees(access, own, Some(r)));
            let (action, data) = match current {
                Some(row) if before => (EventAction::Update, Some(access.present(row))),
                Some(row) => (EventAction::Create, Some(access.present(row))),
                None if any => (EventAction::Delete, None),
                None => continue,
            };
            if self.actions & action_bit(action) == 0 {
                continue;
            }
            let name = action.as_str();
            let body = match data {
                Some(d) => {
                    json!({"collection": e.collection, "action": name, "key": key, "data": d})
                }
                None => json!({"collection": e.collection, "action": name, "key": key}),
            };
            let id: Arc<str> = e.id.to_string().into();
            out.push((
                id.clone(),
                Frame {
                    id: Some(id),
                    event: name.into(),
                    data: body.to_string().into(),
                },
            ));
        }
        out
    }
}

type FieldIndex = HashMap<(Arc<str>, ValueKind), HashMap<EqKey, Vec<u64>>>;

/// The subscribers of one collection of one tenant.
pub(super) struct Topic {
    pub(super) serial: u64,
    pub(super) members: HashMap<u64, Member>,
    pub(super) groups: HashMap<u64, Group>,
    by_key: HashMap<GroupKey, u64>,
    pub(super) index: FieldIndex,
    scan: Vec<u64>,
    /// Checked own filters by their text, so that equal filters share one id (and a group).
    pub(super) filters: HashMap<String, Arc<CheckedFilter>>,
    next_gid: u64,
    /// The most groups (distinct judging) it holds: what one event can cost.
    max_groups: usize,
    /// The nodes of the groups' own filters, together.
    nodes: usize,
    /// The most of them: what judging one event can cost, in comparisons.
    max_nodes: usize,
}

impl Topic {
    pub(super) fn new(serial: u64, max_groups: usize, max_nodes: usize) -> Self {
        Self {
            max_groups,
            nodes: 0,
            max_nodes,
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
    pub(super) fn place(
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
            None if self.groups.len() >= self.max_groups => {
                return Err(EventsError::Overloaded(
                    "too many distinct realtime subscriptions on this collection: subscribe \
                     with a filter others use (or none), or try again later",
                ));
            }
            None if self.nodes + own.as_ref().map_or(0, |(c, _)| c.node_count())
                > self.max_nodes =>
            {
                return Err(EventsError::Overloaded(
                    "the realtime filters on this collection are as large as allowed: \
                     subscribe with a smaller filter, one others use, or none",
                ));
            }
            None => {
                self.nodes += own.as_ref().map_or(0, |(c, _)| c.node_count());
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
    pub(super) fn remove(&mut self, sid: u64) -> Option<Member> {
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
            let n = g.judge.own.as_ref().map_or(0, |(c, _)| c.node_count());
            self.nodes = self.nodes.saturating_sub(n);
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
    pub(super) fn rebuild(&mut self, rules: &ReadRules) {
        let at = time::OffsetDateTime::now_utc();
        let members: Vec<(u64, Member)> = self.members.drain().collect();
        self.groups.clear();
        self.by_key.clear();
        self.index.clear();
        self.scan.clear();
        self.filters.clear();
        self.nodes = 0;
        self.serial = rules.serial();
        for (sid, m) in members {
            let out = m.out.clone();
            if let Err(e) = self.place(sid, m, rules, at) {
                out.cut(Frame::control("error", e.code().as_str(), &e.to_string()));
            }
        }
    }

    /// Cuts every subscriber off with `frame` (the collection is gone).
    pub(super) fn close_all(&mut self, frame: &Frame) {
        for (_, m) in self.members.drain() {
            m.out.cut(frame.clone());
        }
        self.nodes = 0;
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
    pub(super) fn dispatch(&mut self, e: &Event) -> usize {
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
