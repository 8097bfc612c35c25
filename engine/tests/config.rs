//! Configuration: defaults need no file; file, environment and flags layer in that order; every
//! refusal names its key; `--print-config` output loads back to the same configuration.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

use std::path::PathBuf;

use clap::Parser;
use shardbus_engine::config::{Cli, Config, ConfigError, LogFormat, load};

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A config file unique to this test (tests run in parallel).
fn file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("shardbus-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn cli(args: &[&str]) -> Cli {
    let mut all = vec!["shardbus"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all).unwrap()
}

#[test]
fn embedded_defaults_need_no_file() {
    let config = load(&Cli::default(), no_env()).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.listen.to_string(), "127.0.0.1:7400");
    assert_eq!(config.http_listen.to_string(), "127.0.0.1:7480");
    assert_eq!(config.shard_count(2), 2, "0 shards means one per core");
}

#[test]
fn file_then_environment_then_flags_each_win_over_the_one_before() {
    let path = file("layers", "shards = 1\n[limits]\nmax_payload = 65536\n");
    let path_arg = path.to_str().unwrap();
    let from_file = load(&cli(&["--config", path_arg]), no_env()).unwrap();
    assert_eq!((from_file.shards, from_file.limits.max_payload), (1, 65536));

    let vars = env(&[
        ("SHARDBUS_SHARDS", "2"),
        ("SHARDBUS_LIMITS__MAX_PAYLOAD", "1000"),
    ]);
    let from_env = load(&cli(&["--config", path_arg]), vars.clone()).unwrap();
    assert_eq!((from_env.shards, from_env.limits.max_payload), (2, 1000));

    let args = [
        "--config",
        path_arg,
        "--shards",
        "3",
        "--set",
        "limits.max_payload=2000",
    ];
    let from_flags = load(&cli(&args), vars).unwrap();
    assert_eq!(
        (from_flags.shards, from_flags.limits.max_payload),
        (3, 2000)
    );
    // Keys no layer touched keep their defaults.
    assert_eq!(from_flags.limits.max_topic_len, 256);
}

#[test]
fn named_flags_set_their_options() {
    let config = load(
        &cli(&[
            "--listen",
            "127.0.0.1:9400",
            "--http-listen",
            "127.0.0.1:9480",
            "--log-format",
            "json",
            "--spin-before-park-us",
            "0",
        ]),
        no_env(),
    )
    .unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:9400");
    assert_eq!(config.http_listen.to_string(), "127.0.0.1:9480");
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(config.runtime.spin_before_park_us, 0);
}

#[test]
fn environment_variables_without_the_prefix_are_ignored() {
    let config = load(&Cli::default(), env(&[("SHARDS", "7"), ("PATH", "/bin")])).unwrap();
    assert_eq!(config.shards, 0);
}

fn key_error(result: Result<Config, ConfigError>) -> (String, String) {
    match result {
        Err(ConfigError::Key { key, message }) => (key, message),
        other => panic!("expected a key error, got {other:?}"),
    }
}

#[test]
fn an_unknown_key_is_named_with_its_path() {
    let path = file("unknown", "[limits]\nmax_paylod = 5\n");
    let (key, message) = key_error(load(&cli(&["--config", path.to_str().unwrap()]), no_env()));
    assert_eq!(key, "limits.max_paylod");
    assert!(message.contains("unknown field `max_paylod`"), "{message}");
    let (key, message) = key_error(load(&Cli::default(), env(&[("SHARDBUS_LISTN", "x")])));
    assert_eq!(key, "listn");
    assert!(message.contains("unknown field `listn`"), "{message}");
}

#[test]
fn room_options_are_checked_by_their_key_path() {
    let path = file(
        "rooms_unknown",
        "[[rooms]]\npattern = \"chat.>\"\n[[rooms]]\npattern = \"a.>\"\nhistroy_size = 5\n",
    );
    let (key, message) = key_error(load(&cli(&["--config", path.to_str().unwrap()]), no_env()));
    assert_eq!(key, "rooms[1].histroy_size");
    assert!(
        message.contains("unknown field `histroy_size`"),
        "{message}"
    );
    for (text, bad_key) in [
        ("[[rooms]]\npattern = \"a..b\"\n", "rooms[0].pattern"),
        (
            "[[rooms]]\npattern = \"a.>\"\nrecover = true\n",
            "rooms[0].recover",
        ),
        (
            "[[rooms]]\npattern = \"a.>\"\nhistory_size = 2000000\n",
            "rooms[0].history_size",
        ),
    ] {
        let path = file("rooms_invalid", text);
        match load(&cli(&["--config", path.to_str().unwrap()]), no_env()) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, bad_key, "{text}"),
            other => panic!("{text}: expected Invalid, got {other:?}"),
        }
    }
    let path = file(
        "rooms_publish",
        "[[rooms]]\npattern = \"a.>\"\npublish = \"everyone\"\n",
    );
    let (key, _) = key_error(load(&cli(&["--config", path.to_str().unwrap()]), no_env()));
    assert_eq!(key, "rooms[0].publish");
}

