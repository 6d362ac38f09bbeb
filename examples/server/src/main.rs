//! `example-server`: the workeros example server.
//!
//! Environment: `DATABASE_URL` (default `sqlite://./.data/workeros.sqlite`, folder and file
//! created), `WORKEROS_ADDR` (default `127.0.0.1:8080`), `WORKEROS_ADMIN_TOKEN` (a static admin
//! bearer token; when unset, one is generated and printed once). `RUST_LOG` sets the log filter.
//! Stops gracefully on SIGINT and SIGTERM.

use std::process::ExitCode;
use tracing_subscriber::EnvFilter;
use workeros_store::{Db, Store, migrate};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://./.data/workeros.sqlite".into());
    let addr = std::env::var("WORKEROS_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let token = match std::env::var("WORKEROS_ADMIN_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => {
            let t = format!(
                "wk_{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            println!("admin token (set WORKEROS_ADMIN_TOKEN to keep one): {t}");
            t
        }
    };
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    let applied = migrate(&db).await.map_err(|e| e.to_string())?;
    tracing::info!(?applied, "database ready");
    let app = example_server::app(Store::new(db.clone()), &token);
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
        format!("cannot listen on `{addr}` ({e}); set WORKEROS_ADDR to a free address")
    })?;
    println!("listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
