//! proptest strategies: rows of the DSL test table, subjects, schema-valid filters over the table,
//! and arbitrary filter trees (for round trips).

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value as Json, json};
use workeros_core::{FieldType, Subject, User};
use workeros_dsl::{Filter, Ident, Op, Operand, Shift, Unit, Value, ValueKind, Var, applies};

use crate::table::COLUMNS;

/// The instant the differential test binds filters at.
pub const NOW: &str = "2024-06-15T12:00:00Z";
/// [`NOW`] in microseconds.
pub const NOW_MICROS: i64 = 1_718_452_800_000_000;

const TEXTS: &[&str] = &[
    "",
    "a",
    "A",
    "b",
    "B",
    "ab",
    "aB",
    "Ab",
    "abc",
    "ABC",
    "%",
    "_",
    "\\",
    "!",
    "*",
    "?",
    "[",
    "]",
    "a%",
    "%a",
    "a_b",
    "a!b",
    "a*b",
    "[ab]",
    "é",
    "É",
    "ß",
    "ü",
    "Ü",
    "日本",
    " ",
    "a b",
    "\n",
    "\t",
    "z",
    "~",
    "\u{7f}",
    "\u{80}",
    "\u{10ffff}",
    "0",
    "10",
    "9",
    "-1",
    "a\\%",
];
const ALPHABET: &[char] = &[
    'a', 'A', 'b', 'B', '%', '_', '\\', '!', '*', '?', '[', ']', 'é', 'É', 'ü', '日', ' ', '0',
];
const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    10,
    -10,
    i64::MIN,
    i64::MAX,
    i64::MIN + 1,
    i64::MAX - 1,
    1 << 53,
    (1 << 53) + 1,
    -(1 << 53),
];
const FLOATS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    1.5,
    -1.5,
    0.1,
    0.2,
    0.300_000_000_000_000_04,
    1e308,
    -1e308,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    9_007_199_254_740_992.0,
    2.5,
    3.0,
    1e-10,
    123_456.789,
];
const UUIDS: &[&str] = &[
    "00000000-0000-4000-8000-000000000001",
    "00000000-0000-4000-8000-000000000002",
    "8f14e45f-ceea-467f-a8f7-7e4d2f3e2c1a",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
];
const DAY: i64 = 86_400_000_000;
const TS_MICROS: &[i64] = &[
    -62_135_596_800_000_000,
    253_402_300_799_999_999,
    0,
    NOW_MICROS,
    NOW_MICROS + 1,
    NOW_MICROS - 1,
    NOW_MICROS - DAY,
    NOW_MICROS + DAY,
    NOW_MICROS - 7 * DAY,
    NOW_MICROS - 31 * DAY,
    NOW_MICROS - 365 * DAY,
    NOW_MICROS + 500_000,
];

/// Text values: edge cases and short random strings over a hostile alphabet.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(TEXTS).prop_map(str::to_owned),
        2 => vec(select(ALPHABET), 0..5).prop_map(String::from_iter),
    ]
}

/// 64-bit integers: edges, small numbers, anything.
pub fn int() -> impl Strategy<Value = i64> {
    prop_oneof![3 => select(INTS), 2 => -5i64..5, 1 => any::<i64>()]
}

/// Finite doubles: edges, and normal, subnormal and zero values.
pub fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => select(FLOATS),
        1 => (-5i64..5).prop_map(|i| i as f64),
        1 => prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
    ]
}

/// Instants in microseconds, years 1 to 9999.
pub fn ts_micros() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => select(TS_MICROS),
        1 => -62_135_596_800_000_000i64..=253_402_300_799_999_999,
        1 => (NOW_MICROS - 400 * DAY)..(NOW_MICROS + 400 * DAY),
    ]
}

/// A wire timestamp: the canonical form, or sometimes another RFC 3339 spelling of the instant.
pub fn ts_wire() -> impl Strategy<Value = String> {
    (ts_micros(), 0..4u8).prop_map(|(m, form)| {
        let canonical = workeros_core::instant::rfc3339_micros(m).unwrap_or_default();
        if form == 0 && m % 1_000_000 == 0 && m > 0 {
            // Whole seconds, written with a +01:00 offset.
            let t = time::OffsetDateTime::from_unix_timestamp(m / 1_000_000)
                .unwrap()
                .to_offset(time::UtcOffset::from_hms(1, 0, 0).unwrap());
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        } else {
            canonical
        }
    })
}

/// A uuid.
pub fn uuid() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(UUIDS).prop_map(str::to_owned),
        1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).hyphenated().to_string()),
    ]
}

fn json_cell() -> impl Strategy<Value = Json> {
    select(vec![
        json!(""),
        json!([]),
        json!({}),
        json!(0),
        json!(false),
        json!("x"),
        json!([1]),
        json!({"a": 1}),
        json!([null]),
        json!({"a": []}),
    ])
}

