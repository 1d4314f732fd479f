//! A test OpenID Connect provider that can also misbehave on purpose.
//!
//! The relying-party promises of the contract (section 6) can only be tested against a provider
//! the test controls: one that signs with the wrong key, lies about its issuer, answers slowly,
//! goes down and comes back. [`TestIdp`] is that provider: a real HTTP server on `127.0.0.1`
//! with discovery, JWKS, authorize, token and userinfo endpoints, correct by default and
//! hostile through [`Behaviour`]. It records what the relying party sent so tests can check
//! the requests (PKCE, nonce, `client_secret_basic` encoding) as well as the outcome.
//!
//! The module is self-contained (no other test support code) so `examples/dev_idp.rs` can
//! include the same file and run it as a local provider for trying SSO by hand.

// Shared by the integration tests and `examples/dev_idp.rs`; each uses only a part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngExt as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use warp::Filter as _;
use warp::Reply as _;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::hyper::body::Bytes;
use warp::reply::Response;

/// The fixed test keys (private PEM, public JWK with `n` and `e`), committed under `keys/` so
/// tokens are reproducible and no test pays for RSA key generation. Key `g % 3` signs while
/// key generation `g` is published (see [`TestIdp::rotate_key`]).
const KEYS: [(&str, &str); 3] = [
    (
        include_str!("keys/idp-key-0.pem"),
        include_str!("keys/idp-key-0.jwk.json"),
    ),
    (
        include_str!("keys/idp-key-1.pem"),
        include_str!("keys/idp-key-1.jwk.json"),
    ),
    (
        include_str!("keys/idp-key-2.pem"),
        include_str!("keys/idp-key-2.jwk.json"),
    ),
];

/// Lifetime of issued access tokens, as announced in `expires_in`.
const ACCESS_TOKEN_TTL_SECS: u64 = 3600;
/// Size of the JWKS answer when [`Behaviour::huge_jwks`] is set: above the 2 MiB a relying
/// party should accept.
const HUGE_JWKS_PADDING: usize = 2 * 1024 * 1024 + 512 * 1024;
/// How long [`TestIdp::restart`] keeps trying to bind the old port again.
const REBIND_DEADLINE: Duration = Duration::from_secs(10);

/// A person the provider signs in: the claims it asserts about them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdpUser {
    /// Subject identifier; the relying party links identities by (issuer, `sub`).
    pub sub: String,
    /// `email` claim; `None` leaves it out (to test "Missing email claim").
    pub email: Option<String>,
    /// `email_verified` claim; `Some(false)` must stop email matching of existing users.
    pub email_verified: Option<bool>,
    /// `name` claim, the display name the relying party keeps up to date.
    pub name: Option<String>,
}

impl IdpUser {
    /// A user with a verified email and a `sub` derived from it, as the sign-in form makes:
    /// the shortest way to get a realistic user.
    pub fn from_email(email: &str, name: &str) -> IdpUser {
        IdpUser {
            sub: sub_for_email(email),
            email: Some(email.to_owned()),
            email_verified: Some(true),
            name: (!name.is_empty()).then(|| name.to_owned()),
        }
    }
}

/// How the ID token is signed: the correct way, or one of the ways a relying party must refuse
/// (or, for [`Signing::UnknownKid`] after a rotation, must recover from by refetching the JWKS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Signing {
    /// RS256 with the published key and its `kid`.
    #[default]
    Good,
    /// A correctly made token whose signature bytes were altered.
    BadSignature,
    /// Header `alg: none` and an empty signature.
    AlgNone,
    /// HS256 keyed with the client secret, labelled with the published `kid` (algorithm
    /// confusion: an RP must refuse HMAC).
    Hs256WithClientSecret,
    /// Signed by the key that [`TestIdp::rotate_key`] would publish next, with its new `kid`;
    /// it is not in the JWKS (yet).
    UnknownKid,
    /// RS256 with the published key but no `kid` in the header (the JWKS holds one key).
    NoKid,
    /// Signed by a key that is not in the JWKS, labelled with the published `kid`.
    OtherKey,
}

