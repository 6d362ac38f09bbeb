//! Runs one DSL operation N times, for instruction counting with callgrind (a measure that does
//! not move with the machine's load):
//!
//! ```text
//! cargo build --release -p workeros-benches --example dsl_ops
//! valgrind --tool=callgrind target/release/examples/dsl_ops match 10000
//! ```
//!
//! Instructions per operation = (total(N) − total(0)) / N.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use time::OffsetDateTime;
use workeros_benches::{FILTER_JSON, FILTER_TEXT, row_all_true, schema, subject};
use workeros_dsl::{CompileCache, Dialect, check_json, from_json, parse};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map_or("match", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let schema = schema();
    let subject = subject();
    let now = OffsetDateTime::now_utc();
    let json: serde_json::Value = serde_json::from_str(FILTER_JSON).unwrap();
    let checked = parse(FILTER_TEXT).unwrap().check(&schema).unwrap();
    let bound = checked.bind(&subject, now);
    let row = row_all_true();
    let row = row.as_object().unwrap();
    let resolved = schema.row(row);
    let cache = CompileCache::new(64);
    cache
        .compile(&checked, &subject, now, Dialect::Postgres)
        .unwrap();
    cache
        .compile(&checked, &subject, now, Dialect::Sqlite)
        .unwrap();
    for _ in 0..n {
        match op {
            "parse" => drop(black_box(parse(black_box(FILTER_TEXT)).unwrap())),
            "json" => drop(black_box(check_json(black_box(&json), &schema).unwrap())),
            "json_two_stage" => drop(black_box(
                from_json(black_box(&json)).unwrap().check(&schema).unwrap(),
            )),
            "bind" => drop(black_box(checked.bind(&subject, now))),
            "compile_pg" => drop(black_box(
                bound.compile(Dialect::Postgres).unwrap().to_sql(),
            )),
            "compile_sqlite" => drop(black_box(bound.compile(Dialect::Sqlite).unwrap().to_sql())),
            "cached_pg" => drop(black_box(
                cache
                    .compile(&checked, &subject, now, Dialect::Postgres)
                    .unwrap(),
            )),
            "cached_sqlite" => drop(black_box(
                cache
                    .compile(&checked, &subject, now, Dialect::Sqlite)
                    .unwrap(),
            )),
            "match" => assert!(bound.matches(black_box(row))),
            "match_row" => assert!(bound.matches_row(black_box(&resolved))),
            other => panic!("unknown op {other}"),
        }
    }
}
