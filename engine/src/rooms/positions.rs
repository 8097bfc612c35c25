//! Where a room publication sits, as the wire carries it: the `sb-epoch` and `sb-offset`
//! headers the home writes first into a publication's headers block (a publisher's own `sb-`
//! headers removed), and the position a JOIN or HISTORY asks from.

use shardbus_protocol::{Headers, RoomFields, RoomFlags};

use crate::history::Position;

/// Header keys that carry a publication's position; a publisher's own are removed.
pub(crate) const EPOCH_HEADER: &str = "sb-epoch";
pub(crate) const OFFSET_HEADER: &str = "sb-offset";
/// The most the position headers add to a headers block.
pub(crate) const POSITION_HEADERS_LEN: usize = 2 * (1 + 9 + 2 + 20);

/// The position a JOIN or HISTORY names, when it sets `FROM_POSITION`.
pub(crate) fn asked_position(fields: RoomFields) -> Option<Position> {
    fields
        .flags
        .contains(RoomFlags::FROM_POSITION)
        .then_some(Position {
            epoch: fields.epoch,
            offset: fields.offset,
        })
}

/// Appends one header entry (key and value within the wire's lengths).
fn put_header(out: &mut Vec<u8>, key: &str, value: &str) {
    out.push(key.len() as u8);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// A publisher's (validated) headers without any `sb-` entry: the position headers are the
/// home's to set.
pub(crate) fn strip_positions(headers: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for (key, value) in Headers::parse(headers).unwrap_or_default() {
        if !key.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("sb-")) {
            put_header(out, key, value);
        }
    }
}

/// The position a stamped publication's headers carry (`None`: they carry none).
pub(crate) fn read_position(headers: &[u8]) -> Option<Position> {
    let (mut epoch, mut offset) = (None, None);
    for (key, value) in Headers::parse(headers).ok()? {
        if key == EPOCH_HEADER {
            epoch = value.parse().ok();
        } else if key == OFFSET_HEADER {
            offset = value.parse().ok();
        }
        if epoch.is_some() && offset.is_some() {
            break;
        }
    }
    Some(Position {
        epoch: epoch?,
        offset: offset?,
    })
}

/// `position` as headers, then `headers`.
pub(crate) fn positioned(position: Position, headers: &[u8], out: &mut Vec<u8>) {
    out.clear();
    put_header(out, EPOCH_HEADER, &position.epoch.to_string());
    put_header(out, OFFSET_HEADER, &position.offset.to_string());
    out.extend_from_slice(headers);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use shardbus_protocol::HeadersBuilder;

    #[test]
    fn the_home_writes_the_position_first_and_removes_forged_ones() {
        let mut publisher = HeadersBuilder::new();
        publisher.insert("trace", "t1").unwrap();
        publisher.insert("SB-Offset", "999").unwrap();
        let (mut stripped, mut stamped) = (Vec::new(), Vec::new());
        strip_positions(publisher.as_bytes(), &mut stripped);
        let position = Position {
            epoch: 7,
            offset: 42,
        };
        positioned(position, &stripped, &mut stamped);
        assert_eq!(read_position(&stamped), Some(position));
        assert_eq!(read_position(&stripped), None);
        let entries: Vec<_> = Headers::parse(&stamped).unwrap().iter().collect();
        assert_eq!(
            entries,
            vec![("sb-epoch", "7"), ("sb-offset", "42"), ("trace", "t1")]
        );
        assert!(stamped.len() <= POSITION_HEADERS_LEN + stripped.len());
    }
}
