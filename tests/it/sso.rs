//! SSO login through the real binary against the project's test identity provider: the happy
//! path, provisioning and linking, every hostile token, state and `return_to` attacks, key
//! rotation, and a provider that is down, slow or misbehaving.

use std::time::Duration;

use coderflow::oidc::ProviderState;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::{Browser, location, set_cookies};
use crate::support::idp::{AtHash, Behaviour, IdpUser, Signing, TestIdp};
use crate::support::{Daemon, Setup, save_atomic};

const CLIENT_ID: &str = "coderflow-test";
/// A secret with every character `client_secret_basic` must form-urlencode.
const SECRET: &str = "s3cr:et&with+plus%and=more";

/// A change to the provider's behaviour.
type Misbehaviour = Box<dyn Fn(&mut Behaviour)>;

/// A daemon whose `oidc.json` points at `idp`, with the provider ready.
struct Sso {
    idp: TestIdp,
    daemon: Daemon,
    admin: String,
}

fn oidc(idp: &TestIdp, extra: Value) -> String {
    let mut config = json!({
        "enabled": true,
        "display_name": "Sign in with Test IdP",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "issuer": idp.issuer(),
        "default_role": "viewer",
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config.to_string()
}

impl Sso {
    async fn start() -> Sso {
        Sso::start_with(json!({}), &[]).await
    }

    async fn start_with(extra: Value, flags: &[&str]) -> Sso {
        let idp = TestIdp::start(CLIENT_ID, SECRET).await;
        let setup = Setup::git();
        setup.write_oidc(&oidc(&idp, extra));
        let daemon = setup.start_with(flags);
        wait_ready(&daemon).await;
        let admin = daemon.admin_key().await;
        Sso { idp, daemon, admin }
    }

    /// Walks a browser through SSO: our login start, the provider's authorize, back to our
    /// callback. Answers the callback's response.
    async fn login(&self, browser: &Browser, return_to: &str) -> reqwest::Response {
        let start = browser
            .get(&format!(
                "/auth/oidc/login?return_to={}",
                urlencode(return_to)
            ))
            .await;
        assert_eq!(start.status(), 303, "login start: {:?}", start.text().await);
        let authorize = location(&start);
        assert!(authorize.starts_with(&self.idp.issuer()), "{authorize}");
        let at_idp = browser.get(&authorize).await;
        assert!(
            at_idp.status().is_redirection(),
            "provider: {}",
            at_idp.status()
        );
        let callback = location(&at_idp);
        assert!(
            callback.starts_with(&self.daemon.url("/auth/oidc/callback")),
            "{callback}"
        );
        browser.get(&callback).await
    }

    async fn users(&self) -> Vec<String> {
        let list: Value = self
            .daemon
            .api(Method::GET, "/api/users", &self.admin, None)
            .await
            .json()
            .await
            .unwrap();
        list["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn user(&self, username: &str) -> Value {
        let response = self
            .daemon
            .api(
                Method::GET,
                &format!("/api/users/{username}"),
                &self.admin,
                None,
            )
            .await;
        assert_eq!(response.status(), 200, "user {username}");
        response.json().await.unwrap()
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn wait_ready(daemon: &Daemon) {
    daemon
        .wait_for_status("provider ready", |s| {
            s.provider.state == ProviderState::Ready
        })
        .await;
}

/// Asserts the callback answered an error page with `title` and started no session.
async fn assert_refused(browser: &Browser, response: reqwest::Response, title: &str) {
    let status = response.status();
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status}"
    );
    assert!(
        !set_cookies(&response)
            .iter()
            .any(|c| c.starts_with("cf_session=")),
        "no session cookie"
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("<h1>{title}</h1>")),
        "expected {title:?} in\n{html}"
    );
    assert!(html.contains("href=\"/login\""), "a way back to /login");
    assert_eq!(browser.get("/api/me").await.status(), 401, "not signed in");
}

#[tokio::test]
async fn first_sso_login_provisions_the_user_and_starts_a_session() {
    let sso = Sso::start().await;
    sso.idp
        .login_as(IdpUser::from_email("John.Doe+ci@Company.com", "John Doe"));
    let browser = Browser::new(&sso.daemon.base);
    let response = sso.login(&browser, "/people?tab=1").await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        "/people?tab=1",
        "code and state leave the URL"
    );
    let cookies = set_cookies(&response);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("cf_session=") && c.contains("HttpOnly"))
    );

    let me: Value = browser.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["username"], "johndoe");
    assert_eq!(me["email"], "John.Doe+ci@Company.com");
    assert_eq!(me["name"], "John Doe");
    assert_eq!(me["source"], "sso");
    assert_eq!(
        me["access"],
        json!([{"role": "viewer", "scope": "environment:*"}])
    );

    // What the daemon sent: PKCE S256, a nonce, the scopes, and client_secret_basic with the
    // id and secret form-urlencoded first.
    let authorize = sso.idp.authorize_requests().pop().unwrap();
    assert_eq!(authorize["code_challenge_method"], "S256");
    assert!(authorize["nonce"].len() >= 32 && authorize["state"].len() >= 32);
    assert_eq!(authorize["scope"], "openid profile email");
    assert_eq!(
        authorize["redirect_uri"],
        sso.daemon.url("/auth/oidc/callback")
    );
    let token = sso.idp.token_requests().pop().unwrap();
    assert_eq!(token.client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(token.client_secret.as_deref(), Some(SECRET));
    assert!(!token.form.contains_key("client_secret"));
    assert!(token.form["code_verifier"].len() >= 43);
    let logs = sso.daemon.logs();
    assert!(
        !logs.contains(SECRET),
        "the client secret never reaches the log"
    );
    assert!(!logs.contains(&token.form["code"]), "nor the code");
}

