//! Borrowed views of a binary container. [`decode`] validates the whole input once (tags,
//! lengths, UTF-8, depth, size); after that, views iterate lazily and copy no string, byte or
//! array data.

use super::ContainerLimits;
use super::binary::{
    TAG_ARRAY, TAG_BYTES, TAG_FALSE, TAG_LIST, TAG_MAP, TAG_NULL, TAG_STR, TAG_TRUE,
};
use super::error::ContainerError;
use super::num::{NumKind, NumVec};
use super::value::Value;

/// A borrowed container value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// 8-bit signed integer.
    I8(i8),
    /// 16-bit signed integer.
    I16(i16),
    /// 32-bit signed integer.
    I32(i32),
    /// 64-bit signed integer.
    I64(i64),
    /// 8-bit unsigned integer.
    U8(u8),
    /// 16-bit unsigned integer.
    U16(u16),
    /// 32-bit unsigned integer.
    U32(u32),
    /// 64-bit unsigned integer.
    U64(u64),
    /// 32-bit float.
    F32(f32),
    /// 64-bit float.
    F64(f64),
    /// A string borrowed from the input.
    Str(&'a str),
    /// Bytes borrowed from the input.
    Bytes(&'a [u8]),
    /// A typed array borrowed from the input.
    Array(NumArray<'a>),
    /// A list, iterated lazily.
    List(ListRef<'a>),
    /// A map, iterated lazily.
    Map(MapRef<'a>),
}

/// A typed numeric array: little-endian elements borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumArray<'a> {
    kind: NumKind,
    raw: &'a [u8],
}

/// A lazily iterated list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListRef<'a> {
    count: u32,
    raw: &'a [u8],
}

/// A lazily iterated map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapRef<'a> {
    count: u32,
    raw: &'a [u8],
}

/// Validates `bytes` as one binary container and returns a view of its root.
///
/// # Errors
/// Any [`ContainerError`] but the encoding and JSON ones.
pub fn decode<'a>(
    bytes: &'a [u8],
    limits: &ContainerLimits,
) -> Result<ValueRef<'a>, ContainerError> {
    if bytes.len() > limits.max_size {
        return Err(ContainerError::TooLarge {
            len: bytes.len(),
            max: limits.max_size,
        });
    }
    let (value, rest) = read(bytes, Some((1, limits.max_depth)))?;
    if !rest.is_empty() {
        return Err(ContainerError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

fn take(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), ContainerError> {
    bytes.split_at_checked(n).ok_or(ContainerError::Truncated)
}

fn take_array<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), ContainerError> {
    let (head, rest) = bytes
        .split_first_chunk::<N>()
        .ok_or(ContainerError::Truncated)?;
    Ok((*head, rest))
}

fn take_u32(bytes: &[u8]) -> Result<(u32, &[u8]), ContainerError> {
    let (b, rest) = take_array::<4>(bytes)?;
    Ok((u32::from_le_bytes(b), rest))
}

fn utf8(bytes: &[u8]) -> Result<&str, ContainerError> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| ContainerError::BadUtf8)
}

/// Reads one value. With `validate = Some((depth, max_depth))` nested lists and maps are walked
/// and checked; with `None` (data already validated) they are skipped by their byte length.
fn read(
    bytes: &[u8],
    validate: Option<(usize, usize)>,
) -> Result<(ValueRef<'_>, &[u8]), ContainerError> {
    let (&tag, rest) = bytes.split_first().ok_or(ContainerError::Truncated)?;
    Ok(match tag {
        TAG_NULL => (ValueRef::Null, rest),
        TAG_FALSE => (ValueRef::Bool(false), rest),
        TAG_TRUE => (ValueRef::Bool(true), rest),
        TAG_STR | TAG_BYTES => {
            let (len, rest) = take_u32(rest)?;
            let (body, rest) = take(rest, len as usize)?;
            if tag == TAG_STR {
                (ValueRef::Str(utf8(body)?), rest)
            } else {
                (ValueRef::Bytes(body), rest)
            }
        }
        TAG_ARRAY => {
            let (&kind_tag, rest) = rest.split_first().ok_or(ContainerError::Truncated)?;
            let kind = NumKind::from_tag(kind_tag).ok_or(ContainerError::BadArrayKind(kind_tag))?;
            let (count, rest) = take_u32(rest)?;
            let len = (count as usize)
                .checked_mul(kind.size())
                .ok_or(ContainerError::Truncated)?;
            let (raw, rest) = take(rest, len)?;
            (ValueRef::Array(NumArray { kind, raw }), rest)
        }
        TAG_LIST | TAG_MAP => {
            let (count, rest) = take_u32(rest)?;
            let (byte_len, rest) = take_u32(rest)?;
            let (raw, rest) = take(rest, byte_len as usize)?;
            if let Some((depth, max_depth)) = validate {
                if depth > max_depth {
                    return Err(ContainerError::TooDeep(max_depth));
                }
                validate_items(raw, count, tag == TAG_MAP, (depth + 1, max_depth))?;
            }
            if tag == TAG_LIST {
                (ValueRef::List(ListRef { count, raw }), rest)
            } else {
                (ValueRef::Map(MapRef { count, raw }), rest)
            }
        }
        other => match NumKind::from_tag(other) {
            Some(kind) => read_scalar(kind, rest)?,
            None => return Err(ContainerError::UnknownTag(other)),
        },
    })
}

