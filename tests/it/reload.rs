//! Hot reload of `oidc.json`: every way a file gets saved, rejected edits, deletion, and every
//! trigger going through the one reload path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use coderflow::reload::ReloadResult;
use coderflow::server::admin::{AdminRequest, AdminResponse, admin_request};

use crate::support::{Daemon, Setup, eventually, oidc_json, run_cli, save_atomic};

fn start_with_config(name: &str) -> Daemon {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json(name));
    setup.start()
}

#[tokio::test]
async fn atomic_rename_save_is_live() {
    let daemon = start_with_config("First");
    assert_eq!(daemon.public_config().await["display_name"], "First");
    save_atomic(&daemon.setup.oidc_path(), &oidc_json("Second"));
    daemon.wait_for_display_name("Second").await;
    let status = daemon.status().await;
    assert_eq!(status.generation, 2);
    assert!(status.ok && status.error.is_none());
}

#[tokio::test]
async fn in_place_write_is_live_without_a_rejected_half_write() {
    let daemon = start_with_config("First");
    std::fs::write(daemon.setup.oidc_path(), oidc_json("Rewritten")).unwrap();
    daemon.wait_for_display_name("Rewritten").await;
    assert_eq!(
        daemon
            .metric("coderflow_config_reloads_total{result=\"failure\"}")
            .await,
        0.0
    );
}

#[tokio::test]
async fn file_created_after_start_turns_sso_on() {
    let daemon = Setup::git().start();
    assert_eq!(daemon.public_config().await["sso_enabled"], false);
    save_atomic(&daemon.setup.oidc_path(), &oidc_json("Created"));
    daemon.wait_for_display_name("Created").await;
    assert_eq!(daemon.public_config().await["sso_enabled"], true);
}

#[tokio::test]
async fn editor_backup_and_rename_save_is_one_reload_and_never_turns_sso_off() {
    let daemon = start_with_config("Before");
    let path = daemon.setup.oidc_path();
    let backup = path.with_file_name("oidc.json~");
    // vim with `backupcopy=no`: move the old file aside, write a new one, drop the backup.
    std::fs::rename(&path, &backup).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(&path, oidc_json("After")).unwrap();
    std::fs::remove_file(&backup).unwrap();
    daemon.wait_for_display_name("After").await;
    let status = daemon.status().await;
    assert_eq!(status.generation, 2, "SSO was turned off in between");
    assert!(!daemon.logs().contains("SSO disabled"), "{}", daemon.logs());
}

