//! DSL benches: text parse, JSON parse + check, bind, compile (uncached and cached), match.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use time::OffsetDateTime;
use workeros_benches::{FILTER_JSON, FILTER_TEXT, row_all_true, row_early_miss, schema, subject};
use workeros_dsl::{CompileCache, Dialect, check_json, from_json, from_json_str, parse};

fn benches(c: &mut Criterion) {
    let schema = schema();
    let subject = subject();
    let now = OffsetDateTime::now_utc();
    let json_value: serde_json::Value = serde_json::from_str(FILTER_JSON).unwrap();

    c.bench_function("dsl/parse_text_5_clauses", |b| {
        b.iter(|| parse(black_box(FILTER_TEXT)).unwrap())
    });
    c.bench_function("dsl/json_value_to_checked_5_clauses", |b| {
        b.iter(|| check_json(black_box(&json_value), &schema).unwrap())
    });
    c.bench_function("dsl/json_value_parse_then_check_5_clauses", |b| {
        b.iter(|| {
            from_json(black_box(&json_value))
                .unwrap()
                .check(&schema)
                .unwrap()
        })
    });
    c.bench_function("dsl/json_text_to_checked_5_clauses", |b| {
        b.iter(|| {
            from_json_str(black_box(FILTER_JSON))
                .unwrap()
                .check(&schema)
                .unwrap()
        })
    });
    let checked = parse(FILTER_TEXT).unwrap().check(&schema).unwrap();
    c.bench_function("dsl/bind_5_clauses", |b| {
        b.iter(|| checked.bind(black_box(&subject), now))
    });
    let bound = checked.bind(&subject, now);
    for (name, dialect) in [("postgres", Dialect::Postgres), ("sqlite", Dialect::Sqlite)] {
        c.bench_function(&format!("dsl/compile_uncached_{name}"), |b| {
            b.iter(|| bound.compile(black_box(dialect)).unwrap().to_sql())
        });
        c.bench_function(&format!("dsl/bind_and_compile_uncached_{name}"), |b| {
            b.iter(|| {
                checked
                    .bind(&subject, now)
                    .compile(black_box(dialect))
                    .unwrap()
                    .to_sql()
            })
        });
        let cache = CompileCache::new(1024);
        cache.compile(&checked, &subject, now, dialect).unwrap();
        c.bench_function(&format!("dsl/compile_cached_{name}"), |b| {
            b.iter(|| {
                cache
                    .compile(black_box(&checked), &subject, now, dialect)
                    .unwrap()
            })
        });
    }
    let all = row_all_true();
    let all = all.as_object().unwrap();
    let miss = row_early_miss();
    let miss = miss.as_object().unwrap();
    assert!(bound.matches(all));
    assert!(!bound.matches(miss));
    c.bench_function("dsl/match_5_clauses_all_true", |b| {
        b.iter(|| bound.matches(black_box(all)))
    });
    c.bench_function("dsl/match_5_clauses_early_miss", |b| {
        b.iter(|| bound.matches(black_box(miss)))
    });
    // The realtime shape: one event resolved once, then matched by many subscribers.
    let all_row = schema.row(all);
    let miss_row = schema.row(miss);
    assert!(bound.matches_row(&all_row));
    c.bench_function("dsl/match_row_5_clauses_all_true", |b| {
        b.iter(|| bound.matches_row(black_box(&all_row)))
    });
    c.bench_function("dsl/match_row_5_clauses_early_miss", |b| {
        b.iter(|| bound.matches_row(black_box(&miss_row)))
    });
    c.bench_function("dsl/resolve_row_5_fields", |b| {
        b.iter(|| schema.row(black_box(all)))
    });
}

criterion_group!(dsl, benches);
criterion_main!(dsl);