/// Steps over one value of already-validated data, returning what follows it.
fn skip(bytes: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = bytes.split_first()?;
    let len = match tag {
        TAG_NULL | TAG_FALSE | TAG_TRUE => 0,
        TAG_STR | TAG_BYTES => 4 + take_u32(rest).ok()?.0 as usize,
        TAG_ARRAY => {
            let (&kind, counted) = rest.split_first()?;
            let count = take_u32(counted).ok()?.0 as usize;
            5 + count.checked_mul(NumKind::from_tag(kind)?.size())?
        }
        TAG_LIST | TAG_MAP => 8 + take_u32(rest.get(4..)?).ok()?.0 as usize,
        other => NumKind::from_tag(other)?.size(),
    };
    rest.get(len..)
}

fn read_scalar(kind: NumKind, b: &[u8]) -> Result<(ValueRef<'static>, &[u8]), ContainerError> {
    Ok(match kind {
        NumKind::I8 => take_array::<1>(b).map(|(x, r)| (ValueRef::I8(i8::from_le_bytes(x)), r))?,
        NumKind::I16 => take_array(b).map(|(x, r)| (ValueRef::I16(i16::from_le_bytes(x)), r))?,
        NumKind::I32 => take_array(b).map(|(x, r)| (ValueRef::I32(i32::from_le_bytes(x)), r))?,
        NumKind::I64 => take_array(b).map(|(x, r)| (ValueRef::I64(i64::from_le_bytes(x)), r))?,
        NumKind::U8 => take_array::<1>(b).map(|(x, r)| (ValueRef::U8(x[0]), r))?,
        NumKind::U16 => take_array(b).map(|(x, r)| (ValueRef::U16(u16::from_le_bytes(x)), r))?,
        NumKind::U32 => take_array(b).map(|(x, r)| (ValueRef::U32(u32::from_le_bytes(x)), r))?,
        NumKind::U64 => take_array(b).map(|(x, r)| (ValueRef::U64(u64::from_le_bytes(x)), r))?,
        NumKind::F32 => take_array(b).map(|(x, r)| (ValueRef::F32(f32::from_le_bytes(x)), r))?,
        NumKind::F64 => take_array(b).map(|(x, r)| (ValueRef::F64(f64::from_le_bytes(x)), r))?,
    })
}

fn read_key(bytes: &[u8]) -> Result<(&str, &[u8]), ContainerError> {
    let (len, rest) = take_array::<2>(bytes)?;
    let (key, rest) = take(rest, usize::from(u16::from_le_bytes(len)))?;
    Ok((utf8(key)?, rest))
}

fn validate_items(
    mut raw: &[u8],
    count: u32,
    is_map: bool,
    depth: (usize, usize),
) -> Result<(), ContainerError> {
    for _ in 0..count {
        if is_map {
            raw = read_key(raw)?.1;
        }
        raw = read(raw, Some(depth))?.1;
    }
    if !raw.is_empty() {
        return Err(ContainerError::TrailingBytes(raw.len()));
    }
    Ok(())
}

impl<'a> NumArray<'a> {
    /// The element kind.
    pub fn kind(&self) -> NumKind {
        self.kind
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.raw.len() / self.kind.size()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The elements in wire form (little-endian).
    pub fn as_le_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The elements as a typed slice, without copying, when `T` is the element type, the
    /// target is little-endian and the data happens to be aligned for `T`.
    pub fn cast<T: Element>(&self) -> Option<&'a [T]> {
        if T::KIND != self.kind || cfg!(target_endian = "big") {
            return None;
        }
        bytemuck::try_cast_slice(self.raw).ok()
    }

