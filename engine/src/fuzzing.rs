//! Entry points for the fuzz targets (`engine/fuzz`) and their corpus replay
//! (`engine/tests/fuzz_corpus.rs`): the edges that take untrusted input, without a socket —
//! HELLO's credentials, the WebSocket JSON mapping, routing histories with deep topics, a
//! connection's input in arbitrary pieces, and what comes back from Redis (another node's
//! batches and channel messages, a script's answers). Not part of the engine's API.

use std::sync::OnceLock;

use shardbus_protocol::{Fields, Limits, decode, next_frame};

use crate::auth::{AuthConfig, Authenticator, TokenConfig};

/// A token the fuzzing authenticator accepts (its SHA-256 is configured below).
pub const FUZZ_TOKEN: &str = "fuzz-token";

fn authenticator() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        let mut config = AuthConfig {
            anonymous: false,
            ..AuthConfig::default()
        };
        config.tokens.push(TokenConfig {
            name: "fuzz".into(),
            // sha256("fuzz-token")
            sha256: "33cc09ba35314d19e32ed9a5a30fca56eebbfab5faec7247fd0403cd26e155b5".into(),
            role: "user".into(),
            permissions: None,
        });
        config.jwt.hs256_secret = Some("fuzz secret".into());
        // A configuration written here is valid; if it were not, nothing could be fuzzed.
        Authenticator::new(&config).unwrap_or_else(|_| std::process::abort())
    })
}

/// How `hello_auth` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// No identity.
    Nothing,
    /// The configured token's identity.
    Token,
    /// A JWT's identity (signed with the fuzzing secret, which the fuzzer cannot forge).
    Jwt,
}

/// Treats `data` as the first bytes of a connection: if they hold a HELLO, authenticates its
/// headers as the server would (passwords aside: argon2 is too slow to fuzz).
pub fn hello_auth(data: &[u8]) -> Granted {
    let limits = Limits::default();
    let Ok(Some((frame, _))) = next_frame(data, &limits) else {
        return Granted::Nothing;
    };
    let Fields::Hello { .. } = frame.fields else {
        return Granted::Nothing;
    };
    match authenticator().authenticate(&frame.headers) {
        Ok(identity) if &*identity.name == "fuzz" => Granted::Token,
        Ok(_) => Granted::Jwt,
        Err(_) => Granted::Nothing,
    }
}

/// Runs `text` through the WebSocket JSON mapping: a message the mapping accepts must become
/// a well-formed frame — one the decoder takes, or refuses only for its content with a code
/// that keeps the connection (an empty topic is `INVALID_TOPIC`, as from a binary client);
/// then the bytes are rendered back as a server frame would be.
///
/// # Panics
/// When the mapping produced a malformed frame: the invariant the fuzzer checks.
pub fn json_mapping(text: &[u8]) {
    let limits = Limits::default();
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let mut frame = Vec::new();
    if crate::ws::json::frame_from_json(text, &limits, &mut frame).is_ok() {
        if let Err(error) = decode(&frame, &limits) {
            assert!(
                !error.code().closes_connection(),
                "the JSON mapping produced a malformed frame: {error}"
            );
        }
        let _ = crate::ws::json::json_from_frame(&frame, &limits);
    }
    let _ = crate::ws::json::json_from_frame(text.as_bytes(), &limits);
}

/// The most tokens the routing fuzzer's topics have: the largest `max_topic_tokens` a server
/// accepts, so the deepest trie any input can build is walked.
const FUZZ_MAX_TOKENS: usize = shardbus_protocol::MAX_TOPIC_TOKENS_CEILING as usize;

