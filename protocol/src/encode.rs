//! The encoder: writes frames into a caller's buffer. [`encode_head`] writes everything but the
//! payload, so a delivery's header can be written once per subscriber while every subscriber
//! shares one payload buffer.

use bytes::BufMut;
use zerocopy::IntoBytes;

use crate::error::ProtocolError;
use crate::flags::Flags;
use crate::frame::{Fields, Frame};
use crate::header::{HEADER_LEN, LENGTH_PREFIX_LEN, RawHeader};

/// The head of a frame: everything except the payload bytes.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The op and its fixed fields.
    pub fields: Fields,
    /// Frame flags; [`Flags::HEADERS`] is set or cleared from `headers`.
    pub flags: Flags,
    /// Correlation id.
    pub op_id: u32,
    /// Topic section.
    pub topic: &'a [u8],
    /// Headers block in wire form.
    pub headers: &'a [u8],
}

/// Bytes a frame takes on the wire, prefix included. Inlined: it sizes every delivery.
#[inline]
pub fn frame_len(
    fields: &Fields,
    topic_len: usize,
    headers_len: usize,
    payload_len: usize,
) -> usize {
    HEADER_LEN + Fields::wire_len(fields.op()) + topic_len + headers_len + payload_len
}

/// Writes the header, fixed fields, topic and headers of a frame whose payload is
/// `payload_len` bytes; the caller sends the payload right after.
///
/// # Errors
/// [`ProtocolError::TooLongToEncode`] when a section does not fit its length field.
#[inline]
pub fn encode_head<B: BufMut>(
    head: &Head<'_>,
    payload_len: usize,
    out: &mut B,
) -> Result<(), ProtocolError> {
    let topic_len =
        u16::try_from(head.topic.len()).map_err(|_| ProtocolError::TooLongToEncode("topic"))?;
    let headers_len =
        u32::try_from(head.headers.len()).map_err(|_| ProtocolError::TooLongToEncode("headers"))?;
    let total = frame_len(
        &head.fields,
        head.topic.len(),
        head.headers.len(),
        payload_len,
    );
    let len = u32::try_from(total - LENGTH_PREFIX_LEN)
        .map_err(|_| ProtocolError::TooLongToEncode("frame"))?;
    let flags = if head.headers.is_empty() {
        head.flags.without(Flags::HEADERS)
    } else {
        head.flags.with(Flags::HEADERS)
    };
    let header = RawHeader {
        len: len.into(),
        op: head.fields.op() as u8,
        flags: flags.0,
        topic_len: topic_len.into(),
        headers_len: headers_len.into(),
        op_id: head.op_id.into(),
    };
    out.put_slice(header.as_bytes());
    head.fields.write(out);
    out.put_slice(head.topic);
    out.put_slice(head.headers);
    Ok(())
}

/// Writes a whole frame.
///
/// # Errors
/// As [`encode_head`].
#[inline]
pub fn encode<B: BufMut>(frame: &Frame<'_>, out: &mut B) -> Result<(), ProtocolError> {
    let head = Head {
        fields: frame.fields,
        flags: frame.flags,
        op_id: frame.op_id,
        topic: frame.topic,
        headers: frame.headers.as_bytes(),
    };
    encode_head(&head, frame.payload.len(), out)?;
    out.put_slice(frame.payload);
    Ok(())
}
