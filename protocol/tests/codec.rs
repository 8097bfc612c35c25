//! Codec behaviour: round trips of every op, decoding at every split point and truncation, and
//! the error (and wire code) for every kind of malformed frame.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

mod common;

use shardbus_protocol::header::HEADER_LEN;
use shardbus_protocol::{
    Check, ErrorCode, Fields, Flags, Frame, Head, Limits, Op, ProtocolError, check, decode, encode,
    encode_head, next_frame,
};

fn encoded(frame: &Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out).unwrap();
    out
}

/// Feeds `stream` to a reassembling reader in the given chunks and returns every frame's bytes.
fn reassemble(chunks: &[&[u8]], limits: &Limits) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some((frame, len)) = next_frame(&buf, limits).unwrap() {
            frames.push(encoded(&frame));
            buf.drain(..len);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    frames
}

#[test]
fn every_op_round_trips() {
    let frames = common::sample_frames();
    let ops: std::collections::HashSet<Op> = frames.iter().map(Frame::op).collect();
    assert_eq!(ops.len(), Op::ALL.len(), "fixtures cover every op");
    for frame in frames {
        let bytes = encoded(&frame);
        let decoded = decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(decoded, frame, "{:?}", frame.op());
        assert_eq!(encoded(&decoded), bytes);
    }
}

#[test]
fn every_op_decodes_identically_at_every_split_point() {
    let frames = common::sample_frames();
    let stream: Vec<u8> = frames.iter().flat_map(encoded).collect();
    let expected: Vec<Vec<u8>> = frames.iter().map(encoded).collect();
    let limits = Limits::default();
    for split in 0..=stream.len() {
        let (a, b) = stream.split_at(split);
        assert_eq!(reassemble(&[a, b], &limits), expected, "split at {split}");
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(reassemble(&bytes, &limits), expected, "one byte at a time");
}

#[test]
fn every_truncation_of_every_op_is_incomplete_never_a_frame() {
    let limits = Limits::default();
    for frame in common::sample_frames() {
        let bytes = encoded(&frame);
        for cut in 0..bytes.len() {
            let prefix = &bytes[..cut];
            match check(prefix, &limits).unwrap() {
                Check::Incomplete { frame_len } => {
                    if cut >= 4 {
                        assert_eq!(frame_len, Some(bytes.len()));
                    }
                }
                Check::Complete { .. } => panic!("{:?} complete at {cut}", frame.op()),
            }
            assert!(
                decode(prefix, &limits).is_err(),
                "{:?} cut at {cut}",
                frame.op()
            );
        }
    }
}

#[test]
fn head_then_shared_payload_equals_whole_frame() {
    let payload = vec![7u8; 1024];
    let frame = Frame::new(Fields::Msg {
        sid: 1,
        seq: 2,
        reply: 0,
    })
    .with_topic("a.b.c")
    .with_payload(&payload);
    let mut out = Vec::new();
    let head = Head {
        fields: frame.fields,
        flags: frame.flags,
        op_id: 0,
        topic: frame.topic,
        headers: &[],
    };
    encode_head(&head, payload.len(), &mut out).unwrap();
    out.extend_from_slice(&payload);
    assert_eq!(out, encoded(&frame));
}

fn pub_frame(topic: &str, payload: &[u8]) -> Vec<u8> {
    encoded(
        &Frame::new(Fields::Pub)
            .with_topic(topic)
            .with_payload(payload),
    )
}

fn code_of(bytes: &[u8], limits: &Limits) -> ErrorCode {
    match check(bytes, limits) {
        Err(e) => e.code(),
        Ok(_) => decode(bytes, limits).unwrap_err().code(),
    }
}

#[test]
fn max_length_prefix_is_refused_before_any_buffering() {
    let limits = Limits::default();
    let bytes = [0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        check(&bytes, &limits),
        Err(ProtocolError::FrameTooLarge {
            len: 0x1_0000_0003,
            ..
        })
    ));
    assert_eq!(code_of(&bytes, &limits), ErrorCode::FRAME_TOO_LARGE);
    assert!(ErrorCode::FRAME_TOO_LARGE.closes_connection());
}

#[test]
fn length_shorter_than_header_is_bad_frame() {
    let bytes = 3u32.to_le_bytes();
    assert_eq!(
        check(&bytes, &Limits::default()),
        Err(ProtocolError::FrameTooShort(3))
    );
}

#[test]
fn frame_exactly_at_the_limit_is_accepted_and_one_more_byte_is_not() {
    let payload = vec![0u8; 100];
    let bytes = pub_frame("a", &payload);
    let limits = Limits {
        max_frame: bytes.len() as u32,
        ..Limits::default()
    };
    assert!(decode(&bytes, &limits).is_ok());
    let tight = Limits {
        max_frame: bytes.len() as u32 - 1,
        ..limits
    };
    assert_eq!(code_of(&bytes, &tight), ErrorCode::FRAME_TOO_LARGE);
}

#[test]
fn unknown_and_reserved_ops_are_frame_local_errors() {
    let mut bytes = encoded(&Frame::new(Fields::Ping));
    bytes[4] = 0x7f;
    assert_eq!(
        decode(&bytes, &Limits::default()),
        Err(ProtocolError::UnknownOp(0x7f))
    );
    bytes[4] = 0x24;
    assert_eq!(
        decode(&bytes, &Limits::default()),
        Err(ProtocolError::ReservedOp(0x24))
    );
    assert_eq!(code_of(&bytes, &Limits::default()), ErrorCode::UNKNOWN_OP);
    assert!(!ErrorCode::UNKNOWN_OP.closes_connection());
}

