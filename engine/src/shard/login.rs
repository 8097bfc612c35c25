//! What a connection may cost the server before its HELLO is accepted: its input (at most one
//! HELLO's worth, and all such connections of a shard together at most their budget) and its
//! password check (argon2 on a blocking thread, slow on purpose: a shard runs at most
//! `auth.max_password_checks` at once and one remote address at most
//! `auth.max_password_checks_per_address` of them, so a flood of logins from one place leaves
//! room for everybody else; over either, the HELLO is refused `RATE_LIMITED` with a retry time).

use std::net::IpAddr;
use std::time::Duration;

use shardbus_protocol::Fields;
use shardbus_protocol::header::HEADER_LEN;

use super::Shard;
use super::conn::Conn;
use super::rate::Limited;

/// What a refused password check tells the client to wait.
const CHECK_RETRY: Duration = Duration::from_secs(1);

/// The largest frame a connection may announce before its HELLO is accepted: a HELLO with the
/// largest headers block (its credentials). So an unauthenticated peer makes the server hold
/// at most this much input, however large a frame it announces.
pub(super) fn hello_frame_limit(limits: &shardbus_protocol::Limits) -> usize {
    HEADER_LEN + 32 + limits.max_headers_len as usize
}

/// Input bytes that one unauthenticated connection holds, counted against its shard's budget
/// for all of them (`limits.max_unauthenticated_bytes`) and given back when the HELLO phase
/// ends, however it ends.
pub(super) struct PreauthCharge<'a> {
    shard: &'a Shard,
    held: usize,
}

impl<'a> PreauthCharge<'a> {
    pub(super) fn new(shard: &'a Shard) -> PreauthCharge<'a> {
        PreauthCharge { shard, held: 0 }
    }

    /// Counts holding `bytes` in all; `false` when the shard's budget has no room for them.
    pub(super) fn hold(&mut self, bytes: usize) -> bool {
        let more = bytes.saturating_sub(self.held);
        let total = self.shard.preauth_bytes.get();
        if more > 0 && total + more > self.shard.settings.preauth_budget {
            return false;
        }
        self.shard.preauth_bytes.set(total + more);
        self.held += more;
        true
    }
}

impl Drop for PreauthCharge<'_> {
    fn drop(&mut self) {
        let total = self.shard.preauth_bytes.get();
        self.shard
            .preauth_bytes
            .set(total.saturating_sub(self.held));
    }
}

/// When `bytes` start with a HELLO carrying `user` and `pass`, checks them on a blocking
/// thread (argon2 is slow on purpose) and leaves the outcome for `handshake`; refuses the HELLO
/// with `RATE_LIMITED` when the shard or the peer's address has its most checks in flight.
pub(crate) async fn verify_password_in_hello(shard: &Shard, conn: &Conn, bytes: &[u8]) {
    let Ok(Some((frame, _))) = shardbus_protocol::next_frame(bytes, &shard.settings.limits) else {
        return;
    };
    let (Fields::Hello { .. }, Some(user)) = (frame.fields, frame.headers.get("user")) else {
        return;
    };
    let Some(_slot) = CheckSlot::take(shard, conn.remote.map(|r| r.ip())) else {
        shard
            .metrics
            .add(crate::metrics::Metric::PasswordChecksRefused, 1);
        let limited = Limited {
            retry_after: CHECK_RETRY,
            disconnect: true,
        };
        conn.rate_limited(frame.op_id, 0, limited);
        return;
    };
    let (user, pass) = (
        user.to_owned(),
        frame.headers.get("pass").unwrap_or("").to_owned(),
    );
    let auth = shard.auth();
    let outcome = glommio::executor()
        .spawn_blocking(move || auth.verify_user(&user, &pass))
        .await;
    *conn.preauth.borrow_mut() = Some(outcome);
}

/// One password check in flight, counted for its shard and its address until dropped (also
/// when the HELLO phase is abandoned mid-check, at its timeout).
struct CheckSlot<'a> {
    shard: &'a Shard,
    address: Option<IpAddr>,
}

impl<'a> CheckSlot<'a> {
    fn take(shard: &'a Shard, address: Option<IpAddr>) -> Option<CheckSlot<'a>> {
        let checks = &shard.password_checks;
        let mut by_address = checks.by_address.borrow_mut();
        let from_address = address
            .and_then(|a| by_address.get(&a).copied())
            .unwrap_or(0);
        if checks.in_flight.get() >= shard.settings.max_password_checks
            || from_address >= shard.settings.max_password_checks_per_address
        {
            return None;
        }
        checks.in_flight.set(checks.in_flight.get() + 1);
        if let Some(address) = address {
            by_address.insert(address, from_address + 1);
        }
        Some(CheckSlot { shard, address })
    }
}

impl Drop for CheckSlot<'_> {
    fn drop(&mut self) {
        let checks = &self.shard.password_checks;
        checks
            .in_flight
            .set(checks.in_flight.get().saturating_sub(1));
        if let Some(address) = self.address {
            let mut by_address = checks.by_address.borrow_mut();
            match by_address.get_mut(&address) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    by_address.remove(&address);
                }
            }
        }
    }
}

/// A shard's password checks in flight.
#[derive(Debug, Default)]
pub(crate) struct PasswordChecks {
    in_flight: std::cell::Cell<u32>,
    by_address: std::cell::RefCell<crate::fast_map::FastMap<IpAddr, u32>>,
}
