//! `shardbus-cli top`: a live view of a server, as `nats top` is of NATS — messages and bytes
//! per second per shard and in total, the busiest connections, slow consumers, services and
//! errors, from the server's STATUS and its `connections` and `services` commands every
//! interval. `--once` looks twice, one interval apart, and prints the view (`--json`: as one
//! JSON object) for scripts.

mod sample;
mod screen;
mod view;

use std::time::Duration;

use shardbus_protocol::client::{Client, ClientError};

pub use view::SortKey;

/// How `top` looks.
#[derive(Debug, Clone)]
pub struct TopOptions {
    pub interval: Duration,
    pub sort: SortKey,
    /// Connections shown.
    pub limit: usize,
    /// Connections asked for at most, each look.
    pub max_connections: u64,
    pub once: bool,
    pub json: bool,
}

/// Runs `top` against the server `client` is connected to.
pub fn run(client: &Client, options: &TopOptions) -> Result<(), ClientError> {
    if !options.once {
        return screen::run(client, options);
    }
    let before = sample::Sample::take(client, options.max_connections)?;
    std::thread::sleep(options.interval);
    let now = sample::Sample::take(client, options.max_connections)?;
    let view = view::View::between(&before, &now, options.sort, options.limit);
    if options.json {
        println!("{}", view.to_json());
    } else {
        print!("{}", view.to_text());
    }
    Ok(())
}
