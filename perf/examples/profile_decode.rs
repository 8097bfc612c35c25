//! A fixed workload for instruction-level profiling of the decoder with
//! `valgrind --tool=callgrind` (counts instructions, stable on a noisy machine):
//! decodes a 16 B PUB frame one million times.

#![allow(clippy::unwrap_used)] // a profiling harness, not a server path

use std::hint::black_box;

use shardbus_protocol::{Fields, Frame, Limits, decode, encode};

fn main() {
    let mut bytes = Vec::new();
    let frame = Frame::new(Fields::Pub)
        .with_topic("sensors.kitchen.temp")
        .with_payload(&[0xab; 16]);
    encode(&frame, &mut bytes).unwrap();
    let limits = Limits::default();
    let mut topic_bytes = 0usize;
    for _ in 0..1_000_000 {
        topic_bytes += decode(black_box(&bytes), &limits).unwrap().topic.len();
    }
    println!("{topic_bytes}");
}
