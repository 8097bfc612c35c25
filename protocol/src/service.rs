//! The fixed fields of the service ops (REGISTER, HEARTBEAT, DEREGISTER, DISCOVER) and the
//! health an instance reports (PROTOCOL.md §3.12).

use zerocopy::FromBytes;

use crate::header::RawService;

/// What the service ops carry besides their sections; each op reads them its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceFields {
    /// The instance the op is about; the server's answer to REGISTER names the new one.
    pub instance: u64,
    /// REGISTER: how often the instance promises a heartbeat, in milliseconds.
    pub heartbeat_ms: u32,
    /// HEARTBEAT: a load figure of the instance's choosing (queue depth, CPU percent).
    pub load: u32,
    /// DISCOVER (server): instances in the answer's list.
    pub count: u32,
    /// HEARTBEAT: the health the instance reports.
    pub health: Health,
}

/// An instance's health. Instances report the first three; the server marks an instance
/// `Unhealthy` when its heartbeats stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Health {
    /// Serving: gets its share of requests.
    #[default]
    Ok,
    /// Serving but struggling: gets requests only when no instance is `Ok`.
    Degraded,
    /// Finishing what it has: gets no new requests.
    Draining,
    /// Missed its heartbeats (server only): gets no requests until one arrives.
    Unhealthy,
}

impl Health {
    /// The wire value.
    pub fn to_u16(self) -> u16 {
        match self {
            Health::Ok => 0,
            Health::Degraded => 1,
            Health::Draining => 2,
            Health::Unhealthy => 3,
        }
    }

    /// Reads a wire value; `None` for a number v1 does not define.
    pub fn from_u16(value: u16) -> Option<Health> {
        Some(match value {
            0 => Health::Ok,
            1 => Health::Degraded,
            2 => Health::Draining,
            3 => Health::Unhealthy,
            _ => return None,
        })
    }

    /// The name PROTOCOL.md and the JSON mapping use.
    pub fn name(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Draining => "draining",
            Health::Unhealthy => "unhealthy",
        }
    }

    /// Reads a name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Health> {
        [
            Health::Ok,
            Health::Degraded,
            Health::Draining,
            Health::Unhealthy,
        ]
        .into_iter()
        .find(|health| health.name() == name)
    }
}

impl ServiceFields {
    /// Reads the fields; an unknown health value reads as `Unhealthy`, so the decoder stays
    /// total and the server refuses it where it matters (a heartbeat).
    pub(crate) fn read(bytes: &[u8]) -> Option<ServiceFields> {
        let raw = RawService::ref_from_bytes(bytes).ok()?;
        Some(ServiceFields {
            instance: raw.instance.get(),
            heartbeat_ms: raw.heartbeat_ms.get(),
            load: raw.load.get(),
            count: raw.count.get(),
            health: Health::from_u16(raw.health.get()).unwrap_or(Health::Unhealthy),
        })
    }

    pub(crate) fn raw(&self) -> RawService {
        RawService {
            instance: self.instance.into(),
            heartbeat_ms: self.heartbeat_ms.into(),
            load: self.load.into(),
            count: self.count.into(),
            health: self.health.to_u16().into(),
            reserved: 0.into(),
        }
    }
}
