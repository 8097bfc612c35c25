//! `shardbus`: the broker. Loads the configuration (defaults ← file ← `SHARDBUS_*` ← flags),
//! checks it, starts one shard per core and serves until SIGTERM or SIGINT, then drains.

use std::process::ExitCode;

use clap::Parser;
use shardbus_engine::Server;
use shardbus_engine::config::{self, Cli};
use shardbus_engine::server::Reloader;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.hash_password {
        return hash_password();
    }
    let config = match config::load(&cli, std::env::vars()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("shardbus: {error}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        return match config.to_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("shardbus: {error}");
                ExitCode::FAILURE
            }
        };
    }
    shardbus_engine::logging::init(config.log_format, &config.log_level);
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(signals) => signals,
        Err(error) => {
            tracing::error!(%error, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::start(&config) {
        Ok(server) => server,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let cores: Vec<String> = server
        .cores()
        .iter()
        .map(|c| c.map_or_else(|| "-".to_owned(), |c| c.to_string()))
        .collect();
    let tls = match (config.tls.cert.is_some(), config.tls.required) {
        (false, _) => "off",
        (true, false) => "on (plaintext too)",
        (true, true) => "required",
    };
    tracing::info!(
        listen = %server.local_addr(),
        tls,
        shards = cores.len(),
        cores = %cores.join(","),
        spin_before_park_us = config.runtime.spin_before_park_us,
        "shardbus listening (binary protocol)"
    );
    tracing::info!(
        http = %server.http_addr(),
        tls,
        websocket = "/ws",
        "HTTP edge listening (health, metrics, status, push API, WebSocket)"
    );
    let shared = std::sync::Arc::clone(server.shared());
    let reloader = std::sync::Arc::new(Reloader::new(cli, config, std::sync::Arc::clone(&shared)));
    shared.set_reloader(std::sync::Arc::clone(&reloader));
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal == SIGHUP {
                // Logs what changed, or why the new configuration was refused.
                let _ = reloader.reload();
                continue;
            }
            tracing::info!(signal, "shutting down: draining clients");
            shared.request_shutdown();
        }
    });
    match server.supervise() {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// `--hash-password`: the first line of standard input, hashed for `[[auth.users]]`.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(error) = std::io::stdin().read_line(&mut line) {
        eprintln!("shardbus: cannot read the password: {error}");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("shardbus: an empty password");
        return ExitCode::FAILURE;
    }
    match shardbus_engine::auth::password::hash(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shardbus: {error}");
            ExitCode::FAILURE
        }
    }
}
