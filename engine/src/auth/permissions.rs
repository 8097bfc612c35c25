//! What an identity may do: per action (publish, subscribe, request) a list of allowed and a
//! list of denied topic patterns — deny wins — and whether it may use admin operations.
//! A subscription must lie wholly inside an allowed pattern; one that overlaps a denied pattern
//! is accepted, but its connection never receives a message whose subject is denied.

use serde::{Deserialize, Serialize};
use shardbus_protocol::topic::matches;

/// Allowed and denied patterns for one action.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// Patterns allowed (`>` allows everything).
    pub allow: Vec<String>,
    /// Patterns denied, whatever `allow` says.
    pub deny: Vec<String>,
}

impl Rule {
    /// Everything.
    pub fn all() -> Rule {
        Rule {
            allow: vec![">".to_owned()],
            deny: Vec::new(),
        }
    }

    /// Whether this allows every subject and denies none (`>` and nothing denied), so a
    /// connection can skip the per-message check.
    pub fn allows_everything(&self) -> bool {
        self.deny.is_empty() && self.allow.iter().any(|a| a == ">")
    }

    /// Whether `subject` may be used (published to, requested on, received).
    pub fn allows_subject(&self, subject: &str) -> bool {
        self.allow.iter().any(|a| matches(a, subject)) && !self.denies_subject(subject)
    }

    /// Whether a denied pattern matches `subject`.
    pub fn denies_subject(&self, subject: &str) -> bool {
        self.deny.iter().any(|d| matches(d, subject))
    }

    /// Whether subscription `pattern` may be taken: inside an allowed pattern, not inside a
    /// denied one.
    pub fn allows_pattern(&self, pattern: &str) -> bool {
        self.allow.iter().any(|a| covers(a, pattern))
            && !self.deny.iter().any(|d| covers(d, pattern))
    }
}

/// Whether every subject `inner` matches is matched by `outer` (both patterns).
pub fn covers(outer: &str, inner: &str) -> bool {
    let mut outer = outer.split('.');
    let mut inner = inner.split('.');
    loop {
        match (outer.next(), inner.next()) {
            (Some(">"), Some(_)) => return true,
            (Some(_), Some(">")) => return false,
            (Some("*"), Some(_)) => {}
            (Some(o), Some(i)) if o == i => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Everything one connection may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Permissions {
    /// Topics it may publish to.
    pub publish: Rule,
    /// Patterns it may subscribe to (queue subscriptions alike).
    pub subscribe: Rule,
    /// Topics it may send requests to.
    pub request: Rule,
    /// Subjects whose requests it may answer (NATS's `allow_responses`); unset, the `publish`
    /// rule decides: whoever may publish on a subject may answer requests on it.
    pub respond: Option<Rule>,
    /// Admin operations.
    pub admin: bool,
}

impl Default for Permissions {
    /// Nothing: a custom role (or a JWT's `permissions` claim) allows only what it lists.
    fn default() -> Permissions {
        Permissions {
            publish: Rule::default(),
            subscribe: Rule::default(),
            request: Rule::default(),
            respond: None,
            admin: false,
        }
    }
}

impl Permissions {
    /// Whether it may answer a request made on `subject`.
    pub fn may_respond(&self, subject: &str) -> bool {
        self.respond
            .as_ref()
            .unwrap_or(&self.publish)
            .allows_subject(subject)
    }

    /// Whether it may answer requests on every subject.
    pub fn responds_anywhere(&self) -> bool {
        self.respond
            .as_ref()
            .unwrap_or(&self.publish)
            .allows_everything()
    }

    /// Everything, admin operations included.
    pub fn admin() -> Permissions {
        Permissions {
            admin: true,
            ..Permissions::user()
        }
    }

    /// Publish, subscribe and request on any topic; no admin operations.
    pub fn user() -> Permissions {
        Permissions {
            publish: Rule::all(),
            subscribe: Rule::all(),
            request: Rule::all(),
            respond: None,
            admin: false,
        }
    }

    /// Subscribe only: no publishing, no requests, no answers to requests it receives.
    pub fn guest() -> Permissions {
        Permissions {
            publish: Rule::default(),
            subscribe: Rule::all(),
            request: Rule::default(),
            respond: None,
            admin: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_is_pattern_inclusion() {
        assert!(covers(">", "a.b"));
        assert!(covers("a.>", "a.*"));
        assert!(covers("a.>", "a.b.>"));
        assert!(covers("a.*", "a.b"));
        assert!(covers("a.*", "a.*"));
        assert!(!covers("a.*", "a.>"));
        assert!(!covers("a.b", "a.*"));
        assert!(!covers("a.>", "a"));
        assert!(!covers("a.*.c", "a.b"));
    }

    #[test]
    fn only_everything_allowed_and_nothing_denied_skips_the_checks() {
        assert!(Rule::all().allows_everything());
        let with_deny = Rule {
            deny: vec!["x.>".into()],
            ..Rule::all()
        };
        assert!(!with_deny.allows_everything());
        assert!(!with_deny.allows_subject("x.y"));
        let narrow = Rule {
            allow: vec!["a.>".into()],
            deny: vec![],
        };
        assert!(!narrow.allows_everything());
        assert!(!Rule::default().allows_everything());
    }

    #[test]
    fn deny_wins_and_wildcards_are_judged_by_inclusion() {
        let rule = Rule {
            allow: vec!["orders.>".into()],
            deny: vec!["orders.secret.>".into()],
        };
        assert!(rule.allows_subject("orders.new"));
        assert!(!rule.allows_subject("orders.secret.plan"));
        assert!(!rule.allows_subject("billing.x"));
        assert!(
            rule.allows_pattern("orders.>"),
            "overlapping a deny: filtered at delivery"
        );
        assert!(!rule.allows_pattern("orders.secret.*"));
        assert!(!rule.allows_pattern(">"));
    }
}
