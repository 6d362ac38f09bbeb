//! Credentials a thief could hold end when their owner acts (issue 15, finding 7), on SQLite and
//! PostgreSQL: a password change ends every session and every API key of the user (a key minted
//! from a stolen session does not survive it) and keeps only the caller's new session; a
//! suspension ends every session at once, so reactivating the user does not bring an old session
//! back (the per-request status check alone would).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use workeros_auth::{Auth, AuthConfig, AuthError, Signup, UserPatch, UserStatus};
use workeros_tests::stores::{TestDb, dbs};

async fn auth_on(t: &TestDb) -> Auth {
    workeros_store::migrate(&t.db).await.unwrap();
    workeros_auth::migrate(&t.db).await.unwrap();
    Auth::new(t.db.clone(), AuthConfig::default()).unwrap()
}

fn signup(email: &str) -> Signup {
    Signup {
        email: email.into(),
        password: "correct horse battery".into(),
        name: None,
        organization_name: None,
    }
}

#[tokio::test]
async fn a_password_change_ends_every_session_and_every_key() {
    for t in dbs().await {
        let name = t.name();
        let auth = auth_on(&t).await;
        let (_, owners) = auth.signup(&signup("ann@example.com")).await.unwrap();
        // A thief with the session cookie mints a key of their own.
        let stolen = auth.authenticate_session(&owners.token).await.unwrap();
        let key = auth
            .create_api_key(&stolen, "mine now", None)
            .await
            .unwrap()
            .key;
        assert!(auth.authenticate_bearer(&key).await.is_ok(), "{name}");

        let owner = auth.authenticate_session(&owners.token).await.unwrap();
        let fresh = auth
            .change_password(&owner, "correct horse battery", "a brand new passphrase")
            .await
            .unwrap();
        assert!(
            matches!(
                auth.authenticate_bearer(&key).await,
                Err(AuthError::Unauthorized)
            ),
            "{name}: the key minted from the stolen session is gone"
        );
        assert!(
            auth.authenticate_session(&owners.token).await.is_err(),
            "{name}: the old session is gone"
        );
        let now = auth.authenticate_session(&fresh.token).await.unwrap();
        assert!(
            auth.list_api_keys(&now).await.unwrap().is_empty(),
            "{name}: no key is left"
        );
        t.close().await;
    }
}

#[tokio::test]
async fn suspension_ends_sessions_for_good() {
    for t in dbs().await {
        let name = t.name();
        let auth = auth_on(&t).await;
        let (_, admin) = auth.signup(&signup("root@example.com")).await.unwrap();
        let admin = auth.authenticate_session(&admin.token).await.unwrap();
        let (bob, bobs) = auth.signup(&signup("bob@example.com")).await.unwrap();
        assert!(auth.authenticate_session(&bobs.token).await.is_ok());

        let status = |s| UserPatch {
            name: None,
            status: Some(s),
        };
        auth.update_user(&admin, &bob.id, &status(UserStatus::Suspended))
            .await
            .unwrap();
        assert!(
            auth.authenticate_session(&bobs.token).await.is_err(),
            "{name}: suspended"
        );
        auth.update_user(&admin, &bob.id, &status(UserStatus::Active))
            .await
            .unwrap();
        assert!(
            auth.authenticate_session(&bobs.token).await.is_err(),
            "{name}: the session ended with the suspension; reactivation does not revive it"
        );
        t.close().await;
    }
}