#[tokio::test]
async fn later_logins_update_the_name_only_and_collisions_get_a_number() {
    let sso = Sso::start().await;
    let browser = Browser::new(&sso.daemon.base);
    let mut jane = IdpUser::from_email("jane@company.com", "Jane");
    sso.idp.login_as(jane.clone());
    assert_eq!(sso.login(&browser, "/").await.status(), 303);
    // default_role changes; a provider-side rename follows; nothing else changes.
    save_atomic(
        &sso.daemon.setup.oidc_path(),
        &oidc(
            &sso.idp,
            json!({"default_role": "server_admin", "display_name": "New"}),
        ),
    );
    sso.daemon.wait_for_display_name("New").await;
    jane.name = Some("Jane Q. Public".into());
    jane.email = Some("jane.public@company.com".into());
    sso.idp.login_as(jane);
    let browser = Browser::new(&sso.daemon.base);
    assert_eq!(sso.login(&browser, "/").await.status(), 303);
    let user = sso.user("jane").await;
    assert_eq!(user["name"], "Jane Q. Public");
    assert_eq!(user["email"], "jane@company.com");
    assert_eq!(
        user["access"],
        json!([{"role": "viewer", "scope": "environment:*"}])
    );

    // Another person whose email gives the same username.
    sso.idp
        .login_as(IdpUser::from_email("jane@other.org", "Other Jane"));
    let other = Browser::new(&sso.daemon.base);
    assert_eq!(sso.login(&other, "/").await.status(), 303);
    let me: Value = other.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["username"], "jane2");
    assert_eq!(
        me["access"],
        json!([{"role": "server_admin", "scope": "server"}])
    );
}

