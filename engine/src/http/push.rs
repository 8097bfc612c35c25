//! The push API, `POST /api/v1/publish` and `POST /api/v1/request`, served as an in-process
//! client of this shard: the JSON body becomes a PUB or REQ frame handed to the session's own
//! frame path, so it is checked, counted, routed and answered exactly as a client's would be,
//! and the answer (OK, ERR, RESP) comes back through the connection's outbox.
//!
//! Body: `{"topic": "..." | "room": "...", "data": <any JSON> | "text": "..." | "data_base64": "...",
//! "headers": {"k": "v"}, "timeout_ms": 5000}`. `data` is published as a container (binary
//! clients get typed values, JSON clients the same JSON back), `text` as its UTF-8 bytes,
//! `data_base64` as the decoded bytes.

use std::collections::BTreeMap;
use std::rc::Rc;

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use shardbus_protocol::{
    ErrorCode, Fields, Flags, Frame, HeadersBuilder, HelloOptions, encode, next_frame,
};

use super::HttpSettings;
use super::payload::{self, PayloadIn};
use super::reply::{self, Body, Refusal};
use std::sync::Arc;

use crate::auth::Identity;
use crate::shard::Shard;
use crate::shard::inproc;
use crate::shard::read_buffer::ReadBuffer;

/// A request's deadline when the body names none.
const DEFAULT_TIMEOUT_MS: u32 = 5_000;

/// The JSON body of both endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PushBody {
    #[serde(default)]
    topic: Option<String>,
    /// A room instead of a topic: published the same, answered with its recipients.
    #[serde(default)]
    room: Option<String>,
    /// A user: pushed to every connection of that identity (MSG sid 0, on `topic` or
    /// `$user.<name>`), answered with their number. Admin identities only.
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    data_base64: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    timeout_ms: Option<u32>,
}

impl PushBody {
    /// The subject: `topic` or `room`, exactly one of them (a user push reads `topic` itself).
    fn subject(&self) -> Result<&str, Refusal> {
        match (&self.topic, &self.room) {
            (Some(topic), None) => Ok(topic),
            (None, Some(room)) => Ok(room),
            _ => Err(bad(ErrorCode::BAD_FRAME, "give one of topic and room")),
        }
    }

    /// The `headers` as a headers block.
    fn headers_block(&self) -> Result<HeadersBuilder, Refusal> {
        let mut block = HeadersBuilder::new();
        for (key, value) in &self.headers {
            block
                .insert(key, value)
                .map_err(|e| bad(e.code(), &e.to_string()))?;
        }
        Ok(block)
    }

    fn payload(&self) -> PayloadIn<'_> {
        PayloadIn {
            data: self.data.as_deref(),
            text: self.text.as_deref(),
            data_base64: self.data_base64.as_deref(),
        }
    }
}

/// A finished answer.
type Answered = hyper::Response<Body>;

fn bad(code: ErrorCode, message: &str) -> Refusal {
    Refusal::new(code, message)
}

/// Encodes the frame the body describes.
fn frame_bytes(
    body: &PushBody,
    fields: Fields,
    settings: &HttpSettings,
) -> Result<Vec<u8>, Refusal> {
    let (payload, flags) = body.payload().to_bytes(settings.max_body)?;
    let headers = body.headers_block()?;
    let frame = Frame::new(fields)
        .with_op_id(1)
        .with_topic(body.subject()?)
        .with_headers(headers.headers())
        .with_flags(flags)
        .with_payload(&payload);
    let mut out = Vec::new();
    encode(&frame, &mut out).map_err(|e| bad(e.code(), &e.to_string()))?;
    Ok(out)
}

/// `POST /api/v1/publish`: 200 `{"ok": true}` once routed (with `room`, and the room's
/// members as `recipients`), or the coded error.
pub(crate) async fn publish(
    shard: &Rc<Shard>,
    settings: &HttpSettings,
    identity: Arc<Identity>,
    body: &PushBody,
) -> Result<Answered, Refusal> {
    if let Some(user) = &body.user {
        return push_to_user(shard, settings, &identity, body, user).await;
    }
    let frame = frame_bytes(body, Fields::Pub, settings)?;
    if let Some(room) = &body.room
        && !shard.is_room(room.as_bytes())
    {
        return Err(bad(
            ErrorCode::NOT_A_ROOM,
            "no [[rooms]] pattern matches the room",
        ));
    }
    let answer = exchange(shard, Arc::clone(&identity), &frame, |fields| {
        matches!(fields, Fields::Ok | Fields::Err { .. })
    })
    .await;
    match (answer, &body.room) {
        (Answer::Frame(Fields::Ok, ..), None) => Ok(reply::json(
            StatusCode::OK,
            &serde_json::json!({ "ok": true }),
        )),
        (Answer::Frame(Fields::Ok, ..), Some(room)) => {
            // The room's presence counts its members on every node of a cluster.
            let recipients = super::rooms::recipients(shard, identity, room).await;
            Ok(super::rooms::published(recipients))
        }
        (other, _) => Err(other.into_refusal()),
    }
}

