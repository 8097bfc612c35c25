//! Built-in commands (PROTOCOL.md §3.14): requests on `$sys.cmd.<name>` with typed parameters
//! that the server itself answers — `help`, `status`, `connections`, `kick`, `topics`,
//! `rooms`, `presence`, `history`, `services`, `push`, `reload`. The HTTP API runs the same
//! commands for its listings, so each has one implementation (`run.rs`), whatever edge asked.
//!
//! Each command needs a role: admin identities may run every command; others only those
//! whose entry in `[commands]` (or, unset, the built-in default) lists their role or `*`.

pub(crate) mod run;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use shardbus_protocol::ErrorCode;
use shardbus_protocol::container::Value;

use crate::http::reply::Refusal;

/// The subject prefix of every command.
pub const PREFIX: &[u8] = b"$sys.cmd.";

/// What type a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An unsigned integer (a decimal string too, as a URL query gives it).
    Unsigned,
    /// `true` or `false` (the strings too).
    Bool,
    /// A string.
    Text,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Unsigned => "unsigned integer",
            Kind::Bool => "bool",
            Kind::Text => "string",
        }
    }
}

/// One parameter of a command.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether the command needs it.
    pub required: bool,
    /// What it means.
    pub about: &'static str,
}

/// One command of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// Its name: the last token of its subject.
    pub name: &'static str,
    /// What it does.
    pub about: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// The roles that may run it when `[commands]` says nothing (`*`: every identity).
    pub default_roles: &'static [&'static str],
}

const fn param(name: &'static str, kind: Kind, required: bool, about: &'static str) -> Param {
    Param {
        name,
        kind,
        required,
        about,
    }
}

const PAGE: [Param; 2] = [
    param("offset", Kind::Unsigned, false, "entries to skip"),
    param(
        "limit",
        Kind::Unsigned,
        false,
        "entries to list (100; at most 1000)",
    ),
];

/// Every command, by name.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "connections",
        about: "client connections of every shard, by id",
        params: &PAGE,
        default_roles: &[],
    },
    Command {
        name: "help",
        about: "the commands, their parameters, and the roles that may run them",
        params: &[],
        default_roles: &["*"],
    },
    Command {
        name: "history",
        about: "what a room kept, oldest first",
        params: &[
            param("topic", Kind::Text, true, "the room"),
            param("limit", Kind::Unsigned, false, "at most this many"),
            param("since", Kind::Unsigned, false, "only after this offset"),
            param("epoch", Kind::Unsigned, false, "the epoch `since` is in"),
            param("reverse", Kind::Bool, false, "newest first"),
        ],
        default_roles: &["*"],
    },
    Command {
        name: "kick",
        about: "close a connection with KICKED, on whichever shard has it",
        params: &[
            param("client_id", Kind::Unsigned, true, "the connection"),
            param(
                "node",
                Kind::Text,
                false,
                "the cluster node that has it (default: this one)",
            ),
        ],
        default_roles: &[],
    },
    Command {
        name: "presence",
        about: "a page of a room's members",
        params: &[
            param("room", Kind::Text, true, "the room"),
            param(
                "cursor",
                Kind::Unsigned,
                false,
                "the previous page's cursor",
            ),
            param("limit", Kind::Unsigned, false, "members in the page"),
            param("stats", Kind::Bool, false, "counts only"),
        ],
        default_roles: &["*"],
    },
    Command {
        name: "push",
        about: "a message to every connection of a user (MSG sid 0), carrying the sender in `sb-from`",
        params: &[
            param("user", Kind::Text, true, "the identity to reach"),
            param("text", Kind::Text, true, "the message (UTF-8 text)"),
        ],
        default_roles: &[],
    },
    Command {
        name: "reload",
        about: "read the configuration again and apply what can change live",
        params: &[],
        default_roles: &[],
    },
    Command {
        name: "rooms",
        about: "rooms with members, by name, with their counts",
        params: &PAGE,
        default_roles: &[],
    },
    Command {
        name: "services",
        about: "every service (or one) with its instances and the figures the server measured",
        params: &[param("name", Kind::Text, false, "one service")],
        default_roles: &[],
    },
    Command {
        name: "status",
        about: "the server's counters, per shard and in total",
        params: &[],
        default_roles: &["*"],
    },
    Command {
        name: "topics",
        about: "every subscribed pattern per queue group, with its subscribers",
        params: &[],
        default_roles: &[],
    },
];

/// The command named `name`.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// `[commands]`: for a command, the roles (besides admin) that may run it; `*` is everyone.
/// A command left out keeps its default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandsConfig(pub BTreeMap<String, Vec<String>>);

