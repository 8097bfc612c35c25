//! `[http] static_dir`: an application's files served at `static_path` by the real server,
//! read at start; nothing outside the directory, no credentials needed, a bad directory
//! refused at start with the key named.
// Tests: a failed expectation must fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shardbus_tests::{TestServer, http_request};

#[test]
fn a_directory_is_served_at_its_path_and_nothing_else_is() {
    let dir = std::env::temp_dir().join(format!("sb-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("js")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>chat</h1>").unwrap();
    std::fs::write(dir.join("js/app.js"), "export const ok = 1;").unwrap();
    let root = dir.display().to_string();
    let server = TestServer::with(move |config| {
        config.auth.tokens = vec![shardbus_tests::token_config("ops", "s3cret", "admin")];
        config.http.static_dir = root;
        config.http.static_path = "/chat".into();
        config.auth.http_open = false;
    });
    let page = http_request(server.http, "GET", "/chat/", None);
    assert_eq!((page.status, page.text().as_str()), (200, "<h1>chat</h1>"));
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let script = http_request(server.http, "GET", "/chat/js/app.js", None);
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let bare = http_request(server.http, "GET", "/chat", None);
    assert_eq!(
        (bare.status, bare.header("location")),
        (302, Some("/chat/"))
    );
    for outside in [
        "/chat/../Cargo.toml",
        "/chat/js/",
        "/chat/missing.html",
        "/chatter",
    ] {
        assert_eq!(
            http_request(server.http, "GET", outside, None).status,
            404,
            "{outside}"
        );
    }
    // The server's own routes are untouched: the client is open, the API still wants a token.
    assert_eq!(
        http_request(server.http, "GET", "/js/shardbus.js", None).status,
        200
    );
    assert_eq!(
        http_request(server.http, "GET", "/api/v1/server", None).status,
        401
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_static_path_over_the_servers_own_routes_or_a_missing_directory_is_refused() {
    let mut config = shardbus_engine::config::Config::default();
    config.http.static_path = "/api".into();
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("http.static_path"), "{error}");
    config.http.static_path = "/".into();
    assert!(config.validate().is_err());

    let mut config = shardbus_tests::test_config();
    config.http.static_dir = "/no/such/dir".into();
    let error = shardbus_engine::server::Server::start(&config)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("http.static_dir") && error.contains("/no/such/dir"),
        "{error}"
    );
}
