//! The store contract: every operation of `Store`, its errors and its atomicity, run on both
//! backends (sled in a temporary folder; PostgreSQL in a fresh database of the tests' own
//! cluster, see `support::postgres`).

use std::sync::Arc;

use coderflow::auth::Role;
use coderflow::store::{
    AccessBinding, ApiKeyRecord, AuditEvent, DatabaseUrl, DeviceRecord, DeviceStatus, PendingLogin,
    PollOutcome, ReplicaRecord, SessionRecord, Store, StoreError, UserRecord, UserSource,
};

use crate::support::postgres;

/// A store of one backend, with what keeps it alive.
struct Backend {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn sled() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    Backend {
        store,
        _dir: Some(dir),
    }
}

async fn pg() -> Backend {
    let url: DatabaseUrl = postgres::shared().fresh_database().parse().unwrap();
    let store = Store::connect(&url).await.unwrap();
    // The listener is up: the cache follows other replicas' changes.
    for _ in 0..100 {
        if store.ready().await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(store.ready().await, "the PostgreSQL store becomes ready");
    Backend { store, _dir: None }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = super::sled().await;
                    super::$name(backend.store.clone()).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = super::pg().await;
                    super::$name(backend.store.clone()).await;
                }
            )*
        }
    };
}

contract!(
    users_are_unique_by_name_and_email_case_insensitively,
    users_change_keep_their_name_and_the_email_index,
    the_last_enabled_admin_stays_even_under_concurrent_demotions,
    identities_link_once_and_provisioning_picks_a_free_name,
    pending_logins_are_single_use_and_expire,
    keys_are_found_by_hash_listed_revoked_and_refused_to_disabled_owners,
    key_uses_are_recorded_as_the_latest,
    sessions_expire_and_end_per_user,
    device_codes_have_unique_user_codes_and_give_one_key,
    a_device_code_approved_by_a_since_disabled_user_gives_no_key,
    the_audit_trail_pages_filters_and_sweeps,
    the_auth_epoch_moves_when_access_may_end,
    replicas_record_heartbeats_listed_by_recency_and_swept,
);

fn user(username: &str, email: &str, role: Role) -> UserRecord {
    UserRecord {
        username: username.into(),
        email: email.into(),
        name: username.into(),
        source: UserSource::Local,
        disabled: false,
        created_at: "2026-12-04T00:00:00Z".into(),
        access: vec![AccessBinding::for_role(role)],
        password_hash: None,
    }
}

fn key(id: &str, username: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        username: username.into(),
        name: format!("key {id}"),
        prefix: "cf_abc".into(),
        created_at: "2026-12-04T00:00:00Z".into(),
        last_used_unix: None,
        expires_unix: None,
        from_device: false,
    }
}

fn hash(text: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).to_vec()
}

async fn users_are_unique_by_name_and_email_case_insensitively(store: Store) {
    store
        .create_user(&user("ann", "Ann@Example.com", Role::Developer))
        .await
        .unwrap();
    let same_name = store
        .create_user(&user("ann", "other@example.com", Role::Developer))
        .await;
    assert!(
        matches!(same_name, Err(StoreError::Conflict("username"))),
        "{same_name:?}"
    );
    let same_email = store
        .create_user(&user("bob", " ann@EXAMPLE.com ", Role::Developer))
        .await;
    assert!(
        matches!(same_email, Err(StoreError::Conflict("email"))),
        "{same_email:?}"
    );
    store
        .create_user(&user("Bob", "bob@example.com", Role::Viewer))
        .await
        .unwrap();
    store
        .create_user(&user("alice", "alice@example.com", Role::Viewer))
        .await
        .unwrap();
    let by_email = store
        .user_by_email("ANN@example.COM")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.username, "ann");
    assert!(store.user("nobody").await.unwrap().is_none());
    assert!(
        store
            .user_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let names: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(
        names,
        ["Bob", "alice", "ann"],
        "ordered by the bytes of the name"
    );
    assert_eq!(store.user_count().await.unwrap(), 3);
    let summary = store.summary().await.unwrap();
    assert_eq!(summary.users, 3);
}

