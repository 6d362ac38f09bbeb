//! SQLite group commit (`workeros-store/src/writer.rs`): writes that arrive together share one
//! transaction's commit, each keeps its own result and its own rollback, no write is answered
//! before the commit that makes it durable, and `kill -9` during a burst of grouped writes loses
//! no acknowledged write.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sea_query::{Alias, Expr, Query};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use workeros_store::{Db, NewItems, Store, StoreError, migrate};
use workeros_tests::fixtures::admin;
use workeros_tests::stores::{TestDb, sql_table, sqlite_file};

/// Lets a spawned writer reach the writer's queue.
const SETTLE: Duration = Duration::from_millis(150);

fn insert(k: &str) -> sea_query::InsertStatement {
    let mut q = Query::insert();
    q.into_table(Alias::new("g"))
        .columns([Alias::new("k")])
        .values_panic([Expr::val(k)]);
    q
}

/// Creates the table `g` the statements of [`insert`] write to.
async fn create_g(db: &Db) {
    sqlx::query("CREATE TABLE g (k TEXT PRIMARY KEY)")
        .execute(db.sqlite_pool().unwrap())
        .await
        .unwrap();
}

async fn keys(db: &Db) -> BTreeSet<String> {
    sqlx::query_scalar("SELECT k FROM g")
        .fetch_all(db.sqlite_pool().unwrap())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_rolls_back_alone_and_the_group_commits_once() {
    let t = sqlite_file().await;
    // Groups wait for whoever queues, however slow this test is to queue them.
    let db = t.db.clone().with_group_commit(32, Duration::from_secs(60));
    create_g(&db).await;
    let before = db.group_commits();

    // A writes and holds the turn; B, C and D queue behind it in that order.
    let mut a = db.begin().await.unwrap();
    a.execute(&insert("a")).await.unwrap();
    let b = tokio::spawn({
        let db = db.clone();
        async move {
            let mut b = db.begin().await.unwrap();
            b.execute(&insert("b")).await.unwrap();
            // A duplicate of A's key, which A wrote in this same transaction.
            let dup = b.execute(&insert("a")).await;
            let after = b.execute(&insert("b2")).await;
            (dup.is_err(), after.is_err(), b.commit().await.is_err())
        }
    });
    tokio::time::sleep(SETTLE).await;
    let c = tokio::spawn({
        let db = db.clone();
        async move {
            let mut c = db.begin().await.unwrap();
            c.execute(&insert("c")).await.unwrap();
            c.commit().await
        }
    });
    tokio::time::sleep(SETTLE).await;
    let d = tokio::spawn({
        let db = db.clone();
        async move {
            let mut d = db.begin().await.unwrap();
            d.execute(&insert("d")).await.unwrap();
            // Dropped without committing: rolled back to its savepoint.
        }
    });
    tokio::time::sleep(SETTLE).await;
    // Others wait, so A's commit hands the group on and returns only when the group commits.
    let a = tokio::spawn(a.commit());
    tokio::time::sleep(SETTLE).await;
    let (dup_failed, refused_after, commit_failed) = b.await.unwrap();
    assert!(dup_failed, "B's duplicate key must fail");
    assert!(
        refused_after,
        "a write whose statement failed takes no more statements"
    );
    assert!(
        commit_failed,
        "a write whose statement failed does not commit"
    );
    c.await.unwrap().unwrap();
    d.await.unwrap();
    a.await.unwrap().unwrap();

    let want: BTreeSet<String> = ["a", "c"].into_iter().map(String::from).collect();
    assert_eq!(keys(&db).await, want, "B and D rolled back alone");
    let after = db.group_commits();
    assert_eq!(after.groups - before.groups, 1, "A and C shared one commit");
    assert_eq!(after.writes - before.writes, 2);
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_answered_only_after_its_group_commits() {
    let t = sqlite_file().await;
    let db = t.db.clone().with_group_commit(32, Duration::from_secs(60));
    create_g(&db).await;
    let mut a = db.begin().await.unwrap();
    a.execute(&insert("a")).await.unwrap();
    // B waits for its turn, so A's commit hands the group on to B...
    let (go, hold) = tokio::sync::oneshot::channel::<()>();
    let b = tokio::spawn({
        let db = db.clone();
        async move {
            let mut b = db.begin().await.unwrap();
            b.execute(&insert("b")).await.unwrap();
            hold.await.unwrap();
            b.commit().await
        }
    });
    tokio::time::sleep(SETTLE).await;
    let a = tokio::spawn(a.commit());
    tokio::time::sleep(SETTLE).await;
    // ...and is not answered while B holds the group open: nothing of A is visible to a
    // reader on another connection, and A's commit has not returned.
    assert!(
        !a.is_finished(),
        "A was answered before its group committed"
    );
    assert!(keys(&db).await.is_empty(), "an open group is visible");
    go.send(()).unwrap();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(keys(&db).await.len(), 2);
    t.close().await;
}

/// A store with collection `notes` (a unique `code`), and the notes table as SQL names it.
async fn store_with_notes(t: &TestDb) -> (Store, String) {
    migrate(&t.db).await.unwrap();
    let store = Store::new(t.db.clone());
    let info = store
        .create_collection(
            &admin(),
            serde_json::from_value(json!({"slug": "notes", "fields": [
                {"name": "code", "type": "text", "unique": true},
                {"name": "body", "type": "text"}
            ]}))
            .unwrap(),
        )
        .await
        .unwrap();
    let table = format!(
        "\"{}\"",
        t.db.names().collection_physical(&info.physical_table)
    );
    (store, table)
}

async fn count(db: &Db, sql: String) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(db.sqlite_pool().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_group_and_a_conflict_fails_only_its_own() {
    let t = sqlite_file().await;
    let (store, notes) = store_with_notes(&t).await;
    let before = t.db.group_commits();
    let activity = sql_table(&t.db, "activity");
    let events = sql_table(&t.db, "events");
    let journal = |table: &str| format!("SELECT count(*) FROM {table} WHERE collection = 'notes'");
    // The collection's own creation is journaled too.
    let activity_before = count(&t.db, journal(&activity)).await;
    let events_before = count(&t.db, journal(&events)).await;
    let mut tasks = Vec::new();
    for i in 0..96 {
        let store = store.clone();
        // Every eighth write repeats the code of the write before it.
        let code = if i % 8 == 7 { i - 1 } else { i };
        tasks.push(tokio::spawn(async move {
            let body = json!({"code": format!("c{code}"), "body": format!("write {i}")});
            store
                .create_items(&admin(), "notes", NewItems::from_json(body).unwrap())
                .await
        }));
    }
    let (mut ok, mut conflicts) = (0i64, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("a write failed: {e}"),
        }
    }
    assert_eq!((ok, conflicts), (84, 12));
    assert_eq!(
        count(&t.db, format!("SELECT count(*) FROM {notes}")).await,
        ok
    );
    assert_eq!(
        count(&t.db, journal(&activity)).await - activity_before,
        ok,
        "each committed write has its activity row and no failed one has"
    );
    assert_eq!(
        count(&t.db, journal(&events)).await - events_before,
        ok,
        "each committed write has its outbox event and no failed one has"
    );
    let after = t.db.group_commits();
    let (groups, writes) = (after.groups - before.groups, after.writes - before.writes);
    assert_eq!(writes, 84);
    assert!(groups < writes, "{writes} writes took {groups} commits");
    t.close().await;
}

/// A child process writes in bursts of grouped creates and prints each key once its create
/// returned; it is killed with SIGKILL at random moments, again and again. Every key it printed
/// must be in the database, with its activity row and its outbox event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_grouped_writes_loses_no_acknowledged_write() {
    let t = sqlite_file().await;
    let (_, notes) = store_with_notes(&t).await;
    let url = t.child_args().unwrap().remove(0);
    let mut acknowledged = BTreeSet::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..6 {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_group_writer"))
            .args([&url, &format!("r{round}")])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the writer");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run = Duration::from_millis(300 + seed % 700);
        let deadline = tokio::time::Instant::now() + run;
        loop {
            match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    if let Some(key) = line.strip_prefix("ok ") {
                        acknowledged.insert(key.to_owned());
                    }
                }
                Ok(Ok(None)) => panic!("the writer ended by itself"),
                Ok(Err(e)) => panic!("cannot read the writer: {e}"),
                Err(_) => break,
            }
        }
        child.start_kill().unwrap(); // SIGKILL
        // What it printed before it died is acknowledged too.
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(key) = line.strip_prefix("ok ") {
                acknowledged.insert(key.to_owned());
            }
        }
        child.wait().await.unwrap();
    }
    assert!(
        acknowledged.len() > 200,
        "too few writes to mean anything: {}",
        acknowledged.len()
    );
    // A fresh handle, as after a restart.
    let db = Db::connect(&url).await.unwrap();
    let activity = sql_table(&db, "activity");
    let events = sql_table(&db, "events");
    let stored: BTreeSet<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT code FROM {notes} n WHERE EXISTS (SELECT 1 FROM {activity} a \
         WHERE a.collection = 'notes' AND a.item_id = n.id) AND EXISTS (SELECT 1 FROM {events} e \
         WHERE e.collection = 'notes' AND e.item_id = n.id)"
    )))
    .fetch_all(db.sqlite_pool().unwrap())
    .await
    .unwrap()
    .into_iter()
    .collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost (or lost their journal): {:?}",
        lost.len(),
        acknowledged.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    db.close().await;
    t.close().await;
}

