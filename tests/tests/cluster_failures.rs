//! Nodes over Redis when things fail, with broker processes and a real redis-server: a node
//! killed with SIGKILL under load drops out of the others' view within the node timeout while
//! they keep serving, its room members leave presence and its client recovers the room on
//! another node with no gap and no duplicate; Redis stopped under load and started again: each node goes on serving its
//! own clients, and traffic between nodes comes back; every node and Redis (appendonly)
//! restarted: every history publication that was delivered is still there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use shardbus_protocol::client::{Client, ClientOptions, JoinOptions, Room, Subscription};
use shardbus_protocol::container::Value;
use shardbus_tests::cluster::{discovered_nodes, node_with, nodes_seen};
use shardbus_tests::node::NodeProcess;
use shardbus_tests::redis::RedisServer;
use shardbus_tests::{PATIENCE, http_request, wait_until};

fn settings(url: &str, name: &str) -> Vec<String> {
    vec![
        format!("cluster.redis_url={url}"),
        format!("cluster.node_id={name}"),
        "cluster.heartbeat_ms=100".to_owned(),
        "cluster.node_timeout_ms=1000".to_owned(),
    ]
}

/// A node's settings with its room history in the cluster's Redis.
fn history_settings(url: &str, name: &str) -> Vec<String> {
    let mut settings = settings(url, name);
    settings.extend([
        "history.backend=redis".to_owned(),
        format!("redis.url={url}"),
    ]);
    settings
}

/// Publishes numbered messages on `subject` until told to stop; returns how many it sent.
fn publisher(
    client: Client,
    subject: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            client.publish(subject, &n.to_le_bytes()).unwrap();
            n += 1;
            if n.is_multiple_of(64) {
                client.flush().unwrap();
            }
        }
        client.flush().unwrap();
        n
    })
}

/// Counts what `sub` receives, checking the numbers only rise by one from the first seen.
fn counter(sub: Subscription, seen: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut last: Option<u64> = None;
        while let Ok(message) = sub.recv_timeout(Duration::from_secs(5)) {
            let n = u64::from_le_bytes(message.payload().try_into().unwrap());
            if let Some(last) = last {
                assert_eq!(n, last + 1, "in order, with no gap");
            }
            last = Some(n);
            seen.fetch_add(1, Ordering::Relaxed);
        }
    })
}

#[test]
fn a_killed_node_drops_out_and_the_others_keep_serving() {
    let redis = RedisServer::start();
    let first = NodeProcess::start(&settings(&redis.url(), "k1"));
    let mut second = NodeProcess::start(&settings(&redis.url(), "k2"));
    let third = NodeProcess::start(&settings(&redis.url(), "k3"));
    let on_second = Client::connect(second.addr).unwrap();
    let _doomed = on_second.subscribe("feed.>").unwrap();
    on_second.flush().unwrap();
    let on_third = Client::connect(third.addr).unwrap();
    let survivor = on_third.subscribe("feed.>").unwrap();
    on_third.flush().unwrap();
    wait_until("k1 to see k2 and k3 with their interest", || {
        let seen = nodes_seen(first.http);
        seen.contains(&("k2".to_owned(), 1)) && seen.contains(&("k3".to_owned(), 1))
    });

    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let count = counter(survivor, Arc::clone(&received));
    let load = publisher(
        Client::connect(first.addr).unwrap(),
        "feed.ticks",
        Arc::clone(&stop),
    );
    wait_until("traffic to k3", || received.load(Ordering::Relaxed) > 1_000);

    second.kill();
    wait_until("k1 to drop the killed node", || {
        !nodes_seen(first.http).iter().any(|(n, _)| n == "k2")
    });
    // Each node drops it on its own clock: wait for the third too.
    wait_until("k3 to drop the killed node", || {
        nodes_seen(third.http).iter().all(|(n, _)| n != "k2")
    });
    let at_drop = received.load(Ordering::Relaxed);
    wait_until("traffic to k3 after the kill", || {
        received.load(Ordering::Relaxed) > at_drop + 1_000
    });
    stop.store(true, Ordering::Relaxed);
    let sent = load.join().unwrap();
    wait_until("k3 to receive everything sent", || {
        received.load(Ordering::Relaxed) == sent
    });
    drop(on_third);
    count.join().unwrap();
    let health = http_request(first.http, "GET", "/healthz", None).json();
    assert_eq!(health["status"], "ok");
}

