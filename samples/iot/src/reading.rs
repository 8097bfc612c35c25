//! A device's reading: what `sim` publishes and everything else reads. It travels as a typed
//! container map on `iot.dev.<site>.<device>`, a room that retains its last publication, so
//! whoever joins it learns the device's last value at once.

use shardbus_protocol::client::Message;
use shardbus_protocol::container::{ContainerLimits, Value};

/// The subject prefix of every device's readings.
pub const PREFIX: &str = "iot.dev";

/// One reading of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub site: String,
    pub device: String,
    /// The device's own count of readings, from 1: a repeated or older one is a duplicate.
    pub seq: u64,
    /// When the device took it, milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// °C.
    pub temperature: f64,
    /// % relative humidity.
    pub humidity: f64,
    /// % charge left.
    pub battery: f64,
    /// `ok`, or `fault` when the device says its sensor failed.
    pub status: String,
}

impl Reading {
    /// The subject a device publishes on.
    pub fn subject(site: &str, device: &str) -> String {
        format!("{PREFIX}.{site}.{device}")
    }

    /// `site.device`, how alerts and queries name a device.
    pub fn key(&self) -> String {
        format!("{}.{}", self.site, self.device)
    }

    /// As a container map.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            ("site".into(), Value::Str(self.site.clone())),
            ("device".into(), Value::Str(self.device.clone())),
            ("seq".into(), Value::U64(self.seq)),
            ("ts_ms".into(), Value::U64(self.ts_ms)),
            ("temperature".into(), Value::F64(self.temperature)),
            ("humidity".into(), Value::F64(self.humidity)),
            ("battery".into(), Value::F64(self.battery)),
            ("status".into(), Value::Str(self.status.clone())),
        ])
    }

    /// Reads one back from a container map; `None` when a field is missing or mistyped.
    pub fn from_value(value: &Value) -> Option<Reading> {
        let text = |key: &str| match value.get(key) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        };
        let unsigned = |key: &str| match value.get(key) {
            Some(Value::U64(n)) => Some(*n),
            _ => None,
        };
        Some(Reading {
            site: text("site")?,
            device: text("device")?,
            seq: unsigned("seq")?,
            ts_ms: unsigned("ts_ms")?,
            temperature: number(value.get("temperature"))?,
            humidity: number(value.get("humidity"))?,
            battery: number(value.get("battery"))?,
            status: text("status")?,
        })
    }

    /// The reading a message carries, if it carries one.
    pub fn from_message(message: &Message) -> Option<Reading> {
        Reading::from_value(&message.value(&ContainerLimits::default()).ok()?)
    }

    /// The value of `metric` (`temperature`, `humidity`, `battery`).
    pub fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Temperature => self.temperature,
            Metric::Humidity => self.humidity,
            Metric::Battery => self.battery,
        }
    }
}

/// A number in a container, whichever numeric type it came as (JSON publishers send integers
/// for whole values).
pub fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::F64(x) => Some(*x),
        Value::U64(n) => Some(*n as f64),
        Value::I64(n) => Some(*n as f64),
        _ => None,
    }
}

/// What a reading measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Temperature,
    Humidity,
    Battery,
}

impl Metric {
    /// Its name, as readings and rules spell it.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Temperature => "temperature",
            Metric::Humidity => "humidity",
            Metric::Battery => "battery",
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn a_reading_goes_through_a_container_and_back() {
        let reading = Reading {
            site: "site1".into(),
            device: "d007".into(),
            seq: 42,
            ts_ms: 1_700_000_000_000,
            temperature: 21.5,
            humidity: 40.25,
            battery: 99.0,
            status: "ok".into(),
        };
        let bytes = reading.to_value().to_binary().unwrap();
        let value = shardbus_protocol::container::view::decode(&bytes, &ContainerLimits::default())
            .unwrap()
            .to_owned_value();
        assert_eq!(Reading::from_value(&value), Some(reading.clone()));
        assert_eq!(reading.key(), "site1.d007");
        assert_eq!(Reading::subject("site1", "d007"), "iot.dev.site1.d007");
        assert_eq!(Reading::from_value(&Value::Null), None);
    }
}