#[tokio::test]
async fn kubernetes_configmap_symlink_swap_is_live() {
    let setup = Setup::plain();
    let root = setup.repo.clone();
    let version = |n: u32, name: &str| {
        let dir = root.join(format!("..2026_11_29_0{n}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("oidc.json"), oidc_json(name)).unwrap();
        dir
    };
    let first = version(1, "Mounted");
    std::os::unix::fs::symlink(first.file_name().unwrap(), root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/oidc.json", root.join("oidc.json")).unwrap();
    let daemon = setup.start();
    assert_eq!(daemon.public_config().await["display_name"], "Mounted");

    // What the kubelet does on an update: new folder, new link, rename the link over ..data.
    let second = version(2, "Remounted");
    std::os::unix::fs::symlink(second.file_name().unwrap(), root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(&first).unwrap();
    daemon.wait_for_display_name("Remounted").await;
}

#[tokio::test]
async fn invalid_edit_keeps_the_last_good_configuration_and_is_reported() {
    let daemon = start_with_config("Good");
    save_atomic(
        &daemon.setup.oidc_path(),
        "{\n  \"enabled\": true,\n  \"client_id\": \"x\",\n  \"client_secret\": \"y\"\n  \"issuer\": \"https://idp.example.com\"\n}",
    );
    let status = daemon
        .wait_for_status("the edit to be rejected", |s| !s.ok)
        .await;
    let error = status.error.expect("an error is reported");
    assert_eq!((error.line, error.column), (Some(5), Some(3)));
    assert!(
        error
            .message
            .contains("oidc.json: line 5, column 3: invalid JSON"),
        "{}",
        error.message
    );
    assert_eq!(status.generation, 1);
    assert_eq!(daemon.public_config().await["display_name"], "Good");
    assert!(daemon.logs().contains("ERROR"), "{}", daemon.logs());
    assert!(
        daemon
            .logs()
            .contains("keeping the last good configuration (generation 1)")
    );
    assert_eq!(
        daemon
            .metric("coderflow_config_reloads_total{result=\"failure\"}")
            .await,
        1.0
    );
    assert_eq!(
        daemon
            .metric("coderflow_config_last_reload_successful")
            .await,
        0.0
    );
    assert!(
        daemon
            .metric("coderflow_config_last_reload_timestamp_seconds")
            .await
            > 1.7e9
    );

    // A schema violation is reported with its pointer; fixing the file clears the error.
    save_atomic(
        &daemon.setup.oidc_path(),
        &oidc_json("Good").replace("\"enabled\":true", "\"enabled\":\"yes\""),
    );
    let status = daemon
        .wait_for_status("the schema error", |s| {
            s.error
                .as_ref()
                .is_some_and(|e| e.pointer.as_deref() == Some("/enabled"))
        })
        .await;
    assert_eq!(status.generation, 1);
    save_atomic(&daemon.setup.oidc_path(), &oidc_json("Fixed"));
    daemon.wait_for_display_name("Fixed").await;
    let status = daemon.status().await;
    assert!(status.ok && status.error.is_none());
    assert_eq!(status.generation, 2);
    assert_eq!(
        daemon
            .metric("coderflow_config_last_reload_successful")
            .await,
        1.0
    );
    assert_eq!(daemon.metric("coderflow_config_generation").await, 2.0);
}

#[tokio::test]
async fn deleting_the_file_turns_sso_off_and_local_login_on() {
    let setup = Setup::git();
    setup.write_oidc(
        &oidc_json("SSO only").replace("\"issuer\"", "\"allow_local_auth\":false,\"issuer\""),
    );
    let daemon = setup.start();
    let config = daemon.public_config().await;
    assert_eq!(
        (
            config["sso_enabled"].as_bool(),
            config["allow_local_auth"].as_bool()
        ),
        (Some(true), Some(false))
    );
    std::fs::remove_file(daemon.setup.oidc_path()).unwrap();
    eventually("SSO to turn off", || async {
        let config = daemon.public_config().await;
        (config["sso_enabled"] == false && config["allow_local_auth"] == true).then_some(())
    })
    .await;
    assert_eq!(daemon.metric("coderflow_sso_enabled").await, 0.0);
}

#[tokio::test]
async fn flipping_allow_local_auth_in_the_file_recovers_from_a_lockout() {
    let daemon = start_with_config("Locked");
    let locked = oidc_json("Locked").replace("\"issuer\"", "\"allow_local_auth\":false,\"issuer\"");
    save_atomic(&daemon.setup.oidc_path(), &locked);
    eventually("local login off", || async {
        (daemon.public_config().await["allow_local_auth"] == false).then_some(())
    })
    .await;
    save_atomic(&daemon.setup.oidc_path(), &locked.replace("false", "true"));
    eventually("local login back on", || async {
        (daemon.public_config().await["allow_local_auth"] == true).then_some(())
    })
    .await;
}

#[tokio::test]
async fn saving_the_same_bytes_is_not_a_reload() {
    let daemon = start_with_config("Same");
    save_atomic(&daemon.setup.oidc_path(), &oidc_json("Same"));
    std::fs::write(daemon.setup.oidc_path(), oidc_json("Same")).unwrap();
    // The watch saw the saves (its debug line), and found nothing to do.
    eventually("the watch to read the saved file", || async {
        daemon
            .logs()
            .contains("oidc.json unchanged: not a reload trigger=Watch")
            .then_some(())
    })
    .await;
    assert_eq!(daemon.status().await.generation, 1);
    assert_eq!(
        daemon
            .metric("coderflow_config_reloads_total{result=\"success\"}")
            .await,
        0.0
    );
}

#[tokio::test]
async fn unreadable_file_is_rejected_and_recovers_when_readable_again() {
    let daemon = start_with_config("Readable");
    let path = daemon.setup.oidc_path();
    save_atomic(&path, &" ".repeat(2 * 1024 * 1024));
    let status = daemon
        .wait_for_status("the oversized file to be rejected", |s| !s.ok)
        .await;
    let message = status.error.unwrap().message;
    assert!(
        message.contains("cannot read: larger than 1 MiB"),
        "{message}"
    );
    // The same bytes as the last good file: not "unchanged", since the failed read left the
    // file unknown.
    save_atomic(&path, &oidc_json("Readable"));
    let status = daemon.wait_for_status("recovery", |s| s.ok).await;
    assert!(status.error.is_none());
    assert_eq!(daemon.public_config().await["display_name"], "Readable");
}

#[tokio::test]
async fn a_fifo_in_place_of_the_file_is_refused_without_blocking() {
    // With file events and with --watch-poll (whose poll reads the file too).
    for flags in [&[][..], &["--watch-poll", "1"][..]] {
        let setup = Setup::git();
        setup.write_oidc(&oidc_json("Regular"));
        let daemon = setup.start_with(flags);
        let path = daemon.setup.oidc_path();
        std::fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let status = daemon
            .wait_for_status("the FIFO to be refused", |s| {
                s.error
                    .as_ref()
                    .is_some_and(|e| e.message.contains("not a regular file"))
            })
            .await;
        assert_eq!(status.generation, 1, "{flags:?}");
        assert_eq!(daemon.public_config().await["display_name"], "Regular");
        // Nothing hangs on the FIFO: a regular file again is live.
        std::fs::remove_file(&path).unwrap();
        save_atomic(&path, &oidc_json("Again"));
        daemon.wait_for_display_name("Again").await;
    }
}

#[tokio::test]
async fn sighup_reloads() {
    let setup = Setup::git();
    let outside = setup.link_oidc_outside(&oidc_json("Before HUP"));
    let daemon = setup.start();
    save_atomic(&outside, &oidc_json("After HUP"));
    daemon.signal("HUP");
    daemon.wait_for_display_name("After HUP").await;
    eventually("the SIGHUP log line", || async {
        daemon.logs().contains("SIGHUP: reloaded").then_some(())
    })
    .await;
}

#[tokio::test]
async fn admin_socket_reload_reports_applied_unchanged_and_rejected() {
    let setup = Setup::git();
    let outside = setup.link_oidc_outside(&oidc_json("One"));
    let daemon = setup.start();
    let data = daemon.setup.data.to_str().unwrap().to_owned();
    let (status, stdout, _) = run_cli(&["reload", "--data-dir", &data]);
    assert!(status.success());
    assert!(
        stdout.starts_with("unchanged: oidc.json has not changed, generation 1 stays live"),
        "{stdout}"
    );

    // The file is outside the watched folder: only the explicit reload applies it.
    save_atomic(&outside, &oidc_json("Two"));
    let outcome = match admin_request(&daemon.setup.data, &AdminRequest::Reload)
        .await
        .unwrap()
    {
        AdminResponse::Reload(outcome) => outcome,
        other => panic!("{other:?}"),
    };
    assert_eq!(outcome.result, ReloadResult::Applied);
    assert_eq!(outcome.status.generation, 2);
    assert_eq!(daemon.public_config().await["display_name"], "Two");

    save_atomic(&outside, "{\"enabled\": true}");
    let (status, stdout, _) = run_cli(&["reload", "--data-dir", &data]);
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("generation 2 stays live"), "{stdout}");
    assert!(stdout.contains("/client_id: is required"), "{stdout}");
    // Asked again with the same rejected file: "rejected" first, as the exit code says.
    let (status, stdout, _) = run_cli(&["reload", "--data-dir", &data]);
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("rejected: oidc.json has not changed since it was rejected"),
        "{stdout}"
    );
    assert!(stdout.contains("/client_id: is required"), "{stdout}");

    let (status, stdout, _) = run_cli(&["status", "--data-dir", &data]);
    assert_eq!(status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["generation"], 2);
    assert_eq!(json["error"]["pointer"], "/client_id");
    assert_eq!(json["git"]["repo"], true);
}

#[tokio::test]
async fn http_reload_requires_a_server_admin() {
    let daemon = start_with_config("Guarded");
    let response = daemon
        .http
        .post(daemon.url("/api/settings/sso/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");
    assert!(!daemon.logs().contains("trigger=Api"));
}

#[tokio::test]
async fn reloads_never_fail_a_concurrent_request() {
    let daemon = Arc::new(start_with_config("v0"));
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (daemon, stop, served) = (daemon.clone(), stop.clone(), served.clone());
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match daemon
                    .http
                    .get(daemon.url("/api/auth/oidc/config"))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => match r.json::<serde_json::Value>().await {
                        Ok(v)
                            if v["display_name"]
                                .as_str()
                                .is_some_and(|n| n.starts_with('v')) =>
                        {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failures.push(format!("{other:?}")),
                    },
                    other => failures.push(format!("{other:?}")),
                }
            }
            failures
        }));
    }
    for i in 1..=20 {
        let name = format!("v{i}");
        save_atomic(&daemon.setup.oidc_path(), &oidc_json(&name));
        daemon.wait_for_display_name(&name).await;
        save_atomic(&daemon.setup.oidc_path(), &format!("{{ broken {i}"));
        daemon.wait_for_status("rejection", |s| !s.ok).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let failures = client.await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    }
    assert!(served.load(Ordering::Relaxed) > 100);
    assert_eq!(daemon.status().await.generation, 21);
}

