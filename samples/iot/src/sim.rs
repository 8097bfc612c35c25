//! `sim`: N simulated devices over a few connections, each publishing a reading every
//! `1/rate` seconds with jitter, now and then missing one (a dropout), its battery draining;
//! devices named faulty drift hot for a while (a failing sensor) and come back. Each device's
//! subject is a room that retains its last reading.

use std::time::{Duration, Instant};

use shardbus_protocol::client::{Client, ClientError};

use crate::reading::{Reading, now_ms};

/// How the devices behave.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub devices: usize,
    pub sites: usize,
    /// Readings per second per device.
    pub rate: f64,
    /// The period varies by up to this fraction either way.
    pub jitter: f64,
    /// The chance that a reading is not sent.
    pub dropout: f64,
    /// Devices (`site.device`) whose sensor fails.
    pub faulty: Vec<String>,
    /// When the faulty sensors start drifting, after the start.
    pub fault_after: Duration,
    /// How long they drift up; they drift back as long.
    pub fault_for: Duration,
    /// Stop after this long (`None`: run until killed).
    pub duration: Option<Duration>,
    pub seed: u64,
}

/// How fast a failing sensor drifts, °C per second.
const DRIFT_PER_SEC: f64 = 3.0;
/// The shortest sleep between two rounds over the devices: many devices due at nearly the same
/// time are sent in one round rather than one wake-up each.
const TICK: Duration = Duration::from_millis(5);

/// One simulated device.
struct Device {
    site: String,
    name: String,
    subject: String,
    seq: u64,
    base: f64,
    humidity: f64,
    battery: f64,
    faulty: bool,
    next: Instant,
}

/// The devices' names: `site1`…, `d001`….
pub fn device_names(options: &SimOptions) -> Vec<(String, String)> {
    (0..options.devices)
        .map(|i| {
            (
                format!("site{}", i % options.sites.max(1) + 1),
                format!("d{:03}", i + 1),
            )
        })
        .collect()
}

/// Runs the devices over `clients` (device i publishes on client i mod n) until the duration
/// passes; returns how many readings were sent.
///
/// # Errors
/// When a connection is closed for good.
pub fn run(clients: &[Client], options: &SimOptions) -> Result<u64, ClientError> {
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / options.rate.max(0.001));
    let mut devices: Vec<Device> = device_names(options)
        .into_iter()
        .map(|(site, name)| {
            let key = format!("{site}.{name}");
            Device {
                subject: Reading::subject(&site, &name),
                faulty: options.faulty.contains(&key),
                base: 20.0 + rng.f64() * 4.0,
                humidity: 40.0 + rng.f64() * 20.0,
                battery: 60.0 + rng.f64() * 40.0,
                seq: 0,
                // Spread the first readings over one period.
                next: start + period.mul_f64(rng.f64()),
                site,
                name,
            }
        })
        .collect();
    let mut sent = 0u64;
    while options.duration.is_none_or(|d| start.elapsed() < d) {
        let now = Instant::now();
        let mut soonest = now + period;
        for (i, device) in devices.iter_mut().enumerate() {
            if device.next > now {
                soonest = soonest.min(device.next);
                continue;
            }
            let jitter = 1.0 + options.jitter * (rng.f64() * 2.0 - 1.0);
            // From when it was due, so a late round costs no readings; but never sooner than
            // half a period from now, so a round that ran late sends no burst (two readings of
            // one device close together would look like a jump in its values).
            let step = period.mul_f64(jitter.max(0.05));
            device.next = (device.next + step).max(now + step / 2);
            soonest = soonest.min(device.next);
            device.seq += 1;
            device.battery = (device.battery - 0.001).max(0.0);
            if rng.f64() < options.dropout {
                continue;
            }
            let drift = if device.faulty {
                fault_drift(start.elapsed(), options)
            } else {
                0.0
            };
            let reading = Reading {
                site: device.site.clone(),
                device: device.name.clone(),
                seq: device.seq,
                ts_ms: now_ms(),
                temperature: device.base + drift + (rng.f64() - 0.5) * 0.4,
                humidity: device.humidity + (rng.f64() - 0.5) * 2.0,
                battery: device.battery,
                status: "ok".into(),
            };
            let client = clients
                .get(i % clients.len().max(1))
                .ok_or(ClientError::Closed)?;
            client.publish_value(&device.subject, &reading.to_value())?;
            sent += 1;
        }
        std::thread::sleep(soonest.saturating_duration_since(Instant::now()).max(TICK));
    }
    for client in clients {
        client.flush()?;
    }
    Ok(sent)
}

/// How far a failing sensor reads above the truth `elapsed` after the start: 0 until the fault,
/// up by `DRIFT_PER_SEC` for `fault_for`, then down as fast to 0.
fn fault_drift(elapsed: Duration, options: &SimOptions) -> f64 {
    let Some(into) = elapsed.checked_sub(options.fault_after) else {
        return 0.0;
    };
    let (into, up) = (into.as_secs_f64(), options.fault_for.as_secs_f64());
    let drift = if into < up {
        into
    } else {
        (2.0 * up - into).max(0.0)
    };
    drift * DRIFT_PER_SEC
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn a_failing_sensor_drifts_up_then_back() {
        let options = SimOptions {
            devices: 4,
            sites: 2,
            rate: 10.0,
            jitter: 0.1,
            dropout: 0.0,
            faulty: Vec::new(),
            fault_after: Duration::from_secs(2),
            fault_for: Duration::from_secs(10),
            duration: None,
            seed: 1,
        };
        let at = |s: f64| fault_drift(Duration::from_secs_f64(s), &options);
        assert_eq!(
            (at(1.0), at(2.0), at(7.0), at(12.0), at(17.0), at(30.0)),
            (0.0, 0.0, 15.0, 30.0, 15.0, 0.0)
        );
        let names = device_names(&options);
        assert_eq!(names[0], ("site1".to_owned(), "d001".to_owned()));
        assert_eq!(names[3], ("site2".to_owned(), "d004".to_owned()));
    }
}
