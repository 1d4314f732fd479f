//! The one place rejections become JSON `{"error", "message"}` answers.
//!
//! Internal causes are logged here, where they become a response; a client only ever sees the
//! code and a message written for it.

use std::convert::Infallible;

use serde::Serialize;

use crate::vocab::ErrorCode;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

/// An error answer: status, machine-readable code, human message. The one way an error answer
/// is built: [`ApiError::response`] for a handler that answers, or a rejection that
/// [`handle_rejection`] answers.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// This error as a JSON response.
    pub(crate) fn response(&self) -> Response {
        let body = warp::reply::json(&ErrorBody {
            error: self.code,
            message: &self.message,
        });
        warp::reply::with_status(body, self.status).into_response()
    }

    /// No credentials, or credentials that name nobody.
    pub(crate) fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "sign in first: send a session cookie or `Authorization: Bearer <api key>`",
        )
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorCode,
    message: &'a str,
}

/// Turns every rejection into a JSON error; unknown ones are logged and answered 500.
pub(crate) async fn handle_rejection(err: Rejection) -> Result<Response, Infallible> {
    let response = if let Some(e) = err.find::<ApiError>() {
        e.response()
    } else if err.is_not_found() {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route").response()
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "this route does not accept that method",
        )
        .response()
    } else if err.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            ErrorCode::LengthRequired,
            "send the request body with a Content-Length",
        )
        .response()
    } else if err.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "the request body is too large",
        )
        .response()
    } else if let Some(e) = err.find::<warp::filters::body::BodyDeserializeError>() {
        // Only where, never serde's text: it can quote a value (a password sent as a number).
        let position = std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<serde_json::Error>())
            .map(|s| format!("line {} column {}", s.line(), s.column()))
            .unwrap_or_default();
        tracing::debug!(position, "rejected a request body");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "the request body is not the JSON this route takes",
        )
        .response()
    } else if err.find::<warp::reject::UnsupportedMediaType>().is_some() {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send `Content-Type: application/json`",
        )
        .response()
    } else if err.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "invalid query string",
        )
        .response()
    } else {
        tracing::error!(rejection = ?err, "unhandled rejection");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal server error",
        )
        .response()
    };
    Ok(response)
}
