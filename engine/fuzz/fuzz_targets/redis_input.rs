//! Fuzz target: what another node or Redis hands a node — batches, cluster channel messages,
//! history scripts' answers (`shardbus_engine::fuzzing::redis_input`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardbus_engine::fuzzing::redis_input(data));
