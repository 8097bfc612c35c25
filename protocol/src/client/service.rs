//! Service instances in the blocking client: what a registration says ([`ServiceSpec`],
//! [`Endpoint`]), the handle that keeps an instance registered ([`Service`]: its requests,
//! its health, deregistration on drop), and what discovery answers ([`Instance`]).

use std::time::Duration;

use crate::container::Value;
use crate::service::Health;

use super::blocking::Client;
use super::error::ClientError;
use super::subscription::Subscription;

/// One endpoint: requests on `subject` reach the service (balanced over its instances);
/// publications on it reach one instance of the queue group `queue` (`q` when unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The subject (no wildcards).
    pub subject: String,
    /// The queue group for publications.
    pub queue: Option<String>,
}

/// What a registration tells the server (PROTOCOL.md §3.12).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// A SemVer version, `1.4.0`.
    pub version: String,
    /// Free text for people.
    pub description: String,
    /// String pairs for tools and people.
    pub metadata: Vec<(String, String)>,
    /// Where requests reach the instance.
    pub endpoints: Vec<Endpoint>,
    /// How often the client beats for the instance.
    pub heartbeat: Duration,
    /// This instance's share under the `weighted` strategy (0: the server's default, 1).
    pub weight: u32,
}

impl ServiceSpec {
    /// A spec with this version, no endpoints yet, beating every 5 s.
    pub fn new(version: &str) -> ServiceSpec {
        ServiceSpec {
            version: version.to_owned(),
            description: String::new(),
            metadata: Vec::new(),
            endpoints: Vec::new(),
            heartbeat: Duration::from_secs(5),
            weight: 0,
        }
    }

    /// Adds an endpoint on `subject`.
    #[must_use]
    pub fn endpoint(mut self, subject: &str) -> ServiceSpec {
        self.endpoints.push(Endpoint {
            subject: subject.to_owned(),
            queue: None,
        });
        self
    }

    /// Sets the heartbeat interval.
    #[must_use]
    pub fn heartbeat(mut self, every: Duration) -> ServiceSpec {
        self.heartbeat = every;
        self
    }

    /// Sets the weight.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> ServiceSpec {
        self.weight = weight;
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, text: &str) -> ServiceSpec {
        self.description = text.to_owned();
        self
    }

    /// Adds a metadata pair.
    #[must_use]
    pub fn meta(mut self, key: &str, value: &str) -> ServiceSpec {
        self.metadata.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The registration's container map, with the sid each endpoint's requests arrive on.
    pub(crate) fn to_value(&self, sids: &[u64]) -> Value {
        let endpoints = self
            .endpoints
            .iter()
            .zip(sids)
            .map(|(endpoint, &sid)| {
                let mut entry = vec![
                    ("subject".to_owned(), Value::Str(endpoint.subject.clone())),
                    ("sid".to_owned(), Value::U64(sid)),
                ];
                if let Some(queue) = &endpoint.queue {
                    entry.push(("queue".to_owned(), Value::Str(queue.clone())));
                }
                Value::Map(entry)
            })
            .collect();
        let metadata = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
            .collect();
        let mut map = vec![
            ("version".to_owned(), Value::Str(self.version.clone())),
            ("endpoints".to_owned(), Value::List(endpoints)),
            ("metadata".to_owned(), Value::Map(metadata)),
        ];
        if !self.description.is_empty() {
            map.push((
                "description".to_owned(),
                Value::Str(self.description.clone()),
            ));
        }
        if self.weight != 0 {
            map.push(("weight".to_owned(), Value::U32(self.weight)));
        }
        Value::Map(map)
    }
}

/// A registered instance. Requests to its endpoints arrive on [`Service::requests`]; answer
/// them with [`Client::respond`]. The client beats for it and registers it again after a
/// reconnect (its id changes then). Dropping it deregisters.
pub struct Service {
    pub(crate) client: Client,
    pub(crate) key: u64,
    pub(crate) name: String,
    pub(crate) requests: Subscription,
}

impl Service {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instance id the server gave on the current connection (`None` while registering
    /// again after a reconnect).
    pub fn id(&self) -> Option<u64> {
        self.client.instance_id(self.key)
    }

    /// Requests to every endpoint, in arrival order.
    pub fn requests(&self) -> &Subscription {
        &self.requests
    }

    /// Reports health and a load figure now and with every later heartbeat.
    ///
    /// # Errors
    /// [`ClientError::Closed`].
    pub fn set_health(&self, health: Health, load: u32) -> Result<(), ClientError> {
        self.client.set_service_health(self.key, health, load)
    }

    /// Deregisters now (the server stops sending requests and ends the endpoints).
    ///
    /// # Errors
    /// [`ClientError::Closed`].
    pub fn deregister(self) -> Result<(), ClientError> {
        self.client.deregister(self.key)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.client.deregister(self.key);
    }
}

/// One instance, as discovery lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// The service's name.
    pub name: String,
    /// Its id.
    pub id: u64,
    /// Its version.
    pub version: String,
    /// Its health as the server sees it.
    pub health: Health,
    /// The last load figure it reported.
    pub load: u32,
    /// Its endpoints' subjects.
    pub endpoints: Vec<String>,
    /// The whole entry, as the server sent it (description, metadata, weight, ...).
    pub entry: Value,
}

impl Instance {
    /// Reads one entry of a DISCOVER answer.
    pub(crate) fn from_value(entry: Value) -> Instance {
        let text = |key: &str| match entry.get(key) {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        };
        let number = |key: &str| match entry.get(key) {
            Some(Value::U64(n)) => *n,
            Some(Value::U32(n)) => u64::from(*n),
            _ => 0,
        };
        let endpoints = match entry.get("endpoints") {
            Some(Value::List(list)) => list
                .iter()
                .filter_map(|e| match e.get("subject") {
                    Some(Value::Str(s)) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Instance {
            name: text("name"),
            id: number("instance"),
            version: text("version"),
            health: Health::from_name(&text("health")).unwrap_or(Health::Unhealthy),
            load: u32::try_from(number("load")).unwrap_or(u32::MAX),
            endpoints,
            entry,
        }
    }
}
