//! The IoT sample end to end, against the real broker started from the sample's own
//! `iot.toml`: two aggregator instances, the alerts with the sample's `rules.toml` and the
//! simulated devices run as the `shardbus-iot` processes a user starts, one device's sensor
//! failing. The operator (a Rust client) and the live page (headless Chromium) see exactly one
//! alert raised for that device and exactly one cleared, and no other; the aggregator answers
//! for the sites; the page, opened again once the devices are quiet, shows every device's last
//! value from the rooms that retain them.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Child, Command};
use std::time::Duration;

use shardbus_protocol::client::{Client, ClientOptions};
use shardbus_protocol::container::{ContainerLimits, Value};
use shardbus_tests::cdp::{Browser, keep_for_docs, shows};
use shardbus_tests::{PATIENCE, TestServer, wait_until};

const IOT: &str = env!("CARGO_BIN_EXE_shardbus-iot");
const FAULTY: &str = "site2.d004";

/// The broker as `iot.toml` configures it, on free ports, its page from this directory.
fn broker() -> TestServer {
    let dir = env!("CARGO_MANIFEST_DIR");
    let web = format!("http.static_dir=\"{dir}/web\"");
    TestServer::from_file(&format!("{dir}/iot.toml"), &[&web])
}

/// A `shardbus-iot` process, killed when dropped.
struct Program(Child);

impl Program {
    fn start(server: &TestServer, token: &str, args: &[&str]) -> Program {
        let child = Command::new(IOT)
            .args(["--server", &server.addr.to_string(), "--token", token])
            .args(args)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .spawn()
            .unwrap();
        Program(child)
    }