#[test]
fn sections_an_op_may_not_carry_are_bad_frames() {
    let limits = Limits::default();
    let ping_with_topic = encoded(&Frame::new(Fields::Ping).with_topic("a"));
    assert_eq!(code_of(&ping_with_topic, &limits), ErrorCode::BAD_FRAME);
    let ping_with_payload = encoded(&Frame::new(Fields::Ping).with_payload(b"x"));
    assert_eq!(code_of(&ping_with_payload, &limits), ErrorCode::BAD_FRAME);
    let sub_with_headers = encoded(
        &Frame::new(Fields::Sub { sid: 1 })
            .with_topic("a")
            .with_headers(common::sample_headers()),
    );
    assert_eq!(code_of(&sub_with_headers, &limits), ErrorCode::BAD_FRAME);
}

#[test]
fn section_lengths_past_the_frame_are_bad_frames() {
    let mut bytes = pub_frame("a.b", b"xy");
    bytes[6] = 200; // topic_len beyond the frame
    assert_eq!(
        decode(&bytes, &Limits::default()),
        Err(ProtocolError::SectionOverflow)
    );
    let mut bytes = pub_frame("a.b", b"xy");
    bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes()); // headers_len
    bytes[5] = Flags::HEADERS.0;
    assert_eq!(
        decode(&bytes, &Limits::default()),
        Err(ProtocolError::SectionOverflow)
    );
}

#[test]
fn undefined_flags_and_a_lying_headers_flag_are_refused() {
    let mut bytes = pub_frame("a", b"x");
    bytes[5] = 0x80;
    assert_eq!(
        decode(&bytes, &Limits::default()),
        Err(ProtocolError::BadFlags(0x80))
    );
    bytes[5] = Flags::HEADERS.0; // flag set, but no headers block
    assert_eq!(
        decode(&bytes, &Limits::default()),
        Err(ProtocolError::BadFlags(0x01))
    );
}

#[test]
fn publishing_to_a_wildcard_or_malformed_topic_is_invalid_topic() {
    let limits = Limits::default();
    for topic in ["a.*", "a.>", "a..b", ".a", "a b", "a\u{7f}"] {
        assert_eq!(
            code_of(&pub_frame(topic, b""), &limits),
            ErrorCode::INVALID_TOPIC,
            "{topic}"
        );
    }
    let missing = encoded(&Frame::new(Fields::Pub).with_payload(b"x"));
    assert_eq!(code_of(&missing, &limits), ErrorCode::INVALID_TOPIC);
}

#[test]
fn topic_over_the_limit_is_invalid_topic() {
    let limits = Limits {
        max_topic_len: 8,
        ..Limits::default()
    };
    assert!(decode(&pub_frame("abcd.efg", b""), &limits).is_ok());
    assert_eq!(
        code_of(&pub_frame("abcd.efgh", b""), &limits),
        ErrorCode::INVALID_TOPIC
    );
}

#[test]
fn payload_over_the_limit_is_payload_too_large_and_keeps_the_connection() {
    let limits = Limits {
        max_payload: 16,
        ..Limits::default()
    };
    assert!(decode(&pub_frame("a", &[0; 16]), &limits).is_ok());
    let code = code_of(&pub_frame("a", &[0; 17]), &limits);
    assert_eq!(code, ErrorCode::PAYLOAD_TOO_LARGE);
    assert!(!code.closes_connection());
}

#[test]
fn headers_over_the_limit_or_malformed_are_bad_headers() {
    let h = common::sample_headers();
    let frame = Frame::new(Fields::Pub).with_topic("a").with_headers(h);
    let limits = Limits {
        max_headers_len: h.as_bytes().len() as u32 - 1,
        ..Limits::default()
    };
    assert_eq!(code_of(&encoded(&frame), &limits), ErrorCode::BAD_HEADERS);
    let mut bytes = encoded(&frame);
    let key_at = HEADER_LEN + 1 + 1; // header, topic "a", key_len byte
    bytes[key_at] = b':';
    assert_eq!(code_of(&bytes, &Limits::default()), ErrorCode::BAD_HEADERS);
}

#[test]
fn queue_group_must_be_one_token() {
    let frame = Frame::new(Fields::Sub { sid: 1 })
        .with_topic("a")
        .with_payload(b"bad.group");
    assert_eq!(
        code_of(&encoded(&frame), &Limits::default()),
        ErrorCode::INVALID_QUEUE_GROUP
    );
}

#[test]
fn err_message_must_be_utf8() {
    let frame = Frame::new(Fields::Err {
        code: ErrorCode::INTERNAL,
        retry_after_ms: 0,
        ref_id: 0,
    })
    .with_payload(&[0xff, 0xfe]);
    assert_eq!(
        code_of(&encoded(&frame), &Limits::default()),
        ErrorCode::BAD_FRAME
    );
}

#[test]
fn sixteen_byte_pub_is_51_bytes_on_the_wire() {
    // Pinned so a layout change is a deliberate, documented one (PROTOCOL.md §2).
    assert_eq!(
        pub_frame("sensors.kitchen.temp", &[0; 16]).len(),
        16 + 20 + 16
    );
    assert_eq!(pub_frame("foo.bar", &[0; 16]).len(), 39);
}
