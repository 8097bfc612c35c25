//! Rolling windows: a device's readings of the last `span`, and what they add up to — per
//! device (count, min, mean, max of each metric, the last reading) and per site (the devices
//! reporting, their mean). Readings older than the span fall out as newer ones arrive, so a
//! window holds at most a span's worth of one device's readings.

use std::collections::{BTreeMap, VecDeque};

use shardbus_protocol::container::Value;

use crate::reading::{Metric, Reading};

/// Count, min, mean and max of one metric over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
}

impl Summary {
    fn of(values: impl Iterator<Item = f64>) -> Summary {
        let (mut count, mut sum, mut min, mut max) = (0u64, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        for value in values {
            count += 1;
            sum += value;
            min = min.min(value);
            max = max.max(value);
        }
        if count == 0 {
            return Summary::default();
        }
        Summary {
            count,
            min,
            mean: sum / count as f64,
            max,
        }
    }

    /// As a container map.
    pub fn to_value(self) -> Value {
        Value::Map(vec![
            ("count".into(), Value::U64(self.count)),
            ("min".into(), Value::F64(self.min)),
            ("mean".into(), Value::F64(self.mean)),
            ("max".into(), Value::F64(self.max)),
        ])
    }
}

/// One device's readings of the last span.
#[derive(Debug, Default)]
pub struct DeviceWindow {
    readings: VecDeque<Reading>,
}

impl DeviceWindow {
    /// The last reading, if any is in the window.
    pub fn last(&self) -> Option<&Reading> {
        self.readings.back()
    }

    /// One metric over the window.
    pub fn summary(&self, metric: Metric) -> Summary {
        Summary::of(self.readings.iter().map(|r| r.metric(metric)))
    }

    /// Readings in the window.
    pub fn len(&self) -> usize {
        self.readings.len()
    }
}

/// Every device's window, by site and device.
#[derive(Debug)]
pub struct Windows {
    span_ms: u64,
    sites: BTreeMap<String, BTreeMap<String, DeviceWindow>>,
}

impl Windows {
    /// Windows of `span_ms`.
    pub fn new(span_ms: u64) -> Windows {
        Windows {
            span_ms,
            sites: BTreeMap::new(),
        }
    }

    /// Adds `reading` (received at `now_ms`); returns `false` for a duplicate (a sequence number
    /// the device's window already passed).
    pub fn add(&mut self, reading: Reading, now_ms: u64) -> bool {
        let window = self
            .sites
            .entry(reading.site.clone())
            .or_default()
            .entry(reading.device.clone())
            .or_default();
        if window.last().is_some_and(|last| last.seq >= reading.seq) {
            return false;
        }
        window.readings.push_back(reading);
        let oldest = now_ms.saturating_sub(self.span_ms);
        while window.readings.front().is_some_and(|r| r.ts_ms < oldest) && window.readings.len() > 1
        {
            window.readings.pop_front();
        }
        true
    }

    /// A device's window.
    pub fn device(&self, site: &str, device: &str) -> Option<&DeviceWindow> {
        self.sites.get(site)?.get(device)
    }

    /// A site's devices' windows.
    pub fn site(&self, site: &str) -> Option<&BTreeMap<String, DeviceWindow>> {
        self.sites.get(site)
    }

    /// The sites, each with its devices' windows.
    pub fn sites(&self) -> impl Iterator<Item = (&String, &BTreeMap<String, DeviceWindow>)> {
        self.sites.iter()
    }

    /// What a site's devices add up to, as of `now_ms`: `devices` known, `reporting` (a reading
    /// within the span), `faults` (last status not ok), and each metric over every reporting
    /// device's last reading.
    pub fn site_value(&self, site: &str, now_ms: u64) -> Option<Value> {
        let devices = self.site(site)?;
        let oldest = now_ms.saturating_sub(self.span_ms);
        let lasts: Vec<&Reading> = devices
            .values()
            .filter_map(DeviceWindow::last)
            .filter(|r| r.ts_ms >= oldest)
            .collect();
        let faults = lasts.iter().filter(|r| r.status != "ok").count();
        let mut entries = vec![
            ("site".into(), Value::Str(site.to_owned())),
            ("devices".into(), Value::U64(devices.len() as u64)),
            ("reporting".into(), Value::U64(lasts.len() as u64)),
            ("faults".into(), Value::U64(faults as u64)),
        ];
        for metric in [Metric::Temperature, Metric::Humidity, Metric::Battery] {
            let summary = Summary::of(lasts.iter().map(|r| r.metric(metric)));
            entries.push((metric.name().into(), summary.to_value()));
        }
        Some(Value::Map(entries))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    fn reading(device: &str, seq: u64, ts_ms: u64, temperature: f64) -> Reading {
        Reading {
            site: "s".into(),
            device: device.into(),
            seq,
            ts_ms,
            temperature,
            humidity: 50.0,
            battery: 80.0,
            status: "ok".into(),
        }
    }

    #[test]
    fn a_window_keeps_its_span_and_refuses_duplicates() {
        let mut windows = Windows::new(1_000);
        assert!(windows.add(reading("a", 1, 0, 20.0), 0));
        assert!(windows.add(reading("a", 2, 500, 22.0), 500));
        assert!(!windows.add(reading("a", 2, 500, 22.0), 500), "a duplicate");
        assert!(!windows.add(reading("a", 1, 0, 20.0), 600), "an older one");
        let summary = windows
            .device("s", "a")
            .unwrap()
            .summary(Metric::Temperature);
        assert_eq!(
            (summary.count, summary.min, summary.mean, summary.max),
            (2, 20.0, 21.0, 22.0)
        );
        assert!(windows.add(reading("a", 3, 1_200, 30.0), 1_200));
        let window = windows.device("s", "a").unwrap();
        assert_eq!(window.len(), 2, "the first fell out of the span");
        assert_eq!(window.summary(Metric::Temperature).mean, 26.0);
    }

    #[test]
    fn a_site_adds_up_its_reporting_devices() {
        let mut windows = Windows::new(1_000);
        windows.add(reading("a", 1, 5_000, 20.0), 5_000);
        windows.add(reading("b", 1, 5_000, 24.0), 5_000);
        windows.add(reading("c", 1, 1_000, 90.0), 5_000);
        let site = windows.site_value("s", 5_000).unwrap();
        assert_eq!(site.get("devices"), Some(&Value::U64(3)));
        assert_eq!(site.get("reporting"), Some(&Value::U64(2)), "c is silent");
        let temperature = site.get("temperature").unwrap();
        assert_eq!(temperature.get("mean"), Some(&Value::F64(22.0)));
        assert!(windows.site_value("nowhere", 5_000).is_none());
    }
}