/// A wire value of field type `t` (never null).
pub fn cell(t: FieldType) -> BoxedStrategy<Json> {
    match ValueKind::from(t) {
        ValueKind::Text => text().prop_map(Json::String).boxed(),
        ValueKind::Integer => int().prop_map(Json::from).boxed(),
        ValueKind::Number => float().prop_map(Json::from).boxed(),
        ValueKind::Boolean => any::<bool>().prop_map(Json::Bool).boxed(),
        ValueKind::Json => json_cell().boxed(),
        ValueKind::Timestamp => ts_wire().prop_map(Json::String).boxed(),
        ValueKind::Uuid => uuid().prop_map(Json::String).boxed(),
    }
}

/// A row without its id: each column null one time in six.
pub fn row() -> impl Strategy<Value = Map<String, Json>> {
    let cells: Vec<BoxedStrategy<Json>> = COLUMNS
        .iter()
        .map(|(_, t)| prop_oneof![1 => Just(Json::Null), 5 => cell(*t)].boxed())
        .collect();
    cells.prop_map(|values| {
        COLUMNS
            .iter()
            .zip(values)
            .map(|((n, _), v)| ((*n).to_owned(), v))
            .collect()
    })
}

/// A table of `n` rows with ids 1..=n.
pub fn rows(n: usize) -> impl Strategy<Value = Vec<Map<String, Json>>> {
    vec(row(), n).prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.insert("id".into(), json!(i as i64 + 1));
                r
            })
            .collect()
    })
}

/// A subject: anonymous, or a user whose id, email, roles and attributes come from the value
/// pools (so that variables hit rows), sometimes of the wrong type.
pub fn subject() -> impl Strategy<Value = Subject> {
    let user = (
        text(),
        proptest::option::of(text()),
        vec(text(), 0..3),
        text(),
        prop_oneof![int().prop_map(Json::from), text().prop_map(Json::String)],
        vec(text(), 0..3),
        ts_wire(),
        proptest::option::of(text()),
    )
        .prop_map(|(id, email, roles, team, level, tags, when, tenant)| {
            let mut u = User::new(id)
                .with_roles(roles)
                .with_attr("team", team)
                .with_attr("level", level)
                .with_attr("tags", tags)
                .with_attr("when", when);
            u.email = email;
            let s = Subject::user(u);
            match tenant {
                Some(t) => s.with_tenant(t),
                None => s,
            }
        });
    prop_oneof![1 => Just(Subject::anonymous()), 3 => user]
}

fn attr(name: &str) -> Var {
    Var::UserAttr(Ident::new(name).unwrap())
}

fn shift() -> impl Strategy<Value = Option<Shift>> {
    proptest::option::of(
        (-400i64..400, select(&Unit::ALL[..])).prop_map(|(amount, unit)| Shift { amount, unit }),
    )
}

/// A literal or variable that checks against a field of `kind` (for a scalar position).
fn scalar(kind: ValueKind, in_list: bool) -> BoxedStrategy<Value> {
    let v = |var: Var| Just(Value::Var(var));
    match kind {
        ValueKind::Text => prop_oneof![
            6 => text().prop_map(|s| Value::Str(s.into())),
            1 => int().prop_map(Value::Int),
            1 => v(Var::UserId),
            1 => v(Var::UserEmail),
            1 => v(attr("team")),
            1 => v(Var::TenantId),
        ]
        .boxed(),
        ValueKind::Integer => prop_oneof![
            6 => int().prop_map(Value::Int),
            1 => int().prop_map(|i| Value::Str(i.to_string().into())),
            1 => (-5i64..5).prop_map(|i| Value::Float(i as f64)),
            1 => v(attr("level")),
            1 => v(Var::UserId),
        ]
        .boxed(),
        ValueKind::Number => prop_oneof![
            6 => float().prop_map(Value::Float),
            1 => int().prop_map(Value::Int),
            1 => v(attr("level")),
        ]
        .boxed(),
        ValueKind::Boolean => prop_oneof![
            4 => any::<bool>().prop_map(Value::Bool),
            1 => any::<bool>().prop_map(|b| Value::Str(b.to_string().into())),
            1 => (0i64..2).prop_map(Value::Int),
            1 => v(attr("team")),
        ]
        .boxed(),
        ValueKind::Timestamp if in_list => ts_wire().prop_map(|s| Value::Str(s.into())).boxed(),
        ValueKind::Timestamp => prop_oneof![
            4 => ts_wire().prop_map(|s| Value::Str(s.into())),
            2 => shift().prop_map(|s| Value::Var(Var::Now(s))),
            1 => v(attr("when")),
        ]
        .boxed(),
        ValueKind::Uuid => prop_oneof![
            5 => uuid().prop_map(|s| Value::Str(s.into())),
            1 => uuid().prop_map(|u| Value::Str(u.to_uppercase().into())),
            1 => v(Var::UserId),
        ]
        .boxed(),
        ValueKind::Json => Just(Value::Bool(true)).boxed(),
    }
}

