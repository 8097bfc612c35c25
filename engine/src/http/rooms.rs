//! Rooms over HTTP: `GET /api/v1/rooms` (every home shard's rooms, merged and paged),
//! `GET /api/v1/rooms/{room}/presence`, `GET /api/v1/history/{topic}`, and the recipient count
//! of `POST /api/v1/publish` with `room`. Presence and history are PRESENCE and HISTORY frames
//! of an in-process client with the caller's identity (`push.rs`), so the permissions, limits
//! and codes are the binary protocol's.

use std::rc::Rc;
use std::sync::Arc;

use hyper::StatusCode;
use shardbus_protocol::container::{self, ContainerLimits};
use shardbus_protocol::{
    ErrorCode, Fields, Flags, Frame, Headers, HelloOptions, RoomFields, RoomFlags, encode,
};

use super::HttpSettings;
use super::payload;
use super::push::{Answer, exchange_all};
use super::reply::{self, Body, Refusal};
use crate::auth::Identity;
use crate::shard::Shard;
use crate::shard::listing::Listing;

/// `/api/v1/rooms/{room}/presence`.
pub(crate) const PRESENCE_PREFIX: &str = "/api/v1/rooms/";
const PRESENCE_SUFFIX: &str = "/presence";
/// `/api/v1/history/{topic}`.
pub(crate) const HISTORY_PREFIX: &str = "/api/v1/history/";

/// The room a `/api/v1/rooms/{room}/presence` path names.
pub(crate) fn presence_room(path: &str) -> Option<&str> {
    path.strip_prefix(PRESENCE_PREFIX)?
        .strip_suffix(PRESENCE_SUFFIX)
        .filter(|room| !room.is_empty())
}

/// The room (and user) a `/api/v1/rooms/{room}/members[/{user}]` path names.
pub(crate) fn members_path(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix(PRESENCE_PREFIX)?;
    let (room, tail) = rest.split_once("/members")?;
    if room.is_empty() {
        return None;
    }
    match tail {
        "" => Some((room, None)),
        user => user
            .strip_prefix('/')
            .filter(|u| !u.is_empty() && !u.contains('/'))
            .map(|u| (room, Some(u))),
    }
}

/// The body of `POST /api/v1/rooms/{room}/members`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MembersBody {
    user: String,
    #[serde(default)]
    info: Option<Box<serde_json::value::RawValue>>,
}

/// `POST /api/v1/rooms/{room}/members` (join every connection of `user`) and
/// `DELETE /api/v1/rooms/{room}/members/{user}` (take them out): `{"ok": true, "changed": N}`.
pub(crate) async fn change_members(
    shard: &Rc<Shard>,
    settings: &HttpSettings,
    room: &str,
    user: &str,
    info: Option<&serde_json::value::RawValue>,
    join: bool,
) -> Result<serde_json::Value, Refusal> {
    if !shard.is_room(room.as_bytes()) {
        return Err(Refusal::new(
            ErrorCode::NOT_A_ROOM,
            "no [[rooms]] pattern matches the room",
        ));
    }
    let info = match info {
        Some(info) => {
            let payload = payload::PayloadIn {
                data: Some(info),
                ..payload::PayloadIn::default()
            };
            let max = (shard.settings.max_member_info as usize).min(settings.max_body);
            let (bytes, _) = payload.to_bytes(max)?;
            if bytes.len() > shard.settings.max_member_info as usize {
                return Err(Refusal::new(
                    ErrorCode::PAYLOAD_TOO_LARGE,
                    "member info over max_member_info",
                ));
            }
            bytes
        }
        None => Vec::new(),
    };
    let change = crate::shard::room_admin::MemberChange {
        user,
        room: room.as_bytes(),
        info: &info,
        join,
    };
    let changed = shard.change_members_everywhere(change).await;
    Ok(serde_json::json!({ "ok": true, "changed": changed }))
}

impl MembersBody {
    /// The user, and the member info as JSON.
    pub(crate) fn parts(&self) -> (&str, Option<&serde_json::value::RawValue>) {
        (&self.user, self.info.as_deref())
    }
}

