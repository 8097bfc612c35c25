//! The push API, `POST /api/v1/publish` and `POST /api/v1/request`, served as an in-process
//! client of this shard: the JSON body becomes a PUB or REQ frame handed to the session's own
//! frame path, so it is checked, counted, routed and answered exactly as a client's would be,
//! and the answer (OK, ERR, RESP) comes back through the connection's outbox.
//!
//! Body: `{"topic": "...", "data": <any JSON> | "text": "..." | "data_base64": "...",
//! "headers": {"k": "v"}, "timeout_ms": 5000}`. `data` is published as a container (binary
//! clients get typed values, JSON clients the same JSON back), `text` as its UTF-8 bytes,
//! `data_base64` as the decoded bytes.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::StatusCode;
use serde::Deserialize;
use shardbus_protocol::container::{self, ContainerLimits, json::json_to_binary};
use shardbus_protocol::{
    ErrorCode, Fields, Flags, Frame, HeadersBuilder, HelloOptions, encode, next_frame,
};

use super::HttpSettings;
use super::reply::{self, Body, Refusal};
use crate::shard::Shard;
use crate::shard::conn::Conn;
use crate::shard::inproc;
use crate::shard::read_buffer::ReadBuffer;

/// A request's deadline when the body names none.
const DEFAULT_TIMEOUT_MS: u32 = 5_000;

/// The JSON body of both endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PushBody {
    topic: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    data_base64: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    timeout_ms: Option<u32>,
}

/// A finished answer.
type Answered = hyper::Response<Body>;

fn bad(code: ErrorCode, message: &str) -> Refusal {
    Refusal::new(code, message)
}

/// The payload bytes and flags the body asks for.
fn payload(body: &PushBody, settings: &HttpSettings) -> Result<(Vec<u8>, Flags), Refusal> {
    match (&body.data, &body.text, &body.data_base64) {
        (Some(data), None, None) => {
            let mut text = data.to_string().into_bytes();
            let limits = ContainerLimits {
                max_size: settings.max_body,
                ..ContainerLimits::default()
            };
            let mut out = Vec::with_capacity(text.len());
            json_to_binary(&mut text, &limits, &mut out)
                .map_err(|e| bad(e.code(), &e.to_string()))?;
            Ok((out, Flags::CONTAINER))
        }
        (None, Some(text), None) => Ok((text.clone().into_bytes(), Flags::empty())),
        (None, None, Some(encoded)) => BASE64
            .decode(encoded)
            .map(|bytes| (bytes, Flags::empty()))
            .map_err(|e| bad(ErrorCode::BAD_PAYLOAD, &format!("data_base64: {e}"))),
        (None, None, None) => Ok((Vec::new(), Flags::empty())),
        _ => Err(bad(
            ErrorCode::BAD_PAYLOAD,
            "give at most one of data, text and data_base64",
        )),
    }
}

/// Encodes the frame the body describes.
fn frame_bytes(
    body: &PushBody,
    fields: Fields,
    settings: &HttpSettings,
) -> Result<Vec<u8>, Refusal> {
    let (payload, flags) = payload(body, settings)?;
    let mut headers = HeadersBuilder::new();
    for (key, value) in &body.headers {
        headers
            .insert(key, value)
            .map_err(|e| bad(e.code(), &e.to_string()))?;
    }
    let frame = Frame::new(fields)
        .with_op_id(1)
        .with_topic(&body.topic)
        .with_headers(headers.headers())
        .with_flags(flags)
        .with_payload(&payload);
    let mut out = Vec::new();
    encode(&frame, &mut out).map_err(|e| bad(e.code(), &e.to_string()))?;
    Ok(out)
}

