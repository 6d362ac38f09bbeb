//! Property tests of the DSL front end: both forms round-trip every normal-form tree, neither
//! parser panics on any input, and the one-walk `check_json` agrees with `from_json` + `check`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use time::OffsetDateTime;
use workeros_core::Subject;
use workeros_dsl::{
    CheckedFilter, Dialect, Filter, check_json, from_json, from_json_str, parse, parse_any,
};
use workeros_tests::strategies::{any_filter, rows, subject, table_filter};
use workeros_tests::table;

/// `check_json` and `from_json` + `check` both fail, or both give filters that compile to the
/// same SQL and values and match the same rows the same way.
fn same_checked(
    json: &serde_json::Value,
    subject: &Subject,
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<(), TestCaseError> {
    let schema = table::schema();
    let direct = check_json(json, &schema);
    let staged = from_json(json).and_then(|f| f.check(&schema));
    let (direct, staged): (CheckedFilter, CheckedFilter) = match (direct, staged) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(_), Err(_)) => return Ok(()),
        (a, b) => {
            return Err(TestCaseError::fail(format!(
                "{json}: check_json {:?}, staged {:?}",
                a.err(),
                b.err()
            )));
        }
    };
    prop_assert_eq!(direct.variables(), staged.variables());
    prop_assert_eq!(direct.uses_regex(), staged.uses_regex());
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let (a, b) = (direct.bind(subject, now), staged.bind(subject, now));
    if !direct.uses_regex() {
        for d in [Dialect::Postgres, Dialect::Sqlite] {
            let (x, y) = (
                a.compile(d).unwrap().to_sql(),
                b.compile(d).unwrap().to_sql(),
            );
            prop_assert_eq!(x.sql(), y.sql());
            prop_assert_eq!(x.values_json(), y.values_json());
        }
    }
    for row in rows {
        prop_assert_eq!(a.eval(row), b.eval(row), "{} on {:?}", json, row);
    }
    Ok(())
}

fn within_limits(f: &Filter) -> bool {
    f.depth() <= workeros_dsl::limits::MAX_DEPTH
        && f.node_count() <= workeros_dsl::limits::MAX_NODES
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn text_round_trip(f in any_filter().prop_filter("limits", within_limits)) {
        let text = f.to_text();
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, f, "{}", text);
    }

    #[test]
    fn json_round_trip(f in any_filter().prop_filter("limits", within_limits)) {
        let json = f.to_json();
        let back = from_json(&json).map_err(|e| TestCaseError::fail(format!("{json}: {e}")))?;
        prop_assert_eq!(&back, &f, "{}", json);
        let back = from_json_str(&json.to_string()).map_err(|e| TestCaseError::fail(format!("{json}: {e}")))?;
        prop_assert_eq!(back, f);
    }

    #[test]
    fn both_forms_give_the_same_tree(f in table_filter()) {
        let from_text = parse(&f.to_text()).unwrap();
        let from_json = from_json(&f.to_json()).unwrap();
        prop_assert_eq!(from_text, from_json);
    }

    #[test]
    fn text_parser_never_panics(s in "\\PC{0,64}") {
        let _ = parse(&s);
        let _ = parse_any(&s);
    }

    #[test]
    fn text_parser_never_panics_on_near_misses(f in any_filter(), cut in 0usize..200, insert in "[\\[\\](){}!=<>&|$\"'\\\\ a-z0-9.,-]{0,3}") {
        // Mutated valid filters reach deep into the grammar.
        let text = f.to_text();
        let at = text.char_indices().map(|(i, _)| i).nth(cut % (text.chars().count() + 1)).unwrap_or(text.len());
        let mutated = format!("{}{}{}", &text[..at], insert, &text[at..]);
        let _ = parse(&mutated);
        let truncated = &text[..at];
        let _ = parse(truncated);
    }

    #[test]
    fn json_parser_never_panics(v in arb_json()) {
        let _ = from_json(&v);
        same_checked(&v, &Subject::anonymous(), &[])?;
    }

    #[test]
    fn check_json_agrees_with_parse_then_check(f in table_filter(), s in subject(), rs in rows(8)) {
        same_checked(&f.to_json(), &s, &rs)?;
    }

    #[test]
    fn check_json_agrees_on_any_tree(f in any_filter()) {
        same_checked(&f.to_json(), &Subject::anonymous(), &[])?;
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value as J, json};
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|i| json!(i)),
        any::<f64>().prop_map(|x| json!(x)),
        prop::sample::select(vec![
            "$user.id",
            "$NOW(-1 day)",
            "$now(",
            "$CURRENT_USER.x.y",
            "$x",
            "",
            "a"
        ])
        .prop_map(|s| J::String(s.into())),
        "\\PC{0,8}".prop_map(J::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        let keys = prop::sample::select(vec![
            "_and", "_or", "_not", "_eq", "_in", "_between", "_null", "_regex", "_foo", "a", "b",
            "not", "a b",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Array),
            prop::collection::btree_map(keys, inner, 0..4)
                .prop_map(|m| J::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}
