//! `ContainerError`: why a binary or JSON container was refused.

use crate::error_code::ErrorCode;

/// A container that cannot be decoded, encoded or transcoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    /// The input ends inside a value.
    #[error("container truncated")]
    Truncated,
    /// A type tag this version does not define.
    #[error("unknown container tag 0x{0:02x}")]
    UnknownTag(u8),
    /// Lists and maps nest deeper than allowed.
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
    /// The input is larger than allowed.
    #[error("container of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Input length (or uncompressed length for LZ4).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string or key is not UTF-8.
    #[error("string is not UTF-8")]
    BadUtf8,
    /// Bytes remain after the root value.
    #[error("{0} bytes after the root value")]
    TrailingBytes(usize),
    /// A typed array names a non-numeric element type.
    #[error("typed array of non-numeric tag 0x{0:02x}")]
    BadArrayKind(u8),
    /// A length does not fit its field when encoding.
    #[error("{0} too long to encode")]
    TooLongToEncode(&'static str),
    /// The JSON text is malformed.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A `{"$bytes": ...}` object whose value is not valid base64.
    #[error("invalid base64 in $bytes")]
    BadBase64,
    /// LZ4 data that does not decompress.
    #[error("invalid LZ4 data")]
    BadCompression,
}

impl ContainerError {
    /// The wire code a server answers with.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::BAD_PAYLOAD
    }
}
