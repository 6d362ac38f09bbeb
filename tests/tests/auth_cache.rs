//! The credential cache (issue 16): a session or API key is resolved from memory once seen, and
//! a change through one handle is seen by the others at the documented bound — at once in the
//! same process (every `Auth` over clones of one `Db`), by notification on another instance on
//! the same PostgreSQL (a started `Auth`), and at the cache's age limit where nothing tells it.
//! Two pools on one database stand for two processes. What `me` answers (the user, its roles,
//! its organization) is kept the same way and follows every change at the same bound.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};
use workeros_auth::{Auth, AuthConfig, AuthError, UserPatch, UserStatus};
use workeros_core::Subject;
use workeros_tests::auth::signup;
use workeros_tests::stores::{TestDb, shared};

/// Long enough that only a notification (not the age limit) explains a change seen in a test.
const HOUR: Duration = Duration::from_secs(3600);

fn config(ttl: Duration) -> AuthConfig {
    AuthConfig {
        credential_cache_ttl: ttl,
        ..AuthConfig::default()
    }
}

/// `one` makes the changes; `same` shares its `Db` (this process); `other` is another instance
/// (the test starts it: it listens); `deaf` is another instance that does not listen.
struct Handles {
    one: Auth,
    same: Auth,
    other: Auth,
    deaf: Auth,
}

/// Migrates `first` and makes the [`Handles`] over it and `second` (another pool, as another
/// process), each caching for an hour.
async fn handles(first: &TestDb, second: &TestDb) -> Handles {
    workeros_store::migrate(&first.db).await.unwrap();
    workeros_auth::migrate(&first.db).await.unwrap();
    let auth = |db: &workeros_store::Db| Auth::new(db.clone(), config(HOUR)).unwrap();
    Handles {
        one: auth(&first.db),
        same: auth(&first.db),
        other: auth(&second.db),
        deaf: auth(&second.db),
    }
}

