//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0, contract section 9): the
//! provider's logout token ends the sessions of its `sid`, or every session of its `sub`, and
//! with `backchannel_logout_revokes_keys` the user's device-login keys; hostile tokens (bad
//! signature, wrong `aud`/`iss`, a `nonce`, no `events`, a replayed `jti`, an old `iat`, neither
//! `sid` nor `sub`) are each refused with 400 and end nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::{Browser, location};
use crate::support::idp::{Behaviour, IdpUser, Signing, TestIdp};
use crate::support::{Daemon, Setup};

const CLIENT_ID: &str = "coderflow-bcl";
const SECRET: &str = "bcl-secret";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const EMAIL: &str = "bo@company.com";

async fn daemon_with(idp: &TestIdp, revokes_keys: bool) -> Daemon {
    let setup = Setup::git();
    setup.write_oidc(
        &json!({"enabled": true, "client_id": CLIENT_ID, "client_secret": SECRET,
                "issuer": idp.issuer(), "backchannel_logout_revokes_keys": revokes_keys})
        .to_string(),
    );
    let daemon = setup.start_with(&["--device-poll-interval", "1"]);
    daemon
        .wait_for_status("provider ready", |s| {
            s.provider.state == coderflow::oidc::ProviderState::Ready
        })
        .await;
    daemon
}

/// An SSO session of [`EMAIL`] whose provider session is `sid`.
async fn session_with_sid(daemon: &Daemon, idp: &TestIdp, sid: &str) -> Browser {
    idp.login_as(IdpUser::from_email(EMAIL, "Bo"));
    idp.behave(|b| {
        *b = Behaviour::default();
        b.id_token_claims = vec![("sid".into(), json!(sid))];
    });
    let browser = Browser::new(&daemon.base);
    let start = browser.get("/auth/oidc/login").await;
    let at_idp = browser.get(&location(&start)).await;
    assert_eq!(browser.get(&location(&at_idp)).await.status(), 303);
    assert!(signed_in(&browser).await);
    browser
}

async fn signed_in(browser: &Browser) -> bool {
    browser.get("/api/me").await.status() == 200
}

fn sub() -> String {
    IdpUser::from_email(EMAIL, "Bo").sub
}

fn token_claims(idp: &TestIdp, jti: &str) -> Value {
    json!({
        "iss": idp.issuer(), "aud": CLIENT_ID, "iat": chrono::Utc::now().timestamp(),
        "jti": jti, "events": {EVENT: {}},
    })
}

