//! Service instances in the client session (PROTOCOL.md §3.12): REGISTER and the instance id
//! the server gave, heartbeats when they are due, DEREGISTER, DISCOVER. After a reconnect the
//! session registers every instance again (the server forgot them with the old connection) and
//! beats for the new ids.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::client::service::ServiceSpec;
use crate::flags::Flags;
use crate::frame::{Fields, Frame};
use crate::service::{Health, ServiceFields};
use crate::topic::{validate_pattern, validate_subject};

use super::{ClientSession, Subscription};
use crate::client::error::ClientError;

/// One registration the session keeps alive.
#[derive(Debug, Clone)]
pub(super) struct Registration {
    name: String,
    /// The registration's container map, sent with every REGISTER.
    description: Vec<u8>,
    heartbeat: Duration,
    /// The server's id for it on the current connection (0 until REGISTER is answered).
    instance: u64,
    health: Health,
    load: u32,
    next_beat: Option<Instant>,
    /// The sids its endpoints' requests arrive on.
    sids: Vec<u64>,
}

/// The session's registrations, by the local key `register` returned.
#[derive(Debug, Default)]
pub(super) struct Registrations {
    by_key: BTreeMap<u64, Registration>,
    /// REGISTERs waiting for their answer: op id → key.
    answering: HashMap<u32, u64>,
}

impl ClientSession {
    fn write_register(&mut self, key: u64) -> Result<u32, ClientError> {
        let Some(reg) = self.services.by_key.get(&key) else {
            return Ok(0);
        };
        let fields = Fields::Register(ServiceFields {
            heartbeat_ms: u32::try_from(reg.heartbeat.as_millis()).unwrap_or(u32::MAX),
            ..ServiceFields::default()
        });
        let (name, description) = (reg.name.clone(), reg.description.clone());
        let op_id = self.push(fields, Flags::CONTAINER, name.as_bytes(), &[], &description)?;
        self.services.answering.insert(op_id, key);
        Ok(op_id)
    }

    /// Registers an instance of service `name` as `spec` says (PROTOCOL.md §3.12), each
    /// endpoint's requests arriving on a sid of its own. Returns the registration's local key,
    /// the endpoints' sids (in `spec`'s order) and the REGISTER's op id; the instance id
    /// arrives with the answer ([`ClientSession::instance`]).
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for a name or endpoint that is not a subject, a description
    /// too large; [`ClientError::Container`] if the description does not encode.
    pub fn register(
        &mut self,
        name: &str,
        spec: &ServiceSpec,
    ) -> Result<(u64, Vec<u64>, u32), ClientError> {
        let max_topic = usize::from(self.limits.max_topic_len);
        validate_subject(name.as_bytes(), max_topic)?;
        for endpoint in &spec.endpoints {
            validate_subject(endpoint.subject.as_bytes(), max_topic)?;
        }
        let key = self.next_id;
        let sids: Vec<u64> = (1..=spec.endpoints.len() as u64).map(|i| key + i).collect();
        let description = spec.to_value(&sids).to_binary()?;
        self.check_payload(description.len())?;
        self.next_id += 1 + sids.len() as u64;
        for (endpoint, &sid) in spec.endpoints.iter().zip(&sids) {
            let sub = Subscription {
                pattern: endpoint.subject.clone(),
                queue: endpoint.queue.clone(),
                remaining: None,
                room: None,
                endpoint: true,
            };
            self.subs.insert(sid, sub);
        }
        self.services.by_key.insert(
            key,
            Registration {
                name: name.to_owned(),
                description,
                heartbeat: spec.heartbeat,
                instance: 0,
                health: Health::Ok,
                load: 0,
                next_beat: None,
                sids: sids.clone(),
            },
        );
        let op_id = self.write_register(key)?;
        Ok((key, sids, op_id))
    }

    /// The instance id registration `key` has on the current connection, once answered.
    pub fn instance(&self, key: u64) -> Option<u64> {
        self.services
            .by_key
            .get(&key)
            .map(|reg| reg.instance)
            .filter(|&id| id != 0)
    }

