//! Containers: binary encode/decode, and JSON parse/print with simd-json (our mapping) against
//! serde_json, on the payload shapes shardbus expects: an IoT sensor reading and a chat message.

#![allow(missing_docs, clippy::unwrap_used)] // criterion's macros generate undocumented items

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shardbus_protocol::container::json::{json_to_binary, write_json};
use shardbus_protocol::container::{ContainerLimits, NumVec, Value, ValueRef, decode};

fn sensor_reading() -> Value {
    Value::Map(vec![
        ("device".into(), Value::Str("greenhouse-7/probe-3".into())),
        ("ts".into(), Value::I64(1_763_800_000_123)),
        ("temp_c".into(), Value::F64(21.53)),
        ("humidity".into(), Value::F64(0.614)),
        ("battery_mv".into(), Value::I64(3712)),
        ("ok".into(), Value::Bool(true)),
        (
            "samples".into(),
            Value::Array(NumVec::F32(
                (0..32).map(|i| 20.0 + i as f32 * 0.05).collect(),
            )),
        ),
    ])
}

fn chat_message() -> Value {
    Value::Map(vec![
        ("room".into(), Value::Str("lobby".into())),
        ("id".into(), Value::Str("01JD3ZK8Q4N7M2X5V9C1B6T0RW".into())),
        ("user".into(), Value::Str("ann".into())),
        (
            "text".into(),
            Value::Str("Did anyone see the deploy notes? The new broker is up on shard 2 — \"fast\" they said 🚀".into()),
        ),
        ("ts".into(), Value::I64(1_763_800_000_456)),
        (
            "mentions".into(),
            Value::List(vec![Value::Str("bob".into()), Value::Str("cleo".into())]),
        ),
        ("edited".into(), Value::Bool(false)),
    ])
}

fn shapes() -> [(&'static str, Value); 2] {
    [("sensor", sensor_reading()), ("chat", chat_message())]
}

fn binary(c: &mut Criterion) {
    let limits = ContainerLimits::default();
    for (name, value) in shapes() {
        let bin = value.to_binary().unwrap();
        let mut group = c.benchmark_group(format!("container_binary/{name}"));
        group.throughput(Throughput::Bytes(bin.len() as u64));
        group.bench_function("encode", |b| {
            b.iter(|| black_box(&value).to_binary().unwrap())
        });
        group.bench_function("decode_view", |b| {
            b.iter(|| decode(black_box(&bin), &limits).unwrap());
        });
        group.bench_function("decode_and_read_one_field", |b| {
            b.iter(|| {
                let view = decode(black_box(&bin), &limits).unwrap();
                matches!(view.get("ts"), Some(ValueRef::I64(_)))
            });
        });
        group.finish();
    }
}

fn json(c: &mut Criterion) {
    let limits = ContainerLimits::default();
    for (name, value) in shapes() {
        let text = value.to_json().unwrap();
        let bin = value.to_binary().unwrap();
        let mut group = c.benchmark_group(format!("json/{name}"));
        group.throughput(Throughput::Bytes(text.len() as u64));
        let mut scratch = text.clone();
        let mut out = Vec::with_capacity(bin.len() * 2);
        group.bench_function("parse_simd_json_to_binary", |b| {
            b.iter(|| {
                // simd-json parses in place: restore the input each time (a memcpy, counted).
                scratch.copy_from_slice(&text);
                out.clear();
                json_to_binary(&mut scratch, &limits, &mut out).unwrap();
            });
        });
        group.bench_function("parse_serde_json_value", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&text)).unwrap());
        });
        let serde_value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        let view = decode(&bin, &limits).unwrap();
        group.bench_function("print_from_binary_view", |b| {
            b.iter(|| {
                out.clear();
                write_json(black_box(&view), &mut out);
            });
        });
        group.bench_function("print_serde_json_value", |b| {
            b.iter(|| {
                out.clear();
                serde_json::to_writer(&mut out, black_box(&serde_value)).unwrap();
            });
        });
        group.finish();
    }
}

criterion_group!(benches, binary, json);
criterion_main!(benches);
