//! `shardbus-iot`: the IoT sample's programs on the public Rust client of shardbus — `sim`
//! (simulated devices), `aggregator` (an instance of the windows-and-queries service) and
//! `alerts` (rules, hysteresis, alerts to a room and to the operator). README.md in this
//! directory.

mod aggregator;
mod alerts;
mod reading;
mod rules;
mod sim;
mod window;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use shardbus_protocol::client::{Client, ClientError, ClientOptions};

/// The IoT sample's programs.
#[derive(Debug, Parser)]
#[command(name = "shardbus-iot", version)]
struct Args {
    /// The broker's binary-protocol address.
    #[arg(
        long,
        global = true,
        env = "SHARDBUS_SERVER",
        default_value = "127.0.0.1:7400"
    )]
    server: String,
    /// Log in with this token.
    #[arg(long, global = true, env = "SHARDBUS_TOKEN")]
    token: Option<String>,
    #[command(subcommand)]
    program: Program,
}

#[derive(Debug, Subcommand)]
enum Program {
    /// Simulated devices publishing readings.
    Sim {
        #[arg(long, default_value_t = 20)]
        devices: usize,
        #[arg(long, default_value_t = 2)]
        sites: usize,
        /// Readings per second per device.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// How much each period varies, as a fraction.
        #[arg(long, default_value_t = 0.2)]
        jitter: f64,
        /// The chance a reading is lost.
        #[arg(long, default_value_t = 0.01)]
        dropout: f64,
        /// A device (`site.device`) whose sensor fails: it drifts hot, then back.
        #[arg(long)]
        faulty: Vec<String>,
        #[arg(long, default_value_t = 10_000)]
        fault_after_ms: u64,
        #[arg(long, default_value_t = 10_000)]
        fault_for_ms: u64,
        /// Stop after this long (0: run until killed).
        #[arg(long, default_value_t = 0)]
        duration_ms: u64,
        /// Connections the devices share.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// An instance of the `iot-aggregator` service.
    Aggregator {
        /// The windows' span, seconds.
        #[arg(long, default_value_t = 60)]
        window_s: u64,
    },
    /// The alert rules.
    Alerts {
        #[arg(long, default_value = "samples/iot/rules.toml")]
        rules: std::path::PathBuf,
        /// The user every alert is pushed to.
        #[arg(long, default_value = "operator")]
        operator: String,
    },
}

fn connect(args: &Args, name: &str) -> Result<Client, ClientError> {
    let mut options = ClientOptions::new().name(name);
    if let Some(token) = &args.token {
        options = options.token(token);
    }
    Client::connect_with(args.server.as_str(), options)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match &args.program {
        Program::Sim {
            devices,
            sites,
            rate,
            jitter,
            dropout,
            faulty,
            fault_after_ms,
            fault_for_ms,
            duration_ms,
            connections,
            seed,
        } => {
            let options = sim::SimOptions {
                devices: *devices,
                sites: *sites,
                rate: *rate,
                jitter: *jitter,
                dropout: *dropout,
                faulty: faulty.clone(),
                fault_after: Duration::from_millis(*fault_after_ms),
                fault_for: Duration::from_millis(*fault_for_ms),
                duration: (*duration_ms > 0).then(|| Duration::from_millis(*duration_ms)),
                seed: *seed,
            };
            let clients: Result<Vec<Client>, ClientError> = (0..(*connections)
                .clamp(1, *devices.max(&1)))
                .map(|i| connect(&args, &format!("sim {i}")))
                .collect();
            clients
                .and_then(|clients| sim::run(&clients, &options))
                .map(|sent| {
                    eprintln!("shardbus-iot sim: {sent} readings sent");
                })
        }
        Program::Aggregator { window_s } => connect(&args, "iot aggregator")
            .and_then(|client| aggregator::run(&client, Duration::from_secs(*window_s))),
        Program::Alerts { rules, operator } => {
            let rules = match std::fs::read_to_string(rules)
                .map_err(|e| e.to_string())
                .and_then(|text| rules::parse(&text))
            {
                Ok(rules) => rules,
                Err(error) => {
                    eprintln!("shardbus-iot alerts: {}: {error}", rules.display());
                    return ExitCode::FAILURE;
                }
            };
            connect(&args, "iot alerts").and_then(|client| alerts::run(&client, rules, operator))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shardbus-iot: {error}");
            ExitCode::FAILURE
        }
    }
}
