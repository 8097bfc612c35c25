//! How messages, responses and status print: one human line, or one JSON object per line.
//! Payloads print as text when they are UTF-8, as their JSON value when flagged as a
//! container, and as `{"$bytes": base64}` otherwise.

use std::fmt::Write as _;

use base64::Engine as _;
use shardbus_protocol::Flags;
use shardbus_protocol::client::{Joined, MemberEvent, Message};
use shardbus_protocol::container::{ContainerLimits, Value};

/// A JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The payload as a JSON value.
fn payload_json(message: &Message) -> String {
    if message.flags().contains(Flags::CONTAINER)
        && let Ok(value) = message.value(&ContainerLimits::default())
        && let Ok(json) = value.to_json()
    {
        return String::from_utf8_lossy(&json).into_owned();
    }
    match std::str::from_utf8(message.payload()) {
        Ok(text) => json_string(text),
        Err(_) => format!(
            "{{\"$bytes\":\"{}\"}}",
            base64::engine::general_purpose::STANDARD.encode(message.payload())
        ),
    }
}

/// The payload for a human: text, the container's JSON, or a byte count.
fn payload_text(message: &Message) -> String {
    if message.flags().contains(Flags::CONTAINER) {
        return payload_json(message);
    }
    match std::str::from_utf8(message.payload()) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("<{} bytes>", message.payload().len()),
    }
}

fn headers_json(message: &Message) -> String {
    let entries: Vec<String> = message
        .headers()
        .iter()
        .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
        .collect();
    format!("{{{}}}", entries.join(","))
}

/// A delivered message.
pub fn message(message: &Message, json: bool) -> String {
    if json {
        format!(
            "{{\"subject\":{},\"seq\":{},\"headers\":{},\"payload\":{}}}",
            json_string(message.topic()),
            message.seq(),
            headers_json(message),
            payload_json(message)
        )
    } else if let Some((epoch, offset)) = position(message) {
        format!(
            "[#{}] {} @{epoch}:{offset}: {}",
            message.seq(),
            message.topic(),
            payload_text(message)
        )
    } else {
        format!(
            "[#{}] {}: {}",
            message.seq(),
            message.topic(),
            payload_text(message)
        )
    }
}

/// A room publication's position, from its `sb-` headers.
fn position(message: &Message) -> Option<(&str, &str)> {
    let headers = message.headers();
    Some((headers.get("sb-epoch")?, headers.get("sb-offset")?))
}

/// A value as JSON text.
/// A container value as one line of JSON.
pub fn value(value: &Value) -> String {
    value_json(value)
}

fn value_json(value: &Value) -> String {
    value
        .to_json()
        .map(|j| String::from_utf8_lossy(&j).into_owned())
        .unwrap_or_else(|_| "null".to_owned())
}

/// What JOIN answered.
pub fn joined(room: &str, joined: &Joined, json: bool) -> String {
    if json {
        return format!(
            "{{\"joined\":{},\"epoch\":\"{}\",\"offset\":{},\"count\":{},\"recovered\":{},\"clients\":{},\"users\":{}}}",
            json_string(room),
            joined.epoch,
            joined.offset,
            joined.count,
            joined.recovered,
            joined.clients,
            joined.users
        );
    }
    let mut line = format!(
        "joined {room}: {} clients, {} users",
        joined.clients, joined.users
    );
    if joined.positioned {
        line.push_str(&format!(
            "; position {}:{}, {} kept publication(s) follow{}",
            joined.epoch,
            joined.offset,
            joined.count,
            if joined.recovered {
                ", nothing missed"
            } else {
                ""
            }
        ));
    }
    line
}

/// A member of a room (presence).
pub fn member(member: &Value, json: bool) -> String {
    if json {
        return value_json(member);
    }
    let text = |key: &str| match member.get(key) {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::U64(n)) => n.to_string(),
        _ => String::new(),
    };
    let mut line = format!(
        "{} {} {}",
        text("client"),
        text("user"),
        json_string(&text("name"))
    );
    // In a cluster: the node the member is connected to (client ids are each node's own).
    let node = text("node");
    if !node.is_empty() {
        line.push_str(" on ");
        line.push_str(&node);
    }
    line
}

/// Another member joined or left.
pub fn member_event(event: &MemberEvent, json: bool) -> String {
    let kind = if event.joined { "joined" } else { "left" };
    if json {
        return format!(
            "{{\"event\":\"{kind}\",\"member\":{}}}",
            value_json(&event.member)
        );
    }
    format!("{kind}: {}", member(&event.member, false))
}

/// A response to a request.
pub fn response(message: &Message, json: bool) -> String {
    if json {
        format!(
            "{{\"headers\":{},\"payload\":{}}}",
            headers_json(message),
            payload_json(message)
        )
    } else {
        payload_text(message)
    }
}

/// The status map: JSON as is, or a table of counters per shard for a human.
pub fn status(value: &Value, json: bool) -> String {
    if json {
        return value
            .to_json()
            .map(|j| String::from_utf8_lossy(&j).into_owned())
            .unwrap_or_default();
    }
    let mut out = String::new();
    if let Some(Value::Map(server)) = value.get("server") {
        let fields: Vec<String> = server
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect();
        let _ = writeln!(out, "server: {}", fields.join(" "));
    }
    let shards: &[Value] = match value.get("shards") {
        Some(Value::List(shards)) => shards,
        _ => &[],
    };
    let Some(Value::Map(totals)) = value.get("totals") else {
        return out;
    };
    let _ = write!(out, "{:<26}", "counter");
    for i in 0..shards.len() {
        let _ = write!(out, "{:>12}", format!("shard {i}"));
    }
    let _ = writeln!(out, "{:>12}", "total");
    for (name, total) in totals {
        // The error counts follow; the latency histogram is for tools that chart it.
        if name == "errors" || name == "request_latency" {
            continue;
        }
        let _ = write!(out, "{name:<26}");
        for shard in shards {
            let _ = write!(
                out,
                "{:>12}",
                shard.get(name).map(scalar).unwrap_or_default()
            );
        }
        let _ = writeln!(out, "{:>12}", scalar(total));
    }
    if let Some(Value::Map(errors)) = totals.iter().find(|(k, _)| k == "errors").map(|(_, v)| v) {
        let listed: Vec<String> = errors
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect();
        let text = if listed.is_empty() {
            "none".to_owned()
        } else {
            listed.join(" ")
        };
        let _ = writeln!(out, "errors sent: {text}");
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::U64(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::Str(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// The events of one `$sys.events.<kind>` publication (a container list), one JSON object a
/// line.
pub fn events(message: &Message) -> Vec<String> {
    match message.value(&shardbus_protocol::container::ContainerLimits::default()) {
        Ok(Value::List(events)) => events.iter().map(value_json).collect(),
        Ok(other) => vec![value_json(&other)],
        Err(_) => vec![payload_text(message)],
    }
}

/// The `rooms` command's answer: one line a room (`room clients users home shard`), or the
/// whole answer as JSON.
pub fn rooms(answer: &Value, json: bool) -> String {
    if json {
        return format!("{}\n", value_json(answer));
    }
    let mut out = String::new();
    if let Some(Value::List(rooms)) = answer.get("rooms") {
        for room in rooms {
            let text = |key: &str| match room.get(key) {
                Some(Value::Str(s)) => s.clone(),
                Some(other) => value_json(other),
                None => String::new(),
            };
            out.push_str(&format!(
                "{} clients {} users {} home shard {}\n",
                text("room"),
                text("clients"),
                text("users"),
                text("home_shard")
            ));
        }
    }
    out
}
