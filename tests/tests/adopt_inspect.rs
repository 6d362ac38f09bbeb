//! The adopt wizard's first two steps on SQLite and PostgreSQL: Chinook (a schema nobody here
//! wrote) listed and inspected table by table, hostile names kept verbatim or reported, views,
//! key-less, partitioned and odd-typed tables reported, workeros' own tables hidden, and who may
//! adopt.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::http::StatusCode;
use serde_json::json;
use workeros_adopt::{AdoptError, Inspection};
use workeros_core::roles::AUTHENTICATED;
use workeros_core::{ErrorCode, FieldType, Subject, User};
use workeros_tests::adopt::{exec, load_chinook, setup};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::stores::{dbs, system_table};

#[tokio::test]
async fn chinook_lists_and_inspects() {
    for t in dbs().await {
        let name = t.name();
        let pg = matches!(t.db.pool(), workeros_store::DbPool::Postgres(_));
        load_chinook(&t.db).await;
        let adopt = setup(&t).await;
        let tables = adopt.tables(&admin()).await.unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        let expected: Vec<&str> = if pg {
            vec![
                "album",
                "artist",
                "customer",
                "employee",
                "genre",
                "invoice",
                "invoice_line",
                "media_type",
                "playlist",
                "playlist_track",
                "track",
            ]
        } else {
            vec![
                "Album",
                "Artist",
                "Customer",
                "Employee",
                "Genre",
                "Invoice",
                "InvoiceLine",
                "MediaType",
                "Playlist",
                "PlaylistTrack",
                "Track",
            ]
        };
        assert_eq!(
            names, expected,
            "{name}: exactly Chinook, no workeros table"
        );
        assert!(tables.iter().all(|t| t.adoptable), "{name}");

        let mut reports: Vec<Inspection> = Vec::new();
        for table in &expected {
            let r = adopt.inspect(&admin(), table).await.unwrap();
            assert_eq!(r.table, *table);
            for c in &r.columns {
                assert!(
                    c.suggested_type.is_some(),
                    "{name}: {table}.{} `{}` unmapped",
                    c.name,
                    c.declared_type
                );
            }
            reports.push(r);
        }
        let composite = if pg {
            "playlist_track"
        } else {
            "PlaylistTrack"
        };
        for r in &reports {
            if r.table == composite {
                assert!(!r.adoptable, "{name}");
                let reason = r.reason.as_deref().unwrap();
                assert!(
                    reason.contains("composite primary keys are not supported"),
                    "{reason}"
                );
                assert_eq!(r.primary_key, None);
                assert_eq!(r.primary_key_columns.len(), 2);
            } else {
                assert!(r.adoptable, "{name}: {} {:?}", r.table, r.reason);
                assert!(r.primary_key.is_some(), "{name}: {}", r.table);
            }
        }
        // Names unmangled; types as the mapping table says.
        let album = &reports[0];
        let (id, title, artist) = if pg {
            ("album_id", "title", "artist_id")
        } else {
            ("AlbumId", "Title", "ArtistId")
        };
        assert_eq!(album.primary_key.as_deref(), Some(id));
        let cols: Vec<(&str, Option<FieldType>)> = album
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.suggested_type))
            .collect();
        assert_eq!(
            cols,
            [
                (id, Some(FieldType::Integer)),
                (title, Some(FieldType::Text)),
                (artist, Some(FieldType::Integer))
            ],
            "{name}"
        );
        assert!(album.columns[0].primary_key);
        let invoice = reports
            .iter()
            .find(|r| r.table.eq_ignore_ascii_case("invoice"))
            .unwrap();
        let types: Vec<_> = invoice
            .columns
            .iter()
            .filter_map(|c| c.suggested_type)
            .collect();
        assert!(
            types.contains(&FieldType::Timestamp) && types.contains(&FieldType::Number),
            "{name}: {types:?}"
        );

        // Foreign keys: eleven, one composite-free self reference, targets not yet collections.
        let total: usize = reports.iter().map(|r| r.foreign_keys.len()).sum();
        assert_eq!(total, 11, "{name}");
        let fk = &album.foreign_keys[0];
        assert_eq!(
            (fk.column.as_str(), fk.references_table.as_str()),
            (artist, if pg { "artist" } else { "Artist" })
        );
        assert_eq!(fk.references_column.as_deref(), Some(artist));
        assert!(!fk.composite && fk.target_collection.is_none());
        let employee = reports
            .iter()
            .find(|r| r.table.eq_ignore_ascii_case("employee"))
            .unwrap();
        let self_ref = &employee.foreign_keys[0];
        assert_eq!(
            self_ref.references_table, employee.table,
            "{name}: reports_to → employee"
        );
        assert_eq!(self_ref.column, if pg { "reports_to" } else { "ReportsTo" });
        assert_eq!(
            self_ref.references_column.as_deref(),
            Some(if pg { "employee_id" } else { "EmployeeId" })
        );
        t.close().await;
    }
}

