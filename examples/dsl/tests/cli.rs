//! The `example-dsl` interface, end to end: its commands, outputs and exit codes, and its `sql`
//! output run as `SELECT id FROM t WHERE <sql>` on SQLite and PostgreSQL, agreeing with its
//! `match --rows` output and with the corpus's expected ids.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value as Json, json};
use sqlx::{AssertSqlSafe, Row};
use std::process::Command;
use workeros_tests::{Backend, table};

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_example-dsl"))
        .args(args)
        .output()
        .expect("run example-dsl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn fmt_prints_both_forms() {
    let (code, out, _) = cli(&[
        "fmt",
        r#"{"a": {"_eq": 1}, "b": {"_in": ["x", "$CURRENT_USER"]}}"#,
    ]);
    assert_eq!(code, 0);
    assert_eq!(out, r#"a = 1 && b in ["x", $user.id]"#);
    let (code, out, _) = cli(&["fmt", "--json", "!(a is null) || b between 1 and 2"]);
    assert_eq!(code, 0);
    let v: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({"_or": [{"_not": {"a": {"_null": true}}}, {"b": {"_between": [1, 2]}}]})
    );
}

#[test]
fn sql_prints_sql_and_values() {
    let schema = r#"{"fields": {"owner_id": "text", "views": "integer", "at": "timestamp", "tags": "text"}}"#;
    let args = |d| {
        vec![
            "sql",
            "--dialect",
            d,
            "--schema",
            schema,
            "--subject",
            r#"{"user": {"id": "u1", "roles": ["a", "b"]}}"#,
            "--now",
            "2024-06-15T12:00:00+02:00",
            "owner_id = $user.id && views > 10 && at > $now(-1 day) && tags in $user.roles",
        ]
    };
    let expected = [
        (
            "postgres",
            r#""owner_id" = $1 AND "views" > $2 AND "at" > CAST($3 AS timestamptz) AND "tags" = ANY(CAST($4 AS text[]))"#,
            json!(["u1", 10, "2024-06-14T10:00:00.000000Z", ["a", "b"]]),
        ),
        (
            "sqlite",
            r#""owner_id" = ? AND "views" > ? AND "at" > ? AND "tags" IN (?, ?)"#,
            json!(["u1", 10, "2024-06-14T10:00:00.000000Z", "a", "b"]),
        ),
    ];
    for (dialect, sql, values) in expected {
        let (code, out, err) = cli(&args(dialect));
        assert_eq!(code, 0, "{dialect}: {err}");
        let v: Json = serde_json::from_str(&out).unwrap();
        assert_eq!(v["sql"], sql, "{dialect}");
        assert_eq!(v["values"], values, "{dialect}");
    }
}

