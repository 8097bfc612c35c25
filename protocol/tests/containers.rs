//! Container behaviour: binary round trips of every type, zero-copy views, the limits enforced
//! while decoding, and the JSON mapping both ways.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

use shardbus_protocol::container::json::{json_to_binary, parse_json, write_json};
use shardbus_protocol::container::{
    ContainerError, ContainerLimits, NumKind, NumVec, Value, ValueRef, decode,
};

fn every_type() -> Value {
    Value::Map(vec![
        ("null".into(), Value::Null),
        ("yes".into(), Value::Bool(true)),
        ("no".into(), Value::Bool(false)),
        ("i8".into(), Value::I8(-8)),
        ("i16".into(), Value::I16(-16_000)),
        ("i32".into(), Value::I32(-2_000_000_000)),
        ("i64".into(), Value::I64(i64::MIN)),
        ("u8".into(), Value::U8(255)),
        ("u16".into(), Value::U16(65_535)),
        ("u32".into(), Value::U32(4_000_000_000)),
        ("u64".into(), Value::U64(u64::MAX)),
        ("f32".into(), Value::F32(0.1)),
        ("f64".into(), Value::F64(-2.5e-300)),
        ("str".into(), Value::Str("héllo \"wörld\"\n".into())),
        ("bytes".into(), Value::Bytes(vec![0, 1, 2, 255])),
        (
            "f32s".into(),
            Value::Array(NumVec::F32(vec![1.5, -2.0, 3.25])),
        ),
        ("u16s".into(), Value::Array(NumVec::U16(vec![1, 2, 65_535]))),
        (
            "list".into(),
            Value::List(vec![
                Value::I64(1),
                Value::Str("two".into()),
                Value::List(vec![]),
            ]),
        ),
        ("empty map".into(), Value::Map(vec![])),
    ])
}

#[test]
fn every_type_round_trips_through_binary() {
    let value = every_type();
    let bin = value.to_binary().unwrap();
    let view = decode(&bin, &ContainerLimits::default()).unwrap();
    assert_eq!(view.to_owned_value(), value);
}

#[test]
fn views_borrow_strings_and_bytes_from_the_input() {
    let bin = every_type().to_binary().unwrap();
    let view = decode(&bin, &ContainerLimits::default()).unwrap();
    let range = bin.as_ptr_range();
    let s = view.get("str").unwrap().as_str().unwrap();
    assert!(range.contains(&s.as_ptr()));
    let ValueRef::Bytes(b) = view.get("bytes").unwrap() else {
        panic!()
    };
    assert!(range.contains(&b.as_ptr()));
}

#[test]
fn aligned_numeric_arrays_cast_without_copying() {
    let bin = Value::Array(NumVec::F32(vec![1.0, 2.0, 3.0, 4.0]))
        .to_binary()
        .unwrap();
    // Elements start 6 bytes in (tag, kind, u32 count): at offset 2 of an 8-aligned buffer they
    // are aligned, at offset 3 they are not.
    let mut backing = vec![0u64; bin.len() / 8 + 2];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut backing);
    for offset in [2, 3] {
        bytes.fill(0);
        bytes[offset..offset + bin.len()].copy_from_slice(&bin);
        let input = &bytes[offset..offset + bin.len()];
        let ValueRef::Array(arr) = decode(input, &ContainerLimits::default()).unwrap() else {
            panic!("not an array")
        };
        assert_eq!(arr.kind(), NumKind::F32);
        assert_eq!(arr.get(3), Some(ValueRef::F32(4.0)));
        assert!(arr.cast::<u32>().is_none(), "wrong element type");
        match arr.cast::<f32>() {
            Some(floats) => {
                assert_eq!(offset, 2);
                assert_eq!(floats, &[1.0, 2.0, 3.0, 4.0]);
                assert!(input.as_ptr_range().contains(&floats.as_ptr().cast()));
            }
            None => assert_eq!(offset, 3, "aligned data must cast"),
        }
    }
}

#[test]
fn every_truncation_of_a_nested_value_is_refused() {
    let bin = every_type().to_binary().unwrap();
    for cut in 0..bin.len() {
        assert!(
            decode(&bin[..cut], &ContainerLimits::default()).is_err(),
            "cut at {cut}"
        );
    }
}

fn nested_lists(depth: usize) -> Value {
    (0..depth).fold(Value::Null, |inner, _| Value::List(vec![inner]))
}

#[test]
fn nesting_past_the_depth_limit_is_refused() {
    let limits = ContainerLimits {
        max_depth: 8,
        ..ContainerLimits::default()
    };
    assert!(decode(&nested_lists(8).to_binary().unwrap(), &limits).is_ok());
    assert_eq!(
        decode(&nested_lists(9).to_binary().unwrap(), &limits),
        Err(ContainerError::TooDeep(8))
    );
    let mut json = b"[[[[[[[[[1]]]]]]]]]".to_vec();
    assert_eq!(
        json_to_binary(&mut json, &limits, &mut Vec::new()),
        Err(ContainerError::TooDeep(8))
    );
}

