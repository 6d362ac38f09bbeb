//! The differential test: random schema-valid filters × random rows (nulls, Unicode, wildcards,
//! extreme numbers) through the matcher, SQLite and PostgreSQL. For every filter the three give the
//! same TRUE set, and the rows where the filter is TRUE, where `not` of it is TRUE, and where it is
//! unknown partition the table.
//!
//! `WORKEROS_DSL_DIFF_CASES` sets the number of filters per backend (default 10,000);
//! `WORKEROS_DSL_DIFF_SEED` fixes the seed (printed at the start of every run).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Map, Value as Json};
use std::collections::BTreeSet;
use std::time::Instant;
use workeros_dsl::{Filter, Tri, parse};
use workeros_tests::{Backend, strategies, table};

const ROWS_PER_TABLE: usize = 64;
const CASES_PER_TABLE: usize = 1_000;

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn rng(seed: u64, stream: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&stream.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

#[derive(Default)]
struct Stats {
    cases: u64,
    queries: Vec<u64>,
    rows_true: u64,
    rows_false: u64,
    rows_unknown: u64,
}

async fn ids_where(
    b: &Backend,
    f: &Filter,
    subject: &workeros_core::Subject,
    now: time::OffsetDateTime,
) -> Result<BTreeSet<i64>, String> {
    let schema = table::schema();
    let bound = f
        .check(&schema)
        .map_err(|e| e.to_string())?
        .bind(subject, now);
    let expr = bound
        .compile(b.dialect())
        .map_err(|e| e.to_string())?
        .into_expr();
    Ok(table::select_ids(b, expr).await?.into_iter().collect())
}

#[test]
fn matcher_sqlite_and_postgres_agree() {
    let total = env_num("WORKEROS_DSL_DIFF_CASES").unwrap_or(10_000);
    let seed = env_num("WORKEROS_DSL_DIFF_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let backends = rt.block_on(workeros_tests::backends());
    let names: Vec<_> = backends.iter().map(Backend::name).collect();
    eprintln!(
        "differential: {total} filters per backend on {names:?}, seed {seed} (set WORKEROS_DSL_DIFF_SEED={seed} to replay)"
    );
    let now = time::OffsetDateTime::parse(
        strategies::NOW,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let schema = table::schema();
    let mut stats = Stats {
        queries: vec![0; backends.len()],
        ..Stats::default()
    };
    let started = Instant::now();
    let tables = total.div_ceil(CASES_PER_TABLE as u64);
    for epoch in 0..tables {
        let cases = (total - epoch * CASES_PER_TABLE as u64).min(CASES_PER_TABLE as u64);
        let mut row_runner = TestRunner::new_with_rng(Config::default(), rng(seed, 2 * epoch));
        let rows: Vec<Map<String, Json>> = strategies::rows(ROWS_PER_TABLE)
            .new_tree(&mut row_runner)
            .unwrap()
            .current();
        let all: BTreeSet<i64> = (1..=ROWS_PER_TABLE as i64).collect();
        rt.block_on(async {
            for b in &backends {
                table::create(b).await;
                table::insert(b, &rows).await;
            }
        });
        let config = Config {
            cases: u32::try_from(cases).unwrap(),
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, rng(seed, 2 * epoch + 1));
        let strategy = (strategies::table_filter(), strategies::subject());
        let stats_cell = std::cell::RefCell::new(&mut stats);
        let result = runner.run(&strategy, |(f, subject)| {
            // The text form round-trips on the way (the filter under test is the parsed one).
            let text = f.to_text();
            let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            proptest::prop_assert_eq!(&parsed, &f, "text round trip of {}", text);
            let checked = f
                .check(&schema)
                .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            let bound = checked.bind(&subject, now);
            let mut m_true = BTreeSet::new();
            let mut m_false = BTreeSet::new();
            let mut m_unknown = BTreeSet::new();
            for r in &rows {
                let id = r["id"].as_i64().unwrap();
                let by_slot = bound.eval_row(&schema.row(r));
                proptest::prop_assert_eq!(
                    by_slot,
                    bound.eval(r),
                    "indexed row differs for {}",
                    text
                );
                match by_slot {
                    Tri::True => m_true.insert(id),
                    Tri::False => m_false.insert(id),
                    Tri::Unknown => m_unknown.insert(id),
                };
            }
            let negated = Filter::Not(Box::new(f.clone()));
            for (n, b) in backends.iter().enumerate() {
                let (t, nt) = rt.block_on(async {
                    (
                        ids_where(b, &f, &subject, now).await,
                        ids_where(b, &negated, &subject, now).await,
                    )
                });
                let t = t.map_err(TestCaseError::fail)?;
                let nt = nt.map_err(TestCaseError::fail)?;
                stats_cell.borrow_mut().queries[n] += 2;
                proptest::prop_assert_eq!(
                    &t,
                    &m_true,
                    "{}: TRUE rows of {} for {:?}",
                    b.name(),
                    text,
                    subject
                );
                proptest::prop_assert_eq!(
                    &nt,
                    &m_false,
                    "{}: TRUE rows of not({}) for {:?}",
                    b.name(),
                    text,
                    subject
                );
                let unknown: BTreeSet<i64> = all
                    .difference(&t)
                    .copied()
                    .filter(|i| !nt.contains(i))
                    .collect();
                proptest::prop_assert!(
                    t.is_disjoint(&nt),
                    "{}: {} and its negation overlap",
                    b.name(),
                    text
                );
                proptest::prop_assert_eq!(
                    &unknown,
                    &m_unknown,
                    "{}: unknown rows of {}",
                    b.name(),
                    text
                );
            }
            let mut s = stats_cell.borrow_mut();
            s.cases += 1;
            s.rows_true += m_true.len() as u64;
            s.rows_false += m_false.len() as u64;
            s.rows_unknown += m_unknown.len() as u64;
            Ok(())
        });
        if let Err(e) = result {
            panic!(
                "divergence (seed {seed}, table {epoch}): {e}\nrows: {}",
                serde_json::to_string(&rows).unwrap()
            );
        }
        if tables > 10 && (epoch + 1) % (tables / 10).max(1) == 0 {
            eprintln!(
                "differential: {} of {total} filters, {:.0}s",
                stats.cases,
                started.elapsed().as_secs_f64()
            );
        }
    }
    rt.block_on(async {
        for b in backends {
            b.close().await;
        }
    });
    let rows = (stats.rows_true + stats.rows_false + stats.rows_unknown).max(1);
    eprintln!(
        "differential: {} filters × {ROWS_PER_TABLE} rows, 0 divergences; per backend {:?} queries; row outcomes TRUE {:.1}% FALSE {:.1}% UNKNOWN {:.1}%; {:.1}s",
        stats.cases,
        names.iter().zip(&stats.queries).collect::<Vec<_>>(),
        100.0 * stats.rows_true as f64 / rows as f64,
        100.0 * stats.rows_false as f64 / rows as f64,
        100.0 * stats.rows_unknown as f64 / rows as f64,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stats.cases, total);
}