#[tokio::test]
async fn existing_users_are_linked_by_verified_email_only() {
    let sso = Sso::start_with(json!({"auto_provision": false}), &[]).await;
    let browser = Browser::new(&sso.daemon.base);
    // No such user and no provisioning: "User not found".
    sso.idp
        .login_as(IdpUser::from_email("kate@company.com", "Kate"));
    let response = sso.login(&browser, "/").await;
    assert_refused(&browser, response, "User not found").await;
    assert_eq!(sso.users().await, ["admin"]);

    sso.daemon
        .create_user(&sso.admin, "kate", "developer", None)
        .await;
    let mut unverified = IdpUser::from_email("KATE@example.com", "Kate");
    unverified.sub = "attacker".into();
    unverified.email_verified = Some(false);
    sso.idp.login_as(unverified);
    let response = sso.login(&browser, "/").await;
    assert_refused(&browser, response, "Email not verified").await;

    let mut kate = IdpUser::from_email("Kate@Example.com", "Kate Real");
    kate.sub = "kate-sub".into();
    sso.idp.login_as(kate.clone());
    assert_eq!(sso.login(&browser, "/").await.status(), 303);
    let me: Value = browser.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["username"], "kate");
    assert_eq!(me["name"], "Kate Real");
    assert_eq!(
        me["source"], "local",
        "linking keeps where the account came from"
    );

    // Linked by (issuer, sub) from now on: a changed email at the provider still lands here.
    kate.email = Some("kate.new@company.com".into());
    sso.idp.login_as(kate);
    let again = Browser::new(&sso.daemon.base);
    assert_eq!(sso.login(&again, "/").await.status(), 303);
    let me: Value = again.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["username"], "kate");
    assert_eq!(sso.users().await, ["admin", "kate"]);
}

#[tokio::test]
async fn email_and_name_come_from_userinfo_when_the_id_token_lacks_them() {
    let sso = Sso::start().await;
    sso.idp.behave(|b| b.claims_in_id_token = false);
    sso.idp
        .login_as(IdpUser::from_email("gina@company.com", "Gina"));
    let browser = Browser::new(&sso.daemon.base);
    assert_eq!(sso.login(&browser, "/").await.status(), 303);
    assert_eq!(sso.idp.userinfo_calls(), 1);
    let me: Value = browser.get("/api/me").await.json().await.unwrap();
    assert_eq!(
        (me["username"].as_str(), me["name"].as_str()),
        (Some("gina"), Some("Gina"))
    );

    // Userinfo about somebody else is refused.
    sso.idp
        .behave(|b| b.userinfo_sub = Some("someone-else".into()));
    sso.idp
        .login_as(IdpUser::from_email("mallory@company.com", "M"));
    let browser = Browser::new(&sso.daemon.base);
    let response = sso.login(&browser, "/").await;
    assert_refused(&browser, response, "Sign-in failed").await;

    // No email anywhere.
    sso.idp.behave(|b| b.userinfo_sub = None);
    sso.idp.login_as(IdpUser {
        sub: "no-email".into(),
        email: None,
        email_verified: None,
        name: Some("Nobody".into()),
    });
    let response = sso.login(&browser, "/").await;
    assert_refused(&browser, response, "Missing email claim").await;
    assert_eq!(sso.users().await, ["admin", "gina"]);
}

