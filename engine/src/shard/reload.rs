//! Applying a reloaded configuration on one shard (its watch task notices the new generation):
//! the new rate limits take effect (their buckets start full), the new authenticator serves the
//! next HELLO and HTTP request, and every open connection is
//! re-checked at once — one whose credential is no longer accepted is closed with a terminal
//! code, the others take their role's current permissions and lose the subscriptions those
//! no longer allow (each answered `PERMISSION_DENIED` with its sid). Room options apply to the
//! next op on each room; members stay members. Service options (strategy, breaker) apply to
//! the next request.

use std::rc::Rc;
use std::sync::Arc;

use shardbus_protocol::ErrorCode;

use super::Shard;
use super::conn::Conn;
use crate::metrics::Metric;
use crate::server::Reload;

impl Shard {
    /// Swaps in `reload` and re-checks every connection against it.
    pub(crate) fn apply_reload(&self, reload: &Reload) {
        let before = self.auth.replace(Arc::clone(&reload.auth));
        let rate = super::rate::RateLimits::new(&reload.rate_limits);
        self.rate_any.set(rate.any());
        *self.rate.borrow_mut() = rate;
        self.reload_rooms(&reload.rooms);
        self.services
            .registry
            .borrow_mut()
            .set_options(&reload.services);
        let conns: Vec<Rc<Conn>> = self.conns.borrow().values().cloned().collect();
        for conn in conns {
            let Some(identity) = conn.identity() else {
                continue;
            };
            match reload.auth.recheck(&before, &identity) {
                Ok(renewed) => {
                    conn.set_identity(renewed);
                    *conn.rate.borrow_mut() = self.rate.borrow().conn_buckets().map(Box::new);
                    self.end_forbidden_subscriptions(&conn);
                }
                Err(code) => conn.fail(
                    code,
                    0,
                    0,
                    "the credentials are no longer accepted (the configuration was reloaded)",
                ),
            }
        }
        self.metrics.add(Metric::ReloadsApplied, 1);
        if self.id == 0 {
            self.reload_event(&reload.changed);
        }
    }

    fn end_forbidden_subscriptions(&self, conn: &Rc<Conn>) {
        let forbidden: Vec<u64> = conn
            .subs
            .borrow()
            .values()
            .into_iter()
            .filter(|sub| {
                let pattern = std::str::from_utf8(&sub.0.pattern).unwrap_or("");
                !conn.may(|p| p.subscribe.allows_pattern(pattern))
            })
            .map(|sub| sub.0.sid)
            .collect();
        for sid in forbidden {
            self.end_subscription(conn, sid);
            conn.error(
                ErrorCode::PERMISSION_DENIED,
                0,
                sid,
                "the subscription is no longer permitted (the configuration was reloaded)",
            );
        }
    }

    /// The authenticator in force (replaced by a reload).
    pub(crate) fn auth(&self) -> Arc<crate::auth::Authenticator> {
        Arc::clone(&self.auth.borrow())
    }
}
