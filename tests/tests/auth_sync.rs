//! External role sync on SQLite and PostgreSQL: a property test feeding shuffled, duplicated
//! and replayed event streams ends in the same state as the ordered stream; synced roles reach
//! the linked users' subjects.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_query::{Alias, Order, Query};
use time::OffsetDateTime;
use workeros_auth::sync::{self, RoleRef, SyncEvent, SyncEventKind};
use workeros_auth::{Auth, AuthConfig, Signup};
use workeros_core::roles::{ADMIN, AUTHENTICATED};
use workeros_store::Db;
use workeros_tests::stores::{dbs, system_table};

const ORGS: [&str; 2] = ["org_A", "org_B"];
const USERS: [&str; 3] = ["user_1", "user_2", "user_3"];
const EMAILS: [&str; 3] = ["u1@acme.test", "u2@acme.test", "nobody@acme.test"];
const GLOBAL: [&str; 2] = ["member", "billing"];
const ORG_ROLES: [&str; 2] = ["org-editor", "org-viewer"];

/// An event before ids and instants are given: which entity, which content.
#[derive(Debug, Clone)]
struct Raw {
    kind: u8,
    entity: usize,
    variant: u8,
    deleted: bool,
    roles: u8,
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        0u8..3,
        0usize..6,
        0u8..3,
        prop::bool::weighted(0.2),
        0u8..16,
    )
        .prop_map(|(kind, entity, variant, deleted, roles)| Raw {
            kind,
            entity,
            variant,
            deleted,
            roles,
        })
}

/// The ordered stream: event `i` has id `event_<i>` and instant `base + i/2` seconds (pairs of
/// events share an instant: ties are broken by event id).
fn ordered(raws: &[Raw]) -> Vec<SyncEvent> {
    let base = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
    raws.iter()
        .enumerate()
        .map(|(i, r)| {
            let kind = match r.kind {
                0 => SyncEventKind::GlobalRole {
                    slug: GLOBAL[r.entity % 2].into(),
                    name: format!("Global {}", r.variant),
                    description: (r.variant > 0).then(|| format!("v{}", r.variant)),
                    deleted: r.deleted,
                },
                1 => SyncEventKind::OrganizationRole {
                    organization: ORGS[r.entity % 2].into(),
                    slug: ORG_ROLES[(r.entity / 2) % 2].into(),
                    name: format!("Org role {}", r.variant),
                    description: None,
                    deleted: r.deleted,
                },
                _ => {
                    let mut roles = Vec::new();
                    for (bit, role) in [
                        RoleRef::Global(GLOBAL[0].into()),
                        RoleRef::Global(GLOBAL[1].into()),
                        RoleRef::Organization(ORG_ROLES[0].into()),
                        RoleRef::Organization(ORG_ROLES[1].into()),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        if r.roles & (1 << bit) != 0 {
                            roles.push(role);
                        }
                    }
                    let u = r.entity % 3;
                    SyncEventKind::Membership {
                        organization: ORGS[(r.entity / 3) % 2].into(),
                        user: USERS[u].into(),
                        membership_id: format!("om_{u}_{}", r.variant),
                        email: Some(EMAILS[u].to_uppercase()),
                        roles,
                        deleted: r.deleted,
                    }
                }
            };
            SyncEvent {
                id: format!("event_{i:06}"),
                updated_at: base + time::Duration::seconds(i as i64 / 2),
                kind,
            }
        })
        .collect()
}

