//! Alert rules (a TOML file of `[[rules]]`) and their evaluation: thresholds above or below a
//! value, a rate of change, a status. Each rule has a raise and a clear level (hysteresis), so a
//! value wavering around one level does not raise and clear over and over; an alert is told
//! only when it changes state (deduplication), and a reading the device already sent (its
//! sequence number not past the last one) changes nothing.

use std::collections::HashMap;

use serde::Deserialize;

use crate::reading::{Metric, Reading};

/// One `[[rules]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    pub name: String,
    pub metric: Option<Metric>,
    /// Raise when the metric goes above this; clear when it is back at `clear_below`.
    pub above: Option<f64>,
    pub clear_below: Option<f64>,
    /// Raise when the metric goes below this; clear when it is back at `clear_above`.
    pub below: Option<f64>,
    pub clear_above: Option<f64>,
    /// Raise when the metric changes faster than this per second; clear below
    /// `clear_rate_below`.
    pub rate_above: Option<f64>,
    pub clear_rate_below: Option<f64>,
    /// Raise while the device's status is this (`fault`).
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<RuleEntry>,
}

/// When a rule raises and clears.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Above {
        metric: Metric,
        raise: f64,
        clear: f64,
    },
    Below {
        metric: Metric,
        raise: f64,
        clear: f64,
    },
    Rate {
        metric: Metric,
        raise: f64,
        clear: f64,
    },
    Status(String),
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub condition: Condition,
}

impl Rule {
    fn check(entry: RuleEntry) -> Result<Rule, String> {
        let name = entry.name.clone();
        let bad = |why: &str| Err(format!("rule {name:?}: {why}"));
        let kinds = [
            entry.above.is_some(),
            entry.below.is_some(),
            entry.rate_above.is_some(),
            entry.status.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return bad("give exactly one of above, below, rate_above, status");
        }
        let metric = || {
            entry
                .metric
                .ok_or_else(|| format!("rule {name:?}: needs a metric"))
        };
        let condition = if let Some(raise) = entry.above {
            let clear = entry.clear_below.unwrap_or(raise);
            if clear > raise {
                return bad("clear_below must not be above `above`");
            }
            Condition::Above {
                metric: metric()?,
                raise,
                clear,
            }
        } else if let Some(raise) = entry.below {
            let clear = entry.clear_above.unwrap_or(raise);
            if clear < raise {
                return bad("clear_above must not be below `below`");
            }
            Condition::Below {
                metric: metric()?,
                raise,
                clear,
            }
        } else if let Some(raise) = entry.rate_above {
            let clear = entry.clear_rate_below.unwrap_or(raise);
            if clear > raise || raise <= 0.0 {
                return bad("rate_above must be positive, clear_rate_below not above it");
            }
            Condition::Rate {
                metric: metric()?,
                raise,
                clear,
            }
        } else {
            Condition::Status(entry.status.unwrap_or_default())
        };
        Ok(Rule {
            name: entry.name,
            condition,
        })
    }
}

/// Reads and checks a rules file's text.
///
/// # Errors
/// What does not parse, or which rule makes no sense and why.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let file: RulesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.rules.into_iter().map(Rule::check).collect()
}

/// An alert changing state.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub rule: String,
    /// `site.device`.
    pub device: String,
    pub raised: bool,
    /// What was measured: the metric's value, its rate per second, or 0 for a status rule.
    pub value: f64,
    pub ts_ms: u64,
}

/// Every rule's state per device.
#[derive(Debug)]
pub struct Evaluator {
    rules: Vec<Rule>,
    active: HashMap<(String, usize), bool>,
    last: HashMap<String, Reading>,
}

impl Evaluator {
    pub fn new(rules: Vec<Rule>) -> Evaluator {
        Evaluator {
            rules,
            active: HashMap::new(),
            last: HashMap::new(),
        }
    }

    /// The alerts `reading` raises or clears (none for a duplicate).
    pub fn observe(&mut self, reading: Reading) -> Vec<Alert> {
        let key = reading.key();
        let previous = self.last.get(&key);
        if previous.is_some_and(|p| p.seq >= reading.seq) {
            return Vec::new();
        }
        let mut alerts = Vec::new();
        for (at, rule) in self.rules.iter().enumerate() {
            let active = self
                .active
                .get(&(key.clone(), at))
                .copied()
                .unwrap_or(false);
            let Some((value, now)) = decide(&rule.condition, &reading, previous, active) else {
                continue;
            };
            if now != active {
                self.active.insert((key.clone(), at), now);
                alerts.push(Alert {
                    rule: rule.name.clone(),
                    device: key.clone(),
                    raised: now,
                    value,
                    ts_ms: reading.ts_ms,
                });
            }
        }
        self.last.insert(key, reading);
        alerts
    }

