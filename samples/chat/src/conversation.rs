//! What the screen shows of one conversation: a room (its lines and its members) or the direct
//! messages with one user. Kept apart from the connection so the screen can be drawn, and
//! tested, from it alone.

use std::collections::BTreeMap;

/// The most lines a conversation keeps (older ones scroll away).
const MAX_LINES: usize = 1_000;

/// Who said what, or what happened (`from` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub from: String,
    pub text: String,
}

/// A room, or the direct messages with a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Room,
    Direct,
}

/// One conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// The room's subject, or the other user's name.
    pub name: String,
    pub kind: Kind,
    pub lines: Vec<Line>,
    /// A room's members: connection id → shown name.
    pub members: BTreeMap<u64, String>,
    /// Lines that arrived while another conversation was on screen.
    pub unread: usize,
}

impl Conversation {
    /// A new conversation, with nothing in it yet.
    pub fn new(name: &str, kind: Kind) -> Conversation {
        Conversation {
            name: name.to_owned(),
            kind,
            lines: Vec::new(),
            members: BTreeMap::new(),
            unread: 0,
        }
    }

    /// What its tab says: `#room` or `@user`, with the unread count.
    pub fn title(&self) -> String {
        let mark = match self.kind {
            Kind::Room => '#',
            Kind::Direct => '@',
        };
        match self.unread {
            0 => format!("{mark}{}", self.name),
            n => format!("{mark}{} ({n})", self.name),
        }
    }

    /// Adds a line said by `from`.
    pub fn said(&mut self, from: &str, text: &str) {
        self.lines.push(Line {
            from: from.to_owned(),
            text: text.to_owned(),
        });
        if self.lines.len() > MAX_LINES {
            self.lines.drain(..self.lines.len() - MAX_LINES);
        }
    }

    /// Adds a line saying what happened.
    pub fn notice(&mut self, text: &str) {
        self.said("", text);
    }

    /// The members' names, sorted, each once.
    pub fn member_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.members.values().cloned().collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn a_conversation_keeps_its_last_lines_and_names_its_members_once() {
        let mut room = Conversation::new("chat.lobby", Kind::Room);
        for i in 0..MAX_LINES + 5 {
            room.said("ann", &i.to_string());
        }
        assert_eq!(room.lines.len(), MAX_LINES);
        assert_eq!(room.lines[0].text, "5");
        room.members.insert(1, "bob".into());
        room.members.insert(2, "ann".into());
        room.members.insert(3, "bob".into());
        assert_eq!(room.member_names(), ["ann", "bob"]);
        room.unread = 2;
        assert_eq!(room.title(), "#chat.lobby (2)");
        assert_eq!(Conversation::new("bob", Kind::Direct).title(), "@bob");
    }
}
