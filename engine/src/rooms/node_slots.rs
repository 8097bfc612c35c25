//! The small numbers a home shard gives the other nodes whose room members it keeps (a
//! member's key is its slot above its connection id, `members.rs`). A node's slot is freed
//! when the node goes, with its members, so node names that change at every restart never use
//! up the slots.

use super::members::MAX_NODE_SLOTS;

/// Slot `n` (from 1) is `names[n - 1]`.
#[derive(Debug, Default)]
pub(crate) struct NodeSlots {
    names: Vec<Option<Box<str>>>,
}

impl NodeSlots {
    /// `node`'s slot, given now if it has none; `None` when every slot is taken.
    pub(crate) fn slot_of(&mut self, node: &str) -> Option<u8> {
        if let Some(slot) = self.find(node) {
            return Some(slot);
        }
        let free = self.names.iter().position(Option::is_none);
        let index = match free {
            Some(index) => index,
            None if self.names.len() < MAX_NODE_SLOTS => {
                self.names.push(None);
                self.names.len() - 1
            }
            None => return None,
        };
        if let Some(entry) = self.names.get_mut(index) {
            *entry = Some(node.into());
        }
        u8::try_from(index + 1).ok()
    }

    /// `node`'s slot, if it has one.
    pub(crate) fn find(&self, node: &str) -> Option<u8> {
        let index = self
            .names
            .iter()
            .position(|name| name.as_deref() == Some(node))?;
        u8::try_from(index + 1).ok()
    }

    /// The node of `slot`.
    pub(crate) fn name(&self, slot: u8) -> Option<&str> {
        self.names
            .get(usize::from(slot).checked_sub(1)?)?
            .as_deref()
    }

    /// Frees `slot` (its node went, with its members).
    pub(crate) fn free(&mut self, slot: u8) {
        if let Some(entry) = usize::from(slot)
            .checked_sub(1)
            .and_then(|index| self.names.get_mut(index))
        {
            *entry = None;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_once_per_node_and_reused_when_freed() {
        let mut slots = NodeSlots::default();
        assert_eq!(slots.slot_of("a"), Some(1));
        assert_eq!(slots.slot_of("b"), Some(2));
        assert_eq!(slots.slot_of("a"), Some(1));
        assert_eq!(slots.name(2), Some("b"));
        assert_eq!(slots.name(0), None);
        slots.free(1);
        assert_eq!(slots.find("a"), None);
        assert_eq!(slots.slot_of("c"), Some(1));
        for n in 0..MAX_NODE_SLOTS {
            slots.slot_of(&format!("n{n}"));
        }
        assert_eq!(slots.slot_of("one too many"), None);
        assert_eq!(slots.find("c"), Some(1));
    }
}