async fn users_change_keep_their_name_and_the_email_index(store: Store) {
    store
        .create_user(&user("ann", "ann@example.com", Role::Developer))
        .await
        .unwrap();
    store
        .create_user(&user("bob", "bob@example.com", Role::Developer))
        .await
        .unwrap();
    let changed = store
        .update_user("ann", |u| {
            u.username = "mallory".into();
            u.email = "ann@new.example".into();
            u.name = "Ann New".into();
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.username, "ann", "the name never changes");
    assert_eq!(changed.name, "Ann New");
    assert!(
        store
            .user_by_email("ann@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .user_by_email("ANN@new.example")
            .await
            .unwrap()
            .unwrap()
            .name,
        "Ann New"
    );
    let taken = store
        .update_user("bob", |u| u.email = "Ann@New.Example".into())
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict("email"))),
        "{taken:?}"
    );
    assert_eq!(
        store.user("bob").await.unwrap().unwrap().email,
        "bob@example.com",
        "a refused change changes nothing"
    );
    assert!(store.update_user("nobody", |_| {}).await.unwrap().is_none());
}

async fn the_last_enabled_admin_stays_even_under_concurrent_demotions(store: Store) {
    store
        .create_user(&user("root", "root@example.com", Role::ServerAdmin))
        .await
        .unwrap();
    let refused = store.update_user("root", |u| u.disabled = true).await;
    assert!(
        matches!(refused, Err(StoreError::LastAdmin(_))),
        "{refused:?}"
    );
    for round in 0..5 {
        let a = format!("a{round}");
        let b = format!("b{round}");
        store
            .create_user(&user(&a, &format!("{a}@example.com"), Role::ServerAdmin))
            .await
            .unwrap();
        store
            .create_user(&user(&b, &format!("{b}@example.com"), Role::ServerAdmin))
            .await
            .unwrap();
        // Leave a and b as the only enabled admins, then demote both at once.
        for name in store.users().await.unwrap().into_iter().map(|u| u.username) {
            if name != a && name != b {
                let _ = store
                    .update_user(&name, |u| {
                        u.access = vec![AccessBinding::for_role(Role::Viewer)]
                    })
                    .await;
            }
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let demote = |name: String| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .update_user(&name, |u| {
                        u.access = vec![AccessBinding::for_role(Role::Viewer)]
                    })
                    .await
            })
        };
        let (first, second) = (demote(a.clone()), demote(b.clone()));
        let results = [first.await.unwrap(), second.await.unwrap()];
        let passed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            passed, 1,
            "round {round}: exactly one demotion passes: {results:?}"
        );
        let admins = store
            .users()
            .await
            .unwrap()
            .iter()
            .filter(|u| u.is_enabled_server_admin())
            .count();
        assert_eq!(admins, 1, "round {round}");
    }
}

async fn identities_link_once_and_provisioning_picks_a_free_name(store: Store) {
    let issuer = "https://idp.example";
    store
        .create_user(&user("ann", "ann@example.com", Role::Developer))
        .await
        .unwrap();
    store.link_identity(issuer, "sub-ann", "ann").await.unwrap();
    let again = store.link_identity(issuer, "sub-ann", "ann").await;
    assert!(
        matches!(again, Err(StoreError::Conflict("identity"))),
        "{again:?}"
    );
    let unknown = store.link_identity(issuer, "sub-x", "nobody").await;
    assert!(
        matches!(unknown, Err(StoreError::Conflict("username"))),
        "{unknown:?}"
    );
    assert_eq!(
        store.identity(issuer, "sub-ann").await.unwrap().as_deref(),
        Some("ann")
    );
    assert!(
        store
            .identity("https://other.example", "sub-ann")
            .await
            .unwrap()
            .is_none()
    );

    let new = user("", "ann2@example.com", Role::Viewer);
    let names = ["ann".to_owned(), "ann2".to_owned(), "ann3".to_owned()];
    let made = store
        .provision_user(&new, &names, issuer, "sub-ann2")
        .await
        .unwrap();
    assert_eq!(made.username, "ann2");
    assert_eq!(
        store.identity(issuer, "sub-ann2").await.unwrap().as_deref(),
        Some("ann2")
    );
    let linked = store
        .provision_user(
            &user("", "x@example.com", Role::Viewer),
            &names,
            issuer,
            "sub-ann2",
        )
        .await;
    assert!(
        matches!(linked, Err(StoreError::Conflict("identity"))),
        "{linked:?}"
    );
    let email = store
        .provision_user(
            &user("", "ANN@example.com", Role::Viewer),
            &names,
            issuer,
            "sub-new",
        )
        .await;
    assert!(
        matches!(email, Err(StoreError::Conflict("email"))),
        "{email:?}"
    );
    assert!(
        store.identity(issuer, "sub-new").await.unwrap().is_none(),
        "nothing half-made"
    );
    let full = store
        .provision_user(
            &user("", "y@example.com", Role::Viewer),
            &["ann".to_owned(), "ann2".to_owned()],
            issuer,
            "sub-y",
        )
        .await;
    assert!(
        matches!(full, Err(StoreError::Conflict("username"))),
        "{full:?}"
    );
    let at: Vec<String> = store
        .users_with_identity_at(issuer)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(at, ["ann", "ann2"]);
}

