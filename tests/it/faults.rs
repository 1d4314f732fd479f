//! Faults through the real binary: `kill -9` in a burst of writes, the setup repository folder
//! removed and created again, 100 reloads (half invalid) under authenticated load, 1,000
//! concurrent device polls, an unusable data folder.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::Browser;
use crate::support::{Setup, eventually, oidc_json, run_cli, save_atomic};

#[tokio::test]
async fn kill_9_during_a_burst_of_writes_loses_no_acknowledged_user_or_key() {
    let mut daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let acknowledged_users = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let acknowledged_keys = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let (base, admin, users, keys, stop) = (
            daemon.base.clone(),
            admin.clone(),
            acknowledged_users.clone(),
            acknowledged_keys.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let name = format!("w{worker}n{i}");
                let user = http
                    .post(format!("{base}/api/users"))
                    .bearer_auth(&admin)
                    .json(&json!({"username": name, "email": format!("{name}@example.com"), "name": name, "role": "viewer"}))
                    .send()
                    .await;
                if let Ok(r) = user {
                    if r.status() == 201 {
                        users.lock().unwrap().push(name.clone());
                    }
                }
                let key = http
                    .post(format!("{base}/api/keys"))
                    .bearer_auth(&admin)
                    .json(&json!({"name": name}))
                    .send()
                    .await;
                if let Ok(r) = key {
                    if r.status() == 201 {
                        if let Ok(body) = r.json::<Value>().await {
                            keys.lock().unwrap().push(body["id"].as_str().unwrap().to_owned());
                        }
                    }
                }
            }
        }));
    }
    eventually("a burst of writes", || async {
        (acknowledged_users.lock().unwrap().len() >= 40).then_some(())
    })
    .await;
    daemon.signal("KILL");
    daemon.wait_exit();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let setup = std::mem::replace(&mut daemon.setup, Setup::missing());
    drop(daemon);
    let store =
        coderflow::store::Store::open(&setup.data.join("store")).expect("the store opens cleanly");
    let users = acknowledged_users.lock().unwrap().clone();
    for name in &users {
        assert!(
            store.user(name).await.unwrap().is_some(),
            "acknowledged user {name} survived"
        );
    }
    let stored: Vec<String> = store
        .api_keys_of("admin")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    for id in acknowledged_keys.lock().unwrap().iter() {
        assert!(stored.contains(id), "acknowledged key {id} survived");
    }
    // And the daemon starts again on it.
    drop(store);
    let again = setup.start();
    assert_eq!(again.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn the_setup_folder_removed_and_created_again_is_watched_again() {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json("Before"));
    let daemon = setup.start();
    let repo = daemon.setup.repo.clone();
    std::fs::remove_dir_all(&repo).unwrap();
    eventually("SSO off while the folder is gone", || async {
        (daemon.public_config().await["sso_enabled"] == false).then_some(())
    })
    .await;
    assert_eq!(daemon.public_config().await["allow_local_auth"], true);
    std::fs::create_dir(&repo).unwrap();
    git2::Repository::init(&repo).unwrap();
    std::fs::write(repo.join(".gitignore"), "oidc.json\n").unwrap();
    save_atomic(&repo.join("oidc.json"), &oidc_json("After"));
    daemon.wait_for_display_name("After").await;
    // Edits in the new folder are seen too.
    save_atomic(&repo.join("oidc.json"), &oidc_json("Edited"));
    daemon.wait_for_display_name("Edited").await;
}

