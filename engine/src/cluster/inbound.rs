//! `cluster-in`: the subscription to this node's channel (batches of publications from other
//! nodes, each handed whole to one shard, the same shard for everything one origin shard sends,
//! so their order holds) and to the cluster channel (interest changes, heartbeats, goodbyes,
//! handed to `cluster-out`). A broken subscription is made again with backoff, and
//! `cluster-out` is told: it may have missed changes, so it reads every node again. While the
//! shards have more than `MAX_QUEUED_BYTES` of batches not yet taken, it stops reading.

use std::time::Duration;

use redis::Client;

use super::nodes::Key;
use super::outbound::Settings;
use super::{Cluster, ToShard, wire};
use crate::routing::ShardId;

/// How long a read waits before looking whether the node is stopping.
const READ_TICK: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What was heard on the cluster channel.
#[derive(Debug)]
pub(crate) enum Heard {
    Change {
        node: Box<str>,
        incarnation: u64,
        seq: u64,
        gained: bool,
        key: Key,
    },
    Heartbeat {
        node: Box<str>,
        incarnation: u64,
        seq: u64,
    },
    Bye {
        node: Box<str>,
    },
    /// The subscription was (re)made: anything may have been missed.
    Resubscribed,
}

/// Reads a cluster channel message: `+`/`-` node incarnation seq pattern [queue],
/// `hb` node incarnation seq, `bye` node. `None`: not one of those (ignored).
pub(crate) fn parse(text: &[u8]) -> Option<Heard> {
    let text = std::str::from_utf8(text).ok()?;
    let mut words = text.split(' ');
    let kind = words.next()?;
    let node: Box<str> = words.next()?.into();
    if kind == "bye" {
        return Some(Heard::Bye { node });
    }
    let incarnation = words.next()?.parse().ok()?;
    let seq = words.next()?.parse().ok()?;
    if kind == "hb" {
        return Some(Heard::Heartbeat {
            node,
            incarnation,
            seq,
        });
    }
    let gained = match kind {
        "+" => true,
        "-" => false,
        _ => return None,
    };
    let key = field_key(words.next()?, words.next())?;
    Some(Heard::Change {
        node,
        incarnation,
        seq,
        gained,
        key,
    })
}

/// A pattern and optional queue group as another node wrote them, checked as a SUB's would be.
pub(super) fn field_key(pattern: &str, queue: Option<&str>) -> Option<Key> {
    shardbus_protocol::topic::validate_pattern(pattern.as_bytes(), usize::from(u16::MAX)).ok()?;
    let queue = queue.filter(|q| !q.is_empty());
    if let Some(queue) = queue
        && shardbus_protocol::topic::validate_queue_group(queue.as_bytes(), 255).is_err()
    {
        return None;
    }
    Some((pattern.as_bytes().into(), queue.map(Into::into)))
}

pub(super) fn run(cluster: &Cluster, client: &Client, settings: &Settings) {
    let mut backoff = Duration::from_millis(50);
    while !cluster.stopping() {
        if let Err(error) = listen(cluster, client, settings) {
            tracing::debug!(%error, "cluster subscription lost");
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        } else {
            backoff = Duration::from_millis(50);
        }
    }
}

fn listen(cluster: &Cluster, client: &Client, settings: &Settings) -> redis::RedisResult<()> {
    let mut connection = client.get_connection_with_timeout(settings.timeout)?;
    let mut pubsub = connection.as_pubsub();
    pubsub.set_read_timeout(Some(READ_TICK))?;
    let own = settings.node_channel(cluster.node());
    pubsub.subscribe(&[settings.cluster_channel.as_str(), own.as_str()])?;
    cluster.heard.push(Heard::Resubscribed);
    cluster.wake_out();
    while !cluster.stopping() {
        let message = match pubsub.get_message() {
            Ok(message) => message,
            Err(error) if error.is_timeout() => continue,
            Err(error) => return Err(error),
        };
        let bytes = message.get_payload_bytes();
        if message.get_channel_name() == own {
            if let Some(shard) = target_shard(bytes, cluster.inboxes.len()) {
                // A shard far behind holds up the subscription, not memory: Redis then buffers
                // for this node, within its own output-buffer limit for subscribers.
                while cluster.inbound_backed_up() && !cluster.stopping() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                cluster.inbound_bytes(bytes.len() as isize);
                cluster.to_shard(shard, ToShard::Batch(bytes.to_vec()));
            }
        } else if let Some(heard) = parse(bytes) {
            cluster.heard.push(heard);
            cluster.wake_out();
        }
    }
    Ok(())
}

/// The shard that takes a batch: fixed per origin (node and shard), so one origin's
/// publications stay in order.
fn target_shard(batch: &[u8], shards: usize) -> Option<ShardId> {
    let (origin, _) = wire::batch_origin(batch)?;
    let mut hash: u32 = 0x811c_9dc5;
    for &b in origin.bytes {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    Some((hash as usize % shards.max(1)) as ShardId)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn channel_messages_parse_and_bad_ones_are_ignored() {
        match parse(b"+ east 7 12 orders.* workers").unwrap() {
            Heard::Change {
                node,
                incarnation,
                seq,
                gained,
                key,
            } => {
                assert_eq!((&*node, incarnation, seq, gained), ("east", 7, 12, true));
                assert_eq!(key, (b"orders.*".as_slice().into(), Some("workers".into())));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(b"hb west 1 3"),
            Some(Heard::Heartbeat { seq: 3, .. })
        ));
        assert!(matches!(parse(b"bye west"), Some(Heard::Bye { .. })));
        for bad in [
            &b"+ east 7 x a.b"[..],
            b"+ east 7 1 a..b",
            b"? east 1 1 a",
            b"hb",
            b"\xff",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
