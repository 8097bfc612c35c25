//! The browser client in a real browser: headless Chromium (Debian's `chromium`) opens the demo
//! pages the HTTP edge serves. The demo page connects over WebSocket with `/js/shardbus.js`,
//! subscribes, makes a request to itself, registers a service instance, says it is ready, and
//! echoes what a Rust client publishes to it. Two chat pages in one room see each other's presence, join and leave, and
//! one recovers what it missed while its connection was down.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Child, Command, Stdio};

use shardbus_engine::rooms::RoomConfig;
use shardbus_protocol::client::Subscription;
use shardbus_protocol::container::{ContainerLimits, Value};
use shardbus_tests::cdp::{HEADLESS, chromium};
use shardbus_tests::proxy::Proxy;
use shardbus_tests::{PATIENCE, TestServer, http_request};

/// A browser started for a test, killed when the test ends however it ends.
struct Browser(Child, std::path::PathBuf);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn open(url: &str) -> Browser {
    static OPENED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile =
        std::env::temp_dir().join(format!("shardbus-chromium-{}-{n}", std::process::id()));
    let child = Command::new(chromium())
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Browser(child, profile)
}

#[test]
fn the_demo_page_subscribes_requests_and_echoes_in_headless_chromium() {
    let server = TestServer::start();
    let script = http_request(server.http, "GET", "/js/shardbus.js", None);
    assert_eq!(script.status, 200);
    assert!(
        script
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );

    let client = server.client_on(0);
    let ready = client.subscribe("demo.ready").unwrap();
    let echoed = client.subscribe("demo.from_browser").unwrap();
    client.flush().unwrap();
    // Through a relay the test can cut, so the page's connections drop while the server stays.
    let relay = Proxy::start(server.http);
    let _browser = open(&format!("http://{}/demo", relay.addr));

    // Starting a browser on 2 busy cores can take a while.
    let hello = ready
        .recv_timeout(PATIENCE * 2)
        .expect("the page never said ready");
    assert_eq!(
        hello.payload(),
        br#"{"echoed":{"n":1}}"#,
        "the page's request to itself"
    );

    let value = Value::Map(vec![("hello".into(), Value::Str("browser".into()))]);
    client.publish_value("demo.to_browser", &value).unwrap();
    let back = echoed.recv_timeout(PATIENCE).unwrap();
    let back = back.value(&ContainerLimits::default()).unwrap();
    assert_eq!(back.get("got"), Some(&value));

    // The page's service instance (the JS client's `register`) answers requests and beats.
    let found = client.discover("demo", "").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].endpoints, ["demo.svc"]);
    let answer = client
        .request("demo.svc", b"hi", std::time::Duration::from_secs(10))
        .unwrap();
    let answer = answer.value(&ContainerLimits::default()).unwrap();
    assert_eq!(answer.get("served"), Some(&Value::Str("hi".into())));
    assert_eq!(answer.get("by"), Some(&Value::Str(found[0].id.to_string())));

    // Cut under the page: the instance goes with its connection; the page reconnects and
    // registers again (a new id), and serves.
    let first = found[0].id;
    relay.cut_and_hold();
    shardbus_tests::wait_until("the page's instance gone", || {
        client.discover("demo", "").unwrap().is_empty()
    });
    relay.release(server.http);
    shardbus_tests::wait_until("registered again", || {
        let found = client.discover("demo", "").unwrap();
        found.len() == 1 && found[0].id != first
    });
    let again = client
        .request("demo.svc", b"back", std::time::Duration::from_secs(10))
        .unwrap();
    let again = again.value(&ContainerLimits::default()).unwrap();
    assert_eq!(again.get("served"), Some(&Value::Str("back".into())));
}

/// What the chat pages report (`demo.report.<name>`), kept until a test asks for it.
struct Reports {
    sub: Subscription,
    seen: Vec<(String, Value)>,
}

