//! Settings -> Single Sign-On through its JSON API: read, save (validation, 422 details,
//! lockout guard), remove, Test Connection, and the secret never answered.

use std::os::unix::fs::PermissionsExt;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::Browser;
use crate::support::idp::{IdpUser, TestIdp};
use crate::support::{Daemon, Setup, eventually};

const SECRET: &str = "very-secret-value-42";

async fn call(
    daemon: &Daemon,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let response = daemon.api(method, path, key, body).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

fn form(issuer: &str) -> Value {
    json!({
        "enabled": true,
        "display_name": "Sign in with Acme",
        "client_id": "acme-client",
        "client_secret": SECRET,
        "issuer": issuer,
        "scopes": ["openid", "profile", "email"],
        "auto_provision": true,
        "default_role": "manager",
        "allow_local_auth": true,
    })
}

#[tokio::test]
async fn save_validates_writes_0600_applies_at_once_and_never_returns_the_secret() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let (status, body, _) = call(&daemon, &admin, Method::GET, "/api/settings/sso", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["config"], Value::Null);
    assert_eq!(body["client_secret_set"], false);
    assert_eq!(body["redirect_uri"], daemon.url("/auth/oidc/callback"));
    assert_eq!(body["status"]["ok"], true);
    assert_eq!(body["status"]["provider"]["state"], "disabled");
    assert_eq!(
        body["status"]["git"],
        json!({"repo": true, "ignored": true, "tracked": false})
    );

    let (status, body, text) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(form("http://127.0.0.1:9/")),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains(SECRET), "the secret is never answered");
    assert_eq!(
        body["config"]["default_role"], "environment_admin",
        "legacy role mapped"
    );
    assert_eq!(body["client_secret_set"], true);
    assert_eq!(body["status"]["generation"], 2);
    assert_eq!(
        daemon.public_config().await["display_name"],
        "Sign in with Acme",
        "live at once"
    );
    let path = daemon.setup.oidc_path();
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains(SECRET));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Left out (or empty), the secret stays.
    let mut change = form("http://127.0.0.1:9/");
    change.as_object_mut().unwrap().remove("client_secret");
    change["display_name"] = "Renamed".into();
    let (status, _, _) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(change),
    )
    .await;
    assert_eq!(status, 200);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        (
            written["client_secret"].as_str(),
            written["display_name"].as_str()
        ),
        (Some(SECRET), Some("Renamed"))
    );
    let (_, _, text) = call(&daemon, &admin, Method::GET, "/api/settings/sso", None).await;
    assert!(!text.contains(SECRET));
    assert!(!daemon.logs().contains(SECRET), "nor logged");
}

#[tokio::test]
async fn invalid_settings_answer_422_with_each_problem_and_change_nothing() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let mut bad = form("ftp://idp.example.com");
    bad["client_id"] = "".into();
    bad["default_role"] = "owner".into();
    bad["colour"] = "blue".into();
    let (status, body, text) =
        call(&daemon, &admin, Method::PUT, "/api/settings/sso", Some(bad)).await;
    assert_eq!(status, 422, "{text}");
    assert_eq!(body["error"], "invalid_config");
    let pointers: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pointer"].as_str().unwrap())
        .collect();
    for pointer in ["/client_id", "/default_role", "/issuer", "/colour"] {
        assert!(pointers.contains(&pointer), "{pointer} in {pointers:?}");
    }
    assert!(!text.contains(SECRET));
    assert!(!daemon.setup.oidc_path().exists(), "nothing written");
    let (status, _, _) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(json!([1, 2])),
    )
    .await;
    assert_eq!(status, 422);
    // A secret is required when there is none yet.
    let mut no_secret = form("http://127.0.0.1:9/");
    no_secret.as_object_mut().unwrap().remove("client_secret");
    let (status, body, _) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(no_secret),
    )
    .await;
    assert_eq!(status, 422);
    assert!(body["details"].to_string().contains("client_secret"));
}

