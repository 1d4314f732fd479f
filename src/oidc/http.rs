//! The HTTP client that talks to identity providers: timeouts, a size cap on every response,
//! and no redirects followed (an identity provider that redirects discovery or JWKS requests
//! is refused, so a hostile or misconfigured provider cannot point the server elsewhere).
//!
//! A client [confined](ProviderHttp::confined_to) to an issuer also refuses endpoints that a
//! discovery document could use to aim the server at its own network: every URL must use the
//! issuer's scheme, and a host other than the issuer's must be a DNS name over https (not an IP
//! address, not `localhost`). Providers that split hosts (Google's issuer is
//! `accounts.google.com`, its keys are on `www.googleapis.com`) keep working.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::reqwest;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Largest response read from a provider (discovery, JWKS, token, userinfo).
pub(crate) const MAX_RESPONSE_BYTES: usize = 512 * 1024;

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
    #[error(
        "the identity provider's certificate is not trusted (unknown issuer): if it uses a private certificate authority, set idp_ca_file in oidc.json to that authority's certificate (PEM), or add it to the system's store"
    )]
    Untrusted,
    #[error("the identity provider names {url} as an endpoint, which is not contacted: {reason}")]
    Refused { url: String, reason: String },
}

/// A cheap-to-clone HTTP client for identity providers.
#[derive(Debug, Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    timeout: Duration,
    /// The issuer whose endpoints alone are contacted, when confined.
    issuer: Option<url::Url>,
}

impl ProviderHttp {
    /// A client whose every request ends within `timeout`, trusting the built-in web roots
    /// and the system's certificate authorities.
    pub fn new(timeout: Duration) -> ProviderHttp {
        ProviderHttp {
            client: builder(timeout).build().unwrap_or_default(),
            timeout,
            issuer: None,
        }
    }

    /// This client, also trusting the certificate authorities in `pem` (`idp_ca_file`).
    ///
    /// Fails when `pem` holds no usable certificate.
    pub fn with_roots(&self, pem: &[u8]) -> Result<ProviderHttp, String> {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("the CA file cannot be read as PEM: {e}"))?;
        let mut builder = builder(self.timeout);
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
        Ok(ProviderHttp {
            client: builder
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {e}"))?,
            timeout: self.timeout,
            issuer: self.issuer.clone(),
        })
    }

    /// This client, refusing URLs that `issuer` could not rightly name as its endpoints (see
    /// the module doc). An issuer that is not a URL leaves it unconfined (it was validated
    /// when the configuration loaded).
    pub fn confined_to(&self, issuer: &str) -> ProviderHttp {
        ProviderHttp {
            issuer: url::Url::parse(issuer).ok(),
            ..self.clone()
        }
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
                let message = crate::report::chain(&e);
                if message.contains("UnknownIssuer") || message.contains("invalid peer certificate")
                {
                    ProviderHttpError::Untrusted
                } else {
                    ProviderHttpError::Unreachable(message)
                }
            }
        };
        let (parts, body) = request.into_parts();
        if let Some(issuer) = &self.issuer {
            let url = parts.uri.to_string();
            if let Err(reason) = endpoint_allowed(issuer, &url) {
                return Err(ProviderHttpError::Refused {
                    url: url.chars().take(200).collect(),
                    reason,
                });
            }
        }
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

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("coder-server/", env!("CARGO_PKG_VERSION")))
}

/// Whether `issuer` may have the server contact `endpoint` (see the module doc).
pub(crate) fn endpoint_allowed(issuer: &url::Url, endpoint: &str) -> Result<(), String> {
    let endpoint = url::Url::parse(endpoint).map_err(|_| "it is not a URL".to_owned())?;
    if endpoint.scheme() != issuer.scheme() {
        return Err(format!(
            "it uses {}, the issuer {}",
            endpoint.scheme(),
            issuer.scheme()
        ));
    }
    if endpoint.host() == issuer.host() {
        return Ok(());
    }
    match endpoint.host() {
        Some(url::Host::Domain(name))
            if endpoint.scheme() == "https"
                && !name.eq_ignore_ascii_case("localhost")
                && !name.to_ascii_lowercase().ends_with(".localhost") =>
        {
            Ok(())
        }
        _ => {
            Err("only the issuer's own host, or another host name over https, is contacted".into())
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_stay_on_the_issuers_host_or_public_names() {
        let google = url::Url::parse("https://accounts.google.com").unwrap();
        endpoint_allowed(&google, "https://accounts.google.com/o/oauth2/token").unwrap();
        endpoint_allowed(&google, "https://www.googleapis.com/oauth2/v3/certs").unwrap();
        for refused in [
            "http://www.googleapis.com/certs",
            "https://169.254.169.254/latest/meta-data",
            "https://127.0.0.1:8080/admin",
            "https://[::1]/x",
            "https://localhost/x",
            "https://internal.localhost/x",
            "file:///etc/passwd",
        ] {
            assert!(endpoint_allowed(&google, refused).is_err(), "{refused}");
        }
        let dev = url::Url::parse("http://127.0.0.1:9000").unwrap();
        endpoint_allowed(&dev, "http://127.0.0.1:9000/jwks").unwrap();
        assert!(
            endpoint_allowed(&dev, "http://127.0.0.1:22/").is_ok(),
            "same host"
        );
        assert!(endpoint_allowed(&dev, "http://10.0.0.1/jwks").is_err());
        assert!(endpoint_allowed(&dev, "http://example.com/jwks").is_err());
    }
}