#[test]
fn redis_stopped_under_load_leaves_each_node_serving_and_traffic_comes_back() {
    let mut redis = RedisServer::start();
    let (a, b) = (
        node_with(&redis, "da", |c| c.redis.timeout_ms = 500),
        node_with(&redis, "db", |c| c.redis.timeout_ms = 500),
    );
    let on_b = b.client_on(0);
    let far = on_b.subscribe("feed.>").unwrap();
    on_b.flush().unwrap();
    let on_a = a.client_on(1);
    let near = on_a.subscribe("feed.>").unwrap();
    on_a.flush().unwrap();
    wait_until("da to see db's interest", || {
        nodes_seen(a.http).contains(&("db".to_owned(), 1))
    });
    let publisher = a.client_on(0);
    publisher.publish("feed.one", b"before").unwrap();
    assert_eq!(far.recv_timeout(PATIENCE).unwrap().payload(), b"before");
    assert_eq!(near.recv_timeout(PATIENCE).unwrap().payload(), b"before");

    redis.stop();
    wait_until("da to say it is degraded", || {
        let ready = http_request(a.http, "GET", "/readyz", None).json();
        ready["status"] == "degraded"
    });
    // The node's own subscribers never wait for Redis.
    for i in 0..100u32 {
        publisher.publish("feed.one", &i.to_le_bytes()).unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(
            near.recv_timeout(PATIENCE).unwrap().payload(),
            &i.to_le_bytes()
        );
    }
    redis.restart();
    // Back: the nodes find each other again and traffic between them resumes.
    wait_until("da to be ready again", || {
        http_request(a.http, "GET", "/readyz", None).json()["status"] == "ready"
    });
    wait_until("da to see db again", || {
        nodes_seen(a.http).contains(&("db".to_owned(), 1))
    });
    // Until the receiving node has subscribed again, publications for it may be lost: keep
    // publishing until one arrives.
    wait_until("traffic between the nodes to come back", || {
        publisher.publish("feed.one", b"after").unwrap();
        publisher.flush().unwrap();
        let mut got_back = false;
        while let Ok(message) = far.recv_timeout(Duration::from_millis(100)) {
            got_back |= message.payload() == b"after";
        }
        got_back
    });
    for server in [&a, &b] {
        let health = http_request(server.http, "GET", "/healthz", None).json();
        assert_eq!(health["status"], "ok");
    }
}

#[test]
fn every_node_and_redis_restarted_keep_every_delivered_history_publication() {
    let mut redis = RedisServer::persistent();
    let rooms = "[[rooms]]\npattern = \"chat.>\"\nhistory_size = 1000\nrecover = true\n";
    let url = redis.url();
    let history = |name: &str| history_settings(&url, name);
    let mut nodes: Vec<NodeProcess> = ["h1", "h2", "h3"]
        .iter()
        .map(|name| NodeProcess::start_with(rooms, &history(name)))
        .collect();
    let member = Client::connect(nodes[2].addr).unwrap();
    let room = member.join("chat.kept").unwrap();
    wait_until("h1 to see h3's interest", || {
        nodes_seen(nodes[0].http).contains(&("h3".to_owned(), 1))
    });
    let publisher = Client::connect(nodes[0].addr).unwrap();
    for i in 0..300u32 {
        publisher.publish("chat.kept", &i.to_le_bytes()).unwrap();
    }
    // Delivered means kept: a publication is fanned out only after Redis answered its append.
    let mut delivered = Vec::new();
    for _ in 0..300 {
        let message = room.recv_timeout(PATIENCE).unwrap();
        let epoch: u64 = message.headers().get("sb-epoch").unwrap().parse().unwrap();
        let offset: u64 = message.headers().get("sb-offset").unwrap().parse().unwrap();
        delivered.push((epoch, offset, message.payload().to_vec()));
    }
    let epoch = delivered[0].0;
    drop((room, member, publisher));

    for node in &mut nodes {
        node.stop();
    }
    redis.restart();
    let nodes: Vec<NodeProcess> = ["h1", "h2", "h3"]
        .iter()
        .map(|name| NodeProcess::start_with(rooms, &history(name)))
        .collect();
    // A member on another node than before recovers everything from the first position.
    let back = Client::connect(nodes[1].addr).unwrap();
    let options = shardbus_protocol::client::JoinOptions {
        info: None,
        from: Some((epoch, 0)),
    };
    let room = back.join_with("chat.kept", options).unwrap();
    assert_eq!(
        room.joined().epoch,
        epoch,
        "the same history after every restart"
    );
    assert_eq!(room.joined().offset, 300);
    let mut recovered = Vec::new();
    for _ in 0..room.joined().count {
        let message = room.recv_timeout(PATIENCE).unwrap();
        let offset: u64 = message.headers().get("sb-offset").unwrap().parse().unwrap();
        recovered.push((epoch, offset, message.payload().to_vec()));
    }
    assert_eq!(
        recovered, delivered,
        "every delivered publication, in order, once"
    );
}

