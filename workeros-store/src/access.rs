//! Read access judged in memory: which rows of a collection a subject may read, and what of them.
//! Realtime and flows use it to give, for a row they hold, the answer the items API would give.

use crate::items::{Access, ReadView, access_from, client_filter, roles_of};
use crate::permissions::schema_of;
use crate::value::now;
use crate::{Store, StoreError};
use serde_json::{Map, Value as Json};
use std::sync::Arc;
use time::OffsetDateTime;
use workeros_core::{Action, Subject};
use workeros_dsl::{CheckedFilter, Equality};

/// The read rules of one collection as loaded at one moment (see [`Store::read_rules`]): a
/// snapshot, identified by its [`serial`](Self::serial).
#[derive(Debug, Clone)]
pub struct ReadRules {
    view: Arc<ReadView>,
}

/// What grants a [`ReadAccess`]: two accesses with equal keys judge and present every row alike,
/// so one judgement serves both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessKey {
    serial: u64,
    admin: bool,
    /// The indices of the rules that apply (the subject's roles).
    rules: Vec<usize>,
    /// The values (JSON text) of the subject variables those rules read.
    vars: Vec<String>,
}

/// What one subject may read of one collection, bound at one instant: whether it sees a row, and
/// the row as it sees it. Built by [`ReadRules::access`].
#[derive(Debug, Clone)]
pub struct ReadAccess {
    view: Arc<ReadView>,
    subject: Subject,
    access: Access,
    key: AccessKey,
    uses_now: bool,
}

impl Store {
    /// The read rules of collection `slug` of `tenant`: from the cache while fresh (changes
    /// through this store apply at once, another process's within the cache TTL). A collection
    /// that does not exist, or is archived, is `NotFound`.
    pub async fn read_rules(&self, tenant: &str, slug: &str) -> Result<ReadRules, StoreError> {
        Ok(ReadRules {
            view: self.read_view(tenant, slug).await?,
        })
    }

    /// What `subject` may read of `slug` now (`Forbidden` when it may read nothing).
    pub async fn read_access(
        &self,
        subject: &Subject,
        slug: &str,
    ) -> Result<ReadAccess, StoreError> {
        self.read_rules(subject.tenant_id(), slug)
            .await?
            .access(subject, now())
    }
}

impl ReadRules {
    /// Changes when the collection's metadata or read permissions change, and only then.
    pub fn serial(&self) -> u64 {
        self.view.serial
    }

    /// What `subject` may read under these rules at `at` (`Forbidden` when nothing).
    pub fn access(&self, subject: &Subject, at: OffsetDateTime) -> Result<ReadAccess, StoreError> {
        let view = &self.view;
        let access = access_from(subject, &view.rules, &view.info, Action::Read, at)?;
        let admin = matches!(access, Access::All);
        let (rules, vars, uses_now) = if admin {
            (Vec::new(), Vec::new(), false)
        } else {
            let roles = roles_of(subject);
            let mut rules = Vec::new();
            let mut vars = Vec::new();
            let mut uses_now = false;
            for (i, r) in view.rules.iter().enumerate() {
                if !roles.contains(&r.role) {
                    continue;
                }
                rules.push(i);
                if let Some(f) = &r.filter {
                    uses_now |= f.uses_now();
                    vars.extend(
                        f.binding_key(subject)
                            .iter()
                            .map(|v| v.as_ref().map_or_else(String::new, Json::to_string)),
                    );
                }
            }
            (rules, vars, uses_now)
        };
        Ok(ReadAccess {
            view: view.clone(),
            subject: subject.clone(),
            access,
            key: AccessKey {
                serial: view.serial,
                admin,
                rules,
                vars,
            },
            uses_now,
        })
    }
}

impl ReadAccess {
    /// What grants this access (equal keys: equal answers).
    pub fn key(&self) -> &AccessKey {
        &self.key
    }

    /// The subject it is for.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// Whether a permission reads `$now`: the access must be bound again
    /// ([`at`](Self::at)) to judge a row at another instant.
    pub fn uses_now(&self) -> bool {
        self.uses_now
    }

    /// The same access bound at `at`.
    pub fn at(&self, at: OffsetDateTime) -> Result<ReadAccess, StoreError> {
        ReadRules {
            view: self.view.clone(),
        }
        .access(&self.subject, at)
    }

    /// Whether the subject may read `row` (the item in its wire form, as the store records it in
    /// events): some permission's filter is TRUE for it.
    pub fn visible(&self, row: &Map<String, Json>) -> bool {
        self.access.matches_any(row)
    }

    /// `row` as the items API returns it to the subject: fields no matching permission names
    /// are null.
    pub fn present(&self, row: &Map<String, Json>) -> Map<String, Json> {
        self.access.mask(&self.view.cols, row.clone())
    }

    /// Checks a client's filter (text or JSON form) as `GET /api/items` does: it may name only
    /// fields the subject may filter on. An empty filter is `None`.
    pub fn check_filter(&self, filter: &Json) -> Result<Option<CheckedFilter>, StoreError> {
        let readable = |f: &str| self.access.may_filter(f);
        let schema = schema_of(&self.view.info, Some(&readable))?;
        client_filter(&Some(filter.clone()), &schema)
    }

    /// Equalities every row the subject may read satisfies (each permission's filter requires
    /// them): an index of subscribers can be keyed by them. Empty when some permission reads
    /// every row, or the permissions share none.
    pub fn equalities(&self) -> Vec<Equality> {
        let Access::Grants(grants) = &self.access else {
            return Vec::new();
        };
        let mut common: Option<Vec<Equality>> = None;
        for g in grants {
            let Some(f) = &g.filter else {
                return Vec::new();
            };
            let eqs = f.equalities();
            common = Some(match common {
                None => eqs,
                Some(c) => c.into_iter().filter(|e| eqs.contains(e)).collect(),
            });
        }
        common.unwrap_or_default()
    }
}
