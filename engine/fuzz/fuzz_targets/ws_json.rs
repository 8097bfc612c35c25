//! Fuzz target: the WebSocket JSON mapping, both directions (`shardbus_engine::fuzzing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardbus_engine::fuzzing::json_mapping(data));
