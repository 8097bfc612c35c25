//! Topic generators shared by the engine's property tests: small alphabets, so that random
//! patterns and subjects actually match each other often.

#![allow(dead_code)] // each test binary uses its own subset

use proptest::prelude::*;

/// One token drawn from `alphabet`.
pub fn token(alphabet: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop::sample::select(alphabet).prop_map(str::to_owned)
}

/// A subject of 1 to `max_tokens` tokens.
pub fn subject(
    alphabet: &'static [&'static str],
    max_tokens: usize,
) -> impl Strategy<Value = String> {
    prop::collection::vec(token(alphabet), 1..=max_tokens).prop_map(|t| t.join("."))
}

/// A pattern of 1 to `max_tokens` tokens or `*`, sometimes ending in `>`.
pub fn pattern(
    alphabet: &'static [&'static str],
    max_tokens: usize,
) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof![3 => token(alphabet), 1 => Just("*".to_owned())],
            1..=max_tokens,
        ),
        any::<bool>(),
    )
        .prop_map(|(mut t, tail)| {
            if tail {
                t.push(">".to_owned());
            }
            t.join(".")
        })
}