async fn pending_logins_are_single_use_and_expire(store: Store) {
    let login = |expires_unix| PendingLogin {
        binding_hash: "b".into(),
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        return_to: "/".into(),
        issuer: "https://idp.example".into(),
        client_id: "c".into(),
        expires_unix,
        preview_by: None,
    };
    store
        .create_pending_login(&hash("s1"), &login(200))
        .await
        .unwrap();
    store
        .create_pending_login(&hash("s2"), &login(200))
        .await
        .unwrap();
    store
        .create_pending_login(&hash("s3"), &login(100))
        .await
        .unwrap();
    // Two concurrent callbacks with the same state: one login.
    let s1 = hash("s1");
    let (a, b) = tokio::join!(
        store.take_pending_login(&s1, 150),
        store.take_pending_login(&s1, 150)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|l| l.is_some())
            .count(),
        1
    );
    assert!(
        store
            .take_pending_login(&hash("s2"), 200)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert_eq!(
        store.sweep_pending_logins(150).await.unwrap(),
        1,
        "s3 swept"
    );
}

async fn keys_are_found_by_hash_listed_revoked_and_refused_to_disabled_owners(store: Store) {
    store
        .create_user(&user("root", "root@example.com", Role::ServerAdmin))
        .await
        .unwrap();
    store
        .create_user(&user("ann", "ann@example.com", Role::Developer))
        .await
        .unwrap();
    store
        .create_api_key(&hash("k2"), &key("id2", "ann"))
        .await
        .unwrap();
    store
        .create_api_key(&hash("k1"), &key("id1", "ann"))
        .await
        .unwrap();
    store
        .create_api_key(&hash("k3"), &key("id3", "root"))
        .await
        .unwrap();
    assert_eq!(
        store.api_key_by_hash(&hash("k1")).await.unwrap().unwrap(),
        key("id1", "ann")
    );
    assert!(
        store
            .api_key_by_hash(&hash("nope"))
            .await
            .unwrap()
            .is_none()
    );
    let ids: Vec<String> = store
        .api_keys_of("ann")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["id1", "id2"]);
    let with_hashes = store.api_keys_with_hashes_of("ann").await.unwrap();
    assert_eq!(with_hashes[0].0, hash("k1"));
    assert!(store.delete_api_key("ann", "id1").await.unwrap());
    assert!(!store.delete_api_key("ann", "id1").await.unwrap());
    assert!(
        !store.delete_api_key("ann", "id3").await.unwrap(),
        "not ann's key"
    );
    assert!(store.api_key_by_hash(&hash("k1")).await.unwrap().is_none());
    store
        .update_user("ann", |u| u.disabled = true)
        .await
        .unwrap();
    let refused = store.create_api_key(&hash("k4"), &key("id4", "ann")).await;
    assert!(
        matches!(refused, Err(StoreError::Disabled(_))),
        "{refused:?}"
    );
    assert_eq!(store.delete_api_keys_of("ann").await.unwrap(), 1);
    assert!(store.api_keys_of("ann").await.unwrap().is_empty());
    assert_eq!(store.summary().await.unwrap().api_keys, 1);
}

async fn key_uses_are_recorded_as_the_latest(store: Store) {
    store
        .create_user(&user("ann", "ann@example.com", Role::Developer))
        .await
        .unwrap();
    store
        .create_api_key(&hash("k1"), &key("id1", "ann"))
        .await
        .unwrap();
    store
        .create_api_key(&hash("k2"), &key("id2", "ann"))
        .await
        .unwrap();
    store
        .record_api_key_uses(&[(hash("k1"), 100), (hash("k2"), 50), (hash("gone"), 70)])
        .await
        .unwrap();
    store
        .record_api_key_uses(&[(hash("k1"), 90)])
        .await
        .unwrap();
    store.record_api_key_uses(&[]).await.unwrap();
    let k1 = store.api_key_by_hash(&hash("k1")).await.unwrap().unwrap();
    let k2 = store.api_key_by_hash(&hash("k2")).await.unwrap().unwrap();
    assert_eq!(
        (k1.last_used_unix, k2.last_used_unix),
        (Some(100), Some(50))
    );
}