/// The `rooms` command (`GET /api/v1/rooms?offset=&limit=`): rooms with members, by name,
/// with their counts; in a cluster one entry per room and node (each room has a home on every
/// node its members use), each naming its `node`.
pub(crate) async fn list(shard: &Shard, offset: usize, limit: usize) -> serde_json::Value {
    let gathered = shard.gather_everywhere(Listing::Rooms).await;
    let mut rooms = gathered.items;
    let key = |item: &serde_json::Value| {
        let text = |name| {
            item.get(name)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        (text("room"), text("node"))
    };
    rooms.sort_by_key(key);
    let total = rooms.len();
    let page: Vec<_> = rooms.into_iter().skip(offset).take(limit).collect();
    serde_json::json!({
        "total": total,
        "offset": offset,
        "limit": limit,
        "complete": gathered.complete,
        "rooms": page,
    })
}

fn frame_for(fields: Fields, topic: &str) -> Result<Vec<u8>, Refusal> {
    let frame = Frame::new(fields).with_op_id(1).with_topic(topic);
    let mut out = Vec::new();
    encode(&frame, &mut out).map_err(|e| Refusal::new(e.code(), e.to_string()))?;
    Ok(out)
}

/// A container payload as JSON (`null` when empty or unreadable).
fn container_json(payload: &[u8]) -> serde_json::Value {
    let limits = ContainerLimits {
        max_size: payload.len(),
        ..ContainerLimits::default()
    };
    container::decode(payload, &limits)
        .ok()
        .and_then(|v| v.to_owned_value().to_json().ok())
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The `presence` command (`GET /api/v1/rooms/{room}/presence?cursor=&limit=&stats=true`):
/// a PRESENCE frame with these fields, from an in-process client with the caller's identity.
pub(crate) async fn presence(
    shard: &Rc<Shard>,
    identity: Arc<Identity>,
    room: &str,
    fields: RoomFields,
) -> Result<serde_json::Value, Refusal> {
    let frame = frame_for(Fields::Presence(fields), room)?;
    let options = HelloOptions(0);
    let mut answers = exchange_all(shard, identity, &frame, options, |f| {
        matches!(f, Fields::Presence(_) | Fields::Err { .. })
    })
    .await;
    match answers.pop() {
        Some(Answer::Frame(Fields::Presence(page), _, _, payload)) => {
            let mut body = container_json(&payload);
            if let Some(map) = body.as_object_mut() {
                map.insert("room".into(), room.into());
                if page.offset != 0 {
                    map.insert("cursor".into(), page.offset.to_string().into());
                }
            }
            Ok(body)
        }
        Some(other) => Err(other.into_refusal()),
        None => Err(Answer::Closed.into_refusal()),
    }
}

/// The `history` command (`GET /api/v1/history/{topic}?limit=&since=&epoch=&reverse=true`):
/// the publications as JSON, each with its offset, payload and headers; payloads up to
/// `max_body` bytes as JSON.
pub(crate) async fn history(
    shard: &Rc<Shard>,
    max_body: usize,
    identity: Arc<Identity>,
    topic: &str,
    fields: RoomFields,
) -> Result<serde_json::Value, Refusal> {
    let frame = frame_for(Fields::History(fields), topic)?;
    let answers = exchange_all(shard, identity, &frame, HelloOptions::HEADERS, |f| {
        matches!(f, Fields::History(_) | Fields::Err { .. })
    })
    .await;
    let mut publications = Vec::new();
    for answer in answers {
        match answer {
            Answer::Frame(Fields::Msg { .. }, flags, headers, payload) => {
                publications.push(publication(flags, &headers, &payload, max_body)?);
            }
            Answer::Frame(Fields::History(end), ..) => {
                return Ok(serde_json::json!({
                    "topic": topic,
                    "epoch": end.epoch.to_string(),
                    "offset": end.offset,
                    "publications": publications,
                }));
            }
            other => return Err(other.into_refusal()),
        }
    }
    Err(Answer::Closed.into_refusal())
}

/// One kept publication as JSON: `offset`, its payload field, its other headers.
fn publication(
    flags: Flags,
    headers: &[u8],
    payload: &[u8],
    max_body: usize,
) -> Result<serde_json::Value, Refusal> {
    let (field, value) = payload::to_json(flags, payload, max_body)?;
    let mut out = serde_json::Map::new();
    let mut others = serde_json::Map::new();
    for (key, value) in Headers::parse(headers).unwrap_or_default() {
        match key {
            "sb-offset" => {
                out.insert("offset".into(), value.parse::<u64>().unwrap_or(0).into());
            }
            "sb-epoch" => {}
            _ => {
                others.insert(key.into(), value.into());
            }
        }
    }
    let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::Null);
    out.insert(field.into(), value);
    if !others.is_empty() {
        out.insert("headers".into(), others.into());
    }
    Ok(serde_json::Value::Object(out))
}

/// How many members `room` has, for `POST /api/v1/publish` with `room`: asked of the room's
/// home right after the publication, on the same channel, so it counts the members the
/// publication reached. `None` for a room that keeps no presence.
pub(crate) async fn recipients(
    shard: &Rc<Shard>,
    identity: Arc<Identity>,
    room: &str,
) -> Option<u64> {
    let fields = RoomFields {
        flags: RoomFlags::STATS_ONLY,
        ..RoomFields::default()
    };
    let frame = frame_for(Fields::Presence(fields), room).ok()?;
    let mut answers = exchange_all(shard, identity, &frame, HelloOptions(0), |f| {
        matches!(f, Fields::Presence(_) | Fields::Err { .. })
    })
    .await;
    match answers.pop()? {
        Answer::Frame(Fields::Presence(_), _, _, payload) => {
            container_json(&payload).get("clients")?.as_u64()
        }
        _ => None,
    }
}

/// The answer to a room publish: `{"ok": true, "recipients": N}`.
pub(crate) fn published(recipients: Option<u64>) -> hyper::Response<Body> {
    reply::json(
        StatusCode::OK,
        &serde_json::json!({ "ok": true, "recipients": recipients }),
    )
}
