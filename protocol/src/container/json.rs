//! JSON for containers, both ways, with simd-json (PROTOCOL.md §6.3).
//!
//! Binary → JSON: integers print as JSON integers, floats always with a fraction or exponent
//! (so JSON keeps integer vs float), NaN and infinities as `null`, bytes as
//! `{"$bytes":"<base64>"}`, typed arrays as arrays of numbers.
//! JSON → binary: integers become `i64` (`u64` above `i64::MAX`), other numbers `f64`, a
//! one-key object `{"$bytes": "<base64>"}` becomes bytes, arrays become lists.

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use simd_json::{Node, StaticNode};
use value_trait::generator::BaseGenerator;

use super::ContainerLimits;
use super::binary::{self, TAG_BYTES, TAG_FALSE, TAG_LIST, TAG_MAP, TAG_NULL, TAG_STR, TAG_TRUE};
use super::error::ContainerError;
use super::num::NumKind;
use super::value::Value;
use super::view::{NumArray, ValueRef, decode};

/// The key of the one-entry object that carries bytes in JSON.
pub const BYTES_KEY: &str = "$bytes";

struct Out<'a>(&'a mut Vec<u8>);

impl BaseGenerator for Out<'_> {
    type T = Vec<u8>;
    fn get_writer(&mut self) -> &mut Vec<u8> {
        self.0
    }
    fn write_min(&mut self, _: &[u8], min: u8) -> io::Result<()> {
        self.0.push(min);
        Ok(())
    }
}

/// Appends the JSON text of `value` to `out`.
pub fn write_json(value: &ValueRef<'_>, out: &mut Vec<u8>) {
    // Writes into a Vec cannot fail; the generator's io::Result is an artefact of its trait.
    let _ = write_value(&mut Out(out), value);
}

fn write_value(g: &mut Out<'_>, value: &ValueRef<'_>) -> io::Result<()> {
    match *value {
        ValueRef::Null => g.write(b"null"),
        ValueRef::Bool(b) => g.write(if b { b"true" } else { b"false" }),
        ValueRef::I8(n) => g.write_int(n),
        ValueRef::I16(n) => g.write_int(n),
        ValueRef::I32(n) => g.write_int(n),
        ValueRef::I64(n) => g.write_int(n),
        ValueRef::U8(n) => g.write_int(n),
        ValueRef::U16(n) => g.write_int(n),
        ValueRef::U32(n) => g.write_int(n),
        ValueRef::U64(n) => g.write_int(n),
        ValueRef::F32(n) => write_f32(g, n),
        ValueRef::F64(n) => g.write_float(n),
        ValueRef::Str(s) => write_str(g, s),
        ValueRef::Bytes(b) => {
            g.write(b"{\"$bytes\":\"")?;
            let out = g.get_writer();
            let start = out.len();
            out.resize(start + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
            if let Some(tail) = out.get_mut(start..) {
                let written = BASE64.encode_slice(b, tail).unwrap_or(0);
                out.truncate(start + written);
            }
            g.write(b"\"}")
        }
        ValueRef::Array(a) => write_array(g, &a),
        ValueRef::List(l) => {
            g.write_char(b'[')?;
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    g.write_char(b',')?;
                }
                write_value(g, &item)?;
            }
            g.write_char(b']')
        }
        ValueRef::Map(m) => {
            g.write_char(b'{')?;
            for (i, (key, item)) in m.iter().enumerate() {
                if i > 0 {
                    g.write_char(b',')?;
                }
                write_str(g, key)?;
                g.write_char(b':')?;
                write_value(g, &item)?;
            }
            g.write_char(b'}')
        }
    }
}

