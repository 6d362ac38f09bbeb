//! Binding a checked filter to a subject and a time: variables substituted, constants folded.

use crate::ast::{Op, Var};
use crate::check::{CArg, CCmp, CNode, CVal, CheckedFilter, Scalar, coerce};
use crate::schema::{FieldSpec, ValueKind};
use crate::timefmt;
use serde_json::Value as Json;
use std::sync::Arc;
use time::OffsetDateTime;
use workeros_core::Subject;

/// A truth value of three-valued logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tri {
    /// True.
    True,
    /// False.
    False,
    /// Unknown (SQL `NULL`): never selects a row, and its negation is unknown too.
    Unknown,
}

impl Tri {
    /// From a boolean.
    pub const fn of(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }

    /// Kleene negation.
    #[allow(clippy::should_implement_trait)]
    pub const fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }

    /// Kleene conjunction.
    pub const fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, Tri::True) => Tri::True,
            _ => Tri::Unknown,
        }
    }

    /// Kleene disjunction.
    pub const fn or(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::False, Tri::False) => Tri::False,
            _ => Tri::Unknown,
        }
    }
}

/// Where a bound value came from: the compile cache re-computes `$now` values on every hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Origin {
    Fixed,
    Now(Option<crate::ast::Shift>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BVal {
    pub(crate) v: Scalar,
    pub(crate) origin: Origin,
}

#[derive(Debug, Clone)]
pub(crate) enum BArg {
    None,
    One(BVal),
    Two(BVal, BVal),
    /// Non-null items; a list that had nulls is bound as `(x in non_null) or unknown`.
    List(Vec<Scalar>),
    Regex(Arc<regex_lite::Regex>),
}

#[derive(Debug, Clone)]
pub(crate) struct BCmp {
    pub(crate) field: Arc<FieldSpec>,
    pub(crate) op: Op,
    pub(crate) arg: BArg,
}

#[derive(Debug, Clone)]
pub(crate) enum BNode {
    Const(Tri),
    And(Vec<BNode>),
    Or(Vec<BNode>),
    Not(Box<BNode>),
    Cmp(BCmp),
}

/// A filter bound to one subject and one instant: ready to compile to SQL or to match rows.
#[derive(Debug, Clone)]
pub struct BoundFilter {
    pub(crate) root: BNode,
    /// The same tree lowered for the matcher.
    pub(crate) prog: crate::matcher::Prog,
    pub(crate) has_regex: bool,
    pub(crate) schema: u64,
}

impl BoundFilter {
    /// The filter's value when it folded to a constant (`Some(Tri::False)` for an anonymous
    /// subject on `owner_id = $user.id`), `None` when it depends on the row.
    pub fn constant(&self) -> Option<Tri> {
        match self.root {
            BNode::Const(t) => Some(t),
            _ => None,
        }
    }
}

/// The value of a subject variable: `None` when missing or null.
pub(crate) fn var_value(subject: &Subject, var: &Var) -> Option<Json> {
    let user = subject.user.as_ref();
    match var {
        Var::UserId => user.map(|u| Json::String(u.id.clone())),
        Var::UserEmail => user.and_then(|u| u.email.clone()).map(Json::String),
        Var::UserRoles => {
            user.map(|u| Json::Array(u.roles.iter().cloned().map(Json::String).collect()))
        }
        Var::UserAttr(a) => user
            .and_then(|u| u.attrs.get(a.as_str()))
            .filter(|v| !v.is_null())
            .cloned(),
        Var::TenantId => subject.tenant.clone().map(Json::String),
        Var::Now(_) => None,
    }
}

/// The value of a variable spelled in full (`$user.id`, `$CURRENT_USER`, `$now(-1 day)`, …) for
/// `subject` at `now`, as JSON (an instant as its canonical RFC 3339 text; a missing value as
/// `null`); `None` when `s` is not a variable. Presets use it to write variables into rows.
///
/// ```
/// use workeros_core::{Subject, User};
/// let alice = Subject::user(User::new("u1"));
/// let now = time::OffsetDateTime::UNIX_EPOCH;
/// assert_eq!(workeros_dsl::variable_value("$user.id", &alice, now), Some("u1".into()));
/// assert_eq!(workeros_dsl::variable_value("$tenant.id", &alice, now), Some(serde_json::Value::Null));
/// assert_eq!(
///     workeros_dsl::variable_value("$NOW(+1 day)", &alice, now),
///     Some("1970-01-02T00:00:00.000000Z".into())
/// );
/// assert_eq!(workeros_dsl::variable_value("hello", &alice, now), None);
/// ```
pub fn variable_value(s: &str, subject: &Subject, now: OffsetDateTime) -> Option<Json> {
    let Ok(("", var)) = crate::text::variable(s) else {
        return None;
    };
    Some(match &var {
        Var::Now(shift) => timefmt::to_micros(now)
            .and_then(|m| timefmt::shifted(m, *shift))
            .and_then(workeros_core::instant::rfc3339_micros)
            .map_or(Json::Null, Json::String),
        other => var_value(subject, other).unwrap_or(Json::Null),
    })
}

/// Coerces a variable's JSON value to `kind`; `None` (unknown) when it does not fit.
fn coerce_json(v: &Json, kind: ValueKind) -> Option<Scalar> {
    let lit = match v {
        Json::String(s) => crate::ast::Value::Str(s.as_str().into()),
        Json::Bool(b) => crate::ast::Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => crate::ast::Value::Int(i),
            None => crate::ast::Value::Float(n.as_f64()?),
        },
        _ => return None,
    };
    coerce(&lit, kind)
}

