//! Server-rendered HTML: escaping, the one layout every page shares, and error pages.
//!
//! Pages load only same-origin assets (`/assets/...`), so the `Content-Security-Policy`
//! `default-src 'self'` holds; no inline script or style is ever written.

use warp::Reply;
use warp::http::StatusCode;
use warp::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use warp::reply::Response;

use super::session::Session;
use crate::auth::{Permission, permission::permits};

/// `text` with the five HTML-special characters escaped, safe in text and quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes `text` for a query-string value.
pub(crate) fn query_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A page to render.
pub(crate) struct Page<'a> {
    /// `<title>`, before " · CoderFlow".
    pub title: &'a str,
    /// Names the body class (`page-<name>`) and the page script (`/assets/<name>.js`).
    pub name: &'a str,
    /// The signed-in browser, for the navigation and the CSRF token.
    pub session: Option<&'a Session>,
    /// Already escaped HTML of `<main>`.
    pub body: String,
    /// Whether `/assets/app.js` and the page script load.
    pub script: bool,
}

impl Page<'_> {
    /// The full HTML document.
    pub(crate) fn render(&self) -> String {
        let csrf = self.session.map_or("", |s| s.record.csrf_token.as_str());
        let nav = self.session.map(nav).unwrap_or_default();
        let scripts = if self.script {
            format!(
                "<script src=\"/assets/app.js\"></script><script src=\"/assets/{}.js\"></script>",
                escape(self.name)
            )
        } else {
            String::new()
        };
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · CoderFlow</title><link rel=\"stylesheet\" href=\"/assets/app.css\">\
             <meta name=\"csrf-token\" content=\"{csrf}\"></head>\
             <body class=\"page-{name}\"><header class=\"topbar\"><a class=\"brand\" href=\"/\">CoderFlow</a>{nav}</header>\
             <main id=\"main\" class=\"container\">{body}</main>{scripts}</body></html>",
            title = escape(self.title),
            csrf = escape(csrf),
            name = escape(self.name),
            body = self.body,
        )
    }

    /// The page as a response with `status`.
    pub(crate) fn respond(&self, status: StatusCode) -> Response {
        html_response(status, self.render())
    }
}

fn nav(session: &Session) -> String {
    let admin_links = if permits(&session.user, Permission::ServerAdmin) {
        "<a href=\"/settings/sso\">Single Sign-On</a><a href=\"/people\">People &amp; Access</a><a href=\"/audit\">Audit</a>"
    } else {
        ""
    };
    format!(
        "<nav class=\"topnav\" aria-label=\"Main\">{admin_links}<span class=\"whoami\">{user}</span>\
         <form method=\"post\" action=\"/logout\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"btn btn-link\">Sign out</button></form></nav>",
        user = escape(&session.user.username),
        csrf = escape(&session.record.csrf_token),
    )
}

/// An HTML response.
pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = warp::reply::with_status(warp::reply::html(html), status).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// An error page: what happened, what to do, and a way back to `/login`.
pub(crate) fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    what_to_do: &str,
    session: Option<&Session>,
) -> Response {
    let body = format!(
        "<section class=\"card auth-card\"><h1>{}</h1><p class=\"lead\">{}</p><p class=\"muted\">{}</p>\
         <a class=\"btn btn-primary\" href=\"/login\">Back to sign in</a></section>",
        escape(title),
        escape(message),
        escape(what_to_do)
    );
    Page {
        title,
        name: "error",
        session,
        body,
        script: false,
    }
    .respond(status)
}

/// A 303 to `location` (a path of ours), setting `cookies`.
pub(crate) fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response =
        warp::reply::with_status(warp::reply(), StatusCode::SEE_OTHER).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = location.parse() {
        headers.insert(LOCATION, value);
    }
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            headers.append(SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            query_escape("/device?user_code=A B&x"),
            "%2Fdevice%3Fuser_code%3DA+B%26x"
        );
    }

    #[test]
    fn pages_load_only_our_own_assets() {
        let html = Page {
            title: "T<",
            name: "settings",
            session: None,
            body: "<p>b</p>".into(),
            script: true,
        }
        .render();
        assert!(html.contains("<title>T&lt; · CoderFlow</title>"));
        assert!(html.contains("src=\"/assets/settings.js\""));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script>") && !html.contains("style="));
    }
}
