//! Security probes of the DSL (spec/security.md): SQL injection through values, hostile
//! identifiers, the filter oracle, null variables, and cost limits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use serde_json::json;
use workeros_core::{ErrorCode, Subject, User};
use workeros_dsl::{
    Dialect, ErrorKind, FieldSpec, Filter, Operand, Schema, Tri, Value, ValueKind, from_json, parse,
};
use workeros_tests::{strategies, table};

const CANARY: &str = "CANARY'\";--/*\\";
const CANARY_INT: i64 = 987_654_321_123;

/// Replaces every literal a field accepts as text or number with a canary.
fn canarize(f: &Filter) -> Filter {
    fn value(v: &Value, kind: ValueKind) -> Value {
        match (v, kind) {
            (Value::Str(_), ValueKind::Text) => {
                Value::Str(format!("{CANARY}{}", CANARY_INT).into())
            }
            (Value::Int(_), ValueKind::Integer | ValueKind::Number | ValueKind::Text) => {
                Value::Int(CANARY_INT)
            }
            (Value::Str(_), ValueKind::Integer) => Value::Str(CANARY_INT.to_string().into()),
            (Value::Float(_), ValueKind::Number) => Value::Float(CANARY_INT as f64 + 0.5),
            (Value::List(items), k) => Value::List(items.iter().map(|i| value(i, k)).collect()),
            (other, _) => other.clone(),
        }
    }
    match f {
        Filter::Const(_) => f.clone(),
        Filter::And(items) => Filter::And(items.iter().map(canarize).collect()),
        Filter::Or(items) => Filter::Or(items.iter().map(canarize).collect()),
        Filter::Not(inner) => Filter::Not(Box::new(canarize(inner))),
        Filter::Cmp(c) => {
            let kind = table::schema().get(c.field.as_str()).unwrap().kind();
            let arg = match &c.arg {
                Operand::None => Operand::None,
                Operand::One(v) => Operand::One(value(v, kind)),
                Operand::Two(a, b) => Operand::Two(value(a, kind), value(b, kind)),
            };
            Filter::cmp(c.field.clone(), c.op, arg)
        }
    }
}

fn canary_subject() -> Subject {
    let canary = format!("{CANARY}{CANARY_INT}");
    Subject::user(
        User::new(canary.clone())
            .with_email(canary.clone())
            .with_roles([canary.clone()])
            .with_attr("team", canary.clone())
            .with_attr("level", CANARY_INT)
            .with_attr("tags", vec![canary.clone()]),
    )
    .with_tenant(canary)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// A canary in every value position (literals and subject variables) never reaches SQL text.
    #[test]
    fn values_never_reach_sql_text(f in strategies::table_filter()) {
        let f = canarize(&f);
        let schema = table::schema();
        let bound = f.check(&schema).unwrap().bind(&canary_subject(), time::OffsetDateTime::now_utc());
        for d in [Dialect::Postgres, Dialect::Sqlite] {
            let sql = bound.compile(d).unwrap().to_sql();
            prop_assert!(!sql.sql().contains("CANARY"), "{}", sql.sql());
            prop_assert!(!sql.sql().contains(&CANARY_INT.to_string()), "{}", sql.sql());
        }
    }
}

#[test]
fn canary_values_are_bound_when_present() {
    // The positive control of the test above: the canary does travel, as a bound value.
    let f = parse(&format!(
        "t = \"{}\" && i = {CANARY_INT}",
        CANARY.replace('\\', "\\\\").replace('"', "\\\"")
    ))
    .unwrap();
    let bound = f
        .check(&table::schema())
        .unwrap()
        .bind(&canary_subject(), time::OffsetDateTime::now_utc());
    for d in [Dialect::Postgres, Dialect::Sqlite] {
        let sql = bound.compile(d).unwrap().to_sql();
        assert!(!sql.sql().contains("CANARY"));
        let values = serde_json::to_string(&sql.values_json()).unwrap();
        assert!(values.contains("CANARY"), "{values}");
        assert!(values.contains(&CANARY_INT.to_string()), "{values}");
    }
}