impl CheckedFilter {
    /// Binds the filter to `subject` at `now` (truncated to microseconds).
    ///
    /// A variable that is missing, null, or does not coerce to the field's type makes its
    /// comparison *unknown*, which never selects a row: a missing variable never widens access.
    pub fn bind(&self, subject: &Subject, now: OffsetDateTime) -> BoundFilter {
        let now = timefmt::to_micros(now);
        let b = Binder { subject, now };
        let root = b.node(&self.root);
        BoundFilter {
            prog: crate::matcher::Prog::new(&root),
            root,
            has_regex: self.has_regex,
            schema: self.schema,
        }
    }
}

struct Binder<'a> {
    subject: &'a Subject,
    now: Option<i64>,
}

impl Binder<'_> {
    fn node(&self, n: &CNode) -> BNode {
        match n {
            CNode::Const(b) => BNode::Const(Tri::of(*b)),
            CNode::And(items) => fold_and(items.iter().map(|i| self.node(i))),
            CNode::Or(items) => fold_or(items.iter().map(|i| self.node(i))),
            CNode::Not(inner) => fold_not(self.node(inner)),
            CNode::Cmp(c) => self.cmp(c),
        }
    }

    fn val(&self, v: &CVal, kind: ValueKind, op: Op) -> Option<BVal> {
        let (v, origin) = match v {
            CVal::Lit(s) => (s.clone(), Origin::Fixed),
            CVal::Var(Var::Now(shift)) => (
                Scalar::Ts(timefmt::shifted(self.now?, *shift)?),
                Origin::Now(*shift),
            ),
            CVal::Var(var) => (
                coerce_json(&var_value(self.subject, var)?, kind)?,
                Origin::Fixed,
            ),
        };
        // Case-insensitive operators compare ASCII-lowercased text on every path.
        let v = match v {
            Scalar::Text(t)
                if op.is_case_insensitive() && t.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                Scalar::Text(t.to_ascii_lowercase().into())
            }
            other => other,
        };
        Some(BVal { v, origin })
    }

    fn cmp(&self, c: &CCmp) -> BNode {
        let kind = c.field.kind;
        let unknown = BNode::Const(Tri::Unknown);
        let arg = match &c.arg {
            CArg::None => BArg::None,
            CArg::Regex(re) => BArg::Regex(re.clone()),
            CArg::One(v) => match self.val(v, kind, c.op) {
                Some(v) => BArg::One(v),
                None => return unknown,
            },
            CArg::Two(a, b) => match (self.val(a, kind, c.op), self.val(b, kind, c.op)) {
                (Some(a), Some(b)) => BArg::Two(a, b),
                _ => return unknown,
            },
            CArg::List(items) => {
                let mut had_null = false;
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match self.val(item, kind, c.op) {
                        Some(v) => out.push(v.v),
                        None => had_null = true,
                    }
                }
                return list_node(c, out, had_null);
            }
            CArg::ListVar(var) => {
                let Some(value) = var_value(self.subject, var) else {
                    return unknown;
                };
                let (out, had_null) = match &value {
                    // A list over the limit would exceed what one query may bind: unknown.
                    Json::Array(items) if items.len() > crate::limits::MAX_LIST_LEN => {
                        return unknown;
                    }
                    Json::Array(items) => {
                        let out: Vec<Scalar> =
                            items.iter().filter_map(|i| coerce_json(i, kind)).collect();
                        let had_null = out.len() != items.len();
                        (out, had_null)
                    }
                    scalar => match coerce_json(scalar, kind) {
                        Some(s) => (vec![s], false),
                        None => return unknown,
                    },
                };
                return list_node(c, out, had_null);
            }
        };
        BNode::Cmp(BCmp {
            field: c.field.clone(),
            op: c.op,
            arg,
        })
    }
}

