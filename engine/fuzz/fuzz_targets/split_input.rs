//! Fuzz target: a connection's input in arbitrary pieces through the session's buffer and
//! decoder, against the same input whole (`shardbus_engine::fuzzing::split_input`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardbus_engine::fuzzing::split_input(data));