    fn exited(&mut self) -> bool {
        self.0
            .try_wait()
            .unwrap()
            .is_some_and(|status| status.success())
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::Str(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn query(client: &Client, subject: &str, params: Value) -> Value {
    let payload = params.to_binary().unwrap();
    let answer = client
        .request_with(
            subject,
            Default::default(),
            shardbus_protocol::Flags::CONTAINER,
            &payload,
            PATIENCE,
        )
        .unwrap();
    answer.value(&ContainerLimits::default()).unwrap()
}

/// With `SHARDBUS_SCREENSHOTS=docs`, writes the page at 1280×900 into the sample's `docs/` (as
/// its README shows it); else checks it is a picture.
fn keep_picture(browser: &mut Browser) {
    let page = browser.picture(1280, 900);
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    keep_for_docs(&docs, &[("page-1280x900.png", &page)]);
}

#[test]
fn a_failing_sensor_raises_exactly_one_alert_and_clears_it() {
    let server = broker();
    let operator =
        Client::connect_with(server.addr, ClientOptions::new().token("operator-token")).unwrap();
    let pushes = operator.pushes().unwrap();
    let alerts = operator.join("iot.alerts").unwrap();
    let _aggregators = [
        Program::start(&server, "service-token", &["aggregator"]),
        Program::start(&server, "service-token", &["aggregator"]),
    ];
    let _alerts = Program::start(
        &server,
        "service-token",
        &["alerts", "--rules", "samples/iot/rules.toml"],
    );
    wait_until("two aggregators and the alerts registered", || {
        let instances = |name| operator.discover(name, "").map_or(0, |found| found.len());
        instances("iot-aggregator") == 2 && instances("iot-alerts") == 1
    });

    // The page watches from the start.
    let mut browser = Browser::start();
    browser.open(&format!("http://{}/iot/", server.http));
    browser.wait_for(
        "the sign-in form",
        "!document.getElementById('sign-in').disabled",
    );
    browser.eval(
        "document.getElementById('secret').value = 'operator-token'; document.getElementById('login').requestSubmit(); true",
    );
    browser.wait_for("the board", "document.body.dataset.ready === 'true'");

    // 20 devices on 2 sites at 10 readings a second; one sensor drifts hot for 3 s, then back.
    let mut sim = Program::start(
        &server,
        "device-token",
        &[
            "sim",
            "--devices",
            "20",
            "--sites",
            "2",
            "--rate",
            "10",
            "--faulty",
            FAULTY,
            "--fault-after-ms",
            "1500",
            "--fault-for-ms",
            "3000",
            "--duration-ms",
            "9000",
            "--seed",
            "7",
        ],
    );
    browser.wait_for(
        "the failing device in alarm",
        &shows("alarms", &format!("{FAULTY}: hot")),
    );
    browser.wait_for(
        "its row marked",
        &format!("document.querySelector('tr.alarm')?.dataset.device === {FAULTY:?}"),
    );
    browser.wait_for(
        "a site chart with points",
        "Number(document.getElementById('chart-site1')?.dataset.points || 0) >= 2",
    );
    keep_picture(&mut browser);
    wait_until("the devices to stop", || sim.exited());

    // Exactly one raise and one clear, for that device, in the room and pushed to the operator.
    // The two expected within the tests' patience, then whatever else came (nothing should).
    let mut told = Vec::new();
    let mut wait = PATIENCE;
    while let Ok(message) = alerts.recv_timeout(wait) {
        let alert = message.value(&ContainerLimits::default()).unwrap();
        told.push((
            text(&alert, "rule"),
            text(&alert, "device"),
            text(&alert, "state"),
        ));
        if told.len() >= 2 {
            wait = Duration::from_secs(1);
        }
    }
    let expected = [("hot", FAULTY, "raised"), ("hot", FAULTY, "cleared")]
        .map(|(r, d, s)| (r.to_owned(), d.to_owned(), s.to_owned()));
    assert_eq!(told, expected);
    let mut pushed = Vec::new();
    let mut wait = PATIENCE;
    while let Ok(message) = pushes.recv_timeout(wait) {
        pushed.push(String::from_utf8_lossy(message.payload()).into_owned());
        if pushed.len() >= 2 {
            wait = Duration::from_millis(500);
        }
    }
    assert_eq!(pushed.len(), 2, "{pushed:?}");
    assert!(
        pushed[0].starts_with(&format!("RAISED hot on {FAULTY}")),
        "{pushed:?}"
    );
    assert!(
        pushed[1].starts_with(&format!("CLEARED hot on {FAULTY}")),
        "{pushed:?}"
    );
    let active = query(&operator, "iot.alerts.active", Value::Map(vec![]));
    assert_eq!(active.get("active"), Some(&Value::List(vec![])));
    browser.wait_for("the alarm cleared on the page", &shows("alarms", "none"));
    browser.wait_for(
        "both in the log",
        &format!(
            "{} && {}",
            shows("log", "raised hot"),
            shows("log", "cleared hot")
        ),
    );

    // Both instances answer queries, each having seen the readings; the sites add up.
    let mut instances = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let stats = query(&operator, "iot.query.stats", Value::Map(vec![]));
        assert!(
            matches!(stats.get("received"), Some(Value::U64(n)) if *n > 100),
            "{stats:?}"
        );
        instances.insert(format!("{:?}", stats.get("instance")));
    }
    assert_eq!(instances.len(), 2, "{instances:?}");
    let site = query(
        &operator,
        "iot.query.site",
        Value::Map(vec![("site".into(), Value::Str("site2".into()))]),
    );
    assert_eq!(site.get("devices"), Some(&Value::U64(10)), "{site:?}");
    let Some(Value::List(by_device)) = site.get("by_device") else {
        panic!("{site:?}")
    };
    assert_eq!(by_device.len(), 10);
    let sites = query(&operator, "iot.query.sites", Value::Map(vec![]));
    let Some(Value::List(sites)) = sites.get("sites") else {
        panic!("{sites:?}")
    };
    assert_eq!(sites.len(), 2);

    // Opened again with the devices quiet, the page has every last value from the retaining rooms.
    browser.open(&format!("http://{}/iot/", server.http));
    browser.wait_for("the board again", "document.body.dataset.ready === 'true'");
    browser.wait_for(
        "20 devices with values",
        "document.querySelectorAll('#devices tr').length === 20",
    );
    let seqs = browser.eval("[...document.querySelectorAll('#devices tr')].every((r) => Number(r.children[5].textContent) > 0)");
    assert_eq!(seqs, true);
}
