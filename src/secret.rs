//! [`Secret`]: a string that must never reach a log line or a response by accident.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string: a client secret, a password. `Debug` and `Display` never show it; read it
/// with [`Secret::expose`] only where it is used (sent to the identity provider, hashed).
/// It (de)serialises as a plain string, for request bodies and the admin socket.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Never log or render the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact_and_serde_is_a_plain_string() {
        let secret = Secret::new("hunter22");
        assert_eq!(
            format!("{secret:?} {secret}"),
            "Secret(<redacted>) <redacted>"
        );
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"hunter22\"");
        let back: Secret = serde_json::from_str("\"hunter22\"").unwrap();
        assert_eq!(back.expose(), "hunter22");
    }
}