#[tokio::test]
async fn a_hundred_reloads_half_invalid_under_authenticated_load_fail_no_request() {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json("v0"));
    let daemon = setup.start();
    let admin = daemon.admin_key().await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (base, key, stop, ok, failed) = (
            daemon.base.clone(),
            admin.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                for path in ["/api/me", "/api/auth/oidc/config", "/login"] {
                    let response = http
                        .get(format!("{base}{path}"))
                        .bearer_auth(&key)
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        }));
    }
    let path = daemon.setup.oidc_path();
    for i in 1..=100 {
        if i % 2 == 0 {
            save_atomic(&path, &format!("{{ \"broken\": {i}"));
            daemon.wait_for_status("rejected", |s| !s.ok).await;
        } else {
            save_atomic(&path, &oidc_json(&format!("v{i}")));
            daemon.wait_for_display_name(&format!("v{i}")).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no failed request");
    assert!(ok.load(Ordering::Relaxed) > 100, "the load ran");
    assert_eq!(
        daemon
            .metric("coderflow_config_reloads_total{result=\"failure\"}")
            .await,
        50.0
    );
    assert_eq!(
        daemon
            .metric("coderflow_config_reloads_total{result=\"success\"}")
            .await,
        50.0
    );
}

#[tokio::test]
async fn a_thousand_concurrent_device_polls_yield_one_key_and_no_error() {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json("SSO"));
    let daemon = setup.start_with(&["--device-poll-interval", "1"]);
    let code = daemon.device_code("load").await;
    let user_code = code["user_code"].as_str().unwrap();
    let browser = Browser::new(&daemon.base);
    browser.sign_in("admin", &daemon.admin_password()).await;
    let approved = browser.decide_device(user_code, "approve").await;
    assert_eq!(approved.status(), 200);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1000)
        .build()
        .unwrap();
    let polls: Vec<_> = (0..1000)
        .map(|_| {
            let (http, url, device) = (
                http.clone(),
                daemon.url("/api/auth/device/token"),
                code["device_code"].clone(),
            );
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .json(&json!({"device_code": device}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                (status, body)
            })
        })
        .collect();
    let mut keys = 0;
    for poll in polls {
        let (status, body) = poll.await.unwrap();
        match status {
            200 => keys += 1,
            400 => assert!(
                ["slow_down", "invalid_grant"].contains(&body["error"].as_str().unwrap()),
                "{body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(keys, 1);
    assert_eq!(daemon.get("/readyz").await.status(), 200);
    let key_count = daemon
        .api(Method::GET, "/api/keys", &daemon.admin_key().await, None)
        .await
        .json::<Value>()
        .await
        .unwrap()["keys"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        key_count, 2,
        "the device key and the one just made to list them"
    );
}

#[test]
fn an_unusable_data_folder_is_a_clear_error_and_changes_nothing() {
    let setup = Setup::git();
    std::fs::write(&setup.data, "not a folder").unwrap();
    let (status, _, stderr) = run_cli(&[
        "serve",
        "--setup-repo",
        setup.repo.to_str().unwrap(),
        "--data-dir",
        setup.data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(
        stderr.contains(setup.data.to_str().unwrap()),
        "names the folder: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&setup.data).unwrap(),
        "not a folder"
    );
}

/// Mounts a tmpfs of `size` on `path` (the tests run as root, as CI does); unmounted on drop.
struct TmpMount(std::path::PathBuf);

impl TmpMount {
    fn new(path: &std::path::Path, options: &str) -> TmpMount {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root");
        TmpMount(path.to_owned())
    }
}

impl Drop for TmpMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_full_data_folder_answers_503_and_keeps_every_acknowledged_write() {
    let setup = Setup::git();
    let _mount = TmpMount::new(&setup.data, "size=3m,mode=0700");
    let data = setup.data.clone();
    let mut daemon = setup.start();
    let admin = daemon.admin_key().await;
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..20_000 {
        let name = format!("filler{i}");
        let response = daemon
            .api(
                Method::POST,
                "/api/users",
                &admin,
                Some(json!({"username": name, "email": format!("{name}@example.com"), "name": "x".repeat(190), "role": "viewer"})),
            )
            .await;
        match response.status().as_u16() {
            201 => acknowledged.push(name),
            status => {
                refused = Some((status, response.json::<Value>().await.unwrap()));
                break;
            }
        }
    }
    let (status, body) = refused.expect("the 3 MiB folder fills up");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "store_unavailable");
    assert!(acknowledged.len() > 10, "some writes fit first");
    // Reads and pages keep working.
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &admin, None)
            .await
            .status(),
        200
    );
    assert_eq!(daemon.get("/healthz").await.status(), 200);
    daemon.signal("KILL");
    daemon.wait_exit();
    // Nothing acknowledged is lost: a copy of the folder opens cleanly with every user.
    let copy = daemon.setup.tmp.path().join("copy");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let store = coderflow::store::Store::open(&copy.join("store")).expect("the store opens");
    for name in &acknowledged {
        assert!(store.user(name).await.unwrap().is_some(), "{name} survived");
    }
}

#[test]
fn a_read_only_data_folder_is_a_clear_error_at_start() {
    let setup = Setup::git();
    let _mount = TmpMount::new(&setup.data, "size=1m,mode=0700,ro");
    let (status, _, stderr) = run_cli(&[
        "serve",
        "--setup-repo",
        setup.repo.to_str().unwrap(),
        "--data-dir",
        setup.data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(
        stderr.contains("Read-only") || stderr.contains("read-only"),
        "{stderr}"
    );
}
