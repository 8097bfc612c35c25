//! LZ4 payload compression (frame flag `LZ4`, PROTOCOL.md §2.2): the block format of `lz4_flex`
//! with a 4-byte little-endian uncompressed-size prefix.
//!
//! The prefix is checked against the caller's limit before anything is allocated, so a small
//! frame cannot announce a huge inflation.

use super::error::ContainerError;

/// Payloads shorter than this are not worth compressing by default.
pub const DEFAULT_THRESHOLD: usize = 1024;

/// Compresses `payload` into `out` when it is at least `threshold` bytes and compression saves
/// space. Returns whether `out` now holds a compressed payload; on `false`, `out` is untouched
/// and the caller sends `payload` as it is.
pub fn compress_if_smaller(payload: &[u8], threshold: usize, out: &mut Vec<u8>) -> bool {
    let Ok(size) = u32::try_from(payload.len()) else {
        return false;
    };
    if payload.len() < threshold {
        return false;
    }
    let start = out.len();
    out.extend_from_slice(&size.to_le_bytes());
    let body = start + 4;
    out.resize(
        body + lz4_flex::block::get_maximum_output_size(payload.len()),
        0,
    );
    let written = out
        .get_mut(body..)
        .and_then(|tail| lz4_flex::block::compress_into(payload, tail).ok());
    match written {
        Some(n) if 4 + n < payload.len() => {
            out.truncate(body + n);
            true
        }
        _ => {
            out.truncate(start);
            false
        }
    }
}

/// Decompresses a size-prefixed LZ4 payload into `out`.
///
/// # Errors
/// [`ContainerError::TooLarge`] when the announced size exceeds `max_len` (checked before
/// allocating), [`ContainerError::BadCompression`] for corrupt data or a size mismatch.
pub fn decompress(payload: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<(), ContainerError> {
    let (size, body) = payload
        .split_first_chunk::<4>()
        .ok_or(ContainerError::BadCompression)?;
    let size = u32::from_le_bytes(*size) as usize;
    if size > max_len {
        return Err(ContainerError::TooLarge {
            len: size,
            max: max_len,
        });
    }
    let start = out.len();
    out.resize(start + size, 0);
    let result = out
        .get_mut(start..)
        .map(|tail| lz4_flex::block::decompress_into(body, tail));
    match result {
        Some(Ok(n)) if n == size => Ok(()),
        _ => {
            out.truncate(start);
            Err(ContainerError::BadCompression)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn compressible_payload_round_trips() {
        let payload = b"temperature=21.5;".repeat(200);
        let mut packed = Vec::new();
        assert!(compress_if_smaller(
            &payload,
            DEFAULT_THRESHOLD,
            &mut packed
        ));
        assert!(packed.len() < payload.len() / 4);
        let mut unpacked = Vec::new();
        decompress(&packed, payload.len(), &mut unpacked).unwrap();
        assert_eq!(unpacked, payload);
    }

    #[test]
    fn small_or_random_payloads_are_left_alone() {
        let mut out = Vec::new();
        assert!(!compress_if_smaller(b"short", DEFAULT_THRESHOLD, &mut out));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        assert!(!compress_if_smaller(&noise, DEFAULT_THRESHOLD, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn announced_size_over_limit_is_refused_before_allocating() {
        let mut bomb = u32::MAX.to_le_bytes().to_vec();
        bomb.extend_from_slice(&[0x1f, 0]);
        let mut out = Vec::new();
        assert!(matches!(
            decompress(&bomb, 1 << 20, &mut out),
            Err(ContainerError::TooLarge { .. })
        ));
        assert_eq!(out.capacity(), 0);
    }

    #[test]
    fn corrupt_data_is_refused() {
        let mut out = Vec::new();
        assert_eq!(
            decompress(&[8, 0, 0, 0, 0xff, 0xff], 100, &mut out),
            Err(ContainerError::BadCompression)
        );
        assert_eq!(
            decompress(&[1], 100, &mut out),
            Err(ContainerError::BadCompression)
        );
    }
}
