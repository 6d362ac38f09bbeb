//! The matcher allocates nothing: counted with dhat's global allocator (heap statistics, no
//! timing). A test binary without the libtest harness, so that no other thread allocates while
//! the count is taken.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use time::OffsetDateTime;
use workeros_benches::{FILTER_TEXT, row_all_true, row_early_miss, schema, subject};
use workeros_dsl::parse;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    matching_does_not_allocate();
    println!("match_allocations: 0 allocations in 5,000 matches");
}

fn matching_does_not_allocate() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let checked = parse(FILTER_TEXT).unwrap().check(&schema()).unwrap();
    let bound = checked.bind(&subject(), OffsetDateTime::now_utc());
    let all = row_all_true();
    let all = all.as_object().unwrap();
    let miss = row_early_miss();
    let miss = miss.as_object().unwrap();
    // A row with a non-canonical timestamp takes the slow parsing path: it must not allocate either.
    let mut slow = all.clone();
    slow.insert("created_at".into(), "2099-01-01T01:00:00+01:00".into());
    // A wide row is looked up key by key instead of scanned: no allocation either.
    let mut wide = all.clone();
    for i in 0..40 {
        wide.insert(format!("extra{i:02}"), i.into());
    }

    let schema = schema();
    let checked_row = parse(FILTER_TEXT).unwrap().check(&schema).unwrap();
    let bound_row = checked_row.bind(&subject(), OffsetDateTime::now_utc());
    let resolved = schema.row(all);

    let before = dhat::HeapStats::get();
    let mut hits = 0;
    for _ in 0..1_000 {
        hits += usize::from(bound.matches(std::hint::black_box(all)));
        hits += usize::from(bound.matches(std::hint::black_box(miss)));
        hits += usize::from(bound.matches(std::hint::black_box(&slow)));
        hits += usize::from(bound.matches(std::hint::black_box(&wide)));
        hits += usize::from(bound_row.matches_row(std::hint::black_box(&resolved)));
    }
    let after = dhat::HeapStats::get();
    assert_eq!(hits, 4_000);
    dhat::assert_eq!(after.total_blocks - before.total_blocks, 0);
    dhat::assert_eq!(after.total_bytes - before.total_bytes, 0);
}