fn operand(op: Op, kind: ValueKind) -> BoxedStrategy<Operand> {
    match op {
        Op::Null | Op::NNull | Op::Empty | Op::NEmpty => Just(Operand::None).boxed(),
        Op::Between | Op::NBetween => (scalar(kind, false), scalar(kind, false))
            .prop_map(|(a, b)| Operand::Two(a, b))
            .boxed(),
        Op::In | Op::Nin => {
            let list = vec(scalar(kind, true), 0..5)
                .prop_map(|items| Operand::One(Value::List(items)))
                .boxed();
            if kind == ValueKind::Text {
                prop_oneof![
                    4 => list,
                    1 => Just(Operand::One(Value::Var(Var::UserRoles))),
                    1 => Just(Operand::One(Value::Var(attr("tags")))),
                    1 => Just(Operand::One(Value::Var(attr("team")))),
                ]
                .boxed()
            } else {
                list
            }
        }
        _ => scalar(kind, false).prop_map(Operand::One).boxed(),
    }
}

/// A comparison on a column of the DSL test table that checks against its schema (no `matches`,
/// which runs only in memory).
pub fn comparison() -> impl Strategy<Value = Filter> {
    let fields: Vec<(&'static str, ValueKind)> = COLUMNS
        .iter()
        .map(|(n, t)| (*n, ValueKind::from(*t)))
        .chain(std::iter::once(("id", ValueKind::Integer)))
        .collect();
    select(fields).prop_flat_map(|(name, kind)| {
        let ops: Vec<Op> = Op::ALL
            .iter()
            .copied()
            .filter(|op| *op != Op::Regex && applies(*op, kind))
            .collect();
        (Just(name), select(ops)).prop_flat_map(move |(name, op)| {
            operand(op, kind).prop_map(move |arg| Filter::cmp(Ident::new(name).unwrap(), op, arg))
        })
    })
}

/// Combines leaves into normal-form trees with `and`, `or`, `not` and constants.
pub fn tree<S>(leaf: S) -> impl Strategy<Value = Filter>
where
    S: Strategy<Value = Filter> + 'static,
{
    let leaf = prop_oneof![10 => leaf, 1 => any::<bool>().prop_map(Filter::Const)];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            2 => vec(inner.clone(), 2..4).prop_map(Filter::And),
            2 => vec(inner.clone(), 2..4).prop_map(Filter::Or),
            1 => inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// A schema-valid filter over the DSL test table.
pub fn table_filter() -> impl Strategy<Value = Filter> {
    tree(comparison())
}

fn ident() -> impl Strategy<Value = Ident> {
    "[A-Za-z_][A-Za-z0-9_]{0,12}".prop_filter_map("reserved", |s| Ident::new(&s).ok())
}

fn any_var() -> impl Strategy<Value = Var> {
    prop_oneof![
        Just(Var::UserId),
        Just(Var::UserEmail),
        Just(Var::UserRoles),
        Just(Var::TenantId),
        ident()
            .prop_filter("builtin", |i| !["id", "email", "roles"]
                .contains(&i.as_str()))
            .prop_map(Var::UserAttr),
        (
            -1_000_000i64..=1_000_000,
            select(&Unit::ALL[..]),
            any::<bool>()
        )
            .prop_map(|(amount, unit, some)| Var::Now(some.then_some(Shift { amount, unit }))),
    ]
}

/// Any string without NUL, `$`-led ones included (the JSON printer escapes them as `$$`).
fn any_str() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[^\\x00]{0,8}",
        1 => prop::sample::select(vec!["$", "$$", "$user.id", "$CURRENT_USERP", "$now(", "$5"])
            .prop_map(str::to_owned),
    ]
}

fn any_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_str().prop_map(|s| Value::Str(s.into())),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        any_var().prop_map(Value::Var),
    ]
}

/// An arbitrary (not schema-checked) comparison: any identifier, operator and operand shape.
pub fn any_comparison() -> impl Strategy<Value = Filter> {
    (ident(), select(Op::ALL)).prop_flat_map(|(field, op)| {
        let arg: BoxedStrategy<Operand> = match op.arity() {
            workeros_dsl::Arity::Zero => Just(Operand::None).boxed(),
            workeros_dsl::Arity::Two => (any_scalar(), any_scalar())
                .prop_map(|(a, b)| Operand::Two(a, b))
                .boxed(),
            workeros_dsl::Arity::One => prop_oneof![
                3 => any_scalar().prop_map(Operand::One),
                1 => vec(any_scalar(), 0..4).prop_map(|l| Operand::One(Value::List(l))),
            ]
            .boxed(),
        };
        arg.prop_map(move |arg| Filter::cmp(field.clone(), op, arg))
    })
}

/// An arbitrary normal-form tree.
pub fn any_filter() -> impl Strategy<Value = Filter> {
    tree(any_comparison())
}