/// The sync tables as text, local timestamps left out, in key order.
async fn snapshot(db: &Db) -> Vec<String> {
    let tables: [(&str, &[&str], &[&str]); 4] = [
        (
            "sync_roles",
            &[
                "urn",
                "scope",
                "provider_org_id",
                "slug",
                "name",
                "description",
            ],
            &["urn"],
        ),
        (
            "sync_memberships",
            &[
                "provider_org_id",
                "provider_user_id",
                "membership_id",
                "email_lower",
            ],
            &["provider_org_id", "provider_user_id"],
        ),
        (
            "sync_assignments",
            &[
                "provider_org_id",
                "provider_user_id",
                "role_urn",
                "membership_id",
            ],
            &["provider_org_id", "provider_user_id", "role_urn"],
        ),
        ("sync_cursors", &["name", "last_event_id"], &["name"]),
    ];
    let mut out = Vec::new();
    for (table, text_cols, key) in tables {
        let mut q = Query::select();
        q.columns(text_cols.iter().map(|c| Alias::new(*c)))
            .from(db.table(system_table(table)));
        let extra: &[&str] = match table {
            "sync_roles" => &["deleted", "provider_updated_at"],
            "sync_memberships" => &["user_id", "deleted", "provider_updated_at"],
            "sync_assignments" => &["user_id", "provider_updated_at"],
            _ => &[],
        };
        q.columns(extra.iter().map(|c| Alias::new(*c)));
        for k in key {
            q.order_by(Alias::new(*k), Order::Asc);
        }
        let rows = db.fetch_all(&q).await.unwrap();
        for r in rows.iter() {
            let mut line = format!("{table}:");
            for c in text_cols {
                line.push_str(&format!(" {c}={:?}", r.text(*c).unwrap()));
            }
            for c in extra {
                let v = match *c {
                    "deleted" => format!("{:?}", r.boolean(*c).unwrap()),
                    "user_id" => format!("{:?}", r.uuid_text(*c).unwrap()),
                    _ => format!("{:?}", r.ts(*c).unwrap()),
                };
                line.push_str(&format!(" {c}={v}"));
            }
            out.push(line);
        }
    }
    out
}

async fn clear(db: &Db) {
    for t in [
        "sync_roles",
        "sync_memberships",
        "sync_assignments",
        "sync_cursors",
    ] {
        db.execute(Query::delete().from_table(db.table(system_table(t))))
            .await
            .unwrap();
    }
}

async fn apply_all(db: &Db, events: &[SyncEvent]) {
    for e in events {
        sync::apply(db, e).await.unwrap();
    }
}

/// Marks `email`'s address verified (as accepting an invitation or a verification link does):
/// only verified users are linked to provider memberships.
async fn verify(db: &Db, email: &str) {
    let d = db.dialect();
    db.execute(
        Query::update()
            .table(db.table(system_table("users")))
            .value(
                Alias::new("email_verified_at"),
                workeros_store::values::ts_value(workeros_store::values::now(), d),
            )
            .and_where(sea_query::ExprTrait::eq(
                sea_query::Expr::col(Alias::new("email_lower")),
                email,
            )),
    )
    .await
    .unwrap();
}

/// Roles of the two local users, through their sessions.
async fn subject_roles(auth: &Auth, tokens: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for t in tokens {
        let s = auth.authenticate_session(t).await.unwrap();
        out.push(s.user.unwrap().roles);
    }
    out
}