impl CommandsConfig {
    /// What is wrong, as (key under `commands`, rule).
    pub fn problem(&self, roles: &dyn Fn(&str) -> bool) -> Option<(String, String)> {
        for (name, allowed) in &self.0 {
            if find(name).is_none() {
                return Some((name.clone(), "not a command (`help` lists them)".into()));
            }
            if let Some(role) = allowed.iter().find(|r| *r != "*" && !roles(r)) {
                return Some((name.clone(), format!("{role:?} is not a role")));
            }
        }
        None
    }

    /// The roles that may run `command`.
    pub(crate) fn roles<'a>(&'a self, command: &'a Command) -> Vec<&'a str> {
        match self.0.get(command.name) {
            Some(roles) => roles.iter().map(String::as_str).collect(),
            None => command.default_roles.to_vec(),
        }
    }
}

/// A command's parameters, checked against its catalog entry.
#[derive(Debug, Default)]
pub(crate) struct Params(serde_json::Map<String, Json>);

fn bad(message: String) -> Refusal {
    Refusal::new(ErrorCode::BAD_PARAMETER, message)
}

impl Params {
    /// Checks `given` (a JSON object, or null for none) against `command`'s parameters.
    pub(crate) fn check(command: &Command, given: Json) -> Result<Params, Refusal> {
        let map = match given {
            Json::Null => serde_json::Map::new(),
            Json::Object(map) => map,
            _ => return Err(bad("the parameters are a map".into())),
        };
        for (key, value) in &map {
            let Some(param) = command.params.iter().find(|p| p.name == key) else {
                return Err(bad(format!("{key}: not a parameter of {}", command.name)));
            };
            if !fits(param.kind, value) {
                return Err(bad(format!("{key}: a {}", param.kind.name())));
            }
        }
        if let Some(missing) = command
            .params
            .iter()
            .find(|p| p.required && !map.contains_key(p.name))
        {
            return Err(bad(format!("{}: missing", missing.name)));
        }
        Ok(Params(map))
    }

    /// Parameters from a URL query string (every value a string).
    pub(crate) fn query(query: Option<&str>) -> Json {
        let map = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .map(|(k, v)| (k.to_owned(), Json::String(v.to_owned())))
            .collect();
        Json::Object(map)
    }

    /// Unsigned parameter `name`, if given.
    pub(crate) fn unsigned(&self, name: &str) -> Option<u64> {
        match self.0.get(name)? {
            Json::Number(n) => n.as_u64(),
            Json::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// Bool parameter `name` (false when not given).
    pub(crate) fn flag(&self, name: &str) -> bool {
        match self.0.get(name) {
            Some(Json::Bool(b)) => *b,
            Some(Json::String(s)) => s == "true",
            _ => false,
        }
    }

    /// Text parameter `name`, if given.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name)?.as_str()
    }
}

fn fits(kind: Kind, value: &Json) -> bool {
    match (kind, value) {
        (Kind::Unsigned, Json::Number(n)) => n.is_u64(),
        (Kind::Unsigned, Json::String(s)) => s.parse::<u64>().is_ok(),
        (Kind::Bool, Json::Bool(_)) => true,
        (Kind::Bool, Json::String(s)) => s == "true" || s == "false",
        (Kind::Text, Json::String(_)) => true,
        _ => false,
    }
}

/// The catalog as `help` answers it.
pub(crate) fn help(config: &CommandsConfig) -> Json {
    let commands: Vec<Json> = COMMANDS
        .iter()
        .map(|c| {
            let params: Vec<Json> = c
                .params
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name, "type": p.kind.name(), "required": p.required,
                        "about": p.about,
                    })
                })
                .collect();
            serde_json::json!({
                "name": c.name, "about": c.about, "params": params, "roles": config.roles(c),
            })
        })
        .collect();
    serde_json::json!({ "commands": commands })
}

/// A JSON answer as a container, for the binary protocol's RESP.
pub(crate) fn to_container(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::U64(u),
            (None, Some(i)) => Value::I64(i),
            _ => Value::F64(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(to_container).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), to_container(v)))
                .collect(),
        ),
    }
}

/// A container (a command's parameters from a binary client) as JSON; `Null` for none.
pub(crate) fn to_json(payload: &[u8], container: bool) -> Result<Json, Refusal> {
    if payload.is_empty() {
        return Ok(Json::Null);
    }
    if !container {
        return Err(bad(
            "the parameters are a container map (CONTAINER flag)".into()
        ));
    }
    let limits = shardbus_protocol::container::ContainerLimits {
        max_depth: 8,
        max_size: payload.len(),
    };
    let value = shardbus_protocol::container::view::decode(payload, &limits)
        .map_err(|e| bad(format!("the parameters do not decode: {e}")))?
        .to_owned_value();
    let json = value
        .to_json()
        .map_err(|e| bad(format!("the parameters do not print: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| bad(format!("the parameters: {e}")))
}
