//! A shard's system events (`events/mod.rs`): built only when someone subscribes to their
//! subject, gathered per kind, and published once per poll cycle per kind by one task, as a
//! container list, to the subscriptions whose identity may see them — on this shard directly,
//! on the others through `Record::Event`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use shardbus_protocol::Flags;
use shardbus_protocol::container::Value;

use super::Shard;
use super::conn::LocalSub;
use super::notify::Notify;
use crate::events::EventKind;
use crate::mesh::batch::Record;
use crate::metrics::Metric;

/// Events gathered since the last publication, one list per kind.
#[derive(Debug, Default)]
pub(crate) struct ShardEvents {
    pending: RefCell<Vec<Vec<Value>>>,
    queued: Notify,
}

/// An event's fields, in order.
pub(crate) type Fields = Vec<(String, Value)>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Shard {
    /// Records an event of `kind` with the fields `build` makes, if anyone subscribes to it.
    pub(crate) fn event(&self, kind: EventKind, build: impl FnOnce() -> Fields) {
        if !self
            .router
            .borrow_mut()
            .has_interest(kind.subject().as_bytes())
        {
            return;
        }
        let mut entry = vec![
            ("kind".to_owned(), Value::Str(kind.name().to_owned())),
            ("at_ms".to_owned(), Value::U64(now_ms())),
            ("shard".to_owned(), Value::U16(self.id)),
        ];
        entry.extend(build());
        let mut pending = self.events.pending.borrow_mut();
        if pending.is_empty() {
            pending.resize_with(EventKind::ALL.len(), Vec::new);
        }
        let Some(list) = pending.get_mut(kind.index()) else {
            return;
        };
        if list.len() >= self.settings.events.max_batch as usize {
            self.metrics.add(Metric::EventsDropped, 1);
            return;
        }
        list.push(Value::Map(entry));
        self.events.queued.notify();
    }

    /// The task that publishes what `event` gathered, once per poll cycle per kind.
    pub(crate) async fn publish_events(self: Rc<Self>) {
        loop {
            self.events.queued.notified().await;
            let pending = std::mem::take(&mut *self.events.pending.borrow_mut());
            for (kind, list) in EventKind::ALL.iter().zip(pending) {
                if list.is_empty() {
                    continue;
                }
                self.metrics.add(Metric::EventsPublished, list.len() as u64);
                let payload = Value::List(list).to_binary().unwrap_or_default();
                self.publish_event(kind.subject().as_bytes(), &payload);
            }
        }
    }

    /// Delivers one publication of events to every subscriber allowed to see it.
    fn publish_event(&self, subject: &[u8], payload: &[u8]) {
        let flags = Flags::CONTAINER.0;
        let mut route = self.route.borrow_mut();
        self.router
            .borrow_mut()
            .route_publish(subject, 0, true, &mut route);
        self.deliver_events_local(&route.local, subject, payload);
        let message = (subject, &[][..], payload, flags);
        self.forward(&route, message, |msg, plain, groups| Record::Event {
            msg,
            plain,
            groups,
        });
    }

    /// Delivers events to those of `subs` whose identity may see them.
    pub(crate) fn deliver_events_local(&self, subs: &[LocalSub], subject: &[u8], payload: &[u8]) {
        let allowed: Vec<LocalSub> = subs
            .iter()
            .filter(|sub| sub.conn().is_some_and(|conn| self.sees_events(&conn)))
            .cloned()
            .collect();
        self.deliver_local(&allowed, subject, &[], payload, Flags::CONTAINER.0, 0);
    }

    /// Whether `conn` may subscribe to reserved `pattern`: event subjects, for those who may
    /// see events (no one else publishes there, and commands are answered by the server).
    pub(crate) fn may_watch(&self, conn: &super::conn::Conn, pattern: &[u8]) -> bool {
        let events = pattern.starts_with(b"$sys.events.")
            || pattern == b"$sys.>"
            || pattern.starts_with(b"$sys.*.");
        events && self.sees_events(conn)
    }

    /// Whether `conn`'s identity may see system events: admins, and `[events] roles`.
    pub(crate) fn sees_events(&self, conn: &super::conn::Conn) -> bool {
        conn.identity().is_some_and(|identity| {
            identity.permissions.admin
                || self
                    .settings
                    .events
                    .roles
                    .iter()
                    .any(|role| **role == *identity.role)
        })
    }
}

impl Shard {
    /// A client connection completed its handshake.
    pub(crate) fn conn_opened_event(&self, conn: &super::conn::Conn) {
        self.event(EventKind::Connect, || {
            let mut fields = conn_fields(conn);
            fields.push(("name".into(), Value::Str(conn.name.borrow().clone())));
            fields
        });
    }

    /// A client connection closed: `disconnect`, and `slow_consumer` or `kick` when that is
    /// what closed it.
    pub(crate) fn conn_closed_event(&self, conn: &super::conn::Conn) {
        let code = conn.closed_with.get();
        let name = code.map_or("closed", shardbus_protocol::ErrorCode::name);
        self.event(EventKind::Disconnect, || {
            let mut fields = conn_fields(conn);
            fields.push(("code".into(), Value::Str(name.to_owned())));
            fields.push(("msgs_in".into(), Value::U64(conn.traffic.msgs_in.get())));
            fields.push(("msgs_out".into(), Value::U64(conn.traffic.msgs_out.get())));
            fields
        });
        let kind = match code {
            Some(shardbus_protocol::ErrorCode::SLOW_CONSUMER) => EventKind::SlowConsumer,
            Some(shardbus_protocol::ErrorCode::KICKED) => EventKind::Kick,
            _ => return,
        };
        self.event(kind, || conn_fields(conn));
    }
}

/// Who a connection is, as every connection event says it.
fn conn_fields(conn: &super::conn::Conn) -> Fields {
    vec![
        ("client_id".into(), Value::U64(conn.id)),
        (
            "remote".into(),
            Value::Str(conn.remote.map(|r| r.to_string()).unwrap_or_default()),
        ),
        ("user".into(), Value::Str(conn.identity_name().to_owned())),
    ]
}

impl Shard {
    /// A reload was applied: which sections changed, and which need a restart.
    pub(crate) fn reload_event(&self, changed: &serde_json::Value) {
        self.event(EventKind::Reload, || {
            let sections = changed
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(key, value)| *key != "needs_restart" && changed_value(value))
                .map(|(key, _)| Value::Str(key.clone()))
                .collect();
            let restart = changed
                .get("needs_restart")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(|s| Value::Str(s.to_owned())))
                .collect();
            vec![
                ("changed".into(), Value::List(sections)),
                ("needs_restart".into(), Value::List(restart)),
            ]
        });
    }

    /// A reload was refused; the running configuration stays.
    pub(crate) fn reload_refused_event(&self, why: &str) {
        self.event(EventKind::ConfigRefused, || {
            vec![("reason".into(), Value::Str(why.to_owned()))]
        });
    }
}

/// Whether a reload summary's value says its section changed: `true`, a non-empty list, or an
/// object (tokens, users) holding one.
fn changed_value(value: &serde_json::Value) -> bool {
    value.as_bool() == Some(true)
        || value.as_array().is_some_and(|a| !a.is_empty())
        || value
            .as_object()
            .is_some_and(|o| o.values().any(changed_value))
}
