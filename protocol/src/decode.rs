//! The two-step, sans-IO frame decoder: [`check`] says how long the next frame is (or that more
//! bytes are needed); [`decode`] turns exactly one frame into a borrowed [`Frame`].
//!
//! The length prefix is checked against [`Limits::max_frame`] before a caller buffers anything,
//! so a peer cannot make the reader allocate more than the limit. Once `check` has delimited a
//! frame, an error from `decode` concerns that frame alone: the caller can skip `frame_len`
//! bytes and go on when the error's code keeps the connection open.

use zerocopy::FromBytes;

use crate::error::ProtocolError;
use crate::flags::Flags;
use crate::frame::{Fields, Frame, TopicRule};
use crate::header::{HEADER_LEN, LENGTH_PREFIX_LEN, RawHeader};
use crate::headers::Headers;
use crate::limits::Limits;
use crate::op::Op;
use crate::topic::{validate_pattern, validate_queue_group, validate_subject};

/// What [`check`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// More bytes are needed. `frame_len` is the whole frame's size once the prefix is in.
    Incomplete {
        /// The announced frame length (prefix included), when known.
        frame_len: Option<usize>,
    },
    /// A whole frame of `frame_len` bytes (prefix included) starts the buffer.
    Complete {
        /// The frame's length, prefix included.
        frame_len: usize,
    },
}

/// Looks at the length prefix of the frame at the start of `buf`.
///
/// # Errors
/// [`ProtocolError::FrameTooShort`] when the prefix is below the header size, and
/// [`ProtocolError::FrameTooLarge`] when the frame would exceed `limits.max_frame`. Both mean the
/// stream can no longer be delimited: close the connection.
#[inline]
pub fn check(buf: &[u8], limits: &Limits) -> Result<Check, ProtocolError> {
    let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX_LEN>() else {
        return Ok(Check::Incomplete { frame_len: None });
    };
    let len = u32::from_le_bytes(*prefix);
    let frame_len = u64::from(len) + LENGTH_PREFIX_LEN as u64;
    if frame_len < HEADER_LEN as u64 {
        return Err(ProtocolError::FrameTooShort(len));
    }
    if frame_len > u64::from(limits.max_frame) {
        return Err(ProtocolError::FrameTooLarge {
            len: frame_len,
            max: limits.max_frame,
        });
    }
    // frame_len <= max_frame <= u32::MAX + 4, which fits usize on every supported target.
    let frame_len = usize::try_from(frame_len).map_err(|_| ProtocolError::FrameTooLarge {
        len: frame_len,
        max: limits.max_frame,
    })?;
    Ok(if buf.len() >= frame_len {
        Check::Complete { frame_len }
    } else {
        Check::Incomplete {
            frame_len: Some(frame_len),
        }
    })
}

/// Decodes the one frame that starts `frame`, borrowing its sections. Bytes after the frame's
/// announced length are ignored.
///
/// # Errors
/// Any [`ProtocolError`]; see [`ProtocolError::code`] for whether the connection survives.
#[inline(always)]
pub fn decode<'a>(frame: &'a [u8], limits: &Limits) -> Result<Frame<'a>, ProtocolError> {
    let frame_len = match check(frame, limits)? {
        Check::Complete { frame_len } => frame_len,
        Check::Incomplete { .. } => return Err(ProtocolError::SectionOverflow),
    };
    let frame = frame
        .get(..frame_len)
        .ok_or(ProtocolError::SectionOverflow)?;
    let (header, body) =
        RawHeader::ref_from_prefix(frame).map_err(|_| ProtocolError::SectionOverflow)?;
    let op = Op::from_u8(header.op)?;
    let flags = Flags(header.flags);
    let topic_len = usize::from(header.topic_len.get());
    let headers_len = header.headers_len.get() as usize;

    let (fields_bytes, body) = body
        .split_at_checked(Fields::wire_len(op))
        .ok_or(ProtocolError::SectionOverflow)?;
    let (topic, body) = body
        .split_at_checked(topic_len)
        .ok_or(ProtocolError::SectionOverflow)?;
    let (headers_raw, payload) = body
        .split_at_checked(headers_len)
        .ok_or(ProtocolError::SectionOverflow)?;
    let fields = Fields::read(op, fields_bytes).ok_or(ProtocolError::SectionOverflow)?;

    if flags.0 & !Flags::ALL.0 != 0 || flags.contains(Flags::HEADERS) != (headers_len != 0) {
        return Err(ProtocolError::BadFlags(flags.0));
    }
    let rules = Fields::sections(op);
    if !rules.headers && headers_len != 0 {
        return Err(ProtocolError::BadSection {
            op: op.name(),
            problem: "must not carry headers",
        });
    }
    if !rules.payload && !payload.is_empty() {
        return Err(ProtocolError::BadSection {
            op: op.name(),
            problem: "must not carry a payload",
        });
    }
    if headers_len > limits.max_headers_len as usize {
        return Err(ProtocolError::HeadersTooLarge {
            len: headers_len,
            max: limits.max_headers_len as usize,
        });
    }
    if payload.len() > limits.max_payload as usize {
        return Err(ProtocolError::PayloadTooLarge {
            len: payload.len(),
            max: limits.max_payload as usize,
        });
    }
    let max_topic = usize::from(limits.max_topic_len);
    match rules.topic {
        TopicRule::Absent if topic.is_empty() => {}
        TopicRule::Absent => {
            return Err(ProtocolError::BadSection {
                op: op.name(),
                problem: "must not carry a topic",
            });
        }
        TopicRule::Subject => validate_subject(topic, max_topic)?,
        TopicRule::Pattern => validate_pattern(topic, max_topic)?,
    }
    // Every token is at least one byte with a dot between, so a topic shorter than twice the
    // limit cannot have too many: the publish path's short subjects pay one comparison.
    if topic.len() >= 2 * usize::from(limits.max_topic_tokens) {
        check_tokens(topic, limits.max_topic_tokens)?;
    }
    match op {
        Op::Sub if !payload.is_empty() => validate_queue_group(payload, max_topic)?,
        Op::Err if simdutf8::basic::from_utf8(payload).is_err() => {
            return Err(ProtocolError::BadSection {
                op: op.name(),
                problem: "message must be UTF-8",
            });
        }
        _ => {}
    }
    let headers = if headers_raw.is_empty() {
        Headers::EMPTY
    } else {
        Headers::parse(headers_raw)?
    };
    Ok(Frame {
        fields,
        flags,
        op_id: header.op_id.get(),
        topic,
        headers,
        payload,
    })
}

/// Refuses a topic of more than `max` tokens (for topics long enough to have that many).
#[cold]
fn check_tokens(topic: &[u8], max: u16) -> Result<(), ProtocolError> {
    let max = usize::from(max);
    let count = memchr::memchr_iter(b'.', topic).take(max).count() + 1;
    if count > max {
        return Err(ProtocolError::TooManyTokens { count, max });
    }
    Ok(())
}

/// Decodes the frame at the start of `buf` if it is complete, returning it with its length.
///
/// # Errors
/// As [`check`] and [`decode`].
#[inline]
pub fn next_frame<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Frame<'a>, usize)>, ProtocolError> {
    match check(buf, limits)? {
        Check::Incomplete { .. } => Ok(None),
        Check::Complete { frame_len } => Ok(Some((decode(buf, limits)?, frame_len))),
    }
}