    /// Sets the health and load registration `key` reports, and beats at once with them.
    ///
    /// # Errors
    /// As for any frame queued.
    pub fn set_health(&mut self, key: u64, health: Health, load: u32) -> Result<(), ClientError> {
        let Some(reg) = self.services.by_key.get_mut(&key) else {
            return Ok(());
        };
        reg.health = health;
        reg.load = load;
        if reg.instance != 0 {
            reg.next_beat = Some(Instant::now());
        }
        Ok(())
    }

    /// Ends registration `key`: DEREGISTER when the server knows it. Returns its op id then.
    ///
    /// # Errors
    /// As for any frame queued.
    pub fn deregister(&mut self, key: u64) -> Result<Option<u32>, ClientError> {
        let Some(reg) = self.services.by_key.remove(&key) else {
            return Ok(None);
        };
        self.services.answering.retain(|_, k| *k != key);
        for sid in &reg.sids {
            self.subs.remove(sid);
        }
        if reg.instance == 0 {
            return Ok(None);
        }
        let fields = Fields::Deregister(ServiceFields {
            instance: reg.instance,
            ..ServiceFields::default()
        });
        self.push(fields, Flags::empty(), b"", &[], &[]).map(Some)
    }

    /// Asks for the instances of the services `pattern` matches (`>`: all), of versions
    /// `version` accepts (a SemVer requirement such as `^1.2`; empty: any). Returns the op id
    /// the answer carries.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for a pattern that breaks the grammar.
    pub fn discover(&mut self, pattern: &str, version: &str) -> Result<u32, ClientError> {
        validate_pattern(pattern.as_bytes(), usize::from(self.limits.max_topic_len))?;
        let fields = Fields::Discover(ServiceFields::default());
        self.push(
            fields,
            Flags::empty(),
            pattern.as_bytes(),
            &[],
            version.as_bytes(),
        )
    }

    /// When the next heartbeat is due, for the caller's timer.
    pub fn heartbeat_due(&self) -> Option<Instant> {
        self.services
            .by_key
            .values()
            .filter_map(|reg| reg.next_beat)
            .min()
    }

    /// Queues the heartbeats due at `now`. Returns how many.
    ///
    /// # Errors
    /// As for any frame queued.
    pub fn send_heartbeats(&mut self, now: Instant) -> Result<usize, ClientError> {
        let due: Vec<(u64, ServiceFields)> = self
            .services
            .by_key
            .iter()
            .filter(|(_, reg)| reg.next_beat.is_some_and(|at| at <= now))
            .map(|(&key, reg)| {
                let fields = ServiceFields {
                    instance: reg.instance,
                    load: reg.load,
                    health: reg.health,
                    ..ServiceFields::default()
                };
                (key, fields)
            })
            .collect();
        for (key, fields) in &due {
            self.push(Fields::Heartbeat(*fields), Flags::empty(), b"", &[], &[])?;
            if let Some(reg) = self.services.by_key.get_mut(key) {
                reg.next_beat = Some(now + reg.heartbeat);
            }
        }
        Ok(due.len())
    }

    /// A new connection: every registration is sent again and waits for its new id.
    pub(super) fn register_again(&mut self) -> Result<(), ClientError> {
        self.services.answering.clear();
        let keys: Vec<u64> = self.services.by_key.keys().copied().collect();
        for key in keys {
            if let Some(reg) = self.services.by_key.get_mut(&key) {
                reg.instance = 0;
                reg.next_beat = None;
            }
            self.write_register(key)?;
        }
        Ok(())
    }

    /// REGISTER's answer: the registration it answers gets its id and starts beating.
    pub(super) fn note_registered(
        &mut self,
        frame: &Frame<'_>,
        fields: ServiceFields,
        now: Instant,
    ) {
        let Some(key) = self.services.answering.remove(&frame.op_id) else {
            return;
        };
        if let Some(reg) = self.services.by_key.get_mut(&key) {
            reg.instance = fields.instance;
            reg.next_beat = Some(now + reg.heartbeat);
        }
    }

    /// An ERR answering a REGISTER: that registration was refused and is forgotten.
    pub(super) fn note_refused(&mut self, op_id: u32) {
        if let Some(key) = self.services.answering.remove(&op_id)
            && let Some(reg) = self.services.by_key.remove(&key)
        {
            for sid in &reg.sids {
                self.subs.remove(sid);
            }
        }
    }
}
