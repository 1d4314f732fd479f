//! Signing out at the identity provider too (`idp_logout`, contract section 9): an SSO session's
//! sign-out sends the browser to the provider's `end_session_endpoint` with `id_token_hint`,
//! `client_id` and `post_logout_redirect_uri`; a local session, `idp_logout` off, or a provider
//! without the endpoint end here only. The ID token kept for the hint is never shown.

use base64::Engine;
use serde_json::{Value, json};

use crate::support::browser::{Browser, location};
use crate::support::idp::{Behaviour, IdpUser, TestIdp};
use crate::support::{Daemon, Setup};

const CLIENT_ID: &str = "coderflow-logout";
const SECRET: &str = "logout-secret";

async fn daemon_with(idp: &TestIdp, idp_logout: bool) -> Daemon {
    let setup = Setup::git();
    setup.write_oidc(
        &json!({"enabled": true, "client_id": CLIENT_ID, "client_secret": SECRET,
                "issuer": idp.issuer(), "idp_logout": idp_logout})
        .to_string(),
    );
    let daemon = setup.start();
    daemon
        .wait_for_status("provider ready", |s| {
            s.provider.state == coderflow::oidc::ProviderState::Ready
        })
        .await;
    daemon
}

async fn sso_browser(daemon: &Daemon, idp: &TestIdp) -> Browser {
    idp.login_as(IdpUser::from_email("lee@company.com", "Lee"));
    let browser = Browser::new(&daemon.base);
    let start = browser.get("/auth/oidc/login").await;
    let at_idp = browser.get(&location(&start)).await;
    let done = browser.get(&location(&at_idp)).await;
    assert_eq!(done.status(), 303);
    assert_eq!(browser.get("/api/me").await.status(), 200);
    browser
}

async fn sign_out(browser: &Browser) -> String {
    let csrf = browser.csrf().await;
    let answer = browser.post_form("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(
        browser.get("/api/me").await.status(),
        401,
        "signed out here"
    );
    location(&answer)
}

#[tokio::test]
async fn an_sso_session_signs_out_at_the_provider_with_the_id_token_as_hint() {
    let idp = TestIdp::start(CLIENT_ID, SECRET).await;
    let daemon = daemon_with(&idp, true).await;
    let browser = sso_browser(&daemon, &idp).await;
    let target = sign_out(&browser).await;
    let url = url::Url::parse(&target).unwrap();
    assert_eq!(
        format!("{}://{}{}", url.scheme(), url.authority(), url.path()),
        format!("{}/logout", idp.issuer())
    );
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["post_logout_redirect_uri"], daemon.url("/login"));
    let payload = query["id_token_hint"].split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], CLIENT_ID, "the ID token of this login");
    assert_eq!(claims["email"], "lee@company.com");
    let admin = daemon.admin_key().await;
    let audit = daemon.get_json_as("/api/audit?kind=logout", &admin).await;
    assert!(audit.to_string().contains("logout.provider"), "{audit}");
    // The token is never shown: not in the audit trail, the settings or the log.
    let hint = &query["id_token_hint"];
    assert!(!audit.to_string().contains(hint.as_str()));
    let settings = daemon.get_json_as("/api/settings/sso", &admin).await;
    assert!(!settings.to_string().contains(hint.as_str()));
    assert!(!daemon.logs().contains(hint.as_str()));
}

#[tokio::test]
async fn local_sessions_idp_logout_off_and_providers_without_the_endpoint_end_here() {
    let idp = TestIdp::start(CLIENT_ID, SECRET).await;
    let off = daemon_with(&idp, false).await;
    let browser = sso_browser(&off, &idp).await;
    assert_eq!(sign_out(&browser).await, "/login", "idp_logout off");

    let on = daemon_with(&idp, true).await;
    let local = Browser::new(&on.base);
    local.sign_in("admin", &on.admin_password()).await;
    assert_eq!(sign_out(&local).await, "/login", "a local session");

    let bare = TestIdp::start(CLIENT_ID, SECRET).await;
    bare.behave(|b| {
        *b = Behaviour {
            no_logout: true,
            ..Behaviour::default()
        }
    });
    let daemon = daemon_with(&bare, true).await;
    let browser = sso_browser(&daemon, &bare).await;
    assert_eq!(
        sign_out(&browser).await,
        "/login",
        "no end_session_endpoint"
    );
}