#[test]
fn match_prints_booleans() {
    let (code, out, _) = cli(&["match", "--row", r#"{"a": 5}"#, "a > 2"]);
    assert_eq!((code, out.as_str()), (0, "true"));
    let (code, out, _) = cli(&["match", "--rows", r#"[{"a": 5}, {"a": 1}, {}]"#, "a > 2"]);
    assert_eq!((code, out.as_str()), (0, "[true,false,false]"));
    let (code, out, _) = cli(&[
        "match",
        "--schema",
        r#"{"fields": {"o": "text"}}"#,
        "--row",
        r#"{"o": "u1"}"#,
        "o = $user.id",
    ]);
    assert_eq!((code, out.as_str()), (0, "false"), "anonymous by default");
    let (code, out, _) = cli(&[
        "match",
        "--subject",
        r#"{"user": {"id": "u1"}}"#,
        "--row",
        r#"{"o": "u1"}"#,
        r#"{"o": {"_eq": "$CURRENT_USER"}}"#,
    ]);
    assert_eq!((code, out.as_str()), (0, "true"));
    let (code, out, _) = cli(&[
        "match",
        "--now",
        "2024-01-01T00:00:00Z",
        "--schema",
        r#"{"fields": {"t": "timestamp"}}"#,
        "--row",
        r#"{"t": "2023-12-31T12:00:00Z"}"#,
        "t > $now(-1 day)",
    ]);
    assert_eq!((code, out.as_str()), (0, "true"));
}

#[test]
fn errors_exit_with_status_2() {
    for args in [
        vec!["fmt", "a == 1"],
        vec!["fmt", r#"{"a": {"_eq": null}}"#],
        vec!["sql", "--dialect", "postgres", r#"a matches "x""#],
        vec![
            "sql",
            "--dialect",
            "sqlite",
            "--schema",
            r#"{"fields": {"a": "integer"}}"#,
            r#"a = "abc""#,
        ],
        vec![
            "sql",
            "--dialect",
            "sqlite",
            "--schema",
            r#"{"fields": {"a": "integer"}}"#,
            "b = 1",
        ],
        vec!["sql", "--dialect", "oracle", "a = 1"],
        vec!["sql", "a = 1"],
        vec!["match", "a = 1"],
        vec!["match", "--row", "[1]", "a = 1"],
        vec!["match", "--now", "yesterday", "--row", "{}", "a = 1"],
        vec!["frobnicate"],
        vec![],
    ] {
        let (code, out, err) = cli(&args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(!err.trim().is_empty(), "{args:?}: no message");
    }
    let (_, _, err) = cli(&["fmt", r#"status == "x""#]);
    assert!(
        err.contains("expected an operator after field `status` at 1:8, found `==`"),
        "{err}"
    );
}

/// Runs the CLI's SQL as `SELECT id FROM dsl_rows WHERE <sql>`, binding the JSON values the way a
/// generic client would (strings as text).
async fn run_cli_sql(b: &Backend, out: &Json) -> Vec<i64> {
    let sql = format!(
        "SELECT id FROM {} WHERE {} ORDER BY id",
        table::TABLE,
        out["sql"].as_str().unwrap()
    );
    let values = out["values"].as_array().unwrap();
    match b {
        Backend::Sqlite(pool) => {
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for v in values {
                q = match v {
                    Json::String(s) => q.bind(s.clone()),
                    Json::Number(n) if n.is_i64() => q.bind(n.as_i64()),
                    Json::Number(n) => q.bind(n.as_f64()),
                    other => panic!("sqlite binds scalars only, got {other}"),
                };
            }
            q.fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        }
        Backend::Postgres { pool, .. } => {
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
            for v in values {
                q = match v {
                    Json::String(s) => q.bind(s.clone()),
                    Json::Number(n) if n.is_i64() => q.bind(n.as_i64()),
                    Json::Number(n) => q.bind(n.as_f64()),
                    Json::Bool(x) => q.bind(*x),
                    Json::Array(items) => match items.first() {
                        Some(Json::Number(_)) if items.iter().all(|i| i.is_i64()) => q.bind(
                            items
                                .iter()
                                .map(|i| i.as_i64().unwrap())
                                .collect::<Vec<_>>(),
                        ),
                        Some(Json::Number(_)) => q.bind(
                            items
                                .iter()
                                .map(|i| i.as_f64().unwrap())
                                .collect::<Vec<_>>(),
                        ),
                        Some(Json::Bool(_)) => q.bind(
                            items
                                .iter()
                                .map(|i| i.as_bool().unwrap())
                                .collect::<Vec<_>>(),
                        ),
                        _ => q.bind(
                            items
                                .iter()
                                .map(|i| i.as_str().unwrap().to_owned())
                                .collect::<Vec<_>>(),
                        ),
                    },
                    other => panic!("unexpected value {other}"),
                };
            }
            q.fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("{e}\n{sql}"))
                .iter()
                .map(|r| r.get(0))
                .collect()
        }
    }
}

#[tokio::test]
async fn sql_output_runs_and_agrees_with_match() {
    let corpus: Json =
        serde_json::from_str(include_str!("../../../tests/corpus/dsl.json")).unwrap();
    let rows: Vec<serde_json::Map<String, Json>> = corpus["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect();
    let rows_json = serde_json::to_string(&rows).unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert("id".into(), json!("integer"));
    for (name, t) in table::COLUMNS {
        fields.insert((*name).into(), json!(t.as_str()));
    }
    let schema = json!({"fields": fields}).to_string();
    let subject = corpus["subject"].to_string();
    let backends = workeros_tests::backends().await;
    for b in &backends {
        table::create(b).await;
        table::insert(b, &rows).await;
    }
    let mut checked = 0;
    for case in corpus["cases"].as_array().unwrap() {
        if case["only"] == "matcher" || case.get("subject").is_some() {
            continue;
        }
        let filter = match &case["f"] {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let now = case["now"]
            .as_str()
            .unwrap_or(corpus["now"].as_str().unwrap());
        let expected: Vec<i64> = serde_json::from_value(case["ids"].clone()).unwrap();
        let common = [
            "--schema",
            schema.as_str(),
            "--subject",
            subject.as_str(),
            "--now",
            now,
        ];
        let mut args = vec!["match"];
        args.extend(common);
        args.extend(["--rows", rows_json.as_str(), filter.as_str()]);
        let (code, out, err) = cli(&args);
        assert_eq!(code, 0, "{filter}: {err}");
        let flags: Vec<bool> = serde_json::from_str(&out).unwrap();
        let matched: Vec<i64> = rows
            .iter()
            .zip(flags)
            .filter(|(_, m)| *m)
            .map(|(r, _)| r["id"].as_i64().unwrap())
            .collect();
        assert_eq!(matched, expected, "match {filter}");
        for b in &backends {
            let dialect = if matches!(b, Backend::Sqlite(_)) {
                "sqlite"
            } else {
                "postgres"
            };
            let mut args = vec!["sql", "--dialect", dialect];
            args.extend(common);
            args.push(filter.as_str());
            let (code, out, err) = cli(&args);
            assert_eq!(code, 0, "{filter}: {err}");
            let out: Json = serde_json::from_str(&out).unwrap();
            assert_eq!(
                run_cli_sql(b, &out).await,
                expected,
                "{} {filter}: {out}",
                b.name()
            );
        }
        checked += 1;
    }
    eprintln!(
        "example-dsl: {checked} corpus filters through match and sql on {} backends",
        backends.len()
    );
    assert!(checked > 150);
    for b in backends {
        b.close().await;
    }
}
