//! The chat over one shardbus connection, on the public Rust client only: rooms (history on
//! join, then the live stream with no gap; members and their comings and goings), direct
//! messages (the broker's `push` command, which names the sender in `sb-from`), and recovery
//! after a reconnect (the client joins each room again from the last position it saw, and the
//! members are read again).
//!
//! Each room's publications and member events are read by a thread of its own and handed to
//! the screen's thread as [`Event`]s, so the screen never blocks on the network.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use shardbus_protocol::client::{
    Client, ClientError, HistoryQuery, JoinOptions, MemberEvent, Message, Room,
};
use shardbus_protocol::container::{ContainerLimits, Value};

use crate::conversation::{Conversation, Kind};

/// How many earlier messages a join shows.
const HISTORY_ON_JOIN: u32 = 50;
/// How long a room's reader waits for a publication before it looks at its member events.
const READ_SLICE: Duration = Duration::from_millis(50);

/// What the readers hand the screen.
#[derive(Debug)]
pub enum Event {
    /// A publication in a room.
    Said {
        room: String,
        from: String,
        text: String,
    },
    /// A member joined (`true`) or left a room.
    Member {
        room: String,
        joined: bool,
        client: u64,
        name: String,
    },
    /// A direct message to this user.
    Direct { from: String, text: String },
}

/// A joined room: its reader's stop flag.
struct Joined {
    name: String,
    stop: Arc<AtomicBool>,
}

/// The chat: the connection, the conversations, the events on their way to the screen.
pub struct Chat {
    client: Client,
    /// This user's name, as others see it.
    pub me: String,
    pub conversations: Vec<Conversation>,
    /// The conversation on screen.
    pub current: usize,
    joined: Vec<Joined>,
    events: Receiver<Event>,
    sender: Sender<Event>,
    reconnects: u64,
}

impl Chat {
    /// The chat over `client`, as `me`; direct messages start arriving at once.
    ///
    /// # Errors
    /// When the connection is closed.
    pub fn new(client: Client, me: &str) -> Result<Chat, ClientError> {
        let (sender, events) = std::sync::mpsc::channel();
        let pushes = client.pushes()?;
        let direct = sender.clone();
        std::thread::spawn(move || {
            // Until the client closes, however long nobody writes.
            for message in pushes {
                let from = message.headers().get("sb-from").unwrap_or("?").to_owned();
                let text = String::from_utf8_lossy(message.payload()).into_owned();
                if direct.send(Event::Direct { from, text }).is_err() {
                    return;
                }
            }
        });
        Ok(Chat {
            client,
            me: me.to_owned(),
            conversations: Vec::new(),
            current: 0,
            joined: Vec::new(),
            events,
            sender,
            reconnects: 0,
        })
    }

    /// Whether the connection is up (it reconnects by itself when it is not).
    pub fn connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Joins `room`: its last messages, then the live stream from right after them, and its
    /// members. Shows it.
    pub fn join(&mut self, room: &str) {
        if let Some(at) = self.find(room, Kind::Room) {
            self.current = at;
            return;
        }
        let mut conversation = Conversation::new(room, Kind::Room);
        match self.open_room(room, &mut conversation) {
            Ok(()) => {
                self.conversations.push(conversation);
                self.current = self.conversations.len() - 1;
            }
            Err(error) => self.notice(&format!("cannot join {room}: {error}")),
        }
    }

