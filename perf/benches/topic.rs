//! Topic syntax checks and the reference matcher: what every PUB and SUB pays before routing.

#![allow(missing_docs, clippy::unwrap_used)] // criterion's macros generate undocumented items

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shardbus_protocol::topic::{matches, validate_pattern, validate_subject};

fn topic(c: &mut Criterion) {
    let subject = b"sensors.kitchen.temp";
    let long = b"org.acme.region.eu-west-1.site.berlin.building.7.floor.3.room.12.sensor.temp";
    c.bench_function("validate_subject/20B", |b| {
        b.iter(|| validate_subject(black_box(subject), 256).unwrap());
    });
    c.bench_function("validate_subject/77B", |b| {
        b.iter(|| validate_subject(black_box(long), 256).unwrap());
    });
    c.bench_function("validate_pattern/20B", |b| {
        b.iter(|| validate_pattern(black_box(b"sensors.*.temp.>"), 256).unwrap());
    });
    c.bench_function("reference_matches/wildcard", |b| {
        b.iter(|| matches(black_box("sensors.*.>"), black_box("sensors.kitchen.temp")));
    });
}

criterion_group!(benches, topic);
criterion_main!(benches);
