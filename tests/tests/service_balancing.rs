//! Balancing a service's requests over its instances, against the real server: round robin,
//! least pending beside a slow instance, weights, a sticky key, the circuit breaker, the
//! retry when an instance's endpoint is gone, and the figures the server measured of it all
//! (`GET /api/v1/services`, `/metrics`).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardbus_engine::metrics::Metric;
use shardbus_engine::services::{ServiceConfig, Strategy};
use shardbus_protocol::client::{Client, ServiceSpec};
use shardbus_protocol::{Flags, HeadersBuilder, HelloOptions};
use shardbus_tests::raw::Raw;
use shardbus_tests::{TestServer, http_request, wait_until};

fn server() -> TestServer {
    TestServer::with(|config| {
        let entry = |name: &str, strategy| ServiceConfig {
            name: name.into(),
            strategy,
            ..ServiceConfig::default()
        };
        config.services = vec![
            entry("lp", Strategy::LeastPending),
            entry("w", Strategy::Weighted),
            entry("sticky", Strategy::ConsistentHash),
            ServiceConfig {
                breaker_failures: 2,
                breaker_cooldown_ms: 600_000,
                ..entry("fragile", Strategy::RoundRobin)
            },
        ];
    })
}

/// Registers `tag` as an instance of `name` on `subject`, answering with its tag after
/// `delay` (and `sb-status: 500` when `fail`), counting what it answered.
fn instance(
    client: &Client,
    name: &str,
    subject: &str,
    tag: &'static str,
    weight: u32,
    delay: Duration,
) -> Arc<Mutex<HashMap<&'static str, u64>>> {
    let spec = ServiceSpec::new("1.0.0").endpoint(subject).weight(weight);
    let service = client.register(name, &spec).unwrap();
    let counts = Arc::new(Mutex::new(HashMap::new()));
    let (client, seen) = (client.clone(), Arc::clone(&counts));
    std::thread::spawn(move || {
        while let Ok(request) = service.requests().recv_timeout(Duration::from_secs(60)) {
            std::thread::sleep(delay);
            *seen.lock().unwrap().entry(tag).or_insert(0) += 1;
            let mut headers = HeadersBuilder::new();
            if request.payload() == b"fail" {
                headers.insert("sb-status", "500").unwrap();
            }
            if client
                .respond_with(&request, headers.headers(), Flags::empty(), tag.as_bytes())
                .is_err()
            {
                return;
            }
        }
    });
    counts
}

fn ask(client: &Client, subject: &str, payload: &[u8]) -> String {
    let answer = client
        .request(subject, payload, Duration::from_secs(10))
        .unwrap();
    String::from_utf8(answer.payload().to_vec()).unwrap()
}

fn tally(answers: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for answer in answers {
        *out.entry(answer).or_insert(0) += 1;
    }
    out
}

