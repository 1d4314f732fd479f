//! `coder-server schema`, `validate`, and `coder`.

use std::process::Command;

use crate::support::{Setup, oidc_json, run_cli};

#[test]
fn schema_command_prints_the_schema_file() {
    let (status, stdout, _) = run_cli(&["schema"]);
    assert!(status.success());
    let on_disk = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/oidc.schema.json"
    ))
    .unwrap();
    assert_eq!(stdout, on_disk);
    let schema: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(schema["$id"].is_string());
}

#[test]
fn validate_accepts_a_good_setup_repository() {
    let setup = Setup::plain();
    setup.write_oidc(&oidc_json("Sign in with Okta"));
    let (status, stdout, _) = run_cli(&["validate", setup.repo.to_str().unwrap()]);
    assert!(status.success(), "{stdout}");
    assert!(
        stdout.contains("valid (SSO enabled, issuer http://127.0.0.1:9/)"),
        "{stdout}"
    );
}

#[test]
fn validate_lists_every_schema_error_with_its_pointer() {
    let setup = Setup::plain();
    setup.write_oidc(
        r#"{"enabled": "yes", "client_id": "", "issuer": "http://idp.example.com",
            "scopes": ["profile"], "default_role": "owner", "alow_local_auth": false}"#,
    );
    let (status, stdout, stderr) = run_cli(&["validate", setup.oidc_path().to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    for pointer in [
        "/alow_local_auth: unknown field `alow_local_auth`; did you mean `allow_local_auth`?",
        "/client_id:",
        "/client_secret: is required",
        "/default_role: \"owner\" is not a role",
        "/enabled:",
        "/issuer: must be an https:// URL",
        "/scopes: must contain \"openid\"",
    ] {
        assert!(stdout.contains(pointer), "missing {pointer:?} in\n{stdout}");
    }
    assert_eq!(stdout.lines().count(), 7, "{stdout}");
    assert!(stderr.contains("invalid, 7 problems"), "{stderr}");
}

#[test]
fn validate_reports_line_and_column_of_a_syntax_error() {
    let setup = Setup::plain();
    setup.write_oidc("{\n  \"enabled\": true,\n  \"client_id\": \"x\",,\n}\n");
    let (status, stdout, _) = run_cli(&["validate", setup.repo.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stdout.contains("oidc.json: line 3, column 20: invalid JSON: key must be a string"),
        "{stdout}"
    );
}

#[test]
fn validate_treats_a_repository_without_oidc_json_as_sso_disabled() {
    let setup = Setup::plain();
    let (status, stdout, _) = run_cli(&["validate", setup.repo.to_str().unwrap()]);
    assert!(status.success());
    assert!(stdout.contains("no oidc.json: SSO is disabled"), "{stdout}");
}

#[test]
fn validate_fails_on_a_path_that_does_not_exist() {
    let setup = Setup::missing();
    let path = setup.repo.join("oidc.json");
    let (status, _, stderr) = run_cli(&["validate", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("error: cannot read"), "{stderr}");
}

#[test]
fn provider_examples_validate_and_name_their_provider() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/setup-repo-template/examples");
    let expected = [
        ("auth0.oidc.json", ".auth0.com/"),
        ("auth0-roles.oidc.json", ".auth0.com/"),
        ("entra-id.oidc.json", "https://login.microsoftonline.com/"),
        (
            "entra-id-app-roles.oidc.json",
            "https://login.microsoftonline.com/",
        ),
        ("google-workspace.oidc.json", "https://accounts.google.com"),
        (
            "google-workspace-domain.oidc.json",
            "https://accounts.google.com",
        ),
        ("keycloak.oidc.json", "/realms/"),
        ("okta.oidc.json", "/oauth2/default"),
        ("okta-groups.oidc.json", "/oauth2/default"),
    ];
    let filled = tempfile::tempdir().unwrap();
    for (file, issuer_part) in expected {
        let path = format!("{dir}/{file}");
        // Unedited, an example names the value still to fill in.
        let (status, stdout, _) = run_cli(&["validate", &path]);
        assert_eq!(status.code(), Some(1), "{file}: {stdout}");
        assert!(
            stdout.contains("/client_secret: still holds a placeholder"),
            "{file}: {stdout}"
        );
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("replace-with-your-client-secret", "a-real-secret");
        let copy = filled.path().join(file);
        std::fs::write(&copy, text).unwrap();
        let (status, stdout, stderr) = run_cli(&["validate", copy.to_str().unwrap()]);
        assert!(status.success(), "{file}: {stdout}{stderr}");
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(
            config["issuer"].as_str().unwrap().contains(issuer_part),
            "{file}: {}",
            config["issuer"]
        );
    }
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), expected.len());
}

#[test]
fn template_example_validates() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/setup-repo-template/oidc.example.json"
    );
    let (status, stdout, _) = run_cli(&["validate", example]);
    assert!(status.success(), "{stdout}");
}

#[test]
fn reload_without_a_running_daemon_says_so() {
    let setup = Setup::plain();
    let (status, _, stderr) = run_cli(&["reload", "--data-dir", setup.data.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("no coder-server is running with data directory"),
        "{stderr}"
    );
}

#[test]
fn coder_client_binary_reports_its_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_coder"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("coder {}", env!("CARGO_PKG_VERSION"))
    );
}
