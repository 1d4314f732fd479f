//! Real providers: the claim shapes they really send, signed userinfo, and error pages that say
//! whether trying again can help, with the administrator's cause behind a reference.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::{Browser, location};
use crate::support::idp::{Behaviour, IdpUser, SignedUserinfo, TestIdp};
use crate::support::{Daemon, Setup, eventually};

const CLIENT_ID: &str = "coderflow-providers";
const SECRET: &str = "providers-secret";

struct Provider {
    idp: TestIdp,
    daemon: Daemon,
    admin: String,
}

impl Provider {
    async fn start() -> Provider {
        let idp = TestIdp::start(CLIENT_ID, SECRET).await;
        let setup = Setup::git();
        setup.write_oidc(
            &json!({"enabled": true, "client_id": CLIENT_ID, "client_secret": SECRET,
                    "issuer": idp.issuer()})
            .to_string(),
        );
        let daemon = setup.start();
        daemon
            .wait_for_status("provider ready", |s| {
                s.provider.state == coderflow::oidc::ProviderState::Ready
            })
            .await;
        let admin = daemon.admin_key().await;
        Provider { idp, daemon, admin }
    }

    /// Signs in with the provider behaving as `behave` says; answers the callback's response
    /// and the browser.
    async fn login(&self, behave: impl FnOnce(&mut Behaviour)) -> (reqwest::Response, Browser) {
        self.idp.behave(|b| {
            *b = Behaviour::default();
            behave(b);
        });
        let browser = Browser::new(&self.daemon.base);
        let start = browser.get("/auth/oidc/login").await;
        assert_eq!(start.status(), 303);
        let at_idp = browser.get(&location(&start)).await;
        let response = browser.get(&location(&at_idp)).await;
        (response, browser)
    }

    async fn me(&self, browser: &Browser) -> Value {
        let response = browser.get("/api/me").await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn recent_failures(&self) -> Vec<Value> {
        let settings = self
            .daemon
            .get_json_as("/api/settings/sso", &self.admin)
            .await;
        settings["recent_failures"].as_array().unwrap().clone()
    }
}

fn user(email: &str) -> IdpUser {
    IdpUser::from_email(email, "")
}

#[tokio::test]
async fn claims_of_unexpected_types_never_fail_a_login() {
    let p = Provider::start().await;
    // email_verified as strings, as some providers export every claim.
    p.daemon
        .create_user(&p.admin, "sam", "developer", None)
        .await;
    p.idp.login_as(IdpUser {
        email_verified: None,
        ..user("sam@example.com")
    });
    let (response, browser) = p
        .login(|b| {
            b.id_token_claims = vec![
                ("email_verified".into(), json!("true")),
                ("name".into(), json!("Sam Strings")),
            ];
        })
        .await;
    assert_eq!(
        response.status(),
        303,
        "a string \"true\" links the account"
    );
    assert_eq!(p.me(&browser).await["username"], "sam");

    // "false" as a string is false: no linking.
    p.daemon
        .create_user(&p.admin, "fay", "developer", None)
        .await;
    p.idp.login_as(IdpUser {
        email_verified: None,
        ..user("fay@example.com")
    });
    let (response, _) = p
        .login(|b| b.id_token_claims = vec![("email_verified".into(), json!("false"))])
        .await;
    assert_eq!(response.status(), 403);

    // Multi-valued name and email (LDAP-backed providers): the first value is used.
    p.idp.login_as(user("ignored@example.com"));
    let (response, browser) = p
        .login(|b| {
            b.id_token_claims = vec![
                (
                    "email".into(),
                    json!(["multi@example.com", "second@example.com"]),
                ),
                ("name".into(), json!(["Multi Valued", "Other"])),
            ];
        })
        .await;
    assert_eq!(response.status(), 303);
    let me = p.me(&browser).await;
    assert_eq!(me["email"], "multi@example.com");
    assert_eq!(me["name"], "Multi Valued");

    // A number or an object as the name: the name falls back as for a missing one.
    for (i, odd) in [json!(42), json!({"en": "Object"})].into_iter().enumerate() {
        p.idp.login_as(user(&format!("odd{i}@example.com")));
        let (response, browser) = p
            .login(|b| b.id_token_claims = vec![("name".into(), odd)])
            .await;
        assert_eq!(response.status(), 303, "name {i}");
        let me = p.me(&browser).await;
        assert_eq!(me["username"], format!("odd{i}"));
    }
    // Said once per claim: for the email and for the name.
    let noted = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains("the first is used"))
            .count()
    };
    eventually("the log to say the first value is used", || async {
        (noted(&p.daemon.logs()) >= 2).then_some(())
    })
    .await;
    assert_eq!(noted(&p.daemon.logs()), 2);
}

