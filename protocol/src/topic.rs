//! Topic syntax and pattern matching: the reference the engine's subscription trie is tested
//! against (PROTOCOL.md §4).
//!
//! A topic is dot-separated tokens. A token is one or more printable ASCII characters other than
//! `.`, `*` and `>`. A pattern may also use `*` as a whole token (exactly one token) and `>` as
//! the whole last token (one or more trailing tokens).

use crate::error::ProtocolError;

/// The longest topic any server may be configured to accept (the header's field is 16 bits).
pub const ABSOLUTE_MAX_TOPIC_LEN: usize = u16::MAX as usize;

/// The default limit on topic length.
pub const DEFAULT_MAX_TOPIC_LEN: u16 = 256;

/// Topics beginning with this token are reserved for the server's own use.
pub const SYSTEM_PREFIX: &str = "$SYS";

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'.' && b != b'*' && b != b'>'
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Per byte of an 8-byte word: the high bit (`0x80`) of each byte that is not a token byte or
/// a dot, and of each byte that is a dot.
///
/// Every byte with its high bit set is invalid, so the tests run on the low seven bits, where
/// adding at most `0x7f` to a byte cannot carry into the next one.
#[inline(always)]
fn classify_word(x: u64) -> (u64, u64) {
    let low = x & !HIGH;
    let at_least_bang = low.wrapping_add(0x5f * ONES); // high bit iff low >= 0x21
    let at_least_del = low.wrapping_add(ONES); // high bit iff low >= 0x7f
    let not_star = (low ^ (u64::from(b'*') * ONES)).wrapping_add(0x7f * ONES);
    let not_gt = (low ^ (u64::from(b'>') * ONES)).wrapping_add(0x7f * ONES);
    let not_dot = (low ^ (u64::from(b'.') * ONES)).wrapping_add(0x7f * ONES);
    let allowed = at_least_bang & !at_least_del & !x & not_star & not_gt;
    (!allowed & HIGH, !not_dot & HIGH)
}

/// Whether `topic` is a valid subject (length aside), eight bytes per step.
///
/// A tail shorter than a word is covered by re-reading the topic's last eight bytes: checking a
/// byte twice is harmless, and the one byte pair that word cannot see (its first byte and the
/// byte before it) lies wholly inside the words already checked. Topics under eight bytes are
/// padded with `a`, a token byte. `explain_bad_subject` is the byte-at-a-time reference a test
/// compares this against.
#[inline]
fn is_subject_swar(topic: &[u8]) -> bool {
    let mut bad = 0u64;
    let mut empty_token = 0u64;
    // A virtual dot before the first byte makes a leading dot an empty token.
    let mut dot_before = 0x80u64;
    let mut step = |word: u64, dot_before_word: u64| {
        let (not_allowed, dots) = classify_word(word);
        bad |= not_allowed;
        empty_token |= dots & ((dots << 8) | dot_before_word);
        dots >> 56
    };
    let words = topic.chunks_exact(8);
    let tail = words.remainder();
    for word in words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        dot_before = step(u64::from_le_bytes(bytes), dot_before);
    }
    if !tail.is_empty() {
        let last = topic.last_chunk::<8>().copied().unwrap_or_else(|| {
            let mut padded = [b'a'; 8];
            for (slot, &b) in padded.iter_mut().zip(topic) {
                *slot = b;
            }
            padded
        });
        let dot_before_last = if topic.len() < 8 { dot_before } else { 0 };
        step(u64::from_le_bytes(last), dot_before_last);
    }
    bad == 0 && empty_token == 0 && topic.last() != Some(&b'.')
}

/// Checks a topic a publisher may send to: tokens only, no wildcards.
///
/// This runs on every PUB, so the common case is a word-at-a-time pass with no per-byte
/// branches; the rule-naming loop runs only once that pass has found a problem.
///
/// # Errors
/// [`ProtocolError::InvalidTopic`] naming the rule broken, or [`ProtocolError::TopicTooLong`].
#[inline]
pub fn validate_subject(topic: &[u8], max_len: usize) -> Result<(), ProtocolError> {
    check_len(topic, max_len)?;
    if is_subject_swar(topic) {
        return Ok(());
    }
    explain_bad_subject(topic)
}

/// The precise error for a subject the fast check refused.
#[cold]
fn explain_bad_subject(topic: &[u8]) -> Result<(), ProtocolError> {
    let mut token_len = 0usize;
    for &b in topic {
        if b == b'.' {
            if token_len == 0 {
                return Err(ProtocolError::InvalidTopic("empty token"));
            }
            token_len = 0;
        } else if is_token_byte(b) {
            token_len += 1;
        } else if b == b'*' || b == b'>' {
            return Err(ProtocolError::InvalidTopic(
                "wildcards are not allowed when publishing",
            ));
        } else {
            return Err(ProtocolError::InvalidTopic(bad_byte(b)));
        }
    }
    if token_len == 0 {
        return Err(ProtocolError::InvalidTopic("empty token"));
    }
    Ok(())
}

/// What is wrong with a byte that is no token byte, dot or wildcard.
#[cold]
fn bad_byte(b: u8) -> &'static str {
    if b == b' ' {
        "spaces are not allowed in topics"
    } else {
        "characters must be printable ASCII (letters, digits and punctuation, no spaces)"
    }
}