/// Polls `f` until it is `Unauthorized`, up to `within`; how long that took.
async fn refused_within<F, Fut>(within: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Subject, AuthError>>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if matches!(f().await, Err(AuthError::Unauthorized)) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn a_change_through_one_handle_reaches_the_others_at_their_bound() {
    for mut group in shared(2).await {
        let second = group.pop().unwrap();
        let first = group.pop().unwrap();
        let name = first.name();
        let pg = name == "postgres";
        let Handles {
            one,
            same,
            other,
            deaf,
        } = handles(&first, &second).await;
        let workers = other.start().await.unwrap();

        let (_, ann) = one.signup(&signup("ann@example.com")).await.unwrap();
        let (bob_info, bob) = one.signup(&signup("bob@example.com")).await.unwrap();
        let ann_subject = one.authenticate_session(&ann.token).await.unwrap();
        let bob_subject = one.authenticate_session(&bob.token).await.unwrap();
        let key = one
            .create_api_key(&bob_subject, "laptop", None)
            .await
            .unwrap();
        for auth in [&one, &same, &other, &deaf] {
            auth.authenticate_session(&ann.token).await.unwrap();
            auth.authenticate_session(&bob.token).await.unwrap();
            auth.authenticate_bearer(&key.key).await.unwrap();
        }

        // A key revoked: refused at once here and through the other handle of this process; by
        // notification on the listening instance (PostgreSQL); still served from memory where
        // nothing tells (the age limit is the bound).
        one.revoke_api_key(&bob_subject, &key.info.id)
            .await
            .unwrap();
        for auth in [&one, &same] {
            assert!(
                matches!(
                    auth.authenticate_bearer(&key.key).await,
                    Err(AuthError::Unauthorized)
                ),
                "{name}: revoked in this process"
            );
        }
        if pg {
            let took = refused_within(Duration::from_secs(5), || {
                other.authenticate_bearer(&key.key)
            })
            .await;
            assert!(took.is_some(), "{name}: the listening instance was told");
            eprintln!("{name}: a revocation reached the other instance in {took:?}");
        }
        assert!(
            deaf.authenticate_bearer(&key.key).await.is_ok(),
            "{name}: an instance nobody tells serves its cached key until the age limit"
        );

        // A logout and a suspension, the same way.
        one.logout(&ann.token).await.unwrap();
        assert!(
            same.authenticate_session(&ann.token).await.is_err(),
            "{name}"
        );
        let patch = UserPatch {
            name: None,
            status: Some(UserStatus::Suspended),
        };
        one.update_user(&ann_subject, &bob_info.id, &patch)
            .await
            .unwrap();
        assert!(
            same.authenticate_session(&bob.token).await.is_err(),
            "{name}"
        );
        if pg {
            for token in [&ann.token, &bob.token] {
                let took =
                    refused_within(Duration::from_secs(5), || other.authenticate_session(token))
                        .await;
                assert!(took.is_some(), "{name}: the listening instance was told");
            }
        }
        workers.shutdown().await;
        second.close().await;
        first.close().await;
    }
}

#[tokio::test]
async fn where_nothing_tells_the_age_limit_ends_a_cached_credential() {
    for mut group in shared(2).await {
        let second = group.pop().unwrap();
        let first = group.pop().unwrap();
        let name = first.name();
        workeros_store::migrate(&first.db).await.unwrap();
        workeros_auth::migrate(&first.db).await.unwrap();
        let one = Auth::new(first.db.clone(), config(HOUR)).unwrap();
        let ttl = Duration::from_millis(300);
        let deaf = Auth::new(second.db.clone(), config(ttl)).unwrap();
        let (_, ann) = one.signup(&signup("ann@example.com")).await.unwrap();
        deaf.authenticate_session(&ann.token).await.unwrap();
        one.logout(&ann.token).await.unwrap();
        let took = refused_within(Duration::from_secs(10), || {
            deaf.authenticate_session(&ann.token)
        })
        .await;
        assert!(took.is_some(), "{name}: refused once the entry aged out");

        // With no cache at all, every request reads the database: refused at once.
        let uncached = Auth::new(second.db.clone(), config(Duration::ZERO)).unwrap();
        let (_, bob) = one.signup(&signup("bob@example.com")).await.unwrap();
        uncached.authenticate_session(&bob.token).await.unwrap();
        one.logout(&bob.token).await.unwrap();
        assert!(
            uncached.authenticate_session(&bob.token).await.is_err(),
            "{name}"
        );
        second.close().await;
        first.close().await;
    }
}

/// `me` is answered from memory once read (no query), and a rename, a role change or a
/// suspension through any handle of the process shows on the next call; on PostgreSQL a
/// listening instance is told.
#[tokio::test]
async fn what_me_answers_follows_every_change_at_once() {
    for mut group in shared(2).await {
        let second = group.pop().unwrap();
        let first = group.pop().unwrap();
        let name = first.name();
        let pg = name == "postgres";
        let Handles {
            one, same, other, ..
        } = handles(&first, &second).await;
        let workers = other.start().await.unwrap();

        let (_, ann) = one.signup(&signup("ann@example.com")).await.unwrap();
        let (bob_info, bob) = one.signup(&signup("bob@example.com")).await.unwrap();
        let admin = one.authenticate_session(&ann.token).await.unwrap();
        let bob_subject = one.authenticate_session(&bob.token).await.unwrap();
        for auth in [&one, &same, &other] {
            let me = auth.me(&bob_subject).await.unwrap();
            assert_eq!(me.name, None, "{name}");
            assert_eq!(me.roles, vec!["authenticated".to_owned()], "{name}");
        }
        // A change made behind workeros's back (SQL by hand) is not seen: `me` is answered from
        // memory, not read.
        {
            use sea_query::{Alias, Expr, ExprTrait, Query};
            first
                .db
                .execute(
                    Query::update()
                        .table(
                            first
                                .db
                                .table(workeros_tests::stores::system_table("users")),
                        )
                        .value(Alias::new("name"), "changed by hand")
                        .and_where(Expr::col(Alias::new("email")).eq("bob@example.com")),
                )
                .await
                .unwrap();
            let me = same.me(&bob_subject).await.unwrap();
            assert_eq!(me.name, None, "{name}: answered from memory");
        }

        let rename = UserPatch {
            name: Some("Robert".into()),
            status: None,
        };
        one.update_user(&admin, &bob_info.id, &rename)
            .await
            .unwrap();
        for auth in [&one, &same] {
            let me = auth.me(&bob_subject).await.unwrap();
            assert_eq!(
                me.name.as_deref(),
                Some("Robert"),
                "{name}: renamed at once"
            );
        }
        if pg {
            let start = Instant::now();
            while other.me(&bob_subject).await.unwrap().name.is_none() {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{name}: the listening instance was told"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }

        one.set_user_roles(&admin, &bob_info.id, &["admin".to_owned()])
            .await
            .unwrap();
        let me = same.me(&bob_subject).await.unwrap();
        assert_eq!(me.roles, vec!["admin".to_owned()], "{name}: roles at once");

        let suspend = UserPatch {
            name: None,
            status: Some(UserStatus::Suspended),
        };
        one.update_user(&admin, &bob_info.id, &suspend)
            .await
            .unwrap();
        assert!(
            matches!(same.me(&bob_subject).await, Err(AuthError::Unauthorized)),
            "{name}: a suspended user is nobody"
        );
        workers.shutdown().await;
        second.close().await;
        first.close().await;
    }
}
