//! `example-actix`: workeros's items, collections and realtime routes in an actix-web server.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | `sqlite://./.data/actix.sqlite` | SQLite or `postgres://…` |
//! | `WORKEROS_ADDR` | `127.0.0.1:8081` | where to listen |
//! | `WORKEROS_ADMIN_TOKEN` | none | a bootstrap admin bearer token (≥ 16 characters) |
//!
//! Stops gracefully on SIGINT: realtime streams end, then actix drains the other requests.

use actix_web::{App, HttpServer, web};
use std::process::ExitCode;
use workeros_auth::AuthConfig;
use workeros_store::Db;

#[actix_web::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example-actix: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://./.data/actix.sqlite".into());
    let addr = std::env::var("WORKEROS_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let config = AuthConfig {
        bootstrap_token: std::env::var("WORKEROS_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        ..AuthConfig::default()
    };
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    let wk = example_actix::Workeros::new(db.clone(), config)
        .await
        .map_err(|e| e.to_string())?;
    let workers = wk.start().await.map_err(|e| e.to_string())?;
    let routes = wk.clone();
    let server = HttpServer::new(move || {
        App::new().service(web::scope("").configure(example_actix::configure(routes.clone())))
    })
    .disable_signals()
    .bind(&addr)
    .map_err(|e| format!("cannot listen on `{addr}` ({e}); set WORKEROS_ADDR to a free address"))?
    .run();
    let handle = server.handle();
    let stopping = wk.clone();
    // Realtime streams end first, so actix's graceful stop does not wait on them.
    actix_web::rt::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stopping.realtime.close();
        handle.stop(true).await;
    });
    println!("listening on http://{addr}");
    server.await.map_err(|e| e.to_string())?;
    wk.shutdown(workers).await;
    db.close().await;
    Ok(())
}
