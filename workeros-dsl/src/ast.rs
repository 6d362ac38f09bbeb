//! The filter tree shared by both surface forms.
//!
//! A [`Filter`] is in *normal form*: `And`/`Or` have at least two children, the constants
//! `true`/`false` are [`Filter::Const`]. Both parsers produce only normal forms, and both printers
//! print every normal form so that it parses back to the same tree.

use crate::error::{DslError, Loc};
use crate::limits;
use smol_str::SmolStr;

/// An identifier naming a field: `[A-Za-z_][A-Za-z0-9_]{0,62}`, and not one of the
/// [`RESERVED_WORDS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(SmolStr);

/// Words that cannot name a field: in the text form they start a filter, and in the JSON form
/// they are the logical operators.
pub const RESERVED_WORDS: &[&str] = &["not", "true", "false", "_and", "_or", "_not"];

impl Ident {
    /// Validates `s`.
    pub fn new(s: &str) -> Result<Self, DslError> {
        Self::new_at(s, &Loc::None)
    }

    pub(crate) fn new_at(s: &str, loc: &Loc) -> Result<Self, DslError> {
        if !is_ident(s) {
            return Err(DslError::syntax(
                format!("invalid field name `{}`", crate::error::clip(s)),
                loc.clone(),
            )
            .with_help(
                "field names are 1 to 63 of A-Z, a-z, 0-9 and _, not starting with a digit",
            ));
        }
        if RESERVED_WORDS.contains(&s) {
            return Err(DslError::syntax(
                format!("`{s}` is a reserved word and cannot name a field"),
                loc.clone(),
            ));
        }
        Ok(Self(SmolStr::new(s)))
    }

    /// An identifier the lexer has already matched as `[A-Za-z_][A-Za-z0-9_]*`: only its length
    /// and the reserved words are left to check.
    pub(crate) fn lexed(s: &str, loc: &Loc) -> Result<Self, DslError> {
        if s.len() > limits::MAX_IDENT_LEN || RESERVED_WORDS.contains(&s) {
            return Self::new_at(s, loc);
        }
        Ok(Self(SmolStr::new(s)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Byte classes of identifiers: 1 may start one, 2 may continue one (a table: one load a byte).
// Evaluated at compile time: an index out of bounds would fail the build, never run.
#[allow(clippy::indexing_slicing)]
const IDENT_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[b] = 1 | 2;
        } else if c.is_ascii_digit() {
            t[b] = 2;
        }
        b += 1;
    }
    t
};

#[inline(always)]
fn class(b: u8) -> u8 {
    IDENT_BYTES.get(usize::from(b)).copied().unwrap_or(0)
}

pub(crate) fn is_ident(s: &str) -> bool {
    let Some((first, rest)) = s.as_bytes().split_first() else {
        return false;
    };
    s.len() <= limits::MAX_IDENT_LEN
        && class(*first) & 1 != 0
        && rest.iter().all(|b| class(*b) & 2 != 0)
}

/// Whether `s` holds a NUL byte (short strings are scanned inline, long ones with `memchr`).
pub(crate) fn has_nul(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 32 {
        b.contains(&0)
    } else {
        memchr::memchr(0, b).is_some()
    }
}

/// A filter: the tree both surface forms parse to.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `true` (every row; `{"_and": []}` in JSON) or `false` (no row; `{"_or": []}`).
    Const(bool),
    /// All children true.
    And(Vec<Filter>),
    /// Any child true.
    Or(Vec<Filter>),
    /// Negation.
    Not(Box<Filter>),
    /// A comparison of one field.
    Cmp(Comparison),
}

impl Filter {
    /// `And` of `children` in normal form: no child is `true`, one child is itself, none is `true`.
    pub fn and(mut children: Vec<Filter>) -> Filter {
        match children.len() {
            0 => Filter::Const(true),
            1 => children.pop().unwrap_or(Filter::Const(true)),
            _ => Filter::And(children),
        }
    }

    /// `Or` of `children` in normal form: none is `false`, one child is itself.
    pub fn or(mut children: Vec<Filter>) -> Filter {
        match children.len() {
            0 => Filter::Const(false),
            1 => children.pop().unwrap_or(Filter::Const(false)),
            _ => Filter::Or(children),
        }
    }

    /// A comparison `field op arg`.
    pub fn cmp(field: Ident, op: Op, arg: Operand) -> Filter {
        Filter::Cmp(Comparison {
            field,
            op,
            arg,
            loc: Loc::None,
        })
    }