async fn sessions_expire_and_end_per_user(store: Store) {
    let session = |username: &str, expires_unix| SessionRecord {
        username: username.into(),
        created_unix: 1,
        expires_unix,
        csrf_token: "t".into(),
        sso: None,
    };
    store
        .create_session(&hash("a1"), &session("ann", 100))
        .await
        .unwrap();
    store
        .create_session(&hash("a2"), &session("ann", 300))
        .await
        .unwrap();
    store
        .create_session(&hash("b1"), &session("bob", 300))
        .await
        .unwrap();
    assert_eq!(
        store.session(&hash("a1"), 50).await.unwrap().unwrap(),
        session("ann", 100)
    );
    assert_eq!(store.sweep_expired_sessions(150).await.unwrap(), 1);
    assert!(
        store.session(&hash("a1"), 100).await.unwrap().is_none(),
        "expired"
    );
    assert_eq!(store.delete_sessions_of("ann").await.unwrap(), 1);
    assert!(store.session(&hash("a2"), 150).await.unwrap().is_none());
    store.delete_session(&hash("b1")).await.unwrap();
    store.delete_session(&hash("b1")).await.unwrap();
    assert!(store.session(&hash("b1"), 150).await.unwrap().is_none());
}

fn device(user_code: &str, expires_unix: u64) -> DeviceRecord {
    DeviceRecord {
        user_code: user_code.into(),
        client_name: "coder CLI".into(),
        requester_ip: "127.0.0.1".into(),
        requester_agent: "test".into(),
        created_at: "2026-12-04T00:00:00Z".into(),
        expires_unix,
        interval_secs: 0,
        last_poll_ms: 0,
        claimed_by: None,
        status: DeviceStatus::Pending,
    }
}

async fn device_codes_have_unique_user_codes_and_give_one_key(store: Store) {
    store
        .create_user(&user("ann", "ann@example.com", Role::Developer))
        .await
        .unwrap();
    let now = 1_000;
    assert!(
        store
            .create_device_code(&hash("d1"), &device("BCDFGHJK", now + 600))
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_device_code(&hash("d2"), &device("BCDFGHJK", now + 600))
            .await
            .unwrap(),
        "a user code in use is refused"
    );
    let (found_hash, found) = store
        .device_by_user_code("BCDFGHJK", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found_hash, found.client_name.as_str()),
        (hash("d1"), "coder CLI")
    );
    assert!(
        store
            .device_by_user_code("BCDFGHJK", now + 600)
            .await
            .unwrap()
            .is_none()
    );
    let refused = store
        .update_device(
            &hash("d1"),
            |d| d.claimed_by.is_some(),
            |d| d.status = DeviceStatus::Denied,
        )
        .await
        .unwrap();
    assert!(refused.is_none());
    assert_eq!(
        store
            .device_code(&hash("d1"))
            .await
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Pending
    );
    let poll = store
        .poll_device(&hash("d1"), now * 1000, &hash("key"), &key("k", ""))
        .await;
    assert_eq!(poll.unwrap(), PollOutcome::Pending);
    store
        .update_device(
            &hash("d1"),
            |_| true,
            |d| {
                d.status = DeviceStatus::Approved {
                    username: "ann".into(),
                }
            },
        )
        .await
        .unwrap()
        .unwrap();
    // Many concurrent polls: one key.
    let polls: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let k = key(&format!("k{i}"), "");
                store
                    .poll_device(
                        &hash("d1"),
                        (now + 10) * 1000,
                        &hash(&format!("key{i}")),
                        &k,
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut issued = Vec::new();
    for poll in polls {
        if let PollOutcome::Issued(key) = poll.await.unwrap() {
            issued.push(key);
        }
    }
    assert_eq!(issued.len(), 1, "one key per device code");
    assert_eq!(issued[0].username, "ann");
    assert_eq!(store.api_keys_of("ann").await.unwrap(), issued);
    let after = store
        .poll_device(&hash("d1"), (now + 20) * 1000, &hash("x"), &key("x", ""))
        .await;
    assert_eq!(after.unwrap(), PollOutcome::Invalid);
    assert_eq!(
        store
            .poll_device(&hash("unknown"), now * 1000, &hash("y"), &key("y", ""))
            .await
            .unwrap(),
        PollOutcome::Invalid
    );
    // Expired codes are kept a while for `expired_token`, then swept with their user codes.
    assert!(
        store
            .create_device_code(&hash("d3"), &device("CDFGHJKL", now))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .poll_device(&hash("d3"), now * 1000, &hash("z"), &key("z", ""))
            .await
            .unwrap(),
        PollOutcome::Expired
    );
    assert_eq!(store.sweep_device_codes(now + 599).await.unwrap(), 0);
    assert_eq!(store.sweep_device_codes(now + 600).await.unwrap(), 1);
    assert!(
        store
            .create_device_code(&hash("d4"), &device("CDFGHJKL", now + 1200))
            .await
            .unwrap()
    );
}

