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
}

impl Topic {
    pub(super) fn new(serial: u64) -> Self {
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