#[tokio::test]
async fn turning_local_login_off_is_guarded_against_lockout() {
    let idp = TestIdp::start("acme-client", SECRET).await;
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let mut sso_only = form(&idp.issuer());
    sso_only["allow_local_auth"] = false.into();
    let (status, body, _) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(sso_only.clone()),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "lockout_risk");
    assert!(!daemon.setup.oidc_path().exists());

    // Once the admin has signed in with SSO at this issuer, the same save passes.
    let (status, _, _) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(form(&idp.issuer())),
    )
    .await;
    assert_eq!(status, 200);
    daemon
        .wait_for_status("provider ready", |s| {
            s.provider.state == coderflow::oidc::ProviderState::Ready
        })
        .await;
    // The first admin's email is random per installation; the provider vouches for it.
    let admin_email = daemon.get_json_as("/api/me", &admin).await["email"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(admin_email.ends_with("@localhost.invalid"), "{admin_email}");
    idp.login_as(IdpUser::from_email(&admin_email, "Administrator"));
    let browser = Browser::new(&daemon.base);
    let start = browser.get("/auth/oidc/login").await;
    let at_idp = browser
        .get(&crate::support::browser::location(&start))
        .await;
    let callback = browser
        .get(&crate::support::browser::location(&at_idp))
        .await;
    assert_eq!(callback.status(), 303);
    let (status, body, _) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(sso_only),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        daemon
            .login_response("admin", &daemon.admin_password())
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn force_saves_anyway_and_delete_removes_sso() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let mut sso_only = form("http://127.0.0.1:9/");
    sso_only["allow_local_auth"] = false.into();
    let (status, _, _) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso?force=true",
        Some(sso_only),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(daemon.public_config().await["allow_local_auth"], false);
    let (status, body, _) = call(&daemon, &admin, Method::DELETE, "/api/settings/sso", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["config"], Value::Null);
    assert!(!daemon.setup.oidc_path().exists());
    let public = daemon.public_config().await;
    assert_eq!(
        (
            public["sso_enabled"].as_bool(),
            public["allow_local_auth"].as_bool()
        ),
        (Some(false), Some(true))
    );
    let (status, _, _) = call(&daemon, &admin, Method::DELETE, "/api/settings/sso", None).await;
    assert_eq!(status, 200, "removing twice is fine");
}

#[tokio::test]
async fn a_broken_file_on_disk_shows_in_the_status_with_its_position() {
    let setup = Setup::git();
    setup.write_oidc(&form("http://127.0.0.1:9/").to_string());
    let daemon = setup.start();
    let admin = daemon.admin_key().await;
    std::fs::write(
        daemon.setup.oidc_path(),
        "{\n  \"enabled\": true,\n  oops\n}",
    )
    .unwrap();
    let body = eventually("the status shows the error", || async {
        let (_, body, _) = call(&daemon, &admin, Method::GET, "/api/settings/sso", None).await;
        (!body["status"]["error"].is_null()).then_some(body)
    })
    .await;
    assert_eq!(body["status"]["ok"], false);
    assert_eq!(body["status"]["error"]["line"], 3);
    assert!(body["status"]["error"]["column"].is_number());
    assert_eq!(
        body["config"]["display_name"], "Sign in with Acme",
        "the last good configuration"
    );
}

#[tokio::test]
async fn test_connection_reports_each_check() {
    let idp = TestIdp::start("acme-client", SECRET).await;
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let (status, body, text) = call(
        &daemon,
        &admin,
        Method::POST,
        "/api/settings/sso/test",
        Some(form(&idp.issuer())),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body["ok"], true, "{body}");
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "discovery",
            "issuer",
            "jwks",
            "code_flow",
            "signing",
            "pkce_s256",
            "email",
            "redirect_uri",
            "logout",
            "backchannel_logout"
        ]
    );
    let detail = |i: usize| body["checks"][i]["detail"].as_str().unwrap().to_owned();
    assert!(detail(8).contains("/logout"), "{}", detail(8));
    assert!(detail(8).contains(&daemon.url("/login")), "{}", detail(8));
    assert!(
        detail(9).contains(&daemon.url("/auth/oidc/backchannel-logout")),
        "{}",
        detail(9)
    );
    assert!(
        body["checks"][7]["detail"]
            .as_str()
            .unwrap()
            .contains(&daemon.url("/auth/oidc/callback"))
    );

    let mut mismatch = form(&format!("{}/", idp.issuer()));
    mismatch["scopes"] = json!(["openid"]);
    let (_, body, _) = call(
        &daemon,
        &admin,
        Method::POST,
        "/api/settings/sso/test",
        Some(mismatch),
    )
    .await;
    assert_eq!(body["ok"], false);
    let failed: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["issuer", "email"]);

    let (status, body, _) = call(
        &daemon,
        &admin,
        Method::POST,
        "/api/settings/sso/test",
        Some(form("http://127.0.0.1:9/")),
    )
    .await;
    assert_eq!(status, 200, "unreachable is an answer, not an error");
    assert_eq!(body["ok"], false);
    assert_eq!(body["checks"][0]["name"], "discovery");
    assert_eq!(body["checks"][0]["ok"], false);

    let (status, _, _) = call(
        &daemon,
        &admin,
        Method::POST,
        "/api/settings/sso/test",
        None,
    )
    .await;
    assert_eq!(status, 422, "nothing saved to test");
}

