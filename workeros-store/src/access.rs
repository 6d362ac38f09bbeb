//! The permission pipeline: a collection's permission rows parsed into rules, bound to a subject
//! as grants ([`Access`]), the SQL condition of reads, masking, the client filter checked
//! against what the subject may read; and its public face for rows held in memory,
//! [`ReadRules`] and [`ReadAccess`], with which realtime and flows give the answer the items API
//! would give.

use crate::catalog::CollectionInfo;
use crate::columns::{Col, schema_of};
use crate::names::Names;
use crate::permissions::{FieldList, fields_and_presets};
use crate::schema::PERMISSIONS;
use crate::value::RowRef;
use crate::{StoreError, Tx};
use sea_query::{Alias, Expr, ExprTrait, Order, Query, SimpleExpr};
use serde_json::{Map, Value as Json};
use std::sync::Arc;
use time::OffsetDateTime;
use workeros_core::{Action, Subject, roles};
use workeros_dsl::{BoundFilter, CheckedFilter, Dialect, Equality, Schema, Tri};

/// The read rules of one collection as loaded at one moment (see [`Store::read_rules`]): a
/// snapshot, identified by its [`serial`](Self::serial).
#[derive(Debug, Clone)]
pub struct ReadRules {
    pub(crate) view: Arc<ReadView>,
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

impl ReadRules {
    /// Changes when the collection's metadata or read permissions change, and only then.
    pub fn serial(&self) -> u64 {
        self.view.serial
    }

    /// When the collection was created (`None` if its recorded time does not parse): events
    /// older than this belong to an earlier collection of the same slug.
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(
            &self.view.info.created_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
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
    /// Only the collection's fields of now are kept: a value recorded under a field since
    /// dropped (an event's data, a resumed stream) is not shown.
    pub fn present(&self, row: &Map<String, Json>) -> Map<String, Json> {
        let cols = &self.view.cols;
        let current: Map<String, Json> = cols
            .iter()
            .filter_map(|c| row.get(&c.key).map(|v| (c.key.clone(), v.clone())))
            .collect();
        self.access.mask(cols, current)
    }

    /// Checks a client's filter (text or JSON form) as `GET /api/items` does: it may name only
    /// fields the subject may filter on. An empty filter is `None`.
    pub fn check_filter(&self, filter: &Json) -> Result<Option<CheckedFilter>, StoreError> {
        let readable = |f: &str| self.access.may_filter(f);
        let schema = schema_of(&self.view.info, &self.view.names, Some(&readable))?;
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

/// What requests on one collection need, loaded once and shared: the metadata, the columns, the
/// read rules and the rules of the writes (see [`Store::read_view`]).
#[derive(Debug)]
pub(crate) struct ReadView {
    pub(crate) info: CollectionInfo,
    /// The names of the store's database (the owner lookup of an adopted collection is in
    /// workeros's namespace).
    pub(crate) names: Names,
    pub(crate) cols: Vec<Col>,
    pub(crate) rules: Vec<Rule>,
    /// The create, update and delete rules, in that order.
    pub(crate) writes: [Vec<Rule>; 3],
    pub(crate) loaded: std::time::Instant,
    /// Process-unique: a new view (after a change, or the cache TTL) has a new serial.
    pub(crate) serial: u64,
}

/// One permission as a request uses it: the bound filter (`None`: every row) and the fields.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) filter: Option<BoundFilter>,
    pub(crate) fields: FieldList,
    pub(crate) validation: Option<BoundFilter>,
    pub(crate) presets: Option<Map<String, Json>>,
}

impl Grant {
    /// Whether the permission's filter is TRUE for a row in its wire form.
    pub(crate) fn matches(&self, row: &Map<String, Json>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(row))
    }
}

/// What the subject may do with one action on one collection.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// An admin: every row, every field.
    All,
    /// The grants of the subject's roles (never empty).
    Grants(Vec<Grant>),
}

/// The roles a subject's permissions are looked up by.
pub(crate) fn roles_of(subject: &Subject) -> Vec<String> {
    match &subject.user {
        None => vec![roles::PUBLIC.into()],
        Some(u) => {
            let mut r = u.roles.clone();
            r.push(roles::AUTHENTICATED.into());
            r
        }
    }
}

/// One permission row, parsed and checked once (it does not depend on the subject).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) role: String,
    pub(crate) filter: Option<CheckedFilter>,
    validation: Option<CheckedFilter>,
    fields: FieldList,
    presets: Option<Map<String, Json>>,
    /// The row it was read from, as text: equal sources, equal rules.
    pub(crate) source: String,
}

/// The permission rows of `action` on a collection, for every role, parsed. A rule that no longer
/// checks against the collection (a field it names was dropped) grants nothing.
pub(crate) async fn load_rules(
    tx: &mut Tx,
    tenant: &str,
    info: &CollectionInfo,
    action: Action,
) -> Result<Vec<Rule>, StoreError> {
    let [rules] = load_rules_of(tx, tenant, info, [action]).await?;
    Ok(rules)
}