/// `POST /api/v1/publish`: 200 `{"ok": true}` once routed, or the coded error.
pub(crate) async fn publish(
    shard: &Rc<Shard>,
    settings: &HttpSettings,
    body: &PushBody,
) -> Result<Answered, Refusal> {
    let frame = frame_bytes(body, Fields::Pub, settings)?;
    let answer = exchange(shard, &frame, |fields| {
        matches!(fields, Fields::Ok | Fields::Err { .. })
    })
    .await;
    match answer {
        Answer::Frame(Fields::Ok, ..) => Ok(reply::json(
            StatusCode::OK,
            &serde_json::json!({ "ok": true }),
        )),
        other => Err(other.into_refusal()),
    }
}

/// `POST /api/v1/request`: 200 with the response, or the coded error (404 NO_RESPONDERS,
/// 504 TIMEOUT).
pub(crate) async fn request(
    shard: &Rc<Shard>,
    settings: &HttpSettings,
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
    let answer = exchange(shard, &frame, |fields| {
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

/// The frame that ended an exchange: fields, flags, headers block, payload.
enum Answer {
    Frame(Fields, Flags, Vec<u8>, Vec<u8>),
    /// The connection closed without the awaited frame.
    Closed,
}

impl Answer {
    fn into_refusal(self) -> Refusal {
        match self {
            Answer::Frame(Fields::Err { code, .. }, _, _, payload) => {
                bad(code, &String::from_utf8_lossy(&payload))
            }
            _ => bad(ErrorCode::INTERNAL, "the shard gave no answer"),
        }
    }
}

/// Hands `frame` to the shard from a fresh in-process connection and waits for the first frame
/// back that `ends` accepts.
async fn exchange(shard: &Rc<Shard>, frame: &[u8], ends: impl Fn(&Fields) -> bool) -> Answer {
    let attached = inproc::Attached::new(shard, HelloOptions::VERBOSE);
    // A frame that closes the connection still leaves its ERR in the outbox.
    inproc::feed(shard, &attached.conn, &mut ReadBuffer::new(0), frame);
    first_matching(&attached.conn, shard, &ends).await
}

/// Reads the connection's outbox until a frame `ends` accepts.
async fn first_matching(conn: &Conn, shard: &Shard, ends: &impl Fn(&Fields) -> bool) -> Answer {
    while let Some(batch) = conn.outbox.next_batch().await {
        let mut rest = batch.as_slice();
        while let Ok(Some((frame, len))) = next_frame(rest, &shard.settings.limits) {
            if ends(&frame.fields) {
                return Answer::Frame(
                    frame.fields,
                    frame.flags,
                    frame.headers.as_bytes().to_vec(),
                    frame.payload.to_vec(),
                );
            }
            rest = rest.get(len..).unwrap_or_default();
        }
        conn.outbox.written(batch);
    }
    Answer::Closed
}

/// A response as JSON: `data` for a container payload, else `text` when it is UTF-8, else
/// `data_base64`; and its headers.
fn response_json(
    flags: Flags,
    headers: &[u8],
    payload: &[u8],
    settings: &HttpSettings,
) -> Result<Answered, Refusal> {
    let mut body = serde_json::Map::new();
    let limits = ContainerLimits {
        max_size: settings.max_body,
        ..ContainerLimits::default()
    };
    let mut plain = Vec::new();
    let payload = if flags.contains(Flags::LZ4) {
        if let Err(e) = container::compress::decompress(payload, settings.max_body, &mut plain) {
            return Err(bad(e.code(), &e.to_string()));
        }
        plain.as_slice()
    } else {
        payload
    };
    if flags.contains(Flags::CONTAINER) {
        match container::decode(payload, &limits) {
            Ok(view) => {
                let mut text = Vec::new();
                container::json::write_json(&view, &mut text);
                let data = serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null);
                body.insert("data".to_owned(), data);
            }
            Err(e) => return Err(bad(e.code(), &e.to_string())),
        }
    } else if let Ok(text) = std::str::from_utf8(payload) {
        body.insert("text".to_owned(), text.into());
    } else {
        body.insert("data_base64".to_owned(), BASE64.encode(payload).into());
    }
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