    /// The alerts raised and not cleared: (device, rule).
    pub fn active(&self) -> Vec<(String, String)> {
        let mut active: Vec<(String, String)> = self
            .active
            .iter()
            .filter(|(_, on)| **on)
            .filter_map(|((device, at), _)| {
                Some((device.clone(), self.rules.get(*at)?.name.clone()))
            })
            .collect();
        active.sort();
        active
    }
}

/// What `condition` says of `reading`: the value it looked at and whether the alert is on,
/// given whether it was (`None`: it cannot tell, e.g. a rate without an earlier reading).
fn decide(
    condition: &Condition,
    reading: &Reading,
    previous: Option<&Reading>,
    active: bool,
) -> Option<(f64, bool)> {
    let hysteresis =
        |value: f64, raise: bool, clear: bool| (value, if active { !clear } else { raise });
    Some(match condition {
        Condition::Above {
            metric,
            raise,
            clear,
        } => {
            let value = reading.metric(*metric);
            hysteresis(value, value > *raise, value <= *clear)
        }
        Condition::Below {
            metric,
            raise,
            clear,
        } => {
            let value = reading.metric(*metric);
            hysteresis(value, value < *raise, value >= *clear)
        }
        Condition::Rate {
            metric,
            raise,
            clear,
        } => {
            let previous = previous?;
            let seconds = reading.ts_ms.checked_sub(previous.ts_ms)? as f64 / 1000.0;
            if seconds <= 0.0 {
                return None;
            }
            let rate = (reading.metric(*metric) - previous.metric(*metric)).abs() / seconds;
            hysteresis(rate, rate > *raise, rate <= *clear)
        }
        Condition::Status(status) => (0.0, reading.status == *status),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    const RULES: &str = r#"
        [[rules]]
        name = "hot"
        metric = "temperature"
        above = 35.0
        clear_below = 32.0

        [[rules]]
        name = "jump"
        metric = "temperature"
        rate_above = 5.0
        clear_rate_below = 1.0

        [[rules]]
        name = "fault"
        status = "fault"
    "#;

    fn at(seq: u64, temperature: f64) -> Reading {
        Reading {
            site: "s".into(),
            device: "d".into(),
            seq,
            ts_ms: seq * 1_000,
            temperature,
            humidity: 50.0,
            battery: 90.0,
            status: "ok".into(),
        }
    }

    #[test]
    fn a_value_wavering_around_the_level_raises_once_and_clears_once() {
        let mut rules = Evaluator::new(parse(RULES).unwrap());
        let mut told = Vec::new();
        for (seq, t) in [
            (1, 30.0),
            (2, 33.0),
            (3, 35.5),
            (4, 34.0),
            (5, 36.0),
            (6, 33.0),
            (7, 31.5),
            (8, 33.5),
        ] {
            told.extend(rules.observe(at(seq, t)));
        }
        let hot: Vec<(bool, f64)> = told
            .iter()
            .filter(|a| a.rule == "hot")
            .map(|a| (a.raised, a.value))
            .collect();
        assert_eq!(hot, [(true, 35.5), (false, 31.5)]);
        assert!(
            told.iter().all(|a| a.rule == "hot"),
            "no jump under 5 °C/s: {told:?}"
        );
        assert!(rules.active().is_empty());
    }

    #[test]
    fn a_jump_a_status_and_a_duplicate() {
        let mut rules = Evaluator::new(parse(RULES).unwrap());
        assert!(rules.observe(at(1, 20.0)).is_empty());
        let jump = rules.observe(at(2, 28.0));
        assert_eq!(
            (jump.len(), jump[0].rule.as_str(), jump[0].value),
            (1, "jump", 8.0)
        );
        assert!(
            rules.observe(at(2, 28.0)).is_empty(),
            "a duplicate changes nothing"
        );
        let mut fault = at(3, 28.5);
        fault.status = "fault".into();
        let told = rules.observe(fault);
        assert_eq!(
            told.iter()
                .map(|a| (a.rule.as_str(), a.raised))
                .collect::<Vec<_>>(),
            [("jump", false), ("fault", true)]
        );
        assert_eq!(rules.active(), [("s.d".to_owned(), "fault".to_owned())]);
    }

    #[test]
    fn a_rule_that_makes_no_sense_is_refused_by_name() {
        let both = "[[rules]]\nname = \"x\"\nmetric = \"battery\"\nabove = 1.0\nbelow = 0.5\n";
        assert!(parse(both).unwrap_err().contains("\"x\""));
        let inverted =
            "[[rules]]\nname = \"y\"\nmetric = \"battery\"\nbelow = 15.0\nclear_above = 10.0\n";
        assert!(parse(inverted).unwrap_err().contains("clear_above"));
        let no_metric = "[[rules]]\nname = \"z\"\nabove = 1.0\n";
        assert!(parse(no_metric).unwrap_err().contains("metric"));
        assert!(parse("[[rules]]\nname = \"w\"\nwat = 1\n").is_err());
    }
}
