//! Building responses: JSON bodies, and the JSON error body every failure carries — the HTTP
//! status plus the PROTOCOL.md error code that names the cause (PROTOCOL.md §8).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use shardbus_protocol::ErrorCode;

/// Every response body here is whole before it is sent.
pub(crate) type Body = Full<Bytes>;

/// A response with `status` and a JSON body.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    with_type(status, body.to_string().into_bytes(), "application/json")
}

/// A file built into the binary (no copy).
pub(crate) fn asset(bytes: &'static [u8], content_type: &'static str) -> Response<Body> {
    file(Bytes::from_static(bytes), content_type)
}

/// A file's bytes (shared, not copied) with its content type.
pub(crate) fn file(bytes: Bytes, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(bytes));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `302 Found` to `location` (a path of this server).
pub(crate) fn redirect(location: &'static str) -> Response<Body> {
    redirect_to(location)
}

/// `302 Found` to `location`, a path of this server (one that is not a valid header value
/// goes to `/`).
pub(crate) fn redirect_to(location: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    response
        .headers_mut()
        .insert(hyper::header::LOCATION, location);
    response
}

/// A response with `status`, `bytes` and a content type.
pub(crate) fn with_type(
    status: StatusCode,
    bytes: Vec<u8>,
    content_type: &'static str,
) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A failure: `{"error": {"code": 5, "name": "PAYLOAD_TOO_LARGE", "message": "..."}}`.
pub(crate) fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response<Body> {
    json(status, &error_body(code, message))
}

/// The JSON body of every failure.
pub(crate) fn error_body(code: ErrorCode, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code.0, "name": code.name(), "message": message } })
}

/// Why a request is refused: a PROTOCOL.md code and a message; the status follows the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    /// When to try again (`RATE_LIMITED`): a `Retry-After` header (whole seconds, rounded up)
    /// and `retry_after_ms` in the body.
    pub(crate) retry_after_ms: Option<u32>,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        let Some(retry_after_ms) = self.retry_after_ms else {
            return error(status_of(self.code), self.code, &self.message);
        };
        let mut body = error_body(self.code, &self.message);
        if let Some(error) = body.get_mut("error").and_then(|e| e.as_object_mut()) {
            error.insert("retry_after_ms".to_owned(), retry_after_ms.into());
        }
        let mut response = json(status_of(self.code), &body);
        let seconds = retry_after_ms.div_ceil(1000).max(1);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
        response
    }
}

/// The HTTP status a protocol error answers with.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::PAYLOAD_TOO_LARGE | ErrorCode::FRAME_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::NO_RESPONDERS
        | ErrorCode::UNKNOWN_CONNECTION
        | ErrorCode::NOT_A_ROOM
        | ErrorCode::UNKNOWN_SERVICE => StatusCode::NOT_FOUND,
        ErrorCode::NOT_AVAILABLE => StatusCode::CONFLICT,
        ErrorCode::TIMEOUT => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::TOO_MANY_REQUESTS | ErrorCode::RATE_LIMITED | ErrorCode::SERVICE_BUSY => {
            StatusCode::TOO_MANY_REQUESTS
        }
        ErrorCode::AUTH_REQUIRED | ErrorCode::AUTH_FAILED | ErrorCode::AUTH_EXPIRED => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::PERMISSION_DENIED => StatusCode::FORBIDDEN,
        ErrorCode::SERVER_DRAINING => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::INTERNAL => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}
