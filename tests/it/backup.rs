//! `coder-server backup` and `restore` through the real binary: a backup taken under write load
//! restores to a daemon that starts, with every write acknowledged before the backup began.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Method;
use serde_json::json;

use crate::support::{Daemon, Setup, admin_command};

/// Runs `coder-server <command>` and asserts it refuses, saying `says`.
fn refused(command: &str, data: &std::path::Path, args: &[&str], says: &str) {
    let (code, _, err) = admin_command(command, data, args, None);
    assert_eq!(code, 1, "{command} {args:?}");
    assert!(err.contains(says), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_under_write_load_restores_to_a_daemon_that_starts() {
    let mut daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let base = daemon.base.clone();
    let stop = Arc::new(AtomicBool::new(false));
    // Writers: users created one after another; each 201 is an acknowledged write.
    let writer = {
        let (stop, admin, base) = (stop.clone(), admin.clone(), base.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                let name = format!("load{i}");
                let response = http
                    .request(Method::POST, format!("{base}/api/users"))
                    .bearer_auth(&admin)
                    .json(
                        &json!({"username": name, "email": format!("{name}@example.com"),
                                  "name": name, "role": "viewer"}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                acknowledged.push(name);
                i += 1;
            }
            acknowledged
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let backup = daemon.setup.tmp.path().join("backup");
    let data = daemon.setup.data.clone();
    // Everything acknowledged before the backup starts must be in it: count the users then.
    let before: serde_json::Value = daemon.get_json_as("/api/users", &admin).await;
    let before: Vec<String> = before["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    let to = backup.to_str().unwrap().to_owned();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || admin_command("backup", &data, &["--to", &to], None))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from the running daemon"), "{out}");
    stop.store(true, Ordering::Release);
    let acknowledged = writer.await.unwrap();
    assert!(acknowledged.len() > before.len() - 1, "writes went on");

    // A mistyped data directory is not an empty store to back up.
    let nowhere = daemon.setup.tmp.path().join("no-data-here");
    refused(
        "backup",
        &nowhere,
        &["--to", daemon.setup.tmp.path().join("b2").to_str().unwrap()],
        "no store in",
    );
    assert!(!nowhere.join("store").exists(), "nothing was created");
    // Not into a folder that holds something.
    refused(
        "backup",
        &daemon.setup.data,
        &["--to", backup.to_str().unwrap()],
        "not empty",
    );
    // Not while the daemon runs.
    refused(
        "restore",
        &daemon.setup.data,
        &["--from", backup.to_str().unwrap()],
        "stop it first",
    );

    daemon.signal("TERM");
    daemon.wait_exit();
    let setup = std::mem::replace(&mut daemon.setup, Setup::missing());
    drop(daemon);
    // A folder that is no backup changes nothing.
    refused(
        "restore",
        &setup.data,
        &["--from", setup.repo.to_str().unwrap()],
        "not a backup",
    );
    let (code, out, err) = admin_command(
        "restore",
        &setup.data,
        &["--from", backup.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restored"), "{out}");

    let command = setup.serve_command(&[]);
    let daemon = Daemon::spawn(command, setup);
    let users: serde_json::Value = daemon.get_json_as("/api/users", &admin).await;
    let restored: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    for name in &before {
        assert!(
            restored.contains(&name.as_str()),
            "{name} acknowledged before the backup"
        );
    }
    assert!(restored.len() <= acknowledged.len() + 1, "nothing invented");
}