/// What the provider does wrong (or slowly). `Behaviour::default()` is a perfectly correct
/// provider; tests change single fields through [`TestIdp::behave`]. Changes apply to the
/// next request that reads them (ID tokens are made at the token endpoint).
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// How the ID token is signed.
    pub signing: Signing,
    /// Replaces the ID token's `iss` (the real issuer otherwise).
    pub iss: Option<String>,
    /// Replaces the ID token's `aud` (one entry is sent as a string, several as an array).
    pub aud: Option<Vec<String>>,
    /// Adds an `azp` claim.
    pub azp: Option<String>,
    /// `exp` is now plus this (default 300; negative = already expired).
    pub exp_offset_secs: i64,
    /// `iat` is now plus this (default 0; e.g. +3600 = issued in the future).
    pub iat_offset_secs: i64,
    /// ID token claims to leave out, e.g. `"iat"`, `"sub"`, `"nonce"`.
    pub omit_claims: Vec<String>,
    /// Replaces the ID token's `nonce` (the one sent to /authorize otherwise).
    pub nonce: Option<String>,
    /// Whether `email`, `email_verified` and `name` go into the ID token (default true);
    /// false = only the userinfo endpoint has them.
    pub claims_in_id_token: bool,
    /// Replaces `sub` in the userinfo answer (must make the RP refuse it).
    pub userinfo_sub: Option<String>,
    /// Replaces `issuer` in the discovery document (endpoints stay correct).
    pub discovery_issuer: Option<String>,
    /// The `iss` parameter of the authorization response (RFC 9207): `None` = the issuer,
    /// `Some(None)` = left out, `Some(Some(x))` = `x`.
    pub callback_iss: Option<Option<String>>,
    /// Sends `error=<this>` (with `state` and `iss`) back instead of a code.
    pub authorize_error: Option<String>,
    /// Delay before discovery, JWKS, token and userinfo answer (a slow provider).
    pub delay: Duration,
    /// Discovery answers 302 to another URL (which serves a valid document, so a relying party
    /// that follows redirects would wrongly succeed).
    pub redirect_discovery: bool,
    /// Discovery answers 200 with a body that is not JSON.
    pub garbage_discovery: bool,
    /// The JWKS answer is larger than 2 MiB (the real key plus padding).
    pub huge_jwks: bool,
    /// The JWKS key has no `kid` member.
    pub jwks_omit_kid: bool,
    /// The token endpoint answers 400 `{"error": <this>}`.
    pub token_error: Option<String>,
    /// The authorization response also carries an `id_token` (front channel).
    pub front_channel_id_token: bool,
    /// The ID token's `at_hash`.
    pub at_hash: AtHash,
    /// Replaces `jwks_uri` in the discovery document (a provider aiming the server elsewhere).
    pub jwks_uri: Option<String>,
    /// The discovery document announces no logout (no `end_session_endpoint`, no back-channel
    /// logout).
    pub no_logout: bool,
    /// Claims set in the ID token after the profile claims, with any JSON value (a string
    /// boolean, an array, a number, an object) as real providers send them.
    pub id_token_claims: Vec<(String, Value)>,
    /// The same for the userinfo answer.
    pub userinfo_claims: Vec<(String, Value)>,
    /// Userinfo answers `application/jwt`, signed like the ID token.
    pub signed_userinfo: Option<SignedUserinfo>,
    /// Replaces `id_token_signing_alg_values_supported` in the discovery document.
    pub signing_algs: Option<Vec<String>>,
    /// `error_description` sent with [`Behaviour::authorize_error`].
    pub authorize_error_description: Option<String>,
}

/// What a signed userinfo answer says of its issuer and audience.
#[derive(Clone, Debug, Default)]
pub struct SignedUserinfo {
    /// `iss`: `None` left out, `Some(x)` set to `x`.
    pub iss: Option<String>,
    /// `aud`: `None` left out, `Some(x)` set to `x`.
    pub aud: Option<String>,
}

/// The `at_hash` claim of the ID token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AtHash {
    /// No `at_hash`.
    #[default]
    Absent,
    /// The access token's hash, as OpenID Connect Core 3.1.3.6 defines it.
    Correct,
    /// The hash of another access token.
    Wrong,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            signing: Signing::Good,
            iss: None,
            aud: None,
            azp: None,
            exp_offset_secs: 300,
            iat_offset_secs: 0,
            no_logout: false,
            omit_claims: Vec::new(),
            nonce: None,
            claims_in_id_token: true,
            userinfo_sub: None,
            discovery_issuer: None,
            callback_iss: None,
            authorize_error: None,
            delay: Duration::ZERO,
            redirect_discovery: false,
            garbage_discovery: false,
            huge_jwks: false,
            jwks_omit_kid: false,
            token_error: None,
            front_channel_id_token: false,
            at_hash: AtHash::Absent,
            jwks_uri: None,
            id_token_claims: Vec::new(),
            userinfo_claims: Vec::new(),
            signed_userinfo: None,
            signing_algs: None,
            authorize_error_description: None,
        }
    }
}

