//! The WebSocket JSON mapping (PROTOCOL.md §9): a text message is one JSON object naming an op,
//! turned into the binary frame the shard handles; each frame the shard sends a JSON client
//! is turned back into one such object. Payloads go through `http::payload` (JSON data ↔
//! containers, with simd-json). 64-bit ids a browser cannot hold exactly (reply tokens, client
//! and reference ids) travel as decimal strings.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use shardbus_protocol::{
    ErrorCode, Fields, Frame, HeadersBuilder, Health, HelloOptions, Limits, PROTOCOL_VERSION,
    RoomFields, RoomFlags, ServiceFields, decode, encode,
};

use crate::http::payload::{self, PayloadIn};
use crate::http::reply::Refusal;

/// `headers`: a map of strings on most ops, the HEADERS option (a bool) on `hello`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HeadersField {
    Flag(bool),
    Map(BTreeMap<String, String>),
}

/// `version`: the protocol version on `hello`, a SemVer version on `register` and a SemVer
/// requirement on `discover`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum VersionField {
    Protocol(u16),
    Text(String),
}

/// One client message, every op's fields together (each op reads the ones it needs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonIn<'a> {
    op: String,
    #[serde(default)]
    id: u32,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    sid: Option<u64>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    max_msgs: Option<u64>,
    #[serde(default)]
    request_id: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<u32>,
    #[serde(default)]
    reply: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    data_base64: Option<String>,
    #[serde(default)]
    headers: Option<HeadersField>,
    #[serde(default)]
    version: Option<VersionField>,
    #[serde(default)]
    echo: Option<bool>,
    #[serde(default)]
    verbose: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    pass: Option<String>,
    #[serde(default)]
    jwt: Option<String>,
    /// Rooms: a history's epoch (decimal string), an offset in it.
    #[serde(default)]
    epoch: Option<String>,
    #[serde(default)]
    offset: Option<u64>,
    /// Rooms: the member info a join carries.
    #[serde(default, borrow)]
    info: Option<&'a RawValue>,
    /// Rooms: a presence page's cursor (decimal string) and size, a history's count and order.
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    reverse: Option<bool>,
    /// Services: a registration's parts, an instance (decimal string), its health and load.
    #[serde(default, borrow)]
    endpoints: Option<&'a RawValue>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    heartbeat_ms: Option<u32>,
    #[serde(default)]
    instance: Option<String>,
    #[serde(default)]
    health: Option<String>,
    #[serde(default)]
    load: Option<u32>,
}

impl JsonIn<'_> {
    /// A `register`'s description as the JSON object its container payload is made from.
    fn registration(&self) -> Result<String, Refusal> {
        let mut object = serde_json::Map::new();
        match &self.version {
            Some(VersionField::Text(version)) => {
                object.insert("version".into(), version.clone().into());
            }
            _ => return Err(missing("version (a SemVer string)", "register")),
        }
        let raw = |r: &RawValue| serde_json::from_str::<serde_json::Value>(r.get());
        let endpoints = self
            .endpoints
            .ok_or_else(|| missing("endpoints", "register"))?;
        let endpoints = raw(endpoints).map_err(|_| missing("endpoints as JSON", "register"))?;
        object.insert("endpoints".into(), endpoints);
        if let Some(metadata) = self.metadata {
            let metadata = raw(metadata).map_err(|_| missing("metadata as JSON", "register"))?;
            object.insert("metadata".into(), metadata);
        }
        if let Some(description) = &self.description {
            object.insert("description".into(), description.clone().into());
        }
        if let Some(weight) = self.weight {
            object.insert("weight".into(), weight.into());
        }
        Ok(serde_json::Value::Object(object).to_string())
    }

    /// The instance a `heartbeat` or `deregister` names.
    fn instance(&self, op: &str) -> Result<u64, Refusal> {
        self.instance
            .as_deref()
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| missing("instance (a decimal string)", op))
    }
}

