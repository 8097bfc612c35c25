//! `Replies`: the reply tokens of requests this shard delivered to its own connections, each
//! bound to the connection it went to. Only that connection may answer (PROTOCOL.md §3.7): a
//! RESP with a token delivered to someone else is refused, so a token passed around or
//! guessed cannot answer in the responder's place. An entry ends with the answer, at the
//! request's deadline, or when its connection goes; a token this shard no longer knows is a
//! late answer, dropped and counted as before.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::fast_map::FastMap;

/// To whom a token was delivered.
#[derive(Debug, Clone, Copy)]
struct Delivered {
    conn: u64,
    /// Whether that connection may answer requests on the request's subject.
    may_respond: bool,
    deadline: Instant,
}

/// What a RESP's token turns out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The connection the request was delivered to, allowed to answer: forward it.
    Forward,
    /// Delivered to this connection, whose identity may not answer on the subject.
    NotPermitted,
    /// Delivered to another connection.
    NotYours,
    /// Unknown here (answered, expired, or never issued): a late answer.
    Late,
}

/// One shard's delivered reply tokens.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    delivered: FastMap<u64, Delivered>,
    deadlines: BTreeSet<(Instant, u64)>,
    by_conn: BTreeSet<(u64, u64)>,
}

impl Replies {
    /// Records that `token` went to `conn`.
    pub(crate) fn insert(&mut self, token: u64, conn: u64, may_respond: bool, deadline: Instant) {
        let entry = Delivered {
            conn,
            may_respond,
            deadline,
        };
        if let Some(old) = self.delivered.insert(token, entry) {
            self.unindex(token, old);
        }
        self.deadlines.insert((deadline, token));
        self.by_conn.insert((conn, token));
    }

    /// Judges a RESP with `token` from `conn`; a forwarded or refused answer ends the entry
    /// only when it is the right connection's (someone else's attempt leaves it for the owner).
    pub(crate) fn answer(&mut self, token: u64, conn: u64) -> Answer {
        let Some(&entry) = self.delivered.get(&token) else {
            return Answer::Late;
        };
        if entry.conn != conn {
            return Answer::NotYours;
        }
        self.delivered.remove(&token);
        self.unindex(token, entry);
        if entry.may_respond {
            Answer::Forward
        } else {
            Answer::NotPermitted
        }
    }

    /// Forgets `token` (its request ended without an answer).
    pub(crate) fn forget(&mut self, token: u64) {
        if let Some(entry) = self.delivered.remove(&token) {
            self.unindex(token, entry);
        }
    }

    /// Forgets every token delivered to `conn` (it went away).
    pub(crate) fn end_conn(&mut self, conn: u64) {
        let tokens: Vec<u64> = self
            .by_conn
            .range((conn, 0)..=(conn, u64::MAX))
            .map(|&(_, token)| token)
            .collect();
        for token in tokens {
            self.forget(token);
        }
    }

    /// Forgets the tokens whose request's deadline is at or before `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, token)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(entry) = self.delivered.remove(&token) {
                self.by_conn.remove(&(entry.conn, token));
            }
        }
    }

    /// The earliest deadline among the tokens held.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// Tokens held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.delivered.len()
    }

    fn unindex(&mut self, token: u64, entry: Delivered) {
        self.deadlines.remove(&(entry.deadline, token));
        self.by_conn.remove(&(entry.conn, token));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn only_the_connection_a_token_went_to_may_answer_and_only_once() {
        let mut replies = Replies::default();
        let now = Instant::now();
        replies.insert(7, 1, true, now);
        replies.insert(8, 1, false, now);
        assert_eq!(replies.answer(7, 2), Answer::NotYours);
        assert_eq!(replies.answer(7, 1), Answer::Forward);
        assert_eq!(replies.answer(7, 1), Answer::Late);
        assert_eq!(replies.answer(8, 1), Answer::NotPermitted);
        replies.insert(9, 3, true, now);
        replies.end_conn(3);
        assert_eq!(replies.answer(9, 3), Answer::Late);
        replies.insert(10, 4, true, now);
        replies.expire(now);
        assert_eq!(replies.len(), 0);
        assert!(replies.deadlines.is_empty() && replies.by_conn.is_empty());
    }
}
