//! A malicious (or just canned) CoderFlow server for the `coder` client's tests: each route
//! answers what the test set, over plain HTTP or TLS with a certificate from a test CA made at
//! test time. It records every request, so a test can assert what the client sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned answer: status and JSON body.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(body: Value) -> Answer {
        Answer { status: 200, body }
    }

    pub fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            body: serde_json::json!({"error": code, "message": message}),
        }
    }
}

/// A request the client made: method, path, and the `Authorization` header.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Routes {
    answers: HashMap<String, Answer>,
    seen: Vec<Seen>,
}

/// A server answering `"METHOD /path"` with what [`HostileServer::answer`] set; unknown routes
/// get 404.
#[derive(Clone)]
pub struct HostileServer {
    pub url: String,
    routes: Arc<Mutex<Routes>>,
}

/// A test certificate authority and a server certificate for 127.0.0.1 signed by it.
pub struct TestCa {
    /// The CA certificate, PEM: what a client must trust.
    pub ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "CoderFlow test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
        TestCa {
            ca_pem: ca_cert.pem(),
            server: Arc::new(config),
        }
    }
}

impl HostileServer {
    /// A plain-HTTP server on 127.0.0.1.
    pub async fn start() -> HostileServer {
        HostileServer::start_with(None).await
    }

    /// An HTTPS server on 127.0.0.1 whose certificate `ca` signed.
    pub async fn start_tls(ca: &TestCa) -> HostileServer {
        HostileServer::start_with(Some(ca.server.clone())).await
    }

    async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = HostileServer {
            url: format!("{scheme}://127.0.0.1:{port}"),
            routes: Arc::default(),
        };
        let routes = server.routes.clone();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let routes = routes.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, routes).await;
                            }
                        }
                        None => serve(stream, routes).await,
                    }
                });
            }
        });
        server
    }

    /// Answers `route` (`"POST /api/auth/device/code"`) with `answer` from now on.
    pub fn answer(&self, route: &str, answer: Answer) {
        self.routes
            .lock()
            .unwrap()
            .answers
            .insert(route.to_owned(), answer);
    }

    /// The requests made so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.routes.lock().unwrap().seen.clone()
    }

    /// How many requests went to `route`.
    pub fn count(&self, route: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| format!("{} {}", s.method, s.path) == route)
            .count()
    }
}

/// Answers one request (then closes): enough for the client, which opens a new connection
/// when the old one is closed.
async fn serve(mut stream: impl AsyncRead + AsyncWrite + Unpin, routes: Arc<Mutex<Routes>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let mut length = 0;
    let mut authorization = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = {
        let mut routes = routes.lock().unwrap();
        routes.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            authorization,
        });
        routes
            .answers
            .get(&format!("{method} {path}"))
            .cloned()
            .unwrap_or_else(|| Answer::error(404, "not_found", "no such route"))
    };
    let body = answer.body.to_string();
    let response = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        answer.status,
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