#[test]
fn oversized_input_trailing_bytes_and_unknown_tags_are_refused() {
    let bin = Value::Str("x".repeat(100)).to_binary().unwrap();
    let small = ContainerLimits {
        max_size: 50,
        ..ContainerLimits::default()
    };
    assert!(matches!(
        decode(&bin, &small),
        Err(ContainerError::TooLarge { .. })
    ));
    assert_eq!(
        decode(&[0x00, 0x00], &ContainerLimits::default()),
        Err(ContainerError::TrailingBytes(1))
    );
    assert_eq!(
        decode(&[0x7e], &ContainerLimits::default()),
        Err(ContainerError::UnknownTag(0x7e))
    );
    assert_eq!(
        decode(&[0x12, 0x10, 0, 0, 0, 0], &ContainerLimits::default()),
        Err(ContainerError::BadArrayKind(0x10))
    );
}

#[test]
fn a_huge_announced_count_fails_fast_on_a_short_input() {
    // A list claiming 4 billion items in 9 bytes: the byte length bounds the walk.
    let bytes = [0x13, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    assert!(decode(&bytes, &ContainerLimits::default()).is_err());
    let bytes = [0x12, 0x0c, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        decode(&bytes, &ContainerLimits::default()),
        Err(ContainerError::Truncated)
    );
}

#[test]
fn invalid_utf8_in_strings_and_keys_is_refused() {
    assert_eq!(
        decode(&[0x10, 1, 0, 0, 0, 0xff], &ContainerLimits::default()),
        Err(ContainerError::BadUtf8)
    );
    let map = [0x14, 1, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0xff, 0x00];
    assert_eq!(
        decode(&map, &ContainerLimits::default()),
        Err(ContainerError::BadUtf8)
    );
}

fn json_of(value: &Value) -> String {
    String::from_utf8(value.to_json().unwrap()).unwrap()
}

#[test]
fn json_output_keeps_integers_and_floats_apart() {
    let value = Value::List(vec![
        Value::I64(1),
        Value::F64(1.0),
        Value::F32(0.1),
        Value::F64(f64::NAN),
        Value::F32(f32::INFINITY),
        Value::U64(u64::MAX),
    ]);
    assert_eq!(
        json_of(&value),
        "[1,1.0,0.1,null,null,18446744073709551615]"
    );
}

#[test]
fn json_output_escapes_strings_and_wraps_bytes() {
    let value = Value::Map(vec![
        ("q\"k".into(), Value::Str("line\nbreak \u{1} é".into())),
        ("b".into(), Value::Bytes(b"hi!".to_vec())),
        ("arr".into(), Value::Array(NumVec::I16(vec![-1, 2]))),
    ]);
    assert_eq!(
        json_of(&value),
        r#"{"q\"k":"line\nbreak \u0001 é","b":{"$bytes":"aGkh"},"arr":[-1,2]}"#
    );
}

#[test]
fn json_input_maps_to_canonical_types() {
    let mut text =
        br#"{"i":-3,"big":18446744073709551615,"f":2.5,"s":"x","b":{"$bytes":"AAH/"},"l":[true,null]}"#
            .to_vec();
    let value = parse_json(&mut text, &ContainerLimits::default()).unwrap();
    assert_eq!(
        value,
        Value::Map(vec![
            ("i".into(), Value::I64(-3)),
            ("big".into(), Value::U64(u64::MAX)),
            ("f".into(), Value::F64(2.5)),
            ("s".into(), Value::Str("x".into())),
            ("b".into(), Value::Bytes(vec![0, 1, 255])),
            (
                "l".into(),
                Value::List(vec![Value::Bool(true), Value::Null])
            ),
        ])
    );
}

#[test]
fn json_keeps_key_order_and_duplicate_keys() {
    let mut text = br#"{"z":1,"a":2,"z":3}"#.to_vec();
    let value = parse_json(&mut text, &ContainerLimits::default()).unwrap();
    let Value::Map(entries) = value else { panic!() };
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["z", "a", "z"]);
}

#[test]
fn malformed_json_and_bad_base64_are_refused() {
    for bad in [&b"{"[..], b"[1,]", b"nul", b"\"unterminated", b""] {
        let mut text = bad.to_vec();
        assert!(
            matches!(
                parse_json(&mut text, &ContainerLimits::default()),
                Err(ContainerError::Json(_))
            ),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut text = br#"{"$bytes":"not base64!"}"#.to_vec();
    assert_eq!(
        parse_json(&mut text, &ContainerLimits::default()),
        Err(ContainerError::BadBase64)
    );
}

#[test]
fn binary_to_json_to_binary_is_identity_for_canonical_values() {
    let value = Value::Map(vec![
        ("n".into(), Value::I64(-42)),
        ("u".into(), Value::U64(u64::MAX)),
        ("f".into(), Value::F64(0.1)),
        ("s".into(), Value::Str("ü".into())),
        ("b".into(), Value::Bytes(vec![1, 2, 3])),
        (
            "l".into(),
            Value::List(vec![Value::Null, Value::Bool(false)]),
        ),
    ]);
    let bin = value.to_binary().unwrap();
    let mut json = Vec::new();
    write_json(
        &decode(&bin, &ContainerLimits::default()).unwrap(),
        &mut json,
    );
    let mut back = Vec::new();
    json_to_binary(&mut json, &ContainerLimits::default(), &mut back).unwrap();
    assert_eq!(back, bin);
}

#[test]
fn map_lookup_skips_every_type_to_reach_each_key() {
    let bin = every_type().to_binary().unwrap();
    let ValueRef::Map(map) = decode(&bin, &ContainerLimits::default()).unwrap() else {
        panic!("not a map")
    };
    for (key, value) in map.iter() {
        assert_eq!(map.get(key), Some(value), "{key}");
    }
    assert_eq!(map.get("missing"), None);
}