#[test]
fn a_wrongly_typed_value_is_named_with_its_path() {
    let vars = env(&[("SHARDBUS_LIMITS__MAX_PAYLOAD", "lots")]);
    let (key, message) = key_error(load(&Cli::default(), vars));
    assert_eq!(key, "limits.max_payload");
    assert!(message.contains("invalid type"), "{message}");
    let (key, _) = key_error(load(&cli(&["--set", "listen=not-an-address"]), no_env()));
    assert_eq!(key, "listen");
}

#[test]
fn values_that_parse_but_make_no_sense_are_refused_by_key() {
    for (assignment, bad_key) in [
        ("limits.max_pending=10", "limits.max_pending"),
        ("limits.max_payload=0", "limits.max_payload"),
        ("runtime.io_memory=1024", "runtime.io_memory"),
        ("shards=5000", "shards"),
        ("http_listen=\"127.0.0.1:7400\"", "http_listen"),
    ] {
        match load(&cli(&["--set", assignment]), no_env()) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, bad_key, "{assignment}"),
            other => panic!("{assignment}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn malformed_files_and_overrides_say_where() {
    let path = file("syntax", "shards = \n");
    match load(&cli(&["--config", path.to_str().unwrap()]), no_env()) {
        Err(ConfigError::Syntax { path: p, message }) => {
            assert_eq!(p, path);
            assert!(message.contains("line 1"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let missing = load(&cli(&["--config", "/nonexistent/shardbus.toml"]), no_env());
    assert!(matches!(missing, Err(ConfigError::Read { .. })));
    let err = load(&cli(&["--set", "no-equals-sign"]), no_env()).unwrap_err();
    assert_eq!(err.to_string(), "--set no-equals-sign: expected KEY=VALUE");
    let err = load(&cli(&["--set", "listen.port=1"]), no_env());
    assert!(err.is_err(), "a value cannot be a section");
}

#[test]
fn printed_config_loads_back_unchanged() {
    let custom = load(
        &cli(&[
            "--shards",
            "2",
            "--set",
            "limits.max_subscriptions=7",
            "--log-format",
            "json",
        ]),
        no_env(),
    )
    .unwrap();
    let printed = custom.to_toml().unwrap();
    assert!(printed.contains("max_subscriptions = 7"), "{printed}");
    let path = file("printed", &printed);
    assert_eq!(
        load(&cli(&["--config", path.to_str().unwrap()]), no_env()).unwrap(),
        custom
    );
}

#[test]
fn help_documents_every_option() {
    let help = Cli::try_parse_from(["shardbus", "--help"])
        .unwrap_err()
        .to_string();
    for flag in [
        "--config",
        "--listen",
        "--http-listen",
        "--shards",
        "--log-format",
        "--spin-before-park-us",
        "--set",
        "--print-config",
        "SHARDBUS_LIMITS__MAX_PAYLOAD",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn the_secure_example_loads_and_its_credentials_work() {
    use shardbus_engine::auth::Authenticator;
    use shardbus_protocol::HeadersBuilder;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/secure.example.toml");
    let config = load(&cli(&["--config", path]), no_env()).unwrap();
    assert!(!config.auth.anonymous && !config.auth.http_open);
    assert_eq!(config.rate_limits.conn_msgs_per_sec, 1000);
    let auth = Authenticator::new(&config.auth).unwrap();
    let mut headers = HeadersBuilder::new();
    headers.insert("token", "change-me-sensor-token").unwrap();
    let sensor = auth.authenticate(&headers.headers()).unwrap();
    assert_eq!(&*sensor.role, "sensors");
    assert!(sensor.permissions.publish.allows_subject("sensors.kitchen"));
    assert!(
        !sensor.permissions.request.allows_subject("svc.time"),
        "a custom role lists all"
    );
    let alice = auth.verify_user("alice", "change-me").unwrap();
    assert!(alice.permissions.publish.allows_subject("alice.notes"));
    assert!(!alice.permissions.publish.allows_subject("bob.notes"));
}