const HOSTILE: &[&str] = &[
    "a\"b",
    "a\"; DROP TABLE x; --",
    "a;b",
    "a'b",
    "a\\b",
    "a b",
    "a.b",
    "a-b",
    "1a",
    "",
    "é",
    "a\u{0}",
    "\u{202e}abc",
    "_and",
    "not",
];

#[test]
fn hostile_identifiers_are_refused() {
    let long = "a".repeat(64);
    for name in HOSTILE.iter().copied().chain([long.as_str()]) {
        let mut obj = serde_json::Map::new();
        obj.insert(name.to_owned(), json!({"_eq": 1}));
        let e = from_json(&serde_json::Value::Object(obj)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Validation, "{name:?}");
        assert!(parse(&format!("{name} = 1")).is_err(), "{name:?}");
        assert!(FieldSpec::new(name, ValueKind::Text).is_err(), "{name:?}");
        let var = format!("a = $user.{name}");
        assert!(parse(&var).is_err() || name.is_empty(), "{var:?}");
    }
    // At the maximum length, a name is accepted.
    assert!(parse(&format!("{} = 1", "a".repeat(63))).is_ok());
    // A well-formed name the schema does not have is refused by the checker.
    let e = parse("password_hash = 'x'")
        .unwrap()
        .check(&table::schema())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownField);
}

#[test]
fn unreadable_fields_cannot_be_filtered_on() {
    // The filter oracle: a filter on a hidden field is refused (403), not answered with rows.
    let mut schema = Schema::of([("title", ValueKind::Text)]).unwrap();
    schema
        .add(
            FieldSpec::new("password_hash", ValueKind::Text)
                .unwrap()
                .readable(false),
        )
        .unwrap();
    for src in [
        "password_hash starts_with '$argon2'",
        "title = 'x' || password_hash is null",
        "!(password_hash = 'x')",
    ] {
        let e = parse(src).unwrap().check(&schema).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Forbidden, "{src}");
    }
    let e =
        from_json(&json!({"_or": [{"title": {"_eq": "x"}}, {"password_hash": {"_nnull": true}}]}))
            .unwrap()
            .check(&schema)
            .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
}

#[test]
fn null_variables_never_match() {
    let schema = Schema::of([("owner_id", ValueKind::Text)]).unwrap();
    let anon = Subject::anonymous();
    for src in [
        "owner_id = $user.id",
        "!(owner_id = $user.id)",
        "owner_id != $user.id",
        "owner_id in [$user.id]",
        "owner_id not in [$user.id]",
    ] {
        let bound = parse(src)
            .unwrap()
            .check(&schema)
            .unwrap()
            .bind(&anon, time::OffsetDateTime::now_utc());
        assert_eq!(bound.constant(), Some(Tri::Unknown), "{src}");
        for row in [
            json!({"owner_id": null}),
            json!({}),
            json!({"owner_id": ""}),
        ] {
            assert!(!bound.matches(row.as_object().unwrap()), "{src} on {row}");
        }
    }
}

#[tokio::test]
async fn subject_values_cannot_widen_patterns() {
    // A NUL would end SQLite's LIKE/GLOB pattern early (`*\0*` reads as `*`): such a value is
    // unknown, on every path. So is a value past the string limit, and a list past the list limit.
    let schema = table::schema();
    let rows: Vec<_> = [
        json!({"id": 1, "t": "abc"}),
        json!({"id": 2, "t": "x\u{0}y"}),
        json!({"id": 3}),
    ]
    .into_iter()
    .map(|r| r.as_object().unwrap().clone())
    .collect();
    let backends = workeros_tests::backends().await;
    for b in &backends {
        table::create(b).await;
        // PostgreSQL cannot store NUL: only SQLite gets the row with one.
        let stored: Vec<_> = rows
            .iter()
            .filter(|r| b.dialect() == Dialect::Sqlite || r["id"] != 2)
            .cloned()
            .collect();
        table::insert(b, &stored).await;
    }
    let long = "a".repeat(workeros_dsl::limits::MAX_STRING_LEN + 1);
    let many: Vec<String> = (0..=workeros_dsl::limits::MAX_LIST_LEN)
        .map(|i| i.to_string())
        .collect();
    let user = User::new("u")
        .with_attr("nul", "\u{0}")
        .with_attr("nulmid", "b\u{0}zz")
        .with_attr("long", long)
        .with_attr("many", many);
    let subject = Subject::user(user);
    for src in [
        "t contains $user.nul",
        "t not contains $user.nul",
        "t icontains $user.nul",
        "t ends_with $user.nulmid",
        "t = $user.nul",
        "t contains $user.long",
        "t in $user.many",
        "t not in $user.many",
    ] {
        let bound = parse(src)
            .unwrap()
            .check(&schema)
            .unwrap()
            .bind(&subject, time::OffsetDateTime::now_utc());
        assert_eq!(bound.constant(), Some(Tri::Unknown), "{src}");
        for b in &backends {
            let ids = table::select_ids(b, bound.compile(b.dialect()).unwrap().into_expr())
                .await
                .unwrap();
            assert!(ids.is_empty(), "{}: {src} selected {ids:?}", b.name());
        }
    }
    // Literals with NUL are refused when checked, even in a tree built in code.
    let f = Filter::cmp(
        workeros_dsl::Ident::new("t").unwrap(),
        workeros_dsl::Op::Contains,
        Operand::One(Value::Str("\0".into())),
    );
    assert_eq!(f.check(&schema).unwrap_err().kind(), ErrorKind::Value);
    for b in backends {
        b.close().await;
    }
}

