//! The chat sample end to end, against the real broker started from the sample's own
//! `chat.toml`: two terminal clients (`shardbus-chat` in real terminals, tmux) and the web
//! client (served by the broker at `/chat/`, in headless Chromium, signed in with a JWT) in one
//! room. Each sees the room's earlier messages on join, the others' messages and members, and
//! direct messages naming their sender; a terminal client whose connection drops gets, when it
//! is back, what was said while it was away.
// Tests: a failed expectation must fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shardbus_protocol::client::{Client, ClientOptions};
use shardbus_protocol::container::Value;
use shardbus_tests::cdp::{Browser, keep_for_docs, shows};
use shardbus_tests::proxy::Proxy;
use shardbus_tests::tmux::Tmux;
use shardbus_tests::{TestServer, wait_until};

const CHAT: &str = env!("CARGO_BIN_EXE_shardbus-chat");
/// The JWT the sample's README gives (user `dave`, role `chat`, signed with `chat.toml`'s key).
const DAVE_JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJkYXZlIiwicm9sZSI6ImNoYXQiLCJleHAiOjQxMDI0NDQ4MDB9.P-S-qp0UplJ-4uUfIRijrpqzeRLBMlda4a-1Oj2niX4";
const SIZE: (u16, u16) = (120, 30);

/// The broker as `chat.toml` configures it, on free ports, its web client from this directory.
fn broker() -> TestServer {
    let dir = env!("CARGO_MANIFEST_DIR");
    let web = format!("http.static_dir=\"{dir}/web\"");
    TestServer::from_file(&format!("{dir}/chat.toml"), &[&web])
}

/// A room message as the chat's clients publish it.
fn line(from: &str, text: &str) -> Value {
    Value::Map(vec![
        ("from".into(), Value::Str(from.into())),
        ("text".into(), Value::Str(text.into())),
    ])
}

/// Types `text` into the web client's message box and sends it.
fn page_says(browser: &mut Browser, text: &str) {
    browser.eval(&format!(
        "document.getElementById('text').value = {text:?}; document.getElementById('say').requestSubmit(); true"
    ));
}

/// With `SHARDBUS_SCREENSHOTS=docs`, writes bob's terminal and the web page (1280×800) into the
/// sample's `docs/`, as its README shows them; else checks the page's picture is one.
fn keep_pictures(tmux: &Tmux, browser: &mut Browser) {
    let page = browser.picture(1280, 800);
    let terminal = tmux.screen("bob");
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    keep_for_docs(
        &docs,
        &[
            ("web-1280x800.png", &page),
            ("terminal-bob.txt", terminal.as_bytes()),
        ],
    );
}

fn screen_shows(tmux: &Tmux, who: &str, what: &str) {
    wait_until(&format!("{who}'s screen to show {what:?}"), || {
        tmux.screen(who).contains(what)
    });
}

