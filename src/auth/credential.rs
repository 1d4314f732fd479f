//! Secrets users hold: passwords (Argon2id), API keys and random tokens (SHA-256 at rest).
//!
//! Nothing here logs; every secret type redacts itself in `Debug`.

use std::fmt;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// Prefix of every API key.
pub const API_KEY_PREFIX: &str = "cf_";
/// Random bytes in an API key (256 bits).
const API_KEY_BYTES: usize = 32;
/// Shortest password accepted for a local account.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A password as typed: a [`Secret`], so it never shows in `Debug`.
pub type Password = Secret;

/// Why a password or hash could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// Hashes a password with Argon2id and a fresh salt; returns the PHC string. CPU-heavy: call it
/// through [`crate::blocking::run_blocking`] on the runtime.
///
/// Fails when the password is shorter than [`MIN_PASSWORD_CHARS`].
pub fn hash_password(password: &Password) -> Result<String, CredentialError> {
    if password.expose().chars().count() < MIN_PASSWORD_CHARS {
        return Err(CredentialError::PasswordTooShort);
    }
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| CredentialError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. CPU-heavy, like [`hash_password`].
pub fn verify_password(password: &Password, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.expose().as_bytes(), hash)
        .is_ok()
}

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(&buf)
}

/// SHA-256 of `data`: how tokens and keys are stored.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A new API key: the secret (shown once), its hash (stored) and its prefix (listed).
pub struct NewApiKey {
    pub secret: String,
    pub hash: [u8; 32],
    pub prefix: String,
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Makes an API key: `cf_` and 256 random bits.
pub fn new_api_key() -> NewApiKey {
    let secret = format!("{API_KEY_PREFIX}{}", random_token(API_KEY_BYTES));
    NewApiKey {
        hash: sha256(secret.as_bytes()),
        prefix: secret[..API_KEY_PREFIX.len() + 6].to_owned(),
        secret,
    }
}

/// The hash to look a presented API key up by, or `None` when it cannot be a key of ours
/// (wrong prefix or length, characters outside base64url), so garbage costs no lookup.
pub fn api_key_hash(presented: &str) -> Option<[u8; 32]> {
    let body = presented.strip_prefix(API_KEY_PREFIX)?;
    let well_formed = body.len() == 43
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| sha256(presented.as_bytes()))
}

/// A random password for the first admin: 24 base64url characters (144 bits).
pub fn generate_password() -> Password {
    Secret::new(random_token(18))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let password = Password::new("correct horse");
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&password, &hash));
        assert!(!verify_password(&Password::new("correct horsE"), &hash));
        assert!(!verify_password(&password, "not a hash"));
        assert_ne!(hash, hash_password(&password).unwrap(), "salted");
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(
            hash_password(&Password::new("short")),
            Err(CredentialError::PasswordTooShort)
        ));
    }

    #[test]
    fn api_keys_have_the_prefix_256_bits_and_a_matching_hash() {
        let key = new_api_key();
        assert!(key.secret.starts_with("cf_"));
        assert_eq!(key.secret.len(), 3 + 43);
        assert_eq!(api_key_hash(&key.secret), Some(key.hash));
        assert!(key.secret.starts_with(&key.prefix));
        assert_ne!(new_api_key().secret, key.secret);
        assert!(!format!("{key:?}").contains(&key.secret));
    }

    #[test]
    fn malformed_keys_are_rejected_before_any_lookup() {
        let key = new_api_key().secret;
        assert!(api_key_hash(&key[1..]).is_none());
        assert!(api_key_hash(&format!("{key}x")).is_none());
        assert!(api_key_hash(&key.replace('_', "/")).is_none());
        assert!(api_key_hash("").is_none());
    }

    #[test]
    fn debug_of_a_password_redacts_it() {
        assert_eq!(
            format!("{:?}", Password::new("hunter22")),
            "Secret(<redacted>)"
        );
    }
}
