//! The headers block: key/value pairs carried between the fixed fields and the payload.
//!
//! Wire form (PROTOCOL.md §2.3): entries back to back, each `key_len: u8`, key (ASCII, printable,
//! no `:`), `value_len: u16 LE`, value (UTF-8). The decoder validates the whole block once, so
//! iterating a [`Headers`] view never fails and never allocates.

use crate::error::ProtocolError;

/// A validated headers block borrowed from a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Headers<'a> {
    raw: &'a [u8],
}

impl<'a> Headers<'a> {
    /// The empty block.
    pub const EMPTY: Headers<'static> = Headers { raw: &[] };

    /// Validates `raw` as a headers block.
    ///
    /// # Errors
    /// [`ProtocolError::BadHeaders`] when an entry is truncated, a key is empty or not printable
    /// ASCII, or a value is not UTF-8.
    pub fn parse(raw: &'a [u8]) -> Result<Headers<'a>, ProtocolError> {
        let mut rest = raw;
        while !rest.is_empty() {
            let (key, value, tail) =
                split_entry(rest).ok_or(ProtocolError::BadHeaders("truncated entry"))?;
            validate_key(key)?;
            if simdutf8::basic::from_utf8(value).is_err() {
                return Err(ProtocolError::BadHeaders("value is not UTF-8"));
            }
            rest = tail;
        }
        Ok(Headers { raw })
    }

    /// The block in wire form.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the block has no entries.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The entries in wire order.
    pub fn iter(&self) -> HeadersIter<'a> {
        HeadersIter { rest: self.raw }
    }

    /// The first value for `key` (keys compare ASCII case-insensitively).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = HeadersIter<'a>;
    fn into_iter(self) -> HeadersIter<'a> {
        self.iter()
    }
}

/// Iterator over the entries of a validated block.
#[derive(Debug, Clone)]
pub struct HeadersIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for HeadersIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        // The block was validated when the view was made; a failure here would mean a bug,
        // and ending the iteration is the safe answer.
        let (key, value, tail) = split_entry(self.rest)?;
        self.rest = tail;
        Some((
            std::str::from_utf8(key).ok()?,
            std::str::from_utf8(value).ok()?,
        ))
    }
}

fn split_entry(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (&key_len, rest) = bytes.split_first()?;
    let (key, rest) = rest.split_at_checked(usize::from(key_len))?;
    let (len_bytes, rest) = rest.split_at_checked(2)?;
    let value_len = u16::from_le_bytes(len_bytes.try_into().ok()?);
    let (value, rest) = rest.split_at_checked(usize::from(value_len))?;
    Some((key, value, rest))
}

fn validate_key(key: &[u8]) -> Result<(), ProtocolError> {
    if key.is_empty() {
        return Err(ProtocolError::BadHeaders("empty key"));
    }
    if !key.iter().all(|&b| b.is_ascii_graphic() && b != b':') {
        return Err(ProtocolError::BadHeaders(
            "key must be printable ASCII without ':'",
        ));
    }
    Ok(())
}

/// Builds a headers block in wire form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadersBuilder {
    raw: Vec<u8>,
}

impl HeadersBuilder {
    /// An empty builder.
    pub fn new() -> HeadersBuilder {
        HeadersBuilder::default()
    }

    /// Appends an entry.
    ///
    /// # Errors
    /// [`ProtocolError::BadHeaders`] for a key that is empty, over 255 bytes or not printable
    /// ASCII, or a value over 65,535 bytes.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<&mut HeadersBuilder, ProtocolError> {
        validate_key(key.as_bytes())?;
        let key_len =
            u8::try_from(key.len()).map_err(|_| ProtocolError::BadHeaders("key over 255 bytes"))?;
        let value_len = u16::try_from(value.len())
            .map_err(|_| ProtocolError::BadHeaders("value over 65535 bytes"))?;
        self.raw.push(key_len);
        self.raw.extend_from_slice(key.as_bytes());
        self.raw.extend_from_slice(&value_len.to_le_bytes());
        self.raw.extend_from_slice(value.as_bytes());
        Ok(self)
    }

    /// A view of the block built so far.
    pub fn headers(&self) -> Headers<'_> {
        Headers { raw: &self.raw }
    }

    /// The block in wire form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// Empties the builder, keeping its allocation.
    pub fn clear(&mut self) {
        self.raw.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn built_block_parses_back() {
        let mut b = HeadersBuilder::new();
        b.insert("Content-Type", "application/json").unwrap();
        b.insert("trace", "ünïcode").unwrap();
        let parsed = Headers::parse(b.as_bytes()).unwrap();
        let entries: Vec<_> = parsed.iter().collect();
        assert_eq!(
            entries,
            vec![("Content-Type", "application/json"), ("trace", "ünïcode")]
        );
        assert_eq!(parsed.get("content-type"), Some("application/json"));
    }

    #[test]
    fn every_truncation_of_a_block_is_rejected() {
        let mut b = HeadersBuilder::new();
        b.insert("a", "xyz").unwrap().insert("bb", "").unwrap();
        let raw = b.as_bytes();
        for cut in 1..raw.len() {
            // Cutting at an entry boundary yields a shorter valid block.
            let boundary = cut == 7; // 1 + "a" + 2 + "xyz"
            assert_eq!(
                Headers::parse(&raw[..cut]).is_ok(),
                boundary,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(HeadersBuilder::new().insert("", "v").is_err());
        assert!(HeadersBuilder::new().insert("a:b", "v").is_err());
        assert!(HeadersBuilder::new().insert("a b", "v").is_err());
        assert!(Headers::parse(&[1, 0xff, 0, 0]).is_err());
        assert!(Headers::parse(&[1, b'k', 1, 0, 0xff]).is_err());
    }
}
