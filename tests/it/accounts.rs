//! Accounts through the real binary: the first admin, `create-user` with the daemon running and
//! stopped, and durability across `kill -9`.

use std::io::Write;
use std::process::{Command, Stdio};

use coderflow::auth::Role;
use coderflow::auth::credential::{Password, verify_password};
use coderflow::store::{AccessBinding, Store};

use crate::support::{BIN, Setup};

fn create_user(
    data: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("create-user")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const JOHN: [&str; 4] = [
    "--username=johndoe",
    "--email=john.doe@company.com",
    "--name=John Doe",
    "--role=developer",
];

#[tokio::test]
async fn first_start_prints_the_admin_password_once_and_stores_only_its_hash() {
    let mut daemon = Setup::git().start();
    let logs = daemon.logs();
    let line = logs
        .lines()
        .find(|l| l.starts_with("initial admin password (user \"admin\"): "))
        .unwrap_or_else(|| panic!("no password line in\n{logs}"));
    let password = line.rsplit(' ').next().unwrap().to_owned();
    assert!(password.len() >= 20, "{password}");
    assert_eq!(logs.matches(&password).count(), 1, "{logs}");
    daemon.signal("TERM");
    daemon.wait_exit();

    let store = Store::open(&daemon.setup.data.join("store")).unwrap();
    let admin = store.user("admin").unwrap().unwrap();
    assert_eq!(admin.access, [AccessBinding::for_role(Role::ServerAdmin)]);
    let hash = admin.password_hash.unwrap();
    assert!(!hash.contains(&password));
    assert!(verify_password(&Password::new(password), &hash));
    drop(store);

    let again = crate::support::Setup {
        tmp: tempfile::tempdir().unwrap(),
        repo: daemon.setup.repo.clone(),
        data: daemon.setup.data.clone(),
    }
    .start();
    assert!(!again.logs().contains("initial admin password"));
}

#[tokio::test]
async fn create_user_through_the_running_daemon_survives_kill_9() {
    let mut daemon = Setup::git().start();
    let (code, stdout, stderr) = create_user(&daemon.setup.data, &JOHN, None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "created user `johndoe` <john.doe@company.com> with role developer (SSO only)"
    );
    let (code, _, stderr) = create_user(&daemon.setup.data, &JOHN, None);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("a user named `johndoe` already exists"),
        "{stderr}"
    );
    let (code, _, stderr) = create_user(
        &daemon.setup.data,
        &[
            "--username=jd",
            "--email=JOHN.DOE@company.com",
            "--name=J",
            "--role=viewer",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("a user with email `JOHN.DOE@company.com` already exists"),
        "{stderr}"
    );

    daemon.signal("KILL");
    daemon.wait_exit();
    let store = Store::open(&daemon.setup.data.join("store")).unwrap();
    let john = store
        .user("johndoe")
        .unwrap()
        .expect("acknowledged user survives kill -9");
    assert_eq!(john.name, "John Doe");
    assert_eq!(john.password_hash, None);
    assert_eq!(john.access, [AccessBinding::for_role(Role::Developer)]);
}

#[test]
fn create_user_without_a_daemon_writes_the_store_directly() {
    let setup = Setup::git();
    let args = [
        "--username=ops",
        "--email=ops@company.com",
        "--name=Ops",
        "--role=admin",
        "--password-stdin",
    ];
    let (code, stdout, stderr) = create_user(&setup.data, &args, Some("long enough password\n"));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("with role server_admin (password or SSO)"),
        "{stdout}"
    );
    let store = Store::open(&setup.data.join("store")).unwrap();
    let ops = store.user("ops").unwrap().unwrap();
    assert_eq!(ops.access, [AccessBinding::for_role(Role::ServerAdmin)]);
    assert!(verify_password(
        &Password::new("long enough password"),
        ops.password_hash.as_deref().unwrap()
    ));
}

#[test]
fn create_user_refuses_bad_input_clearly() {
    let setup = Setup::git();
    let (code, _, stderr) = create_user(
        &setup.data,
        &[
            "--username=x",
            "--email=x@company.com",
            "--name=X",
            "--role=owner",
        ],
        None,
    );
    assert_eq!(code, 64);
    assert!(stderr.contains("unknown role `owner`"), "{stderr}");
    let (code, _, stderr) = create_user(
        &setup.data,
        &[
            "--username=x",
            "--email=x@company.com",
            "--name=X",
            "--role=viewer",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("at least 8 characters"), "{stderr}");
    let (code, _, stderr) = create_user(
        &setup.data,
        &[
            "--username=Bad Name",
            "--email=x@company.com",
            "--name=X",
            "--role=viewer",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid username `Bad Name`"), "{stderr}");
}
