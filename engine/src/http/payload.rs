//! Payloads at the JSON edges (the push API, WebSocket text messages): in, one of `data` (any
//! JSON, transcoded with simd-json into a container, so binary clients get typed values),
//! `text` (its UTF-8 bytes) or `data_base64` (the decoded bytes); out, the reverse — a
//! container as `data`, UTF-8 as `text`, anything else as `data_base64`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::value::RawValue;
use shardbus_protocol::container::{self, ContainerLimits, json::json_to_binary};
use shardbus_protocol::{ErrorCode, Flags};

use super::reply::Refusal;

/// The payload fields of a JSON message.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PayloadIn<'a> {
    pub(crate) data: Option<&'a RawValue>,
    pub(crate) text: Option<&'a str>,
    pub(crate) data_base64: Option<&'a str>,
}

fn limits(max: usize) -> ContainerLimits {
    ContainerLimits {
        max_size: max,
        ..ContainerLimits::default()
    }
}

impl PayloadIn<'_> {
    /// The payload bytes and the flags they need; at most `max` bytes of JSON are transcoded.
    pub(crate) fn to_bytes(self, max: usize) -> Result<(Vec<u8>, Flags), Refusal> {
        match (self.data, self.text, self.data_base64) {
            (Some(data), None, None) => {
                let mut text = data.get().as_bytes().to_vec();
                let mut out = Vec::with_capacity(text.len());
                json_to_binary(&mut text, &limits(max), &mut out).map_err(|e| {
                    // A document that fits as text but not as a container is a payload
                    // over the limit, not a frame: the connection stays.
                    let code = match e.code() {
                        ErrorCode::FRAME_TOO_LARGE => ErrorCode::PAYLOAD_TOO_LARGE,
                        code => code,
                    };
                    Refusal::new(code, e.to_string())
                })?;
                Ok((out, Flags::CONTAINER))
            }
            (None, Some(text), None) => Ok((text.as_bytes().to_vec(), Flags::empty())),
            (None, None, Some(encoded)) => BASE64
                .decode(encoded)
                .map(|bytes| (bytes, Flags::empty()))
                .map_err(|e| Refusal::new(ErrorCode::BAD_PAYLOAD, format!("data_base64: {e}"))),
            (None, None, None) => Ok((Vec::new(), Flags::empty())),
            _ => Err(Refusal::new(
                ErrorCode::BAD_PAYLOAD,
                "give at most one of data, text and data_base64",
            )),
        }
    }
}

/// A payload as its JSON field: `("data", json)`, `("text", "…")` or `("data_base64", "…")`,
/// the value as JSON text. LZ4 payloads are inflated first, to at most `max` bytes.
pub(crate) fn to_json(
    flags: Flags,
    payload: &[u8],
    max: usize,
) -> Result<(&'static str, String), Refusal> {
    let mut plain = Vec::new();
    let payload = if flags.contains(Flags::LZ4) {
        container::compress::decompress(payload, max, &mut plain)
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        plain.as_slice()
    } else {
        payload
    };
    if flags.contains(Flags::CONTAINER) {
        let view = container::decode(payload, &limits(max))
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        let mut text = Vec::new();
        container::json::write_json(&view, &mut text);
        return Ok(("data", String::from_utf8_lossy(&text).into_owned()));
    }
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    match std::str::from_utf8(payload) {
        Ok(text) => Ok(("text", quoted(text))),
        Err(_) => Ok(("data_base64", quoted(&BASE64.encode(payload)))),
    }
}