/// A write alone (nothing run yet, nobody else in the group or waiting) sends its statements
/// with `BEGIN IMMEDIATE` and `COMMIT` in one call: its rows are there when it returns, a failing
/// one leaves nothing of itself (not its first statement either) and no transaction open behind
/// it, and each counts as a group of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_alone_commits_with_its_statements_and_a_failing_one_leaves_nothing() {
    use workeros_store::Write;
    let t = sqlite_file().await;
    let db = t.db.clone();
    let pool = db.sqlite_pool().unwrap();
    create_g(&db).await;
    let before = db.group_commits();
    let tx = db.begin().await.unwrap();
    tx.commit_with(&[Write::Insert(insert("a")), Write::Insert(insert("b"))])
        .await
        .unwrap();
    assert_eq!(keys(&db).await, BTreeSet::from(["a".into(), "b".into()]));

    // `c` is new, `a` is taken: the write fails whole.
    let tx = db.begin().await.unwrap();
    let e = tx
        .commit_with(&[Write::Insert(insert("c")), Write::Insert(insert("a"))])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(keys(&db).await, BTreeSet::from(["a".into(), "b".into()]));

    // The writer goes on: the next write commits, and another connection may write at once (no
    // transaction was left open holding SQLite's lock).
    let tx = db.begin().await.unwrap();
    tx.commit_with(&[Write::Insert(insert("d"))]).await.unwrap();
    sqlx::query("INSERT INTO g (k) VALUES ('e')")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        keys(&db).await,
        BTreeSet::from(["a".into(), "b".into(), "d".into(), "e".into()])
    );
    let after = db.group_commits();
    assert_eq!(after.groups - before.groups, 2, "{before:?} → {after:?}");
    assert_eq!(after.writes - before.writes, 2);
    t.close().await;
}

