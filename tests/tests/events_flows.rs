//! Flows on SQLite and PostgreSQL through the real routers: the admin routes and their checks,
//! manual runs through every operation type (condition branches, transform, log, request and
//! signed webhook through the SSRF guard, email, item writes under a stated permission scope),
//! run logs, and the event, schedule and incoming-webhook triggers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use workeros_core::{CoreError, Email, EmailSender, Subject, User};
use workeros_events::signing::{Secret, SignedHeaders, verify};
use workeros_events::{Allow, Flows, FlowsConfig, Guard};
use workeros_store::{Store, migrate};
use workeros_tests::fixtures::admin;
use workeros_tests::http::call;
use workeros_tests::sink::Sink;
use workeros_tests::stores::{TestDb, dbs};

#[derive(Default)]
struct Outbox(Mutex<Vec<Email>>);

#[async_trait::async_trait]
impl EmailSender for Outbox {
    async fn send(&self, email: &Email) -> Result<(), CoreError> {
        self.0.lock().unwrap().push(email.clone());
        Ok(())
    }
}

struct App {
    app: Router,
    flows: Flows,
    mail: Arc<Outbox>,
}

async fn flows_app(t: &TestDb) -> App {
    migrate(&t.db).await.unwrap();
    workeros_events::migrate(&t.db).await.unwrap();
    let store = Store::new(t.db.clone());
    let guard = Guard::new(
        Allow::parse("127.0.0.1/32").unwrap(),
        Duration::from_secs(2),
    );
    let mail = Arc::new(Outbox::default());
    let config = FlowsConfig {
        poll: Duration::from_millis(50),
        min_interval: Duration::from_secs(1),
        ..FlowsConfig::default()
    };
    let flows = Flows::new(store.clone(), guard, Some(mail.clone()), config);
    store.add_sink(Arc::new(flows.clone()));
    let app = workeros_tests::mount::mount(
        workeros_store::http::router(store).merge(workeros_events::http::flows(flows.clone())),
    );
    for slug in ["tasks", "audit"] {
        let (s, v) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/collections",
            Some(json!({"slug": slug, "fields": [
                {"name": "title", "type": "text"}, {"name": "status", "type": "text"}
            ]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    App { app, flows, mail }
}

async fn ok(app: &Router, method: &str, uri: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, Some(&admin()), method, uri, body).await;
    assert!(s.is_success(), "{method} {uri}: {s} {v}");
    v
}

fn keys(run: &Value) -> Vec<(String, String)> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_runs_go_through_every_operation() {
    for t in dbs().await {
        let name = t.name();
        let sink = Sink::start().await;
        sink.respond(|r, _| {
            if r.path == "/fail" {
                (500, None)
            } else {
                (200, None)
            }
        });
        let App { app, mail, .. } = flows_app(&t).await;

        // Checks on create.
        let viewer = Subject::user(User::new("v").with_roles(["viewer"]));
        let (s, _) = call(&app, None, "GET", "/api/flows", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{name}");
        let (s, _) = call(&app, Some(&viewer), "GET", "/api/flows", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}");
        let log = |k: &str| json!({"key": k, "type": "log", "options": {"message": "x"}});
        for bad in [
            json!({"trigger": {"type": "manual"}, "operations": []}),
            json!({"trigger": {"type": "manual"}, "operations": [{"key": "a", "type": "shell"}]}),
            json!({"trigger": {"type": "manual"}, "operations": [log("a"), log("a")]}),
            json!({"trigger": {"type": "manual"}, "operations": [{"key": "a", "type": "log", "resolve": "nowhere"}]}),
            json!({"trigger": {"type": "manual"}, "operations": [{"key": "$a", "type": "log"}]}),
            json!({"trigger": {"type": "schedule", "cron": "every day"}, "operations": [log("a")]}),
            json!({"trigger": {"type": "event", "actions": ["publish"]}, "operations": [log("a")]}),
            json!({"trigger": {"type": "event", "filter": "status = 'x'"}, "operations": [log("a")]}),
            json!({"operations": [log("a")]}),
            json!({"trigger": {"type": "manual"}, "operations": [{"key": "w", "type": "item", "options": {"collection": "tasks"}}]}),
        ] {
            let (s, v) = call(
                &app,
                Some(&admin()),
                "POST",
                "/api/flows",
                Some(bad.clone()),
            )
            .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {bad} → {v}");
        }
        let (s, _) = call(
            &app,
            Some(&admin()),
            "POST",
            "/api/flows",
            Some(json!({"trigger": {"type": "event", "collections": ["tasks"], "filter": "nope = 1"}, "operations": [log("a")]})),
        )
        .await;
        assert!(s.is_client_error(), "{name}");

        let flow = json!({
            "name": "orders",
            "trigger": {"type": "manual"},
            "operations": [
                {"key": "check", "type": "condition", "options": {"filter": "amount > 100"}, "reject": "small"},
                {"key": "shape", "type": "transform",
                 "options": {"json": {"title": "big order {{$trigger.amount}} for {{$trigger.who}}", "status": "open"}}},
                {"key": "save", "type": "item",
                 "options": {"collection": "tasks", "action": "create", "payload": "{{shape}}", "permissions": "admin"}},
                {"key": "tell", "type": "request",
                 "options": {"method": "post", "url": format!("{}?id={{{{save.id}}}}", sink.url("/api")),
                             "headers": {"x-order": "{{$trigger.amount}}"}, "body": {"task": "{{save.id}}"}}},
                {"key": "sign", "type": "webhook", "options": {"url": sink.url("/signed"), "body": {"title": "{{save.title}}"}}},
                {"key": "mail", "type": "email",
                 "options": {"to": "{{$trigger.email}}", "subject": "order {{$trigger.amount}}", "body": "saved {{save.title}}"},
                 "resolve": "done"},
                {"key": "small", "type": "log", "options": {"message": "small order {{$trigger.amount}}"}, "resolve": "done"},
                {"key": "done", "type": "log", "options": {"message": "finished"}}
            ]
        });
        let v = ok(&app, "POST", "/api/flows", Some(flow)).await;
        let id = v["data"]["id"].as_str().unwrap().to_owned();
        let secret = Secret::parse(v["secret"].as_str().unwrap()).unwrap();
        assert_eq!(v["hookToken"].as_str().unwrap().len(), 64, "{name}");

        let run = ok(
            &app,
            "POST",
            &format!("/api/flows/{id}/run"),
            Some(json!({"amount": 500, "who": "ann", "email": "ann@example.com"})),
        )
        .await;
        let run = &run["data"];
        assert_eq!(run["status"], "succeeded", "{name}: {run}");
        let r = |k: &str| (k.to_owned(), "resolved".to_owned());
        assert_eq!(
            keys(run),
            vec![
                r("check"),
                r("shape"),
                r("save"),
                r("tell"),
                r("sign"),
                r("mail"),
                r("done")
            ],
            "{name}"
        );
        let task_id = run["steps"][2]["output"]["id"].as_str().unwrap().to_owned();
        assert_eq!(run["steps"][2]["output"]["title"], "big order 500 for ann");
        assert_eq!(
            run["steps"][1]["input"]["json"]["title"], "big order 500 for ann",
            "{name}: the input is rendered"
        );
        let stored = ok(&app, "GET", &format!("/api/items/tasks/{task_id}"), None).await;
        assert_eq!(stored["data"]["status"], "open");
        let got = sink.received();
        let api = got.iter().find(|g| g.path.starts_with("/api")).unwrap();
        assert_eq!(api.path, format!("/api?id={task_id}"));
        assert_eq!(api.header("x-order"), "500");
        assert_eq!(api.json(), json!({"task": task_id}));
        let signed = got.iter().find(|g| g.path == "/signed").unwrap();
        let headers = SignedHeaders {
            id: signed.header("webhook-id"),
            timestamp: signed.header("webhook-timestamp"),
            signature: signed.header("webhook-signature"),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        verify(&[secret], headers, &signed.body, now, 300).unwrap();
        assert_eq!(signed.json(), json!({"title": "big order 500 for ann"}));
        let sent = mail.0.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "{name}");
        assert_eq!(
            (sent[0].to.as_str(), sent[0].subject.as_str()),
            ("ann@example.com", "order 500")
        );

        // The other branch: the condition rejects into `small`, which is not a failure.
        let run = ok(
            &app,
            "POST",
            &format!("/api/flows/{id}/run"),
            Some(json!({"amount": 5})),
        )
        .await;
        assert_eq!(run["data"]["status"], "succeeded", "{name}");
        assert_eq!(
            keys(&run["data"]),
            vec![("check".into(), "rejected".into()), r("small"), r("done")],
            "{name}"
        );
        assert_eq!(
            run["data"]["steps"][1]["output"]["message"],
            "small order 5"
        );

        // Failures: a refused target, a 500, a write the scope may not make.
        let failing = json!({
            "trigger": {"type": "manual"},
            "operations": [{"key": "go", "type": "request", "options": {"url": "{{$trigger.url}}"}}]
        });
        let v = ok(&app, "POST", "/api/flows", Some(failing)).await;
        let fid = v["data"]["id"].as_str().unwrap().to_owned();
        for (url, says) in [
            ("http://169.254.169.254/latest/meta-data", "refused"),
            ("http://10.0.0.1/", "refused"),
            (sink.url("/fail").as_str(), "the answer was 500"),
        ] {
            let run = ok(
                &app,
                "POST",
                &format!("/api/flows/{fid}/run"),
                Some(json!({"url": url})),
            )
            .await;
            assert_eq!(run["data"]["status"], "failed", "{name}: {url}");
            assert!(
                run["data"]["error"].as_str().unwrap().contains(says),
                "{name}: {url}: {}",
                run["data"]
            );
        }
        assert!(
            sink.received()
                .iter()
                .all(|r| r.path != "/latest/meta-data")
        );
        let public = json!({
            "trigger": {"type": "manual"},
            "operations": [{"key": "w", "type": "item", "options": {"collection": "tasks", "payload": {"title": "x"}, "permissions": "public"}}]
        });
        let v = ok(&app, "POST", "/api/flows", Some(public)).await;
        let pid = v["data"]["id"].as_str().unwrap().to_owned();
        let run = ok(
            &app,
            "POST",
            &format!("/api/flows/{pid}/run"),
            Some(json!(null)),
        )
        .await;
        assert_eq!(
            run["data"]["status"], "failed",
            "{name}: the public role may not create"
        );

        // A chain that doubles its data each step stops at the size limit, not at memory's end.
        let grow = json!({"trigger": {"type": "manual"}, "operations": [
            {"key": "grow", "type": "transform", "options": {"json": ["{{$last}}", "{{$last}}"]}, "resolve": "grow"}]});
        let v = ok(&app, "POST", "/api/flows", Some(grow)).await;
        let gid = v["data"]["id"].as_str().unwrap().to_owned();
        let run = ok(
            &app,
            "POST",
            &format!("/api/flows/{gid}/run"),
            Some(json!("x".repeat(1000))),
        )
        .await;
        assert_eq!(run["data"]["status"], "failed", "{name}");
        assert!(
            run["data"]["error"].as_str().unwrap().contains("exceed"),
            "{name}: {}",
            run["data"]["error"]
        );
        assert!(
            run["data"]["steps"].as_array().unwrap().len() < 20,
            "{name}"
        );

        let runs = ok(&app, "GET", &format!("/api/flows/{id}/runs"), None).await;
        assert_eq!(runs["data"].as_array().unwrap().len(), 2, "{name}");
        assert_eq!(runs["data"][0]["trigger"], "manual");
        // With the default configuration, schedules more often than every minute are refused.
        let strict = Flows::new(
            Store::new(t.db.clone()),
            Guard::new(Allow::none(), Duration::from_secs(1)),
            None,
            FlowsConfig::default(),
        );
        let every_10s = serde_json::from_value(
            json!({"trigger": {"type": "schedule", "cron": "*/10 * * * * *"},
            "operations": [{"key": "a", "type": "log"}]}),
        )
        .unwrap();
        let err = strict.create(&admin(), every_10s).await.unwrap_err();
        assert!(err.to_string().contains("more often"), "{name}: {err}");
        let hourly =
            serde_json::from_value(json!({"trigger": {"type": "schedule", "cron": "0 * * * *"},
            "operations": [{"key": "a", "type": "log"}]}))
            .unwrap();
        strict.create(&admin(), hourly).await.unwrap();

        // Another tenant's admin sees none of it; an inactive flow does not run.
        let other = admin().with_tenant("11111111-1111-4111-8111-111111111111");
        let (s, _) = call(&app, Some(&other), "GET", &format!("/api/flows/{id}"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        ok(
            &app,
            "PATCH",
            &format!("/api/flows/{id}"),
            Some(json!({"active": false})),
        )
        .await;
        let (s, _) = call(
            &app,
            Some(&admin()),
            "POST",
            &format!("/api/flows/{id}/run"),
            Some(json!({})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{name}");
        let (s, _) = call(
            &app,
            Some(&admin()),
            "DELETE",
            &format!("/api/flows/{id}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}");
        let (s, _) = call(
            &app,
            Some(&admin()),
            "GET",
            &format!("/api/flows/{id}/runs"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_schedule_and_webhook_triggers() {
    for t in dbs().await {
        let name = t.name();
        let App { app, flows, .. } = flows_app(&t).await;
        let audit = json!({
            "trigger": {"type": "event", "collections": ["tasks"], "actions": ["create"], "filter": "status = 'open'"},
            "operations": [{"key": "copy", "type": "item", "options": {"permissions": "admin",
                "collection": "audit", "payload": {"title": "saw {{$trigger.item.title}}", "status": "{{$trigger.action}}"}}}]
        });
        let v = ok(&app, "POST", "/api/flows", Some(audit)).await;
        let audit_id = v["data"]["id"].as_str().unwrap().to_owned();
        // A flow that writes to the collection that starts it runs once per outside write.
        let echo = json!({
            "trigger": {"type": "event", "collections": ["tasks"], "actions": ["create"]},
            "operations": [{"key": "again", "type": "item", "options": {"permissions": "admin",
                "collection": "tasks", "payload": {"title": "echo of {{$trigger.item.title}}", "status": "echo"}}}]
        });
        let v = ok(&app, "POST", "/api/flows", Some(echo)).await;
        let echo_id = v["data"]["id"].as_str().unwrap().to_owned();
        let tick = json!({"trigger": {"type": "schedule", "cron": "* * * * * *"},
                          "operations": [{"key": "note", "type": "log", "options": {"message": "tick {{$trigger.slot}}"}}]});
        let v = ok(&app, "POST", "/api/flows", Some(tick)).await;
        let tick_id = v["data"]["id"].as_str().unwrap().to_owned();
        // `respond` names what the caller of the hook gets back; `respond` must name an operation.
        let bad = json!({"trigger": {"type": "webhook", "respond": "nope"},
                         "operations": [{"key": "echo", "type": "transform", "options": {"json": {}}}]});
        let (s, v) = call(&app, Some(&admin()), "POST", "/api/flows", Some(bad)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        let hook = json!({"trigger": {"type": "webhook", "respond": "echo"},
                          "operations": [
                              {"key": "secret", "type": "transform", "resolve": "echo",
                               "options": {"json": {"internal": "a secret {{$trigger.order}}"}}},
                              {"key": "echo", "type": "transform", "options": {"json": {"got": "{{$trigger.order}}"}}}]});
        let v = ok(&app, "POST", "/api/flows", Some(hook)).await;
        let hook_id = v["data"]["id"].as_str().unwrap().to_owned();
        let token = v["hookToken"].as_str().unwrap().to_owned();

        let workers = flows.start().await.unwrap();
        ok(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "a", "status": "open"})),
        )
        .await;
        ok(
            &app,
            "POST",
            "/api/items/tasks",
            Some(json!({"title": "b", "status": "closed"})),
        )
        .await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let audit_rows = loop {
            let v = ok(&app, "GET", "/api/items/audit", None).await;
            if !v["data"].as_array().unwrap().is_empty() || std::time::Instant::now() > deadline {
                break v["data"].as_array().unwrap().clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(audit_rows.len(), 1, "{name}: {audit_rows:?}");
        assert_eq!(audit_rows[0]["title"], "saw a");
        assert_eq!(audit_rows[0]["status"], "create");
        tokio::time::sleep(Duration::from_millis(2_600)).await;
        let echoes = ok(&app, "GET", &format!("/api/flows/{echo_id}/runs"), None).await;
        assert_eq!(
            echoes["data"].as_array().unwrap().len(),
            2,
            "{name}: one per outside write, none for its own"
        );
        let tasks = ok(&app, "GET", "/api/items/tasks?meta=count", None).await;
        assert_eq!(tasks["meta"]["count"], 4, "{name}: a, b and their echoes");
        let runs = ok(&app, "GET", &format!("/api/flows/{audit_id}/runs"), None).await;
        let runs = runs["data"].as_array().unwrap();
        assert_eq!(
            runs.len(),
            1,
            "{name}: the audit flow's own write is in `audit`, not `tasks`"
        );
        assert_eq!(
            (runs[0]["trigger"].as_str(), runs[0]["status"].as_str()),
            (Some("event"), Some("succeeded"))
        );
        let ticks = ok(&app, "GET", &format!("/api/flows/{tick_id}/runs"), None).await;
        let ticks = ticks["data"].as_array().unwrap();
        assert!(ticks.len() >= 2, "{name}: {ticks:?}");
        assert!(ticks.iter().all(|r| r["trigger"] == "schedule"), "{name}");
        assert!(
            ticks.iter().filter(|r| r["status"] == "succeeded").count() >= 1,
            "{name}"
        );
        drop(workers);
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
        assert!(
            flows.prune(later).await.unwrap() >= 5,
            "{name}: finished runs go"
        );
        let runs = ok(&app, "GET", &format!("/api/flows/{audit_id}/runs"), None).await;
        assert!(runs["data"].as_array().unwrap().is_empty(), "{name}");

        // The incoming webhook: anyone with the token; a wrong one or none is a 404.
        let uri = |t: &str| format!("/api/flows/{hook_id}/hook?token={t}");
        let (s, _) = call(&app, None, "POST", &uri("wrong"), Some(json!({"order": 1}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        let (s, _) = call(
            &app,
            None,
            "POST",
            &format!("/api/flows/{hook_id}/hook"),
            Some(json!({"order": 1})),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        let (s, v) = call(&app, None, "POST", &uri(&token), Some(json!({"order": 7}))).await;
        assert_eq!(s, StatusCode::OK, "{name}: {v}");
        // The token in a header, kept out of access logs.
        let req = axum::http::Request::builder()
            .method("POST")
            .uri(workeros_tests::mount::uri(&format!(
                "/api/flows/{hook_id}/hook"
            )))
            .header("x-workeros-token", &token)
            .body(axum::body::Body::from("{\"order\": 8}"))
            .unwrap();
        let res = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        // Only what the flow chose to return: no steps, no trigger data, no other output.
        assert_eq!(v["data"]["output"], json!({"got": 7}), "{name}: {v}");
        assert_eq!(v["data"]["status"], "succeeded", "{name}");
        let keys: Vec<&String> = v["data"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "output", "status"], "{name}: {v}");
        assert!(!v.to_string().contains("a secret"), "{name}: {v}");
        // The whole run is the tenant admins' to read.
        let runs = ok(&app, "GET", &format!("/api/flows/{hook_id}/runs"), None).await;
        assert!(runs.to_string().contains("a secret 7"), "{name}");
        // A manual run of a webhook flow is refused; a token of one flow does not open another.
        let (s, _) = call(
            &app,
            Some(&admin()),
            "POST",
            &format!("/api/flows/{hook_id}/run"),
            Some(json!(null)),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{name}");
        // A manual run takes JSON only: a form or text body (which another site's page can send
        // without a preflight, with the session cookie of a sibling subdomain) is refused, and the
        // flow does not run.
        let manual = json!({"trigger": {"type": "manual"},
                            "operations": [{"key": "note", "type": "log", "options": {"message": "ran"}}]});
        let pid = ok(&app, "POST", "/api/flows", Some(manual)).await["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let run = ok(
            &app,
            "POST",
            &format!("/api/flows/{pid}/run"),
            Some(json!(null)),
        )
        .await;
        assert_eq!(run["data"]["status"], "succeeded", "{name}: JSON runs");
        let before = ok(&app, "GET", &format!("/api/flows/{pid}/runs"), None).await["data"]
            .as_array()
            .unwrap()
            .len();
        for (kind, body) in [
            ("text/plain", "{\"amount\": 1}"),
            ("application/x-www-form-urlencoded", "amount=1"),
            ("multipart/form-data; boundary=x", "--x--"),
        ] {
            let mut req = axum::http::Request::builder()
                .method("POST")
                .uri(workeros_tests::mount::uri(&format!("/api/flows/{pid}/run")))
                .header("content-type", kind)
                .body(axum::body::Body::from(body))
                .unwrap();
            req.extensions_mut().insert(admin());
            let res = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}: {kind}");
        }
        let after = ok(&app, "GET", &format!("/api/flows/{pid}/runs"), None).await["data"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(after, before, "{name}: no run started");
        let (s, _) = call(
            &app,
            None,
            "POST",
            &format!("/api/flows/{audit_id}/hook?token={token}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
        t.close().await;
    }
}
