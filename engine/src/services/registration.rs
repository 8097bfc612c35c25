//! A registration as a client sends it (PROTOCOL.md §3.12): the REGISTER frame's container map
//! read into a [`Registration`], every field checked and every refusal naming its field. What
//! a registration may hold is bounded ([`Bounds`]), since every shard keeps a copy.

use semver::Version;
use shardbus_protocol::ErrorCode;
use shardbus_protocol::container::ContainerLimits;
use shardbus_protocol::container::view::{self, ValueRef};
use shardbus_protocol::topic::{validate_queue_group, validate_subject};

/// Sids from here up are the server's own (server-side room joins): an endpoint may not use
/// them.
const SERVER_SIDS: u64 = 1 << 52;

/// The queue group an endpoint's publications use when the registration names none (as the
/// NATS services convention does).
pub(crate) const DEFAULT_QUEUE: &str = "q";

/// One endpoint of an instance: requests on `subject` reach it on the connection's
/// subscription `sid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) subject: Box<str>,
    pub(crate) queue: Box<str>,
    pub(crate) sid: u64,
}

/// A checked registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registration {
    pub(crate) name: Box<str>,
    pub(crate) version: Version,
    pub(crate) description: Box<str>,
    pub(crate) metadata: Metadata,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) heartbeat_ms: u32,
    pub(crate) weight: u32,
}

/// What a registration may hold (`[registry]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) max_endpoints: usize,
    pub(crate) max_metadata: usize,
    pub(crate) min_heartbeat_ms: u32,
    pub(crate) max_heartbeat_ms: u32,
    pub(crate) max_topic_len: usize,
}

/// The most a weight may be: shares beyond a thousand to one say nothing more.
pub(crate) const MAX_WEIGHT: u32 = 1_000;

/// Why a registration (or a heartbeat) was refused: the code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

fn bad(message: impl Into<String>) -> Refused {
    Refused {
        code: ErrorCode::BAD_SERVICE,
        message: message.into(),
    }
}

/// Reads REGISTER's payload (`container`: whether the frame said it is one) for service `name`.
pub(crate) fn parse(
    name: &str,
    payload: &[u8],
    container: bool,
    heartbeat_ms: u32,
    bounds: &Bounds,
) -> Result<Registration, Refused> {
    if !container {
        return Err(bad("the registration is a container map (CONTAINER flag)"));
    }
    let limits = ContainerLimits {
        max_depth: 4,
        max_size: payload.len(),
    };
    let root = view::decode(payload, &limits)
        .map_err(|e| bad(format!("the registration does not decode: {e}")))?;
    let ValueRef::Map(map) = root else {
        return Err(bad("the registration is a container map"));
    };
    if !(bounds.min_heartbeat_ms..=bounds.max_heartbeat_ms).contains(&heartbeat_ms) {
        return Err(bad(format!(
            "heartbeat_ms: {heartbeat_ms} is outside {}..={}",
            bounds.min_heartbeat_ms, bounds.max_heartbeat_ms
        )));
    }
    let mut registration = Registration {
        name: name.into(),
        version: Version::new(0, 0, 0),
        description: "".into(),
        metadata: Vec::new(),
        endpoints: Vec::new(),
        heartbeat_ms,
        weight: 1,
    };
    let mut versioned = false;
    for (key, value) in map.iter() {
        match key {
            "version" => {
                let text = value.as_str().ok_or_else(|| bad("version: a string"))?;
                registration.version = Version::parse(text)
                    .map_err(|e| bad(format!("version: {text:?} is not SemVer ({e})")))?;
                versioned = true;
            }
            "description" => {
                let text = value.as_str().ok_or_else(|| bad("description: a string"))?;
                registration.description = text.into();
            }
            "metadata" => registration.metadata = metadata(value, bounds)?,
            "endpoints" => registration.endpoints = endpoints(value, bounds)?,
            "weight" => {
                let weight = value
                    .as_i64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n <= MAX_WEIGHT)
                    .ok_or_else(|| bad(format!("weight: an integer 0..={MAX_WEIGHT}")))?;
                registration.weight = weight.max(1);
            }
            other => return Err(bad(format!("{other}: not a registration field"))),
        }
    }
    if !versioned {
        return Err(bad("version: missing"));
    }
    if registration.endpoints.is_empty() {
        return Err(bad("endpoints: at least one"));
    }
    Ok(registration)
}

/// A registration's metadata: string pairs in the order sent.
pub(crate) type Metadata = Vec<(Box<str>, Box<str>)>;

fn metadata(value: ValueRef<'_>, bounds: &Bounds) -> Result<Metadata, Refused> {
    let ValueRef::Map(map) = value else {
        return Err(bad("metadata: a map of strings"));
    };
    if map.len() > bounds.max_metadata {
        return Err(bad(format!(
            "metadata: at most {} entries",
            bounds.max_metadata
        )));
    }
    map.iter()
        .map(|(key, value)| match value.as_str() {
            Some(text) => Ok((key.into(), text.into())),
            None => Err(bad(format!("metadata.{key}: a string"))),
        })
        .collect()
}

