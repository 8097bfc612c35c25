//! `alerts`: reads every reading, runs the rules (`rules.rs`), and for each alert that changes
//! state publishes `{rule, device, state, value, ts_ms}` to the room `iot.alerts` (which keeps
//! them, so a page that opens later reads them back) and pushes a line to the operator user
//! (every connection of theirs, through the broker's `push` command). It registers as the
//! service `iot-alerts`, whose `iot.alerts.active` answers the alerts raised and not cleared.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shardbus_protocol::Flags;
use shardbus_protocol::client::{Client, ClientError, ServiceSpec};
use shardbus_protocol::container::Value;

use crate::reading::{PREFIX, Reading};
use crate::rules::{Alert, Evaluator, Rule};

/// The room alerts are published to.
pub const ROOM: &str = "iot.alerts";
/// The service's name, and the subject that lists the active alerts.
pub const SERVICE: &str = "iot-alerts";
pub const ACTIVE: &str = "iot.alerts.active";

/// Runs the rules on `client` until the connection closes, telling `operator` of every change.
///
/// # Errors
/// When the subscription or the registration is refused.
pub fn run(client: &Client, rules: Vec<Rule>, operator: &str) -> Result<(), ClientError> {
    let evaluator = Arc::new(Mutex::new(Evaluator::new(rules)));
    let readings = client.subscribe(&format!("{PREFIX}.>"))?;
    let service = client.register(SERVICE, &ServiceSpec::new("1.0.0").endpoint(ACTIVE))?;
    let answering = (client.clone(), Arc::clone(&evaluator));
    std::thread::spawn(move || {
        let (client, evaluator) = answering;
        loop {
            let request = match service.requests().recv_timeout(Duration::from_secs(3600)) {
                Ok(request) => request,
                Err(ClientError::Timeout) => continue,
                Err(_) => return,
            };
            let active = evaluator
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .active();
            let list = active
                .into_iter()
                .map(|(device, rule)| {
                    Value::Map(vec![
                        ("device".into(), Value::Str(device)),
                        ("rule".into(), Value::Str(rule)),
                    ])
                })
                .collect();
            let Ok(payload) = Value::Map(vec![("active".into(), Value::List(list))]).to_binary()
            else {
                continue;
            };
            let _ = client.respond_with(&request, Default::default(), Flags::CONTAINER, &payload);
        }
    });
    loop {
        let message = match readings.recv_timeout(Duration::from_secs(3600)) {
            Ok(message) => message,
            Err(ClientError::Timeout) => continue,
            Err(ClientError::Closed) => return Ok(()),
            Err(error) => return Err(error),
        };
        let Some(reading) = Reading::from_message(&message) else {
            continue;
        };
        let alerts = evaluator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(reading);
        for alert in alerts {
            tell(client, &alert, operator)?;
        }
    }
}

/// Publishes `alert` to the room and pushes it to the operator.
fn tell(client: &Client, alert: &Alert, operator: &str) -> Result<(), ClientError> {
    let state = if alert.raised { "raised" } else { "cleared" };
    let value = Value::Map(vec![
        ("rule".into(), Value::Str(alert.rule.clone())),
        ("device".into(), Value::Str(alert.device.clone())),
        ("state".into(), Value::Str(state.into())),
        ("value".into(), Value::F64(alert.value)),
        ("ts_ms".into(), Value::U64(alert.ts_ms)),
    ]);
    client.publish_value(ROOM, &value)?;
    let text = format!(
        "{} {} on {} ({:.1})",
        state.to_uppercase(),
        alert.rule,
        alert.device,
        alert.value
    );
    let push = Value::Map(vec![
        ("user".into(), Value::Str(operator.into())),
        ("text".into(), Value::Str(text)),
    ]);
    // An operator who is not online misses the push; the room keeps the alert.
    client.command("push", &push).map(|_| ())
}
