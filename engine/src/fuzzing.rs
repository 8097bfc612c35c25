//! Entry points for the fuzz targets (`engine/fuzz`) and their corpus replay
//! (`engine/tests/fuzz_corpus.rs`): the edges that take untrusted input, without a socket —
//! HELLO's credentials and the WebSocket JSON mapping. Not part of the engine's API.

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