    fn open_room(
        &mut self,
        room: &str,
        conversation: &mut Conversation,
    ) -> Result<(), ClientError> {
        let history = self.client.history(
            room,
            HistoryQuery {
                limit: HISTORY_ON_JOIN,
                ..HistoryQuery::default()
            },
        )?;
        for publication in &history.publications {
            let (from, text) = said(publication);
            conversation.said(&from, &text);
        }
        let options = JoinOptions {
            info: Some(Value::Map(vec![(
                "name".into(),
                Value::Str(self.me.clone()),
            )])),
            from: Some((history.epoch, history.offset)),
        };
        let membership = self.client.join_with(room, options)?;
        let presence = self.client.presence(room, 0, 0)?;
        for member in &presence.members {
            if let Some((client, name)) = member_of(member) {
                conversation.members.insert(client, name);
            }
        }
        conversation.notice(&format!(
            "joined {room}: {} here, {} earlier messages",
            presence.clients,
            history.publications.len()
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = (room.to_owned(), Arc::clone(&stop), self.sender.clone());
        std::thread::spawn(move || read_room(membership, reader));
        self.joined.push(Joined {
            name: room.to_owned(),
            stop,
        });
        Ok(())
    }

    /// Leaves `room` (the one on screen when `None`).
    pub fn leave(&mut self, room: Option<&str>) {
        let name = match room {
            Some(room) => room.to_owned(),
            None => match self.conversations.get(self.current) {
                Some(c) if c.kind == Kind::Room => c.name.clone(),
                _ => return self.notice("not in a room: /leave ROOM"),
            },
        };
        let Some(at) = self.find(&name, Kind::Room) else {
            return self.notice(&format!("not in {name}"));
        };
        if let Some(joined) = self.joined.iter().position(|j| j.name == name) {
            self.joined
                .remove(joined)
                .stop
                .store(true, Ordering::Release);
        }
        self.conversations.remove(at);
        self.current = self.current.min(self.conversations.len().saturating_sub(1));
    }

    /// Says `text` in the conversation on screen: a publication to the room, or a direct
    /// message.
    pub fn say(&mut self, text: &str) {
        let Some(conversation) = self.conversations.get(self.current) else {
            return;
        };
        let name = conversation.name.clone();
        match conversation.kind {
            Kind::Direct => self.direct(&name, text),
            Kind::Room => {
                let value = Value::Map(vec![
                    ("from".into(), Value::Str(self.me.clone())),
                    ("text".into(), Value::Str(text.to_owned())),
                ]);
                if let Err(error) = self.client.publish_value(&name, &value) {
                    self.notice(&format!("not sent: {error}"));
                }
            }
        }
    }

    /// Sends `text` to `user` (every connection of theirs), through the broker's `push`.
    pub fn direct(&mut self, user: &str, text: &str) {
        let params = Value::Map(vec![
            ("user".into(), Value::Str(user.to_owned())),
            ("text".into(), Value::Str(text.to_owned())),
        ]);
        let at = self.conversation(user, Kind::Direct);
        self.current = at;
        let reached = self.client.command("push", &params);
        let me = self.me.clone();
        let Some(conversation) = self.conversations.get_mut(at) else {
            return;
        };
        match reached {
            Ok(answer) => {
                conversation.said(&me, text);
                if matches!(answer.get("recipients"), Some(Value::U64(0))) {
                    conversation.notice(&format!("{user} is not online"));
                }
            }
            Err(error) => conversation.notice(&format!("not sent: {error}")),
        }
    }

    /// Lists the members of the room on screen, as the server has them now.
    pub fn who(&mut self) {
        let Some(conversation) = self.conversations.get(self.current) else {
            return;
        };
        if conversation.kind != Kind::Room {
            return self.notice("not a room");
        }
        let room = conversation.name.clone();
        match self.client.presence(&room, 0, 0) {
            Ok(presence) => {
                let names: Vec<String> = presence
                    .members
                    .iter()
                    .filter_map(member_of)
                    .map(|m| m.1)
                    .collect();
                self.notice(&format!("{} here: {}", presence.clients, names.join(", ")));
            }
            Err(error) => self.notice(&format!("who: {error}")),
        }
    }

    /// Shows the next conversation.
    pub fn next(&mut self) {
        if !self.conversations.is_empty() {
            self.current = (self.current + 1) % self.conversations.len();
        }
        if let Some(conversation) = self.conversations.get_mut(self.current) {
            conversation.unread = 0;
        }
    }

    /// Adds a notice to the conversation on screen.
    pub fn notice(&mut self, text: &str) {
        if self.conversations.is_empty() {
            self.conversations
                .push(Conversation::new("shardbus", Kind::Direct));
        }
        if let Some(conversation) = self.conversations.get_mut(self.current) {
            conversation.notice(text);
        }
    }

    /// Takes in what arrived since the last call; after a reconnect, reads every room's
    /// members again (the comings and goings while away were not seen).
    pub fn take_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.apply(event);
        }
        let reconnects = self.client.reconnects();
        if reconnects != self.reconnects && self.client.is_connected() {
            self.reconnects = reconnects;
            self.reread_members();
        }
    }