#[tokio::test]
async fn odd_tables_and_hostile_names_are_reported_not_mangled() {
    for t in dbs().await {
        let name = t.name();
        let pg = matches!(t.db.pool(), workeros_store::DbPool::Postgres(_));
        let adopt = setup(&t).await;
        let long = "n".repeat(63);
        exec(&t.db, &format!(
            r#"CREATE TABLE "we""ird" ("id" integer PRIMARY KEY, "semi;colon" text, "with space" text, "Ünïcödé" text, "a
b" text);
               CREATE TABLE "drop table x; --" ("k" text PRIMARY KEY);
               CREATE TABLE "{long}" ("{long}" integer PRIMARY KEY);
               CREATE TABLE "tab
le" ("id" integer PRIMARY KEY);
               CREATE TABLE no_key (a integer, b text);
               CREATE TABLE legacy_orders (id {uuid} PRIMARY KEY, total numeric(10, 2) NOT NULL,
                 inserted_at {ts} NOT NULL, user_id text NOT NULL);
               CREATE TABLE reserved_clash (pk integer PRIMARY KEY, id text, owner_id integer, tenant_id text);
               CREATE VIEW order_totals AS SELECT id, total FROM legacy_orders;"#,
            uuid = if pg { "uuid" } else { "TEXT" },
            ts = if pg { "timestamptz" } else { "DATETIME" },
        ))
        .await;
        if pg {
            exec(&t.db, "CREATE TYPE mood AS ENUM ('ok', 'meh');
                CREATE TABLE odd_types (id bigint PRIMARY KEY, tags text[], m mood, blob bytea, d date);
                CREATE TABLE parted (id integer, at date) PARTITION BY RANGE (at);
                CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');").await;
        } else {
            exec(
                &t.db,
                "CREATE TABLE odd_types (id INTEGER PRIMARY KEY, anything, blob BLOB)",
            )
            .await;
        }
        let tables = adopt.tables(&admin()).await.unwrap();
        let get = |n: &str| {
            tables
                .iter()
                .find(|t| t.name == n)
                .unwrap_or_else(|| panic!("{name}: `{n}` not listed: {tables:?}"))
        };
        assert!(get("we\"ird").adoptable);
        assert!(get("drop table x; --").adoptable);
        assert!(get(&long).adoptable, "{name}: a 63-byte name");
        let view = get("order_totals");
        assert!(
            !view.adoptable
                && view
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains("views are not adoptable"),
            "{name}"
        );
        let nl = get("tab\nle");
        assert!(
            !nl.adoptable && nl.reason.as_deref().unwrap().contains("control characters"),
            "{name}"
        );
        if pg {
            let p = get("parted");
            assert!(
                !p.adoptable && p.reason.as_deref().unwrap().contains("partitioned"),
                "{name}"
            );
            assert!(
                tables.iter().all(|t| t.name != "parted_2024"),
                "{name}: partitions are not listed"
            );
        }

        // Inspect keeps every name verbatim and says what it cannot do.
        let r = adopt.inspect(&admin(), "we\"ird").await.unwrap();
        let cols: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            cols,
            ["id", "semi;colon", "with space", "Ünïcödé", "a\nb"],
            "{name}"
        );
        assert!(r.adoptable, "{name}: {:?}", r.reason);
        let nl_col = &r.columns[4];
        assert!(
            nl_col.suggested_type.is_none() && nl_col.warnings[0].starts_with("not adoptable"),
            "{name}"
        );
        let r = adopt.inspect(&admin(), &long).await.unwrap();
        assert_eq!(r.primary_key.as_deref(), Some(long.as_str()));
        let r = adopt.inspect(&admin(), "no_key").await.unwrap();
        assert!(
            !r.adoptable && r.reason.as_deref().unwrap().starts_with("no primary key"),
            "{name}"
        );
        assert_eq!(r.columns.len(), 2, "{name}: every column comes back");
        let r = adopt.inspect(&admin(), "order_totals").await.unwrap();
        assert!(!r.adoptable && r.columns.len() == 2, "{name}");

        // The worked example: alias suggestions by pattern and type.
        let r = adopt.inspect(&admin(), "legacy_orders").await.unwrap();
        assert!(r.adoptable, "{name}: {:?}", r.reason);
        assert_eq!(
            r.alias_suggestions.created_at.as_deref(),
            Some("inserted_at")
        );
        assert_eq!(r.alias_suggestions.updated_at, None);
        assert_eq!(r.alias_suggestions.owner_id.as_deref(), Some("user_id"));
        assert_eq!(
            r.columns[0].suggested_type,
            Some(if pg {
                FieldType::Uuid
            } else {
                FieldType::Longtext
            })
        );

        // Reserved names that do not fit their role are warned about.
        let r = adopt.inspect(&admin(), "reserved_clash").await.unwrap();
        let warn = |c: &str| {
            r.columns
                .iter()
                .find(|x| x.name == c)
                .unwrap()
                .warnings
                .join(" ")
        };
        assert!(warn("id").contains("must be the primary key"), "{name}");
        assert!(warn("owner_id").contains("conflicts"), "{name}");
        assert!(warn("tenant_id").contains("conflicts"), "{name}");

        // Unsupported types: flagged, the table still adoptable.
        let r = adopt.inspect(&admin(), "odd_types").await.unwrap();
        assert!(r.adoptable, "{name}: {:?}", r.reason);
        let unmapped: Vec<&str> = r
            .columns
            .iter()
            .filter(|c| c.suggested_type.is_none())
            .map(|c| c.name.as_str())
            .collect();
        if pg {
            assert_eq!(unmapped, ["tags", "m", "blob", "d"], "{name}");
        } else {
            assert_eq!(unmapped, ["anything", "blob"], "{name}");
        }
        assert!(
            r.columns[1].warnings[0].starts_with("unsupported type"),
            "{name}"
        );

        // workeros' own tables (in its namespace) and unknown tables are not there to inspect.
        let names = t.db.names();
        let ours = ["users", "sessions", "collections", "migrations"]
            .map(|n| names.physical(system_table(n)));
        for hidden in ours.iter().map(String::as_str).chain(["nope"]) {
            let e = adopt.inspect(&admin(), hidden).await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::NotFound, "{name}: {hidden}");
        }
        t.close().await;
    }
}

