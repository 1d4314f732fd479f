//! The one place rejections become JSON `{"error", "message"}` answers.
//!
//! Internal causes are logged here, where they become a response; a client only ever sees the
//! code and a message written for it.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

/// An error answer: status, machine-readable code, human message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// This error as a JSON response.
    pub fn response(&self) -> Response {
        error_response(self.status, self.code, &self.message)
    }

    /// No credentials, or credentials that name nobody.
    pub fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: send a session cookie or `Authorization: Bearer <api key>`",
        )
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

/// Builds the JSON error response for `status`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = warp::reply::json(&ErrorBody {
        error: code,
        message,
    });
    warp::reply::with_status(body, status).into_response()
}

/// Turns every rejection into a JSON error; unknown ones are logged and answered 500.
pub async fn handle_rejection(err: Rejection) -> Result<Response, Infallible> {
    let response = if let Some(e) = err.find::<ApiError>() {
        error_response(e.status, e.code, &e.message)
    } else if err.is_not_found() {
        error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    } else if err.find::<warp::reject::LengthRequired>().is_some() {
        error_response(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "send the request body with a Content-Length",
        )
    } else if err.find::<warp::reject::PayloadTooLarge>().is_some() {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        )
    } else if let Some(e) = err.find::<warp::filters::body::BodyDeserializeError>() {
        // Only where, never serde's text: it can quote a value (a password sent as a number).
        let position = std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<serde_json::Error>())
            .map(|s| format!("line {} column {}", s.line(), s.column()))
            .unwrap_or_default();
        tracing::debug!(position, "rejected a request body");
        error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request body is not the JSON this route takes",
        )
    } else if err.find::<warp::reject::UnsupportedMediaType>().is_some() {
        error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send `Content-Type: application/json`",
        )
    } else if err.find::<warp::reject::InvalidQuery>().is_some() {
        error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "invalid query string",
        )
    } else {
        tracing::error!(rejection = ?err, "unhandled rejection");
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    };
    Ok(response)
}
