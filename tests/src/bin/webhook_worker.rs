//! A process that runs the webhook workers and nothing else, for the durability test to kill:
//! `webhook-worker <sqlite-url>` or `webhook-worker <postgres-url> <schema>`. It prints `ready`
//! once the workers run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;
use workeros_events::{Allow, Guard, WebhookConfig, Webhooks};
use workeros_store::{Db, Store};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = if args[1].starts_with("postgres") {
        let pool = workeros_tests::backend::pg_pool(&args[1], &args[2], 4).await;
        workeros_tests::stores::pg_db(pool, &args[2]).await
    } else {
        Db::connect(&args[1]).await.expect("open the database")
    };
    let config = WebhookConfig {
        schedule: vec![Duration::from_millis(100); 30],
        lease: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        poll: Duration::from_millis(20),
        dispatch_batch: 100,
        concurrency: 16,
        ..WebhookConfig::default()
    };
    let guard = Guard::new(Allow::parse("127.0.0.1/32").unwrap(), config.timeout);
    let hooks = Webhooks::new(Store::new(db), guard, config);
    let _workers = hooks.start().await.unwrap();
    println!("ready");
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
