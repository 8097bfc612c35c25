//! The invariants the fuzz targets check. Shared with `tests/fuzz_corpus.rs`, which replays the
//! committed corpus under `cargo test`, so every input the fuzzer kept is checked on stable too.

use shardbus_protocol::container::json::{json_to_binary, write_json};
use shardbus_protocol::container::{ContainerError, ContainerLimits, decode as decode_container};
use shardbus_protocol::{Check, Frame, Limits, check, decode, encode, next_frame};

fn limits() -> Limits {
    Limits {
        max_frame: 1 << 16,
        max_payload: 1 << 15,
        max_topic_len: 256,
        max_topic_tokens: 64,
        max_headers_len: 4096,
    }
}

fn reencode(frame: &Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = encode(frame, &mut out) {
        panic!("a decoded frame failed to encode: {e}");
    }
    out
}

/// Decodes `data` as a stream the way a server does, skipping frames with frame-local errors.
/// Returns the re-encoded frames.
fn stream_frames(data: &[u8], chunk_at: usize) -> Vec<Vec<u8>> {
    let limits = limits();
    let mut frames = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let split = chunk_at.min(data.len());
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            match check(&buf, &limits) {
                Ok(Check::Incomplete { .. }) => break,
                Err(_) => return frames,
                Ok(Check::Complete { frame_len }) => {
                    if let Ok(frame) = decode(&buf, &limits) {
                        frames.push(reencode(&frame));
                    }
                    buf.drain(..frame_len);
                }
            }
        }
    }
    frames
}

/// Frames: decode → encode → decode is the identity, and splitting the input in two chunks
/// yields the same frames as reading it whole.
pub fn check_frames(data: &[u8]) {
    let whole = stream_frames(data, data.len());
    for bytes in &whole {
        let again = match next_frame(bytes, &limits()) {
            Ok(Some((frame, len))) => {
                assert_eq!(len, bytes.len());
                reencode(&frame)
            }
            other => panic!("re-encoded frame does not decode: {other:?}"),
        };
        assert_eq!(&again, bytes, "decode → encode → decode changed the frame");
    }
    let split_at = data.first().map_or(0, |&b| usize::from(b) * 7);
    assert_eq!(
        stream_frames(data, split_at),
        whole,
        "split at {split_at} changed the frames"
    );
}

fn container_limits() -> ContainerLimits {
    ContainerLimits {
        max_depth: 32,
        max_size: 1 << 16,
    }
}

/// Parses JSON this crate printed. Size is not limited (printing may grow a value past the
/// input limit); depth is, as for any input.
fn reparse_printed(json: &mut [u8]) -> Result<Vec<u8>, ContainerError> {
    let wide = ContainerLimits {
        max_size: usize::MAX,
        ..container_limits()
    };
    let mut bin = Vec::new();
    json_to_binary(json, &wide, &mut bin)?;
    Ok(bin)
}

/// Containers: whatever decodes re-encodes to the same bytes, and prints as JSON that parses
/// back (the only refusal allowed is a reserved `$bytes` key holding a non-base64 string).
pub fn check_container(data: &[u8]) {
    let limits = container_limits();
    let Ok(view) = decode_container(data, &limits) else {
        return;
    };
    let owned = view.to_owned_value();
    match owned.to_binary() {
        Ok(bin) => assert_eq!(bin, data, "binary re-encoding differs"),
        Err(e) => panic!("decoded value failed to encode: {e}"),
    }
    let mut json = Vec::new();
    write_json(&view, &mut json);
    match reparse_printed(&mut json) {
        Ok(_) | Err(ContainerError::BadBase64) => {}
        Err(e) => panic!("printed JSON does not parse: {e}"),
    }
}

/// JSON: whatever parses yields a valid container whose JSON parses to the same container.
pub fn check_json(data: &[u8]) {
    let limits = container_limits();
    let mut text = data.to_vec();
    let mut bin = Vec::new();
    if json_to_binary(&mut text, &limits, &mut bin).is_err() {
        return;
    }
    let view = match decode_container(&bin, &limits) {
        Ok(v) => v,
        Err(e) => panic!("JSON produced an invalid container: {e}"),
    };
    let mut printed = Vec::new();
    write_json(&view, &mut printed);
    let again = match reparse_printed(&mut printed) {
        Ok(again) => again,
        Err(e) => panic!("printed JSON does not parse: {e}"),
    };
    assert_eq!(
        again, bin,
        "JSON → binary → JSON → binary changed the value"
    );
}