/// One request the relying party made to `/token`, recorded before any check so tests can
/// assert on exactly what was sent (client authentication method and encoding, PKCE verifier).
#[derive(Clone, Debug, Default)]
pub struct TokenRequest {
    /// Raw `Authorization` header.
    pub authorization: Option<String>,
    /// Client id from HTTP Basic, form-urlencoding undone (RFC 6749 2.3.1).
    pub client_id: Option<String>,
    /// Client secret from HTTP Basic, form-urlencoding undone.
    pub client_secret: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// Form fields of the body (the last one wins when a name repeats).
    pub form: HashMap<String, String>,
}

/// The running provider. Dropping it stops the server.
pub struct TestIdp {
    shared: Arc<Shared>,
    addr: SocketAddr,
    running: Option<Running>,
}

/// One listening period of the server.
struct Running {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// What the request handlers share with the test.
struct Shared {
    client_id: String,
    client_secret: String,
    issuer: String,
    /// true while stopped: cuts short delayed answers so shutdown is quick.
    down: watch::Sender<bool>,
    /// Print one line per request on stderr (for the example).
    log: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    user: Option<IdpUser>,
    key_generation: usize,
    codes: HashMap<String, Grant>,
    pending: HashMap<String, HashMap<String, String>>,
    access_tokens: HashMap<String, IdpUser>,
    token_requests: Vec<TokenRequest>,
    authorize_requests: Vec<HashMap<String, String>>,
    userinfo_calls: usize,
    jwks_calls: usize,
    discovery_calls: usize,
}

/// An issued authorization code and what the token request must match.
struct Grant {
    redirect_uri: String,
    code_challenge: String,
    nonce: String,
    user: IdpUser,
}

impl TestIdp {
    /// Starts a provider on 127.0.0.1 with a free port, for one relying party `client_id`.
    pub async fn start(client_id: &str, client_secret: &str) -> TestIdp {
        TestIdp::start_on(0, client_id, client_secret).await
    }

    /// Starts a provider on 127.0.0.1:`port` (0 = any free port); the example needs a fixed
    /// port so the issuer in `oidc.json` stays valid across runs.
    pub async fn start_on(port: u16, client_id: &str, client_secret: &str) -> TestIdp {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap_or_else(|e| panic!("test IdP: cannot listen on 127.0.0.1:{port}: {e}"));
        let addr = listener
            .local_addr()
            .expect("test IdP: listener has no local address");
        let shared = Arc::new(Shared {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            issuer: format!("http://127.0.0.1:{}", addr.port()),
            down: watch::Sender::new(false),
            log: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        });
        let running = Some(serve(shared.clone(), listener));
        TestIdp {
            shared,
            addr,
            running,
        }
    }

    /// The issuer, `http://127.0.0.1:<port>` without a trailing slash; equal to discovery's
    /// `issuer` and the ID token's `iss` unless a [`Behaviour`] says otherwise.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.shared.issuer)
    }

    /// The address the provider listens on (kept across [`TestIdp::restart`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The client id the provider accepts.
    pub fn client_id(&self) -> String {
        self.shared.client_id.clone()
    }

    /// The client secret the provider accepts.
    pub fn client_secret(&self) -> String {
        self.shared.client_secret.clone()
    }

    /// An `oidc.json` object pointing at this provider (add or change fields as needed).
    pub fn oidc_config(&self) -> Value {
        json!({
            "enabled": true,
            "client_id": self.shared.client_id,
            "client_secret": self.shared.client_secret,
            "issuer": self.shared.issuer,
        })
    }

    /// Makes `/authorize` sign `user` in without asking (it answers 302 back to the relying
    /// party). The user stays signed in for later `/authorize` requests until replaced.
    pub fn login_as(&self, user: IdpUser) {
        self.state().user = Some(user);
    }

    /// Goes back to showing the sign-in form at `/authorize`.
    pub fn clear_login(&self) {
        self.state().user = None;
    }

