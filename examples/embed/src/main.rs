//! `example-embed`: the existing service with workeros under `/cms`.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | `sqlite://./.data/embed.sqlite` | the service's database: SQLite or `postgres://…` |
//! | `EMBED_ADDR` | `127.0.0.1:8082` | where to listen |
//! | `EMBED_JWT_SECRET` | random per start | the service's signing key (≥ 32 bytes) |
//!
//! Prints a token for an admin (`root`) at start, for trying the routes with `curl`.

use example_embed::{HostPool, Secret};
use std::process::ExitCode;
use std::str::FromStr;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example-embed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://./.data/embed.sqlite".into());
    let addr = std::env::var("EMBED_ADDR").unwrap_or_else(|_| "127.0.0.1:8082".into());
    let secret = match std::env::var("EMBED_JWT_SECRET") {
        Ok(s) if s.len() >= 32 => s.into_bytes(),
        Ok(_) => return Err("EMBED_JWT_SECRET must be at least 32 bytes".into()),
        // 244 bits from the operating system's generator.
        Err(_) => format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
        .into_bytes(),
    };
    let secret = Secret::new(secret);
    // The service's own pool, as it made it before workeros.
    let pool = if url.starts_with("postgres") {
        HostPool::Postgres(
            sqlx::PgPool::connect(&url)
                .await
                .map_err(|e| e.to_string())?,
        )
    } else {
        if let Some(dir) = url
            .strip_prefix("sqlite://")
            .and_then(|p| std::path::Path::new(p).parent())
        {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .map_err(|e| e.to_string())?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        HostPool::Sqlite(
            sqlx::SqlitePool::connect_with(options)
                .await
                .map_err(|e| e.to_string())?,
        )
    };
    let (app, wk) = example_embed::app(pool, secret.clone(), Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let running = wk.start().await.map_err(|e| e.to_string())?;
    let token = secret.issue("root", "admin").map_err(|e| e.to_string())?;
    println!("admin token (the service's own JWT): {token}");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on `{addr}` ({e}); set EMBED_ADDR"))?;
    println!("listening on http://{addr} (workeros under /cms)");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            running.shutdown().await;
        })
        .await
        .map_err(|e| e.to_string())
}