    /// The element at `index`, read from its little-endian bytes.
    pub fn get(&self, index: usize) -> Option<ValueRef<'static>> {
        let size = self.kind.size();
        let start = index.checked_mul(size)?;
        let bytes = self.raw.get(start..start.checked_add(size)?)?;
        read_scalar(self.kind, bytes).ok().map(|(v, _)| v)
    }

    /// The elements, copied into an owned typed vector (works at any alignment).
    pub fn to_vec(&self) -> NumVec {
        fn collect<const N: usize, T>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
            raw.chunks_exact(N)
                .filter_map(|c| c.try_into().ok().map(f))
                .collect()
        }
        match self.kind {
            NumKind::I8 => NumVec::I8(collect(self.raw, i8::from_le_bytes)),
            NumKind::I16 => NumVec::I16(collect(self.raw, i16::from_le_bytes)),
            NumKind::I32 => NumVec::I32(collect(self.raw, i32::from_le_bytes)),
            NumKind::I64 => NumVec::I64(collect(self.raw, i64::from_le_bytes)),
            NumKind::U8 => NumVec::U8(self.raw.to_vec()),
            NumKind::U16 => NumVec::U16(collect(self.raw, u16::from_le_bytes)),
            NumKind::U32 => NumVec::U32(collect(self.raw, u32::from_le_bytes)),
            NumKind::U64 => NumVec::U64(collect(self.raw, u64::from_le_bytes)),
            NumKind::F32 => NumVec::F32(collect(self.raw, f32::from_le_bytes)),
            NumKind::F64 => NumVec::F64(collect(self.raw, f64::from_le_bytes)),
        }
    }
}

/// Numeric types a [`NumArray`] can be cast to.
pub trait Element: bytemuck::Pod {
    /// The array kind that holds this type.
    const KIND: NumKind;
}

macro_rules! element {
    ($($t:ty => $k:ident),*) => { $( impl Element for $t { const KIND: NumKind = NumKind::$k; } )* };
}
element!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32,
         u64 => U64, f32 => F32, f64 => F64);

impl<'a> ListRef<'a> {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = ValueRef<'a>> + 'a {
        let mut raw = self.raw;
        (0..self.count).map_while(move |_| {
            let (value, rest) = read(raw, None).ok()?;
            raw = rest;
            Some(value)
        })
    }
}

impl<'a> MapRef<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, ValueRef<'a>)> + 'a {
        let mut raw = self.raw;
        (0..self.count).map_while(move |_| {
            let (key, rest) = read_key(raw).ok()?;
            let (value, rest) = read(rest, None).ok()?;
            raw = rest;
            Some((key, value))
        })
    }

    /// The first value for `key`. Compares key bytes and skips other values by their lengths,
    /// so nothing it passes over is decoded.
    pub fn get(&self, key: &str) -> Option<ValueRef<'a>> {
        let mut raw = self.raw;
        for _ in 0..self.count {
            let (len, rest) = take_array::<2>(raw).ok()?;
            let (k, rest) = take(rest, usize::from(u16::from_le_bytes(len))).ok()?;
            if k == key.as_bytes() {
                return read(rest, None).ok().map(|(value, _)| value);
            }
            raw = skip(rest)?;
        }
        None
    }
}

impl<'a> ValueRef<'a> {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            ValueRef::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ValueRef::I8(n) => Some(n.into()),
            ValueRef::I16(n) => Some(n.into()),
            ValueRef::I32(n) => Some(n.into()),
            ValueRef::I64(n) => Some(n),
            ValueRef::U8(n) => Some(n.into()),
            ValueRef::U16(n) => Some(n.into()),
            ValueRef::U32(n) => Some(n.into()),
            ValueRef::U64(n) => i64::try_from(n).ok(),
            _ => None,
        }
    }

    /// The value as `f64`, if it is a number (integers may round).
    #[allow(clippy::cast_precision_loss)] // documented: large integers round
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ValueRef::F32(n) => Some(n.into()),
            ValueRef::F64(n) => Some(n),
            ValueRef::U64(n) => Some(n as f64),
            other => other.as_i64().map(|n| n as f64),
        }
    }

    /// The value for `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<ValueRef<'a>> {
        match self {
            ValueRef::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// Copies this view into an owned [`Value`].
    pub fn to_owned_value(&self) -> Value {
        match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::I8(n) => Value::I8(n),
            ValueRef::I16(n) => Value::I16(n),
            ValueRef::I32(n) => Value::I32(n),
            ValueRef::I64(n) => Value::I64(n),
            ValueRef::U8(n) => Value::U8(n),
            ValueRef::U16(n) => Value::U16(n),
            ValueRef::U32(n) => Value::U32(n),
            ValueRef::U64(n) => Value::U64(n),
            ValueRef::F32(n) => Value::F32(n),
            ValueRef::F64(n) => Value::F64(n),
            ValueRef::Str(s) => Value::Str(s.to_owned()),
            ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
            ValueRef::Array(a) => Value::Array(a.to_vec()),
            ValueRef::List(l) => Value::List(l.iter().map(|v| v.to_owned_value()).collect()),
            ValueRef::Map(m) => Value::Map(
                m.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned_value()))
                    .collect(),
            ),
        }
    }
}
