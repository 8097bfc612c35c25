//! Services across the nodes of a cluster over a real redis-server: instances on two nodes are
//! discovered and listed from a third (each naming its node) and serve its requests; a node
//! with an instance of its own keeps its requests, and sends them to another node's instances
//! once its own may not serve.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use shardbus_protocol::Health;
use shardbus_protocol::client::{Client, ServiceSpec};
use shardbus_tests::cluster::{discovered_nodes, node, nodes_seen};
use shardbus_tests::redis::RedisServer;
use shardbus_tests::services::serve;
use shardbus_tests::{TestServer, http_request, wait_until};

fn ask(client: &Client) -> String {
    let answer = client
        .request("echo.say", b"?", Duration::from_secs(10))
        .unwrap();
    String::from_utf8(answer.payload().to_vec()).unwrap()
}

fn answers(client: &Client, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        *seen.entry(ask(client)).or_default() += 1;
    }
    seen
}

fn spec() -> ServiceSpec {
    ServiceSpec::new("1.0.0")
        .endpoint("echo.say")
        .heartbeat(Duration::from_millis(200))
}

#[test]
fn instances_on_two_nodes_are_found_and_serve_a_node_that_has_none() {
    let redis = RedisServer::start();
    let nodes: [TestServer; 3] = [node(&redis, "sa"), node(&redis, "sb"), node(&redis, "sc")];
    for node in &nodes {
        wait_until("every node to see the two others", || {
            nodes_seen(node.http).len() == 2
        });
    }
    let [a, b, c] = &nodes;
    let (on_a, on_b) = (a.client_on(0), b.client_on(1));
    let instance_a = on_a.register("echo", &spec()).unwrap();
    let instance_b = on_b.register("echo", &spec()).unwrap();
    let serving = [serve(&on_a, instance_a, "a"), serve(&on_b, instance_b, "b")];

    // Discovery and the services report on the third node cover both.
    let requester = c.client_on(0);
    let both: BTreeSet<String> = ["sa", "sb"].map(String::from).into();
    wait_until("both instances found from sc", || {
        discovered_nodes(&requester, "echo") == ["sa", "sb"]
    });
    let report = http_request(c.http, "GET", "/api/v1/services/echo", None).json();
    let listed: BTreeSet<String> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["node"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, both, "{report}");
    assert_eq!(report["complete"], true);

    // A node without an instance: its requests reach both nodes' instances.
    wait_until("sc to see the endpoints of both", || {
        nodes_seen(c.http)
            .iter()
            .all(|(_, interest)| *interest >= 1)
    });
    let seen = answers(&requester, 20);
    assert_eq!(seen.values().sum::<usize>(), 20);
    assert!(seen.contains_key("a") && seen.contains_key("b"), "{seen:?}");

    // A node with an instance of its own keeps its requests ...
    let idle = a.client_on(1);
    let draining = idle.register("echo", &spec()).unwrap();
    draining.set_health(Health::Draining, 0).unwrap();
    let near = a.client_on(1);
    wait_until("sa to see its draining instance", || {
        near.discover("echo", "")
            .unwrap()
            .iter()
            .any(|i| i.health == Health::Draining)
    });
    assert_eq!(answers(&near, 10).get("a"), Some(&10));
    // ... until none of its own may serve: then another node's instance answers.
    on_a.close();
    wait_until("sa's serving instance gone", || {
        let found = near.discover("echo", "").unwrap();
        found.len() == 2 && found.iter().any(|i| i.health == Health::Draining)
    });
    assert_eq!(answers(&near, 10).get("b"), Some(&10));
    drop((draining, serving));
}