/// The position a room op's `epoch` and `offset` name, as room fields.
fn position_fields(msg: &JsonIn<'_>, op: &str) -> Result<RoomFields, Refusal> {
    let Some(epoch) = msg.epoch.as_deref() else {
        return Ok(RoomFields::default());
    };
    let epoch = epoch
        .parse()
        .map_err(|_| missing("epoch as a decimal string", op))?;
    Ok(RoomFields {
        epoch,
        offset: msg.offset.ok_or_else(|| missing("offset with epoch", op))?,
        flags: RoomFlags::FROM_POSITION,
        ..RoomFields::default()
    })
}

fn missing(field: &str, op: &str) -> Refusal {
    Refusal::new(ErrorCode::BAD_FRAME, format!("{op} needs {field}"))
}

/// Appends the binary frame (with its length prefix) that JSON message `text` asks for.
///
/// # Errors
/// A [`Refusal`] with the code a malformed message earns: `BAD_FRAME` (not JSON, unknown
/// field, missing field), `UNKNOWN_OP`, `INVALID_TOPIC`, `BAD_HEADERS`, `BAD_PAYLOAD`, ...
/// The refusal carries the message's `id` when it has one, for the ERR's `op_id`.
pub(crate) fn frame_from_json(
    text: &str,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<u32, (u32, Refusal)> {
    let msg: JsonIn<'_> = match serde_json::from_str(text) {
        Ok(msg) => msg,
        Err(e) => {
            let refusal = Refusal::new(ErrorCode::BAD_FRAME, format!("not a JSON op: {e}"));
            return Err((id_of(text), refusal));
        }
    };
    let id = msg.id;
    encode_json(msg, limits, out).map_err(|refusal| (id, refusal))
}

/// The `id` of a message that did not parse as an op, when it has a numeric one.
fn id_of(text: &str) -> u32 {
    #[derive(Deserialize)]
    struct Id {
        #[serde(default)]
        id: u32,
    }
    serde_json::from_str::<Id>(text).map_or(0, |m| m.id)
}

