//! A fixed workload for instruction-level profiling of container → JSON printing (the
//! WebSocket edge's transcoding) with `valgrind --tool=callgrind`: prints a chat message and a
//! sensor reading 100,000 times each.

#![allow(clippy::unwrap_used)] // a profiling harness, not a server path

use std::hint::black_box;

use shardbus_protocol::container::json::write_json;
use shardbus_protocol::container::{ContainerLimits, NumVec, Value, decode};

fn main() {
    let chat = Value::Map(vec![
        ("room".into(), Value::Str("lobby".into())),
        ("user".into(), Value::Str("ann".into())),
        (
            "text".into(),
            Value::Str("Did anyone see the deploy notes? It is up — \"fast\"".into()),
        ),
        ("ts".into(), Value::I64(1_763_800_000_456)),
        (
            "mentions".into(),
            Value::List(vec![Value::Str("bob".into())]),
        ),
    ]);
    let sensor = Value::Map(vec![
        ("device".into(), Value::Str("greenhouse-7/probe-3".into())),
        ("temp_c".into(), Value::F64(21.53)),
        (
            "samples".into(),
            Value::Array(NumVec::F32(
                (0..32).map(|i| 20.0 + i as f32 * 0.05).collect(),
            )),
        ),
    ]);
    let limits = ContainerLimits::default();
    let mut out = Vec::with_capacity(4096);
    let mut total = 0usize;
    for value in [chat, sensor] {
        let bin = value.to_binary().unwrap();
        let view = decode(&bin, &limits).unwrap();
        for _ in 0..100_000 {
            out.clear();
            write_json(black_box(&view), &mut out);
            total += out.len();
        }
    }
    println!("{total}");
}