    /// The nesting depth and the number of nodes, in one walk.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Filter::Const(_) | Filter::Cmp(_) => (1, 1),
            Filter::And(c) | Filter::Or(c) => {
                let (mut depth, mut nodes) = (0, 1);
                for f in c {
                    let (d, n) = f.shape();
                    depth = depth.max(d);
                    nodes += n;
                }
                (depth + 1, nodes)
            }
            Filter::Not(f) => {
                let (d, n) = f.shape();
                (d + 1, n + 1)
            }
        }
    }

    /// The number of nodes (every filter node counts one).
    pub fn node_count(&self) -> usize {
        self.shape().1
    }

    /// The nesting depth (a single comparison is 1).
    pub fn depth(&self) -> usize {
        self.shape().0
    }

    /// Whether some comparison uses `op` (for example [`Op::Regex`], to refuse it where a
    /// filter's cost must stay the server's to choose).
    pub fn uses_op(&self, op: Op) -> bool {
        match self {
            Filter::Const(_) => false,
            Filter::Cmp(c) => c.op == op,
            Filter::And(c) | Filter::Or(c) => c.iter().any(|f| f.uses_op(op)),
            Filter::Not(f) => f.uses_op(op),
        }
    }
}

/// One comparison: `field op arg`.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The field, by its logical name.
    pub field: Ident,
    /// The operator.
    pub op: Op,
    /// The operand(s); the shape fits `op` (see [`Op::arity`]).
    pub arg: Operand,
    /// Where it came from, for error messages. Not part of equality.
    pub loc: Loc,
}

impl PartialEq for Comparison {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.op == other.op && self.arg == other.arg
    }
}

/// How many operands an operator takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// None (`is null`).
    Zero,
    /// One value (or, for `in`, a list or a list variable).
    One,
    /// Two values (`between a and b`).
    Two,
}

