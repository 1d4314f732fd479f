//! Browser sign-in through the real pages: the login form, CSRF, the session cookie, rotation,
//! sign-out, and local login following `allow_local_auth` live.

use serde_json::json;

use crate::support::browser::{Browser, hidden_input, location, set_cookies};
use crate::support::{Setup, save_atomic};

fn oidc(allow_local_auth: bool) -> String {
    json!({
        "enabled": true,
        "display_name": "Sign in with Acme <SSO>",
        "client_id": "c",
        "client_secret": "s",
        "issuer": "http://127.0.0.1:9/",
        "allow_local_auth": allow_local_auth,
    })
    .to_string()
}

#[tokio::test]
async fn login_form_starts_a_session_with_the_contract_cookie_and_rotates_it() {
    let daemon = Setup::git().start();
    let browser = Browser::new(&daemon.base);
    let response = browser.get("/").await;
    assert_eq!(response.status(), 303, "signed-out home sends to login");
    assert_eq!(location(&response), "/login?return_to=%2F");

    let html = browser.page("/login?return_to=/people").await;
    assert!(html.contains("id=\"local-login-form\""));
    assert!(!html.contains("id=\"sso-login\""), "SSO is off");
    assert_eq!(hidden_input(&html, "return_to").unwrap(), "/people");

    let password = daemon.admin_password();
    let csrf = hidden_input(&html, "csrf_token").unwrap();
    let response = browser
        .post_form(
            "/login",
            &[
                ("username", "admin"),
                ("password", &password),
                ("csrf_token", &csrf),
                ("return_to", "/people"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/people");
    let cookies = set_cookies(&response);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("cf_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    assert!(
        !session.contains("Secure"),
        "http public URL: no Secure flag"
    );
    let first_id = session.split(';').next().unwrap().to_owned();

    let me: serde_json::Value = browser.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["username"], "admin");
    let people = browser.page("/people").await;
    assert!(people.contains("<span class=\"whoami\">admin</span>"));

    // Rotation: a session cookie the browser carried into the login (planted by an attacker,
    // say) is ended, and the login gets a new one.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = raw.get(daemon.url("/login")).send().await.unwrap();
    let csrf_cookie = set_cookies(&page)
        .into_iter()
        .find(|c| c.starts_with("cf_login_csrf="))
        .unwrap();
    let csrf_cookie = csrf_cookie.split(';').next().unwrap().to_owned();
    let csrf = hidden_input(&page.text().await.unwrap(), "csrf_token").unwrap();
    let response = raw
        .post(daemon.url("/login"))
        .header("cookie", format!("{csrf_cookie}; {first_id}"))
        .form(&[
            ("username", "admin"),
            ("password", password.as_str()),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let second = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("cf_session="))
        .unwrap();
    assert_ne!(second.split(';').next().unwrap(), first_id);
    let stale = raw
        .get(daemon.url("/api/me"))
        .header("cookie", &first_id)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401, "the pre-login session is gone");

    // A request that sends an Authorization header is judged by it alone, never by a valid
    // session cookie beside it.
    let signed_in = second.split(';').next().unwrap().to_owned();
    let me = |authorization: Option<&'static [u8]>| {
        let mut request = raw.get(daemon.url("/api/me")).header("cookie", &signed_in);
        if let Some(value) = authorization {
            let value = reqwest::header::HeaderValue::from_bytes(value).unwrap();
            request = request.header("authorization", value);
        }
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(me(None).await, 200);
    for bad in [
        &b"Bearer cf_not-a-key-at-all-but-long-enough-to-look-like-one0"[..],
        b"Basic YWRtaW46cGFzc3dvcmQ=",
        b"Bearer \xff\xfe",
        b"",
    ] {
        assert_eq!(
            me(Some(bad)).await,
            401,
            "{:?} beside a valid cookie",
            String::from_utf8_lossy(bad)
        );
    }
}

#[tokio::test]
async fn session_cookies_are_secure_behind_an_https_public_url() {
    let daemon = Setup::git().start_with(&["--public-url", "https://code.example.com"]);
    let browser = Browser::new(&daemon.base);
    let response = browser.get("/login").await;
    let cookies = set_cookies(&response);
    assert!(!cookies.is_empty());
    assert!(
        cookies
            .iter()
            .all(|c| c.contains("; Secure") && c.starts_with("__Host-cf_") && c.contains("Path=/")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn cookie_values_a_browser_sends_are_never_adopted() {
    let daemon = Setup::git().start();
    let planted = "planted-by-an-attacker-planted-by-attacker1";
    for path in ["/login"] {
        let response = daemon
            .http
            .get(daemon.url(path))
            .header("cookie", format!("cf_login_csrf={planted}"))
            .send()
            .await
            .unwrap();
        let cookies = set_cookies(&response);
        let csrf = cookies
            .iter()
            .find(|c| c.starts_with("cf_login_csrf="))
            .expect("a login CSRF cookie");
        assert!(!csrf.contains(planted), "{csrf}");
        let html = response.text().await.unwrap();
        assert!(!html.contains(planted), "the form's token is fresh too");
    }
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_token_and_our_origin() {
    let daemon = Setup::git().start();
    let password = daemon.admin_password();
    let browser = Browser::new(&daemon.base);
    let html = browser.page("/login").await;
    let csrf = hidden_input(&html, "csrf_token").unwrap();
    let fields = |token: &str| {
        vec![
            ("username", "admin".to_owned()),
            ("password", password.clone()),
            ("csrf_token", token.to_owned()),
        ]
    };
    let wrong = browser
        .post_form(
            "/login",
            &as_refs(&fields("forged-token-forged-token-forged-token-123")),
        )
        .await;
    assert_eq!(wrong.status(), 403);
    assert!(wrong.text().await.unwrap().contains("expired"));
    let cross_site = browser
        .http
        .post(browser.url("/login"))
        .header("origin", "https://evil.example")
        .form(&as_refs(&fields(&csrf)))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    // Another browser without the cookie cannot replay the token.
    let other = Browser::new(&daemon.base);
    let replay = other.post_form("/login", &as_refs(&fields(&csrf))).await;
    assert_eq!(replay.status(), 403);
    // Every form carries a fresh token (a refused post renders a new one): the old one is dead.
    let stale = browser.post_form("/login", &as_refs(&fields(&csrf))).await;
    assert_eq!(stale.status(), 403);
    let html = browser.page("/login").await;
    let csrf = hidden_input(&html, "csrf_token").unwrap();
    // Chromium sends `Origin: null` on form posts under `Referrer-Policy: no-referrer`: the
    // token decides.
    let ok = browser
        .http
        .post(browser.url("/login"))
        .header("origin", "null")
        .form(&as_refs(&fields(&csrf)))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
}

fn as_refs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn cookie_requests_that_change_things_need_the_csrf_header_or_our_origin() {
    let daemon = Setup::git().start();
    let browser = Browser::new(&daemon.base);
    browser.sign_in("admin", &daemon.admin_password()).await;
    let post_key = |origin: Option<&str>, token: Option<&str>| {
        let mut request = browser
            .http
            .post(browser.url("/api/keys"))
            .json(&json!({"name": "from the page"}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    let bare = post_key(None, None).await.unwrap();
    assert_eq!(bare.status(), 403);
    let body: serde_json::Value = bare.json().await.unwrap();
    assert_eq!(body["error"], "csrf_failed");
    assert_eq!(
        post_key(Some("https://evil.example"), None)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(post_key(None, Some("wrong")).await.unwrap().status(), 403);
    let csrf = browser.csrf().await;
    assert_eq!(post_key(None, Some(&csrf)).await.unwrap().status(), 201);
    assert_eq!(
        post_key(Some(&daemon.base), None).await.unwrap().status(),
        201
    );
    let keys: serde_json::Value = browser.get("/api/keys").await.json().await.unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn logout_ends_the_session_and_needs_the_form_token() {
    let daemon = Setup::git().start();
    let browser = Browser::new(&daemon.base);
    browser.sign_in("admin", &daemon.admin_password()).await;
    let csrf = browser.csrf().await;
    let forged = browser
        .http
        .post(browser.url("/logout"))
        .form(&[("csrf_token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        browser.get("/api/me").await.status(),
        200,
        "still signed in"
    );
    let response = browser.post_form("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login");
    assert_eq!(browser.get("/api/me").await.status(), 401);
}

#[tokio::test]
async fn wrong_passwords_re_show_the_form_with_a_message() {
    let daemon = Setup::git().start();
    let browser = Browser::new(&daemon.base);
    let response = browser.login_form("admin", "not the password").await;
    assert_eq!(response.status(), 401);
    let html = response.text().await.unwrap();
    assert!(html.contains("wrong username or password"));
    assert!(html.contains("id=\"local-login-form\""));
    assert!(
        !html.contains("not the password"),
        "the password is not echoed"
    );
}

#[tokio::test]
async fn the_login_page_follows_allow_local_auth_and_sso_live() {
    let setup = Setup::git();
    let path = setup.oidc_path();
    let daemon = setup.start();
    let browser = Browser::new(&daemon.base);
    let password = daemon.admin_password();
    save_atomic(&path, &oidc(false));
    daemon
        .wait_for_display_name("Sign in with Acme <SSO>")
        .await;
    let html = browser.page("/login").await;
    assert!(!html.contains("local-login-form"), "no password form");
    assert!(html.contains("id=\"sso-login\""));
    assert!(
        html.contains("Sign in with Acme &lt;SSO&gt;"),
        "label escaped"
    );
    assert!(html.contains("Local login is disabled"));
    // A form kept open from before is refused too.
    let csrf = "x".repeat(43);
    let refused = browser
        .http
        .post(browser.url("/login"))
        .header("cookie", format!("cf_login_csrf={csrf}"))
        .form(&[
            ("username", "admin"),
            ("password", &password),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("disabled"));

    save_atomic(&path, &oidc(true));
    crate::support::eventually("local login back", || async {
        let html = browser.page("/login").await;
        html.contains("local-login-form").then_some(())
    })
    .await;
    browser.sign_in("admin", &password).await;
}

#[tokio::test]
async fn pages_answer_signed_out_browsers_with_a_sign_in_redirect_and_others_with_403() {
    let daemon = Setup::git().start();
    let admin = daemon.admin_key().await;
    daemon
        .create_user(&admin, "dev", "developer", Some("developer-password"))
        .await;
    let browser = Browser::new(&daemon.base);
    for path in ["/people", "/settings/sso"] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert!(location(&response).starts_with("/login?return_to=%2F"));
    }
    browser.sign_in("dev", "developer-password").await;
    for path in ["/people", "/settings/sso"] {
        assert_eq!(browser.get(path).await.status(), 403, "{path}");
    }
    let home = browser.page("/").await;
    assert!(home.contains("developer"));
    assert!(
        !home.contains("href=\"/people\""),
        "no admin links for a developer"
    );
}
