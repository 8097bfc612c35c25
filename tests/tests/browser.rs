//! The browser client in a real browser: headless Chromium (Debian's `chromium`) opens the demo
//! page the HTTP edge serves; the page connects over WebSocket with `/js/shardbus.js`,
//! subscribes, makes a request to itself, says it is ready, and echoes what a Rust client
//! publishes to it.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Child, Command, Stdio};

use shardbus_protocol::container::{ContainerLimits, Value};
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

fn chromium() -> String {
    let path = std::env::var("SHARDBUS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: the README's test command (scripts/test.sh) installs Debian's chromium"
    );
    path
}

fn open(url: &str) -> Browser {
    let profile = std::env::temp_dir().join(format!("shardbus-chromium-{}", std::process::id()));
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
        ])
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
    let _browser = open(&format!("http://{}/demo", server.http));

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
}
