//! The test OpenID provider itself (`support::idp`): before relying-party tests trust it, check
//! over real HTTP that it is a correct provider by default and hostile when told to.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;
use url::Url;

use crate::support::idp::{IdpUser, Signing, TestIdp, pkce_challenge};

const CLIENT_ID: &str = "coderflow-test";
/// Every character that breaks a client that forgets to form-urlencode before Basic auth.
const AWKWARD_SECRET: &str = "p:a&s+s%w0rd =x";
const REDIRECT_URI: &str = "http://127.0.0.1:1/auth/oidc/callback";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("reqwest client")
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `client_secret_basic` done right (RFC 6749 2.3.1).
fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(id), form_encode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

fn authorize_url(idp: &TestIdp, nonce: &str, skip: &str) -> Url {
    let mut url = Url::parse(&format!("{}/authorize", idp.issuer())).unwrap();
    let params = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email profile"),
        ("state", "the-state"),
        ("nonce", nonce),
        ("code_challenge", &pkce_challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in params.iter().filter(|(name, _)| *name != skip) {
        url.query_pairs_mut().append_pair(name, value);
    }
    url
}

/// Runs `/authorize` for the `login_as` user; the query of the redirect back.
async fn authorize(idp: &TestIdp, nonce: &str) -> HashMap<String, String> {
    let response = client()
        .get(authorize_url(idp, nonce, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "authorize must redirect"
    );
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn exchange(
    idp: &TestIdp,
    authorization: &str,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("code_verifier", verifier)
        .finish();
    let response = client()
        .post(format!("{}/token", idp.issuer()))
        .header("authorization", authorization)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// A full login: the token endpoint's answer.
async fn login(idp: &TestIdp, nonce: &str) -> Value {
    let callback = authorize(idp, nonce).await;
    let (status, token) = exchange(
        idp,
        &basic(CLIENT_ID, AWKWARD_SECRET),
        &callback["code"],
        VERIFIER,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    token
}

async fn get_json(url: &str) -> Value {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response.json().await.unwrap()
}

/// Verifies `id_token` the way a careful relying party does, with the provider's JWKS.
async fn verify(idp: &TestIdp, id_token: &str) -> jsonwebtoken::errors::Result<Value> {
    let jwks: JwkSet =
        serde_json::from_value(get_json(&format!("{}/jwks", idp.issuer())).await).unwrap();
    let header = jsonwebtoken::decode_header(id_token)?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    };
    let Some(jwk) = jwk else {
        return Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into());
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[idp.issuer()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let key = DecodingKey::from_jwk(jwk)?;
    Ok(jsonwebtoken::decode::<Value>(id_token, &key, &validation)?.claims)
}

fn alice() -> IdpUser {
    IdpUser {
        sub: "alice-sub".into(),
        email: Some("Alice@Example.com".into()),
        email_verified: Some(true),
        name: Some("Alice Liddell".into()),
    }
}

#[tokio::test]
async fn idp_discovery_and_jwks_describe_a_correct_provider() {
    let idp = TestIdp::start(CLIENT_ID, AWKWARD_SECRET).await;
    assert!(idp.issuer().starts_with("http://127.0.0.1:") && !idp.issuer().ends_with('/'));
    let doc = get_json(&idp.discovery_url()).await;
    assert_eq!(doc["issuer"], idp.issuer());
    assert_eq!(doc["jwks_uri"], format!("{}/jwks", idp.issuer()));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic"])
    );
    for scope in ["openid", "email", "profile"] {
        assert!(
            doc["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&scope.into())
        );
    }
    assert_eq!(idp.discovery_calls(), 1);

    // The committed public JWKs are the public halves of the committed private keys.
    let pems = [
        include_str!("support/keys/idp-key-0.pem"),
        include_str!("support/keys/idp-key-1.pem"),
        include_str!("support/keys/idp-key-2.pem"),
    ];
    let mut kids = Vec::new();
    for pem in pems {
        let jwks = get_json(&format!("{}/jwks", idp.issuer())).await;
        assert_eq!(
            jwks["keys"].as_array().unwrap().len(),
            1,
            "one published key"
        );
        let published = &jwks["keys"][0];
        let derived = Jwk::from_encoding_key(
            &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            Algorithm::RS256,
        )
        .unwrap();
        let derived = serde_json::to_value(derived).unwrap();
        assert_eq!(published["n"], derived["n"]);
        assert_eq!(published["e"], derived["e"]);
        assert_eq!(published["kid"], idp.current_kid());
        kids.push(idp.current_kid());
        idp.rotate_key();
    }
    kids.dedup();
    assert_eq!(kids.len(), 3, "each rotation publishes a new kid");
    assert_eq!(idp.jwks_calls(), 3);

    idp.behave(|b| b.huge_jwks = true);
    let huge = client()
        .get(format!("{}/jwks", idp.issuer()))
        .send()
        .await
        .unwrap();
    assert!(huge.bytes().await.unwrap().len() > 2 * 1024 * 1024);
    idp.behave(|b| {
        b.huge_jwks = false;
        b.redirect_discovery = true;
    });
    let moved = client().get(idp.discovery_url()).send().await.unwrap();
    assert_eq!(moved.status(), StatusCode::FOUND);
    idp.behave(|b| {
        b.redirect_discovery = false;
        b.garbage_discovery = true;
    });
    let garbage = client().get(idp.discovery_url()).send().await.unwrap();
    assert!(garbage.json::<Value>().await.is_err());
}

#[tokio::test]
async fn idp_code_flow_with_pkce_and_an_awkward_secret() {
    let idp = TestIdp::start(CLIENT_ID, AWKWARD_SECRET).await;
    idp.login_as(alice());
    let callback = authorize(&idp, "nonce-1").await;
    assert_eq!(callback["state"], "the-state");
    assert_eq!(callback["iss"], idp.issuer());
    assert_eq!(idp.authorize_requests()[0]["nonce"], "nonce-1");

    let (status, token) = exchange(
        &idp,
        &basic(CLIENT_ID, AWKWARD_SECRET),
        &callback["code"],
        VERIFIER,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    let seen = &idp.token_requests()[0];
    assert_eq!(seen.client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(seen.client_secret.as_deref(), Some(AWKWARD_SECRET));
    assert_eq!(seen.form["code_verifier"], VERIFIER);

    let claims = verify(&idp, token["id_token"].as_str().unwrap())
        .await
        .expect("a good ID token verifies");
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["email"], "Alice@Example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Liddell");

    let userinfo = client()
        .get(format!("{}/userinfo", idp.issuer()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    let userinfo: Value = userinfo.json().await.unwrap();
    assert_eq!(userinfo["sub"], "alice-sub");
    assert_eq!(userinfo["email"], "Alice@Example.com");
    assert_eq!(idp.userinfo_calls(), 1);

    // A code is single use.
    let (status, error) = exchange(
        &idp,
        &basic(CLIENT_ID, AWKWARD_SECRET),
        &callback["code"],
        VERIFIER,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Claims only at userinfo, when told so.
    idp.behave(|b| b.claims_in_id_token = false);
    let token = login(&idp, "nonce-2").await;
    let claims = verify(&idp, token["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert!(claims.get("email").is_none() && claims.get("name").is_none());
}

#[tokio::test]
async fn idp_refuses_what_a_relying_party_must_not_send() {
    let idp = TestIdp::start(CLIENT_ID, AWKWARD_SECRET).await;
    idp.login_as(alice());
    for missing in [
        "nonce",
        "state",
        "code_challenge",
        "code_challenge_method",
        "redirect_uri",
        "scope",
    ] {
        let response = client()
            .get(authorize_url(&idp, "n", missing))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "without {missing}"
        );
    }

    // The secret sent without form-urlencoding it first.
    let callback = authorize(&idp, "n").await;
    let raw = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{AWKWARD_SECRET}"))
    );
    let (status, error) = exchange(&idp, &raw, &callback["code"], VERIFIER).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // The wrong PKCE verifier; the code is used up by the attempt.
    let wrong = "x".repeat(43);
    let (status, error) = exchange(
        &idp,
        &basic(CLIENT_ID, AWKWARD_SECRET),
        &callback["code"],
        &wrong,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = exchange(
        &idp,
        &basic(CLIENT_ID, AWKWARD_SECRET),
        &callback["code"],
        VERIFIER,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    idp.behave(|b| b.token_error = Some("temporarily_unavailable".into()));
    let callback = authorize(&idp, "n").await;
    let (status, error) = exchange(
        &idp,
        &basic(CLIENT_ID, AWKWARD_SECRET),
        &callback["code"],
        VERIFIER,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("temporarily_unavailable"))
    );

    let userinfo = client()
        .get(format!("{}/userinfo", idp.issuer()))
        .bearer_auth("made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn idp_hostile_tokens_fail_verification() {
    let idp = TestIdp::start(CLIENT_ID, AWKWARD_SECRET).await;
    idp.login_as(alice());
    for signing in [
        Signing::BadSignature,
        Signing::AlgNone,
        Signing::Hs256WithClientSecret,
        Signing::OtherKey,
        Signing::UnknownKid,
    ] {
        idp.behave(|b| b.signing = signing);
        let token = login(&idp, "n").await;
        assert!(
            verify(&idp, token["id_token"].as_str().unwrap())
                .await
                .is_err(),
            "{signing:?} must not verify"
        );
    }
    // Unknown kid: the key rotation publishes it.
    let token = login(&idp, "n").await;
    let id_token = token["id_token"].as_str().unwrap();
    idp.rotate_key();
    assert_eq!(
        jsonwebtoken::decode_header(id_token).unwrap().kid,
        Some(idp.current_kid())
    );
    verify(&idp, id_token)
        .await
        .expect("verifies after the rotation");

    idp.behave(|b| b.signing = Signing::NoKid);
    let token = login(&idp, "n").await;
    let id_token = token["id_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(id_token).unwrap().kid, None);
    verify(&idp, id_token)
        .await
        .expect("the only key verifies a token without kid");

    idp.behave(|b| {
        b.signing = Signing::Good;
        b.exp_offset_secs = -3600;
    });
    let token = login(&idp, "n").await;
    assert!(
        verify(&idp, token["id_token"].as_str().unwrap())
            .await
            .is_err(),
        "expired"
    );

    idp.behave(|b| {
        b.exp_offset_secs = 300;
        b.omit_claims = vec!["iat".into(), "nonce".into()];
        b.aud = Some(vec![CLIENT_ID.into(), "someone-else".into()]);
        b.azp = Some("someone-else".into());
    });
    let token = login(&idp, "n").await;
    let claims: Value =
        jsonwebtoken::dangerous::insecure_decode(token["id_token"].as_str().unwrap())
            .unwrap()
            .claims;
    assert!(claims.get("iat").is_none() && claims.get("nonce").is_none());
    assert_eq!(
        claims["aud"],
        serde_json::json!([CLIENT_ID, "someone-else"])
    );
    assert_eq!(claims["azp"], "someone-else");
}

#[tokio::test]
async fn idp_goes_down_and_comes_back_on_the_same_port() {
    let mut idp = TestIdp::start(CLIENT_ID, AWKWARD_SECRET).await;
    let issuer = idp.issuer();
    get_json(&idp.discovery_url()).await;

    // A slow answer in flight when the provider stops is cut short.
    idp.behave(|b| b.delay = Duration::from_secs(30));
    let slow = tokio::spawn(client().get(format!("{issuer}/jwks")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    idp.stop_listening().await;
    let slow = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .expect("cut short")
        .unwrap();
    assert!(slow.map(|r| r.status() != StatusCode::OK).unwrap_or(true));
    assert!(!idp.is_listening());
    assert!(
        client().get(idp.discovery_url()).send().await.is_err(),
        "down means connection refused"
    );

    idp.behave(|b| b.delay = Duration::ZERO);
    idp.restart().await;
    assert_eq!(idp.issuer(), issuer);
    assert_eq!(get_json(&idp.discovery_url()).await["issuer"], issuer);
    assert_eq!(idp.discovery_calls(), 2, "counters survive the restart");
    assert_eq!(idp.jwks_calls(), 1);
    idp.stop().await;
}