macro_rules! ops {
    ($( $(#[$doc:meta])* $v:ident = $json:literal, $text:literal, $arity:ident; )*) => {
        /// A comparison operator.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op { $( $(#[$doc])* $v, )* }

        impl Op {
            /// Every operator.
            pub const ALL: &'static [Op] = &[$(Op::$v),*];

            /// The JSON spelling (`_eq`).
            pub const fn json_name(self) -> &'static str { match self { $(Op::$v => $json,)* } }

            /// The text spelling (`=`, `not contains`).
            pub const fn text_name(self) -> &'static str { match self { $(Op::$v => $text,)* } }

            /// How many operands it takes.
            pub const fn arity(self) -> Arity { match self { $(Op::$v => Arity::$arity,)* } }

            /// The operator with JSON spelling `name`.
            pub fn from_json_name(name: &str) -> Option<Op> {
                match name { $($json => Some(Op::$v),)* _ => None }
            }
        }
    };
}

ops! {
    /// `=`
    Eq = "_eq", "=", One;
    /// `!=`
    Neq = "_neq", "!=", One;
    /// `<`
    Lt = "_lt", "<", One;
    /// `<=`
    Lte = "_lte", "<=", One;
    /// `>`
    Gt = "_gt", ">", One;
    /// `>=`
    Gte = "_gte", ">=", One;
    /// `in [..]`
    In = "_in", "in", One;
    /// `not in [..]`
    Nin = "_nin", "not in", One;
    /// `is null`
    Null = "_null", "is null", Zero;
    /// `is not null`
    NNull = "_nnull", "is not null", Zero;
    /// `is empty` (null or `""`)
    Empty = "_empty", "is empty", Zero;
    /// `is not empty`
    NEmpty = "_nempty", "is not empty", Zero;
    /// `contains` (case-sensitive substring)
    Contains = "_contains", "contains", One;
    /// `not contains`
    NContains = "_ncontains", "not contains", One;
    /// `icontains` (ASCII case-insensitive substring)
    IContains = "_icontains", "icontains", One;
    /// `not icontains`
    NIContains = "_nicontains", "not icontains", One;
    /// `starts_with`
    StartsWith = "_starts_with", "starts_with", One;
    /// `not starts_with`
    NStartsWith = "_nstarts_with", "not starts_with", One;
    /// `istarts_with`
    IStartsWith = "_istarts_with", "istarts_with", One;
    /// `not istarts_with`
    NIStartsWith = "_nistarts_with", "not istarts_with", One;
    /// `ends_with`
    EndsWith = "_ends_with", "ends_with", One;
    /// `not ends_with`
    NEndsWith = "_nends_with", "not ends_with", One;
    /// `iends_with`
    IEndsWith = "_iends_with", "iends_with", One;
    /// `not iends_with`
    NIEndsWith = "_niends_with", "not iends_with", One;
    /// `between a and b` (inclusive)
    Between = "_between", "between", Two;
    /// `not between a and b`
    NBetween = "_nbetween", "not between", Two;
    /// `matches "regex"` (matcher only; compile rejects it)
    Regex = "_regex", "matches", One;
}

impl Op {
    /// For a negated operator, the positive one (`Nin` → `In`); `None` for positive ones.
    pub const fn positive(self) -> Option<Op> {
        Some(match self {
            Op::Neq => Op::Eq,
            Op::Nin => Op::In,
            Op::NNull => Op::Null,
            Op::NEmpty => Op::Empty,
            Op::NContains => Op::Contains,
            Op::NIContains => Op::IContains,
            Op::NStartsWith => Op::StartsWith,
            Op::NIStartsWith => Op::IStartsWith,
            Op::NEndsWith => Op::EndsWith,
            Op::NIEndsWith => Op::IEndsWith,
            Op::NBetween => Op::Between,
            _ => return None,
        })
    }

    /// The negated form of a positive operator that has one (`In` → `Nin`).
    pub fn negated(self) -> Option<Op> {
        Op::ALL.iter().copied().find(|n| n.positive() == Some(self))
    }

    /// Whether this is one of the substring operators.
    pub const fn is_substring(self) -> bool {
        matches!(
            self,
            Op::Contains
                | Op::NContains
                | Op::IContains
                | Op::NIContains
                | Op::StartsWith
                | Op::NStartsWith
                | Op::IStartsWith
                | Op::NIStartsWith
                | Op::EndsWith
                | Op::NEndsWith
                | Op::IEndsWith
                | Op::NIEndsWith
        )
    }

    /// Whether a substring operator folds ASCII case.
    pub const fn is_case_insensitive(self) -> bool {
        matches!(
            self,
            Op::IContains
                | Op::NIContains
                | Op::IStartsWith
                | Op::NIStartsWith
                | Op::IEndsWith
                | Op::NIEndsWith
        )
    }

    /// Whether this is an ordering operator (`<`, `<=`, `>`, `>=`, `between`).
    pub const fn is_ordering(self) -> bool {
        matches!(
            self,
            Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::Between | Op::NBetween
        )
    }
}

/// The operands of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// None (`is null`).
    None,
    /// One value.
    One(Value),
    /// Two values (`between`).
    Two(Value, Value),
}

/// A literal or a variable.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (short ones are stored inline).
    Str(SmolStr),
    /// An integer.
    Int(i64),
    /// A decimal number (finite).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A list (for `in` / `not in`); its items are not lists.
    List(Vec<Value>),
    /// A variable, substituted when the filter is bound.
    Var(Var),
}

/// A variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Var {
    /// `$user.id` (Directus: `$CURRENT_USER`).
    UserId,
    /// `$user.email`.
    UserEmail,
    /// `$user.roles` (Directus: `$CURRENT_ROLES`), a list.
    UserRoles,
    /// `$user.<attr>`: an attribute the host put on the subject.
    UserAttr(Ident),
    /// `$tenant.id`.
    TenantId,
    /// `$now`, `$now(-1 day)` (Directus: `$NOW`, `$NOW(-1 day)`).
    Now(Option<Shift>),
}

/// A time adjustment of `$now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shift {
    /// How many units (negative: into the past).
    pub amount: i64,
    /// The unit.
    pub unit: Unit,
}

/// A unit of a [`Shift`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Seconds.
    Second,
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Days.
    Day,
    /// Weeks.
    Week,
    /// Calendar months (the day is clamped to the month's length).
    Month,
    /// Calendar years.
    Year,
}

impl Unit {
    /// Every unit.
    pub const ALL: [Unit; 7] = [
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Month,
        Unit::Year,
    ];

    /// The singular name.
    pub const fn singular(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }

    /// Parses a singular or plural unit name.
    pub fn from_name(s: &str) -> Option<Unit> {
        let s = s.strip_suffix('s').unwrap_or(s);
        Unit::ALL.into_iter().find(|u| u.singular() == s)
    }
}
