//! Request bodies: the one way a route reads one. Every body is read through [`bytes`], which
//! counts what arrives against the route's cap whatever the protocol framing says (a declared
//! `Content-Length`, chunked encoding, or none), and gives up on a body that trickles in slower
//! than [`BODY_TIMEOUT`]. Failures are JSON answers with a fitting status: 413 too large, 408 too
//! slow, 415 a media type the route does not take, 400 a body it cannot parse.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::Filter;
use warp::http::StatusCode;

use super::error::ApiError;
use crate::vocab::ErrorCode;

/// How long a whole request body may take to arrive.
pub(crate) const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

fn too_large() -> warp::Rejection {
    warp::reject::custom(ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "the request body is too large",
    ))
}

/// The body, at most `max` bytes (an absent body is empty).
pub(crate) fn bytes(max: u64) -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |length: Option<u64>, stream| async move {
            if length.is_some_and(|l| l > max) {
                return Err(too_large());
            }
            match tokio::time::timeout(BODY_TIMEOUT, read_capped(stream, max)).await {
                Ok(read) => read,
                Err(_) => Err(warp::reject::custom(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::RequestTimeout,
                    "the request body arrived too slowly",
                ))),
            }
        })
}

async fn read_capped<S, B>(stream: S, max: u64) -> Result<Bytes, warp::Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| {
            warp::reject::custom(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "the request body could not be read",
            ))
        })?;
        if (body.len() + chunk.remaining()) as u64 > max {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}

/// Whether `content_type` (absent counts as yes) names `expected`, parameters aside.
fn is_media_type(content_type: Option<&str>, expected: &str) -> bool {
    content_type.is_none_or(|t| {
        t.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(expected))
    })
}

fn unsupported(expected: &str) -> warp::Rejection {
    warp::reject::custom(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::UnsupportedMediaType,
        format!("send `Content-Type: {expected}`"),
    ))
}

fn unparsable(what: &str) -> warp::Rejection {
    warp::reject::custom(ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
        format!("the request body is not the {what} this route takes"),
    ))
}

/// A JSON body of at most `max` bytes parsed as `T`. A `Content-Type` other than
/// `application/json` is refused before the body is read. serde's text is never sent back: it
/// can quote a value (a password sent as a number).
pub(crate) fn json<T: DeserializeOwned + Send + 'static>(
    max: u64,
) -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|content_type: Option<String>| async move {
            if is_media_type(content_type.as_deref(), "application/json") {
                Ok(())
            } else {
                Err(unsupported("application/json"))
            }
        })
        .untuple_one()
        .and(bytes(max))
        .and_then(|body: Bytes| async move {
            serde_json::from_slice::<T>(&body).map_err(|e| {
                tracing::debug!(line = e.line(), column = e.column(), "rejected a JSON body");
                unparsable("JSON")
            })
        })
}

/// An HTML form body (`application/x-www-form-urlencoded`) of at most `max` bytes parsed as `T`.
pub(crate) fn form<T: DeserializeOwned + Send + 'static>(
    max: u64,
) -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    const FORM: &str = "application/x-www-form-urlencoded";
    warp::header::optional::<String>("content-type")
        .and_then(|content_type: Option<String>| async move {
            if content_type.is_some() && is_media_type(content_type.as_deref(), FORM) {
                Ok(())
            } else {
                Err(unsupported(FORM))
            }
        })
        .untuple_one()
        .and(bytes(max))
        .and_then(|body: Bytes| async move {
            serde_urlencoded::from_bytes::<T>(&body).map_err(|_| unparsable("form"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_compare_without_parameters_or_case() {
        assert!(is_media_type(None, "application/json"));
        assert!(is_media_type(
            Some("Application/JSON; charset=utf-8"),
            "application/json"
        ));
        assert!(!is_media_type(Some("text/plain"), "application/json"));
        assert!(!is_media_type(
            Some("application/jsonp"),
            "application/json"
        ));
    }

    #[tokio::test]
    async fn a_body_is_capped_by_what_arrives_not_by_what_it_declares() {
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, warp::Error>(Bytes::from_static(b"123456")),
            Ok(Bytes::from_static(b"789012")),
        ]);
        assert!(read_capped(chunks, 10).await.is_err());
        let chunks = futures_util::stream::iter(vec![Ok::<_, warp::Error>(Bytes::from_static(
            b"1234567890",
        ))]);
        assert_eq!(&read_capped(chunks, 10).await.unwrap()[..], b"1234567890");
    }
}
