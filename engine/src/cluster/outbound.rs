//! `cluster-out`: this node's side of the cluster. It counts the shards' interest changes into
//! the node's own interest and announces each node-level flip (a script that updates the node's
//! interest hash, numbers the change and publishes it, all at once); it routes the shards'
//! publications to the nodes that want them, one `PUBLISH` per node per round; it sends the
//! heartbeat, reads a node's whole interest when it is new or a change was missed, forgets
//! silent nodes, and tells the shards every change of the other nodes' interest.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis::{Client, Connection, RedisResult, Script};

use super::inbound::{Heard, field_key};
use super::nodes::{Key, Nodes, Pick, Verdict};
use super::{Cluster, ClusterConfig, wire};
use crate::bridge::RedisConfig;
use crate::fast_map::FastMap;
use crate::mesh::batch::{Batch, Record as MeshRecord};
use crate::routing::InterestChange;

const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// `KEYS[1]`: the node's interest hash. `ARGV`: node, `+`/`-`, field, ttl ms, channel,
/// incarnation. Returns the change's number.
const CHANGE: &str = r"
if ARGV[2] == '+' then redis.call('HSET', KEYS[1], ARGV[3], 1) else redis.call('HDEL', KEYS[1], ARGV[3]) end
local seq = redis.call('HINCRBY', KEYS[1], '~seq', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. ARGV[6] .. ' ' .. seq .. ' ' .. ARGV[3])
return seq
";

/// `KEYS[1]`: the node's interest hash. `ARGV`: node, ttl ms, channel, incarnation.
const HEARTBEAT: &str = r"
local seq = redis.call('HINCRBY', KEYS[1], '~seq', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'hb ' .. ARGV[1] .. ' ' .. ARGV[4] .. ' ' .. seq)
return seq
";

/// What both threads need of `[cluster]` and `[redis]`.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) timeout: Duration,
    prefix: String,
    heartbeat: Duration,
    node_timeout: Duration,
    pub(super) cluster_channel: String,
}

impl Settings {
    pub(super) fn new(config: &ClusterConfig, redis: &RedisConfig) -> Settings {
        Settings {
            timeout: Duration::from_millis(redis.timeout_ms),
            prefix: redis.key_prefix.clone(),
            heartbeat: Duration::from_millis(config.heartbeat_ms),
            node_timeout: Duration::from_millis(config.node_timeout_ms),
            cluster_channel: format!("{}cluster", redis.key_prefix),
        }
    }

    /// The channel a node receives publications on.
    pub(super) fn node_channel(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }

    fn interest_key(&self, node: &str) -> String {
        format!("{}node:{node}:interest", self.prefix)
    }
}

/// The thread's state across connections.
struct State {
    /// This node's interest: per key, the shards' flips (plain) or members (groups).
    own: FastMap<Key, u32>,
    nodes: Nodes,
    picks: Vec<Pick>,
    /// Per destination node index and origin shard, the batch being built this round (one
    /// origin shard's records stay in one batch, which one shard of the receiver takes in order).
    out: FastMap<(u32, u16), Vec<u8>>,
    changes: Vec<InterestChange>,
    /// Records put in this round's batches.
    records_out: u64,
    /// A publication's group names for one node, reused.
    groups: Vec<u8>,
    change: Script,
    heartbeat: Script,
}