    /// Changes how the provider (mis)behaves from the next request on.
    pub fn behave(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.state().behaviour);
    }

    /// Publishes a new signing key with a new `kid` and removes the old one from the JWKS,
    /// as a provider's key rotation does.
    pub fn rotate_key(&self) {
        self.state().key_generation += 1;
    }

    /// The `kid` of the published signing key.
    /// A compact JWS of `claims` signed the way `signing` says with the published key (for
    /// logout tokens and other hostile tokens a test makes itself).
    pub fn sign_jwt(&self, claims: &Value, signing: Signing) -> String {
        let generation = self.state().key_generation;
        sign(claims, signing, generation, &self.client_secret())
    }

    pub fn current_kid(&self) -> String {
        kid(self.state().key_generation)
    }

    /// Every request made to `/token` so far, oldest first.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state().token_requests.clone()
    }

    /// The query parameters of every `/authorize` request so far, oldest first.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.state().authorize_requests.clone()
    }

    /// How often `/userinfo` was called (it must not be after a rejected callback).
    pub fn userinfo_calls(&self) -> usize {
        self.state().userinfo_calls
    }

    /// How often `/jwks` was fetched (caching and refetch-on-unknown-kid).
    pub fn jwks_calls(&self) -> usize {
        self.state().jwks_calls
    }

    /// How often discovery was fetched (including the redirected-to document).
    pub fn discovery_calls(&self) -> usize {
        self.state().discovery_calls
    }

    /// Prints one line per request on stderr (handy when trying SSO by hand).
    pub fn log_requests(&self, on: bool) {
        self.shared.log.store(on, Ordering::Relaxed);
    }

    /// Whether the provider is currently listening.
    pub fn is_listening(&self) -> bool {
        self.running.is_some()
    }

    /// Stops listening ("provider down") but keeps all state and the port number, so
    /// [`TestIdp::restart`] can come back on the same issuer. Open keep-alive connections are
    /// closed; delayed in-flight answers are cut short with a 503. No effect when stopped.
    pub async fn stop_listening(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.shared.down.send_replace(true);
        let _ = running.shutdown.send(());
        // The listener is closed as soon as the server task sees the signal; waiting for the
        // task also waits for open connections to end, which the bound keeps from hanging.
        let _ = tokio::time::timeout(Duration::from_secs(5), running.task).await;
    }

    /// Listens again on the same address after [`TestIdp::stop_listening`] ("provider back"),
    /// with the same keys, codes, behaviour and counters. Restarts when still running.
    pub async fn restart(&mut self) {
        self.stop_listening().await;
        let start = Instant::now();
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if start.elapsed() < REBIND_DEADLINE => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => panic!("test IdP: cannot listen on {} again: {e}", self.addr),
            }
        };
        self.shared.down.send_replace(false);
        self.running = Some(serve(self.shared.clone(), listener));
    }

    /// Stops the provider for good and waits until it no longer listens.
    pub async fn stop(mut self) {
        self.stop_listening().await;
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        // Dropping `running` drops the shutdown sender, which starts a graceful shutdown.
        self.shared.down.send_replace(true);
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not make every later request panic too.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves the provider on `listener` until the returned handle's shutdown fires.
fn serve(shared: Arc<Shared>, listener: TcpListener) -> Running {
    let routes = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  body: Bytes| {
                let shared = shared.clone();
                async move {
                    let path = path.as_str().to_owned();
                    let response = handle(&shared, &method, &path, &query, &headers, &body).await;
                    if shared.log.load(Ordering::Relaxed) {
                        eprintln!("idp: {method} {path} -> {}", response.status());
                    }
                    response
                }
            },
        );
    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(
        warp::serve(routes)
            .incoming(listener)
            .graceful(async move {
                let _ = signal.await;
            })
            .run(),
    );
    Running { shutdown, task }
}

