//! The machine-readable codes of error answers (`{"error": "<code>", "message": "..."}`): one
//! list, so the server answers only codes it documents and the `coder` client names the codes it
//! reacts to instead of repeating strings.

use serde::{Deserialize, Serialize};

/// Every `error` code the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    AccessDenied,
    AuthorizationPending,
    BadRequest,
    Conflict,
    CsrfFailed,
    ExpiredToken,
    Forbidden,
    Internal,
    InvalidConfig,
    InvalidCredentials,
    InvalidGrant,
    InvalidName,
    InvalidRequest,
    InvalidRole,
    /// An API key past its `expires_at` (contract section 9); the clients already tell the
    /// user to sign in again.
    KeyExpired,
    LastAdmin,
    LengthRequired,
    LocalAuthDisabled,
    LockoutRisk,
    ManagedByProvider,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    SetupRepoReadOnly,
    SlowDown,
    StoreUnavailable,
    TemporarilyUnavailable,
    Unauthenticated,
    UnsupportedMediaType,
    WriteFailed,
}

impl ErrorCode {
    /// The code as answered, e.g. `not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Conflict => "conflict",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Internal => "internal",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidRole => "invalid_role",
            ErrorCode::KeyExpired => "key_expired",
            ErrorCode::LastAdmin => "last_admin",
            ErrorCode::LengthRequired => "length_required",
            ErrorCode::LocalAuthDisabled => "local_auth_disabled",
            ErrorCode::LockoutRisk => "lockout_risk",
            ErrorCode::ManagedByProvider => "managed_by_provider",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::SetupRepoReadOnly => "setup_repo_read_only",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::WriteFailed => "write_failed",
        }
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = serde_json::Error;

    /// Reads a code as answered (`not_found`); fails for a code this list does not have.
    fn from_str(code: &str) -> Result<ErrorCode, serde_json::Error> {
        serde_json::from_value(serde_json::Value::String(code.to_owned()))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answered_text_is_the_serialized_one() {
        for code in [
            ErrorCode::NotFound,
            ErrorCode::KeyExpired,
            ErrorCode::UnsupportedMediaType,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), code);
        }
    }
}
