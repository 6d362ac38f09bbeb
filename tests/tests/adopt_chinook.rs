//! Chinook (a schema nobody here wrote) adopted table by table on SQLite and PostgreSQL through
//! `POST /api/collections`, read back through the items API with the same rows and counts as a
//! direct SQL query, its foreign keys adopted as relations that refuse dangling values, and a
//! foreign key left as a plain field refused by the database itself (mapped to 422).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use workeros_adopt::Inspection;
use workeros_tests::adopt::{load_chinook, setup, texts};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::stores::dbs;

/// `InvoiceLine` → `invoice_line`; `media_type` stays.
fn slug_of(table: &str) -> String {
    let mut out = String::new();
    for (i, c) in table.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every row of an adopted collection through the items API, page by page, with the count.
async fn all_items(app: &Router, slug: &str) -> (Vec<Value>, u64) {
    let mut rows = Vec::new();
    let mut count = None;
    loop {
        let uri = format!(
            "/api/items/{slug}?limit=1000&offset={}&meta=count",
            rows.len()
        );
        let (s, v) = call(app, Some(&admin()), "GET", &uri, None).await;
        assert_eq!(s, StatusCode::OK, "{slug}: {v}");
        count.get_or_insert(v["meta"]["count"].as_u64().unwrap());
        let page = v["data"].as_array().unwrap().clone();
        let done = page.len() < 1000;
        rows.extend(page);
        if done {
            break;
        }
    }
    (rows, count.unwrap())
}

/// A JSON value as the text a direct `CAST(… AS TEXT)` gives (for keys and text columns).
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[tokio::test]
async fn chinook_adopts_and_reads_like_sql() {
    for t in dbs().await {
        let name = t.name();
        let pg = matches!(t.db.pool(), workeros_store::DbPool::Postgres(_));
        load_chinook(&t.db).await;
        let adopt = setup(&t).await;
        let store = adopt.store().clone();
        let app: Router = workeros_store::http::router(store.clone())
            .merge(workeros_adopt::http::router(adopt.clone()));

        let mut reports: Vec<Inspection> = Vec::new();
        for entry in adopt.tables(&admin()).await.unwrap() {
            reports.push(adopt.inspect(&admin(), &entry.name).await.unwrap());
        }
        let (invoice, customer_fk) = if pg {
            ("invoice", "customer_id")
        } else {
            ("Invoice", "CustomerId")
        };
        // Adopt in dependency order: a table once every foreign-key target is a collection.
        let mut adopted: Vec<String> = Vec::new();
        let adoptable: Vec<&Inspection> = reports.iter().filter(|r| r.adoptable).collect();
        assert_eq!(adoptable.len(), 10, "{name}: every single-key table");
        while adopted.len() < adoptable.len() {
            let before = adopted.len();
            for r in &adoptable {
                if adopted.contains(&r.table) {
                    continue;
                }
                let ready = r.foreign_keys.iter().all(|fk| {
                    fk.references_table == r.table || adopted.contains(&fk.references_table)
                });
                if !ready {
                    continue;
                }
                let pk = r.primary_key.clone().unwrap();
                let fields: Vec<Value> = r
                    .columns
                    .iter()
                    .filter(|c| c.name != pk)
                    .map(|c| {
                        let fk = r.foreign_keys.iter().find(|fk| fk.column == c.name);
                        match fk {
                            // One foreign key stays a plain integer: the database refuses for it.
                            Some(_) if r.table == invoice && c.name == customer_fk => {
                                json!({"name": c.name, "type": "integer"})
                            }
                            Some(fk) => json!({
                                "name": c.name,
                                "type": "relation",
                                "to": slug_of(&fk.references_table),
                            }),
                            None => json!({"name": c.name, "type": c.suggested_type.unwrap()}),
                        }
                    })
                    .collect();
                let body = json!({
                    "adopted": true,
                    "physicalTable": r.table,
                    "slug": slug_of(&r.table),
                    "pkColumn": pk,
                    "fields": fields,
                });
                let (s, v) =
                    call(&app, Some(&admin()), "POST", "/api/collections", Some(body)).await;
                assert_eq!(s, StatusCode::CREATED, "{name}: {}: {v}", r.table);
                assert_eq!(v["data"]["adopted"], true);
                assert_eq!(v["data"]["physicalTable"], r.table.as_str());
                adopted.push(r.table.clone());
            }
            assert!(adopted.len() > before, "{name}: foreign keys form a cycle");
        }
        // Once adopted, a table is no longer offered, and a second adoption is a conflict.
        let left: Vec<String> = adopt
            .tables(&admin())
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(
            left.len(),
            1,
            "{name}: only the composite-key table is left: {left:?}"
        );
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/collections",
            Some(json!({"adopted": true, "physicalTable": adopted[0], "slug": "again"})),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}: {v}");

        // Same rows and counts as SQL, every table, every row: the key and the first text column.
        for table in &adopted {
            let r = reports.iter().find(|r| &r.table == table).unwrap();
            let slug = slug_of(table);
            let pk = r.primary_key.clone().unwrap();
            // The first text column, or (`InvoiceLine` has none) the first other integer one.
            let text_col = [
                [
                    workeros_core::FieldType::Text,
                    workeros_core::FieldType::Longtext,
                ]
                .as_slice(),
                [workeros_core::FieldType::Integer].as_slice(),
            ]
            .iter()
            .find_map(|types| {
                r.columns
                    .iter()
                    .find(|c| c.name != pk && c.suggested_type.is_some_and(|t| types.contains(&t)))
            })
            .map(|c| c.name.clone())
            .unwrap();
            let direct = texts(
                &t.db,
                &format!(
                    r#"SELECT CAST("{pk}" AS TEXT) AS k, CAST("{text_col}" AS TEXT) AS v FROM "{table}" ORDER BY "{table}"."{pk}""#
                ),
            )
            .await;
            let (items, count) = all_items(&app, &slug).await;
            assert_eq!(count as usize, direct.len(), "{name}: {table} count");
            assert_eq!(items.len(), direct.len(), "{name}: {table} rows");
            for (item, row) in items.iter().zip(&direct) {
                assert_eq!(as_text(&item[&pk]), row[0], "{name}: {table} key");
                assert_eq!(
                    as_text(&item[&text_col]),
                    row[1],
                    "{name}: {table}.{text_col}"
                );
                // Names are the database's own: `AlbumId`, not `album_id` (SQLite).
                assert_eq!(
                    item.as_object().unwrap().len(),
                    r.columns.len(),
                    "{name}: {table}: one key per column"
                );
            }
        }

        // Names, types and values as the table has them.
        let (album, artist_id, title, album_id) = if pg {
            ("album", "artist_id", "title", "album_id")
        } else {
            ("Album", "ArtistId", "Title", "AlbumId")
        };
        let (s, v) = call(
            &app,
            Some(&admin()),
            "GET",
            &format!("/api/items/{}/1", slug_of(album)),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"][album_id], 1);
        assert_eq!(v["data"][title], "For Those About To Rock We Salute You");
        assert_eq!(v["data"][artist_id], 1);
        let date = if pg { "invoice_date" } else { "InvoiceDate" };
        let (s, v) = call(&app, Some(&admin()), "GET", "/api/items/invoice/1", None).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"][date], "2021-01-01T00:00:00.000000Z", "{name}");
        assert_eq!(
            v["data"][if pg { "total" } else { "Total" }],
            1.98,
            "{name}"
        );

        // Filters and sorts run in SQL on the real columns.
        let filter = format!(r#"{{"{artist_id}":{{"_eq":90}}}}"#);
        let (s, v) = call(
            &app,
            Some(&admin()),
            "GET",
            &format!("/api/items/album?meta=count&filter={}", urlencode(&filter)),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let direct = texts(
            &t.db,
            &format!(r#"SELECT CAST(COUNT(*) AS TEXT) FROM "{album}" WHERE "{artist_id}" = 90"#),
        )
        .await;
        assert_eq!(
            v["meta"]["count"].to_string(),
            direct[0][0].clone().unwrap(),
            "{name}"
        );
        assert!(v["meta"]["count"].as_u64().unwrap() > 1, "{name}");
        let ms = if pg { "milliseconds" } else { "Milliseconds" };
        let track = if pg { "track" } else { "Track" };
        let (s, v) = call(
            &app,
            Some(&admin()),
            "GET",
            &format!("/api/items/track?sort=-{ms}&limit=1"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        let direct = texts(
            &t.db,
            &format!(r#"SELECT CAST(MAX("{ms}") AS TEXT) FROM "{track}""#),
        )
        .await;
        assert_eq!(as_text(&v["data"][0][ms]), direct[0][0], "{name}");

        // Writes: the key is the body's, relations must exist, the key never changes.
        let items = "/api/items/album";
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            items,
            Some(json!({title: "x", artist_id: 1})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(v["error"]["field"], album_id, "{name}: {v}");
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            items,
            Some(json!({album_id: 900_001, title: "Dangling", artist_id: 999_999})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(v["error"]["field"], artist_id, "{name}: {v}");
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            items,
            Some(json!({album_id: 900_001, title: "Fresh", artist_id: 1})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["data"][album_id], 900_001, "{name}");
        let one = format!("{items}/900001");
        let (s, v) = call(
            &app,
            Some(&admin()),
            "PATCH",
            &one,
            Some(json!({title: "Renamed"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"][title], "Renamed");
        let (s, v) = call(
            &app,
            Some(&admin()),
            "PATCH",
            &one,
            Some(json!({album_id: 2})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        let (s, v) = call(
            &app,
            Some(&admin()),
            "PATCH",
            &one,
            Some(json!({artist_id: 999_999})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        let direct = texts(
            &t.db,
            &format!(r#"SELECT "{title}" FROM "{album}" WHERE "{album_id}" = 900001"#),
        )
        .await;
        assert_eq!(direct, vec![vec![Some("Renamed".to_owned())]], "{name}");
        let (s, _) = call(&app, Some(&admin()), "DELETE", &one, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        let (s, _) = call(&app, Some(&admin()), "GET", &one, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        let (s, _) = call(
            &app,
            Some(&admin()),
            "GET",
            &format!("{items}/not-a-number"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");

        // A self reference (employee → employee).
        let (emp_id, last, first, reports_to) = if pg {
            ("employee_id", "last_name", "first_name", "reports_to")
        } else {
            ("EmployeeId", "LastName", "FirstName", "ReportsTo")
        };
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/items/employee",
            Some(json!({emp_id: 900, last: "L", first: "F", reports_to: 999})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/items/employee",
            Some(json!({emp_id: 900, last: "L", first: "F", reports_to: 1})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");

        // A foreign key kept as a plain integer: the database refuses, mapped to 422.
        let (invoice_id, invoice_date, total) = if pg {
            ("invoice_id", "invoice_date", "total")
        } else {
            ("InvoiceId", "InvoiceDate", "Total")
        };
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/items/invoice",
            Some(json!({
                invoice_id: 900_001,
                customer_fk: 999_999,
                invoice_date: "2024-05-01T12:00:00Z",
                total: 1.5,
            })),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(v["error"]["code"], "VALIDATION", "{name}: {v}");
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/items/invoice",
            Some(json!({
                invoice_id: 900_001,
                customer_fk: 1,
                invoice_date: "2024-05-01T12:00:00Z",
                total: 1.5,
            })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(
            v["data"][invoice_date], "2024-05-01T12:00:00.000000Z",
            "{name}"
        );
        // The database's NOT NULL is the table's own rule: 422 too.
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/items/invoice",
            Some(json!({invoice_id: 900_002, customer_fk: 1, total: 1.5})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");

        // Rows written by another application show up; rows removed underneath are simply gone.
        let genre = if pg { "genre" } else { "Genre" };
        let (genre_id, genre_name) = if pg {
            ("genre_id", "name")
        } else {
            ("GenreId", "Name")
        };
        workeros_tests::adopt::exec(
            &t.db,
            &format!(
                r#"INSERT INTO "{genre}" ("{genre_id}", "{genre_name}") VALUES (777, 'Direct')"#
            ),
        )
        .await;
        let (s, v) = call(&app, Some(&admin()), "GET", "/api/items/genre/777", None).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["data"][genre_name], "Direct");
        workeros_tests::adopt::exec(
            &t.db,
            &format!(r#"DELETE FROM "{genre}" WHERE "{genre_id}" = 777"#),
        )
        .await;
        let (s, _) = call(&app, Some(&admin()), "GET", "/api/items/genre/777", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        t.close().await;
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