async fn handle(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    match (method.as_str(), path) {
        ("GET", "/.well-known/openid-configuration") => discovery(shared, false).await,
        ("GET", "/elsewhere/.well-known/openid-configuration") => discovery(shared, true).await,
        ("GET", "/jwks") => jwks(shared).await,
        ("GET", "/authorize") => authorize(shared, query),
        ("POST", "/authorize") => authorize_form_post(shared, body),
        ("POST", "/token") => token(shared, headers, body).await,
        ("GET" | "POST", "/userinfo") => userinfo(shared, headers).await,
        (
            _,
            "/.well-known/openid-configuration" | "/jwks" | "/authorize" | "/token" | "/userinfo",
        ) => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Sleeps `delay`, or answers 503 at once when the provider is being stopped meanwhile.
async fn slow_down(shared: &Shared, delay: Duration) -> Option<Response> {
    if delay.is_zero() {
        return None;
    }
    let mut down = shared.down.subscribe();
    tokio::select! {
        () = tokio::time::sleep(delay) => None,
        _ = down.wait_for(|down| *down) => {
            Some(text(StatusCode::SERVICE_UNAVAILABLE, "provider stopped"))
        }
    }
}

async fn discovery(shared: &Shared, redirected: bool) -> Response {
    let behaviour = {
        let mut state = shared.state();
        state.discovery_calls += 1;
        state.behaviour.clone()
    };
    if let Some(stopped) = slow_down(shared, behaviour.delay).await {
        return stopped;
    }
    if behaviour.garbage_discovery {
        return with_type(
            StatusCode::OK,
            "application/json",
            "<html>this is { not a discovery document",
        );
    }
    if behaviour.redirect_discovery && !redirected {
        let mut response = text(StatusCode::FOUND, "moved");
        let location = format!(
            "{}/elsewhere/.well-known/openid-configuration",
            shared.issuer
        );
        set_header(&mut response, header::LOCATION, &location);
        return response;
    }
    let issuer = &shared.issuer;
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": behaviour.discovery_issuer.as_deref().unwrap_or(issuer),
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": behaviour.jwks_uri.clone().unwrap_or_else(|| format!("{issuer}/jwks")),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": behaviour.signing_algs.clone().unwrap_or_else(|| vec!["RS256".into()]),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "nonce", "azp",
                "email", "email_verified", "name",
            ],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "authorization_response_iss_parameter_supported": true,
            "end_session_endpoint": (!behaviour.no_logout).then(|| format!("{issuer}/logout")),
            "backchannel_logout_supported": !behaviour.no_logout,
            "backchannel_logout_session_supported": !behaviour.no_logout,
        }),
    )
}

async fn jwks(shared: &Shared) -> Response {
    let (behaviour, generation) = {
        let mut state = shared.state();
        state.jwks_calls += 1;
        (state.behaviour.clone(), state.key_generation)
    };
    if let Some(stopped) = slow_down(shared, behaviour.delay).await {
        return stopped;
    }
    let mut key = public_jwk(generation);
    if behaviour.jwks_omit_kid {
        key.remove("kid");
    }
    let mut body = json!({ "keys": [key] });
    if behaviour.huge_jwks {
        body["padding"] = Value::String("x".repeat(HUGE_JWKS_PADDING));
    }
    json_response(StatusCode::OK, &body)
}

/// `GET /authorize`: checks the request, then signs in the `login_as` user or shows a form.
fn authorize(shared: &Shared, query: &str) -> Response {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let params: HashMap<String, String> = pairs.iter().cloned().collect();
    let (user, behaviour) = {
        let mut state = shared.state();
        state.authorize_requests.push(params.clone());
        (state.user.clone(), state.behaviour.clone())
    };
    if params.len() != pairs.len() {
        return bad_authorize("a parameter is repeated");
    }
    if let Err(problem) = check_authorize(shared, &params) {
        return bad_authorize(&problem);
    }
    if let Some(error) = &behaviour.authorize_error {
        let mut extra = vec![("error", error.as_str())];
        if let Some(description) = &behaviour.authorize_error_description {
            extra.push(("error_description", description.as_str()));
        }
        extra.push(("state", &params["state"]));
        return redirect_back(
            StatusCode::FOUND,
            &params["redirect_uri"],
            &extra,
            &behaviour,
            &shared.issuer,
        );
    }
    match user {
        Some(user) => issue_code(shared, &params, user, StatusCode::FOUND),
        None => {
            let pending = random_token();
            shared
                .state()
                .pending
                .insert(pending.clone(), params.clone());
            login_form(&params, &pending)
        }
    }
}

/// Everything the contract promises the relying party sends to `/authorize`.
fn check_authorize(shared: &Shared, params: &HashMap<String, String>) -> Result<(), String> {
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    if get("response_type") != "code" {
        return Err("response_type must be \"code\"".into());
    }
    if get("client_id") != shared.client_id {
        return Err(format!("unknown client_id {:?}", get("client_id")));
    }
    match url::Url::parse(get("redirect_uri")) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.fragment().is_none() => {}
        _ => return Err("redirect_uri must be an absolute http(s) URL".into()),
    }
    if get("state").is_empty() {
        return Err("state is missing".into());
    }
    if get("nonce").is_empty() {
        return Err("nonce is missing".into());
    }
    if get("code_challenge_method") != "S256" {
        return Err("code_challenge_method must be S256".into());
    }
    let challenge = get("code_challenge");
    if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(challenge).is_err() {
        return Err("code_challenge must be a base64url SHA-256 (43 characters)".into());
    }
    if !get("scope").split(' ').any(|scope| scope == "openid") {
        return Err("scope must contain openid".into());
    }
    Ok(())
}

