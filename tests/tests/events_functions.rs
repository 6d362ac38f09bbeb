//! Event functions on SQLite and PostgreSQL: handlers for events (with a DSL filter) and cron
//! schedules; events written before the functions start are caught up, failures and panics are
//! retried then marked failed, a handler never holds up the write, and two instances run each
//! cron slot exactly once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use workeros_core::EventAction;
use workeros_events::functions::{EventCall, Tick};
use workeros_events::{EventTrigger, Functions, FunctionsConfig};
use workeros_store::{NewItems, Store, migrate};
use workeros_tests::fixtures::admin;
use workeros_tests::stores::{TestDb, dbs, shared};

fn config() -> FunctionsConfig {
    FunctionsConfig {
        schedule: vec![
            Duration::ZERO,
            Duration::from_millis(50),
            Duration::from_millis(50),
        ],
        lease: Duration::from_secs(5),
        poll: Duration::from_millis(50),
        ..FunctionsConfig::default()
    }
}

async fn store_on(t: &TestDb) -> Store {
    migrate(&t.db).await.unwrap();
    workeros_events::migrate(&t.db).await.unwrap();
    Store::new(t.db.clone())
}

async fn tasks(store: &Store) {
    store
        .create_collection(
            &admin(),
            serde_json::from_value(json!({"slug": "tasks", "fields": [
                {"name": "title", "type": "text"}, {"name": "status", "type": "text"}
            ]}))
            .unwrap(),
        )
        .await
        .unwrap();
}

async fn create(store: &Store, title: &str, status: &str) {
    store
        .create_items(
            &admin(),
            "tasks",
            NewItems::from_json(json!({"title": title, "status": status})).unwrap(),
        )
        .await
        .unwrap();
}

