//! Fuzz target: HELLO's credentials (tokens, JWTs) as the server authenticates them; nothing may
//! panic, and the token's identity is granted only to the token.
#![no_main]

use shardbus_engine::fuzzing::{FUZZ_TOKEN, Granted, hello_auth};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if hello_auth(data) == Granted::Token {
        let token = FUZZ_TOKEN.as_bytes();
        assert!(
            data.windows(token.len()).any(|w| w == token),
            "the token's identity was granted without the token"
        );
    }
});