#[test]
fn any_order_duplicates_and_replays_end_in_the_ordered_state() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let targets = rt.block_on(dbs());
    for t in targets {
        let name = t.name();
        let cases = if name == "sqlite" { 64 } else { 24 };
        let (auth, tokens) = rt.block_on(async {
            let cfg = AuthConfig {
                org_mode: true,
                ..AuthConfig::default()
            };
            workeros_store::migrate(&t.db).await.unwrap();
            workeros_auth::migrate(&t.db).await.unwrap();
            let auth = Auth::new(t.db.clone(), cfg).unwrap();
            let (u1, s1) = auth
                .signup(&Signup {
                    email: EMAILS[0].into(),
                    password: "password one".into(),
                    organization_name: Some("Acme".into()),
                    ..Signup::default()
                })
                .await
                .unwrap();
            sync::set_external_id(&t.db, &u1.tenant, Some("org_A"))
                .await
                .unwrap();
            workeros_auth::create_user(&t.db, &u1.tenant, EMAILS[1], "password two", None)
                .await
                .unwrap();
            verify(&t.db, EMAILS[0]).await;
            verify(&t.db, EMAILS[1]).await;
            let (_, s2) = auth.login(EMAILS[1], "password two", None).await.unwrap();
            (auth, vec![s1.token, s2.token])
        });
        let strategy = prop::collection::vec(raw(), 1..40).prop_flat_map(|raws| {
            let n = raws.len();
            (
                Just(raws.clone()),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                prop::collection::vec((any::<Index>(), any::<Index>()), 0..12),
            )
        });
        let mut runner = TestRunner::new(Config {
            cases,
            ..Config::default()
        });
        let result = runner.run(&strategy, |(raws, order, dups)| {
            rt.block_on(async {
                let events = ordered(&raws);
                // The ordered stream, then the same stream replayed: no change.
                clear(&t.db).await;
                apply_all(&t.db, &events).await;
                let want = snapshot(&t.db).await;
                let want_roles = subject_roles(&auth, &tokens).await;
                apply_all(&t.db, &events).await;
                prop_assert_eq!(&snapshot(&t.db).await, &want, "{}: replay", name);
                // Shuffled, with duplicates inserted anywhere.
                let mut mixed: Vec<SyncEvent> = order.iter().map(|&i| events[i].clone()).collect();
                for (what, at) in &dups {
                    let e = events[what.index(events.len())].clone();
                    mixed.insert(at.index(mixed.len() + 1), e);
                }
                clear(&t.db).await;
                apply_all(&t.db, &mixed).await;
                prop_assert_eq!(&snapshot(&t.db).await, &want, "{}: shuffled", name);
                prop_assert_eq!(subject_roles(&auth, &tokens).await, want_roles, "{}", name);
                Ok::<(), TestCaseError>(())
            })
        });
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
        println!("{name}: {cases} streams, ordered = replayed = shuffled with duplicates");
        rt.block_on(t.close());
    }
}

async fn roles(auth: &Auth, token: &str) -> Vec<String> {
    auth.authenticate_session(token)
        .await
        .unwrap()
        .user
        .unwrap()
        .roles
}

