//! Rooms through the Rust client, against the real server: join with member info, MEMBER
//! events, presence pages, history queries, refusals as errors, and a connection cut under the
//! client (through a relay) after which the client joins again from the last position it saw
//! and gets what it missed, then the live stream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use shardbus_engine::rooms::RoomConfig;
use shardbus_protocol::ErrorCode;
use shardbus_protocol::client::{Client, ClientOptions, HistoryQuery, JoinOptions, Message};
use shardbus_protocol::container::Value;
use shardbus_tests::proxy::Proxy;
use shardbus_tests::{PATIENCE, TestServer, wait_until};

fn server() -> TestServer {
    TestServer::with(|config| {
        config.rooms = vec![RoomConfig {
            pattern: "chat.>".into(),
            join_leave: true,
            history_size: 100,
            recover: true,
            ..RoomConfig::default()
        }];
    })
}

fn offset(message: &Message) -> u64 {
    message.headers().get("sb-offset").unwrap().parse().unwrap()
}

#[test]
fn members_join_see_each_other_and_read_history() {
    let server = server();
    let ann = server.client_on(0);
    let ann_room = ann.join("chat.lobby").unwrap();
    assert!(ann_room.joined().positioned);
    assert_eq!(ann_room.joined().clients, 1);
    let bob = server.client_on(1);
    let info = Value::Map(vec![("colour".into(), Value::Str("blue".into()))]);
    let bob_room = bob
        .join_with(
            "chat.lobby",
            JoinOptions {
                info: Some(info.clone()),
                from: None,
            },
        )
        .unwrap();
    assert_eq!(bob_room.joined().clients, 2);
    let event = ann_room.next_event(PATIENCE).unwrap();
    assert!(event.joined);
    assert_eq!(event.member.get("info"), Some(&info));

    for i in 0..5u8 {
        ann.publish("chat.lobby", &[i]).unwrap();
    }
    for i in 0..5u8 {
        let message = bob_room.recv_timeout(PATIENCE).unwrap();
        assert_eq!(
            (message.payload(), offset(&message)),
            (&[i][..], u64::from(i) + 1)
        );
    }
    let page = bob.presence("chat.lobby", 0, 1).unwrap();
    assert_eq!((page.clients, page.members.len()), (2, 1));
    let rest = bob.presence("chat.lobby", page.cursor.unwrap(), 1).unwrap();
    assert_eq!((rest.members.len(), rest.cursor), (1, None));

    let history = ann
        .history(
            "chat.lobby",
            HistoryQuery {
                limit: 2,
                reverse: true,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(history.offset, 5);
    let offsets: Vec<u64> = history.publications.iter().map(offset).collect();
    assert_eq!(offsets, vec![5, 4]);

    bob_room.leave().unwrap();
    let event = ann_room.next_event(PATIENCE).unwrap();
    assert!(!event.joined);

    let refused = ann.join("orders.new").err().unwrap();
    assert_eq!(refused.code(), Some(ErrorCode::NOT_A_ROOM));
    let refused = ann.presence("orders.new", 0, 0).err().unwrap();
    assert_eq!(refused.code(), Some(ErrorCode::NOT_A_ROOM));
    // The client still works after the refusals.
    ann.flush().unwrap();
}

#[test]
fn a_member_whose_connection_is_cut_rejoins_and_recovers_what_it_missed() {
    let server = server();
    let proxy = Proxy::start(server.addr);
    let options = ClientOptions::new().name("behind the relay");
    let member = Client::connect_with(proxy.addr, options).unwrap();
    // The member's pings must get headers: positions travel in them.
    let room = member.join("chat.news").unwrap();
    let publisher = server.client_on(0);
    publisher.publish("chat.news", b"one").unwrap();
    assert_eq!(room.recv_timeout(PATIENCE).unwrap().payload(), b"one");

    proxy.cut_and_hold();
    wait_until("the member to notice", || !member.is_connected());
    publisher.publish("chat.news", b"two").unwrap();
    publisher.publish("chat.news", b"three").unwrap();
    publisher.flush().unwrap();
    proxy.release(server.addr);
    wait_until("the member to reconnect", || member.is_connected());
    publisher.publish("chat.news", b"four").unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let message = room.recv_timeout(PATIENCE).unwrap();
        seen.push((message.payload().to_vec(), offset(&message)));
    }
    assert_eq!(
        seen,
        vec![
            (b"two".to_vec(), 2),
            (b"three".to_vec(), 3),
            (b"four".to_vec(), 4)
        ]
    );
    assert!(member.reconnects() >= 1);
    assert!(
        room.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing twice"
    );
}