    fn apply(&mut self, event: Event) {
        let current = self.current;
        let (at, line) = match event {
            Event::Said { room, from, text } => {
                let Some(at) = self.find(&room, Kind::Room) else {
                    return;
                };
                (at, (from, text))
            }
            Event::Member {
                room,
                joined,
                client,
                name,
            } => {
                let Some(at) = self.find(&room, Kind::Room) else {
                    return;
                };
                let Some(conversation) = self.conversations.get_mut(at) else {
                    return;
                };
                let verb = if joined {
                    conversation.members.insert(client, name.clone());
                    "joined"
                } else {
                    conversation.members.remove(&client);
                    "left"
                };
                (at, (String::new(), format!("{name} {verb}")))
            }
            Event::Direct { from, text } => (self.conversation(&from, Kind::Direct), (from, text)),
        };
        if let Some(conversation) = self.conversations.get_mut(at) {
            conversation.said(&line.0, &line.1);
            if at != current {
                conversation.unread += 1;
            }
        }
    }

    fn reread_members(&mut self) {
        for conversation in self
            .conversations
            .iter_mut()
            .filter(|c| c.kind == Kind::Room)
        {
            if let Ok(presence) = self.client.presence(&conversation.name, 0, 0) {
                conversation.members = presence.members.iter().filter_map(member_of).collect();
                conversation.notice(&format!("back: {} here", presence.clients));
            }
        }
    }

    fn find(&self, name: &str, kind: Kind) -> Option<usize> {
        self.conversations
            .iter()
            .position(|c| c.name == name && c.kind == kind)
    }

    /// The conversation `name` of `kind`, made when there is none yet.
    fn conversation(&mut self, name: &str, kind: Kind) -> usize {
        if let Some(at) = self.find(name, kind.clone()) {
            return at;
        }
        self.conversations.push(Conversation::new(name, kind));
        self.conversations.len() - 1
    }
}

/// Reads one room until told to stop (then leaves it) or the client closes.
fn read_room(room: Room, (name, stop, events): (String, Arc<AtomicBool>, Sender<Event>)) {
    while !stop.load(Ordering::Acquire) {
        let said = match room.recv_timeout(READ_SLICE) {
            Ok(message) => Some(said(&message)),
            Err(ClientError::Timeout) => None,
            Err(_) => return,
        };
        if let Some((from, text)) = said {
            let event = Event::Said {
                room: name.clone(),
                from,
                text,
            };
            if events.send(event).is_err() {
                return;
            }
        }
        while let Ok(MemberEvent { joined, member }) = room.next_event(Duration::ZERO) {
            if let Some((client, who)) = member_of(&member) {
                let event = Event::Member {
                    room: name.clone(),
                    joined,
                    client,
                    name: who,
                };
                if events.send(event).is_err() {
                    return;
                }
            }
        }
    }
    let _ = room.leave();
}

/// Who said what in a publication: `{from, text}` as the chat's clients publish it, or the
/// payload as text from someone unknown (a publication from elsewhere, e.g. `shardbus-cli`).
fn said(message: &Message) -> (String, String) {
    let text_of = |key: &str, value: &Value| match value.get(key) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    };
    if let Ok(value) = message.value(&ContainerLimits::default())
        && let Some(text) = text_of("text", &value)
    {
        return (text_of("from", &value).unwrap_or_else(|| "?".into()), text);
    }
    (
        "?".into(),
        String::from_utf8_lossy(message.payload()).into_owned(),
    )
}

/// A presence entry or MEMBER event's connection id and the name to show: the member's
/// `info.name`, else its connection name, else its user.
fn member_of(member: &Value) -> Option<(u64, String)> {
    let Some(Value::U64(client)) = member.get("client") else {
        return None;
    };
    let text = |value: Option<&Value>| match value {
        Some(Value::Str(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let name = text(member.get("info").and_then(|info| info.get("name")))
        .or_else(|| text(member.get("name")))
        .or_else(|| text(member.get("user")))
        .unwrap_or_else(|| format!("client {client}"));
    Some((*client, name))
}
