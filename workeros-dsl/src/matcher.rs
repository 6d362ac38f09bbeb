//! The in-memory matcher: three-valued evaluation of a bound filter on a JSON row, without heap
//! allocation.
//!
//! Binding lowers the bound tree once into a [`Prog`]: every comparison becomes a [`Test`]
//! specialised to its operator (orderings as a bit mask, lists as plain slices, needles already
//! folded), naming its field by an index into the program's distinct row keys and by its schema
//! slot. Matching a JSON map first finds those keys in one pass over the map (when that is cheaper
//! than one tree lookup per key), into a stack array; a resolved [`Row`] hands over its decoded
//! cells directly.

use crate::ast::Op;
use crate::bind::{BArg, BCmp, BNode, BoundFilter, Tri};
use crate::check::Scalar;
use crate::schema::{FieldSpec, NULL, Row, ValueKind};
use crate::timefmt;
use serde_json::{Map, Value as Json};
use std::cmp::Ordering;
use std::sync::Arc;

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
        let prog = &self.prog;
        let keys = &prog.keys;
        if keys.len() <= STACK_KEYS && row.len() <= SCAN_FACTOR * keys.len() + SCAN_EXTRA {
            let mut vals = [&NULL; STACK_KEYS];
            let mut left = keys.len();
            for (k, v) in row {
                if left == 0 {
                    break;
                }
                if let Some(i) = keys
                    .iter()
                    .position(|x| bytes_eq(x.as_bytes(), k.as_bytes()))
                    && let Some(slot) = vals.get_mut(i)
                {
                    *slot = v;
                    left -= 1;
                }
            }
            prog.root.eval(&Found(&vals))
        } else {
            prog.root.eval(&ByKey { map: row, keys })
        }
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
            self.prog.root.eval(&BySlot(&row.cells))
        } else {
            self.eval(row.map)
        }
    }
}

/// Up to this many distinct keys, a map is resolved into a stack array.
const STACK_KEYS: usize = 16;
/// A map of at most `SCAN_FACTOR × keys + SCAN_EXTRA` entries is resolved by one pass over it;
/// a larger one by a lookup per key.
const SCAN_FACTOR: usize = 4;
const SCAN_EXTRA: usize = 8;

/// A bound filter lowered for matching.
#[derive(Debug, Clone)]
pub(crate) struct Prog {
    root: MNode,
    /// The distinct row keys the tests read, indexed by [`Test::at`].
    keys: Box<[Arc<str>]>,
}

#[derive(Debug, Clone)]
enum MNode {
    Const(Tri),
    And(Box<[MNode]>),
    Or(Box<[MNode]>),
    Not(Box<MNode>),
    Test(Test),
}

#[derive(Debug, Clone)]
struct Test {
    /// Index of the field's key in [`Prog::keys`].
    at: usize,
    /// The field's slot in its schema (for resolved rows).
    slot: usize,
    kind: ValueKind,
    op: TestOp,
}

/// Accepted orderings of `cell` against a literal, as bits: less 1, equal 2, greater 4.
type Mask = u8;

const fn mask_of(o: Ordering) -> Mask {
    match o {
        Ordering::Less => 1,
        Ordering::Equal => 2,
        Ordering::Greater => 4,
    }
}

/// A comparison specialised to its operator and its field's kind: the cell and the literal are
/// matched in one step.
#[derive(Debug, Clone)]
enum TestOp {
    /// `is null` (true) / `is not null` (false).
    Null(bool),
    /// `is empty` (true) / `is not empty` (false).
    Empty(bool),
    /// Text `=` (false) / `!=` (true): equality needs no ordering.
    TextEq(Box<str>, bool),
    /// The orderings of each kind: `=`, `!=`, `<`, `<=`, `>`, `>=` as a mask.
    Text(Mask, Box<str>),
    Int(Mask, i64),
    Float(Mask, f64),
    Bool(Mask, bool),
    Ts(Mask, i64),
    Uuid(Mask, uuid::Uuid),
    /// `in` (false) / `not in` (true), over non-null items.
    TextIn(Box<[Box<str>]>, bool),
    IntIn(Box<[i64]>, bool),
    FloatIn(Box<[f64]>, bool),
    BoolIn(Box<[bool]>, bool),
    TsIn(Box<[i64]>, bool),
    UuidIn(Box<[uuid::Uuid]>, bool),
    /// `between` (false) / `not between` (true).
    Range(Box<(Lit, Lit)>, bool),
    /// A text test; the flag negates it.
    Sub(Sub, Needle, bool),
    Regex(Arc<regex_lite::Regex>),
}

