//! Logical → physical mapping, on SQLite and PostgreSQL: aliased columns (`created_at` stored as
//! `inserted_at`, read as `createdAt` by the matcher) and the owner of an adopted row kept in a
//! side table (`item_ownership`), compiled to a correlated subquery with exact null semantics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sea_query::{Alias, ColumnDef, Expr, Query, Table};
use serde_json::json;
use workeros_core::{Subject, User};
use workeros_dsl::{FieldSpec, OwnerLookup, Schema, Source, ValueKind, parse};
use workeros_tests::Backend;

fn schema() -> Schema {
    let mut s = Schema::new();
    s.add(FieldSpec::new("sku", ValueKind::Text).unwrap())
        .unwrap();
    s.add(
        FieldSpec::new("created_at", ValueKind::Text)
            .unwrap()
            .column("inserted_at")
            .key("createdAt"),
    )
    .unwrap();
    s.alias("createdAt", "created_at").unwrap();
    s.add(
        FieldSpec::new("owner_id", ValueKind::Text)
            .unwrap()
            .key("ownerId")
            .source(Source::Owner(OwnerLookup {
                table: "item_ownership".into(),
                table_schema: None,
                collection_column: "collection".into(),
                item_column: "item_id".into(),
                owner_column: "owner_id".into(),
                collection: "products".into(),
                scope: None,
                outer_table: "legacy_products".into(),
                outer_pk: "sku".into(),
            })),
    )
    .unwrap();
    s.alias("ownerId", "owner_id").unwrap();
    s
}

/// (sku, inserted_at, owner in item_ownership for "products")
const ROWS: &[(&str, &str, Option<&str>)] = &[
    ("a1", "2024-01-01", Some("alice")),
    ("b2", "2024-02-01", Some("bob")),
    ("c3", "2024-03-01", None),
    ("d4", "2024-04-01", Some("alice")),
];

async fn setup(b: &Backend) {
    let text = |n: &str| ColumnDef::new(Alias::new(n)).text().to_owned();
    b.ddl(
        &Table::create()
            .table(Alias::new("legacy_products"))
            .col(text("sku").primary_key())
            .col(text("inserted_at"))
            .to_owned(),
    )
    .await;
    b.ddl(
        &Table::create()
            .table(Alias::new("item_ownership"))
            .col(text("collection"))
            .col(text("item_id"))
            .col(text("owner_id"))
            .to_owned(),
    )
    .await;
    for (sku, at, owner) in ROWS {
        b.exec(
            &Query::insert()
                .into_table(Alias::new("legacy_products"))
                .columns([Alias::new("sku"), Alias::new("inserted_at")])
                .values_panic([Expr::val(*sku), Expr::val(*at)])
                .to_owned(),
        )
        .await;
        if let Some(o) = owner {
            own(b, "products", sku, o).await;
        }
    }
    // Another collection's ownership row for the same key must not leak in.
    own(b, "orders", "c3", "alice").await;
}

async fn own(b: &Backend, collection: &str, item: &str, owner: &str) {
    b.exec(
        &Query::insert()
            .into_table(Alias::new("item_ownership"))
            .columns([
                Alias::new("collection"),
                Alias::new("item_id"),
                Alias::new("owner_id"),
            ])
            .values_panic([Expr::val(collection), Expr::val(item), Expr::val(owner)])
            .to_owned(),
    )
    .await;
}

async fn skus(b: &Backend, cond: Expr) -> Vec<String> {
    let q = Query::select()
        .expr(Expr::col((
            Alias::new("legacy_products"),
            Alias::new("sku"),
        )))
        .from(Alias::new("legacy_products"))
        .and_where(cond)
        .order_by(
            (Alias::new("legacy_products"), Alias::new("sku")),
            sea_query::Order::Asc,
        )
        .to_owned();
    b.texts(&q).await.unwrap()
}

#[tokio::test]
async fn aliases_and_owner_lookups_agree_with_the_matcher() {
    let schema = schema();
    let alice = Subject::user(User::new("alice"));
    let cases = [
        ("owner_id = $user.id", alice.clone(), vec!["a1", "d4"]),
        ("ownerId = $user.id", alice.clone(), vec!["a1", "d4"]),
        ("owner_id != $user.id", alice.clone(), vec!["b2"]),
        ("!(owner_id = $user.id)", alice.clone(), vec!["b2"]),
        ("owner_id is null", alice.clone(), vec!["c3"]),
        ("owner_id = $user.id", Subject::anonymous(), vec![]),
        ("!(owner_id = $user.id)", Subject::anonymous(), vec![]),
        (
            "owner_id in ['bob', 'carol'] || createdAt >= '2024-04-01'",
            alice.clone(),
            vec!["b2", "d4"],
        ),
        (
            "created_at < '2024-02-15' && owner_id is not null",
            alice.clone(),
            vec!["a1", "b2"],
        ),
    ];
    let backends = workeros_tests::backends().await;
    for b in &backends {
        setup(b).await;
    }
    for (src, subject, expected) in cases {
        let bound = parse(src)
            .unwrap()
            .check(&schema)
            .unwrap()
            .bind(&subject, time::OffsetDateTime::now_utc());
        let matched: Vec<&str> = ROWS
            .iter()
            .filter(|(sku, at, owner)| {
                let row = json!({"sku": sku, "createdAt": at, "ownerId": owner});
                bound.matches(row.as_object().unwrap())
            })
            .map(|r| r.0)
            .collect();
        assert_eq!(matched, expected, "matcher: {src}");
        for b in &backends {
            let got = skus(b, bound.compile(b.dialect()).unwrap().into_expr()).await;
            assert_eq!(got, expected, "{}: {src}", b.name());
        }
    }
    for b in backends {
        b.close().await;
    }
}