#[tokio::test]
async fn hostile_id_tokens_are_refused_without_session_user_or_userinfo() {
    let sso = Sso::start().await;
    let cases: Vec<(&str, Misbehaviour)> = vec![
        (
            "bad signature",
            Box::new(|b| b.signing = Signing::BadSignature),
        ),
        ("alg none", Box::new(|b| b.signing = Signing::AlgNone)),
        (
            "HS256 keyed with the client secret",
            Box::new(|b| b.signing = Signing::Hs256WithClientSecret),
        ),
        (
            "a key not in the JWKS",
            Box::new(|b| b.signing = Signing::OtherKey),
        ),
        (
            "an unknown kid",
            Box::new(|b| b.signing = Signing::UnknownKid),
        ),
        (
            "wrong iss",
            Box::new(|b| b.iss = Some("https://evil.example".into())),
        ),
        (
            "wrong aud",
            Box::new(|b| b.aud = Some(vec!["someone-else".into()])),
        ),
        (
            "several aud without azp",
            Box::new(|b| b.aud = Some(vec![CLIENT_ID.into(), "other".into()])),
        ),
        (
            "azp not us",
            Box::new(|b| {
                b.aud = Some(vec![CLIENT_ID.into(), "other".into()]);
                b.azp = Some("other".into());
            }),
        ),
        ("expired", Box::new(|b| b.exp_offset_secs = -120)),
        (
            "issued in the future",
            Box::new(|b| b.iat_offset_secs = 3600),
        ),
        ("no iat", Box::new(|b| b.omit_claims = vec!["iat".into()])),
        ("no sub", Box::new(|b| b.omit_claims = vec!["sub".into()])),
        (
            "no nonce",
            Box::new(|b| b.omit_claims = vec!["nonce".into()]),
        ),
        (
            "wrong nonce",
            Box::new(|b| b.nonce = Some("replayed-nonce".into())),
        ),
        (
            "token endpoint error",
            Box::new(|b| b.token_error = Some("invalid_grant".into())),
        ),
        // The security review's ID token and callback gaps (OpenID RP tests, RFC 9207).
        (
            "an extra audience we do not trust, azp ours",
            Box::new(|b| {
                b.aud = Some(vec![CLIENT_ID.into(), "other".into()]);
                b.azp = Some(CLIENT_ID.into());
            }),
        ),
        (
            "issued a week ago",
            Box::new(|b| b.iat_offset_secs = -7 * 86_400),
        ),
        (
            "no iss parameter though discovery announces it",
            Box::new(|b| b.callback_iss = Some(None)),
        ),
        (
            "an id_token in the front channel",
            Box::new(|b| b.front_channel_id_token = true),
        ),
        (
            "at_hash of another access token",
            Box::new(|b| b.at_hash = AtHash::Wrong),
        ),
    ];
    for (i, (name, misbehave)) in cases.iter().enumerate() {
        sso.idp.behave(|b| {
            *b = Behaviour::default();
            misbehave(b);
        });
        sso.idp.login_as(IdpUser::from_email(
            &format!("victim{i}@company.com"),
            "Victim",
        ));
        let browser = Browser::new(&sso.daemon.base);
        let response = sso.login(&browser, "/").await;
        assert_eq!(response.status(), 502, "{name}");
        // A provider signing with an algorithm we refuse is misconfigured: trying again will
        // not help, and the page says so; every other case failed a check.
        let title = if name.starts_with("alg none") || name.starts_with("HS256") {
            "Single sign-on is not set up correctly"
        } else {
            "Sign-in failed"
        };
        assert_refused(&browser, response, title).await;
    }
    assert_eq!(sso.users().await, ["admin"], "no user was created");
    assert_eq!(
        sso.idp.userinfo_calls(),
        0,
        "userinfo is never called after a rejection"
    );
    // Tolerated: 60 s of clock skew, and a token without kid when the JWKS has one key.
    for (name, behave) in [
        (
            "expired 30 s ago",
            Box::new(|b: &mut Behaviour| b.exp_offset_secs = -30) as Misbehaviour,
        ),
        (
            "no kid, one key",
            Box::new(|b: &mut Behaviour| b.signing = Signing::NoKid),
        ),
        (
            "the right at_hash",
            Box::new(|b: &mut Behaviour| b.at_hash = AtHash::Correct),
        ),
        (
            "issued 9 minutes ago",
            Box::new(|b: &mut Behaviour| b.iat_offset_secs = -540),
        ),
    ] {
        sso.idp.behave(|b| {
            *b = Behaviour::default();
            behave(b);
        });
        let browser = Browser::new(&sso.daemon.base);
        assert_eq!(sso.login(&browser, "/").await.status(), 303, "{name}");
    }
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_once_without_a_restart() {
    let sso = Sso::start().await;
    sso.idp
        .login_as(IdpUser::from_email("rita@company.com", "Rita"));
    assert_eq!(
        sso.login(&Browser::new(&sso.daemon.base), "/")
            .await
            .status(),
        303
    );
    let jwks_before = sso.idp.jwks_calls();
    sso.idp.rotate_key();
    assert_eq!(
        sso.login(&Browser::new(&sso.daemon.base), "/")
            .await
            .status(),
        303
    );
    assert_eq!(
        sso.idp.jwks_calls(),
        jwks_before + 1,
        "one refetch for the new kid"
    );
    // A token with a kid the provider never publishes: refused, and within 5 s no second fetch.
    sso.idp.behave(|b| b.signing = Signing::UnknownKid);
    for _ in 0..3 {
        let browser = Browser::new(&sso.daemon.base);
        let response = sso.login(&browser, "/").await;
        assert_refused(&browser, response, "Sign-in failed").await;
    }
    assert!(
        sso.idp.jwks_calls() <= jwks_before + 2,
        "refetches are rate-limited"
    );
}

#[tokio::test]
async fn state_is_single_use_bound_to_the_browser_and_expires() {
    let sso = Sso::start_with(json!({}), &["--login-state-ttl", "1"]).await;
    sso.idp
        .login_as(IdpUser::from_email("sam@company.com", "Sam"));
    let browser = Browser::new(&sso.daemon.base);
    let start = browser.get("/auth/oidc/login").await;
    let binding = set_cookies(&start);
    assert!(
        binding
            .iter()
            .any(|c| c.starts_with("cf_login_binding=") && c.contains("HttpOnly"))
    );
    let callback = location(&browser.get(&location(&start)).await);

    // Another browser (no binding cookie) cannot use this state; and it is spent by trying.
    let thief = Browser::new(&sso.daemon.base);
    let response = thief.get(&callback).await;
    assert_refused(&thief, response, "Invalid or expired state").await;
    let response = browser.get(&callback).await;
    assert_refused(&browser, response, "Invalid or expired state").await;

    // Replay: a state works once.
    let callback = location(
        &browser
            .get(&location(&browser.get("/auth/oidc/login").await))
            .await,
    );
    assert_eq!(browser.get(&callback).await.status(), 303);
    let replay = Browser::new(&sso.daemon.base);
    let response = browser.get(&callback).await;
    assert_refused(&replay, response, "Invalid or expired state").await;

    // Expiry (--login-state-ttl 1).
    let late = Browser::new(&sso.daemon.base);
    let callback = location(
        &late
            .get(&location(&late.get("/auth/oidc/login").await))
            .await,
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = late.get(&callback).await;
    assert_refused(&late, response, "Invalid or expired state").await;
    assert_eq!(sso.users().await, ["admin", "sam"]);
}

#[tokio::test]
async fn callback_tricks_are_refused() {
    let sso = Sso::start().await;
    sso.idp
        .login_as(IdpUser::from_email("tom@company.com", "Tom"));
    let browser = Browser::new(&sso.daemon.base);
    let fresh_callback = || async {
        location(
            &browser
                .get(&location(&browser.get("/auth/oidc/login").await))
                .await,
        )
    };
    // Duplicated parameters.
    let callback = fresh_callback().await;
    let response = browser.get(&format!("{callback}&code=second")).await;
    assert_refused(&browser, response, "Invalid sign-in response").await;
    // An `iss` that is not the issuer (mix-up).
    let callback = fresh_callback().await;
    let forged = callback.replace(&urlencode(&sso.idp.issuer()), "https%3A%2F%2Fevil.example");
    assert_ne!(forged, callback);
    let response = browser.get(&forged).await;
    assert_refused(&browser, response, "Sign-in failed").await;
    // The provider's error answer.
    sso.idp
        .behave(|b| b.authorize_error = Some("access_denied".into()));
    let callback = fresh_callback().await;
    let response = browser.get(&callback).await;
    let html_status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(html_status, 400);
    assert!(html.contains("Sign-in was not completed") && html.contains("access_denied"));
    assert_eq!(
        sso.idp.token_requests().len(),
        0,
        "no code was ever exchanged"
    );
    assert_eq!(sso.users().await, ["admin"]);
}

#[tokio::test]
async fn return_to_only_accepts_local_paths() {
    let sso = Sso::start().await;
    sso.idp
        .login_as(IdpUser::from_email("una@company.com", "Una"));
    for payload in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "javascript:alert(1)",
        "http:/evil.example",
    ] {
        let browser = Browser::new(&sso.daemon.base);
        let response = sso.login(&browser, payload).await;
        assert_eq!(response.status(), 303, "{payload}");
        assert_eq!(location(&response), "/", "{payload}");
    }
}

#[tokio::test]
async fn a_provider_that_is_down_never_blocks_local_login_and_sso_recovers_by_itself() {
    let mut idp = TestIdp::start(CLIENT_ID, SECRET).await;
    idp.stop_listening().await;
    let setup = Setup::git();
    setup.write_oidc(&oidc(&idp, json!({})));
    let daemon = setup.start();
    daemon
        .wait_for_status("provider unreachable", |s| {
            s.provider.state == ProviderState::Unreachable
        })
        .await;
    let admin = daemon.admin_key().await;
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &admin, None)
            .await
            .status(),
        200
    );
    let browser = Browser::new(&daemon.base);
    let response = browser.get("/auth/oidc/login").await;
    assert_eq!(response.status(), 503);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Single sign-on is unavailable")
    );
    let login_page = browser.page("/login").await;
    assert!(login_page.contains("local-login-form"));
    assert_eq!(
        daemon
            .metric("coderflow_sso_provider_state{state=\"unreachable\"}")
            .await,
        1.0
    );

    idp.restart().await;
    wait_ready(&daemon).await;
    assert_eq!(
        daemon
            .metric("coderflow_sso_provider_state{state=\"ready\"}")
            .await,
        1.0
    );
    idp.login_as(IdpUser::from_email("val@company.com", "Val"));
    let start = browser.get("/auth/oidc/login").await;
    let callback = location(&browser.get(&location(&start)).await);
    assert_eq!(browser.get(&callback).await.status(), 303);
}

