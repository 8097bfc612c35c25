//! The HTTP edge (issue #5): one listener per shard on `http_listen` (SO_REUSEPORT, as the
//! binary protocol's), served by hyper's HTTP/1 server over glommio sockets. Health, readiness,
//! Prometheus metrics, JSON status and the push API (`routes.rs`). Limits: the request head
//! (`http.max_header_bytes`, 431), the time to send it (`http.header_timeout_ms`, against
//! slowloris), the body (`limits.max_payload`, 413).

mod assets;
mod head;
mod io;
mod listings;
mod metrics;
pub(crate) mod payload;
mod push;
pub(crate) mod reply;
mod routes;
mod status;
mod timer;

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;
use hyper::server::conn::http1;
use hyper::service::service_fn;

use crate::config::Config;
use crate::shard::Shard;
use io::{HyperIo, Prefixed};
use timer::ShardTimer;

/// The HTTP edge's settings, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    pub(crate) header_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_body: usize,
    pub(crate) max_request_timeout_ms: u32,
    pub(crate) websocket_echo: bool,
    /// The configuration as the server runs it, for `/api/v1/server`.
    pub(crate) limits: serde_json::Value,
}

impl HttpSettings {
    pub(crate) fn new(config: &Config) -> HttpSettings {
        HttpSettings {
            header_timeout: Duration::from_millis(config.http.header_timeout_ms),
            max_header_bytes: config.http.max_header_bytes,
            max_body: config.limits.max_payload as usize,
            max_request_timeout_ms: config.http.max_request_timeout_ms,
            websocket_echo: config.http.websocket_echo,
            limits: serde_json::to_value(&config.limits).unwrap_or_default(),
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
        let _ = stream.set_nodelay(true);
        let remote = stream
            .peer_addr()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let (shard, settings) = (Rc::clone(&shard), Rc::clone(&settings));
        glommio::spawn_local(async move {
            let mut stream = stream;
            let head = head::read(
                &mut stream,
                settings.max_header_bytes,
                settings.header_timeout,
                settings.websocket_echo,
            )
            .await;
            match head {
                head::Head::WebSocket(head) => {
                    crate::ws::accept(shard, Prefixed::new(head, stream), remote).await;
                }
                head::Head::WebSocketEcho(head) => {
                    crate::ws::echo(&shard, Prefixed::new(head, stream)).await;
                }
                head::Head::Http(head) => {
                    serve_http(shard, settings, timer, Prefixed::new(head, stream)).await;
                }
                head::Head::Gone => {}
            }
        })
        .detach();
    }
}

/// Serves HTTP/1.1 requests on one connection.
async fn serve_http(
    shard: Rc<Shard>,
    settings: Rc<HttpSettings>,
    timer: ShardTimer,
    stream: Prefixed<glommio::net::TcpStream>,
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
