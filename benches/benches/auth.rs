//! Auth benches on each database: a login (Argon2id verification, a new session row), the
//! per-request session lookup, cached (the credential cache: no database round trip) and
//! uncached (a zero cache age: token digest, session + user, roles, as every request did before
//! the cache), the same for an API key, and password hashing alone.
//!
//! PostgreSQL runs when `WORKEROS_TEST_PG` is set (a fresh schema, dropped at the end).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;
use workeros_auth::{Auth, AuthConfig, RateLimit, Signup};
use workeros_core::Subject;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dbs = rt.block_on(workeros_tests::stores::dbs());
    let mut g = c.benchmark_group("auth");
    g.bench_function("hash_password", |b| {
        b.iter(|| workeros_auth::password::hash_password("correct horse battery").unwrap())
    });
    g.finish();
    for t in &dbs {
        let (auth, uncached, token, key) = rt.block_on(async {
            workeros_store::migrate(&t.db).await.unwrap();
            workeros_auth::migrate(&t.db).await.unwrap();
            let unlimited = RateLimit {
                max: u32::MAX,
                window: Duration::from_secs(1),
            };
            let auth = Auth::new(
                t.db.clone(),
                AuthConfig {
                    login_per_account: unlimited,
                    login_per_account_address: unlimited,
                    login_per_address: unlimited,
                    ..AuthConfig::default()
                },
            )
            .unwrap();
            let (_, s) = auth
                .signup(&Signup {
                    email: "ann@example.com".into(),
                    password: "correct horse battery".into(),
                    ..Signup::default()
                })
                .await
                .unwrap();
            let subject: Subject = auth.authenticate_session(&s.token).await.unwrap();
            let key = auth
                .create_api_key(&subject, "bench", None)
                .await
                .unwrap()
                .key;
            let uncached = Auth::new(
                t.db.clone(),
                AuthConfig {
                    credential_cache_ttl: Duration::ZERO,
                    ..AuthConfig::default()
                },
            )
            .unwrap();
            (auth, uncached, s.token, key)
        });
        let mut g = c.benchmark_group(format!("auth/{}", t.name()));
        g.sample_size(20);
        g.bench_function("login", |b| {
            b.to_async(&rt).iter(|| async {
                auth.login("ann@example.com", "correct horse battery", None)
                    .await
                    .unwrap()
            })
        });
        g.sample_size(100);
        for (what, a) in [("cached", &auth), ("uncached", &uncached)] {
            g.bench_function(format!("session_lookup_{what}"), |b| {
                b.to_async(&rt)
                    .iter(|| async { a.authenticate_session(&token).await.unwrap() })
            });
            g.bench_function(format!("api_key_lookup_{what}"), |b| {
                b.to_async(&rt)
                    .iter(|| async { a.authenticate_bearer(&key).await.unwrap() })
            });
        }
        g.finish();
    }
    for t in dbs {
        rt.block_on(t.close());
    }
}

criterion_group!(auth, benches);
criterion_main!(auth);
