//! "Check with my account" (contract section 8): an SSO login started by a server_admin with
//! `GET /auth/oidc/login?preview=1` ends on a page that shows the claims the provider sent and
//! what the saved configuration decides (allowed or the refusing rule, the account, the
//! access), without signing anyone in or changing anything. It is how an operator sets up
//! claim locations and a role mapping without guessing. Never a token or a secret is shown: the
//! claims are the ID token's payload and userinfo's answer.

use warp::http::StatusCode;
use warp::reply::Response;

use super::page::{Page, error_page, escape};
use super::session::{BrowserRequest, page_session};
use crate::auth::permission::{Permission, permits};
use crate::auth::provision::{VerifiedIdentity, preview};
use crate::setup::config::OidcConfig;
use crate::state::AppState;

/// The preview page of `identity` for `admin`, who started it: still signed in in this browser
/// as a server_admin, or nothing is shown.
pub(crate) async fn preview_page(
    state: &AppState,
    request: &BrowserRequest,
    admin: &str,
    config: &OidcConfig,
    identity: &VerifiedIdentity,
) -> Response {
    let session = match page_session(state, request).await {
        Ok(Some(session))
            if session.user.username == admin
                && permits(&session.user, Permission::ServerAdmin) =>
        {
            session
        }
        Ok(_) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "This check was started by a server administrator who is no longer signed in in this browser.",
                "Sign in as a server administrator and start the check again from Settings → Single Sign-On.",
                None,
            );
        }
        Err(page) => return *page,
    };
    let decided = match preview(&state.store, config, identity).await {
        Ok(decided) => decided,
        Err(e) => return super::auth::store_unavailable(e).response(),
    };
    tracing::info!(by = %admin, refused = decided.refused.as_deref().unwrap_or(""), "SSO preview shown");
    let row = |label: &str, value: &str| {
        format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape(label),
            escape(value)
        )
    };
    let verdict = match &decided.refused {
        None => format!(
            "<p class=\"banner banner-success\" id=\"preview-verdict\" data-allowed=\"true\">Allowed: this account {} <strong>{}</strong>.</p>",
            escape(decided.action),
            escape(decided.username.as_deref().unwrap_or(""))
        ),
        Some(reason) => format!(
            "<p class=\"banner banner-error\" id=\"preview-verdict\" data-allowed=\"false\">Refused: {}</p>",
            escape(reason)
        ),
    };
    let claims = serde_json::to_string_pretty(&identity.claims).unwrap_or_default();
    let body = format!(
        "<section class=\"card\"><h1>Check with my account</h1>\
         <p class=\"muted\">What the saved SSO configuration decides for the account you just signed in with at the identity provider. Nobody was signed in and nothing was changed.</p>\
         {verdict}\
         <table class=\"kv\" id=\"preview-decision\">{rows}</table>\
         <h2>Claims received</h2><p class=\"muted\">From the ID token, completed by userinfo. Use these names in email_claim, name_claim, username_claim, groups_claim and required_claims (a JSON Pointer such as /realm_access/roles reaches nested claims).</p>\
         <pre id=\"preview-claims\" class=\"code\">{claims}</pre>\
         <a class=\"btn btn-primary\" href=\"/settings/sso\">Back to the settings</a></section>",
        rows = [
            row("Issuer", &identity.issuer),
            row("Subject (sub)", &identity.subject),
            row("Email", decided.email.as_deref().unwrap_or("(none)")),
            row(
                "Email verified",
                &identity
                    .email_verified
                    .map_or_else(|| "(not sent)".to_owned(), |v| v.to_string()),
            ),
            row("Name", decided.name.as_deref().unwrap_or("(none)")),
            row("Username", decided.username.as_deref().unwrap_or("(none)")),
            row("Access", decided.access.as_deref().unwrap_or("(none)")),
            row("Groups", &decided.groups.join(", ")),
        ]
        .concat(),
        claims = escape(&claims),
    );
    Page {
        title: "Check with my account",
        name: "sso-preview",
        session: Some(&session),
        body,
        script: false,
    }
    .respond(StatusCode::OK)
}