/// A substring needle (lowercase for the case-insensitive tests), with its first byte and the
/// bit that folds ASCII case for it (`0x20` when it is a letter).
#[derive(Debug, Clone)]
struct Needle {
    text: Box<str>,
    first: u8,
    fold: u8,
}

impl Needle {
    fn new(text: &str) -> Self {
        let first = text.bytes().next().unwrap_or(0);
        Self {
            text: text.into(),
            first,
            fold: if first.is_ascii_alphabetic() { 0x20 } else { 0 },
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Sub {
    Contains,
    Starts,
    Ends,
    IContains,
    IStarts,
    IEnds,
}

/// A literal of a range.
#[derive(Debug, Clone)]
enum Lit {
    Text(Box<str>),
    Int(i64),
    Float(f64),
    Ts(i64),
    Other,
}

impl From<&Scalar> for Lit {
    fn from(s: &Scalar) -> Self {
        match s {
            Scalar::Text(t) => Lit::Text(t.as_str().into()),
            Scalar::Int(i) => Lit::Int(*i),
            Scalar::Float(f) => Lit::Float(*f),
            Scalar::Ts(t) => Lit::Ts(*t),
            Scalar::Bool(_) | Scalar::Uuid(_) => Lit::Other,
        }
    }
}

impl Prog {
    /// Lowers a bound tree.
    pub(crate) fn new(root: &BNode) -> Self {
        let mut keys: Vec<Arc<str>> = Vec::new();
        let root = lower(root, &mut keys);
        Self {
            root,
            keys: keys.into_boxed_slice(),
        }
    }
}

fn lower(n: &BNode, keys: &mut Vec<Arc<str>>) -> MNode {
    match n {
        BNode::Const(t) => MNode::Const(*t),
        BNode::And(items) => MNode::And(items.iter().map(|i| lower(i, keys)).collect()),
        BNode::Or(items) => MNode::Or(items.iter().map(|i| lower(i, keys)).collect()),
        BNode::Not(inner) => MNode::Not(Box::new(lower(inner, keys))),
        BNode::Cmp(c) => lower_cmp(c, keys),
    }
}

fn lower_cmp(c: &BCmp, keys: &mut Vec<Arc<str>>) -> MNode {
    let field: &FieldSpec = &c.field;
    let at = match keys.iter().position(|k| *k == field.key) {
        Some(i) => i,
        None => {
            keys.push(field.key.clone());
            keys.len() - 1
        }
    };
    let op = match (&c.arg, c.op) {
        (_, Op::Null) => Some(TestOp::Null(true)),
        (_, Op::NNull) => Some(TestOp::Null(false)),
        (_, Op::Empty) => Some(TestOp::Empty(true)),
        (_, Op::NEmpty) => Some(TestOp::Empty(false)),
        (BArg::One(v), op) => lower_one(op, &v.v),
        (BArg::List(items), Op::In | Op::Nin) => lower_list(items, c.op == Op::Nin),
        (BArg::Two(a, b), Op::Between | Op::NBetween) => Some(TestOp::Range(
            Box::new((Lit::from(&a.v), Lit::from(&b.v))),
            c.op == Op::NBetween,
        )),
        (BArg::Regex(re), Op::Regex) => Some(TestOp::Regex(re.clone())),
        _ => None,
    };
    match op {
        Some(op) => MNode::Test(Test {
            at,
            slot: field.slot,
            kind: field.kind,
            op,
        }),
        // An operand that does not fit its operator (the checker prevents it): unknown.
        None => MNode::Const(Tri::Unknown),
    }
}

fn lower_one(op: Op, v: &Scalar) -> Option<TestOp> {
    let mask: Mask = match op {
        Op::Eq => 2,
        Op::Neq => 1 | 4,
        Op::Lt => 1,
        Op::Lte => 1 | 2,
        Op::Gt => 4,
        Op::Gte => 2 | 4,
        _ => {
            let Scalar::Text(t) = v else { return None };
            let (sub, negate) = match op {
                Op::Contains => (Sub::Contains, false),
                Op::NContains => (Sub::Contains, true),
                Op::StartsWith => (Sub::Starts, false),
                Op::NStartsWith => (Sub::Starts, true),
                Op::EndsWith => (Sub::Ends, false),
                Op::NEndsWith => (Sub::Ends, true),
                Op::IContains => (Sub::IContains, false),
                Op::NIContains => (Sub::IContains, true),
                Op::IStartsWith => (Sub::IStarts, false),
                Op::NIStartsWith => (Sub::IStarts, true),
                Op::IEndsWith => (Sub::IEnds, false),
                Op::NIEndsWith => (Sub::IEnds, true),
                _ => return None,
            };
            return Some(TestOp::Sub(sub, Needle::new(t), negate));
        }
    };
    Some(match v {
        Scalar::Text(t) if matches!(op, Op::Eq | Op::Neq) => {
            TestOp::TextEq(t.as_str().into(), op == Op::Neq)
        }
        Scalar::Text(t) => TestOp::Text(mask, t.as_str().into()),
        Scalar::Int(i) => TestOp::Int(mask, *i),
        Scalar::Float(f) => TestOp::Float(mask, *f),
        Scalar::Bool(b) => TestOp::Bool(mask, *b),
        Scalar::Ts(t) => TestOp::Ts(mask, *t),
        Scalar::Uuid(u) => TestOp::Uuid(mask, *u),
    })
}

/// A list of one kind (the checker coerced every item to the field's kind).
fn lower_list(items: &[Scalar], negate: bool) -> Option<TestOp> {
    fn all<T>(items: &[Scalar], f: impl Fn(&Scalar) -> Option<T>) -> Option<Box<[T]>> {
        items.iter().map(f).collect()
    }
    Some(match items.first()? {
        Scalar::Text(_) => TestOp::TextIn(
            all(items, |s| match s {
                Scalar::Text(t) => Some(t.as_str().into()),
                _ => None,
            })?,
            negate,
        ),
        Scalar::Int(_) => TestOp::IntIn(
            all(items, |s| match s {
                Scalar::Int(i) => Some(*i),
                _ => None,
            })?,
            negate,
        ),
        Scalar::Float(_) => TestOp::FloatIn(
            all(items, |s| match s {
                Scalar::Float(f) => Some(*f),
                _ => None,
            })?,
            negate,
        ),
        Scalar::Bool(_) => TestOp::BoolIn(
            all(items, |s| match s {
                Scalar::Bool(b) => Some(*b),
                _ => None,
            })?,
            negate,
        ),
        Scalar::Ts(_) => TestOp::TsIn(
            all(items, |s| match s {
                Scalar::Ts(t) => Some(*t),
                _ => None,
            })?,
            negate,
        ),
        Scalar::Uuid(_) => TestOp::UuidIn(
            all(items, |s| match s {
                Scalar::Uuid(u) => Some(*u),
                _ => None,
            })?,
            negate,
        ),
    })
}

/// How a test finds its field's value in a row, seen as the field's kind.
trait Lookup {
    fn cell(&self, t: &Test) -> Cell<'_>;
}

/// A map resolved into a stack array, by key index.
struct Found<'r, 'a>(&'r [&'a Json; STACK_KEYS]);

impl Lookup for Found<'_, '_> {
    #[inline]
    fn cell(&self, t: &Test) -> Cell<'_> {
        cell(t.kind, self.0.get(t.at).copied().unwrap_or(&NULL))
    }
}

/// A map looked up key by key.
struct ByKey<'a> {
    map: &'a Map<String, Json>,
    keys: &'a [Arc<str>],
}

