//! Frame flag bits and HELLO option bits.

/// Frame flags (the header's `flags` byte, PROTOCOL.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// The frame has a non-empty headers block. Must match `headers_len != 0`.
    pub const HEADERS: Flags = Flags(0x01);
    /// The payload is a binary container (`protocol::container`).
    pub const CONTAINER: Flags = Flags(0x02);
    /// The payload is LZ4-compressed (block format, 4-byte little-endian size prefix).
    pub const LZ4: Flags = Flags(0x04);
    /// Every bit v1 defines.
    pub const ALL: Flags = Flags(0x07);

    /// No flags.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with `other`'s bits set too.
    #[must_use]
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// These flags with `other`'s bits cleared.
    #[must_use]
    pub const fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
}

/// HELLO option bits (PROTOCOL.md §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HelloOptions(pub u16);

impl HelloOptions {
    /// Deliver this connection's own publishes back to its matching subscriptions.
    pub const ECHO: HelloOptions = HelloOptions(0x0001);
    /// Acknowledge every PUB, SUB and UNSUB with OK.
    pub const VERBOSE: HelloOptions = HelloOptions(0x0002);
    /// The client understands headers blocks on MSG; without it the server strips them.
    pub const HEADERS: HelloOptions = HelloOptions(0x0004);
    /// Every bit v1 defines.
    pub const ALL: HelloOptions = HelloOptions(0x0007);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: HelloOptions) -> bool {
        self.0 & other.0 == other.0
    }

    /// These options with `other`'s bits set too.
    #[must_use]
    pub const fn with(self, other: HelloOptions) -> HelloOptions {
        HelloOptions(self.0 | other.0)
    }
}

/// The `flags` field of the room ops' fixed fields (PROTOCOL.md §3.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoomFlags(pub u32);

impl RoomFlags {
    /// JOIN (client): recover from `epoch`/`offset`. HISTORY (client): only publications after
    /// `epoch`/`offset`.
    pub const FROM_POSITION: RoomFlags = RoomFlags(0x0001);
    /// HISTORY (client): newest first.
    pub const REVERSE: RoomFlags = RoomFlags(0x0002);
    /// PRESENCE (client): counts only, no member list.
    pub const STATS_ONLY: RoomFlags = RoomFlags(0x0004);
    /// JOIN (server): every publication after the asked position followed, then the live stream.
    pub const RECOVERED: RoomFlags = RoomFlags(0x0100);
    /// JOIN, HISTORY (server): the room keeps history, so `epoch` and `offset` mean something.
    pub const POSITIONED: RoomFlags = RoomFlags(0x0200);
    /// MEMBER (server): the member joined.
    pub const JOINED: RoomFlags = RoomFlags(0x1000);
    /// MEMBER (server): the member left.
    pub const LEFT: RoomFlags = RoomFlags(0x2000);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: RoomFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with `other`'s bits set too.
    #[must_use]
    pub const fn with(self, other: RoomFlags) -> RoomFlags {
        RoomFlags(self.0 | other.0)
    }
}
