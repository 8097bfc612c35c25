//! `shardbus-chat`: the chat sample's terminal client. Rooms with their history on join and
//! their members live, direct messages to users, and recovery after a dropped connection, on
//! the public Rust client of shardbus and nothing else (README.md in this directory).

mod chat;
mod conversation;
mod input;
mod screen;

use clap::Parser;
use shardbus_protocol::client::{Client, ClientOptions};

/// The chat sample's terminal client.
#[derive(Debug, Parser)]
#[command(name = "shardbus-chat", version)]
struct Args {
    /// The broker's binary-protocol address.
    #[arg(long, env = "SHARDBUS_SERVER", default_value = "127.0.0.1:7400")]
    server: String,
    /// Log in with this token.
    #[arg(long, env = "SHARDBUS_TOKEN", conflicts_with_all = ["jwt", "user"])]
    token: Option<String>,
    /// Log in with this JWT.
    #[arg(long, env = "SHARDBUS_JWT", conflicts_with = "user")]
    jwt: Option<String>,
    /// Log in as this user (with --password).
    #[arg(long, requires = "password")]
    user: Option<String>,
    /// The user's password.
    #[arg(long, env = "SHARDBUS_PASSWORD")]
    password: Option<String>,
    /// The name others see.
    #[arg(long)]
    name: String,
    /// Rooms to join at start.
    #[arg(long = "room", default_value = "chat.lobby")]
    rooms: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut options = ClientOptions::new().name(&args.name).echo(true);
    if let Some(token) = &args.token {
        options = options.token(token);
    }
    if let Some(jwt) = &args.jwt {
        options = options.jwt(jwt);
    }
    if let (Some(user), Some(password)) = (&args.user, &args.password) {
        options = options.user_password(user, password);
    }
    let client = match Client::connect_with(args.server.as_str(), options) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("shardbus-chat: cannot connect to {}: {error}", args.server);
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut chat = match chat::Chat::new(client, &args.name) {
        Ok(chat) => chat,
        Err(error) => {
            eprintln!("shardbus-chat: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    for room in &args.rooms {
        chat.join(room);
    }
    match screen::run(&mut chat) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shardbus-chat: the terminal: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