#[tokio::test]
async fn a_slow_provider_fails_the_login_within_the_timeout() {
    let sso = Sso::start_with(json!({}), &["--idp-timeout", "1"]).await;
    sso.idp
        .login_as(IdpUser::from_email("walt@company.com", "Walt"));
    sso.idp.behave(|b| b.delay = Duration::from_secs(5));
    let browser = Browser::new(&sso.daemon.base);
    let start = browser.get("/auth/oidc/login").await;
    let callback = location(&browser.get(&location(&start)).await);
    let began = std::time::Instant::now();
    let response = browser.get(&callback).await;
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(response.status(), 503);
    assert_refused(&browser, response, "The identity provider did not answer").await;
    // Marked unreachable at once: the status says so, and the next start probes first.
    let status = sso
        .daemon
        .wait_for_status("provider unreachable", |s| {
            s.provider.state == ProviderState::Unreachable
        })
        .await;
    assert!(!status.provider.detail.is_empty());
    let password = sso.daemon.admin_password();
    assert_eq!(
        sso.daemon.login_response("admin", &password).await.status(),
        200
    );
}

#[tokio::test]
async fn misbehaving_discovery_is_reported_and_never_followed() {
    for (name, behave, expect) in [
        (
            "issuer mismatch",
            Box::new(|b: &mut Behaviour| b.discovery_issuer = Some("https://other.example".into()))
                as Misbehaviour,
            "issuer",
        ),
        (
            "redirect",
            Box::new(|b: &mut Behaviour| b.redirect_discovery = true),
            "redirect",
        ),
        (
            "garbage",
            Box::new(|b: &mut Behaviour| b.garbage_discovery = true),
            "",
        ),
        (
            "huge JWKS",
            Box::new(|b: &mut Behaviour| b.huge_jwks = true),
            "larger than",
        ),
    ] {
        let idp = TestIdp::start(CLIENT_ID, SECRET).await;
        idp.behave(|b| behave(b));
        let setup = Setup::git();
        setup.write_oidc(&oidc(&idp, json!({})));
        let daemon = setup.start();
        let status = daemon
            .wait_for_status(name, |s| s.provider.state == ProviderState::Unreachable)
            .await;
        assert!(
            status.provider.detail.contains(expect),
            "{name}: {}",
            status.provider.detail
        );
        let response = Browser::new(&daemon.base).get("/auth/oidc/login").await;
        assert_eq!(response.status(), 503, "{name}");
    }
}

