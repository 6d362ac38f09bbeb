//! The in-memory matcher: three-valued evaluation of a bound filter on a JSON row, without heap
//! allocation.

use crate::ast::Op;
use crate::bind::{BArg, BCmp, BNode, BoundFilter, Tri};
use crate::check::Scalar;
use crate::schema::ValueKind;
use crate::timefmt;
use serde_json::{Map, Value as Json};
use std::cmp::Ordering;

impl BoundFilter {
    /// Whether the filter is TRUE for `row` (a row in its wire form: field keys to JSON values;
    /// a missing key is null). Exactly the rows the compiled SQL selects.
    ///
    /// ```
    /// use workeros_core::{Subject, User};
    /// use workeros_dsl::{Schema, ValueKind, parse};
    /// let schema = Schema::of([("owner_id", ValueKind::Text), ("views", ValueKind::Integer)])?;
    /// let f = parse("owner_id = $user.id && views > 10")?.check(&schema)?;
    /// let row = serde_json::json!({"owner_id": "u1", "views": 11});
    /// let row = row.as_object().unwrap();
    /// let alice = Subject::user(User::new("u1"));
    /// assert!(f.bind(&alice, time::OffsetDateTime::now_utc()).matches(row));
    /// assert!(!f.bind(&Subject::anonymous(), time::OffsetDateTime::now_utc()).matches(row));
    /// # Ok::<(), workeros_dsl::DslError>(())
    /// ```
    pub fn matches(&self, row: &Map<String, Json>) -> bool {
        self.eval(row) == Tri::True
    }

    /// The three-valued result for `row`.
    pub fn eval(&self, row: &Map<String, Json>) -> Tri {
        eval(&self.root, row)
    }
}

fn eval(n: &BNode, row: &Map<String, Json>) -> Tri {
    match n {
        BNode::Const(t) => *t,
        BNode::And(items) => {
            let mut acc = Tri::True;
            for i in items {
                acc = acc.and(eval(i, row));
                if acc == Tri::False {
                    break;
                }
            }
            acc
        }
        BNode::Or(items) => {
            let mut acc = Tri::False;
            for i in items {
                acc = acc.or(eval(i, row));
                if acc == Tri::True {
                    break;
                }
            }
            acc
        }
        BNode::Not(inner) => eval(inner, row).not(),
        BNode::Cmp(c) => cmp(c, row.get(&*c.field.key).unwrap_or(&Json::Null)),
    }
}

/// A row value seen as the field's kind. `Bad` is a value of the wrong type: every comparison
/// with it is unknown (it cannot come from a column of that type).
enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Ts(i64),
    Uuid(uuid::Uuid),
    Json(&'a Json),
    Bad,
}

fn cell(kind: ValueKind, v: &Json) -> Cell<'_> {
    if v.is_null() {
        return Cell::Null;
    }
    match kind {
        ValueKind::Text => v.as_str().map_or(Cell::Bad, Cell::Text),
        ValueKind::Integer => v.as_i64().map_or(Cell::Bad, Cell::Int),
        ValueKind::Number => v.as_f64().map_or(Cell::Bad, Cell::Float),
        ValueKind::Boolean => match v {
            Json::Bool(b) => Cell::Bool(*b),
            Json::Number(n) if n.as_i64() == Some(0) => Cell::Bool(false),
            Json::Number(n) if n.as_i64() == Some(1) => Cell::Bool(true),
            _ => Cell::Bad,
        },
        ValueKind::Timestamp => v
            .as_str()
            .and_then(|s| timefmt::parse_canonical(s).or_else(|| timefmt::parse_timestamp(s)))
            .map_or(Cell::Bad, Cell::Ts),
        ValueKind::Uuid => v
            .as_str()
            .and_then(|s| uuid::Uuid::try_parse(s).ok())
            .map_or(Cell::Bad, Cell::Uuid),
        ValueKind::Json => Cell::Json(v),
    }
}

