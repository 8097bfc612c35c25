//! The blocking client's service calls: register (and the heartbeat thread that keeps every
//! registration alive), health, deregister, discover.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::container::{ContainerLimits, Value};
use crate::frame::Fields;
use crate::service::Health;

use super::blocking::Client;
use super::error::ClientError;
use super::service::{Instance, Service, ServiceSpec};
use super::session::Phase;
use super::subscription::Subscription;
use super::transport::{Inner, SubSlot};

/// The longest the heartbeat thread sleeps with nothing due (it wakes on every change too).
const IDLE_BEAT_CHECK: Duration = Duration::from_secs(1);

impl Client {
    /// Registers an instance of service `name` (PROTOCOL.md §3.12) and waits for its id and
    /// until every shard routes requests to it.
    /// Requests to its endpoints arrive on the returned [`Service`]; the client beats for it
    /// every `spec.heartbeat` and registers it again after a reconnect.
    ///
    /// # Errors
    /// [`ClientError::Server`] with `BAD_SERVICE`, `ALREADY_REGISTERED`, `TOO_MANY_SERVICES`,
    /// `PERMISSION_DENIED` ...; [`ClientError::Timeout`], [`ClientError::Closed`].
    pub fn register(&self, name: &str, spec: &ServiceSpec) -> Result<Service, ClientError> {
        let deadline = Instant::now() + self.inner.options.handshake_timeout;
        let (tx, rx) = mpsc::sync_channel(self.inner.options.subscription_capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut shared = self.wait_connected(deadline)?;
        let (key, sids, op_id) = shared.session.register(name, spec)?;
        shared.awaited.insert(op_id);
        for &sid in &sids {
            let slot = SubSlot {
                tx: tx.clone(),
                dropped: Arc::clone(&dropped),
            };
            shared.subs.insert(sid, slot);
        }
        if !shared.heartbeats_started {
            shared.heartbeats_started = true;
            let inner = Arc::clone(&self.inner);
            let beating = thread::Builder::new()
                .name("shardbus-heartbeat".into())
                .spawn(move || beat(&inner))?;
            if let Ok(mut threads) = self.inner.threads.lock() {
                threads.push(beating);
            }
        }
        self.inner.outbox_ready.notify_one();
        let answer = self.answer(shared, op_id, deadline);
        if answer.is_err() {
            let mut shared = self.inner.lock();
            let _ = shared.session.deregister(key);
            for sid in &sids {
                shared.subs.remove(sid);
            }
        }
        answer?;
        // Once the PONG is back every shard has the instance (the barrier follows it), so a
        // request from anywhere finds it.
        self.flush()?;
        // The endpoints share one channel; their sids stay in the session until deregistered.
        let first = sids.first().copied().unwrap_or(key);
        Ok(Service {
            client: self.clone(),
            key,
            name: name.to_owned(),
            requests: Subscription::detached(self.clone(), first, rx, dropped),
        })
    }

    /// The instance id of registration `key` on the current connection.
    pub(crate) fn instance_id(&self, key: u64) -> Option<u64> {
        self.inner.lock().session.instance(key)
    }

    pub(crate) fn set_service_health(
        &self,
        key: u64,
        health: Health,
        load: u32,
    ) -> Result<(), ClientError> {
        let mut shared = self.inner.open()?;
        shared.session.set_health(key, health, load)?;
        self.inner.changed.notify_all();
        Ok(())
    }

    pub(crate) fn deregister(&self, key: u64) -> Result<(), ClientError> {
        let mut shared = self.inner.open()?;
        if shared.session.deregister(key)?.is_some() {
            self.inner.outbox_ready.notify_one();
        }
        Ok(())
    }

    /// The instances of the services `pattern` matches (`>`: all) whose version meets
    /// `version` (a SemVer requirement such as `^1.2`; empty: any).
    ///
    /// # Errors
    /// [`ClientError::Server`] (`BAD_SERVICE` for a requirement that does not parse, ...),
    /// [`ClientError::Timeout`], [`ClientError::Closed`].
    pub fn discover(&self, pattern: &str, version: &str) -> Result<Vec<Instance>, ClientError> {
        let deadline = Instant::now() + self.inner.options.handshake_timeout;
        let mut shared = self.wait_connected(deadline)?;
        let op_id = shared.session.discover(pattern, version)?;
        shared.awaited.insert(op_id);
        self.inner.outbox_ready.notify_one();
        let (answer, payload) = self.answer(shared, op_id, deadline)?;
        if !matches!(answer, Fields::Discover(_)) {
            return Err(ClientError::Disconnected);
        }
        let value =
            crate::container::view::decode(&payload, &ContainerLimits::default())?.to_owned_value();
        let Value::List(entries) = value else {
            return Ok(Vec::new());
        };
        Ok(entries.into_iter().map(Instance::from_value).collect())
    }
}

/// The heartbeat thread: queues the heartbeats due, then sleeps until the next one (or a
/// change: a new registration, a health report, the client closing).
fn beat(inner: &Inner) {
    let mut shared = inner.lock();
    loop {
        if shared.closed {
            return;
        }
        let now = Instant::now();
        if shared.session.phase() == Phase::Ready
            && shared.session.send_heartbeats(now).unwrap_or(0) > 0
        {
            inner.outbox_ready.notify_one();
        }
        let wait = shared
            .session
            .heartbeat_due()
            .map_or(IDLE_BEAT_CHECK, |due| {
                due.saturating_duration_since(now).min(IDLE_BEAT_CHECK)
            })
            .max(Duration::from_millis(1));
        shared = inner
            .changed
            .wait_timeout(shared, wait)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}
