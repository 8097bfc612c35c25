//! Which endpoint answers a request, and the limits every request meets first (body size,
//! JSON shape). Every failure answers with the JSON error body of `reply.rs`.

use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, Response, StatusCode};
use shardbus_protocol::ErrorCode;

use super::files::Found;
use super::reply::{self, Body, Refusal};
use super::{HttpSettings, assets, listings, metrics, push, rooms, services, status};
use crate::auth::Identity;
use crate::commands::{self, Params};
use crate::shard::Shard;

/// Answers one request: the open routes, then — once the client is identified — the
/// monitoring routes (admins only) and the push API (with the identity's permissions).
pub(crate) async fn handle(
    shard: Rc<Shard>,
    settings: Rc<HttpSettings>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if let Some(open) = open_route(&shard, &settings, &request) {
        return Ok(open);
    }
    let path = request.uri().path();
    if !is_known(path) {
        return Ok(reply::error(
            StatusCode::NOT_FOUND,
            ErrorCode::UNKNOWN_OP,
            "no such endpoint",
        ));
    }
    let identity = match identify(&shard, &request) {
        Ok(identity) => identity,
        Err(code) => {
            shard.metrics.error(code);
            let message = "send a token as Authorization: Bearer <token> (or X-Api-Key)";
            return Ok(Refusal::new(code, message).into_response());
        }
    };
    Ok(guarded(shard, settings, identity, request).await)
}

/// Routes anyone may use: health, readiness, the browser client and demo, `/ws` refusals.
fn open_route(
    shard: &Shard,
    settings: &HttpSettings,
    request: &Request<Incoming>,
) -> Option<Response<Body>> {
    // HEAD answers as GET does; hyper leaves the body out.
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return None;
    }
    let path = request.uri().path();
    if let Some((body, kind)) = assets::find(path) {
        return Some(reply::asset(body, kind));
    }
    if let Some(found) = settings.files.as_ref().and_then(|files| files.find(path)) {
        return Some(match found {
            Found::File(body, kind) => reply::file(body.clone(), kind),
            Found::Directory(to) => reply::redirect_to(&to),
        });
    }
    let response = match path {
        "/ws" => crate::ws::refuse(request),
        // The dashboard is what a person opening the server's address wants.
        "/" => reply::redirect("/dashboard"),
        "/healthz" => healthz(&shard.shared),
        "/readyz" => readyz(&shard.shared),
        _ => return None,
    };
    Some(response)
}

/// The identity a request's token names (`Authorization: Bearer` or `X-Api-Key`), or, on an
/// open HTTP API, the anonymous role.
fn identify(shard: &Shard, request: &Request<Incoming>) -> Result<Arc<Identity>, ErrorCode> {
    let headers = request.headers();
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    shard
        .auth()
        .authenticate_http(bearer.or(key).map(str::trim))
}

/// The credentials of an `Authorization: Bearer` header; the scheme is case-insensitive
/// (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