/// Sends `n` requests from `threads` concurrent requesters on shard 0; returns who answered.
fn load(
    server: &TestServer,
    subject: &'static str,
    threads: usize,
    n: usize,
) -> HashMap<String, usize> {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let client = server.client_on(0);
            std::thread::spawn(move || {
                (0..n / threads)
                    .map(|_| ask(&client, subject, b"?"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    tally(handles.into_iter().flat_map(|h| h.join().unwrap()))
}

#[test]
fn least_pending_sends_a_slow_instance_less_than_round_robin_does() {
    let server = server();
    let host = server.client_on(1);
    let slow = Duration::from_millis(30);
    for (name, subject) in [("lp", "lp.ask"), ("rr", "rr.ask")] {
        instance(&host, name, subject, "slow", 0, slow);
        instance(
            &server.client_on(0),
            name,
            subject,
            "fast1",
            0,
            Duration::ZERO,
        );
        instance(
            &server.client_on(1),
            name,
            subject,
            "fast2",
            0,
            Duration::ZERO,
        );
    }
    let watcher = server.client_on(0);
    wait_until("six instances", || {
        watcher.discover(">", "").unwrap().len() == 6
    });
    let rr = load(&server, "rr.ask", 4, 240);
    let lp = load(&server, "lp.ask", 4, 240);
    eprintln!("round robin {rr:?}, least pending {lp:?}");
    // Round robin turns strictly on the requesters' shard: a third each.
    assert!(rr["slow"].abs_diff(80) <= 4, "{rr:?}");
    assert!(lp.get("slow").copied().unwrap_or(0) < 60, "{lp:?}");
}

#[test]
fn weights_share_requests_and_a_sticky_key_keeps_its_instance() {
    let server = server();
    instance(
        &server.client_on(0),
        "w",
        "w.ask",
        "heavy",
        3,
        Duration::ZERO,
    );
    instance(
        &server.client_on(1),
        "w",
        "w.ask",
        "light",
        1,
        Duration::ZERO,
    );
    for tag in ["s1", "s2", "s3"] {
        instance(
            &server.client_on(0),
            "sticky",
            "sticky.ask",
            tag,
            0,
            Duration::ZERO,
        );
    }
    let watcher = server.client_on(0);
    wait_until("five instances", || {
        watcher.discover(">", "").unwrap().len() == 5
    });
    let shares = tally((0..400).map(|_| ask(&watcher, "w.ask", b"?")));
    assert_eq!((shares["heavy"], shares["light"]), (300, 100), "{shares:?}");
    let keyed = |client: &Client, key: &str| {
        let mut headers = HeadersBuilder::new();
        headers.insert("sb-key", key).unwrap();
        let answer = client
            .request_with(
                "sticky.ask",
                headers.headers(),
                Flags::empty(),
                b"?",
                Duration::from_secs(10),
            )
            .unwrap();
        String::from_utf8(answer.payload().to_vec()).unwrap()
    };
    let other_shard = server.client_on(1);
    let mut homes = std::collections::HashSet::new();
    for user in 0..30 {
        let key = format!("user-{user}");
        let home = keyed(&watcher, &key);
        for _ in 0..3 {
            assert_eq!(keyed(&watcher, &key), home);
            assert_eq!(keyed(&other_shard, &key), home, "the same on every shard");
        }
        homes.insert(home);
    }
    assert_eq!(homes.len(), 3, "keys spread over the instances");
}

#[test]
fn timeouts_in_a_row_trip_the_breaker_on_every_shard() {
    let server = server();
    // One instance that never answers, one that does.
    let mut mute = Raw::hello_on(server.addr, 0, HelloOptions::default());
    mute.register("fragile", &[("fragile.ask", 1)], 60_000);
    instance(
        &server.client_on(1),
        "fragile",
        "fragile.ask",
        "alive",
        0,
        Duration::ZERO,
    );
    let requester = server.client_on(0);
    wait_until("two instances", || {
        requester.discover("fragile", "").unwrap().len() == 2
    });
    let mut timeouts = 0;
    let mut answered = 0;
    while timeouts < 2 {
        match requester.request("fragile.ask", b"?", Duration::from_millis(300)) {
            Ok(_) => answered += 1,
            Err(e) => {
                assert!(e.to_string().contains("TIMEOUT"), "{e}");
                timeouts += 1;
            }
        }
        assert!(answered < 10, "the mute instance never got a request");
    }
    assert_eq!(server.total(Metric::ServiceBreakerTrips), 1);
    let elsewhere = server.client_on(1);
    for _ in 0..10 {
        assert_eq!(ask(&requester, "fragile.ask", b"?"), "alive");
        assert_eq!(ask(&elsewhere, "fragile.ask", b"?"), "alive");
    }
    mute.flush_past_errors();
}

#[test]
fn a_request_whose_instance_lost_its_endpoint_is_sent_to_another_and_figures_add_up() {
    let server = server();
    // An instance whose endpoint subscription is gone (UNSUB of its sid) while it is still
    // registered: every request picked for it comes back and goes to the other.
    let mut hollow = Raw::hello_on(server.addr, 0, HelloOptions::default());
    hollow.register("calc", &[("calc.add", 1)], 60_000);
    hollow.unsubscribe(1, 0);
    hollow.flush();
    instance(
        &server.client_on(1),
        "calc",
        "calc.add",
        "whole",
        0,
        Duration::ZERO,
    );
    let near = server.client_on(0);
    let far = server.client_on(1);
    wait_until("two instances", || {
        near.discover("calc", "").unwrap().len() == 2
    });
    for _ in 0..6 {
        assert_eq!(ask(&near, "calc.add", b"?"), "whole");
        assert_eq!(ask(&far, "calc.add", b"?"), "whole");
    }
    assert!(server.total(Metric::ServiceRetries) >= 6);
    for _ in 0..4 {
        assert_eq!(ask(&near, "calc.add", b"fail"), "whole");
    }
    let listing = http_request(server.http, "GET", "/api/v1/services/calc", None);
    assert_eq!(listing.status, 200, "{}", listing.text());
    let service = listing.json();
    assert_eq!(service["name"], "calc");
    assert_eq!(service["strategy"], "round_robin");
    assert_eq!(service["complete"], true);
    let totals = &service["endpoints"][0];
    assert_eq!(totals["subject"], "calc.add");
    // Every request counts where it was sent: the 16 answered, and the retried ones at the
    // hollow instance, which answered none.
    let retries = server.total(Metric::ServiceRetries);
    assert_eq!(
        totals["requests"].as_u64().unwrap(),
        16 + retries,
        "{service}"
    );
    assert_eq!(totals["errors"], 4, "{service}");
    assert!(
        totals["latency_us"]["p99"].as_u64().unwrap() > 0,
        "{service}"
    );
    let whole = service["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["endpoints"][0]["errors"] == 4)
        .expect("the answering instance has the errors");
    assert_eq!(whole["endpoints"][0]["latency_us"]["count"], 16);
    let all = http_request(server.http, "GET", "/api/v1/services", None).json();
    assert_eq!(all["services"].as_array().unwrap().len(), 1);
    let missing = http_request(server.http, "GET", "/api/v1/services/nothing", None);
    assert_eq!(
        (missing.status, missing.error_name().as_str()),
        (404, "UNKNOWN_SERVICE")
    );
    let metrics = http_request(server.http, "GET", "/metrics", None).text();
    assert!(
        metrics.contains("shardbus_service_errors_total{service=\"calc\",endpoint=\"calc.add\""),
        "{metrics}"
    );
}
