//! `serve` (an instance answering its requests), `services` (what discovery lists, and the
//! `services` command's figures) and the parameters of `cmd`.

use std::time::Duration;

use shardbus_protocol::ErrorCode;
use shardbus_protocol::client::{Client, ClientError, Instance, ServiceSpec};
use shardbus_protocol::container::Value;

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

/// One service: the `services` command's answer (instances with the server's figures), or,
/// for an identity that may not run it, what discovery lists.
pub fn info(client: &Client, name: &str, version: &str, json: bool) -> Result<(), ClientError> {
    let params = Value::Map(vec![("name".into(), Value::Str(name.to_owned()))]);
    match client.command("services", &params) {
        Ok(answer) => {
            println!("{}", output::value(&answer));
            Ok(())
        }
        Err(ClientError::Server { code, .. }) if code == ErrorCode::PERMISSION_DENIED => {
            list(client, name, version, true, json)
        }
        Err(error) => Err(error),
    }
}

/// `key=value` arguments as a command's parameter map: digits are numbers, `true` and
/// `false` bools, anything else a string; none at all is no parameters.
pub fn params(pairs: &[String]) -> Value {
    if pairs.is_empty() {
        return Value::Null;
    }
    let entries = pairs
        .iter()
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = match value {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    digits
                        .parse()
                        .map_or_else(|_| Value::Str(digits.to_owned()), Value::U64)
                }
                text => Value::Str(text.to_owned()),
            };
            (key.to_owned(), value)
        })
        .collect();
    Value::Map(entries)
}
