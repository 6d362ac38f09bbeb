//! The DSL in a host's own query, as the `workeros-dsl` crate docs show it ("Filters in your own
//! queries"): the host joins its `orders` (alias `o`) to its `customers` (alias `c`), takes a
//! user's filter in the Directus JSON form and a permission rule in the text form, checks both
//! against a schema whose fields are table-qualified columns of either table, and ANDs the
//! compiled conditions (bound values only) into its own sea-query statement. The same filters
//! matched in memory against the joined rows select the same orders, on SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sea_query::{Alias, ColumnDef, Expr, ExprTrait, Order, Query, Table};
use serde_json::json;
use workeros_core::{Subject, User};
use workeros_dsl::{FieldSpec, Schema, Source, ValueKind, from_json_str, parse};
use workeros_tests::Backend;

/// (id, customer, total, status, owner)
const ORDERS: &[(i64, i64, f64, &str, &str)] = &[
    (1, 10, 120.0, "paid", "alice"),
    (2, 10, 30.0, "paid", "alice"),
    (3, 20, 75.5, "open", "alice"),
    (4, 20, 220.0, "paid", "bob"),
    (5, 30, 99.0, "paid", "alice"),
    (6, 30, 51.0, "refunded", "alice"),
];

/// (id, name, country): customer 30's country is unknown.
const CUSTOMERS: &[(i64, &str, Option<&str>)] = &[
    (10, "Ann's shop", Some("DE")),
    (20, "Bo's bakery", Some("FR")),
    (30, "Cy & co. 50% off", None),
];

/// The fields a user may filter on, by the names the host shows, each a column of `o` or `c`.
fn schema() -> Schema {
    let col = |table: &str, column: &str| Source::Column {
        table: Some(table.to_owned()),
        column: column.to_owned(),
    };
    let mut s = Schema::new();
    for (name, kind, table, column) in [
        ("id", ValueKind::Integer, "o", "id"),
        ("total", ValueKind::Number, "o", "total"),
        ("status", ValueKind::Text, "o", "status"),
        ("owner_id", ValueKind::Text, "o", "owner"),
        ("customer_name", ValueKind::Text, "c", "name"),
        ("country", ValueKind::Text, "c", "country"),
    ] {
        s.add(
            FieldSpec::new(name, kind)
                .unwrap()
                .source(col(table, column)),
        )
        .unwrap();
    }
    s
}

async fn setup(b: &Backend) {
    let col = |n: &str| ColumnDef::new(Alias::new(n));
    b.ddl(
        &Table::create()
            .table(Alias::new("customers"))
            .col(col("id").big_integer().primary_key())
            .col(col("name").text().not_null())
            .col(col("country").text())
            .to_owned(),
    )
    .await;
    b.ddl(
        &Table::create()
            .table(Alias::new("orders"))
            .col(col("id").big_integer().primary_key())
            .col(col("customer_id").big_integer().not_null())
            .col(col("total").double().not_null())
            .col(col("status").text().not_null())
            .col(col("owner").text().not_null())
            .to_owned(),
    )
    .await;
    for (id, name, country) in CUSTOMERS {
        b.exec(
            &Query::insert()
                .into_table(Alias::new("customers"))
                .columns(["id", "name", "country"].map(Alias::new))
                .values_panic([Expr::val(*id), Expr::val(*name), Expr::val(*country)])
                .to_owned(),
        )
        .await;
    }
    for (id, customer, total, status, owner) in ORDERS {
        b.exec(
            &Query::insert()
                .into_table(Alias::new("orders"))
                .columns(["id", "customer_id", "total", "status", "owner"].map(Alias::new))
                .values_panic([
                    Expr::val(*id),
                    Expr::val(*customer),
                    Expr::val(*total),
                    Expr::val(*status),
                    Expr::val(*owner),
                ])
                .to_owned(),
        )
        .await;
    }
}

