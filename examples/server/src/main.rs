//! `example-server`: the workeros example server.
//!
//! Environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | `sqlite://./.data/workeros.sqlite` | SQLite (folder and file created) or `postgres://…` |
//! | `WORKEROS_ADDR` | `127.0.0.1:8080` | where to listen |
//! | `WORKEROS_ADMIN_TOKEN` | generated, printed once | a bootstrap admin bearer token (≥ 16 characters) |
//! | `WORKEROS_ORG_MODE` | off | `1`: organizations as tenants; signup takes `organizationName` |
//! | `WORKEROS_PLAIN_HTTP` | off | `1`: session cookies without `Secure`, for `http://` development |
//! | `WORKEROS_TICKET_SECRET` | random per start | realtime ticket key (≥ 32 bytes) |
//! | `WORKEROS_PUBLIC_URL` | empty | base of the links in emails (invitations, resets) |
//! | `WORKEROS_WEBHOOK_ALLOW` | empty | hosts and CIDR ranges (each optionally `:port`) the deployment's own webhooks and flows may reach despite the SSRF guard (`127.0.0.1:9000, hooks.internal`); organizations (org mode) get no exemption |
//! | `RUST_LOG` | `info` | log filter; emails are logged (console sender) |
//! | `WORKEROS_LOG_EMAIL_LINKS` | off | `1`: logged emails keep their links' tokens (development only; otherwise redacted) |
//!
//! Stops gracefully on SIGINT and SIGTERM.
//!
//! `example-server export-migrations <folder> [--dialect postgres|sqlite] [--namespace <name>]`
//! writes the SQL of every migration (store, auth, events) for a host's own migration tool
//! instead of serving (PostgreSQL and `workeros` by default).

use std::net::SocketAddr;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;
use workeros_auth::AuthConfig;
use workeros_store::{Db, Names, Namespace};

fn flag(name: &str) -> bool {
    matches!(std::env::var(name).as_deref(), Ok("1" | "true" | "yes"))
}

#[tokio::main]
async fn main() -> ExitCode {
    // The log (a line per request) is written by a thread of its own through a buffer flushed
    // whenever the queue runs dry: no write call in the request, and few under load. Nothing is
    // dropped (a full queue makes the logging request wait); the guard flushes at exit.
    let (log, _flush_at_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::new(std::io::stdout()));
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(log)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("export-migrations") => export_migrations(args.get(1..).unwrap_or_default()),
        Some(other) => Err(format!(
            "unknown command `{other}`: run without arguments to serve, or \
             `export-migrations <folder> [--dialect postgres|sqlite] [--namespace <name>]`"
        )),
        None => run().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `export-migrations <folder> [--dialect postgres|sqlite] [--namespace <name>]`.
fn export_migrations(args: &[String]) -> Result<(), String> {
    let usage = "usage: example-server export-migrations <folder> [--dialect postgres|sqlite] \
                 [--namespace <name>]";
    let mut dir = None;
    let mut dialect = workeros_dsl::Dialect::Postgres;
    let mut namespace = Namespace::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dialect" => {
                dialect = match it.next().map(String::as_str) {
                    Some("postgres") => workeros_dsl::Dialect::Postgres,
                    Some("sqlite") => workeros_dsl::Dialect::Sqlite,
                    other => {
                        return Err(format!(
                            "`--dialect` takes `postgres` or `sqlite`, not `{}`; {usage}",
                            other.unwrap_or("")
                        ));
                    }
                }
            }
            "--namespace" => {
                let name = it
                    .next()
                    .ok_or(format!("`--namespace` needs a name; {usage}"))?;
                namespace = Namespace::new(name.as_str()).map_err(|e| e.to_string())?;
            }
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option `{flag}`; {usage}"));
            }
            folder if dir.is_none() => dir = Some(std::path::PathBuf::from(folder)),
            extra => return Err(format!("unexpected argument `{extra}`; {usage}")),
        }
    }
    let dir = dir.ok_or(format!("name the folder to write to; {usage}"))?;
    let names = Names::new(dialect, namespace, None);
    for path in example_server::write_migrations(&dir, &names)? {
        println!("{}", path.display());
    }
    Ok(())
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
    let config = AuthConfig {
        org_mode: flag("WORKEROS_ORG_MODE"),
        secure_cookies: !flag("WORKEROS_PLAIN_HTTP"),
        ticket_secret: std::env::var("WORKEROS_TICKET_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes),
        link_base: std::env::var("WORKEROS_PUBLIC_URL").unwrap_or_default(),
        bootstrap_token: Some(token),
        ..AuthConfig::default()
    };
    let events = workeros::EventsConfig {
        allow: workeros_events::Allow::from_env()?,
        ..Default::default()
    };
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    let wk = example_server::build(db.clone(), config, events)
        .await
        .map_err(|e| e.to_string())?;
    // Dispatch, delivery, flow runs, functions, outbox pruning and (on PostgreSQL) other
    // instances' events go on beside the server; instances share the work.
    let running = wk.start().await.map_err(|e| e.to_string())?;
    let app = example_server::app(&wk).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
        format!("cannot listen on `{addr}` ({e}); set WORKEROS_ADDR to a free address")
    })?;
    println!("listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown().await;
            // Realtime streams end, so the server drains; what is in flight finishes (or,
            // past its timeout, is sent again after its lease).
            running.shutdown().await;
        })
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