#[test]
fn cost_limits_hold_in_both_forms() {
    use workeros_dsl::limits::*;
    let ok_list = format!("a in [{}]", vec!["1"; MAX_LIST_LEN].join(","));
    assert!(parse(&ok_list).is_ok());
    let big_list = format!("a in [{}]", vec!["1"; MAX_LIST_LEN + 1].join(","));
    assert_eq!(parse(&big_list).unwrap_err().kind(), ErrorKind::Limit);
    let items: Vec<i64> = (0..=MAX_LIST_LEN as i64).collect();
    assert_eq!(
        from_json(&json!({"a": {"_in": items}})).unwrap_err().kind(),
        ErrorKind::Limit
    );

    let ok_str = format!("a = \"{}\"", "x".repeat(MAX_STRING_LEN));
    assert!(parse(&ok_str).is_ok());
    let long = "x".repeat(MAX_STRING_LEN + 1);
    assert_eq!(
        parse(&format!("a = \"{long}\"")).unwrap_err().kind(),
        ErrorKind::Limit
    );
    assert_eq!(
        from_json(&json!({"a": {"_eq": long}})).unwrap_err().kind(),
        ErrorKind::Limit
    );

    let mut deep = json!({"a": {"_eq": 1}});
    for _ in 0..MAX_DEPTH {
        deep = json!({"_not": deep});
    }
    assert_eq!(from_json(&deep).unwrap_err().kind(), ErrorKind::Limit);
    let deep_text = format!("{}a = 1", "!".repeat(MAX_DEPTH));
    assert_eq!(parse(&deep_text).unwrap_err().kind(), ErrorKind::Limit);
    let ok_deep = format!("{}a = 1", "!".repeat(MAX_DEPTH - 1));
    assert!(parse(&ok_deep).is_ok());
    // A stack-overflow attempt far past the limit is an error too, not a crash.
    assert_eq!(
        parse(&"(".repeat(MAX_TEXT_LEN)).unwrap_err().kind(),
        ErrorKind::Limit
    );

    let wide = vec!["a = 1"; MAX_NODES].join(" && ");
    assert_eq!(parse(&wide).unwrap_err().kind(), ErrorKind::Limit);
    let too_long = " ".repeat(MAX_TEXT_LEN + 1);
    assert_eq!(parse(&too_long).unwrap_err().kind(), ErrorKind::Limit);
    assert_eq!(
        workeros_dsl::from_json_str(&too_long).unwrap_err().kind(),
        ErrorKind::Limit
    );
    // Trees built in code are held to the same limits when checked.
    let mut f = parse("a = 1").unwrap();
    for _ in 0..MAX_DEPTH {
        f = Filter::Not(Box::new(f));
    }
    let schema = Schema::of([("a", ValueKind::Integer)]).unwrap();
    assert_eq!(f.check(&schema).unwrap_err().kind(), ErrorKind::Limit);
}
