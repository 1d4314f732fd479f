//! People, access and API keys through the HTTP API: the users routes, the permission matrix,
//! key listing and revocation, rate limits, and durability across `kill -9`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Daemon, Setup};

/// Every protected route, with what it needs.
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("GET", "/api/users/admin"),
    ("PATCH", "/api/users/admin"),
    ("PUT", "/api/users/admin/access"),
    ("POST", "/api/settings/sso/reload"),
    ("GET", "/api/settings/sso"),
    ("PUT", "/api/settings/sso"),
    ("DELETE", "/api/settings/sso"),
    ("POST", "/api/settings/sso/test"),
    ("GET", "/api/audit"),
];
const SIGNED_IN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/me"),
    ("GET", "/api/keys"),
    ("POST", "/api/keys"),
    ("DELETE", "/api/keys/nonexistent"),
];

async fn call(daemon: &Daemon, method: &str, path: &str, key: Option<&str>) -> u16 {
    let method: Method = method.parse().unwrap();
    let mut request = daemon
        .http
        .request(method, daemon.url(path))
        .json(&json!({}));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn permission_matrix_each_role_against_each_protected_route() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let mut keys = vec![("server_admin", admin.clone())];
    for role in ["viewer", "developer", "environment_admin"] {
        let name = role.replace('_', "");
        daemon
            .create_user(&admin, &name, role, Some("password-123"))
            .await;
        keys.push((role, daemon.login(&name, "password-123").await));
    }
    for (method, path) in ADMIN_ROUTES.iter().chain(SIGNED_IN_ROUTES) {
        assert_eq!(
            call(&daemon, method, path, None).await,
            401,
            "anonymous {method} {path}"
        );
        assert_eq!(
            call(
                &daemon,
                method,
                path,
                Some("cf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            )
            .await,
            401,
            "unknown key {method} {path}"
        );
    }
    for (role, key) in &keys {
        for (method, path) in ADMIN_ROUTES {
            let status = call(&daemon, method, path, Some(key)).await;
            if *role == "server_admin" {
                assert!(
                    ![401, 403].contains(&status),
                    "{role} {method} {path}: {status}"
                );
            } else {
                assert_eq!(status, 403, "{role} {method} {path}");
            }
        }
        for (method, path) in SIGNED_IN_ROUTES {
            let status = call(&daemon, method, path, Some(key)).await;
            assert!(
                ![401, 403].contains(&status),
                "{role} {method} {path}: {status}"
            );
        }
    }
}

#[tokio::test]
async fn users_api_creates_lists_changes_and_binds_people() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let created = daemon.create_user(&admin, "ann", "manager", None).await;
    assert_eq!(created["source"], "local");
    assert_eq!(
        created["access"],
        json!([{"role": "environment_admin", "scope": "environment:*"}])
    );
    assert!(created.get("password_hash").is_none());

    let duplicate = daemon
        .api(
            Method::POST,
            "/api/users",
            &admin,
            Some(json!({"username": "ann2", "email": "ANN@example.com", "name": "A", "role": "viewer"})),
        )
        .await;
    assert_eq!(duplicate.status(), 409);
    let bad_role = daemon
        .api(
            Method::POST,
            "/api/users",
            &admin,
            Some(
                json!({"username": "bob", "email": "bob@example.com", "name": "B", "role": "root"}),
            ),
        )
        .await;
    assert_eq!(bad_role.status(), 400);
    let body: Value = bad_role.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown role `root`")
    );

    let list: Value = daemon
        .api(Method::GET, "/api/users", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "ann"]);

    let bound = daemon
        .api(
            Method::PUT,
            "/api/users/ann/access",
            &admin,
            Some(json!([{"role": "viewer", "scope": "environment:*"}, {"role": "server_admin", "scope": "server"}])),
        )
        .await;
    assert_eq!(bound.status(), 200);
    let bound: Value = bound.json().await.unwrap();
    assert_eq!(bound["access"].as_array().unwrap().len(), 2);
    let misfit = daemon
        .api(
            Method::PUT,
            "/api/users/ann/access",
            &admin,
            Some(json!([{"role": "server_admin", "scope": "environment:*"}])),
        )
        .await;
    assert_eq!(misfit.status(), 400);

    let patched: Value = daemon
        .api(
            Method::PATCH,
            "/api/users/ann",
            &admin,
            Some(json!({"name": "Ann Example", "password": "ann-password-1"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["name"], "Ann Example");
    let ann_key = daemon.login("ann", "ann-password-1").await;
    let me = |key: String| {
        let daemon = &daemon;
        async move {
            let me: Value = daemon
                .api(Method::GET, "/api/me", &key, None)
                .await
                .json()
                .await
                .unwrap();
            me
        }
    };
    assert_eq!(me(ann_key.clone()).await["name"], "Ann Example");
    let renamed = daemon
        .api(
            Method::PATCH,
            "/api/users/ann",
            &admin,
            Some(json!({"name": "Ann Renamed"})),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let seen = me(ann_key.clone()).await;
    assert_eq!(
        seen["name"], "Ann Renamed",
        "a key sees its user's changes at once"
    );
    assert_eq!(seen["access"].as_array().unwrap().len(), 2);
    let rebound = daemon
        .api(
            Method::PUT,
            "/api/users/ann/access",
            &admin,
            Some(json!([{"role": "viewer", "scope": "environment:*"}])),
        )
        .await;
    assert_eq!(rebound.status(), 200);
    assert_eq!(
        me(ann_key.clone()).await["access"],
        json!([{"role": "viewer", "scope": "environment:*"}])
    );
    let disabled = daemon
        .api(
            Method::PATCH,
            "/api/users/ann",
            &admin,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &ann_key, None)
            .await
            .status(),
        401,
        "a disabled user's keys stop working"
    );
    assert_eq!(
        daemon
            .login_response("ann", "ann-password-1")
            .await
            .status(),
        401
    );
    let missing = daemon
        .api(Method::GET, "/api/users/nobody", &admin, None)
        .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_last_server_admin_cannot_lock_the_server_out() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let demote = daemon
        .api(
            Method::PUT,
            "/api/users/admin/access",
            &admin,
            Some(json!([{"role": "developer", "scope": "environment:*"}])),
        )
        .await;
    assert_eq!(demote.status(), 409);
    let body: Value = demote.json().await.unwrap();
    assert_eq!(body["error"], "last_admin");
    let disable = daemon
        .api(
            Method::PATCH,
            "/api/users/admin",
            &admin,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disable.status(), 409);
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &admin, None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn api_keys_are_shown_once_listed_without_secrets_and_revocable() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let created = daemon
        .api(
            Method::POST,
            "/api/keys",
            &admin,
            Some(json!({"name": "ci runner"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let secret = created["api_key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cf_") && secret.len() == 46);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &secret, None)
            .await
            .status(),
        200
    );

    let list = daemon
        .api(Method::GET, "/api/keys", &secret, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&secret[3..]), "no secret in the list");
    let list: Value = serde_json::from_str(&list).unwrap();
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the login key and the new one");
    let ours = keys.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(ours["name"], "ci runner");
    assert!(secret.starts_with(ours["prefix"].as_str().unwrap()));
    assert!(
        ours["last_used_at"].is_string(),
        "last use kept in memory: {ours}"
    );
    assert_eq!(
        ours.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "created_at",
            "expires_at",
            "id",
            "last_used_at",
            "name",
            "prefix"
        ]
    );

    let empty_name = daemon
        .api(
            Method::POST,
            "/api/keys",
            &admin,
            Some(json!({"name": " "})),
        )
        .await;
    assert_eq!(empty_name.status(), 400);

    // Another user cannot revoke it.
    daemon
        .create_user(&admin, "eve", "developer", Some("eve-password"))
        .await;
    let eve = daemon.login("eve", "eve-password").await;
    let path = format!("/api/keys/{id}");
    assert_eq!(
        daemon.api(Method::DELETE, &path, &eve, None).await.status(),
        404
    );
    assert_eq!(
        daemon
            .api(Method::DELETE, &path, &admin, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &secret, None)
            .await
            .status(),
        401
    );
    assert_eq!(
        daemon
            .api(Method::DELETE, &path, &admin, None)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_username() {
    let daemon = Setup::git().start();
    for _ in 0..10 {
        assert_eq!(
            daemon
                .login_response("admin", "wrong-password")
                .await
                .status(),
            401
        );
    }
    let limited = daemon
        .login_response("admin", &daemon.admin_password())
        .await;
    assert_eq!(limited.status(), 429, "even the right password waits");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // Other usernames are not affected by this one's failures.
    assert_eq!(
        daemon
            .login_response("someone", "wrong-password")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_ip() {
    let daemon = Setup::git().start();
    let mut statuses = Vec::new();
    for i in 0..31 {
        let status = daemon
            .login_response(&format!("user{i}"), "wrong-password")
            .await
            .status()
            .as_u16();
        statuses.push(status);
    }
    assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[30], 429);
}

#[tokio::test]
async fn changes_acknowledged_by_the_api_survive_kill_9() {
    let mut daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    daemon.create_user(&admin, "durable", "viewer", None).await;
    let key: Value = daemon
        .api(
            Method::POST,
            "/api/keys",
            &admin,
            Some(json!({"name": "k"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let bound = daemon
        .api(
            Method::PUT,
            "/api/users/durable/access",
            &admin,
            Some(json!([{"role": "developer", "scope": "environment:*"}])),
        )
        .await;
    assert_eq!(bound.status(), 200);
    daemon.signal("KILL");
    daemon.wait_exit();
    let setup = std::mem::replace(&mut daemon.setup, Setup::missing());
    drop(daemon);
    let store = coderflow::store::Store::open(&setup.data.join("store")).unwrap();
    let user = store.user("durable").await.unwrap().expect("user survived");
    assert_eq!(user.access[0].role, coderflow::auth::Role::Developer);
    let keys = store.api_keys_of("admin").await.unwrap();
    assert!(keys.iter().any(|k| k.id == key["id"].as_str().unwrap()));
}