#[tokio::test]
async fn sso_disabled_answers_a_clear_page() {
    let daemon = Setup::git().start();
    let response = Browser::new(&daemon.base).get("/auth/oidc/login").await;
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Single sign-on is not enabled")
    );
}

#[tokio::test]
async fn a_planted_binding_is_never_adopted_and_a_finished_login_clears_it() {
    let sso = Sso::start().await;
    sso.idp
        .login_as(IdpUser::from_email("pat@company.com", "Pat"));
    let planted = "A".repeat(43);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = http
        .get(sso.daemon.url("/auth/oidc/login"))
        .header("cookie", format!("cf_login_binding={planted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303);
    let binding = set_cookies(&start)
        .into_iter()
        .find(|c| c.starts_with("cf_login_binding="))
        .unwrap();
    assert!(!binding.contains(&planted), "{binding}");

    let browser = Browser::new(&sso.daemon.base);
    let done = sso.login(&browser, "/").await;
    assert_eq!(done.status(), 303);
    assert!(
        set_cookies(&done)
            .iter()
            .any(|c| c.starts_with("cf_login_binding=;") && c.contains("Max-Age=0")),
        "{:?}",
        set_cookies(&done)
    );
}

#[tokio::test]
async fn an_unverified_email_never_takes_over_an_existing_account() {
    // Entra ID sends no email_verified: by default such a login links nobody.
    let sso = Sso::start().await;
    sso.daemon
        .create_user(&sso.admin, "victim", "developer", Some("victim-password"))
        .await;
    let attacker = IdpUser {
        sub: "attacker".into(),
        email: Some("VICTIM@example.com".into()),
        email_verified: None,
        name: Some("Mallory".into()),
    };
    sso.idp.login_as(attacker.clone());
    let browser = Browser::new(&sso.daemon.base);
    let response = sso.login(&browser, "/").await;
    assert_eq!(response.status(), 403);
    assert_refused(&browser, response, "Account not linked").await;
    assert_eq!(sso.users().await, ["admin", "victim"]);
    let trail = sso
        .daemon
        .get_json_as("/api/audit?kind=login.sso&limit=5", &sso.admin)
        .await;
    assert!(
        trail["events"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("link_by_email `verified`"),
        "{trail}"
    );

    // Chosen knowingly for a provider that owns its emails: linked.
    let trusting = Sso::start_with(json!({"link_by_email": "trust_provider"}), &[]).await;
    trusting
        .daemon
        .create_user(&trusting.admin, "victim", "developer", None)
        .await;
    trusting.idp.login_as(attacker);
    let browser = Browser::new(&trusting.daemon.base);
    assert_eq!(trusting.login(&browser, "/").await.status(), 303);
    let me = browser.get("/api/me").await.json::<Value>().await.unwrap();
    assert_eq!(me["username"], "victim");
}

#[tokio::test]
async fn many_sign_ins_from_one_address_are_not_refused() {
    // An office behind one address signs in at once.
    let sso = Sso::start().await;
    for i in 0..40 {
        let browser = Browser::new(&sso.daemon.base);
        let start = browser.get("/auth/oidc/login").await;
        assert_eq!(start.status(), 303, "start {i}");
    }
}
