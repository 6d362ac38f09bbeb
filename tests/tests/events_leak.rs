//! The realtime leak property, on SQLite and PostgreSQL: random writes × subscribers with
//! different roles, attributes and filters. After every write, each subscriber's frames are
//! compared with the items API asked as that subscriber at that moment: every delivered payload
//! equals what the API returns for the row, and every change the subscriber may see is delivered
//! (as `create` when the row enters its set, `update` while it stays, `delete` when it leaves).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use workeros_core::{Subject, User};
use workeros_events::{Realtime, RealtimeConfig, Subscribe, Subscription};
use workeros_store::{ListQuery, NewItems, PermissionInput, Store, Written, migrate};
use workeros_tests::fixtures::admin;
use workeros_tests::stores::dbs;

#[derive(Debug, Clone)]
enum Op {
    Create {
        title: &'static str,
        status: &'static str,
        team: &'static str,
        secret: &'static str,
    },
    Update {
        at: usize,
        field: &'static str,
        value: &'static str,
    },
    Delete {
        at: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let title = prop::sample::select(vec!["a", "ab", "b"]);
    let status = prop::sample::select(vec!["draft", "published"]);
    let team = prop::sample::select(vec!["red", "blue"]);
    let secret = prop::sample::select(vec!["s1", "s2"]);
    prop_oneof![
        3 => (title, status, team, secret).prop_map(|(title, status, team, secret)| Op::Create { title, status, team, secret }),
        5 => (0..8usize, prop::sample::select(vec![
                ("title", "a"), ("title", "b"), ("status", "draft"), ("status", "published"),
                ("team", "red"), ("team", "blue"), ("secret", "s3")]))
            .prop_map(|(at, (field, value))| Op::Update { at, field, value }),
        1 => (0..8usize).prop_map(|at| Op::Delete { at }),
    ]
}

/// The subscribers: (subject, own filter).
fn subscribers() -> Vec<(Subject, Option<&'static str>)> {
    let u = |id: &str, roles: &[&str]| User::new(id).with_roles(roles.iter().copied());
    vec![
        (admin(), None),
        (Subject::user(u("v1", &["viewer"])), None),
        (
            Subject::user(u("v2", &["viewer"])),
            Some(r#"title starts_with "a""#),
        ),
        (Subject::user(u("r1", &["red"])), None),
        (Subject::user(u("rv", &["red", "viewer"])), None),
        (
            Subject::user(u("m-red", &["member"]).with_attr("team", "red")),
            None,
        ),
        (
            Subject::user(u("m-red-2", &["member"]).with_attr("team", "red")),
            Some(r#"title = "a""#),
        ),
        (
            Subject::user(u("m-blue", &["member"]).with_attr("team", "blue")),
            None,
        ),
    ]
}

fn input(v: Value) -> PermissionInput {
    serde_json::from_value(v).unwrap()
}

async fn collection(store: &Store, slug: &str) {
    let a = admin();
    store
        .create_collection(
            &a,
            serde_json::from_value(json!({"slug": slug, "fields": [
                {"name": "title", "type": "text"}, {"name": "status", "type": "text"},
                {"name": "team", "type": "text"}, {"name": "secret", "type": "text"}
            ]}))
            .unwrap(),
        )
        .await
        .unwrap();
    for p in [
        json!({"role": "viewer", "collection": slug, "action": "read",
               "filter": {"status": {"_eq": "published"}}, "fields": ["title", "status", "team"]}),
        json!({"role": "red", "collection": slug, "action": "read",
               "filter": {"team": {"_eq": "red"}}, "fields": "*"}),
        json!({"role": "member", "collection": slug, "action": "read",
               "filter": {"team": {"_eq": "$user.team"}}, "fields": ["title", "team"]}),
    ] {
        store.create_permission(&a, input(p)).await.unwrap();
    }
}

/// The row `key` as `subject` reads it through the items API with its own filter, if it may.
async fn read_now(
    store: &Store,
    subject: &Subject,
    slug: &str,
    own: Option<&str>,
    key: &str,
) -> Option<Map<String, Value>> {
    let key_filter = format!(r#"id = "{key}""#);
    let filter = match own {
        Some(f) => format!("({f}) && {key_filter}"),
        None => key_filter,
    };
    let q = ListQuery {
        filter: Some(Value::String(filter)),
        ..ListQuery::default()
    };
    store
        .list_items(subject, slug, &q)
        .await
        .unwrap()
        .data
        .into_iter()
        .next()
}

async fn case(
    store: &Store,
    rt: &Realtime,
    slug: &str,
    ops: &[Op],
    name: &str,
) -> Result<(), TestCaseError> {
    collection(store, slug).await;
    let subs = subscribers();
    let mut streams: Vec<Subscription> = Vec::new();
    for (s, own) in &subs {
        let req = Subscribe {
            collection: Some(slug.to_owned()),
            filter: own.map(|f| Value::String(f.to_owned())),
            ..Subscribe::default()
        };
        streams.push(rt.subscribe(s, req).await.unwrap());
    }
    let mut visible: Vec<HashSet<String>> = vec![HashSet::new(); subs.len()];
    let mut keys: Vec<String> = Vec::new();
    let a = admin();
    for op in ops {
        let key = match op {
            Op::Create {
                title,
                status,
                team,
                secret,
            } => {
                let w = store
                    .create_items(&a, slug, NewItems::from_json(json!({"title": title, "status": status, "team": team, "secret": secret})).unwrap())
                    .await
                    .unwrap();
                let Written::One(row) = w else { panic!() };
                let k = row["id"].as_str().unwrap().to_owned();
                keys.push(k.clone());
                k
            }
            Op::Update { at, field, value } => {
                if keys.is_empty() {
                    continue;
                }
                let k = keys[at % keys.len()].clone();
                let mut patch = Map::new();
                patch.insert((*field).to_owned(), json!(value));
                store.update_item(&a, slug, &k, patch).await.unwrap();
                k
            }
            Op::Delete { at } => {
                if keys.is_empty() {
                    continue;
                }
                let k = keys.remove(at % keys.len());
                store.delete_item(&a, slug, &k).await.unwrap();
                k
            }
        };
        // Writes do not wait for their subscribers: wait for the hub here.
        rt.settled().await;
        for (i, ((s, own), stream)) in subs.iter().zip(streams.iter_mut()).enumerate() {
            let now = read_now(store, s, slug, *own, &key).await;
            let was = visible[i].contains(&key);
            let want: Option<(&str, Option<Value>)> = match (was, &now) {
                (false, Some(row)) => Some(("create", Some(Value::Object(row.clone())))),
                (true, Some(row)) => Some(("update", Some(Value::Object(row.clone())))),
                (true, None) => Some(("delete", None)),
                (false, None) => None,
            };
            if now.is_some() {
                visible[i].insert(key.clone());
            } else {
                visible[i].remove(&key);
            }
            let mut got = Vec::new();
            while let Some(f) = stream.try_next() {
                got.push(f);
            }
            let got: Vec<(String, Option<Value>)> = got
                .iter()
                .map(|f| {
                    let v: Value = serde_json::from_str(&f.data).unwrap();
                    assert_eq!(v["key"], json!(key), "{name}");
                    (f.event.to_string(), v.get("data").cloned())
                })
                .collect();
            let want: Vec<(String, Option<Value>)> =
                want.into_iter().map(|(e, d)| (e.to_owned(), d)).collect();
            prop_assert_eq!(
                &got,
                &want,
                "{}: subscriber {} after {:?}",
                name,
                s.user.as_ref().unwrap().id,
                op
            );
        }
    }
    Ok(())
}

#[test]
fn realtime_never_leaks_and_never_misses() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for t in rt.block_on(dbs()) {
        let name = t.name();
        rt.block_on(migrate(&t.db)).unwrap();
        let store = Store::new(t.db.clone());
        let hub = Realtime::new(store.clone(), RealtimeConfig::default());
        store.add_sink(Arc::new(hub.clone()));
        let mut runner = TestRunner::new(Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        });
        let n = std::sync::atomic::AtomicU32::new(0);
        let result = runner.run(&prop::collection::vec(op(), 1..30), |ops| {
            let slug = format!(
                "leak{}",
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            rt.block_on(case(&store, &hub, &slug, &ops, name))
        });
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
        rt.block_on(t.close());
    }
}