/// Makes a folder read-only for this process until dropped: immutable when running as root
/// (root ignores mode bits), mode 0555 otherwise.
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn set(dir: &std::path::Path) -> ReadOnly {
        let root = unsafe { libc::geteuid() } == 0;
        let done = if root {
            std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success())
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).is_ok()
        };
        assert!(done, "cannot make {} read-only", dir.display());
        assert!(
            std::fs::write(dir.join("probe"), "x").is_err(),
            "the folder is read-only"
        );
        ReadOnly(dir.to_owned())
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

#[tokio::test]
async fn a_read_only_setup_repository_answers_409_and_changes_nothing() {
    let setup = Setup::git();
    setup.write_oidc(&crate::support::oidc_json("Mounted"));
    let daemon = setup.start();
    let admin = daemon.admin_key().await;
    let (_, body, _) = call(&daemon, &admin, Method::GET, "/api/settings/sso", None).await;
    assert_eq!(body["setup_repo_writable"], true);
    let before = std::fs::read(daemon.setup.oidc_path()).unwrap();
    let guard = ReadOnly::set(&daemon.setup.repo);

    let (_, body, _) = call(&daemon, &admin, Method::GET, "/api/settings/sso", None).await;
    assert_eq!(body["setup_repo_writable"], false);
    for method in [Method::PUT, Method::DELETE] {
        let payload = (method == Method::PUT).then(|| form("http://127.0.0.1:9/"));
        let (status, body, text) = call(
            &daemon,
            &admin,
            method.clone(),
            "/api/settings/sso",
            payload,
        )
        .await;
        assert_eq!(status, 409, "{method}: {text}");
        assert_eq!(body["error"], "setup_repo_read_only");
        assert!(body["message"].as_str().unwrap().contains("git"), "{text}");
    }
    assert_eq!(std::fs::read(daemon.setup.oidc_path()).unwrap(), before);
    assert_eq!(daemon.public_config().await["display_name"], "Mounted");

    drop(guard);
    let (status, _, text) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(form("http://127.0.0.1:9/")),
    )
    .await;
    assert_eq!(status, 200, "writable again: {text}");
}

/// Settings the page has no control for survive a save from the page; null removes them.
#[tokio::test]
async fn a_save_keeps_the_settings_it_leaves_out_and_null_removes_them() {
    let setup = Setup::git();
    let mut file = form("http://127.0.0.1:9/");
    file["idp_logout"] = json!(true);
    file["backchannel_logout_revokes_keys"] = json!(true);
    setup.write_oidc(&file.to_string());
    let daemon = setup.start();
    let admin = daemon.admin_key().await;
    let (_, view, _) = call(&daemon, &admin, Method::GET, "/api/settings/sso", None).await;
    assert_eq!(view["config"]["idp_logout"], true);
    let (status, _, text) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(form("http://127.0.0.1:9/")),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(daemon.setup.oidc_path()).unwrap()).unwrap();
    assert_eq!(saved["idp_logout"], true, "{saved}");
    assert_eq!(saved["backchannel_logout_revokes_keys"], true);
    let mut cleared = form("http://127.0.0.1:9/");
    cleared["idp_logout"] = Value::Null;
    let (status, _, text) = call(
        &daemon,
        &admin,
        Method::PUT,
        "/api/settings/sso",
        Some(cleared),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(daemon.setup.oidc_path()).unwrap()).unwrap();
    assert!(saved.get("idp_logout").is_none(), "{saved}");
    assert_eq!(saved["backchannel_logout_revokes_keys"], true);
}

/// With access rules that read claims, Test Connection says which of them the provider lists.
#[tokio::test]
async fn test_connection_reports_the_claims_the_access_rules_read() {
    let idp = TestIdp::start("acme-client", SECRET).await;
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    let mut config = form(&idp.issuer());
    config["allowed_groups"] = json!(["eng"]);
    config["required_claims"] = json!({"email_verified": ["true"]});
    let (status, body, text) = call(
        &daemon,
        &admin,
        Method::POST,
        "/api/settings/sso/test",
        Some(config),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let claims = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "claims")
        .expect("a claims check");
    let detail = claims["detail"].as_str().unwrap();
    assert!(detail.contains("does not list groups"), "{detail}");
    assert!(!detail.contains("email_verified"), "listed: {detail}");
    assert!(detail.contains("Check with my account"), "{detail}");
    // Without such rules there is no claims check.
    let (_, body, _) = call(
        &daemon,
        &admin,
        Method::POST,
        "/api/settings/sso/test",
        Some(form(&idp.issuer())),
    )
    .await;
    assert!(!body.to_string().contains("\"claims\""), "{body}");
}
