//! Property tests: the decoder never panics on any input and always ends in a frame,
//! `Incomplete` or an error; valid frames survive any split; topic matching agrees with a
//! naive reference; containers round-trip through binary and JSON.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

use proptest::prelude::*;
use shardbus_protocol::container::json::{json_to_binary, write_json};
use shardbus_protocol::container::{ContainerLimits, NumVec, Value, decode as decode_container};
use shardbus_protocol::topic::{matches, validate_pattern, validate_subject};
use shardbus_protocol::{
    Check, ErrorCode, Fields, Flags, Frame, HeadersBuilder, Limits, check, decode, encode,
    next_frame,
};

fn small_limits() -> Limits {
    Limits {
        max_frame: 4096,
        max_payload: 2048,
        max_topic_len: 64,
        max_topic_tokens: 8,
        max_headers_len: 512,
    }
}

/// Drives a stream through check/decode as a server would: skip frames whose error keeps the
/// connection open, stop at an error that closes it. Returns how many frames decoded.
fn drive(mut buf: &[u8], limits: &Limits) -> usize {
    let mut decoded = 0;
    loop {
        match check(buf, limits) {
            Ok(Check::Incomplete { .. }) => return decoded,
            Err(e) => {
                assert!(e.code().closes_connection(), "{e}");
                return decoded;
            }
            Ok(Check::Complete { frame_len }) => {
                match decode(buf, limits) {
                    Ok(_) => decoded += 1,
                    Err(e) => assert_ne!(e.code(), ErrorCode::INTERNAL),
                }
                buf = &buf[frame_len..];
            }
        }
    }
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned()),
        "[a-z0-9_$-]{1,6}"
    ]
}

fn subject() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..6).prop_map(|t| t.join("."))
}

fn pattern() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![3 => token(), 1 => Just("*".to_owned())], 1..5),
        any::<bool>(),
    )
        .prop_map(|(mut tokens, tail)| {
            if tail {
                tokens.push(">".to_owned());
            }
            tokens.join(".")
        })
}

/// Reference matcher over token vectors, written independently of `topic::matches`.
fn naive_matches(pattern: &[&str], subject: &[&str]) -> bool {
    match (pattern.split_first(), subject.split_first()) {
        (Some((&">", _)), Some(_)) => true,
        (Some((p, prest)), Some((s, srest))) => {
            (*p == "*" || p == s) && naive_matches(prest, srest)
        }
        (None, None) => true,
        _ => false,
    }
}

fn arb_frame() -> impl Strategy<Value = (Fields, String, Vec<(String, String)>, Vec<u8>)> {
    let fields = prop_oneof![
        Just(Fields::Pub),
        any::<u64>().prop_map(|sid| Fields::Sub { sid }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(sid, seq, reply)| Fields::Msg {
            sid,
            seq,
            reply
        }),
        (any::<u64>(), any::<u32>()).prop_map(|(request_id, timeout_ms)| Fields::Req {
            request_id,
            timeout_ms
        }),
        any::<u64>().prop_map(|id| Fields::Resp { id }),
        Just(Fields::Ping),
    ];
    let headers = prop::collection::vec(("[a-z-]{1,10}", "[ -~é]{0,20}"), 0..3);
    (
        fields,
        subject(),
        headers,
        prop::collection::vec(any::<u8>(), 0..300),
    )
}

fn build<'a>(
    fields: Fields,
    topic: &'a str,
    headers: &'a HeadersBuilder,
    payload: &'a [u8],
) -> Frame<'a> {
    let frame = Frame::new(fields);
    match fields {
        Fields::Pub | Fields::Msg { .. } | Fields::Req { .. } => frame
            .with_topic(topic)
            .with_headers(headers.headers())
            .with_payload(payload),
        Fields::Sub { .. } => frame.with_topic(topic),
        Fields::Resp { .. } => frame.with_headers(headers.headers()).with_payload(payload),
        _ => frame,
    }
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i8>().prop_map(Value::I8),
        any::<i32>().prop_map(Value::I32),
        any::<i64>().prop_map(Value::I64),
        any::<u16>().prop_map(Value::U16),
        any::<u64>().prop_map(Value::U64),
        prop::num::f32::NORMAL.prop_map(Value::F32),
        prop::num::f64::NORMAL.prop_map(Value::F64),
        ".{0,12}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
        prop::collection::vec(any::<i16>(), 0..8).prop_map(|v| Value::Array(NumVec::I16(v))),
        prop::collection::vec(prop::num::f64::NORMAL, 0..8)
            .prop_map(|v| Value::Array(NumVec::F64(v))),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec((".{0,8}", inner), 0..6).prop_map(Value::Map),
        ]
    })
}