/// Reads `room` until its connection dies: the last position seen and every number received.
fn member_until_killed(
    room: Room,
    client: Client,
    seen: Arc<AtomicU64>,
) -> std::thread::JoinHandle<((u64, u64), Vec<u64>)> {
    std::thread::spawn(move || {
        let mut last = (0, 0);
        let mut numbers = Vec::new();
        while let Ok(message) = room.recv_timeout(Duration::from_secs(5)) {
            let header = |name| message.headers().get(name).unwrap().parse().unwrap();
            last = (header("sb-epoch"), header("sb-offset"));
            numbers.push(u64::from_le_bytes(message.payload().try_into().unwrap()));
            seen.fetch_add(1, Ordering::Relaxed);
        }
        drop(client);
        (last, numbers)
    })
}

#[test]
fn a_killed_nodes_members_leave_and_its_client_recovers_the_room_on_another_node() {
    let redis = RedisServer::start();
    let rooms = "[[rooms]]\npattern = \"chat.>\"\nhistory_size = 200000\nrecover = true\n\
                 presence = true\njoin_leave = true\n";
    let url = redis.url();
    let history = |name: &str| history_settings(&url, name);
    let first = NodeProcess::start_with(rooms, &history("m1"));
    let mut second = NodeProcess::start_with(rooms, &history("m2"));
    let third = NodeProcess::start_with(rooms, &history("m3"));
    for node in [&first, &second, &third] {
        wait_until("every node to see the two others", || {
            nodes_seen(node.http).len() == 2
        });
    }
    let watching = Client::connect(first.addr).unwrap();
    let watcher = watching.join("chat.live").unwrap();
    let doomed = Client::connect_with(second.addr, ClientOptions::new().no_reconnect()).unwrap();
    let member = doomed.join("chat.live").unwrap();
    assert_eq!(member.joined().clients, 2);
    let joined = watcher.next_event(PATIENCE).unwrap();
    assert!(joined.joined);
    assert_eq!(joined.member.get("node"), Some(&Value::Str("m2".into())));

    // Under load from the third node: the member on the second reads until it is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    let reader = member_until_killed(member, doomed, Arc::clone(&seen));
    let publishing = Client::connect(third.addr).unwrap();
    let load = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                publishing.publish("chat.live", &n.to_le_bytes()).unwrap();
                n += 1;
                if n.is_multiple_of(8) {
                    publishing.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            publishing.flush().unwrap();
            n
        })
    };
    wait_until("the member to receive", || {
        seen.load(Ordering::Relaxed) > 500
    });
    second.kill();

    // The others drop the killed node's member: a MEMBER LEFT naming it, and presence.
    loop {
        let event = watcher.next_event(PATIENCE).unwrap();
        if !event.joined && event.member.get("node") == Some(&Value::Str("m2".into())) {
            break;
        }
    }
    wait_until("presence on m1 without the killed node's member", || {
        watching.presence("chat.live", 0, 0).unwrap().clients == 1
    });
    let ((epoch, offset), before) = reader.join().unwrap();
    assert!(!before.is_empty());

    // Its client comes back on the third node and recovers from the last position it saw.
    let back = Client::connect(third.addr).unwrap();
    let options = JoinOptions {
        info: None,
        from: Some((epoch, offset)),
    };
    let room = back.join_with("chat.live", options).unwrap();
    assert!(room.joined().recovered, "{:?}", room.joined());
    assert_eq!(room.joined().epoch, epoch);
    assert_eq!(room.joined().clients, 2);
    let mut after = Vec::new();
    let mut next_offset = offset + 1;
    let mut read_one = |after: &mut Vec<u64>| {
        let message = room.recv_timeout(PATIENCE).unwrap();
        let at: u64 = message.headers().get("sb-offset").unwrap().parse().unwrap();
        assert_eq!(at, next_offset, "in order, with no gap and no duplicate");
        next_offset += 1;
        after.push(u64::from_le_bytes(message.payload().try_into().unwrap()));
    };
    for _ in 0..1_000 {
        read_one(&mut after);
    }
    stop.store(true, Ordering::Relaxed);
    let sent = load.join().unwrap();
    while (before.len() + after.len()) < sent as usize {
        read_one(&mut after);
    }
    let all: Vec<u64> = before.into_iter().chain(after).collect();
    assert_eq!(
        all,
        (0..sent).collect::<Vec<_>>(),
        "every publication once, in order"
    );
    let health = http_request(first.http, "GET", "/healthz", None).json();
    assert_eq!(health["status"], "ok");
}

