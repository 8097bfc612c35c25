//! JWT credentials against the real server: HS256, RS256 and ES256 tokens with configured keys;
//! `exp`, `nbf`, `aud` and `iss` checked; `alg: none` and key confusion refused; a role from a
//! claim, permissions from a claim; and an open connection closed when its token expires.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use shardbus_engine::config::Config;
use shardbus_protocol::{ErrorCode, Fields};
use shardbus_tests::{Raw, TestServer};

const SECRET: &str = "a shared secret of decent length";

struct Keys {
    dir: PathBuf,
    rsa_private: Vec<u8>,
    rsa_public: PathBuf,
    ec_private: Vec<u8>,
    ec_public: PathBuf,
}

impl Keys {
    fn new() -> Keys {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("shardbus-jwt-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rsa = dir.join("rsa.pem");
        let rsa_public = dir.join("rsa.pub.pem");
        let run = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "openssl {args:?}");
        };
        run(&["genrsa", "-out", rsa.to_str().unwrap(), "2048"]);
        run(&[
            "rsa",
            "-in",
            rsa.to_str().unwrap(),
            "-pubout",
            "-out",
            rsa_public.to_str().unwrap(),
        ]);
        let ec = rcgen::KeyPair::generate().unwrap();
        let ec_public = dir.join("ec.pub.pem");
        std::fs::write(&ec_public, ec.public_key_pem()).unwrap();
        Keys {
            rsa_private: std::fs::read(&rsa).unwrap(),
            rsa_public,
            ec_private: ec.serialize_pem().into_bytes(),
            ec_public,
            dir,
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn configure(keys: &Keys) -> impl FnOnce(&mut Config) + '_ {
    |config| {
        config.auth.anonymous = false;
        config.auth.jwt.hs256_secret = Some(SECRET.into());
        config.auth.jwt.rs256_public_key = Some(keys.rsa_public.clone());
        config.auth.jwt.es256_public_key = Some(keys.ec_public.clone());
        config.auth.jwt.issuer = Some("https://issuer.test".into());
        config.auth.jwt.audience = Some("shardbus".into());
        config.auth.jwt.leeway_s = 0;
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(extra: Value) -> Value {
    let mut claims = json!({
        "sub": "device-9",
        "role": "user",
        "iss": "https://issuer.test",
        "aud": "shardbus",
        "exp": now() + 3600,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    encode(&Header::new(algorithm), claims, key).unwrap()
}

/// HELLO with `jwt`; the first frame back.
fn hello(server: &TestServer, jwt: &str) -> (Raw, Fields) {
    Raw::hello_with(server.addr, &[("jwt", jwt)])
}

fn refused(server: &TestServer, jwt: &str, why: &str) {
    match hello(server, jwt).1 {
        Fields::Err { code, .. } => assert_eq!(code, ErrorCode::AUTH_FAILED, "{why}"),
        other => panic!("{why}: expected AUTH_FAILED, got {other:?}"),
    }
}

#[test]
fn valid_tokens_of_each_algorithm_connect() {
    let keys = Keys::new();
    let server = TestServer::with(configure(&keys));
    let hs = EncodingKey::from_secret(SECRET.as_bytes());
    let rs = EncodingKey::from_rsa_pem(&keys.rsa_private).unwrap();
    let es = EncodingKey::from_ec_pem(&keys.ec_private).unwrap();
    for (algorithm, key) in [
        (Algorithm::HS256, &hs),
        (Algorithm::RS256, &rs),
        (Algorithm::ES256, &es),
    ] {
        let token = sign(algorithm, key, &claims(json!({})));
        assert!(
            matches!(hello(&server, &token).1, Fields::Welcome(_)),
            "{algorithm:?}"
        );
    }
}

#[test]
fn invalid_tokens_and_the_known_attacks_are_refused() {
    let keys = Keys::new();
    let server = TestServer::with(configure(&keys));
    let hs = EncodingKey::from_secret(SECRET.as_bytes());
    let good = claims(json!({}));
    refused(
        &server,
        &sign(Algorithm::HS256, &hs, &claims(json!({"exp": now() - 60}))),
        "expired",
    );
    refused(
        &server,
        &sign(Algorithm::HS256, &hs, &claims(json!({"nbf": now() + 600}))),
        "not yet",
    );
    refused(
        &server,
        &sign(Algorithm::HS256, &hs, &claims(json!({"aud": "other"}))),
        "audience",
    );
    refused(
        &server,
        &sign(Algorithm::HS256, &hs, &claims(json!({"iss": "evil"}))),
        "issuer",
    );
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    refused(&server, &sign(Algorithm::HS256, &hs, &no_exp), "no exp");
    refused(
        &server,
        &sign(Algorithm::HS256, &hs, &claims(json!({"role": "root"}))),
        "unknown role",
    );
    let wrong_secret = EncodingKey::from_secret(b"not the secret");
    refused(
        &server,
        &sign(Algorithm::HS256, &wrong_secret, &good),
        "wrong secret",
    );
    // alg none: header {"alg":"none"}, no signature.
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good)
    );
    refused(&server, &none, "alg none");
    // Key confusion: HS256 signed with the RSA public key's PEM as the secret.
    let public_pem = std::fs::read(&keys.rsa_public).unwrap();
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public_pem),
        &good,
    );
    refused(&server, &confused, "HS256 with the RS256 public key");
    refused(&server, "not.a.jwt", "garbage");
}

#[test]
fn claims_set_the_role_or_the_permissions() {
    let keys = Keys::new();
    let server = TestServer::with(configure(&keys));
    let hs = EncodingKey::from_secret(SECRET.as_bytes());
    let guest = sign(Algorithm::HS256, &hs, &claims(json!({"role": "guest"})));
    let (mut raw, _) = hello(&server, &guest);
    raw.publish("any.thing", b"x");
    assert_eq!(
        raw.expect_err().err_code(),
        Some(ErrorCode::PERMISSION_DENIED)
    );
    let permissions = json!({
        "publish": {"allow": ["devices.9.>"]},
        "subscribe": {"allow": ["commands.9"]},
        "request": {"allow": []},
    });
    let scoped = sign(
        Algorithm::HS256,
        &hs,
        &claims(json!({"permissions": permissions})),
    );
    let (mut raw, _) = hello(&server, &scoped);
    raw.publish("devices.9.temp", b"x");
    raw.publish("devices.8.temp", b"x");
    assert_eq!(
        raw.expect_err().err_code(),
        Some(ErrorCode::PERMISSION_DENIED)
    );
}

#[test]
fn an_open_connection_closes_when_its_token_expires() {
    let keys = Keys::new();
    let server = TestServer::with(configure(&keys));
    let hs = EncodingKey::from_secret(SECRET.as_bytes());
    let short = sign(Algorithm::HS256, &hs, &claims(json!({"exp": now() + 2})));
    let (mut raw, answer) = hello(&server, &short);
    assert!(matches!(answer, Fields::Welcome(_)), "{answer:?}");
    let frames = raw.until_closed();
    let last = frames.last().expect("an ERR before the close");
    assert_eq!(last.err_code(), Some(ErrorCode::AUTH_EXPIRED));
}
