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
use super::view::{ValueRef, decode};

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
        ValueRef::Str(s) => g.write_string(s),
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
        ValueRef::Array(a) => {
            g.write_char(b'[')?;
            for i in 0..a.len() {
                if i > 0 {
                    g.write_char(b',')?;
                }
                if let Some(element) = a.get(i) {
                    write_value(g, &element)?;
                }
            }
            g.write_char(b']')
        }
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
                g.write_string(key)?;
                g.write_char(b':')?;
                write_value(g, &item)?;
            }
            g.write_char(b'}')
        }
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
