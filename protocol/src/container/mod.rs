//! Typed value containers (PROTOCOL.md §6): null, bool, integers, floats, UTF-8 strings, bytes,
//! typed numeric arrays, lists and string-keyed maps, nested.
//!
//! Two encodings: a compact binary one, decoded into borrowed views ([`ValueRef`]) that copy no
//! string, byte or array data; and JSON, parsed and printed with simd-json. Large payloads may be
//! LZ4-compressed ([`compress`]).

pub mod binary;
pub mod compress;
pub mod error;
pub mod json;
pub mod num;
pub mod value;
pub mod view;

pub use error::ContainerError;
pub use num::{NumKind, NumVec};
pub use value::Value;
pub use view::{ListRef, MapRef, NumArray, ValueRef, decode};

/// Bounds enforced while decoding binary or JSON containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerLimits {
    /// Deepest nesting of lists and maps; the root counts as depth 1.
    pub max_depth: usize,
    /// Largest encoded input accepted, in bytes.
    pub max_size: usize,
}

impl Default for ContainerLimits {
    fn default() -> ContainerLimits {
        ContainerLimits {
            max_depth: 32,
            max_size: crate::limits::DEFAULT_MAX_PAYLOAD as usize,
        }
    }
}
