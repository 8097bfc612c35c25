//! The binary container encoding (PROTOCOL.md §6.2): a tag byte, then the value.
//!
//! Lists and maps carry both their element count and their byte length, so a reader can skip
//! a nested value in O(1) and views can iterate lazily.

use super::error::ContainerError;
use super::num::{NumVec, each_num_vec};
use super::value::Value;

/// `null`
pub const TAG_NULL: u8 = 0x00;
/// `false`
pub const TAG_FALSE: u8 = 0x01;
/// `true`
pub const TAG_TRUE: u8 = 0x02;
/// UTF-8 string: u32 length, bytes.
pub const TAG_STR: u8 = 0x10;
/// Bytes: u32 length, bytes.
pub const TAG_BYTES: u8 = 0x11;
/// Typed array: element tag, u32 count, elements little-endian.
pub const TAG_ARRAY: u8 = 0x12;
/// List: u32 count, u32 byte length of the items, items.
pub const TAG_LIST: u8 = 0x13;
/// Map: u32 count, u32 byte length of the entries, entries (u16 key length, key, value).
pub const TAG_MAP: u8 = 0x14;

fn len_u32(len: usize, what: &'static str) -> Result<[u8; 4], ContainerError> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| ContainerError::TooLongToEncode(what))
}

/// Appends the binary form of `value` to `out`.
///
/// # Errors
/// [`ContainerError::TooLongToEncode`] when a length exceeds its field.
pub fn encode(value: &Value, out: &mut Vec<u8>) -> Result<(), ContainerError> {
    match value {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::I8(n) => scalar(out, 0x03, &n.to_le_bytes()),
        Value::I16(n) => scalar(out, 0x04, &n.to_le_bytes()),
        Value::I32(n) => scalar(out, 0x05, &n.to_le_bytes()),
        Value::I64(n) => scalar(out, 0x06, &n.to_le_bytes()),
        Value::U8(n) => scalar(out, 0x07, &n.to_le_bytes()),
        Value::U16(n) => scalar(out, 0x08, &n.to_le_bytes()),
        Value::U32(n) => scalar(out, 0x09, &n.to_le_bytes()),
        Value::U64(n) => scalar(out, 0x0A, &n.to_le_bytes()),
        Value::F32(n) => scalar(out, 0x0B, &n.to_le_bytes()),
        Value::F64(n) => scalar(out, 0x0C, &n.to_le_bytes()),
        Value::Str(s) => {
            out.push(TAG_STR);
            out.extend_from_slice(&len_u32(s.len(), "string")?);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(TAG_BYTES);
            out.extend_from_slice(&len_u32(b.len(), "bytes")?);
            out.extend_from_slice(b);
        }
        Value::Array(arr) => encode_array(arr, out)?,
        Value::List(items) => {
            let start = begin_nested(out, TAG_LIST, items.len(), "list")?;
            for item in items {
                encode(item, out)?;
            }
            end_nested(out, start, "list")?;
        }
        Value::Map(entries) => {
            let start = begin_nested(out, TAG_MAP, entries.len(), "map")?;
            for (key, item) in entries {
                write_key(out, key)?;
                encode(item, out)?;
            }
            end_nested(out, start, "map")?;
        }
    }
    Ok(())
}

fn scalar(out: &mut Vec<u8>, tag: u8, le: &[u8]) {
    out.push(tag);
    out.extend_from_slice(le);
}

fn encode_array(arr: &NumVec, out: &mut Vec<u8>) -> Result<(), ContainerError> {
    out.push(TAG_ARRAY);
    out.push(arr.kind() as u8);
    out.extend_from_slice(&len_u32(arr.len(), "array")?);
    out.reserve(arr.len() * arr.kind().size());
    each_num_vec!(arr, v => {
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    });
    Ok(())
}

/// Writes a map key: u16 length, UTF-8 bytes.
pub(crate) fn write_key(out: &mut Vec<u8>, key: &str) -> Result<(), ContainerError> {
    let len = u16::try_from(key.len()).map_err(|_| ContainerError::TooLongToEncode("map key"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    Ok(())
}

/// Writes a list or map tag, its count and a placeholder byte length; returns where the items
/// start, for [`end_nested`].
pub(crate) fn begin_nested(
    out: &mut Vec<u8>,
    tag: u8,
    count: usize,
    what: &'static str,
) -> Result<usize, ContainerError> {
    out.push(tag);
    out.extend_from_slice(&len_u32(count, what)?);
    out.extend_from_slice(&[0; 4]);
    Ok(out.len())
}

/// Fills in the byte length of the list or map whose items started at `start`.
pub(crate) fn end_nested(
    out: &mut [u8],
    start: usize,
    what: &'static str,
) -> Result<(), ContainerError> {
    let byte_len = len_u32(out.len() - start, what)?;
    let slot = start
        .checked_sub(4)
        .and_then(|at| out.get_mut(at..start))
        .ok_or(ContainerError::TooLongToEncode(what))?;
    slot.copy_from_slice(&byte_len);
    Ok(())
}
