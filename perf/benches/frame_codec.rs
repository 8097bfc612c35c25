//! Frame codec: decode and encode of PUB frames at 16 B, 1 KiB and 64 KiB payloads, and the
//! per-subscriber MSG head written in front of a shared payload.

#![allow(missing_docs, clippy::unwrap_used)] // criterion's macros generate undocumented items

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shardbus_protocol::{Fields, Frame, Head, Limits, decode, encode, encode_head};

const SIZES: [(usize, &str); 3] = [(16, "16B"), (1024, "1KiB"), (64 << 10, "64KiB")];
const TOPIC: &str = "sensors.kitchen.temp";

fn pub_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(
        &Frame::new(Fields::Pub)
            .with_topic(TOPIC)
            .with_payload(payload),
        &mut out,
    )
    .unwrap();
    out
}

fn decode_pub(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("decode_pub");
    for (size, name) in SIZES {
        let bytes = pub_frame(&vec![0xab; size]);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| decode(black_box(bytes), &limits).unwrap());
        });
    }
    group.finish();
}

fn encode_pub(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_pub");
    for (size, name) in SIZES {
        let payload = vec![0xab; size];
        let mut out = Vec::with_capacity(size + 128);
        group.throughput(Throughput::Bytes((size + 16 + TOPIC.len()) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &payload, |b, payload| {
            b.iter(|| {
                out.clear();
                let frame = Frame::new(Fields::Pub)
                    .with_topic(TOPIC)
                    .with_payload(payload);
                encode(black_box(&frame), &mut out).unwrap();
            });
        });
    }
    group.finish();
}

fn encode_msg_head(c: &mut Criterion) {
    // What a shard does per subscriber: write a 40-byte head, then reference the shared payload.
    let mut out = Vec::with_capacity(1 << 16);
    c.bench_function("encode_msg_head", |b| {
        let mut seq = 0u64;
        b.iter(|| {
            if out.len() > (1 << 16) - 128 {
                out.clear();
            }
            seq += 1;
            let head = Head {
                fields: Fields::Msg {
                    sid: 7,
                    seq,
                    reply: 0,
                },
                flags: shardbus_protocol::Flags::empty(),
                op_id: 0,
                topic: TOPIC.as_bytes(),
                headers: &[],
            };
            encode_head(black_box(&head), 16, &mut out).unwrap();
        });
    });
}

criterion_group!(benches, decode_pub, encode_pub, encode_msg_head);
criterion_main!(benches);
