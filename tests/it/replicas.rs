//! Several replicas on one PostgreSQL database, through the real binaries: they start together
//! and migrate once, hand logins and device codes to each other, honour each other's
//! revocations within a second, survive one of them being killed and the database restarting.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::{Browser, location};
use crate::support::idp::{IdpUser, TestIdp};
use crate::support::postgres::{self, Postgres};
use crate::support::{Daemon, Setup};

/// A replica on `database_url` with `oidc` (if any) in its own setup repository.
fn replica_command(
    database_url: &str,
    oidc: Option<&Value>,
    extra: &[&str],
) -> (Setup, std::process::Command) {
    let setup = Setup::git();
    if let Some(oidc) = oidc {
        setup.write_oidc(&oidc.to_string());
    }
    let mut args = vec!["--database-url", database_url];
    args.extend_from_slice(extra);
    let command = setup.serve_command(&args);
    (setup, command)
}

fn replica(database_url: &str, oidc: Option<&Value>, extra: &[&str]) -> Daemon {
    let (setup, command) = replica_command(database_url, oidc, extra);
    Daemon::spawn(command, setup)
}

/// Starts `n` replicas at the same moment.
fn replicas_at_once(
    n: usize,
    database_url: &str,
    oidc: Option<&Value>,
    extra: &[&str],
) -> Vec<Daemon> {
    let commands: Vec<_> = (0..n)
        .map(|_| replica_command(database_url, oidc, extra))
        .collect();
    let threads: Vec<_> = commands
        .into_iter()
        .map(|(setup, command)| std::thread::spawn(move || Daemon::spawn(command, setup)))
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// The one admin password printed among `replicas`.
fn the_admin_password(replicas: &[Daemon]) -> String {
    let printed: Vec<String> = replicas
        .iter()
        .filter(|r| r.logs().contains("initial admin password"))
        .map(Daemon::admin_password)
        .collect();
    assert_eq!(
        printed.len(),
        1,
        "exactly one replica created the first admin"
    );
    printed[0].clone()
}

/// Waits until `check` holds, at most `within`; how long it took.
async fn within<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status_with_key(daemon: &Daemon, key: &str) -> u16 {
    daemon
        .api(Method::GET, "/api/me", key, None)
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_starting_at_once_migrate_once_and_share_everything() {
    let url = postgres::shared().fresh_database();
    let replicas = replicas_at_once(3, &url, None, &[]);
    let password = the_admin_password(&replicas);
    let db = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        postgres::shared()
            .psql(
                &db,
                "SELECT count(*) || ':' || max(version) FROM coderflow_schema"
            )
            .unwrap(),
        "3:3",
        "each migration applied once"
    );
    assert_eq!(
        postgres::shared()
            .psql(&db, "SELECT count(*) FROM users")
            .unwrap(),
        "1",
        "one first admin"
    );
    for daemon in &replicas {
        assert!(
            !daemon.logs().contains("ERROR"),
            "no replica logged an error: {}",
            daemon.logs()
        );
        assert_eq!(daemon.get("/readyz").await.status(), 200);
    }
    // A key made on one replica works on every one; a user made on one signs in on another.
    let key = replicas[0].login("admin", &password).await;
    replicas[1]
        .create_user(&key, "dora", "developer", Some("dora-password-1"))
        .await;
    let dora = replicas[2].login("dora", "dora-password-1").await;
    for daemon in &replicas {
        let me = daemon.get_json_as("/api/me", &dora).await;
        assert_eq!(me["username"], "dora");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Failed passwords count in the database: ten spread over two replicas lock the username
/// out (from that address) on both; the settings API of each lists both replicas with the hash
/// of the configuration each runs, and a reload on one shows there within a heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_failures_count_across_replicas_and_settings_list_every_replica() {
    let url = postgres::shared().fresh_database();
    let oidc: Value = serde_json::from_str(&crate::support::oidc_json("Replica SSO")).unwrap();
    let replicas = vec![replica(&url, Some(&oidc), &[]), replica(&url, None, &[])];
    let password = the_admin_password(&replicas);
    let key = replicas[0].login("admin", &password).await;
    replicas[0]
        .create_user(&key, "dora", "developer", Some("dora-password-1"))
        .await;

    for attempt in 0..10 {
        let answer = replicas[attempt % 2]
            .login_response("dora", "wrong-password")
            .await;
        assert_eq!(answer.status(), 401, "failure {attempt}");
    }
    for daemon in &replicas {
        let answer = daemon.login_response("dora", "dora-password-1").await;
        assert_eq!(answer.status(), 429, "locked out on every replica");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "rate_limited");
    }
    // Another username is untouched.
    assert_eq!(
        replicas[1]
            .login_response("admin", &password)
            .await
            .status(),
        200
    );

    let settings = |daemon: &Daemon| {
        let key = key.clone();
        let url = daemon.url("/api/settings/sso");
        async move {
            let answer = reqwest::Client::new()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            answer.json::<Value>().await.unwrap()
        }
    };
    let file_sha = sha256_hex(&std::fs::read(replicas[0].setup.oidc_path()).unwrap());
    let view = settings(&replicas[0]).await;
    assert_eq!(view["config_sha256"], file_sha.as_str());
    let listed = view["replicas"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{view}");
    let this: Vec<&Value> = listed.iter().filter(|r| r["this"] == true).collect();
    assert_eq!(this.len(), 1);
    assert_eq!(this[0]["config_sha256"], file_sha.as_str());
    assert_eq!(this[0]["version"], env!("CARGO_PKG_VERSION"));
    assert!(this[0]["last_seen"].as_str().unwrap().ends_with('Z'));
    let other = listed.iter().find(|r| r["this"] == false).unwrap();
    assert_eq!(
        other["config_sha256"], "",
        "the other replica runs no oidc.json"
    );
    assert_eq!(other["same_config"], false);
    assert_ne!(other["id"], this[0]["id"]);

    // The second replica gets the same file: the first one sees it within a heartbeat.
    replicas[1]
        .setup
        .write_oidc(&std::fs::read_to_string(replicas[0].setup.oidc_path()).unwrap());
    within(
        "the reloaded replica's heartbeat",
        Duration::from_secs(5),
        || async {
            let view = settings(&replicas[0]).await;
            view["replicas"]
                .as_array()
                .is_some_and(|r| r.len() == 2 && r.iter().all(|r| r["same_config"] == true))
        },
    )
    .await;

    // A replica that stops takes itself off the list.
    let mut replicas = replicas;
    replicas[1].signal("TERM");
    replicas[1].wait_exit();
    let view = settings(&replicas[0]).await;
    assert_eq!(view["replicas"].as_array().unwrap().len(), 1, "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_disabling_and_signing_out_reach_every_replica_within_a_second() {
    let url = postgres::shared().fresh_database();
    let a = replica(&url, None, &[]);
    let b = replica(&url, None, &[]);
    let c = replica(&url, None, &[]);
    let admin = a.login("admin", &a.admin_password()).await;
    a.create_user(&admin, "erin", "developer", Some("erin-password-1"))
        .await;
    // Revoking a key on one replica: refused on the others (which had it cached) within 1 s.
    let key = b.login("erin", "erin-password-1").await;
    for daemon in [&a, &b, &c] {
        assert_eq!(
            status_with_key(daemon, &key).await,
            200,
            "cached everywhere"
        );
    }
    let keys = c.get_json_as("/api/keys", &key).await;
    let id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    let revoked = c
        .api(Method::DELETE, &format!("/api/keys/{id}"), &key, None)
        .await;
    assert_eq!(revoked.status(), 204);
    for daemon in [&a, &b] {
        let took = within(
            "revocation reaches the replica",
            Duration::from_secs(1),
            || async { status_with_key(daemon, &key).await == 401 },
        )
        .await;
        assert!(took < Duration::from_secs(1));
    }
    // Disabling a user on one replica: their other key stops on every replica within 1 s.
    let key = a.login("erin", "erin-password-1").await;
    for daemon in [&a, &b, &c] {
        assert_eq!(status_with_key(daemon, &key).await, 200);
    }
    let disabled = b
        .api(
            Method::PATCH,
            "/api/users/erin",
            &admin,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    for daemon in [&a, &c] {
        within(
            "disabling reaches the replica",
            Duration::from_secs(1),
            || async { status_with_key(daemon, &key).await == 401 },
        )
        .await;
    }
    // Signing out on one replica ends the session on all.
    let browser = Browser::new(&a.base);
    browser.sign_in("admin", &a.admin_password()).await;
    let on_c = Browser {
        base: c.base.clone(),
        http: browser.http.clone(),
    };
    assert_eq!(
        on_c.get("/api/me").await.status(),
        200,
        "the session works on C"
    );
    let csrf = browser.csrf().await;
    let out = browser.post_form("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status(), 303, "signed out");
    assert_eq!(on_c.get("/api/me").await.status(), 401, "ended on C too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_code_made_on_one_is_approved_on_a_second_and_polled_on_a_third() {
    let url = postgres::shared().fresh_database();
    let a = replica(&url, None, &["--device-poll-interval", "1"]);
    let b = replica(&url, None, &["--device-poll-interval", "1"]);
    let c = replica(&url, None, &["--device-poll-interval", "1"]);
    let code = a.device_code("coder CLI").await;
    let device_code = code["device_code"].as_str().unwrap().to_owned();
    let user_code = code["user_code"].as_str().unwrap().to_owned();
    let (status, body) = c.poll_device(&device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let browser = Browser::new(&b.base);
    browser.sign_in("admin", &a.admin_password()).await;
    assert_eq!(
        browser.decide_device(&user_code, "approve").await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Polls racing on two replicas: one key.
    let (first, second) = tokio::join!(c.poll_device(&device_code), a.poll_device(&device_code));
    let keys: Vec<&Value> = [&first, &second]
        .into_iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(keys.len(), 1, "one key: {first:?} {second:?}");
    let key = keys[0]["api_key"].as_str().unwrap();
    assert_eq!(b.get_json_as("/api/me", key).await["username"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sso_login_started_on_one_replica_finishes_on_another() {
    let idp = TestIdp::start("c", "s").await;
    let oidc = json!({
        "enabled": true, "client_id": "c", "client_secret": "s", "issuer": idp.issuer(),
    });
    let url = postgres::shared().fresh_database();
    // Both answer at one public URL, as behind a load balancer.
    let public = ["--public-url", "http://sso.replicas.test"];
    let a = replica(&url, Some(&oidc), &public);
    let b = replica(&url, Some(&oidc), &public);
    for daemon in [&a, &b] {
        daemon
            .wait_for_status("provider ready", |s| {
                s.provider.state == coderflow::oidc::ProviderState::Ready
            })
            .await;
    }
    idp.login_as(IdpUser::from_email("fay@company.com", "Fay"));
    let browser = Browser::new(&a.base);
    let start = browser.get("/auth/oidc/login").await;
    assert_eq!(start.status(), 303);
    let callback = location(&browser.get(&location(&start)).await);
    let on_b = callback.replace("http://sso.replicas.test", &b.base);
    assert_ne!(
        on_b, callback,
        "the provider sends the browser back to the public URL"
    );
    let landed = browser.get(&on_b).await;
    assert_eq!(
        landed.status(),
        303,
        "the callback on B finishes the login started on A"
    );
    let me: Value = browser
        .get(&format!("{}/api/me", a.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "fay@company.com", "the session works on A too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_one_replica_under_write_load_loses_no_acknowledged_write() {
    let url = postgres::shared().fresh_database();
    let a = replica(&url, None, &[]);
    let mut b = replica(&url, None, &[]);
    let admin = a.login("admin", &a.admin_password()).await;
    // Writers on both replicas; B is killed while they run.
    let write = |daemon_base: String, prefix: &'static str| {
        let admin = admin.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            let mut failed_requests = 0;
            for i in 0..60 {
                let name = format!("{prefix}{i}");
                let response = http
                    .post(format!("{daemon_base}/api/users"))
                    .bearer_auth(&admin)
                    .json(&json!({"username": name, "email": format!("{name}@example.com"), "name": name, "role": "viewer"}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 201 => acknowledged.push(name),
                    Ok(r) => panic!("{prefix}: unexpected {}", r.status()),
                    Err(_) => failed_requests += 1,
                }
            }
            (acknowledged, failed_requests)
        })
    };
    let on_a = write(a.base.clone(), "a");
    let on_b = write(b.base.clone(), "b");
    tokio::time::sleep(Duration::from_millis(150)).await;
    b.signal("KILL");
    let (written_a, failed_a) = on_a.await.unwrap();
    b.wait_exit();
    let (written_b, _) = on_b.await.unwrap();
    assert_eq!(failed_a, 0, "no request on the surviving replica failed");
    assert_eq!(written_a.len(), 60);
    let users = a.get_json_as("/api/users", &admin).await;
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    for name in written_a.iter().chain(&written_b) {
        assert!(
            names.contains(&name.as_str()),
            "acknowledged {name} is kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_restarting_under_load_is_survived_without_restarting_the_daemons() {
    // A cluster of its own: this test restarts it.
    let cluster = Postgres::start();
    cluster.psql("postgres", "CREATE DATABASE restart").unwrap();
    let url = cluster.url("restart");
    let a = replica(&url, None, &[]);
    let b = replica(&url, None, &[]);
    let admin = a.login("admin", &a.admin_password()).await;
    assert_eq!(b.get("/readyz").await.status(), 200);
    cluster.stop_server();
    for daemon in [&a, &b] {
        within("readyz says 503", Duration::from_secs(10), || async {
            daemon.get("/readyz").await.status() == 503
        })
        .await;
        assert_eq!(
            daemon.get("/healthz").await.status(),
            200,
            "the process is alive"
        );
        let refused = daemon.api(Method::GET, "/api/users", &admin, None).await;
        assert_eq!(refused.status(), 503);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "store_unavailable");
    }
    cluster.start_server();
    for daemon in [&a, &b] {
        within("readyz recovers", Duration::from_secs(15), || async {
            daemon.get("/readyz").await.status() == 200
        })
        .await;
        assert_eq!(
            daemon.get_json_as("/api/me", &admin).await["username"],
            "admin"
        );
    }
}
