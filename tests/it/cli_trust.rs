//! The `coder` client against a hostile or spoofed server, and behind a private CA: what
//! reaches the terminal, what is refused before anything is sent or opened, and what happens to
//! keys (contract section 10).

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::hostile::{Answer, HostileServer, TestCa};

const CODER: &str = env!("CARGO_BIN_EXE_coder");

/// Escape sequences a hostile server would love to reach the terminal: clear screen, window
/// title, clipboard write, a hyperlink, and a right-to-left override.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}]8;;https://evil.example\u{1b}\\x\u{202e}";

/// Runs `coder args` with its own config folder; answers (exit code, stdout, stderr).
async fn coder(config: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(CODER)
            .args(&args)
            .env("CODER_CONFIG_DIR", &config)
            .env_remove("CODER_URL")
            .env_remove("DISPLAY")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The client may exit before it reads its input (a refused URL).
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// `coder login --server <server> --username ann --password-stdin <extra>` with password `pw`.
async fn password_login(
    config: &std::path::Path,
    server: &str,
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec![
        "login",
        "--server",
        server,
        "--username",
        "ann",
        "--password-stdin",
    ];
    args.extend_from_slice(extra);
    coder(config, &args, "pw\n").await
}

fn config_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn user(username: &str) -> Value {
    json!({"username": username, "email": "a@example.com", "name": HOSTILE, "source": "local",
           "disabled": false, "created_at": "2026-12-01T00:00:00Z",
           "access": [{"role": "developer", "scope": "environment:*"}]})
}

fn sso_config(server: &HostileServer, display_name: &str) {
    server.answer(
        "GET /api/auth/oidc/config",
        Answer::ok(json!({"sso_enabled": true, "display_name": display_name,
                          "allow_local_auth": true, "login_url": null})),
    );
}

fn device_code(server: &HostileServer, complete: &str, page: &str, user_code: &str) {
    server.answer(
        "POST /api/auth/device/code",
        Answer::ok(json!({"device_code": "d", "user_code": user_code,
                          "verification_uri": page, "verification_uri_complete": complete,
                          "expires_in": u64::MAX, "interval": 1})),
    );
}

fn assert_no_escapes(text: &str) {
    for c in ['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}'] {
        assert!(!text.contains(c), "{c:?} reached the terminal:\n{text:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_urls_off_the_servers_origin_are_refused_and_nothing_is_polled() {
    for (complete, page) in [
        ("file:///etc/passwd", "file:///etc/passwd"),
        (
            "https://evil.example/device?user_code=X",
            "https://evil.example/device",
        ),
        ("--help", "--help"),
    ] {
        let server = HostileServer::start().await;
        sso_config(&server, "Sign in with SSO");
        device_code(&server, complete, page, "BCDF-GHJK");
        let config = config_dir();
        let (code, _, stderr) = coder(
            config.path(),
            &["login", "--sso", "--server", &server.url, "--no-browser"],
            "",
        )
        .await;
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("not on its own origin") && stderr.contains(&server.url),
            "{stderr}"
        );
        assert!(
            !stderr.contains("open this page"),
            "nothing shown: {stderr}"
        );
        assert_eq!(server.count("POST /api/auth/device/token"), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_text_reaches_the_terminal_without_control_characters() {
    let server = HostileServer::start().await;
    sso_config(&server, HOSTILE);
    let page = format!("{}/device", server.url);
    // A huge expires_in must not overflow either.
    device_code(
        &server,
        &format!("{page}?user_code=BCDF-GHJK"),
        &page,
        HOSTILE,
    );
    server.answer(
        "POST /api/auth/device/token",
        Answer::error(400, HOSTILE, HOSTILE),
    );
    let config = config_dir();
    let (code, stdout, stderr) = coder(
        config.path(),
        &["login", "--sso", "--server", &server.url, "--no-browser"],
        "",
    )
    .await;
    assert_eq!(code, 1, "refused, not a panic: {stderr}");
    assert!(
        stderr.contains(&format!("To sign in to {}", server.url)),
        "{stderr}"
    );
    assert!(stderr.contains("\\u{1b}"), "shown escaped: {stderr}");
    assert_no_escapes(&stdout);
    assert_no_escapes(&stderr);

    // A password login whose user has a hostile name: printed and stored escaped.
    server.answer(
        "POST /api/auth/login",
        Answer::ok(json!({"api_key": "cf_hostile", "key_id": "k1", "user": user(&format!("ann{HOSTILE}"))})),
    );
    let (code, stdout, stderr) = password_login(config.path(), &server.url, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_no_escapes(&stdout);
    let (_, listed, _) = coder(config.path(), &["profile", "list"], "").await;
    assert!(listed.contains("ann\\u{1b}"), "{listed}");
    assert_no_escapes(&listed);
    server.answer("GET /api/me", Answer::ok(user(HOSTILE)));
    let (_, whoami, stderr) = coder(config.path(), &["whoami", "--json"], "").await;
    assert_no_escapes(&whoami);
    assert_no_escapes(&stderr);
    // An error message from the server.
    server.answer("GET /api/me", Answer::error(500, HOSTILE, HOSTILE));
    let (code, _, stderr) = coder(config.path(), &["whoami"], "").await;
    assert_eq!(code, 1);
    assert_no_escapes(&stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_elsewhere_and_credentials_in_urls_are_refused_before_anything_is_sent() {
    let config = config_dir();
    let (code, _, stderr) =
        password_login(config.path(), "http://coder.example.invalid", &[]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("--allow-http"), "{stderr}");
    let (code, _, stderr) = password_login(
        config.path(),
        "https://ann:hunter2@coder.example.invalid",
        &[],
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("credentials"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // With --allow-http it is tried (and warned about).
    let (code, _, stderr) = password_login(
        config.path(),
        "http://coder.example.invalid",
        &["--allow-http"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("warning: http://coder.example.invalid is plain http"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot reach"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_says_what_really_happened_and_force_forgets_an_unrevocable_key() {
    let server = HostileServer::start().await;
    server.answer(
        "POST /api/auth/login",
        Answer::ok(json!({"api_key": "cf_one", "key_id": "k1", "user": user("ann")})),
    );
    let config = config_dir();
    assert_eq!(password_login(config.path(), &server.url, &[]).await.0, 0);
    // The server does not know the key: not reported as a revocation.
    let (code, stdout, _) = coder(config.path(), &["logout"], "").await;
    assert_eq!(code, 0);
    assert!(stdout.contains("no longer knew the key"), "{stdout}");
    assert!(!stdout.contains("is revoked"), "{stdout}");

    // A server that cannot be reached: kept without --force, forgotten with it.
    assert_eq!(password_login(config.path(), &server.url, &[]).await.0, 0);
    let profiles = config.path().join("profiles.json");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&profiles).unwrap()).unwrap();
    saved["profiles"]["default"]["server"] = "http://127.0.0.1:9".into();
    std::fs::write(&profiles, saved.to_string()).unwrap();
    let (code, _, stderr) = coder(config.path(), &["logout"], "").await;
    assert_eq!(code, 1);
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(
        std::fs::read_to_string(&profiles)
            .unwrap()
            .contains("cf_one")
    );
    let (code, stdout, stderr) = coder(config.path(), &["logout", "--force"], "").await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("removed here only"), "{stdout}");
    assert!(stderr.contains("stays valid"), "{stderr}");
    assert!(
        !std::fs::read_to_string(&profiles)
            .unwrap()
            .contains("cf_one")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_a_profile_in_to_another_server_revokes_the_old_key_there() {
    let first = HostileServer::start().await;
    let second = HostileServer::start().await;
    for (server, key) in [(&first, "cf_first"), (&second, "cf_second")] {
        server.answer(
            "POST /api/auth/login",
            Answer::ok(json!({"api_key": key, "key_id": "k1", "user": user("ann")})),
        );
        server.answer(
            "DELETE /api/keys/k1",
            Answer {
                status: 204,
                body: Value::Null,
            },
        );
    }
    let config = config_dir();
    for server in [&first, &second] {
        let (code, _, stderr) = password_login(config.path(), &server.url, &[]).await;
        assert_eq!(code, 0, "{stderr}");
    }
    let revoked: Vec<_> = first
        .seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .collect();
    assert_eq!(revoked.len(), 1, "the old key is revoked at the old server");
    assert_eq!(revoked[0].authorization.as_deref(), Some("Bearer cf_first"));
    assert_eq!(second.count("DELETE /api/keys/k1"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_folder_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let config = config_dir();
    std::fs::set_permissions(config.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, stderr) = coder(config.path(), &["profile", "list"], "").await;
    assert_eq!(code, 1);
    assert!(stderr.contains("other users may write"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_is_trusted_only_when_given() {
    let ca = TestCa::new();
    let server = HostileServer::start_tls(&ca).await;
    server.answer(
        "POST /api/auth/login",
        Answer::ok(json!({"api_key": "cf_tls", "key_id": "k1", "user": user("ann")})),
    );
    server.answer("GET /api/me", Answer::ok(user("ann")));
    let config = config_dir();
    let (code, _, stderr) = password_login(config.path(), &server.url, &[]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("is not trusted") && stderr.contains("--ca-file"),
        "{stderr}"
    );
    assert_eq!(
        server.count("POST /api/auth/login"),
        0,
        "no password was sent"
    );

    let ca_file = config.path().join("test-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let (code, stdout, stderr) = password_login(
        config.path(),
        &server.url,
        &["--ca-file", ca_file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Logged in"), "{stdout}");
    // Kept in the profile: later commands trust it too.
    let (code, _, stderr) = coder(config.path(), &["whoami"], "").await;
    assert_eq!(code, 0, "{stderr}");
}

/// A discovery document for `server` (valid enough for openidconnect), and an empty key set.
fn discovery(server: &HostileServer) {
    let issuer = &server.url;
    server.answer(
        "GET /.well-known/openid-configuration",
        Answer::ok(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        })),
    );
    server.answer("GET /jwks", Answer::ok(json!({"keys": []})));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_trusts_a_private_ca_for_the_provider_only_through_idp_ca_file() {
    use crate::support::Setup;
    let ca = TestCa::new();
    let idp = HostileServer::start_tls(&ca).await;
    discovery(&idp);
    let setup = Setup::git();
    std::fs::write(setup.repo.join("idp-ca.pem"), &ca.ca_pem).unwrap();
    let oidc = |ca_file: Option<&str>| {
        let mut config = json!({"enabled": true, "client_id": "c", "client_secret": "s",
                                "issuer": idp.url});
        if let Some(file) = ca_file {
            config["idp_ca_file"] = file.into();
        }
        config
    };
    setup.write_oidc(&oidc(None).to_string());
    let daemon = setup.start();
    let untrusted = daemon
        .wait_for_status("provider unreachable", |s| {
            s.provider.state == coderflow::oidc::ProviderState::Unreachable
        })
        .await;
    assert!(
        untrusted.provider.detail.contains("not trusted")
            && untrusted.provider.detail.contains("idp_ca_file"),
        "{}",
        untrusted.provider.detail
    );
    let admin = daemon.admin_key().await;
    let test = |body: Value| {
        let daemon = &daemon;
        let admin = admin.clone();
        async move {
            daemon
                .api(
                    reqwest::Method::POST,
                    "/api/settings/sso/test",
                    &admin,
                    Some(body),
                )
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let without = test(oidc(None)).await;
    assert_eq!(without["checks"][0]["name"], "discovery");
    assert_eq!(without["checks"][0]["ok"], false, "{without}");
    let with = test(oidc(Some("idp-ca.pem"))).await;
    assert_eq!(with["checks"][0]["name"], "trust", "{with}");
    assert!(
        with["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("idp-ca.pem")
    );
    assert_eq!(with["checks"][1]["name"], "discovery");
    assert_eq!(with["checks"][1]["ok"], true, "{with}");

    // Saved in the file: the live provider is discovered through the CA.
    setup_write(&daemon, &oidc(Some("idp-ca.pem")));
    daemon
        .wait_for_status("provider ready", |s| {
            s.provider.state == coderflow::oidc::ProviderState::Ready
        })
        .await;
    // A CA file that holds no certificate is a rejected configuration.
    std::fs::write(daemon.setup.repo.join("bad.pem"), "not a certificate").unwrap();
    setup_write(&daemon, &oidc(Some("bad.pem")));
    let rejected = daemon.wait_for_status("rejected", |s| !s.ok).await;
    let error = rejected.error.unwrap();
    assert_eq!(error.details[0].pointer.as_deref(), Some("/idp_ca_file"));
}

fn setup_write(daemon: &crate::support::Daemon, config: &Value) {
    crate::support::save_atomic(&daemon.setup.oidc_path(), &config.to_string());
}