/// A write that has run statements and is still alone at its end (an update: the read of its
/// row, then its statements) sends `COMMIT` with its last statements: committed when it
/// returns, a group of one; if one of them fails, the write rolls back whole — what it ran before
/// included — and the writer goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_still_alone_at_its_end_commits_with_its_last_statements() {
    use workeros_store::Write;
    let t = sqlite_file().await;
    let db = t.db.clone();
    let pool = db.sqlite_pool().unwrap();
    create_g(&db).await;
    let before = db.group_commits();
    let mut tx = db.begin().await.unwrap();
    tx.execute(&insert("a")).await.unwrap();
    tx.commit_with(&[Write::Insert(insert("b"))]).await.unwrap();
    assert_eq!(keys(&db).await, BTreeSet::from(["a".into(), "b".into()]));
    let one = db.group_commits();
    assert_eq!(
        (one.groups - before.groups, one.writes - before.writes),
        (1, 1),
        "committed as a group of one before it returned"
    );

    let mut tx = db.begin().await.unwrap();
    tx.execute(&insert("c")).await.unwrap();
    let e = tx
        .commit_with(&[Write::Insert(insert("d")), Write::Insert(insert("a"))])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    // The group the failed write opened ends (nothing of it commits); the next write and another
    // connection write at once.
    let tx = db.begin().await.unwrap();
    tx.commit_with(&[Write::Insert(insert("e"))]).await.unwrap();
    sqlx::query("INSERT INTO g (k) VALUES ('f')")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        keys(&db).await,
        BTreeSet::from(["a".into(), "b".into(), "e".into(), "f".into()])
    );
    let after = db.group_commits();
    assert_eq!(after.writes - before.writes, 2, "{before:?} → {after:?}");
    t.close().await;
}
