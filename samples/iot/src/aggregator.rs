//! `aggregator`: an instance of the service `iot-aggregator`. Every instance reads every reading
//! (a plain subscription to `iot.dev.>`) into rolling windows per device and per site, so any
//! instance can answer any query, and the broker balances the queries over the instances:
//!
//! - `iot.query.sites` → `{sites: [site]}`, each site `{site, devices, reporting, faults,
//!   temperature, humidity, battery}` (count, min, mean, max over its devices' last readings);
//! - `iot.query.site` `{site}` → the site, and `by_device: [{device, last, temperature}]`;
//! - `iot.query.device` `{site, device}` → `{device, last, readings, temperature, humidity,
//!   battery}` over the window;
//! - `iot.query.stats` → this instance's `{instance, received, duplicates, behind_ms}`.
//!
//! An unknown site or device is answered with `sb-status: 404`, which the broker counts as an
//! error of the endpoint.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shardbus_protocol::client::{Client, ClientError, Message, ServiceSpec};
use shardbus_protocol::container::{ContainerLimits, Value};
use shardbus_protocol::{Flags, HeadersBuilder};

use crate::reading::{Metric, PREFIX, Reading, now_ms};
use crate::window::Windows;

/// The service's name.
pub const SERVICE: &str = "iot-aggregator";
/// Its endpoints.
pub const ENDPOINTS: [&str; 4] = [
    "iot.query.sites",
    "iot.query.site",
    "iot.query.device",
    "iot.query.stats",
];

/// What one instance knows.
struct State {
    windows: Windows,
    received: u64,
    duplicates: u64,
    /// How far behind the devices the last reading was taken, milliseconds.
    behind_ms: u64,
}

/// Runs one instance on `client` with windows of `span`, until the connection closes.
///
/// # Errors
/// When the registration or the subscription is refused.
pub fn run(client: &Client, span: Duration) -> Result<(), ClientError> {
    let state = Arc::new(Mutex::new(State {
        windows: Windows::new(span.as_millis() as u64),
        received: 0,
        duplicates: 0,
        behind_ms: 0,
    }));
    let readings = client.subscribe(&format!("{PREFIX}.>"))?;
    let mut spec =
        ServiceSpec::new("1.0.0").description("rolling windows of every device and site");
    for endpoint in ENDPOINTS {
        spec = spec.endpoint(endpoint);
    }
    let service = client.register(SERVICE, &spec)?;
    let reader = Arc::clone(&state);
    std::thread::spawn(move || {
        // Until the client closes, however long the devices are quiet.
        for message in readings {
            let Some(reading) = Reading::from_message(&message) else {
                continue;
            };
            let now = now_ms();
            let mut state = reader.lock().unwrap_or_else(PoisonError::into_inner);
            state.behind_ms = now.saturating_sub(reading.ts_ms);
            if state.windows.add(reading, now) {
                state.received += 1;
            } else {
                state.duplicates += 1;
            }
        }
    });
    let instance = service.id().unwrap_or(0);
    loop {
        let request = match service.requests().recv_timeout(Duration::from_secs(3600)) {
            Ok(request) => request,
            Err(ClientError::Timeout) => continue,
            Err(error) => return Err(error),
        };
        let answer = {
            let state = state.lock().unwrap_or_else(PoisonError::into_inner);
            answer(&state, instance, &request)
        };
        let sent = match answer {
            Some(value) => respond(client, &request, &value, None),
            None => respond(
                client,
                &request,
                &Value::Str("no such site or device".into()),
                Some("404"),
            ),
        };
        if let Err(ClientError::Closed) = sent {
            return Ok(());
        }
    }
}

fn respond(
    client: &Client,
    request: &Message,
    value: &Value,
    status: Option<&str>,
) -> Result<(), ClientError> {
    let mut headers = HeadersBuilder::new();
    if let Some(status) = status {
        headers.insert("sb-status", status)?;
    }
    client.respond_with(
        request,
        headers.headers(),
        Flags::CONTAINER,
        &value.to_binary()?,
    )
}

/// The answer to a query (`None`: no such site or device).
fn answer(state: &State, instance: u64, request: &Message) -> Option<Value> {
    let params = request
        .value(&ContainerLimits::default())
        .unwrap_or(Value::Null);
    let text = |key: &str| match params.get(key) {
        Some(Value::Str(s)) => s.clone(),
        _ => String::new(),
    };
    let now = now_ms();
    match request.topic() {
        "iot.query.sites" => {
            let sites = state
                .windows
                .sites()
                .filter_map(|(site, _)| state.windows.site_value(site, now))
                .collect();
            Some(Value::Map(vec![("sites".into(), Value::List(sites))]))
        }
        "iot.query.site" => {
            let site = text("site");
            let Some(Value::Map(mut entries)) = state.windows.site_value(&site, now) else {
                return None;
            };
            let devices = state.windows.site(&site)?;
            let devices = devices
                .iter()
                .map(|(name, window)| {
                    Value::Map(vec![
                        ("device".into(), Value::Str(name.clone())),
                        (
                            "last".into(),
                            window.last().map_or(Value::Null, Reading::to_value),
                        ),
                        (
                            "temperature".into(),
                            window.summary(Metric::Temperature).to_value(),
                        ),
                    ])
                })
                .collect();
            entries.push(("by_device".into(), Value::List(devices)));
            Some(Value::Map(entries))
        }
        "iot.query.device" => {
            let window = state.windows.device(&text("site"), &text("device"))?;
            let mut entries = vec![
                (
                    "device".into(),
                    Value::Str(format!("{}.{}", text("site"), text("device"))),
                ),
                (
                    "last".into(),
                    window.last().map_or(Value::Null, Reading::to_value),
                ),
                ("readings".into(), Value::U64(window.len() as u64)),
            ];
            for metric in [Metric::Temperature, Metric::Humidity, Metric::Battery] {
                entries.push((metric.name().into(), window.summary(metric).to_value()));
            }
            Some(Value::Map(entries))
        }
        _ => Some(Value::Map(vec![
            ("instance".into(), Value::U64(instance)),
            ("received".into(), Value::U64(state.received)),
            ("duplicates".into(), Value::U64(state.duplicates)),
            ("behind_ms".into(), Value::U64(state.behind_ms)),
        ])),
    }
}