/// `POST /authorize`: the sign-in form was submitted.
fn authorize_form_post(shared: &Shared, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |name: &str| form.get(name).map(String::as_str).unwrap_or("").trim();
    let Some(params) = shared.state().pending.remove(get("pending")) else {
        return bad_authorize("this sign-in form expired; start the login again");
    };
    if get("email").is_empty() {
        return bad_authorize("an email address is required");
    }
    let mut user = IdpUser::from_email(get("email"), get("name"));
    user.email_verified = Some(form.contains_key("email_verified"));
    issue_code(shared, &params, user, StatusCode::SEE_OTHER)
}

/// Issues a code for `user` and sends the browser back to the relying party.
fn issue_code(
    shared: &Shared,
    params: &HashMap<String, String>,
    user: IdpUser,
    status: StatusCode,
) -> Response {
    let code = random_token();
    let behaviour = {
        let mut state = shared.state();
        state.codes.insert(
            code.clone(),
            Grant {
                redirect_uri: params["redirect_uri"].clone(),
                code_challenge: params["code_challenge"].clone(),
                nonce: params["nonce"].clone(),
                user,
            },
        );
        state.behaviour.clone()
    };
    redirect_back(
        status,
        &params["redirect_uri"],
        &[("code", &code), ("state", &params["state"])],
        &behaviour,
        &shared.issuer,
    )
}

/// A redirect to `redirect_uri` with `params` and the RFC 9207 `iss` parameter.
fn redirect_back(
    status: StatusCode,
    redirect_uri: &str,
    params: &[(&str, &str)],
    behaviour: &Behaviour,
    issuer: &str,
) -> Response {
    let mut url = url::Url::parse(redirect_uri).expect("redirect_uri was checked");
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if behaviour.front_channel_id_token {
            query.append_pair("id_token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
        }
        match &behaviour.callback_iss {
            None => {
                query.append_pair("iss", issuer);
            }
            Some(None) => {}
            Some(Some(iss)) => {
                query.append_pair("iss", iss);
            }
        }
    }
    let mut response = text(status, "redirecting");
    set_header(&mut response, header::LOCATION, url.as_str());
    response
}

fn login_form(params: &HashMap<String, String>, pending: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Test IdP sign-in</title></head>\n\
         <body style=\"font-family: sans-serif; max-width: 30em; margin: 3em auto\">\n\
         <h1>Test IdP</h1>\n\
         <p>Client <code>{client}</code> asks you to sign in; you will return to <code>{back}</code>.</p>\n\
         <form method=\"post\" action=\"/authorize\">\n\
         <input type=\"hidden\" name=\"pending\" value=\"{pending}\">\n\
         <p><label>Email <input type=\"email\" name=\"email\" required autofocus></label></p>\n\
         <p><label>Name <input type=\"text\" name=\"name\"></label></p>\n\
         <p><label><input type=\"checkbox\" name=\"email_verified\" checked> email verified</label></p>\n\
         <p><button type=\"submit\">Sign in</button></p>\n\
         </form>\n<p><small>Any email works; the same email always gets the same <code>sub</code>.</small></p>\n\
         </body></html>\n",
        client = html_escape(&params["client_id"]),
        back = html_escape(&params["redirect_uri"]),
        pending = html_escape(pending),
    );
    with_type(StatusCode::OK, "text/html; charset=utf-8", page)
}

fn bad_authorize(problem: &str) -> Response {
    with_type(
        StatusCode::BAD_REQUEST,
        "text/html; charset=utf-8",
        format!(
            "<!doctype html><title>Test IdP: bad request</title><h1>Bad authorization request</h1><p>{}</p>\n",
            html_escape(problem)
        ),
    )
}

