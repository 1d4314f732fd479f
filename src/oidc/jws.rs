//! Verifying a signed JWT (an ID token, a logout token, a signed userinfo answer) with the
//! provider's published keys, and handing back its claims as raw JSON.
//!
//! Only asymmetric signatures are accepted (RS*, PS*, ES*, EdDSA): never `alg: none`, and never
//! HMAC, whose key here would be the client secret (a deliberate deviation from the RP
//! conformance test `rp-id_token-sig-none`). A header with `crit` is refused (no extension is
//! understood). The key is the one whose `kid` the header names; a header without `kid` uses
//! the only key that fits. The signature itself is checked by openidconnect's JSON Web Key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeySet, JwsSigningAlgorithm};
use serde_json::Value;

use super::claims::Claims;

/// Asymmetric signature algorithms a token may use; never `none` or HMAC.
pub(crate) const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Why a token's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwsError {
    #[error("it is not a signed JWT (three base64url parts with a JSON header and payload)")]
    Malformed,
    #[error(
        "it is signed with `{0}`, which is not accepted: only asymmetric signatures (RS256 and the other RS, PS, ES and EdDSA algorithms) are"
    )]
    AlgorithmRefused(String),
    #[error("its header has a critical extension (`crit`) this client does not understand")]
    CriticalHeader,
    #[error("no key of the provider's JWKS fits it (kid `{0}`)")]
    NoMatchingKey(String),
    #[error("it names no key (no kid) and several keys of the JWKS fit")]
    AmbiguousKey,
    #[error("its signature does not verify")]
    BadSignature,
}

impl JwsError {
    /// Whether fetching the JWKS again could help (a key rotated at the provider).
    pub(crate) fn may_be_rotation(&self) -> bool {
        matches!(self, JwsError::NoMatchingKey(_))
    }
}

/// A token whose signature verified: its algorithm, the key, and the claims.
pub(crate) struct Verified {
    pub alg: CoreJwsSigningAlgorithm,
    pub key: CoreJsonWebKey,
    pub claims: Claims,
}

/// Verifies the compact JWS `token` with a key of `keys`.
///
/// Fails as [`JwsError`] says.
pub(crate) fn verify(
    token: &str,
    keys: &JsonWebKeySet<CoreJsonWebKey>,
) -> Result<Verified, JwsError> {
    let mut parts = token.trim().split('.');
    let (Some(header64), Some(payload64), Some(signature64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwsError::Malformed)
    };
    let header: Value =
        serde_json::from_slice(&decode(header64)?).map_err(|_| JwsError::Malformed)?;
    let alg_name = header["alg"].as_str().ok_or(JwsError::Malformed)?;
    let alg: CoreJwsSigningAlgorithm =
        serde_json::from_value(Value::String(alg_name.to_owned()))
            .map_err(|_| JwsError::AlgorithmRefused(alg_name.chars().take(20).collect()))?;
    if !ALLOWED_ALGS.contains(&alg) {
        return Err(JwsError::AlgorithmRefused(alg_name.to_owned()));
    }
    if header.get("crit").is_some() {
        return Err(JwsError::CriticalHeader);
    }
    let kid = header["kid"].as_str();
    let candidates: Vec<&CoreJsonWebKey> = keys
        .keys()
        .iter()
        .filter(|key| fits(key, kid, &alg))
        .collect();
    if candidates.is_empty() {
        return Err(JwsError::NoMatchingKey(
            kid.unwrap_or("none").chars().take(100).collect(),
        ));
    }
    if kid.is_none() && candidates.len() > 1 {
        return Err(JwsError::AmbiguousKey);
    }
    // One key, or several under the same kid: the first whose signature verifies.
    let message = format!("{header64}.{payload64}");
    let signature = decode(signature64)?;
    let key = candidates
        .into_iter()
        .find(|k| {
            verify_with_ring(k, &alg, message.as_bytes(), &signature).unwrap_or_else(|| {
                k.verify_signature(&alg, message.as_bytes(), &signature)
                    .is_ok()
            })
        })
        .ok_or(JwsError::BadSignature)?;
    let claims: Value =
        serde_json::from_slice(&decode(payload64)?).map_err(|_| JwsError::Malformed)?;
    let Value::Object(claims) = claims else {
        return Err(JwsError::Malformed);
    };
    Ok(Verified {
        alg,
        key: key.clone(),
        claims,
    })
}

/// Checks an RSA signature (RS* and PS*, keys of 2048 to 8192 bits) with ring, an order of
/// magnitude faster than the pure-Rust RSA behind openidconnect's keys (most of the CPU of a
/// login went there). `None` when ring does not judge this key or algorithm: the caller asks
/// openidconnect instead, so the accepted algorithms and keys stay the same.
fn verify_with_ring(
    key: &CoreJsonWebKey,
    alg: &CoreJwsSigningAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Option<bool> {
    use ring::signature as rs;
    let params: &rs::RsaParameters = match alg {
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => &rs::RSA_PKCS1_2048_8192_SHA256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384 => &rs::RSA_PKCS1_2048_8192_SHA384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512 => &rs::RSA_PKCS1_2048_8192_SHA512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256 => &rs::RSA_PSS_2048_8192_SHA256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384 => &rs::RSA_PSS_2048_8192_SHA384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512 => &rs::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    };
    if *key.key_type() != CoreJsonWebKeyType::RSA {
        return None;
    }
    let jwk = serde_json::to_value(key).ok()?;
    let component = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str()?).ok();
    let (n, e) = (component("n")?, component("e")?);
    let digits: Vec<u8> = n.iter().copied().skip_while(|b| *b == 0).collect();
    let bits = digits
        .first()
        .map_or(0, |top| digits.len() * 8 - top.leading_zeros() as usize);
    if !(2048..=8192).contains(&bits) {
        return None;
    }
    Some(
        rs::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(params, message, signature)
            .is_ok(),
    )
}

