//! Which endpoint answers a request, and the limits every request meets first (body size,
//! JSON shape). Every failure answers with the JSON error body of `reply.rs`.

use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use shardbus_protocol::ErrorCode;

use super::reply::{self, Body, Refusal};
use super::{HttpSettings, assets, listings, metrics, push, status};
use crate::shard::Shard;

/// Answers one request.
pub(crate) async fn handle(
    shard: Rc<Shard>,
    settings: Rc<HttpSettings>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let shared = &shard.shared;
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/ws") => crate::ws::refuse(&request),
        (&Method::GET, "/js/shardbus.js") => reply::with_type(
            StatusCode::OK,
            assets::CLIENT_JS.as_bytes().to_vec(),
            "text/javascript; charset=utf-8",
        ),
        (&Method::GET, "/demo") => reply::with_type(
            StatusCode::OK,
            assets::DEMO_HTML.as_bytes().to_vec(),
            "text/html; charset=utf-8",
        ),
        (&Method::GET, "/healthz") => {
            reply::json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
        }
        (&Method::GET, "/readyz") => readyz(shared),
        (&Method::GET, "/metrics") => reply::with_type(
            StatusCode::OK,
            metrics::exposition(shared).into_bytes(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        (&Method::GET, "/api/v1/server") => {
            reply::json(StatusCode::OK, &status::server(shared, &settings))
        }
        (&Method::GET, "/api/v1/shards") => reply::json(StatusCode::OK, &status::shards(shared)),
        (&Method::GET, "/api/v1/connections") => {
            match listings::connections(&shard, request.uri().query()).await {
                Ok(page) => reply::json(StatusCode::OK, &page),
                Err(refusal) => refusal.into_response(),
            }
        }
        (&Method::GET, "/api/v1/topics") => {
            reply::json(StatusCode::OK, &listings::topics(&shard).await)
        }
        (&Method::POST, "/api/v1/publish") => {
            let answer = match push_body(request, &settings).await {
                Ok(body) => push::publish(&shard, &settings, &body).await,
                Err(refusal) => Err(refusal),
            };
            answer.unwrap_or_else(Refusal::into_response)
        }
        (&Method::POST, "/api/v1/request") => {
            let answer = match push_body(request, &settings).await {
                Ok(body) => push::request(&shard, &settings, &body).await,
                Err(refusal) => Err(refusal),
            };
            answer.unwrap_or_else(Refusal::into_response)
        }
        (_, path) if is_known(path) => reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UNKNOWN_OP,
            "method not allowed here",
        ),
        _ => reply::error(
            StatusCode::NOT_FOUND,
            ErrorCode::UNKNOWN_OP,
            "no such endpoint",
        ),
    };
    Ok(response)
}

fn is_known(path: &str) -> bool {
    matches!(
        path,
        "/healthz"
            | "/readyz"
            | "/metrics"
            | "/api/v1/server"
            | "/api/v1/shards"
            | "/api/v1/connections"
            | "/api/v1/topics"
            | "/ws"
            | "/js/shardbus.js"
            | "/demo"
            | "/api/v1/publish"
            | "/api/v1/request"
    )
}

fn readyz(shared: &Arc<crate::server::Shared>) -> Response<Body> {
    if shared.is_ready() {
        return reply::json(StatusCode::OK, &serde_json::json!({ "status": "ready" }));
    }
    let why = if shared.shutting_down() {
        "draining"
    } else {
        "starting"
    };
    reply::json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({ "status": why }),
    )
}

/// Reads a push body: at most `max_body` bytes of JSON of the push shape.
async fn push_body(
    request: Request<Incoming>,
    settings: &HttpSettings,
) -> Result<push::PushBody, Refusal> {
    let bytes = match Limited::new(request.into_body(), settings.max_body)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let code = if error.is::<http_body_util::LengthLimitError>() {
                ErrorCode::PAYLOAD_TOO_LARGE
            } else {
                ErrorCode::BAD_FRAME
            };
            return Err(Refusal::new(code, format!("request body: {error}")));
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|error| Refusal::new(ErrorCode::BAD_PAYLOAD, format!("request body: {error}")))
}