#[tokio::test]
async fn synced_roles_reach_linked_subjects() {
    for t in dbs().await {
        let name = t.name();
        let db = &t.db;
        workeros_store::migrate(db).await.unwrap();
        workeros_auth::migrate(db).await.unwrap();
        let auth = Auth::new(
            db.clone(),
            AuthConfig {
                org_mode: true,
                ..AuthConfig::default()
            },
        )
        .unwrap();
        let (ann, s) = auth
            .signup(&Signup {
                email: "ann@acme.test".into(),
                password: "ann's password".into(),
                organization_name: Some("Acme".into()),
                ..Signup::default()
            })
            .await
            .unwrap();
        sync::set_external_id(db, &ann.tenant, Some("org_A"))
            .await
            .unwrap();
        verify(db, "ann@acme.test").await;
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(1_750_000_000 + s).unwrap();
        let ev = |id: &str, s: i64, kind| SyncEvent {
            id: id.into(),
            updated_at: at(s),
            kind,
        };
        let membership = |roles: Vec<RoleRef>, email: &str, deleted| SyncEventKind::Membership {
            organization: "org_A".into(),
            user: "user_x".into(),
            membership_id: "om_1".into(),
            email: Some(email.into()),
            roles,
            deleted,
        };
        // The membership arrives before its roles exist; the roles' events come later.
        sync::apply(
            db,
            &ev(
                "event_03",
                3,
                membership(
                    vec![
                        RoleRef::Global("member".into()),
                        RoleRef::Organization("org-editor".into()),
                    ],
                    "ANN@acme.test",
                    false,
                ),
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            roles(&auth, &s.token).await,
            [ADMIN],
            "{name}: roles not known yet"
        );
        sync::apply(
            db,
            &ev(
                "event_01",
                1,
                SyncEventKind::GlobalRole {
                    slug: "member".into(),
                    name: "Member".into(),
                    description: None,
                    deleted: false,
                },
            ),
        )
        .await
        .unwrap();
        sync::apply(
            db,
            &ev(
                "event_02",
                2,
                SyncEventKind::OrganizationRole {
                    organization: "org_A".into(),
                    slug: "org-editor".into(),
                    name: "Editor".into(),
                    description: None,
                    deleted: false,
                },
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            roles(&auth, &s.token).await,
            [ADMIN, "member", "org-editor"],
            "{name}"
        );
        assert_eq!(
            sync::cursor(db, sync::MEMBERSHIP_CURSOR)
                .await
                .unwrap()
                .as_deref(),
            Some("event_03")
        );
        assert_eq!(
            sync::cursor(db, &sync::organization_cursor("org_A"))
                .await
                .unwrap()
                .as_deref(),
            Some("event_02")
        );
        assert_eq!(
            sync::cursor(db, sync::GLOBAL_ROLE_CURSOR)
                .await
                .unwrap()
                .as_deref(),
            Some("event_01")
        );
        // An older event does not overwrite; a newer one does.
        let stale = sync::apply(
            db,
            &ev("event_00", 0, membership(vec![], "ann@acme.test", true)),
        )
        .await
        .unwrap();
        assert_eq!(stale, sync::Applied::Stale);
        assert_eq!(
            roles(&auth, &s.token).await,
            [ADMIN, "member", "org-editor"],
            "{name}"
        );
        assert_eq!(
            sync::cursor(db, sync::MEMBERSHIP_CURSOR)
                .await
                .unwrap()
                .as_deref(),
            Some("event_03"),
            "{name}: cursors only move forward"
        );
        sync::apply(
            db,
            &ev(
                "event_04",
                4,
                SyncEventKind::GlobalRole {
                    slug: "member".into(),
                    name: "Member".into(),
                    description: None,
                    deleted: true,
                },
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            roles(&auth, &s.token).await,
            [ADMIN, "org-editor"],
            "{name}: a deleted role is gone"
        );
        // Another organization's membership gives nothing here.
        sync::apply(
            db,
            &ev(
                "event_05",
                5,
                SyncEventKind::Membership {
                    organization: "org_B".into(),
                    user: "user_x".into(),
                    membership_id: "om_2".into(),
                    email: Some("ann@acme.test".into()),
                    roles: vec![RoleRef::Global("billing".into())],
                    deleted: false,
                },
            ),
        )
        .await
        .unwrap();
        sync::apply(
            db,
            &ev(
                "event_06",
                6,
                SyncEventKind::GlobalRole {
                    slug: "billing".into(),
                    name: "Billing".into(),
                    description: None,
                    deleted: false,
                },
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            roles(&auth, &s.token).await,
            [ADMIN, "org-editor"],
            "{name}"
        );
        // A user who signs up later is linked at its first sign-in.
        sync::apply(
            db,
            &ev(
                "event_07",
                7,
                SyncEventKind::Membership {
                    organization: "org_A".into(),
                    user: "user_y".into(),
                    membership_id: "om_3".into(),
                    email: Some("late@acme.test".into()),
                    roles: vec![RoleRef::Global("billing".into())],
                    deleted: false,
                },
            ),
        )
        .await
        .unwrap();
        workeros_auth::create_user(db, &ann.tenant, "late@acme.test", "late password", None)
            .await
            .unwrap();
        let (unverified, _) = auth
            .login("late@acme.test", "late password", None)
            .await
            .unwrap();
        assert_eq!(
            unverified.roles,
            [AUTHENTICATED],
            "{name}: an unproven email links nothing"
        );
        verify(db, "late@acme.test").await;
        let (late, _) = auth
            .login("late@acme.test", "late password", None)
            .await
            .unwrap();
        assert_eq!(late.roles, [AUTHENTICATED, "billing"], "{name}");
        t.close().await;
    }
}