/// The host's query: its orders joined to their customers, narrowed by `cond`.
fn orders_where(cond: sea_query::Expr) -> sea_query::SelectStatement {
    let (o, c) = (Alias::new("o"), Alias::new("c"));
    Query::select()
        .column((o.clone(), Alias::new("id")))
        .from_as(Alias::new("orders"), o.clone())
        .join_as(
            sea_query::JoinType::InnerJoin,
            Alias::new("customers"),
            c.clone(),
            Expr::col((o.clone(), Alias::new("customer_id"))).equals((c, Alias::new("id"))),
        )
        .and_where(cond)
        .order_by((o, Alias::new("id")), Order::Asc)
        .to_owned()
}

/// The joined rows as the matcher sees them, keyed by the schema's field names.
fn joined() -> Vec<(i64, serde_json::Map<String, serde_json::Value>)> {
    ORDERS
        .iter()
        .map(|(id, customer, total, status, owner)| {
            let (_, name, country) = CUSTOMERS.iter().find(|c| c.0 == *customer).unwrap();
            let row = json!({"id": id, "total": total, "status": status, "owner_id": owner,
                             "customer_name": name, "country": country});
            (*id, row.as_object().unwrap().clone())
        })
        .collect()
}

#[tokio::test]
async fn a_users_filter_in_the_hosts_own_join_agrees_with_the_matcher() {
    let schema = schema();
    let alice = Subject::user(User::new("alice"));
    let now = time::OffsetDateTime::now_utc();
    // The permission the host grants: a user sees their own orders.
    let rule = parse("owner_id = $user.id")
        .unwrap()
        .check(&schema)
        .unwrap()
        .bind(&alice, now);
    // Filters a client sends (`?filter=…`), with what the rule leaves of them.
    let cases: [(&str, &[i64]); 6] = [
        (r#"{"country": {"_eq": "DE"}}"#, &[1, 2]),
        (
            r#"{"total": {"_gte": 50}, "status": {"_eq": "paid"}}"#,
            &[1, 5],
        ),
        (r#"{"country": {"_neq": "DE"}}"#, &[3]),
        (r#"{"country": {"_null": true}}"#, &[5, 6]),
        (r#"{"customer_name": {"_contains": "50%"}}"#, &[5, 6]),
        (
            r#"{"_or": [{"country": {"_in": ["FR"]}}, {"total": {"_lt": 40}}]}"#,
            &[2, 3],
        ),
    ];
    let backends = workeros_tests::backends().await;
    for b in &backends {
        setup(b).await;
    }
    for (filter, expected) in cases {
        let user = from_json_str(filter)
            .unwrap()
            .check(&schema)
            .unwrap()
            .bind(&alice, now);
        let in_memory: Vec<i64> = joined()
            .into_iter()
            .filter(|(_, row)| user.matches(row) && rule.matches(row))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(in_memory, expected, "matcher: {filter}");
        for b in &backends {
            let d = b.dialect();
            let cond = user
                .compile(d)
                .unwrap()
                .into_expr()
                .and(rule.compile(d).unwrap().into_expr());
            let q = orders_where(cond);
            let got = b.ids(&q).await.unwrap();
            assert_eq!(got, expected, "{}: {filter}", b.name());
            // Columns come qualified; the client's values never reach the SQL text.
            let (sql, _) = match d {
                workeros_dsl::Dialect::Postgres => q.build(sea_query::PostgresQueryBuilder),
                workeros_dsl::Dialect::Sqlite => q.build(sea_query::SqliteQueryBuilder),
            };
            assert!(sql.contains(r#""o"."owner""#), "{sql}");
            for literal in ["'DE'", "'FR'", "'paid'", "'%50!%%'", "'alice'"] {
                assert!(!sql.contains(literal), "{literal} is bound, not in {sql}");
            }
        }
    }
    // A field the schema does not have is refused before any SQL is made.
    let err = from_json_str(r#"{"password": {"_eq": "x"}}"#)
        .unwrap()
        .check(&schema)
        .unwrap_err();
    assert!(err.to_string().contains("password"), "{err}");
    for b in backends {
        b.close().await;
    }
}