pub(super) fn run(cluster: &Cluster, client: &Client, settings: &Settings) {
    let mut state = State {
        own: FastMap::default(),
        nodes: Nodes::new(cluster.remote),
        picks: Vec::new(),
        out: FastMap::default(),
        changes: Vec::new(),
        records_out: 0,
        groups: Vec::new(),
        change: Script::new(CHANGE),
        heartbeat: Script::new(HEARTBEAT),
    };
    let mut backoff = Duration::from_millis(50);
    // Logged once per outage, not per attempt.
    let mut reachable = true;
    while !cluster.stopping() {
        let served = client
            .get_connection_with_timeout(settings.timeout)
            .and_then(|mut connection| {
                connection.set_read_timeout(Some(settings.timeout))?;
                connection.set_write_timeout(Some(settings.timeout))?;
                serve(cluster, &mut connection, settings, &mut state)
            });
        let was_connected = cluster.connected.swap(false, Ordering::AcqRel);
        if was_connected {
            backoff = Duration::from_millis(50);
            reachable = true;
        }
        if let Err(error) = served
            && std::mem::replace(&mut reachable, false)
        {
            tracing::warn!(%error, "cluster: redis unreachable; other nodes are out of reach");
        }
        // Away: keep counting the shards' interest (it is announced again on reconnecting);
        // their publications to other nodes cannot go anywhere.
        let retry_at = Instant::now() + backoff;
        while !cluster.stopping() && Instant::now() < retry_at {
            take_shards_records(cluster, settings, &mut state, None);
            cluster.lost.fetch_add(state.records_out, Ordering::Relaxed);
            state.records_out = 0;
            state.out.clear();
            std::thread::park_timeout(retry_at.saturating_duration_since(Instant::now()));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    if let Ok(mut connection) = client.get_connection_with_timeout(settings.timeout) {
        let _: RedisResult<()> = redis::cmd("PUBLISH")
            .arg(&settings.cluster_channel)
            .arg(format!("bye {}", cluster.node()))
            .query(&mut connection);
        let _: RedisResult<()> = redis::cmd("DEL")
            .arg(settings.interest_key(cluster.node()))
            .query(&mut connection);
    }
}

fn serve(
    cluster: &Cluster,
    connection: &mut Connection,
    settings: &Settings,
    state: &mut State,
) -> RedisResult<()> {
    // A new incarnation: the node's interest hash starts over with what it has now, and the
    // others read it again when they hear the new number.
    let incarnation = {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish() >> 1
    };
    state.change.prepare_invoke().load(connection)?;
    state.heartbeat.prepare_invoke().load(connection)?;
    let own_key = settings.interest_key(cluster.node());
    let mut pipe = redis::pipe();
    pipe.cmd("DEL").arg(&own_key).ignore();
    pipe.cmd("HSET")
        .arg(&own_key)
        .arg("~inc")
        .arg(incarnation)
        .ignore();
    for key in state.own.keys() {
        announce(&mut pipe, state, settings, cluster, incarnation, key, true);
    }
    pipe.query::<()>(connection)?;
    cluster.connected.store(true, Ordering::Release);
    tracing::info!(node = cluster.node(), "cluster: joined through redis");
    let mut next_heartbeat = Instant::now();
    loop {
        if cluster.stopping() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let mut busy =
            take_shards_records(cluster, settings, state, Some((&mut pipe, incarnation)));
        while let Some(heard) = cluster.heard.pop() {
            busy = true;
            hear(cluster, connection, settings, state, heard)?;
        }
        let now = Instant::now();
        if now >= next_heartbeat {
            next_heartbeat = now + settings.heartbeat;
            pipe.invoke_script(
                state
                    .heartbeat
                    .key(&own_key)
                    .arg(cluster.node())
                    .arg(settings.node_timeout.as_millis() as u64)
                    .arg(&settings.cluster_channel)
                    .arg(incarnation),
            );
            for node in state.nodes.silent(now, settings.node_timeout) {
                tracing::info!(node = %node, "cluster: node silent, its interest dropped");
                state.nodes.forget(&node, &mut state.changes);
            }
            if let Ok(mut view) = cluster.view.lock() {
                *view = state.nodes.view(now);
            }
        }
        cluster.sent.fetch_add(state.records_out, Ordering::Relaxed);
        state.records_out = 0;
        for ((index, _), batch) in state.out.drain() {
            if let Some(name) = state.nodes.name(index) {
                pipe.cmd("PUBLISH")
                    .arg(settings.node_channel(name))
                    .arg(batch)
                    .ignore();
            }
        }
        for change in state.changes.drain(..) {
            cluster.to_every_shard(&change);
        }
        for (node, came) in state.nodes.notices.drain(..) {
            cluster.node_noticed(&node, came);
        }
        if !pipe.is_empty() {
            pipe.query::<redis::Value>(connection)?;
        }
        if !busy {
            let until_heartbeat = next_heartbeat.saturating_duration_since(Instant::now());
            std::thread::park_timeout(until_heartbeat);
        }
    }
}

/// Takes everything the shards handed over: interest changes counted into the node's own
/// interest (each node-level flip announced through `pipe`, when connected), publications and
/// requests routed into the per-node batches, node-addressed records to their node. Returns
/// whether there was any.
fn take_shards_records(
    cluster: &Cluster,
    settings: &Settings,
    state: &mut State,
    mut pipe: Option<(&mut redis::Pipeline, u64)>,
) -> bool {
    let mut any = false;
    while let Some((shard, item)) = cluster.uplink.pop() {
        any = true;
        match &item {
            super::Uplink::Batch(batch) => {
                for record in batch.records() {
                    take_link_record(cluster, settings, state, &mut pipe, shard, batch, record);
                }
            }
            super::Uplink::Records(records) => {
                for record in wire::Records::new(records) {
                    take_addressed(cluster, state, shard, record);
                }
            }
        }
        cluster.recycle(shard, item);
    }
    any
}

/// One record of a shard's cluster link: what a forward to another shard would carry.
fn take_link_record(
    cluster: &Cluster,
    settings: &Settings,
    state: &mut State,
    pipe: &mut Option<(&mut redis::Pipeline, u64)>,
    shard: u16,
    batch: &Batch,
    record: &MeshRecord,
) {
    match record {
        MeshRecord::Interest(change) => {
            let key: Key = (change.pattern.clone(), change.queue.clone());
            if own_flip(&mut state.own, &key, change.gained)
                && let Some((pipe, incarnation)) = pipe.as_mut()
            {
                announce(
                    pipe,
                    state,
                    settings,
                    cluster,
                    *incarnation,
                    &key,
                    change.gained,
                );
            }
        }
        MeshRecord::Deliver { msg, plain, groups } => {
            let message = wire::Message::in_batch(batch, msg, *plain, *groups);
            route(cluster, state, shard, &message);
        }
        MeshRecord::Request {
            msg,
            token,
            timeout_ms,
        } => {
            let request = wire::Request {
                subject: batch.get(msg.subject),
                headers: batch.get(msg.headers),
                payload: batch.get(msg.payload),
                flags: msg.flags,
                token: *token,
                timeout_ms: *timeout_ms,
            };
            if let Some(node) = state.nodes.pick_responder(request.subject) {
                wire::put_request(batch_for(cluster, state, node, shard), &request);
            }
        }
        // The rest (a requester's `ReplyEnded`, events) has no meaning for other nodes.
        _ => {}
    }
}

/// One node-addressed record of a shard: to its node, or to every node (a node ask).
fn take_addressed(cluster: &Cluster, state: &mut State, shard: u16, record: wire::Record<'_>) {
    match record {
        wire::Record::NodeAsk { id, kind, body } => {
            let nodes = state.nodes.indexes();
            for &node in &nodes {
                wire::put_node_ask(batch_for(cluster, state, node, shard), id, kind, body);
            }
            cluster.to_shard(
                shard,
                super::ToShard::Asked {
                    id,
                    nodes: nodes.len(),
                },
            );
        }
        wire::Record::NodeAnswer { node, id, body } => {
            if let Some(node) = state.nodes.index_of(node) {
                wire::put_node_answer(batch_for(cluster, state, node, shard), &[], id, body);
            }
        }
        wire::Record::Response(response) => {
            // A node that is gone takes nothing: its requester timed out or left.
            if let Some(node) = state.nodes.index_of(response.node) {
                let response = wire::Response {
                    node: &[],
                    ..response
                };
                wire::put_response(batch_for(cluster, state, node, shard), &response);
            }
        }
        wire::Record::RoomMember {
            joined,
            room,
            member,
        } => {
            for node in state.nodes.indexes() {
                let out = batch_for(cluster, state, node, shard);
                wire::put_room_member(out, joined, room, &member);
            }
        }
        wire::Record::RoomRoster {
            node,
            room,
            members,
        } => {
            if let Some(node) = state.nodes.index_of(node) {
                let out = batch_for(cluster, state, node, shard);
                wire::put_room_roster(out, &[], room, wire::roster_members(members));
            }
        }
        wire::Record::Message(_) | wire::Record::Request(_) => {}
    }
}

/// Counts a shard's change into the node's interest; true when the node's interest flipped.
fn own_flip(own: &mut FastMap<Key, u32>, key: &Key, gained: bool) -> bool {
    if gained {
        let count = own.entry(key.clone()).or_insert(0);
        *count += 1;
        *count == 1
    } else {
        let Some(count) = own.get_mut(key) else {
            return false;
        };
        *count -= 1;
        if *count == 0 {
            own.remove(key);
            return true;
        }
        false
    }
}

fn announce(
    pipe: &mut redis::Pipeline,
    state: &State,
    settings: &Settings,
    cluster: &Cluster,
    incarnation: u64,
    (pattern, queue): &Key,
    gained: bool,
) {
    let mut field = String::from_utf8_lossy(pattern).into_owned();
    if let Some(queue) = queue {
        field.push(' ');
        field.push_str(queue);
    }
    pipe.invoke_script(
        state
            .change
            .key(settings.interest_key(cluster.node()))
            .arg(cluster.node())
            .arg(if gained { "+" } else { "-" })
            .arg(field)
            .arg(settings.node_timeout.as_millis() as u64)
            .arg(&settings.cluster_channel)
            .arg(incarnation),
    );
    pipe.ignore();
}

/// The batch being built for `node` this round, started with its header, for one more record.
fn batch_for<'a>(
    cluster: &Cluster,
    state: &'a mut State,
    node: u32,
    shard: u16,
) -> &'a mut Vec<u8> {
    state.records_out += 1;
    let batch = state.out.entry((node, shard)).or_default();
    if batch.is_empty() {
        wire::put_batch_header(batch, cluster.node(), shard);
    }
    batch
}

