//! Services against the real server over TCP: registration with its endpoints as responders,
//! discovery, balancing by each strategy across shards, health from heartbeats (degraded,
//! draining, silent → unhealthy → removed), deregistration, and a connection that goes taking
//! its instances with it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::time::Duration;

use shardbus_engine::metrics::Metric;
use shardbus_protocol::client::{Client, ClientOptions, ServiceSpec};
use shardbus_protocol::container::Value;
use shardbus_protocol::{Fields, Health, HelloOptions, ServiceFields};
use shardbus_tests::proxy::Proxy;
use shardbus_tests::raw::Raw;
use shardbus_tests::services::serve;
use shardbus_tests::{PATIENCE, TestServer, wait_until};

fn ask(client: &Client, subject: &str) -> String {
    let answer = client
        .request(subject, b"?", Duration::from_secs(10))
        .unwrap();
    String::from_utf8(answer.payload().to_vec()).unwrap()
}

fn spec() -> ServiceSpec {
    ServiceSpec::new("1.2.0")
        .endpoint("echo.say")
        .heartbeat(Duration::from_millis(200))
}

#[test]
fn instances_on_both_shards_share_requests_in_turn_and_are_discovered() {
    let server = TestServer::start();
    let a = server.client_on(0);
    let b = server.client_on(1);
    let sa = a.register("echo", &spec().meta("zone", "a")).unwrap();
    let sb = b.register("echo", &spec().meta("zone", "b")).unwrap();
    assert!(sa.id().is_some() && sb.id() != sa.id());
    let _ta = serve(&a, sa, "a");
    let _tb = serve(&b, sb, "b");
    for shard in [0, 1] {
        let requester = server.client_on(shard);
        wait_until("both instances visible", || {
            requester.discover("echo", "").unwrap().len() == 2
        });
        let mut seen: HashMap<String, usize> = HashMap::new();
        for _ in 0..10 {
            *seen.entry(ask(&requester, "echo.say")).or_default() += 1;
        }
        assert_eq!(seen.get("a"), Some(&5), "{seen:?}");
        assert_eq!(seen.get("b"), Some(&5), "{seen:?}");
        let found = requester.discover(">", "^1.2").unwrap();
        assert_eq!(found.len(), 2);
        assert!(
            found
                .iter()
                .all(|i| i.version == "1.2.0" && i.health == Health::Ok)
        );
        assert!(found.iter().all(|i| i.endpoints == ["echo.say"]));
        assert!(requester.discover("echo", ">=2").unwrap().is_empty());
        let refused = requester.discover("echo", "not a range").unwrap_err();
        assert!(refused.to_string().contains("BAD_SERVICE"), "{refused}");
    }
    assert_eq!(server.total(Metric::ServiceInstances), 2);
}

#[test]
fn health_steers_requests_and_instances_go_with_deregistration_or_their_connection() {
    let server = TestServer::start();
    let requester = server.client_on(0);
    let a = server.client_on(0);
    let b = server.client_on(1);
    let sa = a.register("echo", &spec()).unwrap();
    let sb = b.register("echo", &spec()).unwrap();
    let a_id = sa.id().unwrap();
    sa.set_health(Health::Degraded, 7).unwrap();
    wait_until("a degraded everywhere", || {
        requester
            .discover("echo", "")
            .unwrap()
            .iter()
            .any(|i| i.id == a_id && i.health == Health::Degraded && i.load == 7)
    });
    let _ta = serve(&a, sa, "a");
    let sb_id = sb.id().unwrap();
    let handle_b = std::thread::spawn({
        let b = b.clone();
        move || {
            // Answers five, then reports draining and answers what is still in flight.
            for _ in 0..5 {
                let request = sb.requests().recv_timeout(PATIENCE).unwrap();
                b.respond(&request, b"b").unwrap();
            }
            sb.set_health(Health::Draining, 0).unwrap();
            sb
        }
    });
    for _ in 0..5 {
        assert_eq!(ask(&requester, "echo.say"), "b", "ok before degraded");
    }
    let sb = handle_b.join().unwrap();
    wait_until("b draining everywhere", || {
        requester
            .discover("echo", "")
            .unwrap()
            .iter()
            .any(|i| i.id == sb_id && i.health == Health::Draining)
    });
    for _ in 0..4 {
        assert_eq!(
            ask(&requester, "echo.say"),
            "a",
            "nothing to a draining instance"
        );
    }
    sb.deregister().unwrap();
    wait_until("b gone", || {
        requester.discover("echo", "").unwrap().len() == 1
    });
    // A connection that goes takes its instances with it.
    a.close();
    wait_until("a gone", || {
        requester.discover("echo", "").unwrap().is_empty()
    });
    assert_eq!(server.total(Metric::ServiceInstances), 0);
    let refused = requester
        .request("echo.say", b"?", Duration::from_secs(5))
        .unwrap_err();
    assert!(refused.to_string().contains("NO_RESPONDERS"), "{refused}");
}

