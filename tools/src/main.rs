//! `shardbus-cli`: publish, subscribe, request, reply and read a server's status from a shell.
//! Human-readable output by default, `--json` for scripts; on failure, exit status 1 and the
//! error (with the server's code name) on stderr.

mod args;
mod credentials;
mod output;
mod services;
mod top;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shardbus_protocol::client::{
    Client, ClientError, ClientOptions, ClientTls, HistoryQuery, JoinOptions, Room, Subscription,
};
use shardbus_protocol::{Flags, HeadersBuilder};

use args::{Args, Command, ServicesView};

/// How long `sub` and `reply` wait in one go before checking the connection again.
const POLL: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args = Args::parse();
    let client = match connect(&args) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("shardbus-cli: {error}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args, &client) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            match client.terminal_error() {
                // Terminal: the client does not reconnect, and neither does the CLI.
                Some((code, text)) => eprintln!(
                    "shardbus-cli: the server closed the connection for good: {} ({text})",
                    code.name()
                ),
                // A server error's text already names its code.
                None => eprintln!("shardbus-cli: {error}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Connects as the arguments say and tells stderr where it landed.
fn connect(args: &Args) -> Result<Client, String> {
    let mut options = ClientOptions::new().name(&args.name);
    if let Some(ca) = &args.tls_ca {
        options = options.tls(ClientTls {
            ca: ca.clone(),
            identity: args.tls_cert.clone().zip(args.tls_key.clone()),
            server_name: args.tls_server_name.clone(),
        });
    }
    let options = credentials::apply(&args.credentials, options)?;
    let client = Client::connect_with(args.server, options)
        .map_err(|error| format!("cannot connect to {}: {error}", args.server))?;
    if let Some(welcome) = client.server_info() {
        eprintln!(
            "connected to {} (shard {}, client id {})",
            args.server, welcome.shard, welcome.client_id
        );
    }
    Ok(client)
}

fn run(args: &Args, client: &Client) -> Result<(), ClientError> {
    match &args.command {
        Command::Pub {
            subject,
            payload,
            headers,
            count,
        } => {
            let mut block = HeadersBuilder::new();
            for header in headers {
                let (key, value) = header.split_once('=').unwrap_or((header, ""));
                block.insert(key, value)?;
            }
            for _ in 0..*count {
                client.publish_with(
                    subject,
                    block.headers(),
                    Flags::empty(),
                    payload.as_bytes(),
                )?;
            }
            client.flush()?;
            if !args.json {
                eprintln!("published {count} message(s) on {subject}");
            }
        }
        Command::Sub {
            pattern,
            queue,
            count,
        } => {
            let sub = subscribe(client, pattern, queue.as_deref())?;
            eprintln!("subscribed to {pattern}");
            receive(client, &sub, *count, |message| {
                println!("{}", output::message(&message, args.json));
                Ok(())
            })?;
        }
        Command::Req {
            subject,
            payload,
            timeout_ms,
        } => {
            let response = client.request(
                subject,
                payload.as_bytes(),
                Duration::from_millis(*timeout_ms),
            )?;
            println!("{}", output::response(&response, args.json));
        }
        Command::Reply {
            subject,
            response,
            queue,
            count,
        } => {
            let group = queue.as_deref().unwrap_or("shardbus-cli-reply");
            let sub = subscribe(client, subject, Some(group))?;
            eprintln!("answering requests on {subject}");
            receive(client, &sub, *count, |request| {
                if request.is_request() {
                    client.respond(&request, response.as_bytes())?;
                    println!("{}", output::message(&request, args.json));
                }
                Ok(())
            })?;
            client.flush()?;
        }
        Command::Join { room, from, count } => {
            let from = from.as_deref().map(position).transpose()?;
            let joined = client.join_with(room, JoinOptions { info: None, from })?;
            eprintln!("{}", output::joined(room, joined.joined(), args.json));
            join_loop(client, &joined, *count, args.json)?;
        }
        Command::Presence { room, stats } => {
            let mut cursor = 0;
            loop {
                let page = client.presence(room, cursor, 0)?;
                if cursor == 0 {
                    eprintln!("{room}: {} clients, {} users", page.clients, page.users);
                }
                if *stats {
                    break;
                }
                for member in &page.members {
                    println!("{}", output::member(member, args.json));
                }
                match page.cursor {
                    Some(next) => cursor = next,
                    None => break,
                }
            }
        }
        Command::History {
            room,
            limit,
            since,
            reverse,
        } => {
            let after = since.as_deref().map(position).transpose()?;
            let query = HistoryQuery {
                limit: *limit,
                after,
                reverse: *reverse,
            };
            let history = client.history(room, query)?;
            for message in &history.publications {
                println!("{}", output::message(message, args.json));
            }
            eprintln!(
                "{room}: {} publication(s); epoch {}, last offset {}",
                history.publications.len(),
                history.epoch,
                history.offset
            );
        }
        Command::Serve {
            name,
            endpoints,
            version,
            heartbeat_ms,
            weight,
            response,
            delay_ms,
            count,
        } => {
            let serve = services::Serve {
                name,
                endpoints,
                version,
                heartbeat: Duration::from_millis(*heartbeat_ms),
                weight: *weight,
                response: response.as_deref(),
                delay: Duration::from_millis(*delay_ms),
                count: *count,
                json: args.json,
            };
            services::serve(client, &serve)?;
        }
        Command::Services { view, version } => match view {
            None => services::list(client, ">", version, false, args.json)?,
            Some(ServicesView::Info { name }) => services::info(client, name, version, args.json)?,
        },
        Command::Events { kinds, count } => {
            let patterns: Vec<String> = if kinds.is_empty() {
                vec!["$sys.events.>".to_owned()]
            } else {
                kinds.iter().map(|k| format!("$sys.events.{k}")).collect()
            };
            let subs = patterns
                .iter()
                .map(|p| subscribe(client, p, None))
                .collect::<Result<Vec<_>, _>>()?;
            // A refused SUB (PERMISSION_DENIED) arrives before the flush's PONG.
            if let Some((code, message)) = client.take_last_error() {
                return Err(ClientError::Server {
                    code,
                    message,
                    retry_after_ms: 0,
                });
            }
            eprintln!("watching {}", patterns.join(", "));
            let mut seen = 0;
            while count.is_none_or(|n| seen < n) {
                for sub in &subs {
                    let message = match sub.recv_timeout(POLL / 4) {
                        Ok(message) => message,
                        Err(ClientError::Timeout) => continue,
                        Err(error) => return Err(error),
                    };
                    for event in output::events(&message) {
                        if count.is_none_or(|n| seen < n) {
                            println!("{event}");
                            seen += 1;
                        }
                    }
                }
                if let Some((code, text)) = client.take_last_error() {
                    eprintln!("server error {}: {text}", code.name());
                }
            }
        }
        Command::Rooms => {
            let answer = client.command("rooms", &shardbus_protocol::container::Value::Null)?;
            print!("{}", output::rooms(&answer, args.json));
        }
        Command::Cmd { name, params } => {
            let answer = client.command(name, &services::params(params))?;
            println!("{}", output::value(&answer));
        }
        Command::Top {
            interval,
            sort,
            limit,
            max_connections,
            once,
        } => {
            let options = top::TopOptions {
                interval: Duration::from_secs_f64(interval.clamp(0.1, 3600.0)),
                sort: *sort,
                limit: *limit,
                max_connections: *max_connections,
                once: *once,
                json: args.json,
            };
            top::run(client, &options)?;
        }
        Command::Status => {
            let status = client.status()?;
            print!("{}", output::status(&status, args.json));
            if args.json {
                println!();
            }
        }
    }
    client.close();
    Ok(())
}

/// An `EPOCH:OFFSET` argument.
fn position(text: &str) -> Result<(u64, u64), ClientError> {
    let parsed = text
        .split_once(':')
        .and_then(|(epoch, offset)| Some((epoch.parse().ok()?, offset.parse().ok()?)));
    parsed.ok_or(ClientError::Protocol(
        shardbus_protocol::ProtocolError::BadSection {
            op: "JOIN",
            problem: "a position is EPOCH:OFFSET, two decimal numbers",
        },
    ))
}

/// Prints a room's messages and its members' arrivals and departures until `count` messages
/// arrived (or forever).
fn join_loop(
    client: &Client,
    room: &Room,
    count: Option<u64>,
    json: bool,
) -> Result<(), ClientError> {
    let mut received = 0;
    while count.is_none_or(|n| received < n) {
        while let Ok(event) = room.next_event(Duration::ZERO) {
            println!("{}", output::member_event(&event, json));
        }
        match room.recv_timeout(POLL) {
            Ok(message) => {
                println!("{}", output::message(&message, json));
                received += 1;
            }
            Err(ClientError::Timeout) => {}
            Err(error) => return Err(error),
        }
        if let Some((code, text)) = client.take_last_error() {
            eprintln!("server error {}: {text}", code.name());
        }
    }
    Ok(())
}

/// Subscribes and waits until the subscription is in effect on every shard.
fn subscribe(
    client: &Client,
    pattern: &str,
    queue: Option<&str>,
) -> Result<Subscription, ClientError> {
    let sub = match queue {
        Some(group) => client.queue_subscribe(pattern, group)?,
        None => client.subscribe(pattern)?,
    };
    client.flush()?;
    Ok(sub)
}

/// Hands each message to `each` until `count` arrived (or forever), saying on stderr when the
/// connection is lost and when it is back, and naming every ERR the server sends.
fn receive(
    client: &Client,
    sub: &Subscription,
    count: Option<u64>,
    mut each: impl FnMut(shardbus_protocol::client::Message) -> Result<(), ClientError>,
) -> Result<(), ClientError> {
    let mut received = 0;
    let (mut connected, mut reconnects) = (true, 0);
    while count.is_none_or(|n| received < n) {
        let next = sub.recv_timeout(POLL);
        if let Some((code, text)) = client.take_last_error() {
            eprintln!("server error {}: {text}", code.name());
        }
        if connected && !client.is_connected() && client.terminal_error().is_none() {
            eprintln!("connection lost; reconnecting");
        } else if client.reconnects() > reconnects && client.is_connected() {
            reconnects = client.reconnects();
            let shard = client.server_info().map_or(0, |w| w.shard);
            eprintln!("reconnected (shard {shard}, reconnect {reconnects})");
        }
        connected = client.is_connected();
        match next {
            Ok(message) => {
                each(message)?;
                received += 1;
            }
            Err(ClientError::Timeout) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
