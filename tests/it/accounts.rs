//! Accounts through the real binary: the first admin, `create-user` with the daemon running and
//! stopped, and durability across `kill -9`.

use coderflow::auth::Role;
use coderflow::auth::credential::{Password, verify_password};
use coderflow::store::{AccessBinding, Store};

use crate::support::{Setup, admin_command, oidc_json, save_atomic};

fn create_user(
    data: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    admin_command("create-user", data, args, stdin)
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
    let admin = store.user("admin").await.unwrap().unwrap();
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
        .await
        .unwrap()
        .expect("acknowledged user survives kill -9");
    assert_eq!(john.name, "John Doe");
    assert_eq!(john.password_hash, None);
    assert_eq!(john.access, [AccessBinding::for_role(Role::Developer)]);
}

#[tokio::test]
async fn create_user_without_a_daemon_writes_the_store_directly() {
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
    let ops = store.user("ops").await.unwrap().unwrap();
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

#[tokio::test]
async fn api_login_issues_a_key_that_authenticates_as_its_user() {
    let daemon = Setup::git().start();
    let key = daemon.login("admin", &daemon.admin_password()).await;
    assert!(key.starts_with("cf_") && key.len() >= 46, "{key}");
    let me: serde_json::Value = daemon
        .http
        .get(daemon.url("/api/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["source"], "local");
    assert_eq!(
        me["access"],
        serde_json::json!([{"role": "server_admin", "scope": "server"}])
    );
    assert!(me.get("password_hash").is_none(), "{me}");
    assert!(!daemon.logs().contains(&key), "the key reached the log");
}

#[tokio::test]
async fn wrong_and_unknown_credentials_get_the_same_answer() {
    let daemon = Setup::git().start();
    for (user, password) in [("admin", "wrong password"), ("nobody", "whatever123")] {
        let response = daemon.login_response(user, password).await;
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_credentials");
    }
    for bearer in [
        "",
        "cf_",
        "cf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "garbage",
    ] {
        let response = daemon
            .http
            .get(daemon.url("/api/me"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{bearer:?}");
    }
    assert_eq!(daemon.get("/api/me").await.status(), 401);
}

#[tokio::test]
async fn http_reload_is_for_server_admins_only_and_uses_the_one_reload_path() {
    let setup = Setup::git();
    let outside = setup.link_oidc_outside(&oidc_json("Before"));
    let daemon = setup.start();
    let (code, _, stderr) = create_user(
        &daemon.setup.data,
        &[
            "--username=dev",
            "--email=dev@company.com",
            "--name=Dev",
            "--role=developer",
            "--password-stdin",
        ],
        Some("developer password\n"),
    );
    assert_eq!(code, 0, "{stderr}");
    let admin = daemon.login("admin", &daemon.admin_password()).await;
    let developer = daemon.login("dev", "developer password").await;
    let reload = |key: String| {
        let request = daemon
            .http
            .post(daemon.url("/api/settings/sso/reload"))
            .bearer_auth(key);
        async move { request.send().await.unwrap() }
    };

    save_atomic(&outside, &oidc_json("After"));
    let response = reload(developer).await;
    assert_eq!(response.status(), 403);
    assert_eq!(daemon.public_config().await["display_name"], "Before");

    let response = reload(admin).await;
    assert_eq!(response.status(), 200);
    let status: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status["result"], "applied");
    assert_eq!(status["ok"], true);
    assert_eq!(status["generation"], 2);
    assert_eq!(status["git"]["repo"], true);
    assert_eq!(daemon.public_config().await["display_name"], "After");
}

#[tokio::test]
async fn local_login_follows_allow_local_auth_live_and_keys_keep_working() {
    let daemon = Setup::git().start();
    let password = daemon.admin_password();
    let key = daemon.login("admin", &password).await;
    let sso_only = oidc_json("SSO").replace("\"issuer\"", "\"allow_local_auth\":false,\"issuer\"");
    save_atomic(&daemon.setup.oidc_path(), &sso_only);
    crate::support::eventually("local login off", || async {
        (daemon.public_config().await["allow_local_auth"] == false).then_some(())
    })
    .await;
    let response = daemon.login_response("admin", &password).await;
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "local_auth_disabled");
    let me = daemon
        .http
        .get(daemon.url("/api/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "API keys work while local login is off");

    save_atomic(
        &daemon.setup.oidc_path(),
        &sso_only.replace("false", "true"),
    );
    crate::support::eventually("local login back", || async {
        (daemon.login_response("admin", &password).await.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn recovery_commands_work_with_the_daemon_running() {
    let daemon = Setup::git().start();
    let data = daemon.setup.data.clone();
    let (code, out, err) = admin_command("create-user", &data, &JOHN, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("SSO only"));
    let (code, out, err) = admin_command(
        "reset-password",
        &data,
        &["--username=johndoe", "--password-stdin"],
        Some("a-new-password\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("password of `johndoe` changed"));
    assert!(!out.contains("a-new-password"));
    daemon.login("johndoe", "a-new-password").await;

    let (code, out, err) = admin_command(
        "set-role",
        &data,
        &["--username=johndoe", "--role=admin"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("now has role server_admin"));
    let key = daemon.login("johndoe", "a-new-password").await;
    let me: serde_json::Value = daemon
        .api(reqwest::Method::GET, "/api/me", &key, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["access"],
        serde_json::json!([{"role": "server_admin", "scope": "server"}])
    );

    let (code, _, err) = admin_command(
        "set-role",
        &data,
        &["--username=ghost", "--role=viewer"],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("no user named `ghost`"), "{err}");
    let (code, _, err) = admin_command(
        "set-role",
        &data,
        &["--username=johndoe", "--role=boss"],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("unknown role `boss`"), "{err}");
}

#[tokio::test]
async fn recovery_commands_work_with_the_daemon_stopped() {
    let setup = Setup::git();
    let data = setup.data.clone();
    let (code, _, err) = admin_command("create-user", &data, &JOHN, None);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = admin_command("reset-password", &data, &["--username=johndoe"], None);
    assert_eq!(code, 0, "{err}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("new password (shown once): "))
        .expect("a generated password is printed once")
        .to_owned();
    let (code, _, err) = admin_command(
        "set-role",
        &data,
        &["--username=johndoe", "--role=viewer"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let store = Store::open(&data.join("store")).unwrap();
    let user = store.user("johndoe").await.unwrap().unwrap();
    assert!(verify_password(
        &Password::new(password),
        user.password_hash.as_deref().unwrap()
    ));
    assert_eq!(user.access, [AccessBinding::for_role(Role::Viewer)]);
}
