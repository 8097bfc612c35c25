//! FIFO per publisher and subscriber across shards: 100,000 messages published on one shard
//! arrive in order on the other, none missing.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use shardbus_protocol::{Fields, HelloOptions};
use shardbus_tests::{Raw, TestServer};

const MESSAGES: u64 = 100_000;

#[test]
fn a_hundred_thousand_messages_cross_shards_in_order() {
    let server = TestServer::start();
    let mut subscriber = Raw::hello_on(server.addr, 1, HelloOptions(0));
    subscriber.subscribe(1, "seq", "");
    let mut local = Raw::hello_on(server.addr, 0, HelloOptions(0));
    local.subscribe(1, "seq", "");
    let addr = server.addr;
    // Publish from another thread while both subscribers read, so neither falls behind far
    // enough to be a slow consumer.
    let publisher = std::thread::spawn(move || {
        let mut publisher = Raw::hello_on(addr, 0, HelloOptions(0));
        for i in 0..MESSAGES {
            publisher.publish("seq", &i.to_le_bytes());
        }
        publisher.flush();
    });
    let local_reader = std::thread::spawn(move || read_in_order(&mut local));
    read_in_order(&mut subscriber);
    local_reader.join().unwrap();
    publisher.join().unwrap();
}

fn read_in_order(raw: &mut Raw) {
    for expected in 0..MESSAGES {
        let frame = raw.next_event().expect("a MSG");
        let Fields::Msg { seq, .. } = frame.fields else {
            panic!("{:?}", frame.fields);
        };
        assert_eq!(seq, expected + 1, "no gap in the subscription's sequence");
        let got = u64::from_le_bytes(frame.payload.try_into().unwrap());
        assert_eq!(got, expected, "messages arrive in publish order");
    }
}