async fn a_device_code_approved_by_a_since_disabled_user_gives_no_key(store: Store) {
    store
        .create_user(&user("root", "root@example.com", Role::ServerAdmin))
        .await
        .unwrap();
    store
        .create_user(&user("ann", "ann@example.com", Role::Developer))
        .await
        .unwrap();
    let mut record = device("BCDFGHJK", 10_000);
    record.status = DeviceStatus::Approved {
        username: "ann".into(),
    };
    store.create_device_code(&hash("d"), &record).await.unwrap();
    store
        .update_user("ann", |u| u.disabled = true)
        .await
        .unwrap();
    let poll = store
        .poll_device(&hash("d"), 1_000_000, &hash("k"), &key("k", ""))
        .await;
    assert_eq!(poll.unwrap(), PollOutcome::Denied);
    assert!(store.api_keys_of("ann").await.unwrap().is_empty());
    assert_eq!(
        store.device_code(&hash("d")).await.unwrap().unwrap().status,
        DeviceStatus::Denied
    );
}

async fn the_audit_trail_pages_filters_and_sweeps(store: Store) {
    let event = |kind: &str, at: &str| AuditEvent {
        id: 0,
        at: at.into(),
        kind: kind.into(),
        outcome: "success".into(),
        actor: Some("ann".into()),
        subject: None,
        reason: None,
        ip: None,
    };
    let mut ids = Vec::new();
    for (i, kind) in [
        "login.local",
        "login.sso",
        "api_key.created",
        "login_x",
        "login.sso",
    ]
    .iter()
    .enumerate()
    {
        ids.push(
            store
                .record_audit(&event(kind, &format!("2026-12-0{}T00:00:00Z", i + 1)))
                .await
                .unwrap(),
        );
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "increasing ids: {ids:?}"
    );
    let newest = store.audit_events(None, 2, None).await.unwrap();
    assert_eq!(
        newest.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    let older = store.audit_events(Some(ids[3]), 10, None).await.unwrap();
    assert_eq!(older.len(), 3);
    let logins: Vec<String> = store
        .audit_events(None, 10, Some("login"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        logins,
        ["login.sso", "login.sso", "login.local"],
        "a kind and its sub-kinds only"
    );
    assert_eq!(
        store
            .audit_events(None, 10, Some("login.sso"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .sweep_audit("2026-12-02T00:00:00Z", 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.sweep_audit("2000-01-01T00:00:00Z", 2).await.unwrap(),
        2
    );
    let left = store.audit_events(None, 10, None).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    let next = store
        .record_audit(&event("x", "2026-12-09T00:00:00Z"))
        .await
        .unwrap();
    assert!(next > ids[4], "ids never repeat");
    assert_eq!(store.summary().await.unwrap().audit_events, 3);
}

async fn the_auth_epoch_moves_when_access_may_end(store: Store) {
    store
        .create_user(&user("root", "root@example.com", Role::ServerAdmin))
        .await
        .unwrap();
    store
        .create_user(&user("ann", "ann@example.com", Role::Developer))
        .await
        .unwrap();
    store
        .create_api_key(&hash("k"), &key("id", "ann"))
        .await
        .unwrap();
    let before = store.auth_epoch();
    store.delete_api_key("ann", "id").await.unwrap();
    let revoked = store.auth_epoch();
    assert!(revoked > before);
    store
        .update_user("ann", |u| u.disabled = true)
        .await
        .unwrap();
    assert!(store.auth_epoch() > revoked);
}

fn replica(id: &str, sha: &str, last_seen: u64) -> ReplicaRecord {
    ReplicaRecord {
        id: id.into(),
        version: "1.2.3".into(),
        listen: "127.0.0.1:8080".into(),
        config_generation: 3,
        config_sha256: sha.into(),
        last_seen,
    }
}

async fn replicas_record_heartbeats_listed_by_recency_and_swept(store: Store) {
    let now = 1_900_000_000;
    store
        .record_replica(&replica("b", "bb", now))
        .await
        .unwrap();
    store
        .record_replica(&replica("a", "aa", now - 100))
        .await
        .unwrap();
    // A heartbeat replaces the replica's record.
    store
        .record_replica(&replica("a", "a2", now - 5))
        .await
        .unwrap();
    let listed = store.replicas(now - 30).await.unwrap();
    assert_eq!(
        listed,
        vec![replica("a", "a2", now - 5), replica("b", "bb", now)]
    );
    assert_eq!(
        store.replicas(now - 1).await.unwrap(),
        vec![replica("b", "bb", now)]
    );
    // One gone for longer than an hour is swept with the other expired records.
    store
        .record_replica(&replica("gone", "", now - 3601))
        .await
        .unwrap();
    assert_eq!(store.replicas(0).await.unwrap().len(), 3);
    store.sweep_expired(now).await.unwrap();
    let ids: Vec<String> = store
        .replicas(0)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
}

/// Password failures count in the database with PostgreSQL: concurrently from several
/// connections each failure counts once, a window ends, a success clears, old windows are swept.
/// Keys hold a NUL (`username NUL address`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_counts_password_failures_for_every_replica() {
    let backend = pg().await;
    let store = backend.store;
    let key = "ann\u{0}127.0.0.1";
    let now = 1_900_000_000;
    assert_eq!(store.password_failures(key, now).await.unwrap(), None);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.record_password_failure(key, now, 900).await.unwrap()
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap().failures);
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=20).collect::<Vec<u32>>(),
        "each failure counted once"
    );
    let window = store
        .password_failures(key, now + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((window.failures, window.ends_unix), (20, now + 900));
    // Another address of the same user is another key.
    assert_eq!(
        store.password_failures("ann\0::1", now).await.unwrap(),
        None
    );
    // The window ends: nothing counted, and the next failure starts a new window.
    assert_eq!(store.password_failures(key, now + 900).await.unwrap(), None);
    let next = store
        .record_password_failure(key, now + 901, 900)
        .await
        .unwrap();
    assert_eq!((next.failures, next.ends_unix), (1, now + 1801));
    store.clear_password_failures(key).await.unwrap();
    assert_eq!(store.password_failures(key, now + 902).await.unwrap(), None);
    store
        .record_password_failure("bob\0h", now, 60)
        .await
        .unwrap();
    assert!(store.sweep_expired(now + 60).await.unwrap() >= 1);
    assert_eq!(
        store.password_failures("bob\0h", now).await.unwrap(),
        None,
        "swept"
    );
}

#[tokio::test]
async fn sled_keeps_password_failures_in_memory_not_in_the_store() {
    let backend = sled().await;
    assert!(matches!(
        backend.store.password_failures("ann", 1).await,
        Err(StoreError::Unsupported(_))
    ));
    assert!(!backend.store.is_shared());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_a_unix_socket_through_an_outage_and_back() {
    // A cluster of its own: this test stops it.
    let cluster = postgres::Postgres::start();
    cluster.psql("postgres", "CREATE DATABASE outage").unwrap();
    let url: DatabaseUrl = cluster.socket_url("outage").parse().unwrap();
    let store = Store::connect(&url).await.unwrap();
    store
        .create_user(&user("ann", "ann@example.com", Role::Developer))
        .await
        .unwrap();
    let wait_ready = |want: bool| {
        let store = store.clone();
        async move {
            for _ in 0..200 {
                if store.ready().await == want {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("ready() never became {want}");
        }
    };
    wait_ready(true).await;
    let epoch = store.auth_epoch();
    cluster.stop_server();
    wait_ready(false).await;
    assert!(
        store.user("ann").await.is_err(),
        "a read fails while the database is away"
    );
    assert_ne!(
        store.auth_epoch(),
        store.auth_epoch(),
        "no cached answer while not listening"
    );
    cluster.start_server();
    wait_ready(true).await;
    assert!(
        store.auth_epoch() > epoch,
        "the epoch moved: caches were checked again"
    );
    assert_eq!(
        store.user("ann").await.unwrap().unwrap().username,
        "ann",
        "nothing lost"
    );
}
