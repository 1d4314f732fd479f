//! API-key lifetimes (contract section 9): `expires_in_days` on `POST /api/keys`, the
//! `--api-key-max-days` cap (granted capped, not refused), `--cli-key-days` for the keys of
//! password and device logins, `expires_at` in every list and in `coder whoami`, and an expired
//! key answered 401 `key_expired` (audited), with the CLI saying to sign in again. Expiry is
//! tested without waiting: the test rewrites a stored key's expiry while the daemon is stopped.

use std::process::{Command, Stdio};

use coderflow::auth::credential::sha256;
use coderflow::store::Store;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Daemon, Setup};

const DAY: i64 = 86_400;

/// Seconds from now until the RFC 3339 time `at`.
fn seconds_until(at: &Value) -> i64 {
    let at = humantime::parse_rfc3339(at.as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now();
    match at.duration_since(now) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

async fn new_key(daemon: &Daemon, admin: &str, body: Value) -> (u16, Value) {
    let answer = daemon
        .api(Method::POST, "/api/keys", admin, Some(body))
        .await;
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn keys_live_as_asked_capped_by_the_server_maximum() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let (status, key) = new_key(
        &daemon,
        &admin,
        json!({"name": "ci", "expires_in_days": 30}),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    assert!(
        (seconds_until(&key["expires_at"]) - 30 * DAY).abs() < 60,
        "{key}"
    );
    let (_, forever) = new_key(&daemon, &admin, json!({"name": "forever"})).await;
    assert_eq!(forever["expires_at"], Value::Null, "no maximum: never");
    for bad in [0, 3651] {
        let (status, body) = new_key(
            &daemon,
            &admin,
            json!({"name": "x", "expires_in_days": bad}),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request");
    }
    let list = daemon.get_json_as("/api/keys", &admin).await;
    let listed: Vec<&Value> = list["keys"].as_array().unwrap().iter().collect();
    let ci = listed.iter().find(|k| k["name"] == "ci").unwrap();
    assert_eq!(ci["expires_at"], key["expires_at"]);
    // The admin's own key came from a password login: --cli-key-days (90 by default).
    let login = listed
        .iter()
        .find(|k| k["name"] != "ci" && k["name"] != "forever")
        .unwrap();
    assert!(
        (seconds_until(&login["expires_at"]) - 90 * DAY).abs() < 60,
        "{login}"
    );

    let capped = Setup::git().start_with(&["--api-key-max-days", "7", "--cli-key-days", "30"]);
    let admin = capped.admin_key().await;
    let (status, long) = new_key(
        &capped,
        &admin,
        json!({"name": "long", "expires_in_days": 365}),
    )
    .await;
    assert_eq!(status, 201, "granted, capped: {long}");
    assert!(
        (seconds_until(&long["expires_at"]) - 7 * DAY).abs() < 60,
        "{long}"
    );
    let (_, default) = new_key(&capped, &admin, json!({"name": "default"})).await;
    assert!(
        (seconds_until(&default["expires_at"]) - 7 * DAY).abs() < 60,
        "the cap is the default"
    );
    let me = capped.get_json_as("/api/keys", &admin).await;
    for key in me["keys"].as_array().unwrap() {
        assert!(
            seconds_until(&key["expires_at"]) <= 7 * DAY + 60,
            "every key capped: {key}"
        );
    }
}

/// `coder whoami` with the profiles in `config`.
fn whoami(config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coder"))
        .args(["whoami"])
        .env("CODER_CONFIG_DIR", config)
        .env_remove("CODER_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn an_expired_key_answers_key_expired_and_the_cli_says_to_sign_in_again() {
    let mut daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let (_, short) = new_key(
        &daemon,
        &admin,
        json!({"name": "short", "expires_in_days": 1}),
    )
    .await;
    let secret = short["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &secret, None)
            .await
            .status(),
        200
    );

    // The day passes: the stored expiry moves to the past while the daemon is stopped.
    daemon.signal("TERM");
    daemon.wait_exit();
    {
        let store = Store::open(&daemon.setup.data.join("store")).unwrap();
        let hash = sha256(secret.as_bytes());
        let mut record = store.api_key_by_hash(&hash).await.unwrap().unwrap();
        record.expires_unix = Some(1);
        store
            .delete_api_key(&record.username, &record.id)
            .await
            .unwrap();
        store.create_api_key(&hash, &record).await.unwrap();
        store.flush().await.unwrap();
    }
    // The same setup repository and data directory (the first daemon's folder stays alive).
    let daemon = crate::support::Setup {
        tmp: tempfile::tempdir().unwrap(),
        repo: daemon.setup.repo.clone(),
        data: daemon.setup.data.clone(),
    }
    .start();

    for _ in 0..2 {
        let answer = daemon.api(Method::GET, "/api/me", &secret, None).await;
        assert_eq!(answer.status(), 401);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "key_expired", "{body}");
    }
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &admin, None)
            .await
            .status(),
        200,
        "other keys unaffected"
    );
    let audit = daemon.get_json_as("/api/audit?kind=api_key", &admin).await;
    assert!(audit.to_string().contains("api_key.expired"), "{audit}");
    let listed = daemon.get_json_as("/api/keys", &admin).await;
    let expired = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "short")
        .unwrap();
    assert!(seconds_until(&expired["expires_at"]) < 0, "{expired}");

    // The CLI with that key: whoami says to sign in again.
    let config = daemon.setup.tmp.path().join("cli");
    std::fs::create_dir_all(&config).unwrap();
    let profiles = json!({"active": "default", "profiles": {"default": {
        "server": daemon.base, "username": "admin", "api_key": secret, "key_id": short["id"],
    }}});
    std::fs::write(config.join("profiles.json"), profiles.to_string()).unwrap();
    let out = whoami(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("expired") && stderr.contains("coder login"),
        "{stderr}"
    );

    // And with a live key, whoami shows when it expires.
    let (_, live) = new_key(
        &daemon,
        &admin,
        json!({"name": "live", "expires_in_days": 10}),
    )
    .await;
    let profiles = json!({"active": "default", "profiles": {"default": {
        "server": daemon.base, "username": "admin", "api_key": live["api_key"], "key_id": live["id"],
    }}});
    std::fs::write(config.join("profiles.json"), profiles.to_string()).unwrap();
    let out = whoami(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let who: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(who["key"]["expires_at"], live["expires_at"]);
}