fn encode_json(msg: JsonIn<'_>, limits: &Limits, out: &mut Vec<u8>) -> Result<u32, Refusal> {
    let op = msg.op.as_str();
    let topic = msg.topic.as_deref().unwrap_or("");
    let mut headers = HeadersBuilder::new();
    if let Some(HeadersField::Map(map)) = &msg.headers {
        for (key, value) in map {
            headers
                .insert(key, value)
                .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        }
    }
    if op == "hello" {
        let credentials = [
            ("name", &msg.name),
            ("token", &msg.token),
            ("user", &msg.user),
            ("pass", &msg.pass),
            ("jwt", &msg.jwt),
        ];
        for (key, value) in credentials {
            if let Some(value) = value {
                headers
                    .insert(key, value)
                    .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
            }
        }
    }
    let registration = if op == "register" {
        let text = msg.registration()?;
        Some(
            RawValue::from_string(text)
                .map_err(|e| Refusal::new(ErrorCode::BAD_FRAME, e.to_string()))?,
        )
    } else {
        None
    };
    let payload_in = PayloadIn {
        data: match op {
            "join" => msg.info,
            "register" => registration.as_deref(),
            _ => msg.data,
        },
        text: msg.text.as_deref(),
        data_base64: msg.data_base64.as_deref(),
    };
    let (mut payload, flags) = payload_in.to_bytes(limits.max_payload as usize)?;
    let fields = match op {
        "hello" => {
            let mut options = HelloOptions(0);
            let on = |flag: Option<bool>, default: bool| flag.unwrap_or(default);
            if on(msg.echo, false) {
                options = HelloOptions(options.0 | HelloOptions::ECHO.0);
            }
            if on(msg.verbose, false) {
                options = HelloOptions(options.0 | HelloOptions::VERBOSE.0);
            }
            if !matches!(msg.headers, Some(HeadersField::Flag(false))) {
                options = HelloOptions(options.0 | HelloOptions::HEADERS.0);
            }
            Fields::Hello {
                version: match msg.version {
                    Some(VersionField::Protocol(v)) => v,
                    Some(VersionField::Text(_)) => return Err(missing("version as a number", op)),
                    None => PROTOCOL_VERSION,
                },
                options,
            }
        }
        "pub" => Fields::Pub,
        "sub" => {
            payload = msg.queue.clone().unwrap_or_default().into_bytes();
            Fields::Sub {
                sid: msg.sid.ok_or_else(|| missing("sid", op))?,
            }
        }
        "unsub" => Fields::Unsub {
            sid: msg.sid.ok_or_else(|| missing("sid", op))?,
            max_msgs: msg.max_msgs.unwrap_or(0),
        },
        "req" => Fields::Req {
            request_id: msg.request_id.ok_or_else(|| missing("request_id", op))?,
            timeout_ms: msg.timeout_ms.unwrap_or(5_000),
        },
        "resp" => Fields::Resp {
            id: msg
                .reply
                .as_deref()
                .and_then(|r| r.parse().ok())
                .ok_or_else(|| missing("reply (a decimal string)", op))?,
        },
        "ping" => Fields::Ping,
        "pong" => Fields::Pong,
        "status" => Fields::Status,
        "join" => Fields::Join(RoomFields {
            sid: msg.sid.ok_or_else(|| missing("sid", op))?,
            ..position_fields(&msg, op)?
        }),
        "leave" => Fields::Leave(RoomFields::default()),
        "presence" | "presence_stats" => Fields::Presence(RoomFields {
            offset: match msg.cursor.as_deref() {
                Some(cursor) => cursor
                    .parse()
                    .map_err(|_| missing("cursor as a decimal string", op))?,
                None => 0,
            },
            count: msg.limit.unwrap_or(0),
            flags: if op == "presence_stats" {
                RoomFlags::STATS_ONLY
            } else {
                RoomFlags::default()
            },
            ..RoomFields::default()
        }),
        "history" => {
            let position = position_fields(&msg, op)?;
            let reverse = if msg.reverse == Some(true) {
                RoomFlags::REVERSE
            } else {
                RoomFlags::default()
            };
            Fields::History(RoomFields {
                sid: msg.sid.unwrap_or(0),
                count: msg.limit.unwrap_or(0),
                flags: position.flags.with(reverse),
                ..position
            })
        }
        "register" => Fields::Register(ServiceFields {
            heartbeat_ms: msg.heartbeat_ms.unwrap_or(5_000),
            ..ServiceFields::default()
        }),
        "heartbeat" => Fields::Heartbeat(ServiceFields {
            instance: msg.instance(op)?,
            load: msg.load.unwrap_or(0),
            health: match msg.health.as_deref() {
                None => Health::Ok,
                Some(name) => Health::from_name(name)
                    .ok_or_else(|| missing("health: ok, degraded or draining", op))?,
            },
            ..ServiceFields::default()
        }),
        "deregister" => Fields::Deregister(ServiceFields {
            instance: msg.instance(op)?,
            ..ServiceFields::default()
        }),
        "discover" => {
            payload = match &msg.version {
                Some(VersionField::Text(requirement)) => requirement.clone().into_bytes(),
                Some(VersionField::Protocol(major)) => major.to_string().into_bytes(),
                None => Vec::new(),
            };
            Fields::Discover(ServiceFields::default())
        }
        other => {
            return Err(Refusal::new(
                ErrorCode::UNKNOWN_OP,
                format!("unknown op {other:?}"),
            ));
        }
    };
    // Only the sections the op carries (PROTOCOL.md §2.4): a field another op would use is
    // ignored here rather than turned into a malformed frame that closes the connection.
    let (takes_topic, takes_headers, takes_payload) = match fields {
        Fields::Pub | Fields::Req { .. } => (true, true, true),
        Fields::Sub { .. } => (true, false, true),
        Fields::Resp { .. } => (false, true, true),
        Fields::Hello { .. } => (false, true, false),
        Fields::Join(_) => (true, false, true),
        Fields::Leave(_) | Fields::Presence(_) | Fields::History(_) => (true, false, false),
        Fields::Register(_) | Fields::Discover(_) => (true, false, true),
        _ => (false, false, false),
    };
    let topic = match fields {
        Fields::Register(_) => msg.name.as_deref().unwrap_or(topic),
        Fields::Discover(_) if topic.is_empty() => ">",
        _ => topic,
    };
    let mut frame = Frame::new(fields).with_op_id(msg.id);
    if takes_topic {
        frame = frame.with_topic(topic);
    }
    if takes_headers {
        frame = frame.with_headers(headers.headers());
    }
    if takes_payload {
        frame = frame.with_flags(flags).with_payload(&payload);
    }
    encode(&frame, out).map_err(|e| Refusal::new(e.code(), e.to_string()))?;
    Ok(msg.id)
}

