//! `Registry`: one shard's replica of every registered instance, kept equal on every shard by
//! the changes the instances' own shards send (up, health, down, tripped), as interest is.
//! A request is balanced from it on the requester's shard without asking anyone, and each
//! shard counts here what its own requesters sent each instance.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use semver::VersionReq;
use shardbus_protocol::container::Value;
use shardbus_protocol::{Headers, Health, topic};

use super::balance;
use super::options::ServiceConfig;
use super::registration::Registration;
use super::stats::EndpointStats;
use crate::fast_map::FastMap;
use crate::routing::ShardId;

/// One instance as a shard sees it.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) id: u64,
    /// The shard that owns its connection.
    pub(crate) shard: ShardId,
    pub(crate) conn: u64,
    pub(crate) registration: Box<Registration>,
    pub(crate) health: Health,
    pub(crate) load: u32,
    pub(crate) weight: u32,
    /// Smooth weighted round robin's running credit.
    pub(crate) credit: i64,
    /// Requests this shard has in flight to it.
    pub(crate) pending: u32,
    /// Timeouts in a row of this shard's requests to it, for the breaker.
    timeouts_in_a_row: u32,
    /// Out of rotation until then (the breaker tripped, here or on another shard).
    pub(crate) tripped_until: Option<Instant>,
    /// This shard's figures, one per endpoint, in the registration's order.
    stats: Vec<EndpointStats>,
}

impl Instance {
    fn new(id: u64, shard: ShardId, conn: u64, registration: Box<Registration>) -> Instance {
        Instance {
            id,
            shard,
            conn,
            weight: registration.weight,
            stats: vec![EndpointStats::default(); registration.endpoints.len()],
            registration,
            health: Health::Ok,
            load: 0,
            credit: 0,
            pending: 0,
            timeouts_in_a_row: 0,
            tripped_until: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn for_test(id: u64) -> Instance {
        let registration = Registration {
            name: "test".into(),
            version: semver::Version::new(1, 0, 0),
            description: "".into(),
            metadata: Vec::new(),
            endpoints: Vec::new(),
            heartbeat_ms: 1_000,
            weight: 1,
        };
        Instance::new(id, 0, id, Box::new(registration))
    }

    fn endpoint(&self, subject: &[u8]) -> Option<usize> {
        self.registration
            .endpoints
            .iter()
            .position(|e| e.subject.as_bytes() == subject)
    }

    /// The instance as DISCOVER and the HTTP listings describe it.
    pub(crate) fn describe(&self) -> Value {
        let r = &self.registration;
        let text = |s: &str| Value::Str(s.to_owned());
        let endpoints = r
            .endpoints
            .iter()
            .map(|e| {
                Value::Map(vec![
                    ("subject".into(), text(&e.subject)),
                    ("queue".into(), text(&e.queue)),
                ])
            })
            .collect();
        let metadata = r
            .metadata
            .iter()
            .map(|(k, v)| (k.to_string(), text(v)))
            .collect();
        Value::Map(vec![
            ("name".into(), text(&r.name)),
            ("instance".into(), Value::U64(self.id)),
            ("version".into(), Value::Str(r.version.to_string())),
            ("description".into(), text(&r.description)),
            ("metadata".into(), Value::Map(metadata)),
            ("endpoints".into(), Value::List(endpoints)),
            ("health".into(), text(self.health.name())),
            ("load".into(), Value::U32(self.load)),
            ("weight".into(), Value::U32(self.weight)),
            ("heartbeat_ms".into(), Value::U32(r.heartbeat_ms)),
            ("shard".into(), Value::U16(self.shard)),
            ("client_id".into(), Value::U64(self.conn)),
        ])
    }
}

/// One service: its options and its instances, in registration order.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) options: ServiceConfig,
    pub(crate) instances: Vec<Instance>,
    cursor: usize,
}

/// Where a request goes: instance `id`'s connection `conn` on `shard`, subscription `sid`,
/// counted against its endpoint number `endpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) id: u64,
    pub(crate) shard: ShardId,
    pub(crate) conn: u64,
    pub(crate) sid: u64,
    pub(crate) endpoint: u16,
}

