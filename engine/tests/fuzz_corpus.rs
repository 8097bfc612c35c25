//! Replays the committed corpus of the engine's fuzz targets (`engine/fuzz/corpus/*`) through
//! the same entry points the targets use, so every input the fuzzer kept is checked on stable.

#![allow(clippy::unwrap_used, clippy::panic)] // tests may panic

use std::path::PathBuf;

use shardbus_engine::fuzzing::{
    FUZZ_TOKEN, Granted, hello_auth, json_mapping, redis_input, routing_ops, service_input,
    split_input,
};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no corpus in {}", dir.display());
    inputs
}

#[test]
fn hello_auth_grants_the_token_s_identity_only_to_the_token() {
    let (mut tokens, mut jwts) = (0, 0);
    for input in corpus("hello_auth") {
        match hello_auth(&input) {
            Granted::Token => {
                tokens += 1;
                let token = FUZZ_TOKEN.as_bytes();
                assert!(input.windows(token.len()).any(|w| w == token), "{input:?}");
            }
            Granted::Jwt => jwts += 1,
            Granted::Nothing => {}
        }
    }
    assert!(
        tokens >= 1 && jwts >= 1,
        "the seeds with the token and a valid JWT are granted"
    );
}

#[test]
fn the_json_mapping_holds_its_invariants_on_the_corpus() {
    for input in corpus("ws_json") {
        json_mapping(&input);
    }
}

#[test]
fn routing_histories_agree_with_the_reference_matcher_on_the_corpus() {
    for input in corpus("routing_ops") {
        routing_ops(&input);
    }
}

#[test]
fn split_input_decodes_as_whole_input_on_the_corpus() {
    for input in corpus("split_input") {
        split_input(&input);
    }
}

#[test]
fn the_service_decoders_hold_their_invariants_on_the_corpus() {
    for input in corpus("service_input") {
        service_input(&input);
    }
}

#[test]
fn what_redis_and_other_nodes_hand_a_node_holds_its_invariants_on_the_corpus() {
    for input in corpus("redis_input") {
        redis_input(&input);
    }
}
