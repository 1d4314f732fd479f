//! The audit trail: every event kind recorded with who, what and the outcome, readable by
//! server_admin only, and never holding a secret.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::{Browser, location};
use crate::support::idp::{IdpUser, TestIdp};
use crate::support::{Setup, admin_command, eventually, save_atomic};

const SECRET: &str = "audit-client-secret";

#[tokio::test]
async fn every_audited_event_kind_is_recorded_without_secrets() {
    let idp = TestIdp::start("c", SECRET).await;
    let oidc = |display: &str| json!({"enabled": true, "display_name": display, "client_id": "c", "client_secret": SECRET, "issuer": idp.issuer()});
    let setup = Setup::git();
    setup.write_oidc(&oidc("First").to_string());
    let daemon = setup.start_with(&["--device-poll-interval", "1"]);
    daemon
        .wait_for_status("provider ready", |s| {
            s.provider.state == coderflow::oidc::ProviderState::Ready
        })
        .await;
    let password = daemon.admin_password();
    assert_eq!(
        daemon
            .login_response("admin", "wrong-password")
            .await
            .status(),
        401
    );
    let admin = daemon.login("admin", &password).await;

    // People and access.
    daemon
        .create_user(&admin, "ann", "developer", Some("ann-password"))
        .await;
    daemon
        .api(
            Method::PATCH,
            "/api/users/ann",
            &admin,
            Some(json!({"name": "Ann A."})),
        )
        .await;
    daemon
        .api(
            Method::PUT,
            "/api/users/ann/access",
            &admin,
            Some(json!([{"role": "viewer", "scope": "environment:*"}])),
        )
        .await;
    let (code, _, err) = admin_command(
        "set-role",
        &daemon.setup.data,
        &["--username=ann", "--role=developer"],
        None,
    );
    assert_eq!(code, 0, "{err}");

    // Keys.
    let key: Value = daemon
        .api(
            Method::POST,
            "/api/keys",
            &admin,
            Some(json!({"name": "ci"})),
        )
        .await
        .json()
        .await
        .unwrap();
    daemon
        .api(
            Method::DELETE,
            &format!("/api/keys/{}", key["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await;

    // SSO: one success, one failure.
    idp.login_as(IdpUser::from_email("sso.user@company.com", "Sso User"));
    let browser = Browser::new(&daemon.base);
    let callback = location(
        &browser
            .get(&location(&browser.get("/auth/oidc/login").await))
            .await,
    );
    assert_eq!(browser.get(&callback).await.status(), 303);
    assert_eq!(browser.get(&callback).await.status(), 400, "replayed state");

    // Device: one approved and used, one denied; then sign out.
    for approve in [true, false] {
        let code = daemon.device_code("cli").await;
        let user_code = code["user_code"].as_str().unwrap();
        let action = if approve { "approve" } else { "deny" };
        assert_eq!(browser.decide_device(user_code, action).await.status(), 200);
        if approve {
            let (status, _) = daemon
                .poll_device(code["device_code"].as_str().unwrap())
                .await;
            assert_eq!(status, 200);
        }
    }
    let csrf = browser.csrf().await;
    browser.post_form("/logout", &[("csrf_token", &csrf)]).await;

    // Settings: through the API, and on disk.
    let mut saved = oidc("Second");
    saved.as_object_mut().unwrap().remove("client_secret");
    assert_eq!(
        daemon
            .api(Method::PUT, "/api/settings/sso", &admin, Some(saved))
            .await
            .status(),
        200
    );
    save_atomic(&daemon.setup.oidc_path(), &oidc("Third").to_string());
    daemon.wait_for_display_name("Third").await;
    save_atomic(&daemon.setup.oidc_path(), "{ broken");
    daemon.wait_for_status("rejected", |s| !s.ok).await;
    assert_eq!(
        daemon
            .api(Method::DELETE, "/api/settings/sso", &admin, None)
            .await
            .status(),
        200
    );

    let events = eventually("every kind in the trail", || async {
        let body: Value = daemon
            .api(Method::GET, "/api/audit?limit=500", &admin, None)
            .await
            .json()
            .await
            .unwrap();
        let events = body["events"].as_array().unwrap().clone();
        let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        let all = [
            "login.local",
            "login.sso",
            "login.device",
            "device.approved",
            "device.denied",
            "logout",
            "api_key.created",
            "api_key.revoked",
            "settings.saved",
            "settings.removed",
            "settings.reloaded",
            "user.created",
            "user.changed",
            "access.changed",
        ];
        all.iter().all(|k| kinds.contains(k)).then_some(events)
    })
    .await;
    let find = |kind: &str, outcome: &str, pred: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .any(|e| e["kind"] == kind && e["outcome"] == outcome && pred(e))
    };
    assert!(find("login.local", "failure", &|e| e["actor"] == "admin"
        && e["reason"] == "wrong username or password"
        && e["ip"] == "127.0.0.1"));
    assert!(find("login.local", "success", &|e| e["actor"] == "admin"));
    assert!(find("login.sso", "success", &|e| e["actor"] == "ssouser"));
    assert!(find("login.sso", "failure", &|e| e["reason"]
        .as_str()
        .unwrap()
        .contains("state")));
    assert!(find("user.created", "success", &|e| e["subject"]
        == "ssouser"
        && e["reason"].as_str().unwrap().contains("SSO")));
    assert!(find("user.created", "success", &|e| e["subject"] == "ann"
        && e["actor"] == "admin"));
    assert!(find("user.changed", "success", &|e| e["subject"] == "ann"
        && e["reason"] == "name"));
    assert!(find("access.changed", "success", &|e| e["subject"]
        == "ann"
        && e["actor"] == "admin"
        && e["reason"] == "viewer"));
    assert!(find("access.changed", "success", &|e| e["subject"]
        == "ann"
        && e["actor"] == "operator"));
    assert!(find("api_key.revoked", "success", &|e| e["subject"] == key["id"]));
    assert!(find("login.device", "success", &|e| e["actor"] == "ssouser"));
    assert!(find("device.denied", "success", &|e| e["subject"] == "cli"));
    assert!(find("settings.saved", "success", &|e| e["actor"] == "admin"));
    assert!(find("settings.reloaded", "success", &|e| e["actor"] == "file"));
    assert!(find("settings.reloaded", "failure", &|e| e["actor"] == "file"));
    let text = serde_json::to_string(&events).unwrap();
    for secret in [
        SECRET,
        password.as_str(),
        "ann-password",
        key["api_key"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "the trail holds no secret");
    }

    // Newest first, paged, filtered; for server_admin only.
    let page: Value = daemon
        .api(Method::GET, "/api/audit?limit=2&kind=login", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    let first = page["events"].as_array().unwrap();
    assert_eq!(first.len(), 2);
    assert!(first[0]["id"].as_u64() > first[1]["id"].as_u64());
    assert!(
        first
            .iter()
            .all(|e| e["kind"].as_str().unwrap().starts_with("login."))
    );
    let next: Value = daemon
        .api(
            Method::GET,
            &format!(
                "/api/audit?limit=2&kind=login&before={}",
                page["next_before"]
            ),
            &admin,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(next["events"][0]["id"].as_u64() < first[1]["id"].as_u64());
    let ann = daemon.login("ann", "ann-password").await;
    assert_eq!(
        daemon
            .api(Method::GET, "/api/audit", &ann, None)
            .await
            .status(),
        403
    );
}