impl Reports {
    /// The first report from page `name` that `wanted` accepts (taken out of the backlog).
    fn wait(&mut self, name: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let topic = format!("demo.report.{name}");
        loop {
            if let Some(i) = self.seen.iter().position(|(t, v)| *t == topic && wanted(v)) {
                return self.seen.remove(i).1;
            }
            // Starting a browser on 2 busy cores can take a while.
            let message = self
                .sub
                .recv_timeout(PATIENCE * 2)
                .unwrap_or_else(|e| panic!("no report from {name} ({e:?}); seen: {:?}", self.seen));
            let value = message.value(&ContainerLimits::default()).unwrap();
            self.seen.push((message.topic().to_owned(), value));
        }
    }
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    match value.get(key) {
        Some(Value::Str(s)) => s,
        _ => "",
    }
}

fn names(value: &Value) -> Vec<String> {
    match value.get("presence") {
        Some(Value::List(names)) => names
            .iter()
            .map(|n| match n {
                Value::Str(s) => s.clone(),
                other => format!("{other:?}"),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn event(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |v| text(v, "event") == kind
}

fn said(message: &'static str) -> impl Fn(&Value) -> bool {
    move |v| text(v, "event") == "msg" && text(v, "text") == message
}

#[test]
fn two_chat_pages_see_each_other_and_one_recovers_what_it_missed() {
    let server = TestServer::with(|config| {
        config.rooms = vec![RoomConfig {
            pattern: "chat.>".into(),
            join_leave: true,
            history_size: 50,
            recover: true,
            ..RoomConfig::default()
        }];
    });
    let page = http_request(server.http, "GET", "/demo/chat", None);
    assert_eq!(page.status, 200);
    let client = server.client_on(0);
    let mut reports = Reports {
        sub: client.subscribe("demo.report.>").unwrap(),
        seen: Vec::new(),
    };
    client.flush().unwrap();
    let page = |name: &str| {
        open(&format!(
            "http://{}/demo/chat?room=chat.test&name={name}&report=1",
            server.http
        ))
    };
    let say = |text: &str| {
        let value = Value::Map(vec![
            ("from".into(), Value::Str("rust".into())),
            ("text".into(), Value::Str(text.into())),
        ]);
        client.publish_value("chat.test", &value).unwrap();
    };
    let control = |name: &str, action: &str| {
        let value = Value::Map(vec![("action".into(), Value::Str(action.into()))]);
        client
            .publish_value(&format!("demo.control.{name}"), &value)
            .unwrap();
    };

    let _ann = page("ann");
    assert_eq!(names(&reports.wait("ann", event("joined"))), ["ann"]);
    let _bob = page("bob");
    assert_eq!(names(&reports.wait("bob", event("joined"))), ["ann", "bob"]);
    assert_eq!(text(&reports.wait("ann", event("join")), "name"), "bob");

    say("one");
    reports.wait("ann", said("one"));
    reports.wait("bob", said("one"));

    // Bob's connection drops; Ann sees him leave; two messages go by while he is away.
    control("bob", "drop");
    assert_eq!(text(&reports.wait("ann", event("leave")), "name"), "bob");
    say("two");
    say("three");
    reports.wait("ann", said("two"));
    reports.wait("ann", said("three"));

    // He comes back: the client rejoins from "one" and recovers both, in order.
    control("bob", "rejoin");
    let rejoined = reports.wait("bob", event("rejoined"));
    assert_eq!(rejoined.get("recovered"), Some(&Value::Bool(true)));
    assert_eq!(names(&rejoined), ["ann", "bob"]);
    let two = reports.wait("bob", said("two"));
    let three = reports.wait("bob", said("three"));
    let offset = |v: &Value| match v.get("offset") {
        Some(Value::U64(n)) => *n as i64,
        Some(Value::I64(n)) => *n,
        Some(Value::U8(n)) => i64::from(*n),
        Some(Value::U16(n)) => i64::from(*n),
        Some(Value::U32(n)) => i64::from(*n),
        Some(Value::I8(n)) => i64::from(*n),
        Some(Value::I16(n)) => i64::from(*n),
        Some(Value::I32(n)) => i64::from(*n),
        other => panic!("offset: {other:?}"),
    };
    assert_eq!((offset(&two), offset(&three)), (2, 3));
    assert_eq!(text(&reports.wait("ann", event("join")), "name"), "bob");
    // Nothing twice: "one" reached Bob once.
    assert!(
        !reports
            .seen
            .iter()
            .any(|(t, v)| t == "demo.report.bob" && said("one")(v)),
        "{:?}",
        reports.seen
    );
}