async fn guarded(
    shard: Rc<Shard>,
    settings: Rc<HttpSettings>,
    identity: Arc<Identity>,
    request: Request<Incoming>,
) -> Response<Body> {
    let shared = &shard.shared;
    let monitoring = identity.permissions.admin;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if let Some((name, params)) = command_route(&method, &path, request.uri().query()) {
        if name == "reload" && shard.shared.reloader().is_none() {
            return reply::error(
                StatusCode::NOT_IMPLEMENTED,
                ErrorCode::UNKNOWN_OP,
                "this server was not started from a configuration it can read again",
            );
        }
        let params = match params {
            Some(params) => params,
            None => match command_body(&shard, request, &settings).await {
                Ok(params) => params,
                Err(refused) => return refused,
            },
        };
        return match commands::run::run(&shard, &identity, &name, params).await {
            Ok(answer) => reply::json(StatusCode::OK, &answer),
            Err(refusal) => refusal.into_response(),
        };
    }
    match (&method, path.as_str()) {
        (&Method::POST, "/api/v1/publish" | "/api/v1/request") => {
            let body = match push_body(&shard, request, &settings).await {
                Ok(body) => body,
                Err(refused) => return refused,
            };
            let answer = if path == "/api/v1/publish" {
                push::publish(&shard, &settings, identity, &body).await
            } else {
                push::request(&shard, &settings, identity, &body).await
            };
            answer.unwrap_or_else(Refusal::into_response)
        }
        (&Method::GET | &Method::DELETE | &Method::POST, _) if !monitoring => {
            shard.metrics.error(ErrorCode::PERMISSION_DENIED);
            Refusal::new(
                ErrorCode::PERMISSION_DENIED,
                "monitoring needs an admin identity",
            )
            .into_response()
        }
        (&Method::GET, "/metrics") => {
            let report = services::list(&shard).await;
            reply::with_type(
                StatusCode::OK,
                metrics::exposition(shared, &report).into_bytes(),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        }
        (&Method::GET, "/api/v1/services") => {
            reply::json(StatusCode::OK, &services::list(&shard).await)
        }
        (&Method::GET, path) if path.starts_with(services::SERVICE_PREFIX) => {
            let name = path
                .get(services::SERVICE_PREFIX.len()..)
                .unwrap_or_default();
            match services::one(&shard, name).await {
                Ok(service) => reply::json(StatusCode::OK, &service),
                Err(refusal) => refusal.into_response(),
            }
        }
        (&Method::GET, "/api/v1/server") => {
            reply::json(StatusCode::OK, &status::server(shared, &settings))
        }
        (&Method::GET, "/api/v1/shards") => reply::json(StatusCode::OK, &status::shards(shared)),
        (&Method::GET, "/api/v1/cluster") => reply::json(StatusCode::OK, &status::cluster(shared)),
        (&Method::GET, "/api/v1/topics") => {
            reply::json(StatusCode::OK, &listings::topics(&shard).await)
        }
        (&Method::POST, path) if matches!(rooms::members_path(path), Some((_, None))) => {
            let room = rooms::members_path(path)
                .map_or("", |(room, _)| room)
                .to_owned();
            let body = match push_body::<rooms::MembersBody>(&shard, request, &settings).await {
                Ok(body) => body,
                Err(refused) => return refused,
            };
            let (user, info) = body.parts();
            match rooms::change_members(&shard, &settings, &room, user, info, true).await {
                Ok(changed) => reply::json(StatusCode::OK, &changed),
                Err(refusal) => refusal.into_response(),
            }
        }
        (&Method::DELETE, path) if matches!(rooms::members_path(path), Some((_, Some(_)))) => {
            let Some((room, Some(user))) = rooms::members_path(path) else {
                return reply::error(
                    StatusCode::NOT_FOUND,
                    ErrorCode::UNKNOWN_OP,
                    "no such endpoint",
                );
            };
            match rooms::change_members(&shard, &settings, room, user, None, false).await {
                Ok(changed) => reply::json(StatusCode::OK, &changed),
                Err(refusal) => refusal.into_response(),
            }
        }
        _ => reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UNKNOWN_OP,
            "method not allowed here",
        ),
    }
}

/// The command an HTTP route runs, and its parameters (`None`: the JSON body holds them):
/// the listings and admin operations are the built-in commands (`commands/`), so each has one
/// implementation whichever edge asks.
fn command_route(
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Option<(String, Option<serde_json::Value>)> {
    let from_query = || Params::query(query);
    let with = |key: &str, value: &str| {
        let mut params = Params::query(query);
        if let Some(map) = params.as_object_mut() {
            map.insert(key.to_owned(), value.into());
        }
        params
    };
    let (name, params) = match (method, path) {
        (&Method::GET, "/api/v1/connections") => ("connections", from_query()),
        (&Method::GET, "/api/v1/rooms") => ("rooms", from_query()),
        (&Method::GET, "/api/v1/services") => ("services", from_query()),
        (&Method::POST, "/api/v1/reload") => ("reload", serde_json::Value::Null),
        (&Method::POST, path) if path.starts_with(COMMAND_PREFIX) => {
            let name = path.get(COMMAND_PREFIX.len()..)?;
            return Some((name.to_owned(), None));
        }
        (&Method::DELETE, path) if path.starts_with(KICK_PREFIX) => {
            ("kick", with("client_id", path.get(KICK_PREFIX.len()..)?))
        }
        (&Method::GET, path) if path.starts_with(services::SERVICE_PREFIX) => (
            "services",
            with("name", path.get(services::SERVICE_PREFIX.len()..)?),
        ),
        (&Method::GET, path) if path.starts_with(rooms::HISTORY_PREFIX) => (
            "history",
            with("topic", path.get(rooms::HISTORY_PREFIX.len()..)?),
        ),
        (&Method::GET, path) => ("presence", with("room", rooms::presence_room(path)?)),
        _ => return None,
    };
    Some((name.to_owned(), Some(params)))
}

/// The JSON body of `POST /api/v1/cmd/{name}`: the parameters (empty: none).
async fn command_body(
    shard: &Shard,
    request: Request<Incoming>,
    settings: &HttpSettings,
) -> Result<serde_json::Value, Response<Body>> {
    let bytes = read_body(shard, request, settings).await?;
    if bytes.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        shard.metrics.error(ErrorCode::BAD_PARAMETER);
        reply::error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BAD_PARAMETER,
            &format!("the parameters are a JSON object: {e}"),
        )
    })
}

/// `POST /api/v1/cmd/{name}` runs any command.
const COMMAND_PREFIX: &str = "/api/v1/cmd/";

