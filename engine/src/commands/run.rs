//! Running a command, whichever edge asked: the role check, the parameters, then the one
//! implementation of each (most of them the listings the HTTP edge has always served).

use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value as Json;
use shardbus_protocol::{ErrorCode, RoomFields, RoomFlags};

use super::{Params, find, help};
use crate::auth::Identity;
use crate::http::reply::Refusal;
use crate::http::{listings, rooms, services};
use crate::metrics::Metric;
use crate::shard::Shard;

/// Entries a page holds when the parameters name no `limit`.
const DEFAULT_PAGE: u64 = 100;
/// The most a page may hold.
const MAX_PAGE: u64 = 1_000;

/// Runs command `name` for `identity` with parameters `given` (a JSON object, or null).
///
/// # Errors
/// `UNKNOWN_COMMAND`, `PERMISSION_DENIED` (the identity's role may not run it),
/// `BAD_PARAMETER` (naming the parameter), or the command's own refusal.
pub(crate) async fn run(
    shard: &Rc<Shard>,
    identity: &Arc<Identity>,
    name: &str,
    given: Json,
) -> Result<Json, Refusal> {
    let outcome = run_checked(shard, identity, name, given).await;
    let metric = if outcome.is_ok() {
        Metric::CommandsRun
    } else {
        Metric::CommandsRefused
    };
    shard.metrics.add(metric, 1);
    outcome
}

async fn run_checked(
    shard: &Rc<Shard>,
    identity: &Arc<Identity>,
    name: &str,
    given: Json,
) -> Result<Json, Refusal> {
    let command = find(name).ok_or_else(|| {
        Refusal::new(
            ErrorCode::UNKNOWN_COMMAND,
            format!("no command {name:?} (`help` lists them)"),
        )
    })?;
    let config = &shard.settings.commands;
    let roles = config.roles(command);
    let allowed =
        identity.permissions.admin || roles.iter().any(|r| *r == "*" || *r == &*identity.role);
    if !allowed {
        return Err(Refusal::new(
            ErrorCode::PERMISSION_DENIED,
            format!("the role {:?} may not run {name}", identity.role),
        ));
    }
    let params = Params::check(command, given)?;
    let page = || {
        let offset = params.unsigned("offset").unwrap_or(0);
        let limit = params
            .unsigned("limit")
            .unwrap_or(DEFAULT_PAGE)
            .clamp(1, MAX_PAGE);
        (
            usize::try_from(offset).unwrap_or(usize::MAX),
            usize::try_from(limit).unwrap_or(1),
        )
    };
    let u32_of = |name: &str| {
        params.unsigned(name).map_or(Ok(0), |n| {
            u32::try_from(n)
                .map_err(|_| Refusal::new(ErrorCode::BAD_PARAMETER, format!("{name}: too large")))
        })
    };
    match command.name {
        "help" => Ok(help(config)),
        "status" => {
            let status = crate::shard::status_value(&shard.shared, shard.id);
            Ok(crate::shard::service_listing::container_to_json(&status))
        }
        "connections" => {
            let (offset, limit) = page();
            Ok(listings::connections(shard, offset, limit).await)
        }
        "kick" => {
            let id = params.unsigned("client_id").unwrap_or(0);
            listings::kick(shard, id, params.text("node")).await
        }
        "topics" => Ok(listings::topics(shard).await),
        "rooms" => {
            let (offset, limit) = page();
            Ok(rooms::list(shard, offset, limit).await)
        }
        "presence" => {
            let fields = RoomFields {
                offset: params.unsigned("cursor").unwrap_or(0),
                count: u32_of("limit")?,
                flags: if params.flag("stats") {
                    RoomFlags::STATS_ONLY
                } else {
                    RoomFlags::default()
                },
                ..RoomFields::default()
            };
            let room = params.text("room").unwrap_or("");
            rooms::presence(shard, Arc::clone(identity), room, fields).await
        }
        "history" => {
            let mut fields = RoomFields {
                count: u32_of("limit")?,
                epoch: params.unsigned("epoch").unwrap_or(0),
                ..RoomFields::default()
            };
            if let Some(since) = params.unsigned("since") {
                fields.offset = since;
                fields.flags = fields.flags.with(RoomFlags::FROM_POSITION);
            }
            if params.flag("reverse") {
                fields.flags = fields.flags.with(RoomFlags::REVERSE);
            }
            let topic = params.text("topic").unwrap_or("");
            let max_body = shard.settings.limits.max_payload as usize;
            rooms::history(shard, max_body, Arc::clone(identity), topic, fields).await
        }
        "services" => match params.text("name") {
            Some(name) => services::one(shard, name).await,
            None => Ok(services::list(shard).await),
        },
        "push" => {
            let user = params.text("user").unwrap_or("");
            let text = params.text("text").unwrap_or("");
            push(shard, identity, user, text).await
        }
        "reload" => reload(shard).await,
        _ => Err(Refusal::new(ErrorCode::UNKNOWN_COMMAND, "not implemented")),
    }
}

/// Reads the configuration again (off the shard's thread: it reads a file).
async fn reload(shard: &Shard) -> Result<Json, Refusal> {
    let Some(reloader) = shard.shared.reloader() else {
        return Err(Refusal::new(
            ErrorCode::UNKNOWN_OP,
            "this server was not started from a configuration it can read again",
        ));
    };
    match glommio::executor()
        .spawn_blocking(move || reloader.reload())
        .await
    {
        Ok(changed) => Ok(serde_json::json!({ "reloaded": true, "changed": changed })),
        Err(error) => Err(Refusal::new(ErrorCode::BAD_PAYLOAD, error)),
    }
}

/// Pushes `text` to every connection of `user` on every shard (and node), as MSG sid 0 on
/// `$user.<user>` with the caller's identity in `sb-from`: the server says who sent it, so a
/// receiver can trust it (a direct message in a chat, say).
async fn push(shard: &Shard, identity: &Identity, user: &str, text: &str) -> Result<Json, Refusal> {
    let limits = &shard.settings.limits;
    if text.len() > limits.max_payload as usize {
        return Err(Refusal::new(
            ErrorCode::PAYLOAD_TOO_LARGE,
            format!("text: over max_payload ({} bytes)", limits.max_payload),
        ));
    }
    let subject = format!("$user.{user}");
    shardbus_protocol::topic::validate_subject(
        subject.as_bytes(),
        usize::from(limits.max_topic_len),
    )
    .map_err(|e| Refusal::new(ErrorCode::BAD_PARAMETER, format!("user: {e}")))?;
    let mut headers = shardbus_protocol::HeadersBuilder::new();
    headers
        .insert("sb-from", &identity.name)
        .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
    let push = crate::shard::users::Push {
        user,
        subject: subject.as_bytes(),
        headers: headers.as_bytes(),
        payload: text.as_bytes(),
        flags: 0,
    };
    let recipients = shard.push_everywhere(push).await;
    Ok(serde_json::json!({ "recipients": recipients }))
}