/// Writes a typed array straight from its little-endian bytes, one loop per element type.
fn write_array(g: &mut Out<'_>, array: &NumArray<'_>) -> io::Result<()> {
    macro_rules! elements {
        ($t:ty, $write:expr) => {{
            const SIZE: usize = size_of::<$t>();
            for (i, bytes) in array.as_le_bytes().chunks_exact(SIZE).enumerate() {
                if i > 0 {
                    g.write_char(b',')?;
                }
                let value = <$t>::from_le_bytes(bytes.try_into().unwrap_or([0; SIZE]));
                $write(&mut *g, value)?;
            }
        }};
    }
    g.write_char(b'[')?;
    match array.kind() {
        NumKind::I8 => elements!(i8, |g: &mut Out<'_>, v| g.write_int(v)),
        NumKind::I16 => elements!(i16, |g: &mut Out<'_>, v| g.write_int(v)),
        NumKind::I32 => elements!(i32, |g: &mut Out<'_>, v| g.write_int(v)),
        NumKind::I64 => elements!(i64, |g: &mut Out<'_>, v| g.write_int(v)),
        NumKind::U8 => elements!(u8, |g: &mut Out<'_>, v| g.write_int(v)),
        NumKind::U16 => elements!(u16, |g: &mut Out<'_>, v| g.write_int(v)),
        NumKind::U32 => elements!(u32, |g: &mut Out<'_>, v| g.write_int(v)),
        NumKind::U64 => elements!(u64, |g: &mut Out<'_>, v| g.write_int(v)),
        NumKind::F32 => elements!(f32, write_f32),
        NumKind::F64 => elements!(f64, |g: &mut Out<'_>, v| g.write_float(v)),
    }
    g.write_char(b']')
}

/// Below this length the SIMD escaper's set-up costs more than it saves (value-trait says as
/// much of `write_simple_string`); measured on the chat-message bench.
const SIMD_ESCAPE_MIN: usize = 32;

fn write_str(g: &mut Out<'_>, s: &str) -> io::Result<()> {
    if s.len() < SIMD_ESCAPE_MIN {
        g.write_simple_string(s)
    } else {
        g.write_string(s)
    }
}

fn write_f32(g: &mut Out<'_>, n: f32) -> io::Result<()> {
    if !n.is_finite() {
        return g.write(b"null");
    }
    // Printing through f64 would show 0.1f32 as 0.10000000149011612; ryu's f32 path prints the
    // shortest text that reads back as the same f32.
    let mut buffer = ryu::Buffer::new();
    g.write(buffer.format_finite(n).as_bytes())
}

/// Parses JSON text (modified in place by simd-json) and appends its binary container form.
///
/// # Errors
/// [`ContainerError::Json`] for malformed text, [`ContainerError::TooLarge`] or
/// [`ContainerError::TooDeep`] past the limits, [`ContainerError::BadBase64`] for a bad `$bytes`.
pub fn json_to_binary(
    text: &mut [u8],
    limits: &ContainerLimits,
    out: &mut Vec<u8>,
) -> Result<(), ContainerError> {
    if text.len() > limits.max_size {
        return Err(ContainerError::TooLarge {
            len: text.len(),
            max: limits.max_size,
        });
    }
    let tape = simd_json::to_tape(text).map_err(|e| ContainerError::Json(e.to_string()))?;
    emit(&tape.0, &mut 0, 1, limits.max_depth, out)
}

/// Parses JSON text into an owned [`Value`].
///
/// # Errors
/// As [`json_to_binary`].
pub fn parse_json(text: &mut [u8], limits: &ContainerLimits) -> Result<Value, ContainerError> {
    let mut bin = Vec::with_capacity(text.len());
    json_to_binary(text, limits, &mut bin)?;
    let unlimited = ContainerLimits {
        max_depth: usize::MAX,
        max_size: usize::MAX,
    };
    Ok(decode(&bin, &unlimited)?.to_owned_value())
}

/// Walks the tape from `tape[*pos]`, appending binary form, one value per call.
fn emit(
    tape: &[Node<'_>],
    pos: &mut usize,
    depth: usize,
    max_depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), ContainerError> {
    let node = *tape
        .get(*pos)
        .ok_or_else(|| ContainerError::Json("unexpected end of tape".into()))?;
    *pos += 1;
    match node {
        Node::Static(StaticNode::Null) => out.push(TAG_NULL),
        Node::Static(StaticNode::Bool(b)) => out.push(if b { TAG_TRUE } else { TAG_FALSE }),
        Node::Static(StaticNode::I64(n)) => {
            out.push(NumKind::I64 as u8);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Node::Static(StaticNode::U64(n)) => match i64::try_from(n) {
            Ok(n) => {
                out.push(NumKind::I64 as u8);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Err(_) => {
                out.push(NumKind::U64 as u8);
                out.extend_from_slice(&n.to_le_bytes());
            }
        },
        Node::Static(StaticNode::F64(n)) => {
            out.push(NumKind::F64 as u8);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Node::String(s) => {
            out.push(TAG_STR);
            write_len(out, s.len())?;
            out.extend_from_slice(s.as_bytes());
        }
        Node::Array { len, .. } => {
            check_depth(depth, max_depth)?;
            let start = binary::begin_nested(out, TAG_LIST, len, "list")?;
            for _ in 0..len {
                emit(tape, pos, depth + 1, max_depth, out)?;
            }
            binary::end_nested(out, start, "list")?;
        }
        Node::Object { len, .. } => {
            check_depth(depth, max_depth)?;
            if len == 1
                && let (Some(Node::String(BYTES_KEY)), Some(Node::String(text))) =
                    (tape.get(*pos), tape.get(*pos + 1))
            {
                *pos += 2;
                return decode_base64(text, out);
            }
            let start = binary::begin_nested(out, TAG_MAP, len, "map")?;
            for _ in 0..len {
                let Some(Node::String(key)) = tape.get(*pos) else {
                    return Err(ContainerError::Json("object key is not a string".into()));
                };
                *pos += 1;
                binary::write_key(out, key)?;
                emit(tape, pos, depth + 1, max_depth, out)?;
            }
            binary::end_nested(out, start, "map")?;
        }
    }
    Ok(())
}

fn check_depth(depth: usize, max_depth: usize) -> Result<(), ContainerError> {
    if depth > max_depth {
        Err(ContainerError::TooDeep(max_depth))
    } else {
        Ok(())
    }
}

fn write_len(out: &mut Vec<u8>, len: usize) -> Result<(), ContainerError> {
    let len = u32::try_from(len).map_err(|_| ContainerError::TooLongToEncode("string"))?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn decode_base64(text: &str, out: &mut Vec<u8>) -> Result<(), ContainerError> {
    out.push(TAG_BYTES);
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    BASE64
        .decode_vec(text, out)
        .map_err(|_| ContainerError::BadBase64)?;
    let len = out.len() - len_at - 4;
    write_len_at(out, len_at, len)
}

fn write_len_at(out: &mut [u8], at: usize, len: usize) -> Result<(), ContainerError> {
    let len = u32::try_from(len).map_err(|_| ContainerError::TooLongToEncode("bytes"))?;
    out.get_mut(at..at + 4)
        .ok_or(ContainerError::TooLongToEncode("bytes"))?
        .copy_from_slice(&len.to_le_bytes());
    Ok(())
}