/// `x in list` with SQL's null rules: an empty list is false (even for a null `x`); a list with
/// nulls is `(x in non_null_items) or unknown`. `not in` is the negation of that.
fn list_node(c: &CCmp, items: Vec<Scalar>, had_null: bool) -> BNode {
    let positive = if items.is_empty() {
        BNode::Const(Tri::False)
    } else {
        BNode::Cmp(BCmp {
            field: c.field.clone(),
            op: Op::In,
            arg: BArg::List(items),
        })
    };
    let positive = if had_null {
        fold_or([positive, BNode::Const(Tri::Unknown)].into_iter())
    } else {
        positive
    };
    if c.op == Op::Nin {
        fold_not(positive)
    } else {
        positive
    }
}

fn fold_not(n: BNode) -> BNode {
    match n {
        BNode::Const(t) => BNode::Const(t.not()),
        BNode::Not(inner) => *inner,
        other => BNode::Not(Box::new(other)),
    }
}

fn fold_and(items: impl Iterator<Item = BNode>) -> BNode {
    let mut out = Vec::new();
    let mut unknown = false;
    for n in items {
        match n {
            BNode::Const(Tri::True) => {}
            BNode::Const(Tri::False) => return BNode::Const(Tri::False),
            BNode::Const(Tri::Unknown) => unknown = true,
            other => out.push(other),
        }
    }
    if unknown {
        out.push(BNode::Const(Tri::Unknown));
    }
    match out.len() {
        0 => BNode::Const(Tri::True),
        1 => out.pop().unwrap_or(BNode::Const(Tri::True)),
        _ => BNode::And(out),
    }
}

fn fold_or(items: impl Iterator<Item = BNode>) -> BNode {
    let mut out = Vec::new();
    let mut unknown = false;
    for n in items {
        match n {
            BNode::Const(Tri::False) => {}
            BNode::Const(Tri::True) => return BNode::Const(Tri::True),
            BNode::Const(Tri::Unknown) => unknown = true,
            other => out.push(other),
        }
    }
    if unknown {
        out.push(BNode::Const(Tri::Unknown));
    }
    match out.len() {
        0 => BNode::Const(Tri::False),
        1 => out.pop().unwrap_or(BNode::Const(Tri::False)),
        _ => BNode::Or(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Schema, parse};
    use workeros_core::User;

    fn bound(src: &str, subject: &Subject) -> BoundFilter {
        let schema = Schema::of([
            ("owner_id", ValueKind::Text),
            ("role", ValueKind::Text),
            ("n", ValueKind::Integer),
        ])
        .unwrap();
        parse(src)
            .unwrap()
            .check(&schema)
            .unwrap()
            .bind(subject, OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn null_variables_never_widen() {
        let anon = Subject::anonymous();
        assert_eq!(
            bound("owner_id = $user.id", &anon).constant(),
            Some(Tri::Unknown)
        );
        assert_eq!(
            bound("!(owner_id = $user.id)", &anon).constant(),
            Some(Tri::Unknown)
        );
        assert_eq!(
            bound("owner_id = $user.id || n = 1", &anon).constant(),
            None
        );
        assert_eq!(
            bound("role in $user.roles", &anon).constant(),
            Some(Tri::Unknown)
        );
        let u = Subject::user(User::new("u1"));
        assert_eq!(
            bound("role in $user.roles", &u).constant(),
            Some(Tri::False)
        );
        assert_eq!(
            bound("role not in $user.roles", &u).constant(),
            Some(Tri::True)
        );
        assert_eq!(bound("owner_id = $user.id", &u).constant(), None);
        // An attribute that does not fit the field's type is unknown, not an error.
        let u = Subject::user(User::new("u1").with_attr("level", "high"));
        assert_eq!(bound("n = $user.level", &u).constant(), Some(Tri::Unknown));
    }

    #[test]
    fn empty_lists() {
        let anon = Subject::anonymous();
        assert_eq!(bound("role in []", &anon).constant(), Some(Tri::False));
        assert_eq!(bound("role not in []", &anon).constant(), Some(Tri::True));
        assert_eq!(
            bound("role in [$user.id]", &anon).constant(),
            Some(Tri::Unknown)
        );
        assert_eq!(bound("true && false", &anon).constant(), Some(Tri::False));
    }
}
