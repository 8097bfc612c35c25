//! The dashboard (`/dashboard`, and `/` leads there) in headless Chromium driven over the
//! DevTools protocol, against the real server under a load: it signs in with an admin token
//! typed into the page, shows the rates moving, lists a connection and kicks it, shows a
//! room's presence count, a service's instance and an event, subscribes, receives and
//! requests from its playground; screenshots at 1280×900 and
//! 390×844 (written to `docs/` when `SHARDBUS_SCREENSHOTS=docs`, else checked and dropped).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shardbus_engine::rooms::RoomConfig;
use shardbus_protocol::client::{Client, ClientOptions, ServiceSpec};
use shardbus_tests::cdp::{Browser, shows};
use shardbus_tests::{TestServer, http_request, token_config, wait_until};

const ADMIN: &str = "ops-secret";

fn server() -> TestServer {
    TestServer::with(|config| {
        config.auth.tokens = vec![
            token_config("ops", ADMIN, "admin"),
            token_config("guest", "guest-secret", "user"),
        ];
        config.rooms = vec![RoomConfig {
            pattern: "chat.>".into(),
            ..RoomConfig::default()
        }];
    })
}

/// A client named `loader` publishing to a subscriber until dropped.
fn load(server: &TestServer, stop: &Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let client = Client::connect_with(server.addr, ClientOptions::new().name("loader")).unwrap();
    let reader = server.client_on(1);
    let sub = reader.subscribe("load.>").unwrap();
    reader.flush().unwrap();
    let stop = Arc::clone(stop);
    std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            client.publish("load.tick", &n.to_le_bytes()).unwrap();
            n += 1;
            if n.is_multiple_of(16) {
                client.flush().unwrap();
                while let Ok(Some(_)) = sub.try_recv() {}
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    })
}

/// Types `value` into the page's input `input`, then runs `then` (a submit, a click).
fn type_in(browser: &mut Browser, input: &str, value: &str, then: &str) {
    browser.eval(&format!(
        "document.getElementById({input:?}).value = {value:?}; {then}; true"
    ));
}