/// The registry replica of one shard.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    services: BTreeMap<Box<str>, Service>,
    /// Endpoint subject → the services listing it, by name. A subject should belong to one
    /// service; when two list it, the first by name that can serve answers (the same on every
    /// shard whatever order registrations arrived in).
    endpoints: FastMap<Box<[u8]>, Vec<Box<str>>>,
    /// Instance id → its service's name.
    names: FastMap<u64, Box<str>>,
    options: Vec<ServiceConfig>,
}

impl Registry {
    pub(crate) fn new(options: &[ServiceConfig]) -> Registry {
        Registry {
            options: options.to_vec(),
            ..Registry::default()
        }
    }

    /// Whether any instance is registered anywhere: when not, requests ask nothing more.
    pub(crate) fn any(&self) -> bool {
        !self.names.is_empty()
    }

    /// A reload: every service takes the options its name now matches.
    pub(crate) fn set_options(&mut self, options: &[ServiceConfig]) {
        self.options = options.to_vec();
        for (name, service) in &mut self.services {
            service.options = ServiceConfig::for_name(&self.options, name);
        }
    }

    /// Every service, by name.
    pub(crate) fn services(&self) -> impl Iterator<Item = (&str, &Service)> {
        self.services.iter().map(|(name, s)| (name.as_ref(), s))
    }

    /// The instance with this id.
    #[cfg(test)]
    pub(crate) fn instance(&self, id: u64) -> Option<&Instance> {
        let name = self.names.get(&id)?;
        self.services
            .get(name)?
            .instances
            .iter()
            .find(|i| i.id == id)
    }

    fn instance_mut(&mut self, id: u64) -> Option<&mut Instance> {
        let name = self.names.get(&id)?;
        self.services
            .get_mut(name)?
            .instances
            .iter_mut()
            .find(|i| i.id == id)
    }

    /// An instance registered (on `shard`, connection `conn`).
    pub(crate) fn up(
        &mut self,
        id: u64,
        shard: ShardId,
        conn: u64,
        registration: Box<Registration>,
    ) {
        let name = registration.name.clone();
        for endpoint in &registration.endpoints {
            let names = self
                .endpoints
                .entry(endpoint.subject.as_bytes().into())
                .or_default();
            if let Err(at) = names.binary_search(&name) {
                names.insert(at, name.clone());
            }
        }
        let options = ServiceConfig::for_name(&self.options, &name);
        let service = self
            .services
            .entry(name.clone())
            .or_insert_with(|| Service {
                options,
                instances: Vec::new(),
                cursor: 0,
            });
        service
            .instances
            .push(Instance::new(id, shard, conn, registration));
        self.names.insert(id, name);
    }

    /// An instance's health or load changed.
    pub(crate) fn set_health(&mut self, id: u64, health: Health, load: u32) {
        if let Some(instance) = self.instance_mut(id) {
            instance.health = health;
            instance.load = load;
        }
    }

    /// The breaker took instance `id` out of rotation until `until`.
    pub(crate) fn trip(&mut self, id: u64, until: Instant) {
        if let Some(instance) = self.instance_mut(id) {
            instance.tripped_until = Some(until);
            instance.timeouts_in_a_row = 0;
        }
    }

    /// An instance went; returns it.
    pub(crate) fn down(&mut self, id: u64) -> Option<Instance> {
        let name = self.names.remove(&id)?;
        let service = self.services.get_mut(&name)?;
        let at = service.instances.iter().position(|i| i.id == id)?;
        let instance = service.instances.remove(at);
        let still_listed = |subject: &[u8], service: &Service| {
            service
                .instances
                .iter()
                .any(|i| i.endpoint(subject).is_some())
        };
        for endpoint in &instance.registration.endpoints {
            let subject = endpoint.subject.as_bytes();
            if still_listed(subject, service) {
                continue;
            }
            if let Some(names) = self.endpoints.get_mut(subject) {
                names.retain(|n| *n != name);
                if names.is_empty() {
                    self.endpoints.remove(subject);
                }
            }
        }
        if service.instances.is_empty() {
            self.services.remove(&name);
        }
        Some(instance)
    }