#[test]
fn two_terminals_and_a_browser_talk_and_a_dropped_terminal_recovers() {
    let server = broker();
    // carol was here first: what she said is the history the others see on join.
    let carol = Client::connect_with(
        server.addr,
        ClientOptions::new().token("carol-token").name("carol"),
    )
    .unwrap();
    let _carol_in = carol.join("chat.lobby").unwrap();
    for i in 1..=3 {
        carol
            .publish_value("chat.lobby", &line("carol", &format!("earlier {i}")))
            .unwrap();
    }
    carol.flush().unwrap();

    // alice talks through a relay the test can cut; bob straight to the broker.
    let relay = Proxy::start(server.addr);
    let tmux = Tmux::new("chat");
    let client = |server: std::net::SocketAddr, user: &str| {
        format!("{CHAT} --server {server} --token {user}-token --name {user} --room chat.lobby")
    };
    tmux.run("alice", SIZE, &client(relay.addr, "alice"));
    tmux.run("bob", SIZE, &client(server.addr, "bob"));
    for who in ["alice", "bob"] {
        screen_shows(&tmux, who, "carol: earlier 3");
        screen_shows(&tmux, who, "earlier messages");
    }

    // dave signs in on the web page with a JWT.
    let mut browser = Browser::start();
    browser.open(&format!("http://{}/chat/", server.http));
    browser.wait_for(
        "the sign-in form",
        "!document.getElementById('sign-in').disabled",
    );
    browser.eval(&format!(
        "document.getElementById('name').value = 'dave'; document.getElementById('kind').value = 'jwt';
         document.getElementById('secret').value = {DAVE_JWT:?}; document.getElementById('login').requestSubmit(); true"
    ));
    browser.wait_for("the room's history", &shows("lines", "earlier 3"));
    for member in ["alice", "bob", "carol", "dave"] {
        browser.wait_for(
            &format!("{member} among the members"),
            &shows("members", member),
        );
    }
    assert_eq!(
        browser.eval("location.search + location.hash"),
        "",
        "no secret in the URL"
    );
    screen_shows(&tmux, "bob", "here (4)");

    // Everyone hears everyone.
    tmux.type_line("alice", "hello from alice");
    screen_shows(&tmux, "bob", "alice: hello from alice");
    browser.wait_for("alice's message", &shows("lines", "hello from alice"));
    page_says(&mut browser, "hi from dave");
    screen_shows(&tmux, "alice", "dave: hi from dave");
    screen_shows(&tmux, "bob", "dave: hi from dave");

    // Direct messages name their sender, the broker's word for it.
    tmux.type_line("bob", "/msg alice psst");
    screen_shows(&tmux, "alice", "@bob (1)");
    tmux.keys("alice", &["Tab"]);
    screen_shows(&tmux, "alice", "bob: psst");
    tmux.keys("alice", &["Tab"]);
    page_says(&mut browser, "/msg bob from the browser");
    screen_shows(&tmux, "bob", "@dave (1)");
    tmux.keys("bob", &["Tab"]);
    screen_shows(&tmux, "bob", "dave: from the browser");
    tmux.keys("bob", &["Tab"]);
    screen_shows(&tmux, "bob", "#chat.lobby");
    tmux.type_line("alice", "/msg dave to the browser");
    browser.wait_for("alice's direct message", &shows("conversations", "@alice"));
    tmux.keys("alice", &["Tab"]);
    tmux.type_line("alice", "/who");
    screen_shows(&tmux, "alice", "4 here:");

    browser.eval(
        "[...document.querySelectorAll('#conversations button')].find((b) => b.textContent.startsWith('#chat.lobby')).click(); true",
    );
    browser.wait_for("the lobby on the page", &shows("lines", "hi from dave"));
    keep_pictures(&tmux, &mut browser);

    // alice's connection drops: the others see her go; what is said meanwhile she gets back.
    relay.cut_and_hold();
    screen_shows(&tmux, "bob", "alice left");
    screen_shows(&tmux, "alice", "reconnecting");
    carol
        .publish_value("chat.lobby", &line("carol", "while away 1"))
        .unwrap();
    carol
        .publish_value("chat.lobby", &line("carol", "while away 2"))
        .unwrap();
    screen_shows(&tmux, "bob", "carol: while away 2");
    relay.release(server.addr);
    screen_shows(&tmux, "alice", "back: 4 here");
    screen_shows(&tmux, "alice", "carol: while away 1");
    screen_shows(&tmux, "alice", "carol: while away 2");
    screen_shows(&tmux, "bob", "alice joined");
    tmux.type_line("alice", "I am back");
    browser.wait_for("alice back on the page", &shows("lines", "I am back"));

    tmux.keys("alice", &["Escape"]);
    wait_until("alice's client to quit", || !tmux.running("alice"));
    wait_until("bob to see alice leave again", || {
        tmux.screen("bob").matches("alice left").count() == 2
    });
}