/// Compares a cell with a literal of the same kind; `None` when they cannot be compared.
fn order(c: &Cell<'_>, s: &Scalar) -> Option<Ordering> {
    match (c, s) {
        (Cell::Text(a), Scalar::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Cell::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
        (Cell::Float(a), Scalar::Float(b)) => a.partial_cmp(b),
        (Cell::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Cell::Ts(a), Scalar::Ts(b)) => Some(a.cmp(b)),
        (Cell::Uuid(a), Scalar::Uuid(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn is_empty(c: &Cell<'_>) -> bool {
    match c {
        Cell::Null => true,
        Cell::Text(s) => s.is_empty(),
        Cell::Json(Json::String(s)) => s.is_empty(),
        Cell::Json(Json::Array(a)) => a.is_empty(),
        Cell::Json(Json::Object(o)) => o.is_empty(),
        _ => false,
    }
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

fn substring(op: Op, hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    match op.positive().unwrap_or(op) {
        Op::Contains => hay.contains(needle),
        Op::StartsWith => h.starts_with(n),
        Op::EndsWith => h.ends_with(n),
        Op::IContains => contains_ci(h, n),
        Op::IStartsWith => {
            h.len() >= n.len() && h.get(..n.len()).is_some_and(|p| p.eq_ignore_ascii_case(n))
        }
        Op::IEndsWith => {
            h.len() >= n.len()
                && h.get(h.len() - n.len()..)
                    .is_some_and(|p| p.eq_ignore_ascii_case(n))
        }
        _ => false,
    }
}

fn cmp(c: &BCmp, v: &Json) -> Tri {
    let cell = cell(c.field.kind, v);
    match c.op {
        Op::Null => return Tri::of(matches!(cell, Cell::Null)),
        Op::NNull => return Tri::of(!matches!(cell, Cell::Null)),
        Op::Empty => return Tri::of(is_empty(&cell)),
        Op::NEmpty => return Tri::of(!is_empty(&cell)),
        _ => {}
    }
    if matches!(cell, Cell::Null | Cell::Bad) {
        return Tri::Unknown;
    }
    let ord = |s: &Scalar| order(&cell, s);
    let t = match (&c.arg, c.op) {
        (BArg::One(b), Op::Eq) => ord(&b.v).map(Ordering::is_eq),
        (BArg::One(b), Op::Neq) => ord(&b.v).map(Ordering::is_ne),
        (BArg::One(b), Op::Lt) => ord(&b.v).map(Ordering::is_lt),
        (BArg::One(b), Op::Lte) => ord(&b.v).map(Ordering::is_le),
        (BArg::One(b), Op::Gt) => ord(&b.v).map(Ordering::is_gt),
        (BArg::One(b), Op::Gte) => ord(&b.v).map(Ordering::is_ge),
        (BArg::List(items), Op::In) => {
            let mut any = Some(false);
            for s in items {
                match ord(s) {
                    Some(Ordering::Equal) => {
                        any = Some(true);
                        break;
                    }
                    Some(_) => {}
                    None => any = None,
                }
            }
            any
        }
        (BArg::Two(a, b), Op::Between | Op::NBetween) => {
            let inside = ord(&a.v)
                .map(Ordering::is_ge)
                .zip(ord(&b.v).map(Ordering::is_le));
            inside.map(|(lo, hi)| (lo && hi) != (c.op == Op::NBetween))
        }
        (BArg::One(b), op) if op.is_substring() => match (&cell, &b.v) {
            (Cell::Text(h), Scalar::Text(n)) => {
                Some(substring(op, h, n) == op.positive().is_none())
            }
            _ => None,
        },
        (BArg::Regex(re), Op::Regex) => match cell {
            Cell::Text(h) => Some(re.is_match(h)),
            _ => None,
        },
        _ => None,
    };
    t.map_or(Tri::Unknown, Tri::of)
}