/// A push to every connection of `user`, on every shard: `{"ok": true, "recipients": N}`.
async fn push_to_user(
    shard: &Rc<Shard>,
    settings: &HttpSettings,
    identity: &Identity,
    body: &PushBody,
    user: &str,
) -> Result<Answered, Refusal> {
    if !identity.permissions.admin {
        shard.metrics.error(ErrorCode::PERMISSION_DENIED);
        return Err(bad(
            ErrorCode::PERMISSION_DENIED,
            "pushing to a user needs an admin identity",
        ));
    }
    if body.room.is_some() {
        return Err(bad(ErrorCode::BAD_FRAME, "give a user or a room, not both"));
    }
    let subject = body
        .topic
        .clone()
        .unwrap_or_else(|| format!("$user.{user}"));
    let limits = &shard.settings.limits;
    shardbus_protocol::topic::validate_subject(
        subject.as_bytes(),
        usize::from(limits.max_topic_len),
    )
    .map_err(|e| bad(e.code(), &e.to_string()))?;
    let (payload, flags) = body.payload().to_bytes(settings.max_body)?;
    let headers = body.headers_block()?;
    let push = crate::shard::users::Push {
        user,
        subject: subject.as_bytes(),
        headers: headers.as_bytes(),
        payload: &payload,
        flags: flags.0,
    };
    let recipients = shard.push_everywhere(push).await;
    Ok(reply::json(
        StatusCode::OK,
        &serde_json::json!({ "ok": true, "recipients": recipients }),
    ))
}

/// `POST /api/v1/request`: 200 with the response, or the coded error (404 NO_RESPONDERS,
/// 504 TIMEOUT).
pub(crate) async fn request(
    shard: &Rc<Shard>,
    settings: &HttpSettings,
    identity: Arc<Identity>,
    body: &PushBody,
) -> Result<Answered, Refusal> {
    let timeout_ms = body
        .timeout_ms
        .unwrap_or(DEFAULT_TIMEOUT_MS)
        .min(settings.max_request_timeout_ms);
    let fields = Fields::Req {
        request_id: 1,
        timeout_ms,
    };
    let frame = frame_bytes(body, fields, settings)?;
    let answer = exchange(shard, identity, &frame, |fields| {
        matches!(fields, Fields::Resp { .. } | Fields::Err { .. })
    })
    .await;
    match answer {
        Answer::Frame(Fields::Resp { .. }, flags, headers, payload) => {
            response_json(flags, &headers, &payload, settings)
        }
        other => Err(other.into_refusal()),
    }
}

/// A frame an exchange brought back: fields, flags, headers block, payload.
pub(super) enum Answer {
    Frame(Fields, Flags, Vec<u8>, Vec<u8>),
    /// The connection closed without the awaited frame.
    Closed,
}

impl Answer {
    pub(super) fn into_refusal(self) -> Refusal {
        match self {
            Answer::Frame(
                Fields::Err {
                    code,
                    retry_after_ms,
                    ..
                },
                _,
                _,
                payload,
            ) => Refusal {
                retry_after_ms: (retry_after_ms > 0).then_some(retry_after_ms),
                ..bad(code, &String::from_utf8_lossy(&payload))
            },
            _ => bad(ErrorCode::INTERNAL, "the shard gave no answer"),
        }
    }
}

/// Hands `frame` to the shard from a fresh in-process connection with `identity`'s
/// permissions and waits for the first frame back that `ends` accepts.
async fn exchange(
    shard: &Rc<Shard>,
    identity: Arc<Identity>,
    frame: &[u8],
    ends: impl Fn(&Fields) -> bool,
) -> Answer {
    let mut frames = exchange_all(shard, identity, frame, HelloOptions::VERBOSE, ends).await;
    frames.pop().unwrap_or(Answer::Closed)
}

/// As `exchange`, with the frames (`keep` decides which) that came before the last; the last is
/// the one `ends` accepted, or `Answer::Closed`.
pub(super) async fn exchange_all(
    shard: &Rc<Shard>,
    identity: Arc<Identity>,
    frame: &[u8],
    options: HelloOptions,
    ends: impl Fn(&Fields) -> bool,
) -> Vec<Answer> {
    let attached = inproc::Attached::new(shard, options);
    attached.conn.set_identity(identity);
    // A frame that closes the connection still leaves its ERR in the outbox.
    inproc::feed(shard, &attached.conn, &mut ReadBuffer::new(0), frame);
    let conn = &attached.conn;
    let mut frames = Vec::new();
    while let Some(batch) = conn.outbox.next_batch().await {
        let mut rest = batch.as_slice();
        while let Ok(Some((frame, len))) = next_frame(rest, &shard.settings.limits) {
            let owned = Answer::Frame(
                frame.fields,
                frame.flags,
                frame.headers.as_bytes().to_vec(),
                frame.payload.to_vec(),
            );
            frames.push(owned);
            if ends(&frame.fields) {
                return frames;
            }
            rest = rest.get(len..).unwrap_or_default();
        }
        conn.outbox.written(batch);
    }
    frames.push(Answer::Closed);
    frames
}

/// A response as JSON: its payload field (`payload.rs`) and its headers.
fn response_json(
    flags: Flags,
    headers: &[u8],
    payload: &[u8],
    settings: &HttpSettings,
) -> Result<Answered, Refusal> {
    let (field, value) = payload::to_json(flags, payload, settings.max_body)?;
    let mut body = serde_json::Map::new();
    let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::Null);
    body.insert(field.to_owned(), value);
    if let Ok(parsed) = shardbus_protocol::Headers::parse(headers) {
        let headers: serde_json::Map<String, serde_json::Value> = parsed
            .iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        if !headers.is_empty() {
            body.insert("headers".to_owned(), headers.into());
        }
    }
    Ok(reply::json(
        StatusCode::OK,
        &serde_json::Value::Object(body),
    ))
}
