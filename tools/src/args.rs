//! The command line: global options and one subcommand per action.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Talk to a shardbus server: publish, subscribe, request, answer requests, read its status.
#[derive(Debug, Parser)]
#[command(name = "shardbus-cli", version)]
pub struct Args {
    /// Server address.
    #[arg(
        long,
        short,
        global = true,
        default_value = "127.0.0.1:7400",
        env = "SHARDBUS_SERVER"
    )]
    pub server: SocketAddr,
    /// Print one JSON object per line instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Client name shown in the server's status.
    #[arg(long, global = true, default_value = "shardbus-cli")]
    pub name: String,
    /// Speak TLS, trusting the CA certificates in this PEM file.
    #[arg(long, global = true, value_name = "PEM", env = "SHARDBUS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that require one; needs --tls-key.
    #[arg(long, global = true, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, global = true, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the server's address).
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Who to connect as.
    #[command(flatten)]
    pub credentials: Credentials,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Credentials for HELLO, for every command: a token, a user and password, or a JWT.
#[derive(Debug, clap::Args)]
pub struct Credentials {
    /// A static token (`[[auth.tokens]]`).
    #[arg(long, global = true, env = "SHARDBUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A user (`[[auth.users]]`); the password is asked for on a terminal when not given.
    #[arg(long, global = true, env = "SHARDBUS_USER")]
    pub user: Option<String>,
    /// The user's password.
    #[arg(
        long,
        global = true,
        env = "SHARDBUS_PASSWORD",
        hide_env_values = true,
        requires = "user"
    )]
    pub password: Option<String>,
    /// A JWT signed with a key the server has.
    #[arg(long, global = true, env = "SHARDBUS_JWT", hide_env_values = true)]
    pub jwt: Option<String>,
}

/// One action.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish a message (or `--count` copies of it).
    Pub {
        /// Subject to publish on.
        subject: String,
        /// Payload text.
        #[arg(default_value = "")]
        payload: String,
        /// Header `key=value`; repeat for several.
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// How many times to publish it.
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
    /// Print messages on a pattern (`*` one token, `>` the rest) until interrupted.
    Sub {
        /// Pattern to subscribe to.
        pattern: String,
        /// Join this queue group: each message goes to one member.
        #[arg(long, short)]
        queue: Option<String>,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Send a request and print the response.
    Req {
        /// Subject of the request.
        subject: String,
        /// Payload text.
        #[arg(default_value = "")]
        payload: String,
        /// How long to wait for the response, in milliseconds.
        #[arg(long, default_value_t = 5_000)]
        timeout_ms: u64,
    },
    /// Answer every request on a subject with a fixed response.
    Reply {
        /// Subject to answer on.
        subject: String,
        /// Response payload text.
        response: String,
        /// Join this queue group (the default `shardbus-cli-reply` lets several run).
        #[arg(long, short)]
        queue: Option<String>,
        /// Exit after answering this many requests.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Join a room and print its messages (with their offsets) and who joins and leaves,
    /// until interrupted.
    Join {
        /// The room (a subject a `[[rooms]]` pattern matches).
        room: String,
        /// Recover from `EPOCH:OFFSET` (the last message seen).
        #[arg(long)]
        from: Option<String>,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
    /// List who is in a room.
    Presence {
        /// The room.
        room: String,
        /// Only the counts of clients and users.
        #[arg(long)]
        stats: bool,
    },
    /// Print what a room kept, oldest first.
    History {
        /// The room.
        room: String,
        /// At most this many (0: all the room keeps, up to the server's page limit).
        #[arg(long, default_value_t = 0)]
        limit: u32,
        /// Only those after `EPOCH:OFFSET`.
        #[arg(long)]
        since: Option<String>,
        /// Newest first.
        #[arg(long)]
        reverse: bool,
    },
    /// Print the server's counters, per shard and in total.
    Status,
    /// Register a service instance and answer its requests (echoing each payload, or with
    /// `--response`) until interrupted; the client beats for it and registers it again after
    /// a reconnect.
    Serve {
        /// The service's name.
        name: String,
        /// An endpoint subject; repeat for several.
        #[arg(long = "endpoint", short, required = true)]
        endpoints: Vec<String>,
        /// The instance's SemVer version.
        #[arg(long, default_value = "1.0.0")]
        version: String,
        /// Heartbeat interval in milliseconds.
        #[arg(long, default_value_t = 1_000)]
        heartbeat_ms: u64,
        /// This instance's weight under the `weighted` strategy.
        #[arg(long, default_value_t = 0)]
        weight: u32,
        /// Answer with this text instead of echoing the request.
        #[arg(long)]
        response: Option<String>,
        /// Wait this long before answering each request (a slow instance).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Exit after answering this many requests.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Print system events (`$sys.events.<kind>`, one line each) until interrupted; needs an
    /// identity that may see them (admin, or a role in `[events] roles`).
    Events {
        /// Only these kinds (`connect`, `service_down`, ...); repeat for several. Default: all.
        #[arg(long = "kind", short)]
        kinds: Vec<String>,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// List the rooms with members (the `rooms` command), by name.
    Rooms,
    /// A live view of the server (`q` quits): rates per shard, the busiest connections, slow
    /// consumers, services, errors. The connections and services need an admin identity.
    Top {
        /// Seconds between looks (rates are over this interval).
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// What the connections are ordered by (`s` changes it on the screen).
        #[arg(long, value_enum, default_value_t = crate::top::SortKey::MsgsIn)]
        sort: crate::top::SortKey,
        /// Connections shown.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Connections asked for at most each look.
        #[arg(long, default_value_t = 10_000)]
        max_connections: u64,
        /// Look twice, one interval apart, print the view and exit (with `--json`: one JSON
        /// object).
        #[arg(long)]
        once: bool,
    },
    /// Run a built-in command (`help` lists them) and print its answer as JSON.
    Cmd {
        /// The command.
        name: String,
        /// A parameter `key=value` (numbers and true/false are typed); repeat for several.
        params: Vec<String>,
    },
    /// List the registered service instances, or one service's (`services info NAME`: with
    /// the figures the server measured, for identities the `services` command allows).
    Services {
        /// What to show.
        #[command(subcommand)]
        view: Option<ServicesView>,
        /// Only versions this SemVer requirement accepts (`^1.2`).
        #[arg(long, default_value = "")]
        version: String,
    },
}

/// What `services` shows.
#[derive(Debug, Subcommand)]
pub enum ServicesView {
    /// Every instance of one service, with its endpoints, metadata, health and load.
    Info {
        /// The service's name.
        name: String,
    },
}