fn endpoints(value: ValueRef<'_>, bounds: &Bounds) -> Result<Vec<Endpoint>, Refused> {
    let ValueRef::List(list) = value else {
        return Err(bad("endpoints: a list of maps"));
    };
    if list.len() > bounds.max_endpoints {
        return Err(bad(format!("endpoints: at most {}", bounds.max_endpoints)));
    }
    let mut out: Vec<Endpoint> = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let endpoint = endpoint(i, entry, bounds)?;
        if out.iter().any(|e| e.subject == endpoint.subject) {
            return Err(bad(format!("endpoints[{i}].subject: listed twice")));
        }
        if out.iter().any(|e| e.sid == endpoint.sid) {
            return Err(bad(format!("endpoints[{i}].sid: used twice")));
        }
        out.push(endpoint);
    }
    Ok(out)
}

fn endpoint(i: usize, entry: ValueRef<'_>, bounds: &Bounds) -> Result<Endpoint, Refused> {
    let ValueRef::Map(map) = entry else {
        return Err(bad(format!("endpoints[{i}]: a map")));
    };
    let mut subject = None;
    let mut queue: Box<str> = DEFAULT_QUEUE.into();
    let mut sid = None;
    for (key, value) in map.iter() {
        match key {
            "subject" => {
                let text = value
                    .as_str()
                    .filter(|s| validate_subject(s.as_bytes(), bounds.max_topic_len).is_ok())
                    .filter(|s| !crate::events::is_reserved(s.as_bytes()))
                    .ok_or_else(|| {
                        bad(format!(
                            "endpoints[{i}].subject: a subject, no wildcards, not $sys."
                        ))
                    })?;
                subject = Some(text.into());
            }
            "queue" => {
                let text = value
                    .as_str()
                    .filter(|s| validate_queue_group(s.as_bytes(), bounds.max_topic_len).is_ok())
                    .ok_or_else(|| bad(format!("endpoints[{i}].queue: a queue group name")))?;
                queue = text.into();
            }
            "sid" => {
                let n = value
                    .as_i64()
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|n| (1..SERVER_SIDS).contains(n))
                    .ok_or_else(|| bad(format!("endpoints[{i}].sid: 1..2^52")))?;
                sid = Some(n);
            }
            other => {
                return Err(bad(format!(
                    "endpoints[{i}].{other}: not an endpoint field"
                )));
            }
        }
    }
    Ok(Endpoint {
        subject: subject.ok_or_else(|| bad(format!("endpoints[{i}].subject: missing")))?,
        queue,
        sid: sid.ok_or_else(|| bad(format!("endpoints[{i}].sid: missing")))?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;
    use shardbus_protocol::container::Value;

    const BOUNDS: Bounds = Bounds {
        max_endpoints: 4,
        max_metadata: 2,
        min_heartbeat_ms: 100,
        max_heartbeat_ms: 60_000,
        max_topic_len: 256,
    };

    fn map(entries: Vec<(&str, Value)>) -> Vec<u8> {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
        .to_binary()
        .unwrap()
    }

    fn endpoint(subject: &str, sid: u64) -> Value {
        Value::Map(vec![
            ("subject".into(), Value::Str(subject.into())),
            ("sid".into(), Value::U64(sid)),
        ])
    }

    fn refusal(payload: &[u8], heartbeat_ms: u32) -> String {
        parse("svc", payload, true, heartbeat_ms, &BOUNDS)
            .unwrap_err()
            .message
    }

    #[test]
    fn a_whole_registration_reads_and_each_bad_field_is_named() {
        let good = map(vec![
            ("version", Value::Str("1.2.3".into())),
            ("endpoints", Value::List(vec![endpoint("svc.echo", 7)])),
            ("weight", Value::U32(3)),
        ]);
        let reg = parse("svc", &good, true, 1_000, &BOUNDS).unwrap();
        assert_eq!(reg.version, Version::new(1, 2, 3));
        assert_eq!(reg.endpoints[0].queue.as_ref(), DEFAULT_QUEUE);
        assert_eq!(reg.weight, 3);
        assert!(refusal(&good, 10).starts_with("heartbeat_ms"));
        let no_version = map(vec![("endpoints", Value::List(vec![endpoint("a", 1)]))]);
        assert_eq!(refusal(&no_version, 1_000), "version: missing");
        let bad_version = map(vec![("version", Value::Str("one".into()))]);
        assert!(refusal(&bad_version, 1_000).starts_with("version: \"one\""));
        let wildcard = map(vec![
            ("version", Value::Str("1.0.0".into())),
            ("endpoints", Value::List(vec![endpoint("a.*", 1)])),
        ]);
        assert!(refusal(&wildcard, 1_000).starts_with("endpoints[0].subject"));
        let twice = map(vec![
            ("version", Value::Str("1.0.0".into())),
            (
                "endpoints",
                Value::List(vec![endpoint("a", 1), endpoint("a", 2)]),
            ),
        ]);
        assert_eq!(refusal(&twice, 1_000), "endpoints[1].subject: listed twice");
        let server_sid = map(vec![
            ("version", Value::Str("1.0.0".into())),
            ("endpoints", Value::List(vec![endpoint("a", 1 << 52)])),
        ]);
        assert!(refusal(&server_sid, 1_000).starts_with("endpoints[0].sid"));
        let unknown = map(vec![("colour", Value::Str("red".into()))]);
        assert_eq!(refusal(&unknown, 1_000), "colour: not a registration field");
        let too_many = map(vec![
            ("version", Value::Str("1.0.0".into())),
            (
                "endpoints",
                Value::List((1..=5).map(|i| endpoint(&format!("e{i}"), i)).collect()),
            ),
        ]);
        assert_eq!(refusal(&too_many, 1_000), "endpoints: at most 4");
        assert!(parse("svc", b"raw", false, 1_000, &BOUNDS).is_err());
    }
}
