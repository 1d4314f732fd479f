//! A scripted browser: cookies kept, redirects not followed, hidden form fields read from the
//! HTML, so tests walk the pages exactly as a person's browser would.

use reqwest::redirect::Policy;

/// One browser profile (its own cookie jar) against one daemon.
pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// `GET path`, asserting 200; the HTML.
    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    /// Posts a form as the page would (with its `Origin`).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("origin", &self.base)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Signs in through the login form; the answer to the POST.
    pub async fn login_form(&self, username: &str, password: &str) -> reqwest::Response {
        let html = self.page("/login").await;
        let csrf = hidden_input(&html, "csrf_token").expect("the login form has a CSRF token");
        self.post_form(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf_token", &csrf),
                ("return_to", "/"),
            ],
        )
        .await
    }

    /// Signs in and asserts it worked.
    pub async fn sign_in(&self, username: &str, password: &str) {
        let response = self.login_form(username, password).await;
        assert_eq!(response.status(), 303, "sign in as {username}");
    }

    /// Opens the device confirm page of `user_code` and presses `action` (approve or deny).
    pub async fn decide_device(&self, user_code: &str, action: &str) -> reqwest::Response {
        let html = self.page(&format!("/device?user_code={user_code}")).await;
        assert!(html.contains(user_code), "the confirm page shows the code");
        let csrf = hidden_input(&html, "csrf_token").unwrap();
        self.post_form(
            &format!("/device/{action}"),
            &[("user_code", user_code), ("csrf_token", &csrf)],
        )
        .await
    }

    /// The CSRF token of the signed-in session (from the page's meta tag).
    pub async fn csrf(&self) -> String {
        let html = self.page("/").await;
        meta_content(&html, "csrf-token").expect("a signed-in page has a CSRF token")
    }
}

/// The `value` of the hidden input named `name` in `html`.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The `content` of `<meta name="{name}">` in `html`.
pub fn meta_content(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("<meta name=\"{name}\" content=\""))?;
    let rest = &html[at + name.len() + 23..];
    Some(rest[..rest.find('"')?].to_owned()).filter(|v| !v.is_empty())
}

/// The `Location` header of a redirect.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Every `Set-Cookie` header of a response.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}
