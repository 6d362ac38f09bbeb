//! The DSL corpus (`tests/corpus/dsl.json`): hand-written cases with expected ids, each run
//! through the matcher, SQLite and PostgreSQL; and the check that the corpus covers every
//! operator × field type pair it applies to.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Map, Value as Json};
use std::collections::BTreeSet;
use workeros_core::{FieldType, Subject};
use workeros_dsl::{ErrorKind, Filter, Op, ValueKind, applies, from_json, parse};
use workeros_tests::table;

struct Corpus {
    now: time::OffsetDateTime,
    subject: Subject,
    rows: Vec<Map<String, Json>>,
    cases: Vec<Json>,
}

fn corpus() -> Corpus {
    let text = include_str!("../corpus/dsl.json");
    let v: Json = serde_json::from_str(text).unwrap();
    let now = time::OffsetDateTime::parse(
        v["now"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    Corpus {
        now,
        subject: serde_json::from_value(v["subject"].clone()).unwrap(),
        rows: v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect(),
        cases: v["cases"].as_array().unwrap().clone(),
    }
}

fn filter_of(case: &Json) -> Filter {
    match &case["f"] {
        Json::String(s) => parse(s).unwrap_or_else(|e| panic!("{s}: {e}")),
        obj => from_json(obj).unwrap_or_else(|e| panic!("{obj}: {e}")),
    }
}

fn subject_of(case: &Json, default: &Subject) -> Subject {
    match &case["subject"] {
        Json::Null => default.clone(),
        Json::String(s) if s == "anonymous" => Subject::anonymous(),
        other => serde_json::from_value(other.clone()).unwrap(),
    }
}

fn now_of(case: &Json, default: time::OffsetDateTime) -> time::OffsetDateTime {
    case["now"].as_str().map_or(default, |s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    })
}

#[tokio::test]
async fn corpus_agrees_on_every_backend() {
    let c = corpus();
    let schema = table::schema();
    let backends = workeros_tests::backends().await;
    for b in &backends {
        table::create(b).await;
        table::insert(b, &c.rows).await;
    }
    let mut failures = Vec::new();
    let mut sql_runs = vec![0usize; backends.len()];
    for case in &c.cases {
        let expected: Vec<i64> = serde_json::from_value(case["ids"].clone()).unwrap();
        let f = filter_of(case);
        let checked = f
            .check(&schema)
            .unwrap_or_else(|e| panic!("{}: {e}", case["f"]));
        let bound = checked.bind(&subject_of(case, &c.subject), now_of(case, c.now));
        let got: Vec<i64> = c
            .rows
            .iter()
            .filter(|r| bound.matches(r))
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        if got != expected {
            failures.push(format!(
                "matcher: {} → {got:?}, expected {expected:?}",
                case["f"]
            ));
        }
        let matcher_only = case["only"] == "matcher";
        for (n, b) in backends.iter().enumerate() {
            match bound.compile(b.dialect()) {
                Err(e) if matcher_only => assert_eq!(e.kind(), ErrorKind::Unsupported),
                Err(e) => {
                    failures.push(format!("{}: {} does not compile: {e}", b.name(), case["f"]))
                }
                Ok(_) if matcher_only => {
                    failures.push(format!("{}: {} compiled", b.name(), case["f"]))
                }
                Ok(compiled) => {
                    sql_runs[n] += 1;
                    match table::select_ids(b, compiled.into_expr()).await {
                        Ok(ids) if ids == expected => {}
                        Ok(ids) => failures.push(format!(
                            "{}: {} → {ids:?}, expected {expected:?}",
                            b.name(),
                            case["f"]
                        )),
                        Err(e) => failures.push(format!("{}: {} failed: {e}", b.name(), case["f"])),
                    }
                }
            }
        }
    }
    for (b, n) in backends.iter().zip(&sql_runs) {
        eprintln!("corpus: {n} cases ran on {}", b.name());
    }
    for b in backends {
        b.close().await;
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn collect_pairs(f: &Filter, out: &mut BTreeSet<(String, String)>) {
    match f {
        Filter::Const(_) => {}
        Filter::And(items) | Filter::Or(items) => items.iter().for_each(|i| collect_pairs(i, out)),
        Filter::Not(inner) => collect_pairs(inner, out),
        Filter::Cmp(c) => {
            if let Some(t) = table::field_type(c.field.as_str()) {
                out.insert((c.op.json_name().to_owned(), t.as_str().to_owned()));
            }
        }
    }
}

#[test]
fn corpus_covers_every_operator_and_type() {
    let c = corpus();
    let mut covered = BTreeSet::new();
    for case in &c.cases {
        collect_pairs(&filter_of(case), &mut covered);
    }
    let mut missing = Vec::new();
    let mut total = 0;
    for t in FieldType::ALL {
        for op in Op::ALL {
            if applies(*op, ValueKind::from(t)) {
                total += 1;
                if !covered.contains(&(op.json_name().to_owned(), t.as_str().to_owned())) {
                    missing.push(format!("{} on {}", op.json_name(), t.as_str()));
                }
            }
        }
    }
    eprintln!(
        "corpus covers {}/{total} operator × type pairs",
        total - missing.len()
    );
    assert!(missing.is_empty(), "not covered: {missing:?}");
}