/// Runs `data` as a history of subscribe, unsubscribe and publish operations on the routing
/// trie, topics up to the deepest a server allows (short tokens, deep paths: `a.*.b.>`), and
/// checks every publish's answer against the reference matcher (`topic::matches`). Inputs
/// are read as: op byte, then a topic as (depth byte × token byte) — so a few bytes make a
/// topic hundreds of tokens deep.
///
/// # Panics
/// When the trie and the reference disagree, or a removal fails to find what was inserted.
pub fn routing_ops(data: &[u8]) {
    use crate::routing::SubscriptionTrie;
    use shardbus_protocol::topic::{matches, validate_pattern, validate_subject};
    let mut trie: SubscriptionTrie<u32> = SubscriptionTrie::new();
    let mut live: Vec<(String, u32)> = Vec::new();
    let mut rest = data;
    let mut next_id = 0u32;
    while let [op, depth, token, tail @ ..] = rest {
        rest = tail;
        let depth = usize::from(*depth) * FUZZ_MAX_TOKENS / 255 + 1;
        let word = match token % 5 {
            0 => "*",
            1 => "a",
            2 => "b",
            3 => ">",
            _ => "cc",
        };
        let topic: Vec<&str> = (0..depth)
            .map(|i| match (i + 1 == depth, i % 3) {
                (true, _) => word,
                (false, 0) => "a",
                (false, 1) => "b",
                (false, _) => "*",
            })
            .collect();
        let topic = topic.join(".");
        let max_len = usize::from(u16::MAX);
        match op % 3 {
            0 if validate_pattern(topic.as_bytes(), max_len).is_ok() => {
                next_id += 1;
                trie.insert(topic.as_bytes(), None, next_id);
                live.push((topic, next_id));
            }
            1 if !live.is_empty() => {
                let (pattern, id) = live.swap_remove(usize::from(*token) % live.len());
                assert!(trie.remove(pattern.as_bytes(), None, &id), "{pattern}");
            }
            _ if validate_subject(topic.as_bytes(), max_len).is_ok() => {
                let mut got = trie.matches(topic.as_bytes()).plain;
                got.sort_unstable();
                let mut want: Vec<u32> = live
                    .iter()
                    .filter(|(pattern, _)| matches(pattern, &topic))
                    .map(|&(_, id)| id)
                    .collect();
                want.sort_unstable();
                assert_eq!(got, want, "subject {topic}");
            }
            _ => {}
        }
    }
    assert_eq!(trie.len(), live.len());
    // Dropping the trie walks it too: its depth must not matter either.
    drop(trie);
}

/// Feeds `data` to the session's input path in the pieces a socket might deliver (the first
/// byte picks the cut points): the frames decoded, and the errors met, must be the same as
/// when the stream arrives whole, and the connection's own buffer never holds more than one
/// unfinished frame, itself within `max_frame`.
///
/// # Panics
/// When the split stream decodes differently from the whole one, or the buffer holds more
/// than one unfinished frame.
pub fn split_input(data: &[u8]) {
    use crate::shard::read_buffer::ReadBuffer;
    use shardbus_protocol::{Check, check};
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_frame: 4096,
        max_payload: 2048,
        max_topic_len: 256,
        max_headers_len: 512,
        max_topic_tokens: 16,
    };
    // What each frame turns into, until the first error that closes the connection.
    let outcomes = |pieces: &mut dyn Iterator<Item = &[u8]>| -> Vec<String> {
        let mut buf = ReadBuffer::new(0);
        let mut seen = Vec::new();
        for piece in pieces {
            buf.append(piece);
            loop {
                match check(buf.unread(), &limits) {
                    Ok(Check::Complete { frame_len }) => {
                        let bytes = buf.unread().get(..frame_len).unwrap_or_default();
                        seen.push(match decode(bytes, &limits) {
                            Ok(frame) => format!("{:?}", frame.fields),
                            Err(error) => format!("{:?}", error.code()),
                        });
                        buf.consume(frame_len);
                    }
                    Ok(Check::Incomplete { .. }) => break,
                    Err(error) => {
                        seen.push(format!("closed {:?}", error.code()));
                        return seen;
                    }
                }
            }
            // Whole frames are gone; what stays is one frame's start, never past max_frame.
            assert!(
                buf.unread().len() < limits.max_frame as usize,
                "the buffer holds more than one unfinished frame"
            );
        }
        seen
    };
    let whole = outcomes(&mut std::iter::once(stream));
    let step = usize::from(seed % 64) + 1;
    let split = outcomes(&mut stream.chunks(step));
    assert_eq!(whole, split, "pieces of {step} bytes");
}

/// The bounds the service fuzzer's registrations are read within: small, so the fuzzer
/// reaches every limit.
const FUZZ_BOUNDS: crate::services::registration::Bounds = crate::services::registration::Bounds {
    max_endpoints: 4,
    max_metadata: 4,
    min_heartbeat_ms: 100,
    max_heartbeat_ms: 60_000,
    max_topic_len: 256,
};

