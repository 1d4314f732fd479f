//! Start-up, flags, environment, the admin socket and shutdown.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::support::{BIN, Daemon, Setup, oidc_json};

#[tokio::test]
async fn missing_setup_repository_is_created_from_the_template_with_git() {
    let setup = Setup::missing();
    let daemon = setup.start();
    let repo = git2::Repository::open(&daemon.setup.repo).expect("git init ran");
    assert!(
        repo.is_path_ignored(std::path::Path::new("oidc.json"))
            .unwrap()
    );
    for file in ["README.md", ".gitignore", "oidc.example.json"] {
        assert!(daemon.setup.repo.join(file).is_file(), "{file}");
    }
    let config = daemon.public_config().await;
    assert_eq!(config["sso_enabled"], false);
    assert_eq!(config["allow_local_auth"], true);
    assert_eq!(config["display_name"], "Sign in with SSO");
    assert!(config["login_url"].is_null());
}

#[tokio::test]
async fn redirect_uri_is_logged_from_the_public_url() {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json("Sign in"));
    let daemon = setup.start_with(&["--public-url", "https://code.example.com/"]);
    assert!(
        daemon.logs().contains(
            "redirect URI to register at the identity provider: https://code.example.com/auth/oidc/callback"
        ),
        "{}",
        daemon.logs()
    );
    let config = daemon.public_config().await;
    assert_eq!(
        config["login_url"],
        "https://code.example.com/auth/oidc/login"
    );
    assert_eq!(config["sso_enabled"], true);
}

#[tokio::test]
async fn default_public_url_is_the_listen_address() {
    let daemon = Setup::git().start();
    let expected = format!("{}/auth/oidc/callback", daemon.base);
    assert!(daemon.logs().contains(&expected), "{}", daemon.logs());
}

#[tokio::test]
async fn environment_variables_configure_serve() {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json("From env"));
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("CODERFLOW_SETUP_REPO", &setup.repo)
        .env("CODERFLOW_DATA_DIR", &setup.data)
        .env("CODERFLOW_LISTEN", "127.0.0.1:0")
        .env("CODERFLOW_PUBLIC_URL", "https://env.example.com")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let daemon = Daemon::spawn(command, setup);
    let config = daemon.public_config().await;
    assert_eq!(config["display_name"], "From env");
    assert_eq!(
        config["login_url"],
        "https://env.example.com/auth/oidc/login"
    );
    assert!(daemon.setup.data.join("admin.sock").exists());
}

#[test]
fn invalid_oidc_json_at_start_up_exits_2_with_the_error() {
    let setup = Setup::git();
    setup.write_oidc(r#"{"enabled": true, "client_id": "x", "client_secret": "y", "issuer": "http://idp.example.com"}"#);
    let out = setup.serve_command(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("oidc.json: /issuer: must be an https:// URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert!(!setup.data.join("admin.sock").exists());
}

#[test]
fn syntax_error_at_start_up_exits_2_with_line_and_column() {
    let setup = Setup::git();
    setup.write_oidc("{\n  \"enabled\": true\n  \"client_id\": \"x\"\n}");
    let out = setup.serve_command(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("oidc.json: line 3, column 3: invalid JSON"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_and_sigint_shut_down_gracefully_and_remove_the_socket() {
    for signal in ["TERM", "INT"] {
        let mut daemon = Setup::git().start();
        let socket = daemon.setup.data.join("admin.sock");
        assert!(socket.exists());
        daemon.signal(signal);
        let status = daemon.wait_exit();
        assert!(status.success(), "SIG{signal}: {status}\n{}", daemon.logs());
        assert!(daemon.logs().contains("coder-server stopped"));
        assert!(!socket.exists(), "SIG{signal} left the socket");
    }
}

#[tokio::test]
async fn data_directory_and_admin_socket_are_private() {
    let daemon = Setup::git().start();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&daemon.setup.data), 0o700);
    assert_eq!(mode(&daemon.setup.data.join("admin.sock")), 0o600);
}

#[tokio::test]
async fn second_daemon_on_the_same_data_directory_is_refused() {
    let daemon = Setup::git().start();
    let second = Setup {
        tmp: tempfile::tempdir().unwrap(),
        repo: daemon.setup.repo.clone(),
        data: daemon.setup.data.clone(),
    };
    let out = second.serve_command(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another coder-server is already running"),
        "{stderr}"
    );
    // The first daemon still answers on its socket.
    assert!(daemon.status().await.ok);
}

#[tokio::test]
async fn stale_socket_of_a_killed_daemon_is_replaced() {
    let mut daemon = Setup::git().start();
    daemon.signal("KILL");
    daemon.wait_exit();
    assert!(daemon.setup.data.join("admin.sock").exists());
    let again = Setup {
        tmp: tempfile::tempdir().unwrap(),
        repo: daemon.setup.repo.clone(),
        data: daemon.setup.data.clone(),
    };
    let restarted = again.start();
    assert!(restarted.status().await.ok);
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_a_line() {
    let daemon = Setup::git().start_with(&["--log-format", "json"]);
    let logs = daemon.logs();
    let line = logs.lines().find(|l| l.contains("listening on")).unwrap();
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(event["level"], "INFO");
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .contains("listening on http://127.0.0.1:")
    );
}

#[test]
fn unreadable_oidc_json_at_start_up_exits_2() {
    let setup = Setup::git();
    setup.write_oidc(&" ".repeat(2 * 1024 * 1024));
    let out = setup.serve_command(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("oidc.json: cannot read: larger than 1 MiB"),
        "{stderr}"
    );
}

#[tokio::test]
async fn tuning_flags_are_accepted() {
    let daemon = Setup::git().start_with(&[
        "--login-state-ttl",
        "30",
        "--device-code-ttl",
        "60",
        "--device-poll-interval",
        "1",
        "--session-ttl",
        "3600",
    ]);
    assert_eq!(daemon.get_json("/healthz").await["status"], "ok");
}

#[test]
fn bad_arguments_exit_64_not_the_invalid_config_code() {
    let setup = Setup::git();
    for args in [
        &["--session-ttl", "0"][..],
        &["--listen", "not-an-address"][..],
    ] {
        let out = setup.serve_command(args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
    }
    let out = Command::new(BIN).arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("validate"));
}

#[tokio::test]
async fn a_data_directory_open_to_others_is_warned_about() {
    let setup = Setup::git();
    std::fs::create_dir(&setup.data).unwrap();
    std::fs::set_permissions(&setup.data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = setup.start();
    assert!(
        daemon
            .logs()
            .contains("the data directory is open to other users (mode 755)"),
        "{}",
        daemon.logs()
    );
}
