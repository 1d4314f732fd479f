//! The HTTP surface: health, readiness, metrics, the public SSO configuration, JSON errors and
//! security headers.

use crate::support::{Setup, oidc_json};

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json("Metrics"));
    let daemon = setup.start();
    assert_eq!(daemon.get_json("/healthz").await["status"], "ok");
    let ready = daemon.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["config_generation"], 1);
    let response = daemon.get("/metrics").await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for line in [
        "# TYPE coderflow_config_reloads_total counter",
        "coderflow_config_reloads_total{result=\"success\"} 0",
        "coderflow_config_reloads_total{result=\"failure\"} 0",
        "coderflow_config_last_reload_successful 1",
        "coderflow_config_generation 1",
        "coderflow_sso_enabled 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn public_oidc_config_has_exactly_the_contract_fields() {
    let setup = Setup::git();
    setup.write_oidc(&oidc_json("Sign in with Microsoft"));
    let daemon = setup.start();
    let config = daemon.public_config().await;
    let mut keys: Vec<_> = config.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "allow_local_auth",
            "display_name",
            "login_url",
            "sso_enabled"
        ]
    );
    assert_eq!(config["display_name"], "Sign in with Microsoft");
    assert_eq!(
        config["login_url"],
        format!("{}/auth/oidc/login", daemon.base)
    );
}

#[tokio::test]
async fn sso_disabled_in_the_file_allows_local_login_whatever_the_file_says() {
    let setup = Setup::git();
    setup.write_oidc(
        &oidc_json("Off")
            .replace("\"enabled\":true", "\"enabled\":false")
            .replace("\"issuer\"", "\"allow_local_auth\":false,\"issuer\""),
    );
    let daemon = setup.start();
    let config = daemon.public_config().await;
    assert_eq!(config["sso_enabled"], false);
    assert_eq!(config["allow_local_auth"], true);
    assert!(config["login_url"].is_null());
}

#[tokio::test]
async fn errors_are_json_and_every_answer_has_the_security_headers() {
    let daemon = Setup::git().start();
    let response = daemon.get("/no/such/route").await;
    assert_eq!(response.status(), 404);
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'",
        ),
    ] {
        assert_eq!(response.headers()[name], value, "{name}");
    }
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].is_string());

    let response = daemon
        .http
        .delete(daemon.url("/api/auth/oidc/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
}
