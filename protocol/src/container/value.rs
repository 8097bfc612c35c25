//! `Value`: an owned container value, for building payloads and for JSON input.

use super::binary;
use super::error::ContainerError;
use super::num::NumVec;

/// An owned container value. Maps keep their entries in order and may repeat keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value.
    #[default]
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
    /// A UTF-8 string.
    Str(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A typed numeric array.
    Array(NumVec),
    /// A list of values.
    List(Vec<Value>),
    /// A map with string keys, in insertion order.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// Encodes this value in the binary container form.
    ///
    /// # Errors
    /// [`ContainerError::TooLongToEncode`] when a string, list, map or key exceeds its length
    /// field.
    pub fn to_binary(&self) -> Result<Vec<u8>, ContainerError> {
        let mut out = Vec::new();
        binary::encode(self, &mut out)?;
        Ok(out)
    }

    /// Prints this value as JSON (PROTOCOL.md §6.3).
    ///
    /// # Errors
    /// As [`Value::to_binary`].
    pub fn to_json(&self) -> Result<Vec<u8>, ContainerError> {
        let bin = self.to_binary()?;
        let limits = super::ContainerLimits {
            max_depth: usize::MAX,
            max_size: usize::MAX,
        };
        let view = super::view::decode(&bin, &limits)?;
        let mut out = Vec::with_capacity(bin.len() * 2);
        super::json::write_json(&view, &mut out);
        Ok(out)
    }

    /// Looks up `key` in a map value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::I64(n)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::F64(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
