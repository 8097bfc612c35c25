//! The HTTP edge: one listener per shard on `http_listen` (SO_REUSEPORT, as the
//! binary protocol's), served by hyper's HTTP/1 server over glommio sockets. Health, readiness,
//! Prometheus metrics, JSON status and the push API (`routes.rs`). Limits: the request head
//! (`http.max_header_bytes`, 431), the time to send it (`http.header_timeout_ms`, against
//! slowloris, 408), the body (`limits.max_payload`, 413).

mod assets;
pub(crate) mod files;
mod head;
mod io;
pub(crate) mod listings;
mod metrics;
pub(crate) mod payload;
mod push;
pub(crate) mod reply;
pub(crate) mod rooms;
mod routes;
pub(crate) mod services;
mod status;
mod timer;

use std::rc::Rc;
use std::time::Duration;

use std::net::SocketAddr;

use glommio::net::{TcpListener, TcpStream};
use hyper::server::conn::http1;
use hyper::service::service_fn;

use crate::config::Config;
use crate::shard::Shard;
use crate::transport::{self, Accepted, Transport};
use head::Head;
use io::{HyperIo, Prefixed};
use shardbus_protocol::ErrorCode;
use timer::ShardTimer;

/// The HTTP edge's settings, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    pub(crate) header_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_body: usize,
    pub(crate) max_request_timeout_ms: u32,
    pub(crate) websocket_echo: bool,
    /// HTTPS and WSS, when configured (`Server::start` sets it).
    pub(crate) tls: Option<crate::tls::ServerTls>,
    /// The configuration as the server runs it, for `/api/v1/server`.
    pub(crate) limits: serde_json::Value,
    /// `[http] static_dir`'s files, when configured (`Server::start` reads them).
    pub(crate) files: Option<std::sync::Arc<files::StaticFiles>>,
}

impl HttpSettings {
    pub(crate) fn new(config: &Config) -> HttpSettings {
        HttpSettings {
            header_timeout: Duration::from_millis(config.http.header_timeout_ms),
            body_timeout: Duration::from_millis(config.http.body_timeout_ms),
            max_header_bytes: config.http.max_header_bytes,
            max_body: config.limits.max_payload as usize,
            max_request_timeout_ms: config.http.max_request_timeout_ms,
            websocket_echo: config.http.websocket_echo,
            tls: None,
            limits: serde_json::to_value(&config.limits).unwrap_or_default(),
            files: None,
        }
    }
}

/// Accepts and serves HTTP connections on this shard until the server shuts down.
pub(crate) async fn serve(shard: Rc<Shard>, listener: TcpListener, settings: HttpSettings) {
    let timer = ShardTimer::start();
    let settings = Rc::new(settings);
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(shard = shard.id, %error, "HTTP accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (shard, settings) = (Rc::clone(&shard), Rc::clone(&settings));
        glommio::spawn_local(connection(shard, settings, timer, Box::new(stream))).detach();
    }
}

/// One HTTP connection, from the TLS handshake to its end. Each phase runs in a boxed future
/// made in a statement of its own (see `shard::session::serve`), so a long-lived WebSocket's
/// task is not as large as the largest phase before it.
async fn connection(
    shard: Rc<Shard>,
    settings: Rc<HttpSettings>,
    timer: ShardTimer,
    stream: Box<TcpStream>,
) {
    let opening = Box::pin(open(Rc::clone(&shard), Rc::clone(&settings), stream));
    let Some((stream, head, remote)) = opening.await else {
        return;
    };
    let serving: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> = match head {
        Head::WebSocket(head) => Box::pin(crate::ws::accept(
            shard,
            Prefixed::new(head, stream),
            remote,
        )),
        Head::WebSocketEcho(head) => Box::pin(async move {
            crate::ws::echo(&shard, Prefixed::new(head, stream)).await;
        }),
        Head::Http(head) => Box::pin(serve_http(
            shard,
            settings,
            timer,
            Prefixed::new(head, stream),
        )),
        Head::TooLarge => Box::pin(refuse_head(
            shard,
            stream,
            431,
            ErrorCode::BAD_HEADERS,
            "the request head is larger than http.max_header_bytes",
        )),
        Head::TimedOut => Box::pin(refuse_head(
            shard,
            stream,
            408,
            ErrorCode::TIMEOUT,
            "the request head did not arrive within http.header_timeout_ms",
        )),
        Head::Gone => return,
    };
    serving.await;
}

/// The TLS handshake (or the refusal of plaintext) and the first request head: the transport,
/// the head and the peer's address, or `None` when the connection is done.
async fn open(
    shard: Rc<Shard>,
    settings: Rc<HttpSettings>,
    stream: Box<TcpStream>,
) -> Option<(Transport, Head, SocketAddr)> {
    let stream = *stream;
    let _ = stream.set_nodelay(true);
    let remote = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let tls = settings.tls.as_ref();
    let mut stream = match transport::accept(tls, stream, settings.header_timeout).await {
        Accepted::Ready(transport) => transport,
        Accepted::PlaintextRefused(stream) => {
            refuse_plaintext(stream).await;
            return None;
        }
        Accepted::Failed => {
            shard.metrics.add(crate::metrics::Metric::TlsFailures, 1);
            return None;
        }
    };
    let head = head::read(
        &mut stream,
        settings.max_header_bytes,
        settings.header_timeout,
        settings.websocket_echo,
    )
    .await;
    Some((stream, head, remote))
}

/// Answers a first request head that is too large (431) or too slow (408) with `status` and
/// the JSON error body of `code`, counts it, and closes.
async fn refuse_head(
    shard: Rc<Shard>,
    mut stream: Transport,
    status: u16,
    code: ErrorCode,
    message: &str,
) {
    shard.metrics.error(code);
    let response = close_with(status, code, message);
    transport::refuse(&mut stream, response.as_bytes()).await;
}

/// Answers a plaintext client of a TLS-only server: 400 with `TLS_REQUIRED`, then closes.
async fn refuse_plaintext(mut stream: glommio::net::TcpStream) {
    let response = close_with(
        400,
        ErrorCode::TLS_REQUIRED,
        "this server accepts HTTPS only",
    );
    transport::refuse(&mut stream, response.as_bytes()).await;
}

/// A whole response, written before hyper serves the connection: `status`, the JSON error
/// body of `code`, and `connection: close`.
fn close_with(status: u16, code: ErrorCode, message: &str) -> String {
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let body = reply::error_body(code, message).to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Serves HTTP/1.1 requests on one connection.
async fn serve_http(
    shard: Rc<Shard>,
    settings: Rc<HttpSettings>,
    timer: ShardTimer,
    stream: Prefixed<Transport>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(timer)
        .header_read_timeout(settings.header_timeout)
        .max_buf_size(settings.max_header_bytes);
    let service =
        service_fn(|request| routes::handle(Rc::clone(&shard), Rc::clone(&settings), request));
    if let Err(error) = builder
        .serve_connection(HyperIo::new(stream), service)
        .await
    {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}
