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

/// Checks a topic a publisher may send to: tokens only, no wildcards.
///
/// # Errors
/// [`ProtocolError::InvalidTopic`] naming the rule broken, or [`ProtocolError::TopicTooLong`].
pub fn validate_subject(topic: &[u8], max_len: usize) -> Result<(), ProtocolError> {
    check_len(topic, max_len)?;
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
            return Err(ProtocolError::InvalidTopic(
                "characters must be printable ASCII",
            ));
        }
    }
    if token_len == 0 {
        return Err(ProtocolError::InvalidTopic("empty token"));
    }
    Ok(())
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
                        return Err(ProtocolError::InvalidTopic(
                            "characters must be printable ASCII",
                        ));
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