/// `POST /token`: `client_secret_basic`, authorization code with PKCE S256.
async fn token(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let request = TokenRequest {
        authorization: header_str(headers, header::AUTHORIZATION),
        client_id: None,
        client_secret: None,
        content_type: header_str(headers, header::CONTENT_TYPE),
        form: pairs.iter().cloned().collect(),
    };
    let request = match request.authorization.as_deref().and_then(decode_basic) {
        Some((id, secret)) => TokenRequest {
            client_id: Some(id),
            client_secret: Some(secret),
            ..request
        },
        None => request,
    };
    let behaviour = {
        let mut state = shared.state();
        state.token_requests.push(request.clone());
        state.behaviour.clone()
    };
    if let Some(stopped) = slow_down(shared, behaviour.delay).await {
        return stopped;
    }
    if let Some(error) = &behaviour.token_error {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            error,
            "the test made the provider fail",
        );
    }
    let form_type = request
        .content_type
        .as_deref()
        .and_then(|value| value.split(';').next())
        .map(|value| {
            value
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if form_type != Some(true) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let authenticated = request.client_id.as_deref() == Some(shared.client_id.as_str())
        && request.client_secret.as_deref() == Some(shared.client_secret.as_str());
    if !authenticated {
        let mut response = oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_secret_basic with the form-urlencoded id and secret is required",
        );
        set_header(
            &mut response,
            header::WWW_AUTHENTICATE,
            "Basic realm=\"test-idp\"",
        );
        return response;
    }
    let form = &request.form;
    if pairs.len() != form.len() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "repeated parameter",
        );
    }
    if form.contains_key("client_secret") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "more than one client authentication method",
        );
    }
    if form
        .get("client_id")
        .is_some_and(|id| *id != shared.client_id)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id differs",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code",
        );
    }
    let code = form.get("code").map(String::as_str).unwrap_or("");
    // A code is used up by any exchange attempt, even a refused one.
    let Some(grant) = shared.state().codes.remove(code) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown or already used code",
        );
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        );
    }
    let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !verifier_ok || pkce_challenge(verifier) != grant.code_challenge {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE code_verifier does not match the code_challenge",
        );
    }
    let access_token = random_token();
    let id_token = {
        let mut state = shared.state();
        state
            .access_tokens
            .insert(access_token.clone(), grant.user.clone());
        id_token(shared, &state, &grant, &access_token)
    };
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL_SECS,
            "id_token": id_token,
            "scope": "openid email profile",
        }),
    );
    set_header(&mut response, header::PRAGMA, "no-cache");
    response
}

/// `GET /userinfo` with a Bearer access token from `/token`.
async fn userinfo(shared: &Shared, headers: &HeaderMap) -> Response {
    let behaviour = {
        let mut state = shared.state();
        state.userinfo_calls += 1;
        state.behaviour.clone()
    };
    if let Some(stopped) = slow_down(shared, behaviour.delay).await {
        return stopped;
    }
    let user = header_str(headers, header::AUTHORIZATION)
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .and_then(|token| shared.state().access_tokens.get(&token).cloned());
    let Some(user) = user else {
        let mut response = oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a Bearer access token from /token is required",
        );
        set_header(
            &mut response,
            header::WWW_AUTHENTICATE,
            "Bearer error=\"invalid_token\"",
        );
        return response;
    };
    let mut claims = Map::new();
    claims.insert(
        "sub".into(),
        json!(behaviour.userinfo_sub.unwrap_or(user.sub.clone())),
    );
    insert_profile(&mut claims, &user);
    for (name, value) in &behaviour.userinfo_claims {
        claims.insert(name.clone(), value.clone());
    }
    if let Some(signed) = &behaviour.signed_userinfo {
        if let Some(iss) = &signed.iss {
            claims.insert("iss".into(), json!(iss));
        }
        if let Some(aud) = &signed.aud {
            claims.insert("aud".into(), json!(aud));
        }
        let generation = shared.state().key_generation;
        let jwt = sign(
            &Value::Object(claims),
            behaviour.signing,
            generation,
            &shared.client_secret,
        );
        let mut response = text(StatusCode::OK, &jwt);
        set_header(&mut response, header::CONTENT_TYPE, "application/jwt");
        return response;
    }
    json_response(StatusCode::OK, &Value::Object(claims))
}

/// The ID token for `grant`, made as the current [`Behaviour`] says.
fn id_token(shared: &Shared, state: &State, grant: &Grant, access_token: &str) -> String {
    let behaviour = &state.behaviour;
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock before 1970")
            .as_secs(),
    )
    .expect("time fits i64");
    let mut claims = Map::new();
    claims.insert(
        "iss".into(),
        json!(behaviour.iss.as_deref().unwrap_or(&shared.issuer)),
    );
    claims.insert("sub".into(), json!(grant.user.sub));
    let aud = match &behaviour.aud {
        None => json!(shared.client_id),
        Some(list) if list.len() == 1 => json!(list[0]),
        Some(list) => json!(list),
    };
    claims.insert("aud".into(), aud);
    if let Some(azp) = &behaviour.azp {
        claims.insert("azp".into(), json!(azp));
    }
    claims.insert("exp".into(), json!(now + behaviour.exp_offset_secs));
    claims.insert("iat".into(), json!(now + behaviour.iat_offset_secs));
    claims.insert(
        "nonce".into(),
        json!(behaviour.nonce.as_deref().unwrap_or(&grant.nonce)),
    );
    if behaviour.claims_in_id_token {
        insert_profile(&mut claims, &grant.user);
    }
    for (name, value) in &behaviour.id_token_claims {
        claims.insert(name.clone(), value.clone());
    }
    let left_half = |token: &str| URL_SAFE_NO_PAD.encode(&Sha256::digest(token.as_bytes())[..16]);
    match behaviour.at_hash {
        AtHash::Absent => {}
        AtHash::Correct => {
            claims.insert("at_hash".into(), json!(left_half(access_token)));
        }
        AtHash::Wrong => {
            claims.insert("at_hash".into(), json!(left_half("another access token")));
        }
    }
    for name in &behaviour.omit_claims {
        claims.remove(name);
    }
    sign(
        &Value::Object(claims),
        behaviour.signing,
        state.key_generation,
        &shared.client_secret,
    )
}