#[tokio::test]
async fn a_signed_userinfo_answer_is_verified() {
    let p = Provider::start().await;
    // Profile claims only in a signed userinfo answer, with and without iss/aud.
    for (i, signed) in [
        SignedUserinfo::default(),
        SignedUserinfo {
            iss: Some(p.idp.issuer()),
            aud: Some(CLIENT_ID.into()),
        },
    ]
    .into_iter()
    .enumerate()
    {
        p.idp.login_as(user(&format!("signed{i}@example.com")));
        let (response, browser) = p
            .login(|b| {
                b.claims_in_id_token = false;
                b.signed_userinfo = Some(signed);
            })
            .await;
        assert_eq!(response.status(), 303, "case {i}");
        assert_eq!(
            p.me(&browser).await["email"],
            format!("signed{i}@example.com")
        );
    }
    // A present and wrong iss or aud is refused, and so is a bad signature.
    for (name, signed) in [
        (
            "iss",
            SignedUserinfo {
                iss: Some("https://evil.example".into()),
                aud: None,
            },
        ),
        (
            "aud",
            SignedUserinfo {
                iss: None,
                aud: Some("someone-else".into()),
            },
        ),
    ] {
        p.idp.login_as(user(&format!("bad-{name}@example.com")));
        let (response, _) = p
            .login(|b| {
                b.claims_in_id_token = false;
                b.signed_userinfo = Some(signed);
            })
            .await;
        assert_eq!(response.status(), 502, "{name}");
        let html = response.text().await.unwrap();
        assert!(html.contains("<h1>Sign-in failed</h1>"), "{name}: {html}");
    }
    let causes: Vec<String> = p
        .recent_failures()
        .await
        .iter()
        .map(|f| f["cause"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        causes
            .iter()
            .any(|c| c.contains("userinfo") && c.contains("iss")),
        "{causes:?}"
    );
    assert!(causes.iter().any(|c| c.contains("aud")), "{causes:?}");
}

/// The reference an error page gave.
fn reference(html: &str) -> String {
    let at = html.find("SSO-").expect("a reference on the page");
    html[at..at + 10].to_owned()
}

#[tokio::test]
async fn error_pages_say_whether_trying_again_helps_and_the_admin_sees_why() {
    let p = Provider::start().await;
    p.idp.login_as(user("page@example.com"));

    // The provider refuses our client secret: a configuration problem.
    let (response, _) = p
        .login(|b| b.token_error = Some("invalid_client".into()))
        .await;
    assert_eq!(response.status(), 502);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<h1>Single sign-on is not set up correctly</h1>"),
        "{html}"
    );
    assert!(!html.contains("Try again."), "{html}");
    let given = reference(&html);
    let failures = p.recent_failures().await;
    let failure = &failures[0];
    assert_eq!(failure["reference"], given.as_str());
    assert_eq!(failure["kind"], "configuration");
    assert!(
        failure["cause"]
            .as_str()
            .unwrap()
            .contains("invalid_client")
    );
    assert!(failure["hint"].as_str().unwrap().contains("client_secret"));
    let trail = p
        .daemon
        .get_json_as("/api/audit?kind=login.sso&limit=1", &p.admin)
        .await;
    assert!(
        trail["events"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{trail}"
    );
    eventually("the log line with the reference", || async {
        p.daemon.logs().contains(&given).then_some(())
    })
    .await;

    // ID tokens signed with HMAC: a configuration problem, with what to change.
    let (response, _) = p
        .login(|b| b.signing = crate::support::idp::Signing::Hs256WithClientSecret)
        .await;
    let html = response.text().await.unwrap();
    assert!(html.contains("not set up correctly"), "{html}");
    assert!(
        p.recent_failures().await[0]["hint"]
            .as_str()
            .unwrap()
            .contains("RS256")
    );

    // The provider's own error, with its description shown escaped and shortened.
    let (response, _) = p
        .login(|b| {
            b.authorize_error = Some("access_denied".into());
            b.authorize_error_description = Some(format!(
                "<script>alert(1)</script> user is not assigned {}",
                "x".repeat(400)
            ));
        })
        .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; user is not assigned"),
        "{html}"
    );
    assert!(!html.contains(&"x".repeat(300)), "shortened");
    assert_eq!(p.recent_failures().await[0]["kind"], "refused");

    // No email claim: the hint is neutral for a provider that is not Entra ID.
    p.idp.login_as(IdpUser {
        email: None,
        email_verified: None,
        ..user("none@example.com")
    });
    let (response, _) = p.login(|_| {}).await;
    let html = response.text().await.unwrap();
    assert!(html.contains("<h1>Missing email claim</h1>"), "{html}");
    assert!(!html.contains("Entra") && !html.contains("Azure"), "{html}");
}

#[tokio::test]
async fn test_connection_fails_when_the_provider_signs_only_with_algorithms_we_refuse() {
    let p = Provider::start().await;
    p.idp
        .behave(|b| b.signing_algs = Some(vec!["HS256".into(), "none".into()]));
    let body = json!({"enabled": true, "client_id": CLIENT_ID, "client_secret": SECRET,
                      "issuer": p.idp.issuer()});
    let answer: Value = p
        .daemon
        .api(Method::POST, "/api/settings/sso/test", &p.admin, Some(body))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["ok"], false);
    let signing = answer["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "signing")
        .unwrap()
        .clone();
    assert_eq!(signing["ok"], false);
    let detail = signing["detail"].as_str().unwrap();
    assert!(
        detail.contains("HS256, none") && detail.contains("RS256"),
        "{detail}"
    );
}
