//! The HTTP client that talks to identity providers: timeouts, a size cap on every response,
//! and no redirects followed (an identity provider that redirects discovery or JWKS requests
//! is refused, so a hostile or misconfigured provider cannot point the server elsewhere).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::reqwest;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Largest response read from a provider (discovery, JWKS, token, userinfo).
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// Why a request to the identity provider failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderHttpError {
    #[error("cannot reach the identity provider: {0}")]
    Unreachable(String),
    #[error("the identity provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the identity provider answered with a redirect to {0}; redirects are not followed")]
    Redirect(String),
    #[error("the identity provider's answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

/// A cheap-to-clone HTTP client for identity providers.
#[derive(Debug, Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    timeout: Duration,
}

impl ProviderHttp {
    /// A client whose every request ends within `timeout`.
    pub fn new(timeout: Duration) -> ProviderHttp {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("coder-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        ProviderHttp { client, timeout }
    }

    /// The timeout of each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, ProviderHttpError> {
        let describe = |e: reqwest::Error| {
            if e.is_timeout() {
                ProviderHttpError::Timeout(self.timeout)
            } else {
                // Only the kind of failure: the URL is the provider's, not a secret, but the
                // request could carry one in its body.
                let mut message = e.to_string();
                if let Some(source) = std::error::Error::source(&e) {
                    message = format!("{message}: {source}");
                }
                ProviderHttpError::Unreachable(message)
            }
        };
        let (parts, body) = request.into_parts();
        let mut response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        if response.status().is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(no location)")
                .chars()
                .take(200)
                .collect();
            return Err(ProviderHttpError::Redirect(to));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err(ProviderHttpError::TooLarge);
        }
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ProviderHttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| ProviderHttpError::Unreachable(e.to_string()))
    }
}

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = ProviderHttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<HttpResponse, ProviderHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