    /// The name of instance `id`'s service.
    pub(crate) fn name_of(&self, id: u64) -> Option<Box<str>> {
        self.names.get(&id).cloned()
    }

    /// The options of service `name`, while it has instances.
    pub(crate) fn service_options(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.get(name).map(|s| &s.options)
    }

    /// The options of service `name`: its own while it has instances, else the configured
    /// ones its name matches.
    pub(crate) fn options_of(&self, name: &str) -> ServiceConfig {
        self.service_options(name)
            .cloned()
            .unwrap_or_else(|| ServiceConfig::for_name(&self.options, name))
    }

    /// The service whose gate a request on `subject` must pass, if it has flow control (the
    /// first by name listing the endpoint).
    pub(crate) fn gated_service(&self, subject: &[u8]) -> Option<Box<str>> {
        let name = self.endpoints.get(subject)?.first()?;
        let service = self.services.get(name)?;
        service.options.gated().then(|| name.clone())
    }

    /// Whether `subject` is some service's endpoint.
    pub(crate) fn is_endpoint(&self, subject: &[u8]) -> bool {
        self.endpoints.contains_key(subject)
    }

    /// The instance a request on `subject` goes to, never `exclude` (the one that just
    /// vanished); `None` when no instance may serve it. Counts it as in flight.
    pub(crate) fn pick(
        &mut self,
        subject: &[u8],
        headers: &Headers<'_>,
        now: Instant,
        exclude: u64,
    ) -> Option<Target> {
        let names = self.endpoints.get(subject)?;
        for name in names {
            let Some(service) = self.services.get_mut(name) else {
                continue;
            };
            let key = headers.get(&service.options.hash_header).map(str::as_bytes);
            let offers = |i: &Instance| i.id != exclude && i.endpoint(subject).is_some();
            let Some(k) = balance::pick(
                &mut service.instances,
                service.options.strategy,
                &mut service.cursor,
                key,
                now,
                offers,
            ) else {
                continue;
            };
            let instance = service.instances.get_mut(k)?;
            let endpoint = instance.endpoint(subject)?;
            let sid = instance.registration.endpoints.get(endpoint)?.sid;
            instance.pending += 1;
            if let Some(stats) = instance.stats.get_mut(endpoint) {
                stats.requests += 1;
            }
            return Some(Target {
                id: instance.id,
                shard: instance.shard,
                conn: instance.conn,
                sid,
                endpoint: u16::try_from(endpoint).unwrap_or(u16::MAX),
            });
        }
        None
    }

    /// A request to `id` was answered after `elapsed` (`error`: its status said so).
    pub(crate) fn answered(&mut self, id: u64, endpoint: u16, elapsed: Duration, error: bool) {
        if let Some(instance) = self.instance_mut(id) {
            instance.pending = instance.pending.saturating_sub(1);
            instance.timeouts_in_a_row = 0;
            if let Some(stats) = instance.stats.get_mut(usize::from(endpoint)) {
                stats.answered(elapsed, error);
            }
        }
    }

    /// A request to `id` ended unanswered: its requester went, or it is being retried.
    pub(crate) fn abandoned(&mut self, id: u64) {
        if let Some(instance) = self.instance_mut(id) {
            instance.pending = instance.pending.saturating_sub(1);
        }
    }

    /// A request to `id` timed out. Returns until when the breaker takes it out, when this
    /// timeout tripped it.
    pub(crate) fn timed_out(&mut self, id: u64, endpoint: u16, now: Instant) -> Option<Instant> {
        let name = self.names.get(&id)?;
        let service = self.services.get_mut(name)?;
        let (failures, cooldown) = (
            service.options.breaker_failures,
            service.options.breaker_cooldown_ms,
        );
        let instance = service.instances.iter_mut().find(|i| i.id == id)?;
        instance.pending = instance.pending.saturating_sub(1);
        if let Some(stats) = instance.stats.get_mut(usize::from(endpoint)) {
            stats.timeouts += 1;
        }
        instance.timeouts_in_a_row += 1;
        if failures == 0 || instance.timeouts_in_a_row < failures {
            return None;
        }
        let until = now + Duration::from_millis(cooldown);
        instance.tripped_until = Some(until);
        instance.timeouts_in_a_row = 0;
        Some(until)
    }

