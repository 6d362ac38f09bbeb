//! The in-memory matcher: three-valued evaluation of a bound filter on a JSON row, without heap
//! allocation.

use crate::ast::Op;
use crate::bind::{BArg, BCmp, BNode, BoundFilter, Tri};
use crate::check::Scalar;
use crate::schema::{FieldSpec, NULL, Row, ValueKind};
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
        eval(&self.root, &ByKey(row))
    }

    /// Whether the filter is TRUE for a row resolved with [`Schema::row`](crate::Schema::row):
    /// the same answer as [`matches`](Self::matches), with field slots instead of key lookups when
    /// the filter was checked against the row's schema.
    pub fn matches_row(&self, row: &Row<'_>) -> bool {
        self.eval_row(row) == Tri::True
    }

    /// The three-valued result for a resolved row.
    pub fn eval_row(&self, row: &Row<'_>) -> Tri {
        if row.schema == self.schema {
            eval(&self.root, &BySlot(row))
        } else {
            eval(&self.root, &ByKey(row.map))
        }
    }
}

/// How a comparison finds its field's value in a row, seen as the field's kind.
trait Lookup {
    fn cell(&self, field: &FieldSpec) -> Cell<'_>;
}

struct ByKey<'a>(&'a Map<String, Json>);

impl Lookup for ByKey<'_> {
    fn cell(&self, field: &FieldSpec) -> Cell<'_> {
        cell(field.kind, self.0.get(&*field.key).unwrap_or(&NULL))
    }
}

/// A resolved row: the cells were decoded once, when the row was resolved.
struct BySlot<'r, 'a>(&'r Row<'a>);

impl Lookup for BySlot<'_, '_> {
    fn cell(&self, field: &FieldSpec) -> Cell<'_> {
        self.0.cells.get(field.slot).copied().unwrap_or(Cell::Null)
    }
}

fn eval<L: Lookup>(n: &BNode, row: &L) -> Tri {
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
        BNode::Cmp(c) => cmp(c, row.cell(&c.field)),
    }
}

/// A row value seen as the field's kind. `Bad` is a value of the wrong type: every comparison
/// with it is unknown (it cannot come from a column of that type).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
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

pub(crate) fn cell(kind: ValueKind, v: &Json) -> Cell<'_> {
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

/// ASCII case-insensitive substring search; `needle` is already lowercase. `memchr2` jumps to
/// the places where the first byte matches in either case.
fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let Some(last) = hay.len().checked_sub(needle.len()) else {
        return false;
    };
    let upper = first.to_ascii_uppercase();
    let mut from = 0;
    while let Some(p) = hay
        .get(from..=last)
        .and_then(|h| memchr::memchr2(first, upper, h))
    {
        let i = from + p;
        if hay
            .get(i + 1..i + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
        {
            return true;
        }
        from = i + 1;
    }
    false
}

fn starts_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.get(..needle.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(needle))
}

fn ends_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len()
        .checked_sub(needle.len())
        .and_then(|at| hay.get(at..))
        .is_some_and(|p| p.eq_ignore_ascii_case(needle))
}

/// Applies a text test to a text cell and a text needle; `None` when either is not text.
#[inline]
fn text_test(cell: &Cell<'_>, s: &Scalar, test: impl Fn(&str, &str) -> bool) -> Option<bool> {
    match (cell, s) {
        (Cell::Text(h), Scalar::Text(n)) => Some(test(h, n)),
        _ => None,
    }
}

fn cmp(c: &BCmp, cell: Cell<'_>) -> Tri {
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
    let one = |f: &dyn Fn(&Scalar) -> Option<bool>| match &c.arg {
        BArg::One(b) => f(&b.v),
        _ => None,
    };
    let text = |test: fn(&str, &str) -> bool| one(&|s| text_test(&cell, s, test));
    let not = |t: Option<bool>| t.map(|b| !b);
    let t = match c.op {
        Op::Eq => one(&|s| ord(s).map(Ordering::is_eq)),
        Op::Neq => one(&|s| ord(s).map(Ordering::is_ne)),
        Op::Lt => one(&|s| ord(s).map(Ordering::is_lt)),
        Op::Lte => one(&|s| ord(s).map(Ordering::is_le)),
        Op::Gt => one(&|s| ord(s).map(Ordering::is_gt)),
        Op::Gte => one(&|s| ord(s).map(Ordering::is_ge)),
        Op::In | Op::Nin => match &c.arg {
            BArg::List(items) => {
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
                if c.op == Op::Nin { not(any) } else { any }
            }
            _ => None,
        },
        Op::Between | Op::NBetween => match &c.arg {
            BArg::Two(a, b) => {
                let inside = ord(&a.v)
                    .map(Ordering::is_ge)
                    .zip(ord(&b.v).map(Ordering::is_le))
                    .map(|(lo, hi)| lo && hi);
                if c.op == Op::NBetween {
                    not(inside)
                } else {
                    inside
                }
            }
            _ => None,
        },
        Op::Contains => text(|h, n| h.contains(n)),
        Op::NContains => not(text(|h, n| h.contains(n))),
        Op::StartsWith => text(|h, n| h.starts_with(n)),
        Op::NStartsWith => not(text(|h, n| h.starts_with(n))),
        Op::EndsWith => text(|h, n| h.ends_with(n)),
        Op::NEndsWith => not(text(|h, n| h.ends_with(n))),
        Op::IContains => text(|h, n| contains_ci(h.as_bytes(), n.as_bytes())),
        Op::NIContains => not(text(|h, n| contains_ci(h.as_bytes(), n.as_bytes()))),
        Op::IStartsWith => text(|h, n| starts_ci(h.as_bytes(), n.as_bytes())),
        Op::NIStartsWith => not(text(|h, n| starts_ci(h.as_bytes(), n.as_bytes()))),
        Op::IEndsWith => text(|h, n| ends_ci(h.as_bytes(), n.as_bytes())),
        Op::NIEndsWith => not(text(|h, n| ends_ci(h.as_bytes(), n.as_bytes()))),
        Op::Regex => match (&c.arg, cell) {
            (BArg::Regex(re), Cell::Text(h)) => Some(re.is_match(h)),
            _ => None,
        },
        Op::Null | Op::NNull | Op::Empty | Op::NEmpty => None,
    };
    t.map_or(Tri::Unknown, Tri::of)
}

#[cfg(test)]
mod tests {
    use crate::{Schema, ValueKind, parse};
    use workeros_core::Subject;

    #[test]
    fn indexed_rows_agree_and_fall_back_by_key() {
        let schema = Schema::of([("a", ValueKind::Integer), ("b", ValueKind::Text)]).unwrap();
        let other = Schema::of([("b", ValueKind::Text), ("a", ValueKind::Integer)]).unwrap();
        let f = parse("a > 1 && b = 'x'").unwrap().check(&schema).unwrap();
        let bound = f.bind(&Subject::anonymous(), time::OffsetDateTime::UNIX_EPOCH);
        for row in [
            serde_json::json!({"a": 2, "b": "x"}),
            serde_json::json!({"a": 1, "b": "x"}),
            serde_json::json!({"b": "x"}),
        ] {
            let map = row.as_object().unwrap();
            let want = bound.eval(map);
            assert_eq!(bound.eval_row(&schema.row(map)), want);
            // Slots of another schema are not trusted: the key path answers.
            assert_eq!(bound.eval_row(&other.row(map)), want);
        }
    }
}
