//! Errors on the wire keep their data: a DSL error's place (`at`: `line:column` of the text
//! form, a JSON pointer in the JSON form) and `help` reach the error body, in the same shape
//! from the store's routes and the events' routes, on both databases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use serde_json::{Value, json};
use workeros_events::{Guard, Realtime, RealtimeConfig, WebhookConfig, Webhooks};
use workeros_store::Store;
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::stores::dbs;

/// `filter` as a query parameter.
fn q(filter: &str) -> String {
    filter
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_dsl_error_keeps_its_place_and_help_from_every_crate() {
    for t in dbs().await {
        let name = t.name();
        workeros_store::migrate(&t.db).await.unwrap();
        workeros_events::migrate(&t.db).await.unwrap();
        let store = Store::new(t.db.clone());
        let rt = Realtime::new(store.clone(), RealtimeConfig::default());
        let guard = Guard::new(
            workeros_events::Allow::parse("127.0.0.1/32").unwrap(),
            std::time::Duration::from_secs(1),
        );
        let hooks = Webhooks::new(store.clone(), guard, WebhookConfig::default());
        let app = workeros_store::http::router(store)
            .merge(workeros_events::http::router(rt, None))
            .merge(workeros_events::http::webhooks(hooks));
        let a = admin();
        let (s, v) = call(
            &app,
            Some(&a),
            "POST",
            "/api/collections",
            Some(json!({"slug": "notes", "fields": [{"name": "title", "type": "text"}]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");

        // The text form: a place as line:column, and what to do.
        let bad_text = "title = \"x\" &&\n  titel = \"y\"";
        let (s, v) = call(
            &app,
            Some(&a),
            "GET",
            &format!("/api/items/notes?filter={}", q(bad_text)),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        let e = &v["error"];
        assert_eq!(e["code"], "VALIDATION", "{name}: {v}");
        assert_eq!(e["at"], "2:3", "{name}: {v}");
        assert!(
            e["message"].as_str().unwrap().contains("titel"),
            "{name}: {v}"
        );

        // The JSON form: a place as a JSON pointer.
        let bad_json = json!({"_and": [{"title": {"_eq": "x"}}, {"title": {"_nope": 1}}]});
        let (s, v) = call(
            &app,
            Some(&a),
            "GET",
            &format!("/api/items/notes?filter={}", q(&bad_json.to_string())),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(v["error"]["at"], "/_and/1/title/_nope", "{name}: {v}");
        let store_error = shape(&v);

        // The same error through the events crate: a realtime subscription's own filter, a
        // webhook's filter.
        let (s, v) = call(
            &app,
            Some(&a),
            "GET",
            &format!("/api/realtime?collection=notes&filter={}", q(bad_text)),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(v["error"]["at"], "2:3", "{name}: {v}");
        let (s, v) = call(
            &app,
            Some(&a),
            "POST",
            "/api/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/x", "collections": ["notes"], "filter": bad_json})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(shape(&v), store_error, "{name}: {v}");

        // An error without a place has neither key.
        let (s, v) = call(&app, Some(&a), "GET", "/api/items/nope", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}: {v}");
        assert!(
            v["error"].get("at").is_none() && v["error"].get("help").is_none(),
            "{v}"
        );
        t.close().await;
    }
}

/// The keys and the place of an error body (the message aside).
fn shape(v: &Value) -> (Vec<String>, Value, Value) {
    let e = v["error"].as_object().unwrap();
    let mut keys: Vec<String> = e.keys().cloned().collect();
    keys.sort();
    (
        keys,
        e["code"].clone(),
        e.get("at").cloned().unwrap_or(Value::Null),
    )
}
