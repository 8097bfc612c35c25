//! Service instances for the tests: one that answers every request with a tag.

use std::time::Duration;

use shardbus_protocol::client::{Client, Service};

/// Answers every request to `service` with `tag` until the client closes (or a minute passes
/// without a request).
pub fn serve(client: &Client, service: Service, tag: &'static str) -> std::thread::JoinHandle<()> {
    let client = client.clone();
    std::thread::spawn(move || {
        while let Ok(request) = service.requests().recv_timeout(Duration::from_secs(60)) {
            if client.respond(&request, tag.as_bytes()).is_err() {
                return;
            }
        }
    })
}
