//! The bridge thread's loop: connect (loading the scripts), then send what the shards queued
//! as pipelines of at most `MAX_BATCH`, answer each request, and on a broken connection fail
//! what is waiting and reconnect with backoff, answering `Failed` at once while Redis is away.
//! An outage is logged when it starts and when it ends, never per request.

use std::time::{Duration, Instant};

use redis::{Client, Connection, RedisResult, Value};

use super::{Bridge, Done, RedisConfig};
use crate::history::redis::{Outcome, Request, Scripts};
use crate::routing::ShardId;

/// Requests sent as one pipeline at most.
const MAX_BATCH: usize = 512;
/// The first wait before reconnecting, doubled after each failed attempt up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long the thread parks with nothing to do (a `stop` unparks it sooner).
const IDLE_PARK: Duration = Duration::from_secs(1);

/// What the thread needs of `[redis]`.
pub(super) struct Settings {
    timeout: Duration,
    prefix: String,
}

impl Settings {
    pub(super) fn new(config: &RedisConfig) -> Settings {
        Settings {
            timeout: Duration::from_millis(config.timeout_ms),
            prefix: config.key_prefix.clone(),
        }
    }
}

/// A client for `config.url`, with `config.ca_file`'s roots for TLS.
pub(crate) fn client(config: &RedisConfig) -> Result<Client, String> {
    let Some(ca_file) = &config.ca_file else {
        return Client::open(config.url.as_str()).map_err(|e| e.to_string());
    };
    let root = std::fs::read(ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))?;
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root),
    };
    Client::build_with_tls(config.url.as_str(), certificates).map_err(|e| e.to_string())
}

/// Runs until `bridge.stop()`; `tried` hears when the first connection attempt is over.
pub(super) fn run(
    bridge: &Bridge,
    client: &Client,
    settings: &Settings,
    tried: std::sync::mpsc::SyncSender<()>,
) {
    let scripts = Scripts::new();
    let mut backoff = MIN_BACKOFF;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut tried = Some(tried);
    while !bridge.stopping() {
        let connected = connect(client, settings, &scripts);
        if connected.is_ok()
            && let Some(lasted) = bridge.status.set_up()
        {
            tracing::info!(after_ms = lasted.as_millis() as u64, "redis reachable");
        }
        if let Some(tried) = tried.take() {
            let _ = tried.send(());
        }
        let why = match connected {
            Ok(mut connection) => {
                backoff = MIN_BACKOFF;
                serve(bridge, &mut connection, settings, &scripts, &mut batch)
            }
            Err(error) => error.to_string(),
        };
        if bridge.stopping() {
            return;
        }
        if bridge.status.set_down(&why) {
            tracing::warn!(reason = %why, "redis unreachable: history goes on in memory");
        }
        // Away: everything asked is answered at once until the next attempt.
        let retry_at = Instant::now() + backoff;
        while !bridge.stopping() {
            fail_waiting(bridge, &mut batch);
            let left = retry_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::park_timeout(left);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn connect(client: &Client, settings: &Settings, scripts: &Scripts) -> RedisResult<Connection> {
    let mut connection = client.get_connection_with_timeout(settings.timeout)?;
    connection.set_read_timeout(Some(settings.timeout))?;
    connection.set_write_timeout(Some(settings.timeout))?;
    scripts.load(&mut connection)?;
    Ok(connection)
}

/// Serves requests until the connection breaks or the bridge stops; returns why it ended,
/// leaving in `batch` the requests it could not answer.
fn serve(
    bridge: &Bridge,
    connection: &mut Connection,
    settings: &Settings,
    scripts: &Scripts,
    batch: &mut Vec<(ShardId, Request)>,
) -> String {
    loop {
        if bridge.stopping() {
            return "stopping".to_owned();
        }
        while batch.len() < MAX_BATCH {
            let Some(request) = bridge.requests.pop() else {
                break;
            };
            batch.push(request);
        }
        if batch.is_empty() {
            std::thread::park_timeout(IDLE_PARK);
            continue;
        }
        let mut answers = send(connection, settings, scripts, batch);
        if let Err(error) = &answers
            && is_no_script(error)
        {
            // Redis lost its scripts (SCRIPT FLUSH, or a restart behind a proxy): load them
            // and send the batch once more.
            answers = scripts
                .load(connection)
                .and_then(|()| send(connection, settings, scripts, batch));
        }
        match answers {
            Ok(answers) => {
                let mut answers = answers.into_iter();
                for (shard, request) in batch.drain(..) {
                    let outcome = match answers.next() {
                        Some(answer) => request.outcome(answer),
                        None => Outcome::Failed,
                    };
                    bridge.answer(shard, Done { request, outcome });
                }
            }
            // The batch is failed by the caller after it marks Redis down, so whoever is
            // answered "failed" already sees the outage in readiness and status.
            Err(error) => return error.to_string(),
        }
    }
}

/// Sends the batch as one pipeline; per-request errors are kept as that request's answer.
fn send(
    connection: &mut Connection,
    settings: &Settings,
    scripts: &Scripts,
    batch: &[(ShardId, Request)],
) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for (_, request) in batch {
        request.add_to(&mut pipe, scripts, &settings.prefix);
    }
    let answers: Vec<RedisResult<Value>> = pipe.query(connection)?;
    if let Some(Err(error)) = answers.iter().find(|a| a.as_ref().is_err_and(is_no_script)) {
        return Err(error.clone());
    }
    Ok(answers)
}

fn is_no_script(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

fn fail_batch(bridge: &Bridge, batch: &mut Vec<(ShardId, Request)>) {
    for (shard, request) in batch.drain(..) {
        let done = Done {
            request,
            outcome: Outcome::Failed,
        };
        bridge.answer(shard, done);
    }
}

fn fail_waiting(bridge: &Bridge, batch: &mut Vec<(ShardId, Request)>) {
    while let Some(request) = bridge.requests.pop() {
        batch.push(request);
    }
    fail_batch(bridge, batch);
}
