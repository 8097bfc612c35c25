//! Fuzz target: histories of subscribe, unsubscribe and publish on the routing trie, with
//! topics as deep as a server allows, against the reference matcher
//! (`shardbus_engine::fuzzing::routing_ops`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardbus_engine::fuzzing::routing_ops(data));