/// Values that JSON maps back to themselves: i64, u64 above i64::MAX, finite f64, strings,
/// bytes, lists and maps (no `$bytes` key, which JSON reserves).
fn canonical_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::U64),
        prop::num::f64::NORMAL.prop_map(Value::F64),
        ".{0,12}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec(("[a-z]{0,8}", inner), 0..6).prop_map(Value::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        drive(&bytes, &small_limits());
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        op in any::<u8>(),
        flags in any::<u8>(),
        topic_len in 0u16..80,
        headers_len in 0u32..80,
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = ((12 + body.len()) as u32).to_le_bytes().to_vec();
        bytes.push(op);
        bytes.push(flags);
        bytes.extend_from_slice(&topic_len.to_le_bytes());
        bytes.extend_from_slice(&headers_len.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&body);
        let complete = matches!(check(&bytes, &small_limits()), Ok(Check::Complete { .. }));
        prop_assert!(complete, "a frame of {} bytes is not complete", bytes.len());
        let _ = decode(&bytes, &small_limits());
    }

    #[test]
    fn valid_frames_round_trip_at_any_split(
        frames in prop::collection::vec(arb_frame(), 1..5),
        split_seed in any::<usize>(),
    ) {
        let builders: Vec<HeadersBuilder> = frames.iter().map(|(_, _, h, _)| {
            let mut b = HeadersBuilder::new();
            for (k, v) in h { b.insert(k, v).unwrap(); }
            b
        }).collect();
        let built: Vec<Frame<'_>> = frames.iter().zip(&builders)
            .map(|((f, t, _, p), h)| build(*f, t, h, p)).collect();
        let mut stream = Vec::new();
        for f in &built { encode(f, &mut stream).unwrap(); }
        let split = split_seed % (stream.len() + 1);
        let mut buf = stream[..split].to_vec();
        let mut got = Vec::new();
        let limits = Limits::default();
        for chunk in [&stream[..0], &stream[split..]] {
            buf.extend_from_slice(chunk);
            while let Some((frame, len)) = next_frame(&buf, &limits).unwrap() {
                let mut out = Vec::new();
                encode(&frame, &mut out).unwrap();
                got.push(out);
                buf.drain(..len);
            }
        }
        let want: Vec<Vec<u8>> = built.iter().map(|f| { let mut o = Vec::new(); encode(f, &mut o).unwrap(); o }).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn topic_matching_agrees_with_the_reference(p in pattern(), s in subject()) {
        prop_assert!(validate_pattern(p.as_bytes(), 256).is_ok());
        prop_assert!(validate_subject(s.as_bytes(), 256).is_ok());
        let pt: Vec<&str> = p.split('.').collect();
        let st: Vec<&str> = s.split('.').collect();
        prop_assert_eq!(matches(&p, &s), naive_matches(&pt, &st), "{} vs {}", p, s);
    }

    #[test]
    fn a_subject_always_matches_itself_and_gt(s in subject()) {
        prop_assert!(matches(&s, &s));
        prop_assert!(matches(">", &s));
    }

    #[test]
    fn containers_round_trip_through_binary(v in value_strategy()) {
        let bin = v.to_binary().unwrap();
        let view = decode_container(&bin, &ContainerLimits::default()).unwrap();
        prop_assert_eq!(view.to_owned_value(), v);
    }

    #[test]
    fn json_of_any_container_is_stable(v in value_strategy()) {
        let mut json1 = v.to_json().unwrap();
        let mut bin = Vec::new();
        json_to_binary(&mut json1.clone(), &ContainerLimits::default(), &mut bin).unwrap();
        let mut json2 = Vec::new();
        write_json(&decode_container(&bin, &ContainerLimits::default()).unwrap(), &mut json2);
        // Re-parse both: the second print must describe the same document as the first.
        let mut a = Vec::new();
        json_to_binary(&mut json1, &ContainerLimits::default(), &mut a).unwrap();
        let mut b = Vec::new();
        json_to_binary(&mut json2, &ContainerLimits::default(), &mut b).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn canonical_containers_survive_binary_json_binary(v in canonical_strategy()) {
        let bin = v.to_binary().unwrap();
        let mut json = v.to_json().unwrap();
        let mut back = Vec::new();
        json_to_binary(&mut json, &ContainerLimits::default(), &mut back).unwrap();
        prop_assert_eq!(back, bin);
    }

    #[test]
    fn random_bytes_never_panic_the_container_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_container(&bytes, &ContainerLimits::default());
    }

    #[test]
    fn random_text_never_panics_the_json_parser(mut text in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = json_to_binary(&mut text, &ContainerLimits::default(), &mut Vec::new());
    }

    #[test]
    fn lz4_round_trips_and_never_panics_on_garbage(
        payload in prop::collection::vec(0u8..4, 0..4096),
        garbage in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        use shardbus_protocol::container::compress::{compress_if_smaller, decompress};
        let mut packed = Vec::new();
        if compress_if_smaller(&payload, 64, &mut packed) {
            let mut out = Vec::new();
            decompress(&packed, payload.len(), &mut out).unwrap();
            prop_assert_eq!(out, payload);
        }
        let _ = decompress(&garbage, 1 << 16, &mut Vec::new());
    }
}

#[test]
fn flags_survive_round_trip() {
    let frame = Frame::new(Fields::Pub)
        .with_topic("a")
        .with_flags(Flags::CONTAINER.with(Flags::LZ4))
        .with_payload(b"x");
    let mut out = Vec::new();
    encode(&frame, &mut out).unwrap();
    assert_eq!(decode(&out, &Limits::default()).unwrap().flags, Flags(0x06));
}