/// The rules of several actions at once, in one query (a write needs its own action's and the
/// read rules).
pub(crate) async fn load_rules_of<const N: usize>(
    tx: &mut Tx,
    tenant: &str,
    info: &CollectionInfo,
    actions: [Action; N],
) -> Result<[Vec<Rule>; N], StoreError> {
    let rows = tx
        .fetch_all(
            Query::select()
                .columns(
                    [
                        "id",
                        "action",
                        "role",
                        "filter",
                        "fields",
                        "validation",
                        "presets",
                    ]
                    .map(Alias::new),
                )
                .from(tx.table(PERMISSIONS))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("collection")).eq(info.slug.as_str()))
                .and_where(Expr::col(Alias::new("action")).is_in(actions.map(|a| a.as_str())))
                .order_by(Alias::new("id"), Order::Asc),
        )
        .await?;
    let schema = schema_of(info, tx.names(), None)?;
    let mut out: [Vec<Rule>; N] = std::array::from_fn(|_| Vec::new());
    for r in rows.iter() {
        let action = r.text("action")?.unwrap_or_default();
        let Some(slot) = actions.iter().position(|a| a.as_str() == action) else {
            continue;
        };
        match rule_of(r, &schema) {
            Ok(rule) => {
                if let Some(rules) = out.get_mut(slot) {
                    rules.push(rule);
                }
            }
            Err(e) => tracing::warn!(
                collection = info.slug.as_str(),
                error = %e,
                "a permission no longer checks against its collection; it grants nothing"
            ),
        }
    }
    Ok(out)
}

fn rule_of(r: RowRef<'_>, schema: &Schema) -> Result<Rule, StoreError> {
    let check = |v: Option<Json>| -> Result<Option<CheckedFilter>, StoreError> {
        v.map(|v| workeros_dsl::check_json(&v, schema).map_err(StoreError::from))
            .transpose()
    };
    let (fields, presets) = fields_and_presets(r)?;
    let role = r.text("role")?.unwrap_or_default();
    let (filter, validation) = (r.json("filter")?, r.json("validation")?);
    let source = format!(
        "{:?}",
        (
            r.uuid_text("id")?,
            &role,
            &filter,
            &validation,
            &fields,
            &presets
        )
    );
    Ok(Rule {
        role,
        filter: check(filter)?,
        validation: check(validation)?,
        fields,
        presets,
        source,
    })
}

/// The subject's access from a collection's rules: admin all; else the rules of its roles, bound
/// to it (none: 403).
pub(crate) fn access_from(
    subject: &Subject,
    rules: &[Rule],
    info: &CollectionInfo,
    action: Action,
    at: OffsetDateTime,
) -> Result<Access, StoreError> {
    if subject.is_admin() {
        return Ok(Access::All);
    }
    let roles = roles_of(subject);
    let grants: Vec<Grant> = rules
        .iter()
        .filter(|r| roles.contains(&r.role))
        .map(|r| Grant {
            filter: r.filter.as_ref().map(|c| c.bind(subject, at)),
            fields: r.fields.clone(),
            validation: r.validation.as_ref().map(|c| c.bind(subject, at)),
            presets: r.presets.clone(),
        })
        .collect();
    if grants.is_empty() {
        return Err(StoreError::Forbidden(format!(
            "you may not {} items of `{}`",
            action.as_str(),
            info.slug.as_str()
        )));
    }
    Ok(Access::Grants(grants))
}

impl ReadView {
    /// The rules of `action`.
    pub(crate) fn rules_of(&self, action: Action) -> &[Rule] {
        let [create, update, delete] = &self.writes;
        match action {
            Action::Read => &self.rules,
            Action::Create => create,
            Action::Update => update,
            Action::Delete => delete,
        }
    }
}

/// Loads the subject's permissions for `action` in a transaction (none at all: 403).
pub(crate) async fn access(
    tx: &mut Tx,
    subject: &Subject,
    info: &CollectionInfo,
    action: Action,
    at: OffsetDateTime,
) -> Result<Access, StoreError> {
    if subject.is_admin() {
        return Ok(Access::All);
    }
    let rules = load_rules(tx, subject.tenant_id(), info, action).await?;
    access_from(subject, &rules, info, action, at)
}

/// What a write may do, from the collection's view: its `action`'s access (kept as a result, so
/// the caller decides which refusal comes first) and the read access (`None` when the subject
/// may read nothing).
pub(crate) fn write_and_read_access(
    subject: &Subject,
    view: &ReadView,
    action: Action,
    at: OffsetDateTime,
) -> Result<(Result<Access, StoreError>, Option<Access>), StoreError> {
    if subject.is_admin() {
        return Ok((Ok(Access::All), Some(Access::All)));
    }
    let info = &view.info;
    let read = match access_from(subject, &view.rules, info, Action::Read, at) {
        Ok(a) => Some(a),
        Err(StoreError::Forbidden(_)) => None,
        Err(e) => return Err(e),
    };
    Ok((
        access_from(subject, view.rules_of(action), info, action, at),
        read,
    ))
}