fn health_of(client: &Client, id: u64) -> Option<Health> {
    let found = client.discover("quiet", "").unwrap();
    found.iter().find(|i| i.id == id).map(|i| i.health)
}

fn register_raw(server: &TestServer, shard: u16) -> (Raw, u64) {
    let mut raw = Raw::hello_on(server.addr, shard, HelloOptions::default());
    let id = raw.register("quiet", &[("quiet.ask", 7)], 100);
    (raw, id)
}

/// What the raw connection's own shard says of instance `id`, after everything it sent.
fn raw_health(raw: &mut Raw, id: u64) -> Option<Health> {
    let op_id = raw.send(Fields::Discover(ServiceFields::default()), b"quiet", b"");
    loop {
        let frame = raw.next_event().unwrap();
        if frame.op_id == op_id && matches!(frame.fields, Fields::Discover(_)) {
            let list = shardbus_protocol::container::view::decode(
                &frame.payload,
                &shardbus_protocol::container::ContainerLimits::default(),
            )
            .unwrap()
            .to_owned_value();
            let Value::List(entries) = list else {
                return None;
            };
            return entries
                .iter()
                .find(|e| e.get("instance") == Some(&Value::U64(id)))
                .and_then(|e| match e.get("health") {
                    Some(Value::Str(h)) => Health::from_name(h),
                    _ => None,
                });
        }
    }
}

#[test]
fn a_silent_instance_turns_unhealthy_and_a_heartbeat_brings_it_back() {
    let server = TestServer::with(|config| {
        config.registry.unhealthy_after = 2;
        config.registry.remove_after = 100_000;
    });
    let requester = server.client_on(1);
    let (mut raw, id) = register_raw(&server, 0);
    wait_until(
        "unhealthy after two silent intervals, on the other shard too",
        || health_of(&requester, id) == Some(Health::Unhealthy),
    );
    let refused = requester
        .request("quiet.ask", b"?", Duration::from_secs(5))
        .unwrap_err();
    assert!(refused.to_string().contains("NO_RESPONDERS"), "{refused}");
    assert!(server.total(Metric::ServiceUnhealthy) >= 1);
    let beat = Fields::Heartbeat(ServiceFields {
        instance: id,
        ..ServiceFields::default()
    });
    raw.send(beat, b"", b"");
    // Asked on the same connection, so after the heartbeat whatever the clock says.
    assert_eq!(raw_health(&mut raw, id), Some(Health::Ok));
}

#[test]
fn a_silent_instance_is_removed_with_its_endpoints() {
    let server = TestServer::start();
    let requester = server.client_on(1);
    let (mut raw, id) = register_raw(&server, 0);
    // `register_raw` returns once every shard knows the instance: `None` below means removed.
    wait_until("removed after five silent intervals", || {
        health_of(&requester, id).is_none()
    });
    assert_eq!(raw_health(&mut raw, id), None);
    assert_eq!(server.total(Metric::ServiceRemovals), 1);
    assert_eq!(server.total(Metric::ServiceInstances), 0);
    // Its endpoint's subscription went with it: a plain request finds nobody.
    let refused = requester
        .request("quiet.ask", b"?", Duration::from_secs(5))
        .unwrap_err();
    assert!(refused.to_string().contains("NO_RESPONDERS"), "{refused}");
    // A heartbeat for it now names nothing.
    let beat = Fields::Heartbeat(ServiceFields {
        instance: id,
        ..ServiceFields::default()
    });
    raw.send(beat, b"", b"");
    assert_eq!(
        raw.expect_err().err_code(),
        Some(shardbus_protocol::ErrorCode::UNKNOWN_INSTANCE)
    );
}

#[test]
fn a_client_whose_connection_is_cut_registers_again_and_serves() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr);
    let host =
        Client::connect_with(proxy.addr, ClientOptions::new().name("behind the relay")).unwrap();
    let service = host.register("echo", &spec()).unwrap();
    let first = service.id().unwrap();
    let _serving = serve(&host, service, "back");
    let requester = server.client_on(0);
    assert_eq!(ask(&requester, "echo.say"), "back");

    proxy.cut_and_hold();
    wait_until("the old instance gone", || {
        requester.discover("echo", "").unwrap().is_empty()
    });
    proxy.release(server.addr);
    wait_until("registered again", || {
        let found = requester.discover("echo", "").unwrap();
        found.len() == 1 && found[0].id != first
    });
    assert_eq!(ask(&requester, "echo.say"), "back");
    assert!(host.reconnects() >= 1);
}
