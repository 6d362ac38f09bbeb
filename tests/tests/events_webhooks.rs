//! Webhooks on SQLite and PostgreSQL through the real routers and a real socket: the admin
//! routes, signed and filtered deliveries (verified here and by an independent Python
//! implementation), retries, redirects, `410 Gone`, manual redelivery, secret rotation, a
//! rolled-back write delivering nothing, and two instances sharing the work.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use workeros_core::{Subject, User};
use workeros_events::signing::{Secret, SignedHeaders, verify};
use workeros_events::webhooks::{DeliveryQuery, DeliveryState, Webhooks};
use workeros_events::{Allow, Guard, WebhookConfig};
use workeros_store::{Store, migrate};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::sink::{Received, Sink};
use workeros_tests::stores::{TestDb, dbs, outbox_len, shared};

fn config() -> WebhookConfig {
    WebhookConfig {
        schedule: vec![
            Duration::ZERO,
            Duration::from_millis(50),
            Duration::from_millis(50),
        ],
        lease: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        poll: Duration::from_millis(50),
        ..WebhookConfig::default()
    }
}

struct App {
    app: Router,
    hooks: Webhooks,
}

async fn hooks_app(t: &TestDb, config: WebhookConfig) -> App {
    migrate(&t.db).await.unwrap();
    workeros_events::migrate(&t.db).await.unwrap();
    let store = Store::new(t.db.clone());
    let guard = Guard::new(Allow::parse("127.0.0.1/32").unwrap(), config.timeout);
    let hooks = Webhooks::new(store.clone(), guard, config);
    store.add_sink(Arc::new(hooks.clone()));
    let app = workeros_tests::mount::mount(
        workeros_store::http::router(store).merge(workeros_events::http::webhooks(hooks.clone())),
    );
    App { app, hooks }
}

