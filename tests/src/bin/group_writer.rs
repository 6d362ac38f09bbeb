//! A process that writes grouped creates until it is killed, for the group-commit durability
//! test (`tests/tests/store_group_commit.rs`): `group_writer <sqlite-url> <prefix>` creates items
//! of collection `notes` from 32 tasks at once and prints `ok <code>` for each create once it
//! returned, that is once the write was acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::json;
use std::io::Write;
use workeros_store::{Db, NewItems, Store};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = Db::connect(&args[1]).await.expect("open the database");
    let store = Store::new(db);
    let prefix = args[2].clone();
    let mut tasks = Vec::new();
    for task in 0..32 {
        let (store, prefix) = (store.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0u64.. {
                let code = format!("{prefix}-{task}-{n}");
                let body = json!({"code": code, "body": "grouped"});
                store
                    .create_items(
                        &workeros_tests::fixtures::admin(),
                        "notes",
                        NewItems::from_json(body).unwrap(),
                    )
                    .await
                    .expect("a create failed");
                let mut out = std::io::stdout().lock();
                writeln!(out, "ok {code}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