#[test]
fn a_killed_nodes_service_instances_leave_every_listing_and_the_others_serve() {
    let redis = RedisServer::start();
    let url = redis.url();
    let first = NodeProcess::start(&settings(&url, "s1"));
    let mut second = NodeProcess::start(&settings(&url, "s2"));
    let third = NodeProcess::start(&settings(&url, "s3"));
    for node in [&first, &second, &third] {
        wait_until("every node to see the two others", || {
            nodes_seen(node.http).len() == 2
        });
    }
    let spec = shardbus_protocol::client::ServiceSpec::new("1.0.0")
        .endpoint("echo.say")
        .heartbeat(Duration::from_millis(200));
    let mut serving = Vec::new();
    for (node, tag) in [(&second, "s2"), (&third, "s3")] {
        let client = Client::connect_with(node.addr, ClientOptions::new().no_reconnect()).unwrap();
        let service = client.register("echo", &spec).unwrap();
        serving.push(std::thread::spawn(move || {
            while let Ok(request) = service.requests().recv_timeout(Duration::from_secs(30)) {
                if client.respond(&request, tag.as_bytes()).is_err() {
                    return;
                }
            }
        }));
    }
    let requester = Client::connect(first.addr).unwrap();
    let nodes = |client: &Client| discovered_nodes(client, "echo");
    wait_until("s1 to find both instances", || {
        nodes(&requester) == ["s2", "s3"]
    });
    wait_until("s1 to see both nodes' endpoints", || {
        nodes_seen(first.http)
            .iter()
            .all(|(_, interest)| *interest >= 1)
    });
    let ask = || {
        let answer = requester
            .request("echo.say", b"?", Duration::from_secs(10))
            .unwrap();
        String::from_utf8(answer.payload().to_vec()).unwrap()
    };
    let before: Vec<String> = (0..10).map(|_| ask()).collect();
    assert!(before.iter().any(|t| t == "s2") && before.iter().any(|t| t == "s3"));

    second.kill();
    wait_until("the killed node's instance to leave s1's discovery", || {
        nodes(&requester) == ["s3"]
    });
    let listed = http_request(first.http, "GET", "/api/v1/services/echo", None).json();
    assert_eq!(listed["instances"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["instances"][0]["node"], "s3");
    let after: Vec<String> = (0..20).map(|_| ask()).collect();
    assert!(after.iter().all(|t| t == "s3"), "{after:?}");
    drop(third);
    for thread in serving {
        thread.join().unwrap();
    }
}
