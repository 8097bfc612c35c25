//! Fuzz target: the service decoders — registrations, command parameters, version
//! requirements (`shardbus_engine::fuzzing::service_input`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardbus_engine::fuzzing::service_input(data));