async fn until(what: &str, pred: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !pred() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_functions_catch_up_retry_and_never_block_the_write() {
    // The `boom` handler panics on purpose: keep its reports out of the output.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"handler bug") {
            default(info);
        }
    }));
    for t in dbs().await {
        let name = t.name();
        let store = store_on(&t).await;
        tasks(&store).await;
        let fns = Functions::new(store.clone(), config());
        store.add_sink(Arc::new(fns.clone()));
        let seen: Arc<Mutex<Vec<(String, String, i64)>>> = Arc::default();
        let log = seen.clone();
        fns.on_event(
            "published",
            EventTrigger {
                collections: vec!["tasks".into()],
                actions: vec![EventAction::Create],
                filter: Some(json!("status = 'published'")),
            },
            move |c: EventCall| {
                let log = log.clone();
                async move {
                    let title = c.event.data.unwrap()["title"].as_str().unwrap().to_owned();
                    log.lock()
                        .unwrap()
                        .push(("published".into(), title, c.attempt));
                    Ok(())
                }
            },
        )
        .unwrap();
        let log = seen.clone();
        fns.on_event("flaky", EventTrigger::default(), move |c: EventCall| {
            let log = log.clone();
            async move {
                let title = c.event.data.as_ref().map_or(String::new(), |d| {
                    d["title"].as_str().unwrap_or_default().to_owned()
                });
                log.lock().unwrap().push(("flaky".into(), title, c.attempt));
                if c.attempt == 1 {
                    Err("not yet".into())
                } else {
                    Ok(())
                }
            }
        })
        .unwrap();
        fns.on_event(
            "boom",
            EventTrigger::default(),
            |_c: EventCall| async move { panic!("handler bug") },
        )
        .unwrap();
        // A handler that waits for the test: the write must return before it finishes.
        let (gate, gate_rx) = tokio::sync::watch::channel(false);
        let released = Arc::new(Mutex::new(false));
        let r = released.clone();
        fns.on_event("slow", EventTrigger::default(), move |_c: EventCall| {
            let (mut g, r) = (gate_rx.clone(), r.clone());
            async move {
                let _ = g.wait_for(|open| *open).await;
                *r.lock().unwrap() = true;
                Ok(())
            }
        })
        .unwrap();
        assert!(
            fns.on_event("flaky", EventTrigger::default(), |_c: EventCall| async {
                Ok(())
            })
            .is_err()
        );
        assert!(
            fns.on_cron("bad", "not cron", |_t: Tick| async { Ok(()) })
                .is_err()
        );
        assert!(
            fns.on_event(
                "needs collections",
                EventTrigger {
                    filter: Some(json!("status = 'x'")),
                    ..EventTrigger::default()
                },
                |_c: EventCall| async { Ok(()) }
            )
            .is_err()
        );

        // Consumers register at start: events committed before it are not the functions' (on
        // PostgreSQL, those of transactions still running beside the start may be: other tests
        // run beside this one, so only SQLite asserts it).
        create(&store, "before start", "published").await;
        let workers = fns.start().await.unwrap();
        create(&store, "a", "published").await;
        create(&store, "b", "draft").await;
        let started = std::time::Instant::now();
        until("the published run", || {
            seen.lock()
                .unwrap()
                .iter()
                .any(|(f, t, _)| f == "published" && t == "a")
        })
        .await;
        assert!(
            !*released.lock().unwrap(),
            "{name}: the slow handler finished first"
        );
        until("the flaky retry", || {
            seen.lock()
                .unwrap()
                .iter()
                .filter(|(f, t, _)| f == "flaky" && (t == "a" || t == "b"))
                .count()
                == 4
        })
        .await;
        let published: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, _, _)| f == "published")
            .map(|(_, t, _)| t.clone())
            .collect();
        let want: &[&str] = if name == "sqlite" {
            &["a"]
        } else {
            &["before start", "a"]
        };
        assert!(
            published.iter().filter(|t| *t == "a").count() == 1
                && published.iter().all(|t| want.contains(&t.as_str())),
            "{name}: the filter, and nothing from before start: {published:?}"
        );
        let mut flaky: Vec<i64> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, t, _)| f == "flaky" && (t == "a" || t == "b"))
            .map(|(_, _, a)| *a)
            .collect();
        flaky.sort_unstable();
        assert_eq!(
            flaky,
            vec![1, 1, 2, 2],
            "{name}: each of two events failed once, then succeeded"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let boom = loop {
            let runs = fns.runs("boom", 10).await.unwrap();
            if runs.len() >= 2 && runs.iter().all(|r| r.state == "failed")
                || std::time::Instant::now() > deadline
            {
                break runs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(boom.len() >= 2, "{name}");
        for r in &boom {
            assert_eq!(
                (r.state.as_str(), r.attempts),
                ("failed", 3),
                "{name}: {r:?}"
            );
            assert_eq!(r.last_error.as_deref(), Some("the handler panicked"));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let flaky_runs = loop {
            let runs = fns.runs("flaky", 10).await.unwrap();
            if runs.iter().all(|r| r.state == "succeeded") || std::time::Instant::now() > deadline {
                break runs;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            flaky_runs
                .iter()
                .all(|r| r.state == "succeeded" && r.attempts == 2),
            "{name}: {flaky_runs:?}"
        );
        gate.send_replace(true);
        until("the slow handler", || *released.lock().unwrap()).await;
        // Pruning removes finished runs only.
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while fns
            .runs("slow", 10)
            .await
            .unwrap()
            .iter()
            .any(|r| r.state == "pending")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: the slow run stays pending"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(fns.prune(later).await.unwrap() > 2 + 2 + 2, "{name}");
        assert!(fns.runs("boom", 10).await.unwrap().is_empty(), "{name}");
        eprintln!("{name}: functions ran in {:?}", started.elapsed());
        drop(workers);
        t.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_run_each_cron_slot_once() {
    for group in shared(2).await {
        let name = group[0].name();
        let ran: Arc<Mutex<BTreeMap<i64, Vec<usize>>>> = Arc::default();
        let mut workers = Vec::new();
        for (i, t) in group.iter().enumerate() {
            let store = store_on(t).await;
            let fns = Functions::new(store, config());
            let log = ran.clone();
            fns.on_cron("every-second", "* * * * * *", move |tick: Tick| {
                let log = log.clone();
                async move {
                    log.lock()
                        .unwrap()
                        .entry(tick.slot.unix_timestamp())
                        .or_default()
                        .push(i);
                    Ok(())
                }
            })
            .unwrap();
            workers.push(fns.start().await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(4_500)).await;
        drop(workers);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ran = ran.lock().unwrap().clone();
        let slots: Vec<i64> = ran.keys().copied().collect();
        assert!(slots.len() >= 4, "{name}: {ran:?}");
        // Each slot once, and none missing between the first and the last.
        assert!(
            ran.values().all(|who| who.len() == 1),
            "{name}: doubled: {ran:?}"
        );
        let last = slots.last().unwrap();
        // The catch-up window reaches five minutes back: the first slots may be older than the
        // start; from the first to the last none is missing.
        assert_eq!(
            usize::try_from(last - slots[0] + 1).unwrap(),
            slots.len(),
            "{name}: a gap: {slots:?}"
        );
        let by: Vec<usize> = ran.values().map(|w| w[0]).collect();
        eprintln!("{name}: {} slots, run by instance {by:?}", slots.len());
        for t in group.into_iter().rev() {
            t.close().await;
        }
    }
}
