//! `serve` (an instance answering its requests) and `services` (what discovery lists).

use std::time::Duration;

use shardbus_protocol::client::{Client, ClientError, Instance, ServiceSpec};

use crate::output;

/// How long `serve` waits for a request in one go before checking the connection again.
const POLL: Duration = Duration::from_secs(1);

/// What `serve` was asked for.
pub struct Serve<'a> {
    pub name: &'a str,
    pub endpoints: &'a [String],
    pub version: &'a str,
    pub heartbeat: Duration,
    pub weight: u32,
    pub response: Option<&'a str>,
    pub delay: Duration,
    pub count: Option<u64>,
    pub json: bool,
}

/// Registers and answers until `count` requests were answered (or forever).
pub fn serve(client: &Client, args: &Serve<'_>) -> Result<(), ClientError> {
    let mut spec = ServiceSpec::new(args.version)
        .heartbeat(args.heartbeat)
        .weight(args.weight);
    for subject in args.endpoints {
        spec = spec.endpoint(subject);
    }
    let service = client.register(args.name, &spec)?;
    eprintln!(
        "registered {} instance {} on {}",
        args.name,
        service.id().unwrap_or(0),
        args.endpoints.join(", ")
    );
    let mut answered = 0;
    while args.count.is_none_or(|n| answered < n) {
        let request = match service.requests().recv_timeout(POLL) {
            Ok(request) => request,
            Err(ClientError::Timeout) => continue,
            Err(error) => return Err(error),
        };
        if !args.delay.is_zero() {
            std::thread::sleep(args.delay);
        }
        let answer = args.response.map_or_else(
            || request.payload().to_vec(),
            |text| text.as_bytes().to_vec(),
        );
        client.respond(&request, &answer)?;
        println!("{}", output::message(&request, args.json));
        answered += 1;
        if let Some((code, text)) = client.take_last_error() {
            eprintln!("server error {}: {text}", code.name());
        }
    }
    service.deregister()?;
    client.flush()
}

/// Prints the instances of the services `pattern` matches: one line each, or all of each
/// entry (`detail`).
pub fn list(
    client: &Client,
    pattern: &str,
    version: &str,
    detail: bool,
    json: bool,
) -> Result<(), ClientError> {
    let instances = client.discover(pattern, version)?;
    for instance in &instances {
        println!("{}", line(instance, detail, json));
    }
    eprintln!("{} instance(s)", instances.len());
    Ok(())
}

fn line(instance: &Instance, detail: bool, json: bool) -> String {
    if json || detail {
        return output::value(&instance.entry);
    }
    format!(
        "{} {} instance {} {} load {} [{}]",
        instance.name,
        instance.version,
        instance.id,
        instance.health.name(),
        instance.load,
        instance.endpoints.join(", ")
    )
}