    /// The instances of the services `pattern` matches whose version `version` accepts.
    pub(crate) fn discover(&self, pattern: &str, version: Option<&VersionReq>) -> Vec<&Instance> {
        self.services
            .iter()
            .filter(|(name, _)| topic::matches(pattern, name))
            .flat_map(|(_, service)| &service.instances)
            .filter(|i| version.is_none_or(|req| req.matches(&i.registration.version)))
            .collect()
    }

    /// This shard's figures for the instances of the services `pattern` matches, by instance
    /// id: requests in flight and each endpoint's part (`EndpointStats::to_part`).
    pub(crate) fn stats_part(&self, pattern: &str) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for instance in self
            .services
            .iter()
            .filter(|(name, _)| topic::matches(pattern, name))
            .flat_map(|(_, service)| &service.instances)
        {
            let endpoints: Vec<serde_json::Value> =
                instance.stats.iter().map(EndpointStats::to_part).collect();
            out.insert(
                instance.id.to_string(),
                serde_json::json!({"pending": instance.pending, "endpoints": endpoints}),
            );
        }
        serde_json::Value::Object(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;
    use crate::services::registration::Endpoint;

    fn registration(name: &str, subjects: &[&str]) -> Box<Registration> {
        let endpoints = subjects
            .iter()
            .enumerate()
            .map(|(i, s)| Endpoint {
                subject: (*s).into(),
                queue: "q".into(),
                sid: i as u64 + 1,
            })
            .collect();
        Box::new(Registration {
            name: name.into(),
            endpoints,
            ..*Instance::for_test(0).registration
        })
    }

    #[test]
    fn instances_come_and_go_with_their_endpoints() {
        let mut registry = Registry::new(&[]);
        registry.up(1, 0, 10, registration("users", &["users.get", "users.put"]));
        registry.up(2, 1, 20, registration("users", &["users.get"]));
        let now = Instant::now();
        let picked: Vec<u64> = (0..4)
            .map(|_| {
                registry
                    .pick(b"users.get", &Headers::EMPTY, now, 0)
                    .unwrap()
                    .id
            })
            .collect();
        assert_eq!(picked, [1, 2, 1, 2]);
        let put = registry
            .pick(b"users.put", &Headers::EMPTY, now, 0)
            .unwrap();
        assert_eq!((put.id, put.sid, put.endpoint), (1, 2, 1));
        assert_eq!(
            registry
                .pick(b"users.get", &Headers::EMPTY, now, 1)
                .unwrap()
                .id,
            2
        );
        assert_eq!(registry.instance(1).unwrap().pending, 3);
        registry.down(1).unwrap();
        assert!(!registry.is_endpoint(b"users.put"));
        assert!(registry.is_endpoint(b"users.get"));
        registry.down(2).unwrap();
        assert!(!registry.any() && registry.services().next().is_none());
        assert!(registry.endpoints.is_empty());
    }

    #[test]
    fn timeouts_in_a_row_trip_the_breaker_and_an_answer_resets_them() {
        let mut registry = Registry::new(&[ServiceConfig {
            breaker_failures: 2,
            ..ServiceConfig::default()
        }]);
        registry.up(1, 0, 10, registration("svc", &["svc.a"]));
        let now = Instant::now();
        assert!(registry.timed_out(1, 0, now).is_none());
        registry.answered(1, 0, Duration::from_millis(1), false);
        assert!(registry.timed_out(1, 0, now).is_none());
        let until = registry.timed_out(1, 0, now).unwrap();
        assert!(until > now);
        assert!(registry.pick(b"svc.a", &Headers::EMPTY, now, 0).is_none());
        assert!(registry.pick(b"svc.a", &Headers::EMPTY, until, 0).is_some());
    }
}