impl Lookup for ByKey<'_> {
    fn cell(&self, t: &Test) -> Cell<'_> {
        let v = self
            .keys
            .get(t.at)
            .and_then(|k| self.map.get(&**k))
            .unwrap_or(&NULL);
        cell(t.kind, v)
    }
}

/// A resolved row: the cells were decoded once, when the row was resolved.
struct BySlot<'r, 'a>(&'r [Cell<'a>]);

impl Lookup for BySlot<'_, '_> {
    #[inline]
    fn cell(&self, t: &Test) -> Cell<'_> {
        self.0.get(t.slot).copied().unwrap_or(Cell::Null)
    }
}

impl MNode {
    /// A child of `and`/`or`: a test is evaluated in place, without a call.
    #[inline(always)]
    fn eval_child<L: Lookup>(&self, row: &L) -> Tri {
        match self {
            MNode::Test(t) => t.eval(row.cell(t)),
            other => other.eval(row),
        }
    }

    fn eval<L: Lookup>(&self, row: &L) -> Tri {
        match self {
            MNode::Test(t) => t.eval(row.cell(t)),
            MNode::And(items) => {
                let mut unknown = false;
                for i in items {
                    match i.eval_child(row) {
                        Tri::False => return Tri::False,
                        Tri::Unknown => unknown = true,
                        Tri::True => {}
                    }
                }
                if unknown { Tri::Unknown } else { Tri::True }
            }
            MNode::Or(items) => {
                let mut unknown = false;
                for i in items {
                    match i.eval_child(row) {
                        Tri::True => return Tri::True,
                        Tri::Unknown => unknown = true,
                        Tri::False => {}
                    }
                }
                if unknown { Tri::Unknown } else { Tri::False }
            }
            MNode::Not(inner) => inner.eval(row).not(),
            MNode::Const(t) => *t,
        }
    }
}