/// Checks a subscription pattern: tokens, `*` tokens, and an optional final `>` token.
///
/// # Errors
/// [`ProtocolError::InvalidTopic`] naming the rule broken, or [`ProtocolError::TopicTooLong`].
pub fn validate_pattern(pattern: &[u8], max_len: usize) -> Result<(), ProtocolError> {
    check_len(pattern, max_len)?;
    let mut tokens = pattern.split(|&b| b == b'.').peekable();
    while let Some(token) = tokens.next() {
        match token {
            [] => return Err(ProtocolError::InvalidTopic("empty token")),
            [b'*'] => {}
            [b'>'] => {
                if tokens.peek().is_some() {
                    return Err(ProtocolError::InvalidTopic("'>' must be the last token"));
                }
            }
            _ => {
                for &b in token {
                    if b == b'*' || b == b'>' {
                        return Err(ProtocolError::InvalidTopic(
                            "a wildcard must be a whole token",
                        ));
                    }
                    if !is_token_byte(b) {
                        return Err(ProtocolError::InvalidTopic(bad_byte(b)));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Checks a queue-group name: a single token.
///
/// # Errors
/// [`ProtocolError::InvalidQueueGroup`].
pub fn validate_queue_group(group: &[u8], max_len: usize) -> Result<(), ProtocolError> {
    if group.len() > max_len {
        return Err(ProtocolError::InvalidQueueGroup(
            "longer than the topic limit",
        ));
    }
    if group.is_empty() || !group.iter().all(|&b| is_token_byte(b)) {
        return Err(ProtocolError::InvalidQueueGroup(
            "must be one token of printable ASCII without '.', '*', '>'",
        ));
    }
    Ok(())
}

fn check_len(topic: &[u8], max_len: usize) -> Result<(), ProtocolError> {
    if topic.is_empty() {
        return Err(ProtocolError::InvalidTopic("empty topic"));
    }
    if topic.len() > max_len {
        return Err(ProtocolError::TopicTooLong {
            len: topic.len(),
            max: max_len,
        });
    }
    Ok(())
}

/// Whether a pattern contains a wildcard token.
pub fn is_wildcard(pattern: &str) -> bool {
    pattern.split('.').any(|t| t == "*" || t == ">")
}

/// Whether `subject` matches `pattern`. Both are assumed valid.
///
/// This is the plain reference matcher: token by token, no allocation.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for p in pattern.split('.') {
        if p == ">" {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(s) if p == "*" || p == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        #[test]
        fn word_at_a_time_check_agrees_with_the_byte_loop(
            bytes in prop::collection::vec(
                prop_oneof![
                    4 => prop::sample::select(b"ab.".to_vec()),
                    1 => any::<u8>(),
                    1 => prop::sample::select(b"*> \x7f\x20\x21\x7e\x80\xff".to_vec()),
                ],
                1..40,
            )
        ) {
            prop_assert_eq!(is_subject_swar(&bytes), explain_bad_subject(&bytes).is_ok(), "{:?}", bytes);
        }
    }

    const MAX: usize = 256;

    #[test]
    fn subjects_accept_tokens_and_reject_wildcards() {
        for ok in ["a", "foo.bar", "$SYS.x", "a-b_c:d@e", "1.2.3"] {
            assert!(validate_subject(ok.as_bytes(), MAX).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b", "fo*o", "é",
        ] {
            assert!(validate_subject(bad.as_bytes(), MAX).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_accept_whole_token_wildcards() {
        for ok in ["a", "*", ">", "a.*.c", "a.>", "*.*", "*.>"] {
            assert!(validate_pattern(ok.as_bytes(), MAX).is_ok(), "{ok}");
        }
        for bad in [
            "", "a.>.b", ">.a", "a*", "a.b>", "a..b", "a b", "a.", "\u{7f}",
        ] {
            assert!(validate_pattern(bad.as_bytes(), MAX).is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_length_limit_is_inclusive() {
        let topic = "a".repeat(MAX);
        assert!(validate_subject(topic.as_bytes(), MAX).is_ok());
        let longer = "a".repeat(MAX + 1);
        assert_eq!(
            validate_subject(longer.as_bytes(), MAX),
            Err(ProtocolError::TopicTooLong {
                len: MAX + 1,
                max: MAX
            })
        );
    }

    #[test]
    fn star_matches_exactly_one_token() {
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*.c", "a.c"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches("*", "a"));
        assert!(!matches("*", "a.b"));
    }

    #[test]
    fn gt_wildcard_matches_one_or_more_trailing_tokens() {
        assert!(matches("a.>", "a.b"));
        assert!(matches("a.>", "a.b.c.d"));
        assert!(!matches("a.>", "a"));
        assert!(matches(">", "anything.at.all"));
    }

    #[test]
    fn literal_patterns_match_only_themselves() {
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
    }

    #[test]
    fn queue_groups_are_single_tokens() {
        assert!(validate_queue_group(b"workers", MAX).is_ok());
        assert!(validate_queue_group(b"", MAX).is_err());
        assert!(validate_queue_group(b"a.b", MAX).is_err());
        assert!(validate_queue_group(b"*", MAX).is_err());
    }
}
