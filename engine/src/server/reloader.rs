//! Reloading the configuration while the broker runs (SIGHUP, `POST /api/v1/reload`): the
//! layers are read again exactly as at start (file, `SHARDBUS_*`, flags), the result must
//! validate — a configuration that does not is refused with the key it names and the running
//! one stays — and what can change live is handed to the shards (`Shared::publish_reload`):
//! tokens, users, JWT rules, roles and permissions, anonymous access, rate limits, the log
//! level. Anything else that differs is reported as needing a restart.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{Reload, Shared};
use crate::config::{self, Cli, Config};

/// Reloads for one running server.
#[derive(Debug)]
pub struct Reloader {
    cli: Cli,
    current: Mutex<Config>,
    shared: Arc<Shared>,
}

impl Reloader {
    /// A reloader for the server `shared` belongs to, started from `config` built from `cli`.
    pub fn new(cli: Cli, config: Config, shared: Arc<Shared>) -> Reloader {
        Reloader {
            cli,
            current: Mutex::new(config),
            shared,
        }
    }

    /// Reads the configuration again and applies what can change live. Answers what changed.
    ///
    /// # Errors
    /// The new configuration does not load or validate (the message names the key), or its
    /// `[auth]` section cannot be used; nothing was applied.
    pub fn reload(&self) -> Result<Value, String> {
        let outcome = self.try_reload();
        self.shared
            .count_reload(outcome.as_ref().err().map(String::as_str));
        match &outcome {
            Ok(changed) => tracing::info!(%changed, "configuration reloaded"),
            Err(error) => {
                tracing::error!(%error, "configuration reload refused; the running configuration stays")
            }
        }
        outcome
    }

    fn try_reload(&self) -> Result<Value, String> {
        let next = config::load(&self.cli, std::env::vars()).map_err(|e| e.to_string())?;
        let mut reload = Reload::from_config(&next).map_err(|e| e.to_string())?;
        let mut current = self
            .current
            .lock()
            .map_err(|_| "reload state poisoned".to_owned())?;
        let changed = changes(&current, &next);
        reload.changed = changed.clone();
        if next.log_level != current.log_level {
            crate::logging::set_level(&next.log_level)?;
        }
        self.shared.publish_reload(reload);
        *current = next;
        Ok(changed)
    }
}

/// The top-level sections a reload applies live.
const LIVE: [&str; 5] = ["auth", "rate_limits", "log_level", "rooms", "services"];

/// What differs between `old` and `new`: names added and removed for tokens and users, the
/// roles and auth settings that changed, and the top-level sections that need a restart.
fn changes(old: &Config, new: &Config) -> Value {
    let names = |c: &Config, users: bool| -> Vec<String> {
        if users {
            c.auth.users.iter().map(|u| u.name.clone()).collect()
        } else {
            c.auth.tokens.iter().map(|t| t.name.clone()).collect()
        }
    };
    let diff = |users: bool| {
        let (before, after) = (names(old, users), names(new, users));
        json!({
            "added": after.iter().filter(|n| !before.contains(n)).collect::<Vec<_>>(),
            "removed": before.iter().filter(|n| !after.contains(n)).collect::<Vec<_>>(),
        })
    };
    let roles: Vec<&String> = new
        .auth
        .roles
        .iter()
        .filter(|(name, p)| old.auth.roles.get(*name) != Some(*p))
        .map(|(name, _)| name)
        .chain(
            old.auth
                .roles
                .keys()
                .filter(|n| !new.auth.roles.contains_key(*n)),
        )
        .collect();
    let (old_value, new_value) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(new).unwrap_or_default(),
    );
    let needs_restart: Vec<&String> = new_value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, value)| {
            !LIVE.contains(&key.as_str()) && old_value.get(key.as_str()) != Some(*value)
        })
        .map(|(key, _)| key)
        .collect();
    json!({
        "tokens": diff(false),
        "users": diff(true),
        "roles_changed": roles,
        "anonymous": new.auth.anonymous != old.auth.anonymous
            || new.auth.anonymous_role != old.auth.anonymous_role,
        "jwt": new.auth.jwt != old.auth.jwt,
        "rate_limits": new.rate_limits != old.rate_limits,
        "log_level": new.log_level != old.log_level,
        "rooms": new.rooms != old.rooms,
        "services": new.services != old.services,
        "needs_restart": needs_restart,
    })
}