async fn post_logout(daemon: &Daemon, token: &str) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(daemon.url("/auth/oidc/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_sid_ends_its_session_a_sub_ends_them_all() {
    let idp = TestIdp::start(CLIENT_ID, SECRET).await;
    let daemon = daemon_with(&idp, false).await;
    let first = session_with_sid(&daemon, &idp, "sid-1").await;
    let second = session_with_sid(&daemon, &idp, "sid-2").await;
    let third = session_with_sid(&daemon, &idp, "sid-3").await;

    let mut claims = token_claims(&idp, "jti-1");
    claims["sid"] = "sid-1".into();
    let (status, body) = post_logout(&daemon, &idp.sign_jwt(&claims, Signing::Good)).await;
    assert_eq!(status, 200, "{body}");
    assert!(!signed_in(&first).await, "the sid's session ended");
    assert!(
        signed_in(&second).await && signed_in(&third).await,
        "the others stay"
    );

    let mut claims = token_claims(&idp, "jti-2");
    claims["sub"] = sub().into();
    let (status, _) = post_logout(&daemon, &idp.sign_jwt(&claims, Signing::Good)).await;
    assert_eq!(status, 200);
    assert!(
        !signed_in(&second).await && !signed_in(&third).await,
        "every session of the sub"
    );

    let admin = daemon.admin_key().await;
    let audit = daemon
        .get_json_as("/api/audit?kind=logout", &admin)
        .await
        .to_string();
    assert!(
        audit.contains("1 session(s) and 0 device-login key(s) ended (sid)"),
        "{audit}"
    );
    assert!(
        audit.contains("2 session(s) and 0 device-login key(s) ended (sub)"),
        "{audit}"
    );
}

#[tokio::test]
async fn with_revokes_keys_the_users_device_login_keys_end_too() {
    let idp = TestIdp::start(CLIENT_ID, SECRET).await;
    let daemon = daemon_with(&idp, true).await;
    let browser = session_with_sid(&daemon, &idp, "sid-k").await;
    let code = daemon.device_code("coder CLI").await;
    let approved = browser
        .decide_device(code["user_code"].as_str().unwrap(), "approve")
        .await;
    assert_eq!(approved.status(), 200);
    let (status, issued) = daemon
        .poll_device(code["device_code"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{issued}");
    let key = issued["access_token"]
        .as_str()
        .or_else(|| issued["api_key"].as_str())
        .unwrap()
        .to_owned();
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &key, None)
            .await
            .status(),
        200
    );

    let mut claims = token_claims(&idp, "jti-k");
    claims["sid"] = "sid-k".into();
    claims["sub"] = sub().into();
    let (status, _) = post_logout(&daemon, &idp.sign_jwt(&claims, Signing::Good)).await;
    assert_eq!(status, 200);
    assert!(!signed_in(&browser).await);
    assert_eq!(
        daemon
            .api(Method::GET, "/api/me", &key, None)
            .await
            .status(),
        401,
        "the device-login key is revoked"
    );
}

#[tokio::test]
async fn hostile_logout_tokens_are_refused_and_end_nothing() {
    let idp = TestIdp::start(CLIENT_ID, SECRET).await;
    let daemon = daemon_with(&idp, true).await;
    let browser = session_with_sid(&daemon, &idp, "sid-h").await;
    let base = |jti: &str| {
        let mut claims = token_claims(&idp, jti);
        claims["sid"] = "sid-h".into();
        claims
    };
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, String)> = vec![
        (
            "bad signature",
            idp.sign_jwt(&base("a"), Signing::BadSignature),
        ),
        ("alg none", idp.sign_jwt(&base("b"), Signing::AlgNone)),
        (
            "HMAC with the client secret",
            idp.sign_jwt(&base("c"), Signing::Hs256WithClientSecret),
        ),
        ("another key", idp.sign_jwt(&base("d"), Signing::OtherKey)),
        ("wrong aud", {
            let mut c = base("e");
            c["aud"] = "someone-else".into();
            idp.sign_jwt(&c, Signing::Good)
        }),
        ("wrong iss", {
            let mut c = base("f");
            c["iss"] = "https://evil.example.com".into();
            idp.sign_jwt(&c, Signing::Good)
        }),
        ("a nonce", {
            let mut c = base("g");
            c["nonce"] = "n".into();
            idp.sign_jwt(&c, Signing::Good)
        }),
        ("no events", {
            let mut c = base("h");
            c.as_object_mut().unwrap().remove("events");
            idp.sign_jwt(&c, Signing::Good)
        }),
        ("old iat", {
            let mut c = base("i");
            c["iat"] = json!(now - 600);
            idp.sign_jwt(&c, Signing::Good)
        }),
        ("neither sid nor sub", {
            let mut c = base("j");
            c.as_object_mut().unwrap().remove("sid");
            idp.sign_jwt(&c, Signing::Good)
        }),
        ("not a JWT", "garbage".to_owned()),
    ];
    for (what, token) in cases {
        let (status, body) = post_logout(&daemon, &token).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], "invalid_request", "{what}");
        assert!(signed_in(&browser).await, "{what}: nothing ended");
    }
    // A replayed jti: the first use works, the second is refused.
    let mut other = token_claims(&idp, "replayed");
    other["sid"] = "sid-unknown".into();
    let token = idp.sign_jwt(&other, Signing::Good);
    assert_eq!(post_logout(&daemon, &token).await.0, 200);
    let (status, body) = post_logout(&daemon, &token).await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"].as_str().unwrap().contains("jti"),
        "{body}"
    );
    assert!(signed_in(&browser).await);
}
