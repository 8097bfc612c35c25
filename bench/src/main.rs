//! `shardbus-bench`: load scenarios against shardbus, nats-server, or nothing (the tool's own
//! ceiling), in the spirit of `nats bench`. One table row (or JSON object) per run.

mod cpu;
mod error;
mod report;
mod scenario;
mod stamp;
mod wire;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use error::BenchError;
use report::Report;
use scenario::conns::Conns;
use scenario::flow::{Flow, Sharing};
use scenario::reqrep::{Driver, ReqRep};
use scenario::room::{RoomLoad, RoomTarget};
use wire::Target;

/// Load scenarios for shardbus and nats-server.
#[derive(Debug, Parser)]
#[command(name = "shardbus-bench", version)]
struct Args {
    /// What to measure: shardbus://host:port, ws://host:port (shardbus over the WebSocket
    /// edge), nats://host:port, or null (no server: the tool's own ceiling).
    #[arg(
        long,
        short,
        global = true,
        default_value = "shardbus://127.0.0.1:7400"
    )]
    target: Target,
    /// Messages per publisher (requests per requester for reqrep).
    #[arg(long, short = 'n', global = true, default_value_t = 1_000_000)]
    msgs: u64,
    /// Payload size in bytes (at least 8: the send stamp).
    #[arg(long, short, global = true, default_value_t = 16)]
    size: usize,
    /// Publishes per socket write.
    #[arg(long, global = true, default_value_t = 256)]
    batch: usize,
    /// Fixed send rate per publisher in messages per second (latency under load, corrected
    /// for coordinated omission), or requests per second per requester for `reqrep` and
    /// `service`; default: as fast as possible.
    #[arg(long, global = true)]
    rate: Option<u64>,
    /// Threads the subscribers of `pubsub` and `queue` share, each waiting on its sockets
    /// with poll(2); 0: a thread per subscriber. Default: one per core.
    #[arg(long, global = true)]
    subscriber_threads: Option<usize>,
    /// A short unmeasured run first, with a tenth of the messages.
    #[arg(long, global = true)]
    warmup: bool,
    /// Pin load threads round robin over the cores (read once at start).
    #[arg(long, global = true)]
    pin: bool,
    /// Print JSON lines instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// The broker's process id(s), comma-separated: the report gives their CPU share beside
    /// the tool's (and `conns` the broker's memory per connection).
    #[arg(long, global = true, value_delimiter = ',')]
    server_pid: Vec<String>,
    /// Credentials for shardbus targets: a static token.
    #[arg(long, global = true, env = "SHARDBUS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A user (needs --password).
    #[arg(long, global = true, env = "SHARDBUS_USER", requires = "password")]
    user: Option<String>,
    /// The user's password.
    #[arg(long, global = true, env = "SHARDBUS_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// A JWT.
    #[arg(long, global = true, env = "SHARDBUS_JWT", hide_env_values = true)]
    jwt: Option<String>,
    /// The scenario.
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Publishers only.
    Pub {
        /// Publishers.
        #[arg(long, short, default_value_t = 1)]
        pubs: usize,
    },
    /// P publishers to S subscribers, each subscriber gets every message (fan-out: S > 1).
    Pubsub {
        /// Publishers.
        #[arg(long, short, default_value_t = 1)]
        pubs: usize,
        /// Subscribers.
        #[arg(long = "subs", short = 'S', default_value_t = 1)]
        subs: usize,
    },
    /// P publishers to W workers in one queue group.
    Queue {
        /// Publishers.
        #[arg(long, short, default_value_t = 1)]
        pubs: usize,
        /// Workers.
        #[arg(long, short, default_value_t = 4)]
        workers: usize,
    },
    /// N connections each subscribed to its own subject, held while the broker's RSS is read;
    /// then one message to each.
    Conns {
        /// Connections to hold.
        #[arg(long, short, default_value_t = 10_000)]
        connections: usize,
        /// After the run, keep the connections open this long (another run can measure the
        /// broker meanwhile); "holding" is printed on stderr when it starts.
        #[arg(long, default_value_t = 0)]
        hold_secs: u64,
    },
    /// N members of one room over WebSocket and one publisher, with at most `window` messages
    /// in flight: `--target ws://host:http_port` (shardbus, the room must match a `[[rooms]]`
    /// pattern) or `socketio://host:port` (perf/socketio/server.js). `-n` is messages, `-s`
    /// their size (at least 20).
    Room {
        /// Members.
        #[arg(long, short, default_value_t = 1_000)]
        members: usize,
        /// Messages in flight.
        #[arg(long, short, default_value_t = 64)]
        window: u64,
        /// Threads reading the members' sockets.
        #[arg(long, default_value_t = 1)]
        readers: usize,
        /// The room.
        #[arg(long, default_value = "bench.room")]
        room: String,
        /// Publish on another broker of the same kind than the members' (`--target`): another
        /// node of a cluster, so every delivery crosses between nodes.
        #[arg(long)]
        publish_to: Option<Target>,
    },
    /// C synchronous requesters to R responders.
    Reqrep {
        #[command(flatten)]
        load: Requests,
    },
    /// Requests to a shardbus service: the responders register as its instances and the
    /// server balances requests over them by the service's strategy (its `[[services]]`
    /// entry), else as `reqrep`.
    Service {
        /// The service's name (the broker's `[[services]]` entry for it picks the strategy).
        #[arg(long, default_value = "bench")]
        name: String,
        #[command(flatten)]
        load: Requests,
    },
}