#[test]
fn the_dashboard_signs_in_shows_the_load_kicks_and_lists_rooms_services_and_events() {
    let server = server();
    let root = http_request(server.http, "GET", "/", None);
    assert_eq!(root.status, 302);
    assert_eq!(root.header("location"), Some("/dashboard"));
    for (path, kind) in [
        ("/dashboard", "text/html"),
        ("/js/dashboard.js", "text/javascript"),
        ("/js/vendor/uplot/uPlot.esm.js", "text/javascript"),
        ("/js/vendor/uplot/uPlot.min.css", "text/css"),
    ] {
        let asset = http_request(server.http, "GET", path, None);
        assert_eq!(asset.status, 200, "{path}");
        assert!(
            asset.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(&server, &stop);
    let member = server.client_on(0);
    let _room = member.join("chat.lobby").unwrap();
    let instance = server.client_on(1);
    let spec = ServiceSpec::new("2.1.0")
        .endpoint("echo.say")
        .heartbeat(Duration::from_millis(500));
    let service = instance.register("echo", &spec).unwrap();
    let _serving = shardbus_tests::services::serve(&instance, service, "echoed");
    // Requests, so the page has latency percentiles to show.
    let requester = server.client_on(0);
    let requesting = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = requester.request("echo.say", b"?", Duration::from_secs(5));
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let victim = Client::connect_with(
        server.addr,
        ClientOptions::new().name("victim").no_reconnect(),
    )
    .unwrap();

    let mut browser = Browser::start();
    browser.viewport(1280, 900, false);
    browser.open(&format!("http://{}/", server.http));
    browser.wait_for(
        "the sign-in form, ready",
        "document.getElementById('login-fields')?.disabled === false",
    );
    // A token that is not an admin's is refused with a reason, and nothing is kept.
    let submit = "document.getElementById('login').requestSubmit()";
    type_in(&mut browser, "token", "guest-secret", submit);
    browser.wait_for(
        "the refusal of a user's token",
        &shows("login-error", "not an admin"),
    );
    assert_eq!(
        browser.eval("sessionStorage.length"),
        serde_json::json!(0),
        "a refused token is not kept"
    );
    type_in(&mut browser, "token", ADMIN, submit);
    browser.wait_for("the board", "!document.getElementById('board').hidden");
    assert!(
        !browser
            .eval("location.href")
            .as_str()
            .unwrap()
            .contains(ADMIN),
        "the token never goes in the URL"
    );
    // The rates move: messages in per second above zero, twice, and the chart has points.
    let rate = "Number((document.querySelector('[data-metric=\"msgs in/s\"]')?.textContent || '0').replace(/[kM]/, ''))";
    browser.wait_for("a message rate", &format!("{rate} > 0"));
    browser.wait_for(
        "the chart to have points",
        "document.querySelectorAll('#chart-msgs canvas').length > 0",
    );
    browser.wait_for("the loader listed", &shows("connections", "loader"));
    browser.wait_for("the room and its member", &shows("rooms", "chat.lobby"));
    browser.wait_for("the service's instance", &shows("services", "2.1.0"));
    browser.wait_for("the topic", &shows("topics", "load.>"));

    // An event: a connection made now shows up in the live log.
    let _late = Client::connect_with(server.addr, ClientOptions::new().name("latecomer")).unwrap();
    browser.wait_for("the connect event", &shows("events", "latecomer"));

    // Kick the victim from its row.
    browser.wait_for("the victim listed", &shows("connections", "victim"));
    let clicked = browser.eval(
        "(() => { for (const row of document.querySelectorAll('#connections tbody tr')) {
             if (row.textContent.includes('victim')) { row.querySelector('button.kick').click(); return true; }
           } return false; })()",
    );
    assert_eq!(clicked, serde_json::json!(true));
    wait_until("the victim kicked", || victim.terminal_error().is_some());
    assert_eq!(
        victim.terminal_error().map(|(code, _)| code.name()),
        Some("KICKED")
    );

    // The playground: subscribe, publish and request from the page.
    let click = |button: &str| format!("document.getElementById({button:?}).click()");
    type_in(&mut browser, "play-topic", "play.>", &click("play-sub"));
    browser.wait_for(
        "the page's subscription",
        &shows("play-log", "subscribed to play.>"),
    );
    let from_rust = server.client_on(0);
    from_rust.publish("play.from_rust", b"hi page").unwrap();
    from_rust.flush().unwrap();
    browser.wait_for(
        "a publication received",
        &shows("play-log", "play.from_rust: hi page"),
    );
    type_in(&mut browser, "play-topic", "echo.say", &click("play-req"));
    browser.wait_for(
        "the service's answer",
        &shows("play-log", "answer from echo.say: echoed"),
    );
    browser.wait_for(
        "the per-shard chart",
        "document.querySelectorAll('#chart-shards canvas').length > 0",
    );

    // A few seconds of history in the charts, and request percentiles, before the pictures.
    browser.wait_for(
        "the charts to have points",
        "Number(document.getElementById('chart-msgs').dataset.points || 0) >= 5",
    );
    browser.wait_for(
        "request percentiles",
        "!document.querySelector('[data-metric=\"requests p99\"]').textContent.includes('–')",
    );
    let wide = browser.screenshot();
    browser.viewport(390, 844, true);
    browser.wait_for(
        "the narrow layout",
        "document.documentElement.clientWidth <= 390",
    );
    let narrow = browser.screenshot();
    for shot in [&wide, &narrow] {
        assert!(shot.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    }
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    shardbus_tests::cdp::keep_for_docs(
        &docs,
        &[
            ("dashboard-1280x900.png", &wide),
            ("dashboard-390x844.png", &narrow),
        ],
    );
    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    requesting.join().unwrap();
}