/// Byte equality, inline for the short strings keys and ids usually are (no `memcmp` call): two
/// overlapping word loads cover 4 to 16 bytes.
#[inline(always)]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    fn word<const N: usize>(s: &[u8], at: usize) -> Option<[u8; N]> {
        s.get(at..at + N).and_then(|w| w.try_into().ok())
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        _ => a == b,
    }
}

/// Whether ordering `o` is one `mask` accepts.
#[inline]
fn hit(mask: Mask, o: Ordering) -> Tri {
    Tri::of(mask_of(o) & mask != 0)
}

/// `x in items`, negated for `not in`.
#[inline]
fn member<T: PartialEq>(x: &T, items: &[T], negate: bool) -> Tri {
    Tri::of(items.contains(x) != negate)
}

impl Test {
    #[inline(always)]
    fn eval(&self, cell: Cell<'_>) -> Tri {
        match (&self.op, cell) {
            (TestOp::TextEq(v, negate), Cell::Text(c)) => {
                Tri::of(bytes_eq(v.as_bytes(), c.as_bytes()) != *negate)
            }
            (TestOp::Text(m, v), Cell::Text(c)) => hit(*m, c.as_bytes().cmp(v.as_bytes())),
            (TestOp::Int(m, v), Cell::Int(c)) => hit(*m, c.cmp(v)),
            (TestOp::Ts(m, v), Cell::Ts(c)) => hit(*m, c.cmp(v)),
            (TestOp::Float(m, v), Cell::Float(c)) => {
                c.partial_cmp(v).map_or(Tri::Unknown, |o| hit(*m, o))
            }
            (TestOp::Bool(m, v), Cell::Bool(c)) => hit(*m, c.cmp(v)),
            (TestOp::Uuid(m, v), Cell::Uuid(c)) => hit(*m, c.cmp(v)),
            (TestOp::TextIn(items, negate), Cell::Text(c)) => {
                Tri::of(items.iter().any(|i| bytes_eq(i.as_bytes(), c.as_bytes())) != *negate)
            }
            (TestOp::IntIn(items, negate), Cell::Int(c)) => member(&c, items, *negate),
            (TestOp::TsIn(items, negate), Cell::Ts(c)) => member(&c, items, *negate),
            (TestOp::FloatIn(items, negate), Cell::Float(c)) => member(&c, items, *negate),
            (TestOp::BoolIn(items, negate), Cell::Bool(c)) => member(&c, items, *negate),
            (TestOp::UuidIn(items, negate), Cell::Uuid(c)) => member(&c, items, *negate),
            (TestOp::Sub(sub, needle, negate), Cell::Text(h)) => {
                Tri::of(sub.test(h.as_bytes(), needle) != *negate)
            }
            (TestOp::Null(is), c) => Tri::of(matches!(c, Cell::Null) == *is),
            (TestOp::Empty(is), c) => Tri::of(is_empty(&c) == *is),
            (TestOp::Range(r, negate), c) => {
                in_range(&c, r).map_or(Tri::Unknown, |b| Tri::of(b != *negate))
            }
            (TestOp::Regex(re), Cell::Text(h)) => Tri::of(re.is_match(h)),
            // A null or mistyped cell.
            _ => Tri::Unknown,
        }
    }
}

/// Whether `c` lies in `lo ..= hi`; `None` when they cannot be compared.
fn in_range(c: &Cell<'_>, (lo, hi): &(Lit, Lit)) -> Option<bool> {
    fn within<T: PartialOrd + ?Sized>(c: &T, lo: &T, hi: &T) -> Option<bool> {
        Some(c.partial_cmp(lo)?.is_ge() && c.partial_cmp(hi)?.is_le())
    }
    match (c, lo, hi) {
        (Cell::Text(c), Lit::Text(lo), Lit::Text(hi)) => {
            within(c.as_bytes(), lo.as_bytes(), hi.as_bytes())
        }
        (Cell::Int(c), Lit::Int(lo), Lit::Int(hi)) => within(c, lo, hi),
        (Cell::Float(c), Lit::Float(lo), Lit::Float(hi)) => within(c, lo, hi),
        (Cell::Ts(c), Lit::Ts(lo), Lit::Ts(hi)) => within(c, lo, hi),
        _ => None,
    }
}