/// Runs `data` through the service decoders: the first byte picks one, the rest is its
/// input. `0`: a REGISTER payload (a container map); `1`: a command's parameters (a container)
/// checked against every command; `2`: a DISCOVER version requirement. Whatever is accepted
/// must hold: a registration within its bounds, with valid subjects and client sids, every
/// endpoint once; parameters that print back as the JSON they were read from.
///
/// # Panics
/// When an accepted input breaks those: the invariant the fuzzer checks.
pub fn service_input(data: &[u8]) {
    use crate::services::registration;
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let Ok(reg) = registration::parse("fuzz", rest, true, 1_000, &FUZZ_BOUNDS) else {
                return;
            };
            assert!(!reg.endpoints.is_empty() && reg.endpoints.len() <= FUZZ_BOUNDS.max_endpoints);
            assert!(reg.metadata.len() <= FUZZ_BOUNDS.max_metadata);
            assert!((1..=registration::MAX_WEIGHT).contains(&reg.weight));
            for (i, endpoint) in reg.endpoints.iter().enumerate() {
                assert!(
                    shardbus_protocol::topic::validate_subject(endpoint.subject.as_bytes(), 256)
                        .is_ok()
                );
                assert!(!crate::events::is_reserved(endpoint.subject.as_bytes()));
                assert!((1..1 << 52).contains(&endpoint.sid));
                let others = reg.endpoints.iter().skip(i + 1);
                assert!(others.clone().all(|e| e.subject != endpoint.subject));
                assert!(others.clone().all(|e| e.sid != endpoint.sid));
            }
        }
        1 => {
            let Ok(params) = crate::commands::to_json(rest, true) else {
                return;
            };
            let back = crate::commands::to_container(&params);
            let again = back
                .to_json()
                .ok()
                .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok());
            assert_eq!(
                again.as_ref(),
                Some(&params),
                "parameters do not print back"
            );
            for command in crate::commands::COMMANDS {
                let _ = crate::commands::Params::check(command, params.clone());
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = semver::VersionReq::parse(text);
            }
        }
    }
}

/// What another node or Redis can hand this node: `data[0] % 3` picks a node-to-node batch (every
/// record it yields writes back to the same bytes), a cluster channel message (a change's pattern
/// and queue are valid), or a RESP value read as a history script's answer (never a panic, a
/// loaded stream only ever oldest first as given).
pub fn redis_input(data: &[u8]) {
    use crate::cluster::wire::{self, Record};
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let Some((origin, records)) = wire::batch_origin(rest) else {
                return;
            };
            assert!(origin.node().len() + 2 == origin.bytes.len());
            for record in records {
                let mut again = Vec::new();
                match &record {
                    Record::Message(m) => wire::put_message(&mut again, m),
                    Record::Request(r) => wire::put_request(&mut again, r),
                    Record::Response(r) => wire::put_response(&mut again, r),
                    Record::NodeAsk { id, kind, body } => {
                        wire::put_node_ask(&mut again, *id, *kind, body);
                    }
                    Record::NodeAnswer { node, id, body } => {
                        wire::put_node_answer(&mut again, node, *id, body);
                    }
                    Record::RoomMember {
                        joined,
                        room,
                        member,
                    } => wire::put_room_member(&mut again, *joined, room, member),
                    Record::RoomRoster {
                        node,
                        room,
                        members,
                    } => {
                        // A cut member ends a roster's reading: what is read writes back whole.
                        wire::put_room_roster(
                            &mut again,
                            node,
                            room,
                            wire::roster_members(members),
                        );
                        let read = wire::Records::new(&again).next();
                        let read = match read {
                            Some(Record::RoomRoster { members, .. }) => Some(members),
                            _ => None,
                        };
                        assert!(read.is_some(), "a roster reads back as one");
                        let read = read.unwrap_or_default();
                        assert!(wire::roster_members(read).eq(wire::roster_members(members)));
                        continue;
                    }
                }
                let reread: Vec<Record<'_>> = wire::Records::new(&again).collect();
                assert_eq!(reread, vec![record]);
            }
        }
        1 => {
            if let Some(crate::cluster::inbound::Heard::Change { key, .. }) =
                crate::cluster::inbound::parse(rest)
            {
                assert!(
                    shardbus_protocol::topic::validate_pattern(&key.0, usize::from(u16::MAX))
                        .is_ok()
                );
            }
        }
        _ => {
            use crate::history::redis::{Request, RequestKind};
            let Ok(value) = redis::parse_redis_value(rest) else {
                return;
            };
            let keep = crate::history::Retention {
                size: 10,
                ttl: None,
            };
            for kind in [
                RequestKind::Load,
                RequestKind::Append {
                    headers: Vec::new(),
                    payload: Vec::new(),
                    flags: 0,
                    at_ms: 0,
                },
            ] {
                let request = Request {
                    room: b"fuzz.room".as_slice().into(),
                    keep,
                    reset: false,
                    epoch: 1,
                    kind,
                };
                let _ = request.outcome(Ok(value.clone()));
            }
        }
    }
}