#[tokio::test]
async fn client_secret_never_reaches_a_response_or_the_log() {
    let daemon = start_with_config("Secretive");
    let mut seen = String::new();
    for path in ["/api/auth/oidc/config", "/metrics", "/readyz", "/healthz"] {
        seen.push_str(&daemon.get(path).await.text().await.unwrap());
    }
    let long_secret = "test-secret-do-not-log".repeat(200);
    for broken in [
        oidc_json("Secretive").replace("\"enabled\":true", "\"enabled\":1"),
        oidc_json("Secretive").replace("test-secret-do-not-log", &long_secret),
        oidc_json("Secretive")
            .replace("\"test-secret-do-not-log\"", "[\"test-secret-do-not-log\"]"),
    ] {
        save_atomic(&daemon.setup.oidc_path(), &broken);
        let status = daemon.wait_for_status("rejection", |s| !s.ok).await;
        seen.push_str(&serde_json::to_string(&status).unwrap());
        save_atomic(&daemon.setup.oidc_path(), &oidc_json("Secretive"));
        daemon.wait_for_status("recovery", |s| s.ok).await;
    }
    seen.push_str(&daemon.logs());
    assert!(seen.contains("Secretive"));
    assert!(!seen.contains("test-secret-do-not-log"), "{seen}");
}

/// `--watch-poll`: no file events at all; a save, an in-place write of the same length and a
/// deletion are each live within a poll or two, one reload each.
#[tokio::test]
async fn watch_poll_follows_the_file_without_file_events() {
    let setup = Setup::plain();
    setup.write_oidc(&oidc_json("Polled"));
    let daemon = setup.start_with(&["--watch-poll", "1"]);
    eventually("the polling log line", || async {
        daemon.logs().contains("by polling").then_some(())
    })
    .await;
    assert_eq!(daemon.public_config().await["display_name"], "Polled");
    save_atomic(&daemon.setup.oidc_path(), &oidc_json("Polled2"));
    daemon.wait_for_display_name("Polled2").await;
    // The same length, written in place: only the bytes tell.
    std::fs::write(daemon.setup.oidc_path(), oidc_json("Polled3")).unwrap();
    daemon.wait_for_display_name("Polled3").await;
    std::fs::remove_file(daemon.setup.oidc_path()).unwrap();
    eventually("SSO off after the file is gone", || async {
        (daemon.public_config().await["sso_enabled"] == false).then_some(())
    })
    .await;
    let status = daemon.status().await;
    assert_eq!(status.generation, 4, "one reload per change");
}
