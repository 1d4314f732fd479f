//! Device login end to end: the RFC 8628 endpoints approved through the real pages, every limit
//! of the contract, and the real `coder` binary (`login --sso`, `whoami`, `logout`, profiles).

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::{Browser, hidden_input, location};
use crate::support::idp::{IdpUser, TestIdp};
use crate::support::{DEADLINE, Daemon, Setup, capture_lines, eventually};

const CODER: &str = env!("CARGO_BIN_EXE_coder");

/// SSO switched on (the provider need not be reachable for device login to be offered).
fn sso_on(allow_local_auth: bool) -> String {
    json!({
        "enabled": true,
        "display_name": "Sign in with Acme",
        "client_id": "c",
        "client_secret": "s",
        "issuer": "http://127.0.0.1:9/",
        "allow_local_auth": allow_local_auth,
    })
    .to_string()
}

fn start(flags: &[&str]) -> Daemon {
    let setup = Setup::git();
    setup.write_oidc(&sso_on(true));
    setup.start_with(flags)
}

async fn admin_browser(daemon: &Daemon) -> Browser {
    let browser = Browser::new(&daemon.base);
    browser.sign_in("admin", &daemon.admin_password()).await;
    browser
}

#[tokio::test]
async fn device_code_answer_follows_rfc_8628() {
    let daemon = start(&["--device-code-ttl", "300", "--device-poll-interval", "7"]);
    let code = daemon.device_code("coder CLI on laptop").await;
    let user_code = code["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c))
    );
    assert!(
        code["device_code"].as_str().unwrap().len() >= 43,
        "256 bits"
    );
    assert_eq!(code["verification_uri"], daemon.url("/device"));
    assert_eq!(
        code["verification_uri_complete"],
        daemon.url(&format!("/device?user_code={user_code}"))
    );
    assert_eq!(code["expires_in"], 300);
    assert_eq!(code["interval"], 7);
    let (status, body) = daemon
        .poll_device(code["device_code"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    // RFC 8628's form encoding works too.
    let form = daemon
        .http
        .post(daemon.url("/api/auth/device/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", code["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = form.json().await.unwrap();
    assert_eq!(
        body["error"], "slow_down",
        "a second poll within the interval"
    );
    let (status, body) = daemon.poll_device("not-a-code").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        !daemon
            .logs()
            .contains(code["device_code"].as_str().unwrap()),
        "never logged"
    );
}

#[tokio::test]
async fn approval_yields_exactly_one_key_for_the_approving_user_under_concurrent_polls() {
    let daemon = start(&["--device-poll-interval", "1"]);
    let code = daemon.device_code("VS Code").await;
    let (device, user_code) = (
        code["device_code"].as_str().unwrap(),
        code["user_code"].as_str().unwrap(),
    );

    let browser = Browser::new(&daemon.base);
    let response = browser.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(response.status(), 303, "a session is needed first");
    let to_login = location(&response);
    assert_eq!(
        to_login,
        format!("/login?return_to=%2Fdevice%3Fuser_code%3D{user_code}")
    );
    let login_page = browser.page(&to_login).await;
    assert_eq!(
        hidden_input(&login_page, "return_to").unwrap(),
        format!("/device?user_code={user_code}")
    );
    assert!(
        login_page.contains("id=\"sso-login\""),
        "SSO is offered on the way"
    );
    let csrf = hidden_input(&login_page, "csrf_token").unwrap();
    let signed_in = browser
        .post_form(
            "/login",
            &[
                ("username", "admin"),
                ("password", &daemon.admin_password()),
                ("csrf_token", &csrf),
                ("return_to", &format!("/device?user_code={user_code}")),
            ],
        )
        .await;
    assert_eq!(
        location(&signed_in),
        format!("/device?user_code={user_code}"),
        "back to the same code"
    );

    let confirm = browser
        .page(&format!(
            "/device?user_code={}",
            user_code.to_lowercase().replace('-', " ")
        ))
        .await;
    for fact in [
        "VS Code",
        "127.0.0.1",
        user_code,
        "id=\"approve\"",
        "id=\"deny\"",
    ] {
        assert!(confirm.contains(fact), "confirm page shows {fact}");
    }
    // Approval is never automatic: nothing until the POST.
    assert_eq!(
        daemon.poll_device(device).await.1["error"],
        "authorization_pending"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let forged = browser
        .post_form(
            "/device/approve",
            &[("user_code", user_code), ("csrf_token", "forged")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let approved = browser.decide_device(user_code, "approve").await;
    assert_eq!(approved.status(), 200);
    assert!(approved.text().await.unwrap().contains("Device connected"));

    let polls = (0..8).map(|_| {
        let daemon_url = daemon.url("/api/auth/device/token");
        let device = device.to_owned();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(daemon_url)
                .json(&json!({"device_code": device}))
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        })
    });
    let mut keys = Vec::new();
    for poll in polls {
        let (status, body) = poll.await.unwrap();
        if status == 200 {
            keys.push(body);
        } else {
            let error = body["error"].as_str().unwrap().to_owned();
            assert!(
                ["slow_down", "invalid_grant"].contains(&error.as_str()),
                "{error}"
            );
        }
    }
    assert_eq!(keys.len(), 1, "exactly one key");
    let key = keys[0]["api_key"].as_str().unwrap();
    assert_eq!(keys[0]["user"]["username"], "admin");
    let me: Value = daemon
        .api(Method::GET, "/api/me", key, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "admin");
    let listed: Value = daemon
        .api(Method::GET, "/api/keys", key, None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("VS Code (20")),
        "named after client and time: {names:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        daemon.poll_device(device).await.1["error"],
        "invalid_grant",
        "spent"
    );
}

#[tokio::test]
async fn denial_is_final_and_only_the_claiming_session_decides() {
    let daemon = start(&["--device-poll-interval", "1"]);
    let admin = daemon.admin_key().await;
    daemon
        .create_user(&admin, "eve", "developer", Some("eve-password"))
        .await;
    let code = daemon.device_code("coder CLI").await;
    let user_code = code["user_code"].as_str().unwrap();
    let owner = admin_browser(&daemon).await;
    let claimed = owner.page(&format!("/device?user_code={user_code}")).await;
    let owner_csrf = hidden_input(&claimed, "csrf_token").unwrap();

    let other = Browser::new(&daemon.base);
    other.sign_in("eve", "eve-password").await;
    let response = other.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(response.status(), 409);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("another browser session")
    );
    let other_csrf = other.csrf().await;
    let hijack = other
        .post_form(
            "/device/approve",
            &[("user_code", user_code), ("csrf_token", &other_csrf)],
        )
        .await;
    assert_eq!(hijack.status(), 409);
    assert_eq!(
        daemon
            .poll_device(code["device_code"].as_str().unwrap())
            .await
            .1["error"],
        "authorization_pending"
    );

    let denied = owner
        .post_form(
            "/device/deny",
            &[("user_code", user_code), ("csrf_token", &owner_csrf)],
        )
        .await;
    assert_eq!(denied.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        daemon
            .poll_device(code["device_code"].as_str().unwrap())
            .await
            .1["error"],
        "access_denied"
    );
    let again = owner
        .post_form(
            "/device/approve",
            &[("user_code", user_code), ("csrf_token", &owner_csrf)],
        )
        .await;
    assert_eq!(again.status(), 409, "denial is final");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        daemon
            .poll_device(code["device_code"].as_str().unwrap())
            .await
            .1["error"],
        "access_denied"
    );
}

#[tokio::test]
async fn polling_too_fast_slows_down_by_five_seconds() {
    let daemon = start(&["--device-poll-interval", "2"]);
    let code = daemon.device_code("c").await;
    let device = code["device_code"].as_str().unwrap();
    assert_eq!(
        daemon.poll_device(device).await.1["error"],
        "authorization_pending"
    );
    let (status, body) = daemon.poll_device(device).await;
    assert_eq!(
        (status, body["error"].as_str(), body["interval"].as_u64()),
        (400, Some("slow_down"), Some(7))
    );
    let (_, body) = daemon.poll_device(device).await;
    assert_eq!(body["interval"], 12, "grows again for this code");
    let fresh = daemon.device_code("c").await;
    assert_eq!(
        fresh["interval"], 2,
        "other codes keep the server's interval"
    );
}

#[tokio::test]
async fn codes_expire() {
    let daemon = start(&["--device-code-ttl", "1", "--device-poll-interval", "1"]);
    let code = daemon.device_code("c").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        daemon
            .poll_device(code["device_code"].as_str().unwrap())
            .await
            .1["error"],
        "expired_token"
    );
    let browser = admin_browser(&daemon).await;
    let response = browser
        .get(&format!(
            "/device?user_code={}",
            code["user_code"].as_str().unwrap()
        ))
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn wrong_codes_lock_out_even_the_right_one() {
    let daemon = start(&[]);
    let code = daemon.device_code("c").await;
    let browser = admin_browser(&daemon).await;
    for wrong in [
        "BBBB-BBBB",
        "CCCC-CCCC",
        "nonsense",
        "DDDD-DDDD",
        "FFFF-FFFF",
    ] {
        let response = browser.get(&format!("/device?user_code={wrong}")).await;
        assert_eq!(response.status(), 404, "{wrong}");
    }
    let right = browser
        .get(&format!(
            "/device?user_code={}",
            code["user_code"].as_str().unwrap()
        ))
        .await;
    assert_eq!(right.status(), 429);
    assert!(right.text().await.unwrap().contains("Too many wrong codes"));
}

#[tokio::test]
async fn device_codes_are_rate_limited_per_ip() {
    let daemon = start(&[]);
    for _ in 0..20 {
        daemon.device_code("c").await;
    }
    let response = daemon
        .http
        .post(daemon.url("/api/auth/device/code"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn device_login_works_while_local_login_is_disabled() {
    let idp = TestIdp::start("c", "s").await;
    let setup = Setup::git();
    setup.write_oidc(
        &json!({
            "enabled": true, "client_id": "c", "client_secret": "s",
            "issuer": idp.issuer(), "allow_local_auth": false,
        })
        .to_string(),
    );
    let daemon = setup.start_with(&["--device-poll-interval", "1"]);
    daemon
        .wait_for_status("provider ready", |s| {
            s.provider.state == coderflow::oidc::ProviderState::Ready
        })
        .await;
    assert_eq!(
        daemon
            .login_response("admin", &daemon.admin_password())
            .await
            .status(),
        403
    );
    idp.login_as(IdpUser::from_email("dora@company.com", "Dora"));
    let code = daemon.device_code("VS Code").await;
    let user_code = code["user_code"].as_str().unwrap();
    let browser = Browser::new(&daemon.base);
    let return_to = format!("/device?user_code={user_code}");
    let start = browser
        .get(&format!(
            "/auth/oidc/login?return_to={}",
            url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
        ))
        .await;
    let callback = location(&browser.get(&location(&start)).await);
    let landed = browser.get(&callback).await;
    assert_eq!(location(&landed), return_to);
    assert_eq!(
        browser.decide_device(user_code, "approve").await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = daemon
        .poll_device(code["device_code"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["user"]["username"], "dora");
}

/// A running `coder` process with its stderr captured.
struct CoderProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

fn coder(config: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(CODER);
    command
        .args(args)
        .env("CODER_CONFIG_DIR", config)
        .env_remove("CODER_URL")
        .env_remove("DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

impl CoderProcess {
    fn spawn(mut command: Command) -> CoderProcess {
        let mut child = command.spawn().unwrap();
        let stderr = capture_lines(child.stderr.take().unwrap());
        CoderProcess { child, stderr }
    }

    /// The user code the CLI printed.
    async fn user_code(&self) -> String {
        eventually("the CLI prints the verification URL", || async {
            let text = self.stderr.lock().unwrap().clone();
            let at = text.find("/device?user_code=")?;
            Some(text[at + 18..at + 27].to_owned())
        })
        .await
    }

    fn finish(self) -> (i32, String, String) {
        let start = Instant::now();
        let mut child = self.child;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "coder did not finish: {}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        // The reader thread drops its handle at end of file: wait for it, or lines are missed.
        let start = Instant::now();
        while Arc::strong_count(&self.stderr) > 1 && start.elapsed() < DEADLINE {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stderr = self.stderr.lock().unwrap().clone();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        )
    }
}

fn run(command: Command) -> (i32, String, String) {
    CoderProcess::spawn(command).finish()
}

#[tokio::test]
async fn coder_login_sso_whoami_and_logout_through_the_real_binaries() {
    let daemon = start(&["--device-poll-interval", "1"]);
    let config = daemon.setup.tmp.path().join("cli");
    let cli = CoderProcess::spawn(coder(
        &config,
        &["login", "--sso", "--no-browser", "--server", &daemon.base],
    ));
    let user_code = cli.user_code().await;
    let browser = admin_browser(&daemon).await;
    assert_eq!(
        browser.decide_device(&user_code, "approve").await.status(),
        200
    );
    let (code, stdout, stderr) = cli.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("Logged in to {} as admin", daemon.base)
    );
    assert!(stderr.contains("Waiting for approval"), "{stderr}");
    assert!(!stderr.contains("Opened your browser"), "--no-browser");

    let profiles_path = config.join("profiles.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&profiles_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let profiles: Value = serde_json::from_slice(&std::fs::read(&profiles_path).unwrap()).unwrap();
    let key = profiles["profiles"]["default"]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(profiles["active"], "default");

    let (code, stdout, stderr) = run(coder(&config, &["whoami"]));
    assert_eq!(code, 0, "{stderr}");
    let who: Value = serde_json::from_str(&stdout).expect("piped whoami prints JSON");
    assert_eq!(who["user"]["username"], "admin");
    assert_eq!(who["server"], daemon.base);
    assert_eq!(who["user"]["access"][0]["role"], "server_admin");

    let (code, _, stderr) = run(coder(&config, &["logout"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &key, None)
            .await
            .status(),
        401,
        "revoked on the server"
    );
    let (code, _, stderr) = run(coder(&config, &["whoami"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("signed out"), "{stderr}");
}

#[tokio::test]
async fn coder_login_sso_reports_denied_expired_disabled_and_unreachable() {
    let daemon = start(&["--device-poll-interval", "1", "--device-code-ttl", "3"]);
    let config = daemon.setup.tmp.path().join("cli");
    let cli = CoderProcess::spawn(coder(
        &config,
        &["login", "--sso", "--no-browser", "--server", &daemon.base],
    ));
    let user_code = cli.user_code().await;
    let browser = admin_browser(&daemon).await;
    assert_eq!(
        browser.decide_device(&user_code, "deny").await.status(),
        200
    );
    let (code, _, stderr) = cli.finish();
    assert_eq!(code, 1);
    assert!(
        stderr.contains("error: the sign-in was denied in the browser"),
        "{stderr}"
    );

    let (code, _, stderr) = run(coder(
        &config,
        &["login", "--sso", "--no-browser", "--server", &daemon.base],
    ));
    assert_eq!(code, 1);
    assert!(stderr.contains("expired"), "{stderr}");

    let plain = Setup::git().start();
    let (code, _, stderr) = run(coder(&config, &["login", "--sso", "--server", &plain.base]));
    assert_eq!(code, 1);
    assert!(stderr.contains("single sign-on is not enabled"), "{stderr}");

    let (code, _, stderr) = run(coder(
        &config,
        &["login", "--sso", "--server", "http://127.0.0.1:9"],
    ));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot reach http://127.0.0.1:9"),
        "{stderr}"
    );
    assert!(
        !config.join("profiles.json").exists(),
        "no profile from failed logins"
    );
}

#[tokio::test]
async fn coder_password_login_and_profiles() {
    let daemon = Setup::git().start();
    let config = daemon.setup.tmp.path().join("cli");
    let mut command = coder(
        &config,
        &[
            "login",
            "--server",
            &daemon.base,
            "--profile",
            "work",
            "--username",
            "admin",
            "--password-stdin",
        ],
    );
    command.stdin(Stdio::piped());
    let mut child = command.spawn().unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{}", daemon.admin_password()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, stdout, _) = run(coder(&config, &["profile", "list"]));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("* work") && stdout.contains("admin"),
        "{stdout}"
    );
    let (code, _, stderr) = run(coder(&config, &["profile", "use", "home"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("no profile `home`"), "{stderr}");
    let (code, _, _) = run(coder(&config, &["profile", "use", "work"]));
    assert_eq!(code, 0);
    let (code, _, stderr) = run(coder(&config, &["login", "--sso", "--username", "x"]));
    assert_eq!(code, 64, "usage error: {stderr}");
}