fn insert_profile(claims: &mut Map<String, Value>, user: &IdpUser) {
    if let Some(email) = &user.email {
        claims.insert("email".into(), json!(email));
    }
    if let Some(verified) = user.email_verified {
        claims.insert("email_verified".into(), json!(verified));
    }
    if let Some(name) = &user.name {
        claims.insert("name".into(), json!(name));
    }
}

/// Makes a compact JWS of `claims` the way `signing` says; `generation` is the published key.
fn sign(claims: &Value, signing: Signing, generation: usize, client_secret: &str) -> String {
    let rs256 = |key_generation: usize, kid: Option<String>| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid;
        let pem = KEYS[key_generation % KEYS.len()].0;
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test IdP: bad committed key");
        jsonwebtoken::encode(&header, claims, &key).expect("test IdP: RS256 signing failed")
    };
    match signing {
        Signing::Good => rs256(generation, Some(kid(generation))),
        Signing::NoKid => rs256(generation, None),
        Signing::UnknownKid => rs256(generation + 1, Some(kid(generation + 1))),
        Signing::OtherKey => rs256(generation + 1, Some(kid(generation))),
        Signing::BadSignature => {
            let token = rs256(generation, Some(kid(generation)));
            let (signed, signature) = token.rsplit_once('.').expect("compact JWS");
            let mut signature = URL_SAFE_NO_PAD
                .decode(signature)
                .expect("base64url signature");
            signature[0] ^= 0xff;
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
        }
        Signing::AlgNone => {
            let header = json!({ "alg": "none", "typ": "JWT" });
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )
        }
        Signing::Hs256WithClientSecret => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid(generation));
            let key =
                EncodingKey::from_secret(client_secret.as_bytes()).expect("test IdP: HMAC key");
            jsonwebtoken::encode(&header, claims, &key).expect("test IdP: HS256 signing failed")
        }
    }
}

fn kid(generation: usize) -> String {
    format!("test-idp-key-{generation}")
}

/// The JWKS entry of key generation `generation`.
fn public_jwk(generation: usize) -> Map<String, Value> {
    let committed: Value = serde_json::from_str(KEYS[generation % KEYS.len()].1)
        .expect("test IdP: committed JWK is not JSON");
    let mut key = Map::new();
    key.insert("kty".into(), json!("RSA"));
    key.insert("use".into(), json!("sig"));
    key.insert("alg".into(), json!("RS256"));
    key.insert("kid".into(), json!(kid(generation)));
    key.insert("n".into(), committed["n"].clone());
    key.insert("e".into(), committed["e"].clone());
    key
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Decodes `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 2.3.1).
fn decode_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// Undoes application/x-www-form-urlencoded for one value: `+` is a space, `%XX` a byte.
/// Unlike splitting a whole form, a raw `&` or `=` stays part of the value, so a relying
/// party that forgot to encode is caught by the comparison, not by the parser.
fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(u8::try_from(high * 16 + low).expect("two hex digits"));
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `sub` the sign-in form gives an email address: stable and opaque.
fn sub_for_email(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("user-{hex}")
}

/// 256 random bits, base64url: codes, access tokens, form ids.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn html_escape(text: &str) -> String {
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

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn set_header(response: &mut Response, name: header::HeaderName, value: &str) {
    let value = HeaderValue::from_str(value).expect("test IdP: invalid header value");
    response.headers_mut().insert(name, value);
}

fn with_type(status: StatusCode, content_type: &str, body: impl Into<String>) -> Response {
    let mut response = body.into().into_response();
    *response.status_mut() = status;
    set_header(&mut response, header::CONTENT_TYPE, content_type);
    set_header(&mut response, header::CACHE_CONTROL, "no-store");
    response
}

fn text(status: StatusCode, body: &str) -> Response {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    with_type(status, "application/json", body.to_string())
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}