/// Whether `key` may have made a signature with `alg` named `kid`.
fn fits(key: &CoreJsonWebKey, kid: Option<&str>, alg: &CoreJwsSigningAlgorithm) -> bool {
    if kid.is_some_and(|kid| key.key_id().map(|id| id.as_str()) != Some(kid)) {
        return false;
    }
    if key
        .key_use()
        .is_some_and(|u| *u != CoreJsonWebKeyUse::Signature)
    {
        return false;
    }
    if *key.key_type() == CoreJsonWebKeyType::Symmetric
        || alg.key_type().as_ref() != Some(key.key_type())
    {
        return false;
    }
    match key.signing_alg() {
        JsonWebKeyAlgorithm::Unspecified => true,
        JsonWebKeyAlgorithm::Algorithm(key_alg) => key_alg == alg,
        JsonWebKeyAlgorithm::Unsupported => false,
    }
}

/// The `at_hash` of `access_token` for a token signed with `alg` by `key` (OpenID Connect Core
/// 3.1.3.6: the left half of the hash, base64url).
pub(crate) fn access_token_hash(
    access_token: &str,
    alg: &CoreJwsSigningAlgorithm,
    key: &CoreJsonWebKey,
) -> Option<String> {
    let hash = key.hash_bytes(access_token.as_bytes(), alg).ok()?;
    Some(URL_SAFE_NO_PAD.encode(&hash[..hash.len() / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> JsonWebKeySet<CoreJsonWebKey> {
        JsonWebKeySet::new(Vec::new())
    }

    fn token(header: Value) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode("sig")
        )
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused_before_any_key_is_looked_at() {
        for alg in ["none", "HS256", "HS512", "nonsense"] {
            let e = verify(&token(serde_json::json!({"alg": alg})), &empty())
                .err()
                .unwrap();
            assert!(matches!(e, JwsError::AlgorithmRefused(_)), "{alg}: {e}");
        }
        let e = verify(
            &token(serde_json::json!({"alg": "RS256", "crit": ["x"]})),
            &empty(),
        )
        .err()
        .unwrap();
        assert_eq!(e, JwsError::CriticalHeader);
        let e = verify(
            &token(serde_json::json!({"alg": "RS256", "kid": "k"})),
            &empty(),
        )
        .err()
        .unwrap();
        assert!(e.may_be_rotation());
        for malformed in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(verify(malformed, &empty()).err(), Some(JwsError::Malformed));
        }
    }

    /// ring and openidconnect agree on RS256 and PS256 signatures, good and tampered.
    #[test]
    fn ring_checks_rsa_signatures_as_openidconnect_does() {
        let pem = include_str!("../../tests/it/support/keys/idp-key-0.pem");
        let jwk: CoreJsonWebKey = serde_json::from_str(include_str!(
            "../../tests/it/support/keys/idp-key-0.jwk.json"
        ))
        .unwrap();
        let signing = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        for (alg, ours) in [
            (
                jsonwebtoken::Algorithm::RS256,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            ),
            (
                jsonwebtoken::Algorithm::PS256,
                CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            ),
            (
                jsonwebtoken::Algorithm::RS512,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
            ),
        ] {
            let token = jsonwebtoken::encode(
                &jsonwebtoken::Header::new(alg),
                &serde_json::json!({"sub": "x"}),
                &signing,
            )
            .unwrap();
            let (message, signature64) = token.rsplit_once('.').unwrap();
            let mut signature = URL_SAFE_NO_PAD.decode(signature64).unwrap();
            let slow = jwk
                .verify_signature(&ours, message.as_bytes(), &signature)
                .is_ok();
            assert_eq!(
                verify_with_ring(&jwk, &ours, message.as_bytes(), &signature),
                Some(true)
            );
            assert!(slow, "{alg:?}");
            signature[10] ^= 1;
            assert_eq!(
                verify_with_ring(&jwk, &ours, message.as_bytes(), &signature),
                Some(false)
            );
            assert!(
                jwk.verify_signature(&ours, message.as_bytes(), &signature)
                    .is_err()
            );
            let tampered = format!("{message}x");
            signature[10] ^= 1;
            assert_eq!(
                verify_with_ring(&jwk, &ours, tampered.as_bytes(), &signature),
                Some(false)
            );
        }
        // Not RSA: left to openidconnect.
        assert_eq!(
            verify_with_ring(&jwk, &CoreJwsSigningAlgorithm::EcdsaP256Sha256, b"m", b"s"),
            None
        );
    }
}