impl Access {
    /// Whether a user field may be read in some row (some grant names it): it may be asked for
    /// in `fields`, and is masked per row.
    pub(crate) fn may_read(&self, field: &str) -> bool {
        match self {
            Access::All => true,
            Access::Grants(g) => g.iter().any(|g| g.fields.allows(field)),
        }
    }

    /// Whether a user field may be filtered or sorted on: every grant that can select a row names
    /// it. A field readable only in some rows would otherwise rank and count the rows where it is
    /// hidden (a filter oracle).
    pub(crate) fn may_filter(&self, field: &str) -> bool {
        match self {
            Access::All => true,
            Access::Grants(g) => g
                .iter()
                .filter(|g| {
                    g.filter.as_ref().is_none_or(|f| {
                        f.constant() != Some(Tri::False) && f.constant() != Some(Tri::Unknown)
                    })
                })
                .all(|g| g.fields.allows(field)),
        }
    }

    /// Whether some grant's filter is TRUE for `row` (all access: always).
    pub(crate) fn matches_any(&self, row: &Map<String, Json>) -> bool {
        match self {
            Access::All => true,
            Access::Grants(g) => g.iter().any(|g| g.matches(row)),
        }
    }

    /// Whether the subject may see column `c` of `row` (its current wire form): system columns
    /// always, user fields when a grant that matches the row names them.
    pub(crate) fn allows_for(&self, row: &Map<String, Json>, c: &Col) -> bool {
        match self {
            Access::All => true,
            Access::Grants(g) => {
                c.is_system() || g.iter().any(|g| g.matches(row) && g.fields.allows(&c.name))
            }
        }
    }

    /// The SQL condition of the grants: their filters OR-ed (`None`: every row).
    pub(crate) fn condition(&self, d: Dialect) -> Result<Option<SimpleExpr>, StoreError> {
        let Access::Grants(grants) = self else {
            return Ok(None);
        };
        let mut any: Option<SimpleExpr> = None;
        for g in grants {
            let Some(f) = &g.filter else {
                return Ok(None);
            };
            let e = match f.constant() {
                Some(Tri::True) => return Ok(None),
                Some(_) => Expr::cust("1 = 0"),
                None => f.compile(d)?.into_expr(),
            };
            any = Some(match any {
                None => e,
                Some(prev) => prev.or(e),
            });
        }
        Ok(any)
    }

    /// The row as the subject may see it: fields no matching grant names are null.
    pub(crate) fn mask(&self, cols: &[Col], mut row: Map<String, Json>) -> Map<String, Json> {
        let Access::Grants(grants) = self else {
            return row;
        };
        // Every grant allows every field: nothing to mask (the common case, decided without
        // matching the row).
        if grants.iter().all(|g| g.fields == FieldList::All)
            || grants
                .iter()
                .any(|g| g.fields == FieldList::All && g.matches(&row))
        {
            return row;
        }
        let matching: Vec<&Grant> = grants.iter().filter(|g| g.matches(&row)).collect();
        for c in cols.iter().filter(|c| !c.is_system()) {
            if !matching.iter().any(|g| g.fields.allows(&c.name))
                && let Some(v) = row.get_mut(&c.key)
            {
                *v = Json::Null;
            }
        }
        row
    }
}

/// The client's filter, checked against what the subject may read. `matches` (`_regex`) is
/// refused: a client's filter runs as SQL (lists) or once per event for as long as it is
/// subscribed (realtime, webhooks, flows), and a regular expression's cost is the client's to
/// choose; it is kept for permission `validation` rules, which run once per write.
pub(crate) fn client_filter(
    q: &Option<Json>,
    schema: &Schema,
) -> Result<Option<CheckedFilter>, StoreError> {
    let checked = checked_client_filter(q, schema)?;
    if checked.as_ref().is_some_and(CheckedFilter::uses_regex) {
        return Err(StoreError::BadRequest(NO_REGEX.into()));
    }
    Ok(checked)
}

/// Why a filter may not use `matches`.
pub(crate) const NO_REGEX: &str = "`_regex` (`matches`) is allowed only in a permission's \
     `validation`: use `_contains`, `_icontains`, `_starts_with` or `_ends_with` here";

fn checked_client_filter(
    q: &Option<Json>,
    schema: &Schema,
) -> Result<Option<CheckedFilter>, StoreError> {
    Ok(match q {
        None => None,
        Some(Json::String(s)) if s.trim().is_empty() => None,
        Some(Json::String(s)) => Some(workeros_dsl::parse_any(s)?.check(schema)?),
        Some(v @ Json::Object(_)) => Some(workeros_dsl::check_json(v, schema)?),
        Some(_) => {
            return Err(StoreError::BadRequest(
                "`filter` must be a filter object or a filter in the text form".into(),
            ));
        }
    })
}
