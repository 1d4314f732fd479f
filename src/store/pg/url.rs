//! `--database-url`: a PostgreSQL connection URL
//! (`postgres://user:password@host:port/dbname?sslmode=...`, a Unix socket as `?host=/path`),
//! parsed once, shown only with its password hidden, and turned into TLS settings.
//!
//! `sslmode` as libpq means it: `disable` (plain), `prefer` (TLS when the server offers it, the
//! certificate unchecked; the default), `require` (TLS, the certificate unchecked), `verify-full`
//! (TLS, the certificate checked against the system's authorities, or `sslrootcert=<file>`, and
//! the host name).

use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

/// A parsed database URL. Its `Debug` and `Display` never show the password.
#[derive(Clone)]
pub struct DatabaseUrl {
    config: tokio_postgres::Config,
    tls: TlsMode,
    root_cert: Option<std::path::PathBuf>,
    shown: String,
}

impl DatabaseUrl {
    /// The driver's connection settings.
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The TLS mode asked for.
    pub fn tls_mode(&self) -> TlsMode {
        self.tls
    }

    /// The TLS connector for [`DatabaseUrl::tls_mode`].
    ///
    /// Fails when `sslrootcert` cannot be read or holds no certificate.
    pub(crate) fn tls(&self) -> Result<Tls, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let config = match self.tls {
            TlsMode::VerifyFull => {
                let mut roots = rustls::RootCertStore::empty();
                match &self.root_cert {
                    Some(path) => {
                        let pem = std::fs::read(path).map_err(|e| {
                            StoreError::InvalidUrl(format!("sslrootcert {}: {e}", path.display()))
                        })?;
                        for cert in rustls_pemfile_certs(&pem) {
                            roots.add(cert).map_err(|e| {
                                StoreError::InvalidUrl(format!(
                                    "sslrootcert {}: {e}",
                                    path.display()
                                ))
                            })?;
                        }
                        if roots.is_empty() {
                            return Err(StoreError::InvalidUrl(format!(
                                "sslrootcert {} holds no certificate",
                                path.display()
                            )));
                        }
                    }
                    None => {
                        for cert in rustls_native_certs::load_native_certs().certs {
                            let _ = roots.add(cert);
                        }
                    }
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            // libpq's `prefer` and `require` encrypt without checking the certificate.
            TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
        };
        Ok(Tls(MakeRustlsConnect::new(config)))
    }
}

impl FromStr for DatabaseUrl {
    type Err = StoreError;

    /// Fails with a message that never repeats the password.
    fn from_str(text: &str) -> Result<DatabaseUrl, StoreError> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(StoreError::InvalidUrl(
                "the URL must start with postgres:// or postgresql://".into(),
            ));
        };
        if !matches!(scheme, "postgres" | "postgresql") {
            return Err(StoreError::InvalidUrl(
                "the URL must start with postgres:// or postgresql://".into(),
            ));
        }
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = base.split_once('/').unwrap_or((base, ""));
        let password = authority
            .rsplit_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password)
            .filter(|p| !p.is_empty());
        let hide = |text: &str| match password {
            Some(password) => text.replace(password, "***"),
            None => text.to_owned(),
        };
        let mut tls = TlsMode::Prefer;
        let mut root_cert = None;
        let mut kept = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "sslmode" => {
                    tls = match value.as_ref() {
                        "disable" => TlsMode::Disable,
                        "prefer" | "allow" => TlsMode::Prefer,
                        "require" => TlsMode::Require,
                        "verify-full" => TlsMode::VerifyFull,
                        other => {
                            return Err(StoreError::InvalidUrl(format!(
                                "sslmode `{}` is not one of disable, prefer, require, verify-full",
                                hide(other)
                            )));
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(std::path::PathBuf::from(value.as_ref())),
                _ => {
                    kept.append_pair(&key, &value);
                }
            }
        }
        let kept = kept.finish();
        let driver_url = if kept.is_empty() {
            format!("{scheme}://{base}")
        } else {
            format!("{scheme}://{base}?{kept}")
        };
        let shown = hide(&driver_url);
        let mut config = tokio_postgres::Config::from_str(&driver_url)
            .map_err(|e| StoreError::InvalidUrl(format!("{shown}: {}", hide(&e.to_string()))))?;
        if path.is_empty() && config.get_dbname().is_none() {
            return Err(StoreError::InvalidUrl(format!(
                "{shown}: name the database (postgres://user@host/dbname)"
            )));
        }
        config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
        });
        config.application_name("coder-server");
        config.connect_timeout(std::time::Duration::from_secs(5));
        Ok(DatabaseUrl {
            config,
            tls,
            root_cert,
            shown,
        })
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.shown).finish()
    }
}

/// The TLS connector. A Unix socket host (a path) is never a TLS peer (PostgreSQL offers no TLS
/// there), but the driver asks for a connector per host: it gets one named `localhost`.
#[derive(Clone)]
pub(crate) struct Tls(MakeRustlsConnect);

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for Tls
where
    MakeRustlsConnect: tokio_postgres::tls::MakeTlsConnect<S>,
{
    type Stream = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        let domain = if domain.is_empty() || domain.starts_with('/') {
            "localhost"
        } else {
            domain
        };
        self.0.make_tls_connect(domain)
    }
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// libpq's `require`: the channel is encrypted, the server's certificate is not checked (its
/// handshake signature still is).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let url: DatabaseUrl = "postgres://app:s3cret-pw@db.internal:5433/coder?sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(url.tls_mode(), TlsMode::Require);
        for shown in [url.to_string(), format!("{url:?}")] {
            assert!(!shown.contains("s3cret-pw"), "{shown}");
            assert!(shown.contains("db.internal:5433/coder"), "{shown}");
        }
        let bad = "postgres://app:s3cret-pw@db/coder?sslmode=verify-ca&x=1"
            .parse::<DatabaseUrl>()
            .unwrap_err()
            .to_string();
        assert!(!bad.contains("s3cret-pw"), "{bad}");
        let unknown = "postgres://app:s3cret-pw@db/coder?nonsense=1"
            .parse::<DatabaseUrl>()
            .unwrap_err()
            .to_string();
        assert!(!unknown.contains("s3cret-pw"), "{unknown}");
    }

    #[test]
    fn modes_sockets_and_mistakes() {
        let url: DatabaseUrl =
            "postgresql://app@/coder?host=/run/postgresql&sslmode=disable&port=5433"
                .parse()
                .unwrap();
        assert_eq!(url.tls_mode(), TlsMode::Disable);
        assert_eq!(url.config().get_dbname(), Some("coder"));
        let default: DatabaseUrl = "postgres://app@db/coder".parse().unwrap();
        assert_eq!(default.tls_mode(), TlsMode::Prefer);
        let full: DatabaseUrl = "postgres://app@db/coder?sslmode=verify-full"
            .parse()
            .unwrap();
        assert_eq!(full.tls_mode(), TlsMode::VerifyFull);
        assert!(full.tls().is_ok());
        for bad in ["mysql://app@db/coder", "postgres://app@db", "not a url"] {
            assert!(bad.parse::<DatabaseUrl>().is_err(), "{bad}");
        }
    }
}