/// Adds a shard's publication to the batch of every node it goes to.
fn route(cluster: &Cluster, state: &mut State, shard: u16, message: &wire::Message<'_>) {
    let mut picks = std::mem::take(&mut state.picks);
    let matches = state
        .nodes
        .route(message.subject, message.plain, message.groups, &mut picks);
    let mut groups = std::mem::take(&mut state.groups);
    for pick in &picks {
        groups.clear();
        for &at in &pick.groups {
            if let Some((name, _)) = matches.queues.get(usize::from(at)) {
                if !groups.is_empty() {
                    groups.push(b' ');
                }
                groups.extend_from_slice(name.as_bytes());
            }
        }
        let out = wire::Message {
            plain: pick.plain,
            groups: &groups,
            ..*message
        };
        wire::put_message(batch_for(cluster, state, pick.node, shard), &out);
    }
    state.groups = groups;
    state.picks = picks;
}

/// Takes what `cluster-in` heard: changes applied in order, a node read whole when it is new
/// or a change was missed, a goodbye, or a new subscription (every node read again).
fn hear(
    cluster: &Cluster,
    connection: &mut Connection,
    settings: &Settings,
    state: &mut State,
    heard: Heard,
) -> RedisResult<()> {
    let now = Instant::now();
    let (node, incarnation, seq, change) = match heard {
        Heard::Resubscribed => {
            for view in state.nodes.view(now) {
                state.nodes.forget(&view.node, &mut state.changes);
            }
            return Ok(());
        }
        Heard::Bye { node } => {
            state.nodes.forget(&node, &mut state.changes);
            return Ok(());
        }
        Heard::Heartbeat {
            node,
            incarnation,
            seq,
        } => (node, incarnation, seq, None),
        Heard::Change {
            node,
            incarnation,
            seq,
            gained,
            key,
        } => (node, incarnation, seq, Some((gained, key))),
    };
    if &*node == cluster.node() {
        return Ok(());
    }
    match state
        .nodes
        .verdict(&node, incarnation, seq, change.is_some(), now)
    {
        Verdict::Stale => {}
        Verdict::Apply => {
            if let Some((gained, key)) = change {
                state
                    .nodes
                    .apply(&node, seq, gained, key, &mut state.changes);
            }
        }
        Verdict::Resync => {
            let fields: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(settings.interest_key(&node))
                .query(connection)?;
            let mut read_seq = 0;
            let mut read_incarnation = None;
            let mut keys = Vec::new();
            for (field, value) in &fields {
                match field.as_str() {
                    "~seq" => read_seq = value.parse().unwrap_or(0),
                    "~inc" => read_incarnation = value.parse().ok(),
                    _ => {
                        let mut words = field.splitn(2, ' ');
                        let pattern = words.next().unwrap_or_default();
                        keys.extend(field_key(pattern, words.next()));
                    }
                }
            }
            match read_incarnation {
                // Gone already (its hash expired or it said goodbye).
                None => state.nodes.forget(&node, &mut state.changes),
                Some(read) => {
                    state
                        .nodes
                        .replace(&node, read, read_seq, keys, now, &mut state.changes);
                }
            }
        }
    }
    Ok(())
}