#[tokio::test]
async fn who_may_adopt_and_what_is_hidden() {
    for t in dbs().await {
        let name = t.name();
        let adopt = setup(&t).await;
        exec(
            &t.db,
            "CREATE TABLE products (sku text PRIMARY KEY, title text)",
        )
        .await;
        // A managed collection's table is hidden.
        let store = adopt.store().clone();
        store
            .create_collection(
                &admin(),
                serde_json::from_value(json!({"slug": "notes", "fields": []})).unwrap(),
            )
            .await
            .unwrap();
        let names: Vec<String> = adopt
            .tables(&admin())
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["products"], "{name}");
        let hidden = adopt.clone().with_hidden_tables(["products"]);
        assert!(hidden.tables(&admin()).await.unwrap().is_empty());

        let user = Subject::user(User::new("u1").with_roles([AUTHENTICATED]));
        let org_admin = admin().with_tenant("6ec0c939-0f11-4e6c-9127-9b41ea9329ce");
        for (s, code) in [
            (Subject::anonymous(), ErrorCode::Unauthorized),
            (user, ErrorCode::Forbidden),
            (org_admin, ErrorCode::Forbidden),
        ] {
            let e: AdoptError = adopt.tables(&s).await.unwrap_err();
            assert_eq!(e.code(), code, "{name}");
            assert_eq!(
                adopt.inspect(&s, "products").await.unwrap_err().code(),
                code
            );
        }

        // Over HTTP.
        let app = workeros_adopt::http::router(adopt.clone());
        let a = admin();
        let (s, v) = call(&app, Some(&a), "GET", "/api/admin/adopt/tables", None).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(
            v["data"][0],
            json!({"name": "products", "kind": "table", "adoptable": true})
        );
        let (s, v) = call(
            &app,
            Some(&a),
            "POST",
            "/api/admin/adopt/inspect",
            Some(json!({"table": "products"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"]["primaryKey"], "sku");
        assert_eq!(v["data"]["columns"][1]["suggestedType"], "longtext");
        assert_eq!(
            v["data"]["aliasSuggestions"],
            json!({"createdAt": null, "updatedAt": null, "ownerId": null})
        );
        let (s, _) = call(&app, None, "GET", "/api/admin/adopt/tables", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, v) = call(
            &app,
            Some(&a),
            "POST",
            "/api/admin/adopt/inspect",
            Some(json!({"table": "users"})),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}: {v}");
        let (s, _) = call(
            &app,
            Some(&a),
            "POST",
            "/api/admin/adopt/inspect",
            Some(json!({"tbl": "x"})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        t.close().await;
    }
}