/// `DELETE /api/v1/connections/{id}` kicks a connection.
const KICK_PREFIX: &str = "/api/v1/connections/";

fn is_known(path: &str) -> bool {
    path.starts_with(KICK_PREFIX)
        || path.starts_with(COMMAND_PREFIX)
        || path.starts_with(services::SERVICE_PREFIX)
        || path.starts_with(rooms::HISTORY_PREFIX)
        || rooms::presence_room(path).is_some()
        || rooms::members_path(path).is_some()
        || matches!(
            path,
            "/healthz"
                | "/readyz"
                | "/metrics"
                | "/api/v1/server"
                | "/api/v1/shards"
                | "/api/v1/cluster"
                | "/api/v1/connections"
                | "/api/v1/topics"
                | "/api/v1/rooms"
                | "/api/v1/services"
                | "/ws"
                | "/js/shardbus.js"
                | "/demo"
                | "/demo/chat"
                | "/api/v1/publish"
                | "/api/v1/reload"
                | "/api/v1/request"
        )
}

/// Alive unless a shard has stopped or stalled: each shard's state and heartbeat age.
fn healthz(shared: &Arc<crate::server::Shared>) -> Response<Body> {
    let health = shared.shard_health();
    let shards: Vec<serde_json::Value> = health
        .iter()
        .enumerate()
        .map(|(shard, h)| {
            serde_json::json!({ "shard": shard, "state": h.name(), "heartbeat_age_ms": h.age_ms() })
        })
        .collect();
    let (status, word) = if health.iter().any(|h| h.is_failed()) {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    } else {
        (StatusCode::OK, "ok")
    };
    reply::json(
        status,
        &serde_json::json!({ "status": word, "shards": shards }),
    )
}

fn readyz(shared: &Arc<crate::server::Shared>) -> Response<Body> {
    if shared.is_ready() {
        // Degraded still serves: messaging never waits for Redis.
        let body = match shared.degraded() {
            Some(reason) => serde_json::json!({ "status": "degraded", "reason": reason }),
            None => serde_json::json!({ "status": "ready" }),
        };
        return reply::json(StatusCode::OK, &body);
    }
    let why = if shared.shutting_down() {
        "draining"
    } else if shared.failed_shard().is_some() {
        "unhealthy"
    } else {
        "starting"
    };
    reply::json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({ "status": why }),
    )
}

/// Reads a push body: at most `max_body` bytes of JSON of the push shape, all of it within
/// `http.body_timeout_ms`. A declared length over the limit is refused before any of the body
/// is read; a body that stalls gets 408. Both close the connection (the rest of the body is
/// never read, so the connection cannot carry another request).
async fn push_body<T: serde::de::DeserializeOwned>(
    shard: &Shard,
    request: Request<Incoming>,
    settings: &HttpSettings,
) -> Result<T, Response<Body>> {
    let bytes = read_body(shard, request, settings).await?;
    serde_json::from_slice(&bytes).map_err(|error| {
        Refusal::new(ErrorCode::BAD_PAYLOAD, format!("request body: {error}")).into_response()
    })
}

/// A request's body, within `max_body` bytes and `http.body_timeout_ms`.
async fn read_body(
    shard: &Shard,
    request: Request<Incoming>,
    settings: &HttpSettings,
) -> Result<bytes::Bytes, Response<Body>> {
    use hyper::body::Body as _;
    let declared = request.body().size_hint().lower();
    if declared > settings.max_body as u64 {
        shard.metrics.error(ErrorCode::PAYLOAD_TOO_LARGE);
        let message = format!(
            "the request body of {declared} bytes exceeds the limit of {} bytes",
            settings.max_body
        );
        return Err(closing(
            Refusal::new(ErrorCode::PAYLOAD_TOO_LARGE, message).into_response(),
        ));
    }
    let reading = async {
        Some(
            Limited::new(request.into_body(), settings.max_body)
                .collect()
                .await,
        )
    };
    let deadline = async {
        glommio::timer::sleep(settings.body_timeout).await;
        None
    };
    let bytes = match futures_lite::future::or(reading, deadline).await {
        Some(Ok(collected)) => collected.to_bytes(),
        Some(Err(error)) => {
            let code = if error.is::<http_body_util::LengthLimitError>() {
                ErrorCode::PAYLOAD_TOO_LARGE
            } else {
                ErrorCode::BAD_FRAME
            };
            shard.metrics.error(code);
            let refusal = Refusal::new(code, format!("request body: {error}"));
            return Err(closing(refusal.into_response()));
        }
        None => {
            shard.metrics.error(ErrorCode::TIMEOUT);
            let message = "the request body did not arrive within http.body_timeout_ms";
            return Err(closing(reply::error(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::TIMEOUT,
                message,
            )));
        }
    };
    Ok(bytes)
}

/// `response` with `Connection: close`.
fn closing(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}
