//! Room history in Redis (ARCHITECTURE.md, *History in Redis*): each room a Stream
//! `<prefix>{<room>}:s` beside a hash `<prefix>{<room>}:m` holding its epoch and last offset (the
//! braces keep both in one Redis Cluster slot). Two scripts keep them together: `APPEND` gives
//! the next offset and adds the publication under that id (`<offset>-0`), trimmed to about
//! `history_size` and expiring `history_ttl_ms` after the last; `LOAD` reads the epoch, the last
//! offset and the newest `history_size` publications at once. Redis runs a script alone, so one
//! room has one order whichever nodes write it. A hash with no epoch (new, expired, or lost
//! with a Redis that kept nothing) starts a new epoch from the candidate the node sends; so
//! does `reset`, which the home asks for when the room's history went on in memory meanwhile.

use redis::{FromRedisValue, Pipeline, RedisResult, Script, Value};

use super::{Position, Retention};

/// `KEYS`: meta hash, stream. `ARGV`: candidate epoch, reset (0/1), size, ttl ms (0: none),
/// time ms, flags, headers, payload. Returns `{epoch, offset}`.
const APPEND: &str = r"
if ARGV[2] == '1' or redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'top', 0)
end
local top = redis.call('HINCRBY', KEYS[1], 'top', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], top .. '-0',
  't', ARGV[5], 'f', ARGV[6], 'h', ARGV[7], 'p', ARGV[8])
if ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return {redis.call('HGET', KEYS[1], 'epoch'), top}
";

/// `KEYS`: meta hash, stream. `ARGV`: candidate epoch, reset (0/1), size, ttl ms (0: none).
/// Returns `{epoch, top, entries newest first}`.
const LOAD: &str = r"
if ARGV[2] == '1' or redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'top', 0)
  if ARGV[4] ~= '0' then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
  end
end
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'top')
local entries = {}
if tonumber(ARGV[3]) > 0 then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[3])
end
return {meta[1], meta[2], entries}
";

/// The two scripts, sent by their SHA (loaded on every new connection).
#[derive(Debug)]
pub(crate) struct Scripts {
    append: Script,
    load: Script,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            append: Script::new(APPEND),
            load: Script::new(LOAD),
        }
    }

    /// Loads both scripts into the server (`SCRIPT LOAD`).
    pub(crate) fn load(&self, connection: &mut redis::Connection) -> RedisResult<()> {
        self.append.prepare_invoke().load(connection)?;
        self.load.prepare_invoke().load(connection)?;
        Ok(())
    }
}

/// What a home shard asks Redis of one room.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) room: Box<[u8]>,
    pub(crate) keep: Retention,
    /// Start a new epoch first (the room's history went on in memory meanwhile).
    pub(crate) reset: bool,
    /// The epoch a new history takes.
    pub(crate) epoch: u64,
    pub(crate) kind: RequestKind,
}

/// Which request.
#[derive(Debug)]
pub(crate) enum RequestKind {
    /// Keep a publication (headers without positions, payload) and give it its position.
    Append {
        headers: Vec<u8>,
        payload: Vec<u8>,
        flags: u8,
        /// Milliseconds since the Unix epoch, for the TTL of a later load.
        at_ms: u64,
    },
    /// Read the room's epoch, last offset and kept publications.
    Load,
}

/// What Redis answered.
#[derive(Debug)]
pub(crate) enum Outcome {
    Appended(Position),
    Loaded {
        epoch: u64,
        last: u64,
        /// Oldest first.
        entries: Vec<Entry>,
    },
    /// Redis was unreachable, or refused (the request may or may not have been applied).
    Failed,
}

/// A publication read back from a stream.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub(crate) offset: u64,
    pub(crate) at_ms: u64,
    pub(crate) flags: u8,
    pub(crate) headers: Vec<u8>,
    pub(crate) payload: Vec<u8>,
}

impl Request {
    fn keys(&self, prefix: &str) -> (Vec<u8>, Vec<u8>) {
        let key = |suffix: &[u8]| {
            let mut key = Vec::with_capacity(prefix.len() + self.room.len() + 4);
            key.extend_from_slice(prefix.as_bytes());
            key.push(b'{');
            key.extend_from_slice(&self.room);
            key.push(b'}');
            key.extend_from_slice(suffix);
            key
        };
        (key(b":m"), key(b":s"))
    }

    /// Adds this request's script call to `pipe`.
    pub(crate) fn add_to(&self, pipe: &mut Pipeline, scripts: &Scripts, prefix: &str) {
        let (meta, stream) = self.keys(prefix);
        let ttl_ms = self.keep.ttl.map_or(0, |ttl| ttl.as_millis().max(1) as u64);
        let script = match self.kind {
            RequestKind::Append { .. } => &scripts.append,
            RequestKind::Load => &scripts.load,
        };
        let mut invocation = script.key(meta);
        invocation
            .key(stream)
            .arg(self.epoch)
            .arg(u8::from(self.reset))
            .arg(self.keep.size)
            .arg(ttl_ms);
        if let RequestKind::Append {
            headers,
            payload,
            flags,
            at_ms,
        } = &self.kind
        {
            invocation
                .arg(*at_ms)
                .arg(*flags)
                .arg(headers.as_slice())
                .arg(payload.as_slice());
        }
        pipe.invoke_script(&invocation);
    }

    /// Reads Redis's answer to this request.
    pub(crate) fn outcome(&self, answer: RedisResult<Value>) -> Outcome {
        let Ok(Value::Array(parts)) = answer else {
            return Outcome::Failed;
        };
        let mut parts = parts.into_iter();
        let epoch = parts.next().and_then(|v| u64::from_redis_value(v).ok());
        let top = parts.next().and_then(|v| u64::from_redis_value(v).ok());
        let (Some(epoch), Some(top)) = (epoch, top) else {
            return Outcome::Failed;
        };
        match self.kind {
            RequestKind::Append { .. } => Outcome::Appended(Position { epoch, offset: top }),
            RequestKind::Load => {
                let mut entries: Vec<Entry> = match parts.next() {
                    Some(Value::Array(list)) => list.into_iter().filter_map(entry).collect(),
                    _ => Vec::new(),
                };
                entries.reverse();
                Outcome::Loaded {
                    epoch,
                    last: top,
                    entries,
                }
            }
        }
    }
}

/// One stream entry: `[id, [field, value, ...]]`, its id `<offset>-0`.
fn entry(value: Value) -> Option<Entry> {
    let Value::Array(pair) = value else {
        return None;
    };
    let mut pair = pair.into_iter();
    let id: String = FromRedisValue::from_redis_value(pair.next()?).ok()?;
    let offset = id.split('-').next()?.parse().ok()?;
    let Value::Array(fields) = pair.next()? else {
        return None;
    };
    let mut entry = Entry {
        offset,
        ..Entry::default()
    };
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let name: Vec<u8> = FromRedisValue::from_redis_value(name).ok()?;
        match name.as_slice() {
            b"t" => entry.at_ms = FromRedisValue::from_redis_value(value).ok()?,
            b"f" => entry.flags = FromRedisValue::from_redis_value(value).ok()?,
            b"h" => entry.headers = FromRedisValue::from_redis_value(value).ok()?,
            b"p" => entry.payload = FromRedisValue::from_redis_value(value).ok()?,
            _ => {}
        }
    }
    Some(entry)
}