/// Writes `"key":value` (value already JSON) after a comma.
fn field(out: &mut String, key: &str, value: &str) {
    out.push(',');
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
    out.push_str(value);
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A room frame's fields as JSON (PROTOCOL.md §9.1): only those its op gives meaning to.
fn room_fields(out: &mut String, frame: &Frame<'_>, room: RoomFields) {
    field(out, "topic", &quoted(frame.topic_str()));
    let flag = |bit| room.flags.contains(bit);
    match frame.fields {
        Fields::Join(_) | Fields::History(_) => {
            field(out, "sid", &room.sid.to_string());
            if flag(RoomFlags::POSITIONED) {
                field(out, "epoch", &quoted(&room.epoch.to_string()));
                field(out, "offset", &room.offset.to_string());
            }
            field(out, "count", &room.count.to_string());
            if let Fields::Join(_) = frame.fields {
                field(out, "recovered", &flag(RoomFlags::RECOVERED).to_string());
            }
        }
        Fields::Presence(_) => {
            if room.offset != 0 {
                field(out, "cursor", &quoted(&room.offset.to_string()));
            }
            field(out, "count", &room.count.to_string());
        }
        Fields::Leave(_) => field(out, "sid", &room.sid.to_string()),
        Fields::Member(_) => {
            field(out, "sid", &room.sid.to_string());
            let event = if flag(RoomFlags::JOINED) {
                "join"
            } else {
                "leave"
            };
            field(out, "event", &quoted(event));
        }
        _ => {}
    }
}

/// The JSON message for one whole frame (with its length prefix) the shard sent; `None` for a
/// frame that cannot be decoded (never produced by the shard).
pub(crate) fn json_from_frame(bytes: &[u8], limits: &Limits) -> Option<String> {
    let frame = decode(bytes, limits).ok()?;
    let mut out = String::from("{\"op\":");
    let op = match frame.fields {
        Fields::Welcome(_) => "welcome",
        Fields::Msg { .. } => "msg",
        Fields::Resp { .. } => "resp",
        Fields::Ok => "ok",
        Fields::Err { .. } => "err",
        Fields::Ping => "ping",
        Fields::Pong => "pong",
        Fields::Drain { .. } => "drain",
        Fields::Status => "status",
        Fields::Join(_) => "join",
        Fields::Presence(_) => "presence",
        Fields::Member(_) => "member",
        Fields::History(_) => "history",
        Fields::Leave(_) => "leave",
        Fields::Register(_) => "register",
        Fields::Discover(_) => "discover",
        _ => return None,
    };
    out.push_str(&quoted(op));
    field(&mut out, "id", &frame.op_id.to_string());
    match frame.fields {
        Fields::Welcome(w) => {
            field(&mut out, "version", &w.version.to_string());
            field(&mut out, "shard", &w.shard.to_string());
            field(&mut out, "client_id", &quoted(&w.client_id.to_string()));
            field(&mut out, "max_topic_len", &w.max_topic_len.to_string());
            field(&mut out, "max_payload", &w.max_payload.to_string());
            field(&mut out, "max_frame", &w.max_frame.to_string());
            field(
                &mut out,
                "max_subscriptions",
                &w.max_subscriptions.to_string(),
            );
            field(
                &mut out,
                "ping_interval_ms",
                &w.ping_interval_ms.to_string(),
            );
        }
        Fields::Msg { sid, seq, reply } => {
            field(&mut out, "topic", &quoted(frame.topic_str()));
            field(&mut out, "sid", &sid.to_string());
            field(&mut out, "seq", &seq.to_string());
            if reply != 0 {
                field(&mut out, "reply", &quoted(&reply.to_string()));
            }
        }
        Fields::Resp { id } => field(&mut out, "request_id", &id.to_string()),
        Fields::Err {
            code,
            retry_after_ms,
            ref_id,
        } => {
            field(&mut out, "code", &code.0.to_string());
            field(&mut out, "name", &quoted(code.name()));
            field(
                &mut out,
                "message",
                &quoted(&String::from_utf8_lossy(frame.payload)),
            );
            if ref_id != 0 {
                field(&mut out, "ref", &quoted(&ref_id.to_string()));
            }
            if retry_after_ms != 0 {
                field(&mut out, "retry_after_ms", &retry_after_ms.to_string());
            }
        }
        Fields::Drain { grace_ms } => field(&mut out, "grace_ms", &grace_ms.to_string()),
        Fields::Join(room)
        | Fields::Leave(room)
        | Fields::Presence(room)
        | Fields::Member(room)
        | Fields::History(room) => {
            room_fields(&mut out, &frame, room);
        }
        Fields::Register(service) => {
            field(&mut out, "topic", &quoted(frame.topic_str()));
            field(&mut out, "instance", &quoted(&service.instance.to_string()));
            field(&mut out, "heartbeat_ms", &service.heartbeat_ms.to_string());
        }
        Fields::Discover(service) => {
            field(&mut out, "topic", &quoted(frame.topic_str()));
            field(&mut out, "count", &service.count.to_string());
        }
        _ => {}
    }
    // A room publication's position is the message's own `epoch` and `offset`, not headers.
    let position =
        |key: &str| key.eq_ignore_ascii_case("sb-epoch") || key.eq_ignore_ascii_case("sb-offset");
    if let Fields::Msg { .. } = frame.fields {
        if let Some(epoch) = frame.headers.get("sb-epoch") {
            field(&mut out, "epoch", &quoted(epoch));
        }
        if let Some(offset) = frame
            .headers
            .get("sb-offset")
            .and_then(|o| o.parse::<u64>().ok())
        {
            field(&mut out, "offset", &offset.to_string());
        }
    }
    if frame.headers.iter().any(|(k, _)| !position(k)) {
        let map: serde_json::Map<String, serde_json::Value> = frame
            .headers
            .iter()
            .filter(|(k, _)| !position(k))
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        field(
            &mut out,
            "headers",
            &serde_json::Value::Object(map).to_string(),
        );
    }
    let carries_payload = match frame.fields {
        Fields::Msg { .. } | Fields::Resp { .. } | Fields::Status | Fields::Discover(_) => true,
        Fields::Join(_) | Fields::Presence(_) | Fields::Member(_) => !frame.payload.is_empty(),
        _ => false,
    };
    if carries_payload {
        let max = limits.max_payload as usize;
        match payload::to_json(frame.flags, frame.payload, max) {
            Ok((key, value)) => field(&mut out, key, &value),
            Err(refusal) => field(&mut out, "payload_error", &quoted(&refusal.message)),
        }
    }
    out.push('}');
    Some(out)
}