/// The shape of a request/reply run.
#[derive(Debug, Clone, clap::Args)]
struct Requests {
    /// Concurrent requesters.
    #[arg(long, short, default_value_t = 1)]
    clients: usize,
    /// Responders (a service's instances).
    #[arg(long, short, default_value_t = 1)]
    responders: usize,
    /// Responders that are slow (see `--slow-us`).
    #[arg(long, default_value_t = 0)]
    slow: usize,
    /// A slow responder's time per request, in microseconds.
    #[arg(long, default_value_t = 2_000)]
    slow_us: u64,
    /// How the tool drives its connections: `poll` puts the requesters on one thread and the
    /// responders on another, each waiting on its sockets with poll(2); `threads` gives every
    /// connection a thread of its own (the tool's wake-ups then cost as much as the broker's).
    /// A WebSocket target runs `threads`.
    #[arg(long, value_enum, default_value_t = Driver::Poll)]
    driver: Driver,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => eprintln!("shardbus-bench: {e}"),
                }
            } else {
                println!("{}", Report::table_header());
                println!("{}", report.table_row());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shardbus-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Report, BenchError> {
    let mut credentials: Vec<(&str, &str)> = Vec::new();
    let given = [
        ("token", args.token.as_deref()),
        ("user", args.user.as_deref()),
        ("pass", args.password.as_deref()),
        ("jwt", args.jwt.as_deref()),
    ];
    for (key, value) in given {
        if let Some(value) = value {
            credentials.push((key, value));
        }
    }
    wire::set_credentials(&credentials).map_err(|e| BenchError::Setup(e.to_string()))?;
    // core_affinity reports the calling thread's mask: read it before anything is pinned.
    let cores: Vec<usize> = if args.pin {
        core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect()
    } else {
        Vec::new()
    };
    let flow = |publishers, subscribers, sharing, msgs| Flow {
        target: args.target,
        publishers,
        subscribers,
        sharing,
        msgs,
        size: args.size,
        batch: args.batch.max(1),
        rate: args.rate,
        drain: Duration::from_secs(5),
        cores: cores.clone(),
        progress: !args.json,
        subscriber_threads: if args.target.pollable() {
            args.subscriber_threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        } else {
            0
        },
    };
    let reqrep = |load: &Requests, requests, service: Option<&String>| ReqRep {
        target: args.target,
        requesters: load.clients,
        responders: load.responders,
        requests,
        size: args.size,
        cores: cores.clone(),
        service: service.cloned(),
        slow: load.slow,
        slow_time: Duration::from_micros(load.slow_us),
        rate: args.rate,
        driver: if args.target.pollable() {
            load.driver
        } else {
            Driver::Threads
        },
    };
    let once = |msgs: u64| -> Result<Report, BenchError> {
        match args.scenario {
            Scenario::Pub { pubs } => flow(pubs, 0, Sharing::Each, msgs).run("pub"),
            Scenario::Pubsub { pubs, subs } => flow(pubs, subs, Sharing::Each, msgs).run("pubsub"),
            Scenario::Queue { pubs, workers } => {
                flow(pubs, workers, Sharing::Queue, msgs).run("queue")
            }
            Scenario::Reqrep { ref load } => reqrep(load, msgs, None).run(),
            Scenario::Service { ref name, ref load } => reqrep(load, msgs, Some(name)).run(),
            Scenario::Conns {
                connections,
                hold_secs,
            } => Conns {
                target: args.target,
                connections,
                server_pid: args.server_pid.first().and_then(|pid| pid.parse().ok()),
                size: args.size,
                hold: Duration::from_secs(hold_secs),
            }
            .run(),
            Scenario::Room {
                members,
                window,
                readers,
                ref room,
                ref publish_to,
            } => {
                let room_target = |target: &Target| match *target {
                    Target::ShardbusWs(addr) => Ok(RoomTarget::Shardbus(addr)),
                    Target::SocketIo(addr) => Ok(RoomTarget::SocketIo(addr)),
                    ref other => Err(BenchError::Setup(format!(
                        "room runs over ws://host:port or socketio://host:port, not {other}"
                    ))),
                };
                let target = room_target(&args.target)?;
                let publish_to = match publish_to {
                    Some(other) => room_target(other)?,
                    None => target,
                };
                RoomLoad {
                    target,
                    publish_to,
                    room: room.clone(),
                    members,
                    msgs,
                    size: args.size,
                    window: window.max(1),
                    readers,
                }
                .run()
            }
        }
    };
    if args.warmup {
        once((args.msgs / 10).max(1))?;
    }
    let clock = cpu::CpuClock::start(&args.server_pid);
    let mut report = once(args.msgs)?;
    let share = clock.share();
    report.tool_cpu_percent = Some(share.tool_percent);
    report.server_cpu_percent = share.server_percent;
    report.host_steal_percent = share.steal_percent;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for warning in [share.warning(cores), share.steal_warning()]
        .into_iter()
        .flatten()
    {
        eprintln!("shardbus-bench: warning: {warning}");
    }
    Ok(report)
}