async fn tasks(app: &Router, name: &str) {
    let (s, v) = call(
        app,
        Some(&admin()),
        "POST",
        "/api/collections",
        Some(json!({"slug": "tasks", "fields": [
            {"name": "title", "type": "text"},
            {"name": "status", "type": "text"},
            {"name": "sku", "type": "text", "unique": true}
        ]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
}

async fn ok(app: &Router, method: &str, uri: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, Some(&admin()), method, uri, body).await;
    assert!(s.is_success(), "{method} {uri}: {s} {v}");
    v
}

/// Creates a webhook; returns its id and secret.
async fn hook(app: &Router, body: Value) -> (String, Secret) {
    let v = ok(app, "POST", "/api/webhooks", Some(body)).await;
    let secret = v["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{v}");
    (
        v["data"]["id"].as_str().unwrap().to_owned(),
        Secret::parse(secret).unwrap(),
    )
}

fn verified(r: &Received, secrets: &[Secret]) -> bool {
    let headers = SignedHeaders {
        id: r.header("webhook-id"),
        timestamp: r.header("webhook-timestamp"),
        signature: r.header("webhook-signature"),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    verify(secrets, headers, &r.body, now, 300).is_ok()
}

/// Waits until the deliveries of webhook `id` satisfy `pred`.
async fn deliveries_until(app: &Router, id: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = ok(app, "GET", &format!("/api/webhooks/{id}/deliveries"), None).await;
        let list = v["data"].as_array().unwrap().clone();
        if pred(&list) || std::time::Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn admin_routes_check_input_and_show_the_secret_once() {
    for t in dbs().await {
        let name = t.name();
        let App { app, .. } = hooks_app(&t, config()).await;
        tasks(&app, name).await;
        let viewer = Subject::user(User::new("v").with_roles(["viewer"]));
        let (s, _) = call(&app, None, "GET", "/api/webhooks", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{name}");
        let (s, _) = call(&app, Some(&viewer), "GET", "/api/webhooks", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}");
        let body = json!({"url": "https://hooks.example.com/in", "events": ["create"]});
        let (s, _) = call(&app, Some(&viewer), "POST", "/api/webhooks", Some(body)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}");

        for (body, field) in [
            (json!({"events": ["create"]}), "url"),
            (json!({"url": "ftp://example.com/x"}), "url"),
            (json!({"url": "not a url"}), "url"),
            (json!({"url": "http://user:pw@example.com/"}), "url"),
            (json!({"url": "http://10.0.0.7/hook"}), "url"),
            (json!({"url": "http://[::1]:8080/"}), "url"),
            (
                json!({"url": "http://169.254.169.254/latest/meta-data"}),
                "url",
            ),
            (
                json!({"url": "https://example.com/", "events": ["publish"]}),
                "events",
            ),
            (
                json!({"url": "https://example.com/", "filter": "status = 'x'"}),
                "filter",
            ),
            (
                json!({"url": "https://example.com/", "headers": {"webhook-id": "x"}}),
                "headers",
            ),
            (
                json!({"url": "https://example.com/", "headers": {"x-a": "a\r\nb: c"}}),
                "headers",
            ),
            (
                json!({"url": "https://example.com/", "headers": {"bad name": "v"}}),
                "headers",
            ),
        ] {
            let (s, v) = call(
                &app,
                Some(&admin()),
                "POST",
                "/api/webhooks",
                Some(body.clone()),
            )
            .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body} → {v}");
            assert_eq!(v["error"]["field"], field, "{name}: {body} → {v}");
        }
        // A filter on a field the collection lacks, or on a missing collection.
        let bad =
            json!({"url": "https://example.com/", "collections": ["tasks"], "filter": "nope = 1"});
        let (s, v) = call(&app, Some(&admin()), "POST", "/api/webhooks", Some(bad)).await;
        assert!(s.is_client_error(), "{name}: {v}");
        let bad = json!({"url": "https://example.com/", "collections": ["ghosts"]});
        let (s, _) = call(&app, Some(&admin()), "POST", "/api/webhooks", Some(bad)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");

        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/webhooks",
            Some(
                json!({"url": "https://hooks.example.com/in", "collections": ["tasks"],
                        "filter": "status = 'published'", "headers": {"x-team": "ops"}}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        let id = v["data"]["id"].as_str().unwrap().to_owned();
        let secret = v["secret"].as_str().unwrap().to_owned();
        assert_eq!(v["data"]["name"], "hooks.example.com");
        assert_eq!(v["data"]["enabled"], true);
        assert_eq!(v["data"]["events"], json!([]));
        assert!(v["data"].get("secret").is_none(), "{name}: {v}");
        let got = ok(&app, "GET", &format!("/api/webhooks/{id}"), None).await;
        assert!(
            !got.to_string().contains(&secret[6..]),
            "{name}: secret shown again"
        );
        let list = ok(&app, "GET", "/api/webhooks", None).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "{name}");

        let changed = ok(
            &app,
            "PATCH",
            &format!("/api/webhooks/{id}"),
            Some(json!({"enabled": false, "filter": null, "events": ["delete"]})),
        )
        .await;
        assert_eq!(changed["data"]["enabled"], false);
        assert_eq!(changed["data"]["filter"], Value::Null);
        assert_eq!(changed["data"]["events"], json!(["delete"]));
        assert_eq!(changed["data"]["headers"], json!({"x-team": "ops"}));

        let rotated = ok(&app, "POST", &format!("/api/webhooks/{id}/rotate"), None).await;
        let new_secret = rotated["secret"].as_str().unwrap();
        assert!(
            new_secret.starts_with("whsec_") && new_secret != secret,
            "{name}"
        );

        // Another tenant's admin sees nothing of it.
        let other = admin().with_tenant("11111111-1111-4111-8111-111111111111");
        let (s, _) = call(
            &app,
            Some(&other),
            "GET",
            &format!("/api/webhooks/{id}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        let (s, v) = call(&app, Some(&other), "GET", "/api/webhooks", None).await;
        assert_eq!(
            (s, v["data"].as_array().unwrap().len()),
            (StatusCode::OK, 0),
            "{name}"
        );

        for bad in ["nope", "00000000-0000-4000-8000-000000000000"] {
            let (s, _) = call(
                &app,
                Some(&admin()),
                "GET",
                &format!("/api/webhooks/{bad}"),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{name}: {bad}");
        }
        let (s, _) = call(
            &app,
            Some(&admin()),
            "DELETE",
            &format!("/api/webhooks/{id}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        let (s, _) = call(
            &app,
            Some(&admin()),
            "GET",
            &format!("/api/webhooks/{id}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_filtered_logged_and_never_from_a_rollback() {
    for t in dbs().await {
        let name = t.name();
        let sink = Sink::start().await;
        let App { app, hooks } = hooks_app(&t, config()).await;
        tasks(&app, name).await;
        let (published, s1) = hook(
            &app,
            json!({"url": sink.url("/published"), "collections": ["tasks"],
                   "filter": "status = 'published'", "headers": {"x-team": "ops"}}),
        )
        .await;
        let (deletes, s2) = hook(
            &app,
            json!({"url": sink.url("/deletes"), "events": ["delete"]}),
        )
        .await;
        let _workers = hooks.start().await.unwrap();

        let a = ok(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "a", "status": "published", "sku": "1"})),
        )
        .await;
        let b = ok(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "b", "status": "draft", "sku": "2"})),
        )
        .await;
        let (a, b) = (
            a["data"]["id"].as_str().unwrap().to_owned(),
            b["data"]["id"].as_str().unwrap().to_owned(),
        );
        ok(
            &app,
            "PATCH",
            &format!("/api/items/tasks/{b}"),
            Some(json!({"status": "published"})),
        )
        .await;
        ok(&app, "DELETE", &format!("/api/items/tasks/{a}"), None).await;
        // A batch whose second item breaks the unique `sku`: the whole write rolls back.
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/items/tasks",
            Some(json!([{"title": "c", "status": "published", "sku": "9"},
                        {"title": "d", "status": "published", "sku": "9"}])),
        )
        .await;
        assert!(s.is_client_error(), "{name}: {s} {v}");

        let got = sink.wait(Duration::from_secs(20), |r| r.len() >= 4).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let got_all = sink.received();
        assert_eq!(got_all.len(), 4, "{name}: {got:?}");
        let at = |path: &str| -> Vec<Received> {
            got_all.iter().filter(|r| r.path == path).cloned().collect()
        };
        // Deliveries are concurrent, so not ordered: sort by the event's type.
        let mut p = at("/published");
        p.sort_by_key(|r| {
            ["tasks.create", "tasks.update", "tasks.delete"]
                .iter()
                .position(|t| r.json()["type"] == *t)
        });
        let kinds: Vec<(String, String)> = p
            .iter()
            .map(|r| {
                let j = r.json();
                (
                    j["type"].as_str().unwrap().to_owned(),
                    j["data"]["key"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("tasks.create".to_owned(), a.clone()),
                ("tasks.update".to_owned(), b.clone()),
                ("tasks.delete".to_owned(), a.clone()),
            ],
            "{name}: the draft's create is filtered out"
        );
        for r in &p {
            assert!(verified(r, std::slice::from_ref(&s1)), "{name}: {r:?}");
            assert!(
                !verified(r, std::slice::from_ref(&s2)),
                "{name}: another secret verifies"
            );
            assert_eq!(r.header("x-team"), "ops");
            assert_eq!(r.header("content-type"), "application/json");
        }
        let j = p[0].json();
        assert_eq!(j["data"]["item"]["title"], "a");
        assert_eq!(j["data"]["collection"], "tasks");
        assert_eq!(j["data"]["actor"], "admin-1");
        let upd = p[1].json();
        assert_eq!(upd["data"]["previous"]["status"], "draft");
        assert_eq!(upd["data"]["item"]["status"], "published");
        let d = at("/deletes");
        assert_eq!(d.len(), 1, "{name}");
        assert!(verified(&d[0], std::slice::from_ref(&s2)), "{name}");
        assert_eq!(d[0].json()["data"]["previous"]["title"], "a");

        // Tampering breaks the signature.
        let mut tampered = p[0].clone();
        tampered.body = tampered
            .body
            .iter()
            .map(|b| if *b == b'a' { b'b' } else { *b })
            .collect();
        assert!(!verified(&tampered, std::slice::from_ref(&s1)), "{name}");

        // The log: one succeeded delivery per message, its id the `webhook-id`.
        let log = deliveries_until(&app, &published, |l| l.len() == 3).await;
        for (entry, r) in log.iter().rev().zip(&p) {
            assert_eq!(entry["state"], "succeeded", "{name}: {entry}");
            assert_eq!(entry["attempts"], 1);
            assert_eq!(entry["lastStatus"], 200);
            assert_eq!(
                entry["id"].as_str().unwrap(),
                r.header("webhook-id"),
                "{name}"
            );
        }
        let one = ok(
            &app,
            "GET",
            &format!(
                "/api/webhooks/{published}/deliveries/{}",
                log[0]["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
        assert_eq!(
            one["data"]["log"].as_array().unwrap().len(),
            1,
            "{name}: {one}"
        );
        assert_eq!(one["data"]["log"][0]["status"], 200);
        let log = deliveries_until(&app, &deletes, |l| l.len() == 1).await;
        assert_eq!(log.len(), 1, "{name}");

        // An independent implementation verifies the same messages.
        python_verifies(
            name,
            &got_all,
            &[(&published, &s1), (&deletes, &s2)],
            &hooks,
        )
        .await;
        t.close().await;
    }
}

/// Runs the received messages through Python: the PyPI `standardwebhooks` package when it is
/// installed, otherwise a verifier written here from the specification with the standard
/// library. Both must accept every real message and refuse the tampered and stale ones.
async fn python_verifies(
    name: &str,
    got: &[Received],
    secrets: &[(&String, &Secret)],
    _hooks: &Webhooks,
) {
    let secret_of = |r: &Received| -> String {
        let path = &r.path;
        let i = if path == "/published" { 0 } else { 1 };
        secrets[i].1.expose()
    };
    let mut cases = Vec::new();
    for r in got {
        let headers = json!({
            "webhook-id": r.header("webhook-id"),
            "webhook-timestamp": r.header("webhook-timestamp"),
            "webhook-signature": r.header("webhook-signature"),
        });
        let body = String::from_utf8(r.body.clone()).unwrap();
        cases
            .push(json!({"secret": secret_of(r), "headers": headers, "body": body, "valid": true}));
        cases.push(json!({"secret": secret_of(r), "headers": headers, "body": format!("{body} "), "valid": false}));
        let mut stale = headers.clone();
        stale["webhook-timestamp"] =
            json!((r.header("webhook-timestamp").parse::<i64>().unwrap() - 3600).to_string());
        cases.push(json!({"secret": secret_of(r), "headers": stale, "body": body, "valid": false}));
    }
    let dir = std::env::temp_dir().join(format!("workeros-sig-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let script = r#"
import base64, hashlib, hmac, json, sys, time
cases = json.load(open(sys.argv[1]))
try:
    from standardwebhooks.webhooks import Webhook
    impl = "standardwebhooks"
    def check(c):
        try:
            Webhook(c["secret"]).verify(c["body"], c["headers"])
            return True
        except Exception:
            return False
except ImportError:
    impl = "stdlib"
    def check(c):
        h = c["headers"]
        key = base64.b64decode(c["secret"].split("_", 1)[1])
        ts = int(h["webhook-timestamp"])
        if abs(time.time() - ts) > 300:
            return False
        signed = (h["webhook-id"] + "." + h["webhook-timestamp"] + "." + c["body"]).encode()
        want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for part in h["webhook-signature"].split(" "):
            version, _, sig = part.partition(",")
            if version == "v1" and hmac.compare_digest(sig, want):
                return True
        return False
bad = [i for i, c in enumerate(cases) if check(c) != c["valid"]]
print(impl, len(cases), "cases", "mismatches:", bad)
sys.exit(1 if bad else 0)
"#;
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    let out = match out {
        Ok(o) => o,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("{name}: python3 not available ({e}); skipping the independent check");
            return;
        }
        Err(e) => panic!("{name}: python3: {e}"),
    };
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{name}: python: {text}");
    assert!(out.status.success(), "{name}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_redirects_gone_redelivery_and_rotation() {
    for t in dbs().await {
        let name = t.name();
        let sink = Sink::start().await;
        sink.respond(|r, earlier| match r.path.as_str() {
            "/flaky" if earlier == 0 => (500, None),
            "/down" => (500, None),
            "/redirect" => (302, Some("/target".into())),
            "/gone" => (410, None),
            _ => (200, None),
        });
        let App { app, hooks } = hooks_app(&t, config()).await;
        tasks(&app, name).await;
        let mut ids = HashMap::new();
        let mut secrets = HashMap::new();
        for path in ["/flaky", "/down", "/redirect", "/gone"] {
            let (id, s) = hook(
                &app,
                json!({"url": sink.url(path), "collections": ["tasks"]}),
            )
            .await;
            ids.insert(path, id);
            secrets.insert(path, s);
        }
        let _workers = hooks.start().await.unwrap();
        ok(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "x", "status": "draft", "sku": "1"})),
        )
        .await;

        let flaky = deliveries_until(&app, &ids["/flaky"], |l| {
            l.first().is_some_and(|d| d["state"] == "succeeded")
        })
        .await;
        assert_eq!(
            (flaky[0]["state"].as_str(), flaky[0]["attempts"].as_i64()),
            (Some("succeeded"), Some(2)),
            "{name}: {flaky:?}"
        );
        let down = deliveries_until(&app, &ids["/down"], |l| {
            l.first().is_some_and(|d| d["state"] == "failed")
        })
        .await;
        assert_eq!(
            down[0]["attempts"], 3,
            "{name}: three attempts on this schedule: {down:?}"
        );
        assert_eq!(down[0]["lastStatus"], 500);
        let redirect = deliveries_until(&app, &ids["/redirect"], |l| {
            l.first().is_some_and(|d| d["state"] == "failed")
        })
        .await;
        assert_eq!(redirect[0]["lastStatus"], 302, "{name}");
        assert!(
            redirect[0]["lastError"]
                .as_str()
                .unwrap()
                .contains("redirects are not followed"),
            "{name}: {redirect:?}"
        );
        let gone = deliveries_until(&app, &ids["/gone"], |l| {
            l.first().is_some_and(|d| d["state"] == "failed")
        })
        .await;
        assert_eq!(gone[0]["attempts"], 1, "{name}: 410 is final");
        let g = ok(
            &app,
            "GET",
            &format!("/api/webhooks/{}", ids["/gone"]),
            None,
        )
        .await;
        assert_eq!(g["data"]["enabled"], false, "{name}: {g}");
        assert!(
            g["data"]["disabledReason"]
                .as_str()
                .unwrap()
                .contains("410"),
            "{name}"
        );
        assert!(
            sink.received().iter().all(|r| r.path != "/target"),
            "{name}: a redirect was followed"
        );
        let tries = |path: &str| sink.received().iter().filter(|r| r.path == path).count();
        assert_eq!(
            (
                tries("/flaky"),
                tries("/down"),
                tries("/redirect"),
                tries("/gone")
            ),
            (2, 3, 3, 1),
            "{name}"
        );
        // Every retry of one delivery carries its webhook-id.
        let down_ids: HashSet<String> = sink
            .received()
            .iter()
            .filter(|r| r.path == "/down")
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        assert_eq!(down_ids.len(), 1, "{name}");

        // Manual redelivery of the failed one, now that the endpoint is back.
        sink.respond(|_, _| (200, None));
        let delivery = down[0]["id"].as_str().unwrap();
        let v = ok(
            &app,
            "POST",
            &format!(
                "/api/webhooks/{}/deliveries/{delivery}/redeliver",
                ids["/down"]
            ),
            None,
        )
        .await;
        assert_eq!(v["data"]["state"], "pending", "{name}");
        let down = deliveries_until(&app, &ids["/down"], |l| l[0]["state"] == "succeeded").await;
        assert_eq!(down[0]["state"], "succeeded", "{name}");
        let last = sink
            .received()
            .into_iter()
            .rfind(|r| r.path == "/down")
            .unwrap();
        assert_eq!(
            last.header("webhook-id"),
            delivery,
            "{name}: a redelivery keeps its id"
        );
        let one = ok(
            &app,
            "GET",
            &format!("/api/webhooks/{}/deliveries/{delivery}", ids["/down"]),
            None,
        )
        .await;
        let numbers: Vec<i64> = one["data"]["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["attempt"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, vec![1, 2, 3, 4], "{name}");

        // The disabled webhook gets nothing new; rotation signs with both secrets for a while.
        let before_gone = tries("/gone");
        let old = secrets["/flaky"].clone();
        let v = ok(
            &app,
            "POST",
            &format!("/api/webhooks/{}/rotate", ids["/flaky"]),
            None,
        )
        .await;
        let new = Secret::parse(v["secret"].as_str().unwrap()).unwrap();
        sink.clear();
        ok(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "y", "status": "draft", "sku": "2"})),
        )
        .await;
        let got = sink
            .wait(Duration::from_secs(20), |r| {
                r.iter().any(|r| r.path == "/flaky")
            })
            .await;
        let f = got.iter().find(|r| r.path == "/flaky").unwrap();
        assert_eq!(
            f.header("webhook-signature").split(' ').count(),
            2,
            "{name}"
        );
        assert!(
            verified(f, std::slice::from_ref(&new)),
            "{name}: the new secret verifies"
        );
        assert!(
            verified(f, std::slice::from_ref(&old)),
            "{name}: the old one still does"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(before_gone, 1);
        assert!(
            sink.received().iter().all(|r| r.path != "/gone"),
            "{name}: a disabled webhook received"
        );
        t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_each_event_once() {
    for group in shared(2).await {
        let name = group[0].name();
        let sink = Sink::start().await;
        let a = hooks_app(&group[0], config()).await;
        let b = hooks_app(&group[1], config()).await;
        tasks(&a.app, name).await;
        let (id, _) = hook(
            &a.app,
            json!({"url": sink.url("/in"), "collections": ["tasks"], "events": ["create"]}),
        )
        .await;
        let _wa = a.hooks.start().await.unwrap();
        let _wb = b.hooks.start().await.unwrap();
        let n = 120;
        let mut writers = Vec::new();
        for (i, app) in [a.app.clone(), b.app.clone()].into_iter().enumerate() {
            writers.push(tokio::spawn(async move {
                for k in 0..n / 2 {
                    ok(
                        &app,
                        "POST",
                        "/api/items/tasks",
                        Some(json!({"title": format!("{i}-{k}"), "sku": format!("{i}-{k}")})),
                    )
                    .await;
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        let got = sink.wait(Duration::from_secs(30), |r| r.len() >= n).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got = if got.len() >= n { sink.received() } else { got };
        let titles: HashSet<String> = got
            .iter()
            .map(|r| {
                r.json()["data"]["item"]["title"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let ids: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
        assert_eq!(
            (got.len(), titles.len(), ids.len()),
            (n, n, n),
            "{name}: each event once"
        );
        let log = a
            .hooks
            .deliveries(
                &admin(),
                id.parse().unwrap(),
                &DeliveryQuery {
                    limit: Some(500),
                    ..DeliveryQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(log.len(), n, "{name}");
        assert!(
            log.iter().all(|d| d.state == DeliveryState::Succeeded),
            "{name}"
        );
        for t in group.into_iter().rev() {
            t.close().await;
        }
    }
}

/// Dispatches until webhook `id` has `n` deliveries (on PostgreSQL, transactions of tests
/// running beside this one can hold the dispatcher back for a moment); returns how many it has.
async fn dispatched(hooks: &Webhooks, id: &str, n: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        hooks.dispatch_once().await.unwrap();
        let have = hooks
            .deliveries(&admin(), id.parse().unwrap(), &DeliveryQuery::default())
            .await
            .unwrap()
            .len();
        if have >= n || std::time::Instant::now() > deadline {
            return have;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// On PostgreSQL a transaction can commit after a later one: the dispatcher must not move past
/// an event whose transaction is still open, and must pick it up once it commits.
#[tokio::test]
async fn an_event_committed_late_is_not_skipped() {
    for t in dbs().await {
        let Some(pool) = t.db.pg_pool() else {
            t.close().await;
            continue; // SQLite has one writer: commit order is outbox order.
        };
        let pool = pool.clone();
        let sink = Sink::start().await;
        let App { app, hooks } = hooks_app(&t, config()).await;
        tasks(&app, "postgres").await;
        let (id, _) = hook(
            &app,
            json!({"url": sink.url("/in"), "collections": ["tasks"]}),
        )
        .await;
        // An open transaction that has written an event (its transaction id is the older one).
        let mut open = pool.begin().await.unwrap();
        let insert = format!(
            "INSERT INTO {} (id, tenant_id, collection, action, item_id, data, created_at) \
             VALUES (gen_random_uuid(), $1, 'tasks', 'create', 'late', '{{\"title\": \"late\"}}', now())",
            t.table("events")
        );
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .bind(workeros_core::DEFAULT_TENANT)
            .execute(&mut *open)
            .await
            .unwrap();
        ok(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "early", "sku": "1"})),
        )
        .await;
        hooks.dispatch_once().await.unwrap();
        let before = hooks
            .deliveries(&admin(), id.parse().unwrap(), &DeliveryQuery::default())
            .await
            .unwrap();
        assert!(
            before.is_empty(),
            "dispatched past an open transaction: {before:?}"
        );
        open.commit().await.unwrap();
        // Other tests' transactions on the same server may hold `xmin` back a moment.
        let after = dispatched(&hooks, &id, 2).await;
        assert_eq!(after, 2);
        t.close().await;
    }
}

/// Pruning removes finished deliveries with their attempt logs (the webhook workers) and the
/// outbox events every consumer has passed (the store); it keeps pending deliveries and events a
/// consumer still has to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_what_is_pending_or_unread() {
    for t in dbs().await {
        let name = t.name();
        let sink = Sink::start().await;
        sink.respond(|r, _| {
            if r.path == "/down" {
                (500, None)
            } else {
                (200, None)
            }
        });
        let App { app, hooks } = hooks_app(&t, config()).await;
        tasks(&app, name).await;
        let (up, _) = hook(
            &app,
            json!({"url": sink.url("/up"), "collections": ["tasks"]}),
        )
        .await;
        let (down, _) = hook(
            &app,
            json!({"url": sink.url("/down"), "collections": ["tasks"]}),
        )
        .await;
        for i in 0..3 {
            ok(
                &app,
                "POST",
                "/api/items/tasks",
                Some(json!({"title": format!("t{i}"), "sku": format!("{i}")})),
            )
            .await;
        }
        assert_eq!(dispatched(&hooks, &up, 3).await, 3, "{name}");
        assert_eq!(dispatched(&hooks, &down, 3).await, 3, "{name}");
        hooks.send_due().await.unwrap();
        let store = hooks.store().clone();
        // A consumer that has not read the events (a flow engine that ran once) holds them.
        workeros_store::register_consumer(&t.db, "flows")
            .await
            .unwrap();
        ok(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "late", "sku": "9"})),
        )
        .await;
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
        assert_eq!(
            hooks.prune(later).await.unwrap(),
            3,
            "{name}: 3 succeeded deliveries (with their attempts)"
        );
        assert_eq!(
            store.prune_outbox(later).await.unwrap(),
            3,
            "{name}: the store prunes the 3 events every consumer read"
        );
        let left = |id: String| {
            let app = app.clone();
            async move {
                ok(&app, "GET", &format!("/api/webhooks/{id}/deliveries"), None).await["data"]
                    .as_array()
                    .unwrap()
                    .len()
            }
        };
        assert_eq!(left(up.clone()).await, 0, "{name}: succeeded deliveries go");
        assert_eq!(left(down.clone()).await, 3, "{name}: pending retries stay");
        assert_eq!(
            outbox_len(&t.db).await,
            1,
            "{name}: the event `flows` has not read stays"
        );
        assert!(store.drop_consumer("flows").await.unwrap());
        // Still unread by the webhook dispatcher: it stays until dispatched.
        assert_eq!(store.prune_outbox(later).await.unwrap(), 0, "{name}");
        assert_eq!(
            dispatched(&hooks, &up, 1).await,
            1,
            "{name}: the late event, the others pruned"
        );
        assert_eq!(store.prune_outbox(later).await.unwrap(), 1, "{name}");
        assert_eq!(outbox_len(&t.db).await, 0, "{name}");
        t.close().await;
    }
}

/// A webhook made on another instance gets the very next event, though this instance's
/// dispatcher had the webhooks cached (for an hour here).
#[tokio::test]
async fn a_webhook_made_elsewhere_gets_the_next_event() {
    for group in shared(2).await {
        let name = group[0].name();
        let sink = Sink::start().await;
        let cached = WebhookConfig {
            poll: Duration::from_secs(3600),
            ..config()
        };
        let a = hooks_app(&group[0], cached).await;
        let b = hooks_app(&group[1], config()).await;
        tasks(&a.app, name).await;
        ok(
            &a.app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "before", "sku": "0"})),
        )
        .await;
        // A dispatches with no webhook, and caches that.
        a.hooks.dispatch_once().await.unwrap();
        hook(
            &b.app,
            json!({"url": sink.url("/in"), "collections": ["tasks"]}),
        )
        .await;
        ok(
            &b.app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "after", "sku": "1"})),
        )
        .await;
        // `before` may come too: on PostgreSQL a transaction of a test running beside this one
        // can keep it from A's first dispatch, and the webhook exists by the next.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let titles = loop {
            a.hooks.dispatch_once().await.unwrap();
            b.hooks.send_due().await.unwrap();
            let titles: Vec<Value> = sink
                .received()
                .iter()
                .map(|r| r.json()["data"]["item"]["title"].clone())
                .collect();
            if titles.contains(&json!("after")) || std::time::Instant::now() > deadline {
                break titles;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(titles.contains(&json!("after")), "{name}: {titles:?}");
        for t in group.into_iter().rev() {
            t.close().await;
        }
    }
}