impl Sub {
    #[inline]
    fn test(self, h: &[u8], n: &Needle) -> bool {
        let text = n.text.as_bytes();
        match self {
            Sub::Contains if h.len() < 64 => {
                text.is_empty() || h.windows(text.len()).any(|w| w == text)
            }
            Sub::Contains => memchr::memmem::find(h, text).is_some(),
            Sub::Starts => h.starts_with(text),
            Sub::Ends => h.ends_with(text),
            Sub::IContains => contains_ci(h, n),
            Sub::IStarts => starts_ci(h, text),
            Sub::IEnds => ends_ci(h, text),
        }
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

/// ASCII case-insensitive substring search; the needle is already lowercase. Short haystacks
/// are scanned directly (a byte matches the needle's first byte when it equals it with the case
/// bit set); long ones jump with `memchr2` to where the first byte matches in either case.
fn contains_ci(hay: &[u8], needle: &Needle) -> bool {
    let Some(rest) = needle.text.as_bytes().get(1..) else {
        return true;
    };
    let Some(last) = hay.len().checked_sub(rest.len() + 1) else {
        return false;
    };
    let (first, fold) = (needle.first, needle.fold);
    let found = |i: usize| {
        hay.get(i + 1..=i + rest.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
    };
    if hay.len() < 64 {
        return hay.get(..=last).is_some_and(|h| {
            h.iter()
                .enumerate()
                .any(|(i, &b)| b | fold == first && found(i))
        });
    }
    let upper = first.to_ascii_uppercase();
    let mut from = 0;
    while let Some(p) = hay
        .get(from..=last)
        .and_then(|h| memchr::memchr2(first, upper, h))
    {
        let i = from + p;
        if found(i) {
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

    /// A map too large to scan is looked up key by key; both ways give the same answer, with
    /// extra keys, missing keys and keys of equal length.
    #[test]
    fn scanned_and_looked_up_maps_agree() {
        let schema = Schema::of([
            ("title", ValueKind::Text),
            ("views", ValueKind::Integer),
            ("at", ValueKind::Timestamp),
        ])
        .unwrap();
        let now = time::OffsetDateTime::UNIX_EPOCH;
        for src in [
            "title icontains 'ru' && views > 1",
            "views in [1, 2] || at > $now",
            "title = 'abcdefghijklm' || title starts_with 'x'",
            "!(title is null) && at between '1970-01-01' and '2000-01-01'",
        ] {
            let bound = parse(src)
                .unwrap()
                .check(&schema)
                .unwrap()
                .bind(&Subject::anonymous(), now);
            for row in [
                serde_json::json!({"title": "Rust", "views": 2, "at": "1990-01-01T00:00:00.000000Z"}),
                serde_json::json!({"title": "abcdefghijklm", "views": 1}),
                serde_json::json!({"title": "abcdefghijklmn", "views": "2", "at": "x"}),
                serde_json::json!({"views": 5, "at": "2001-01-01T00:00:00Z"}),
            ] {
                let small = row.as_object().unwrap();
                let mut large = small.clone();
                for i in 0..40 {
                    large.insert(format!("extra{i:02}"), serde_json::json!(i));
                }
                let want = bound.eval(small);
                assert_eq!(bound.eval(&large), want, "{src} on {row}");
                assert_eq!(bound.eval_row(&schema.row(&large)), want, "{src} on {row}");
            }
        }
    }

    #[test]
    fn substring_tests_on_short_and_long_text() {
        let schema = Schema::of([("t", ValueKind::Text)]).unwrap();
        let long = format!("{}Needle{}", "x".repeat(70), "y".repeat(10));
        for (src, text, want) in [
            ("t icontains 'needle'", "a NEEDLE b", true),
            ("t icontains 'needle'", long.as_str(), true),
            ("t icontains 'needlf'", long.as_str(), false),
            ("t icontains '@x'", "`x", false),
            ("t icontains '@x'", "@X", true),
            ("t contains 'Needle'", long.as_str(), true),
            ("t contains 'needle'", long.as_str(), false),
            ("t contains ''", "", true),
            ("t icontains ''", "", true),
            ("t contains 'ab'", "a", false),
            ("t not icontains 'b'", "ABC", false),
        ] {
            let bound = parse(src)
                .unwrap()
                .check(&schema)
                .unwrap()
                .bind(&Subject::anonymous(), time::OffsetDateTime::UNIX_EPOCH);
            let row = serde_json::json!({ "t": text });
            assert_eq!(
                bound.matches(row.as_object().unwrap()),
                want,
                "{src} on {text}"
            );
        }
    }
}
