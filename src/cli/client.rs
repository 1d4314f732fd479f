//! The `coder` client's one HTTP client for a CoderFlow server: typed calls, JSON errors
//! (`{"error","message"}`) turned into [`ApiFailure`].
//!
//! Trust: the built-in web roots, the operating system's CA store (`SSL_CERT_FILE` and
//! `SSL_CERT_DIR` honoured), and a profile's `--ca-file`. A certificate that none of them
//! vouches for fails with [`ApiFailure::Untrusted`], which says how to trust a private CA.
//! Everything a server says in an error is cleaned of control characters before it can be
//! printed (see [`super::text`]).

use std::time::Duration;

use openidconnect::reqwest;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use std::path::Path;

use anyhow::Context;

use super::text;
use crate::vocab::{ErrorCode, UserView};

/// How long one request to the server may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A failed call: the server's error code and message, or why it could not be reached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiFailure {
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error(
        "the certificate of {server} is not trusted ({reason}). If the server uses a private certificate authority, pass --ca-file PATH (kept in the profile) or add the authority to the system's store (SSL_CERT_FILE and SSL_CERT_DIR are honoured)"
    )]
    Untrusted { server: String, reason: String },
    #[error("{message}")]
    Server {
        status: u16,
        code: String,
        message: String,
        /// The whole error body (a `slow_down` carries `interval`).
        body: Value,
    },
}

impl ApiFailure {
    /// The server's error code, if the server answered one this client knows.
    pub(crate) fn code(&self) -> Option<ErrorCode> {
        match self {
            ApiFailure::Server { code, .. } => code.parse().ok(),
            ApiFailure::Unreachable { .. } | ApiFailure::Untrusted { .. } => None,
        }
    }
}

/// The public SSO configuration.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PublicConfig {
    pub sso_enabled: bool,
    pub display_name: String,
}

/// The answer to a device code request (RFC 8628).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// A key handed out by a login.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IssuedKey {
    pub api_key: String,
    #[serde(default)]
    pub key_id: Option<String>,
    pub user: UserView,
}

/// A key as listed.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ListedKey {
    pub id: String,
    pub prefix: String,
    /// RFC 3339; `None`: never (or a server from before key lifetimes).
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A client for one server.
pub(crate) struct ServerClient {
    base: String,
    http: reqwest::Client,
    api_key: Option<String>,
}

impl ServerClient {
    /// A client for `base`, trusting `ca_file`'s authorities besides the built-in and system
    /// ones.
    ///
    /// Fails when `ca_file` cannot be read or holds no certificate.
    pub(crate) fn new(
        base: &str,
        api_key: Option<String>,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<ServerClient> {
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("coder/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(ServerClient {
            base: base.trim_end_matches('/').to_owned(),
            http: builder.build().context("cannot set up the HTTP client")?,
            api_key,
        })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ApiFailure> {
        let unreachable = |e: reqwest::Error| {
            let reason = text::clean(&crate::report::chain(&e), 500);
            if reason.contains("invalid peer certificate") || reason.contains("UnknownIssuer") {
                ApiFailure::Untrusted {
                    server: self.base.clone(),
                    reason: "unknown issuer".into(),
                }
            } else {
                ApiFailure::Unreachable {
                    server: self.base.clone(),
                    reason,
                }
            }
        };
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        let text = if bytes.is_empty() {
            "null".as_bytes()
        } else {
            &bytes[..]
        };
        if status.is_success() {
            // serde's text can quote what the server sent: only where it stopped is kept.
            return serde_json::from_slice(text).map_err(|e| ApiFailure::Unreachable {
                server: self.base.clone(),
                reason: format!(
                    "the answer is not what a CoderFlow server sends (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            });
        }
        let body: Value = serde_json::from_slice(text).unwrap_or(Value::Null);
        let code = text::short(body["error"].as_str().unwrap_or("http_error"));
        let message = body["message"].as_str().map_or_else(
            || format!("the server answered {status}"),
            |m| text::clean(m, 500),
        );
        Err(ApiFailure::Server {
            status: status.as_u16(),
            code,
            message,
            body,
        })
    }

    /// `GET /api/auth/oidc/config`.
    pub(crate) async fn public_config(&self) -> Result<PublicConfig, ApiFailure> {
        self.call(reqwest::Method::GET, "/api/auth/oidc/config", None)
            .await
    }

    /// `POST /api/auth/device/code`.
    pub(crate) async fn device_code(&self, client_name: &str) -> Result<DeviceCode, ApiFailure> {
        self.call(
            reqwest::Method::POST,
            "/api/auth/device/code",
            Some(json!({ "client_name": client_name })),
        )
        .await
    }

    /// `POST /api/auth/device/token`.
    pub(crate) async fn device_token(&self, device_code: &str) -> Result<IssuedKey, ApiFailure> {
        self.call(
            reqwest::Method::POST,
            "/api/auth/device/token",
            Some(json!({ "device_code": device_code })),
        )
        .await
    }

    /// `POST /api/auth/login`.
    pub(crate) async fn password_login(
        &self,
        username: &str,
        password: &str,
        key_name: &str,
    ) -> Result<IssuedKey, ApiFailure> {
        self.call(
            reqwest::Method::POST,
            "/api/auth/login",
            Some(json!({ "username": username, "password": password, "key_name": key_name })),
        )
        .await
    }

    /// `GET /api/me`.
    pub(crate) async fn me(&self) -> Result<UserView, ApiFailure> {
        self.call(reqwest::Method::GET, "/api/me", None).await
    }

    /// `GET /api/keys`.
    pub(crate) async fn keys(&self) -> Result<Vec<ListedKey>, ApiFailure> {
        #[derive(Deserialize)]
        struct Keys {
            keys: Vec<ListedKey>,
        }
        let keys: Keys = self.call(reqwest::Method::GET, "/api/keys", None).await?;
        Ok(keys.keys)
    }

    /// `DELETE /api/keys/{id}`.
    pub(crate) async fn revoke_key(&self, id: &str) -> Result<(), ApiFailure> {
        let _: Value = self
            .call(reqwest::Method::DELETE, &format!("/api/keys/{id}"), None)
            .await?;
        Ok(())
    }
}
