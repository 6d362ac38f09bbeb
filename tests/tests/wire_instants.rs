//! One wire format for instants: the store (an item's timestamp field), auth (an API key's
//! `expiresAt`) and events (a webhook payload's `timestamp`, an event's `at`) write the same
//! instant as the same text, on both databases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use serde_json::json;
use workeros_auth::AuthConfig;
use workeros_core::{Event, EventAction};
use workeros_tests::auth::{Client, auth_app};
use workeros_tests::stores::dbs;

/// An instant given with nanoseconds and an offset.
const GIVEN: &str = "2999-05-01T12:00:00.123456789+02:00";
/// Its one wire text: UTC, six fraction digits.
const WIRE: &str = "2999-05-01T10:00:00.123456Z";

#[tokio::test]
async fn every_crate_writes_an_instant_alike() {
    let at =
        time::OffsetDateTime::parse(GIVEN, &time::format_description::well_known::Rfc3339).unwrap();
    for t in dbs().await {
        let name = t.name();
        let a = auth_app(&t, AuthConfig::default()).await;
        let app = &a.app;
        let mut admin = Client::default();
        let r = admin
            .call(
                app,
                "POST",
                "/api/auth/signup",
                Some(json!({"email": "ann@example.com", "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);

        // auth
        let key = admin
            .call(
                app,
                "POST",
                "/api/auth/api-keys",
                Some(json!({"name": "k", "expiresAt": GIVEN})),
            )
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{name}: {:?}", key.body);
        assert_eq!(key.data()["expiresAt"], WIRE, "{name}: {:?}", key.body);
        let created = key.data()["createdAt"].as_str().unwrap().to_owned();

        // store
        let c = admin
            .call(
                app,
                "POST",
                "/api/collections",
                Some(
                    json!({"slug": "events_at", "fields": [{"name": "due", "type": "timestamp"}]}),
                ),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{name}: {:?}", c.body);
        let item = admin
            .call(
                app,
                "POST",
                "/api/items/events_at",
                Some(json!({"due": GIVEN})),
            )
            .await;
        assert_eq!(item.status, StatusCode::CREATED, "{name}: {:?}", item.body);
        assert_eq!(item.data()["due"], WIRE, "{name}");
        let read = admin.call(app, "GET", "/api/items/events_at", None).await;
        assert_eq!(read.data()[0]["due"], WIRE, "{name}");

        // events
        let event = Event {
            id: uuid::Uuid::now_v7(),
            tenant: workeros_core::DEFAULT_TENANT.into(),
            collection: "events_at".into(),
            action: EventAction::Create,
            item_id: "1".into(),
            data: None,
            previous: None,
            actor: None,
            at,
            depth: 0,
        };
        let payload: serde_json::Value =
            serde_json::from_str(&workeros_events::webhooks::payload(&event)).unwrap();
        assert_eq!(payload["timestamp"], WIRE, "{name}");
        assert_eq!(serde_json::to_value(&event).unwrap()["at"], WIRE, "{name}");

        // Instants of now have the same shape everywhere.
        for s in [created.as_str(), item.data()["createdAt"].as_str().unwrap()] {
            assert_eq!(s.len(), WIRE.len(), "{name}: {s}");
            assert!(s.ends_with('Z') && s.as_bytes()[19] == b'.', "{name}: {s}");
        }
        t.close().await;
    }
}
