//! The stable numeric error codes carried by ERR frames, in one table (PROTOCOL.md §5).

use std::fmt;

/// A wire error code. New codes may be added; existing numbers never change meaning.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u16);

/// Whether the server keeps the connection after sending the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The connection stays open; only the op that caused it failed.
    KeepOpen,
    /// The server closes the connection after sending the ERR.
    Close,
}

/// One row of the code table.
#[derive(Debug, Clone, Copy)]
pub struct CodeInfo {
    /// The code.
    pub code: ErrorCode,
    /// Its name in PROTOCOL.md, SCREAMING_SNAKE_CASE.
    pub name: &'static str,
    /// What the server does with the connection.
    pub disposition: Disposition,
    /// Whether the same op may succeed if retried later (temporary) or never will (terminal).
    pub temporary: bool,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $konst:ident = $num:literal, $disp:ident, $temp:literal; )*) => {
        impl ErrorCode {
            $( $(#[$doc])* pub const $konst: ErrorCode = ErrorCode($num); )*
        }
        /// Every defined code, ascending.
        pub const CODE_TABLE: &[CodeInfo] = &[
            $( CodeInfo {
                code: ErrorCode($num),
                name: stringify!($konst),
                disposition: Disposition::$disp,
                temporary: $temp,
            }, )*
        ];
    };
}

codes! {
    /// The frame is malformed: bad lengths, a field where none is allowed, bad UTF-8.
    BAD_FRAME = 1, Close, false;
    /// The length prefix exceeds the server's maximum frame size.
    FRAME_TOO_LARGE = 2, Close, false;
    /// The op byte is not a v1 op (or is reserved for a later version).
    UNKNOWN_OP = 3, KeepOpen, false;
    /// The topic or pattern breaks the grammar or the maximum length.
    INVALID_TOPIC = 4, KeepOpen, false;
    /// The payload exceeds the server's maximum payload size.
    PAYLOAD_TOO_LARGE = 5, KeepOpen, false;
    /// The headers block is malformed or too large.
    BAD_HEADERS = 6, KeepOpen, false;
    /// The connection already holds the maximum number of subscriptions.
    TOO_MANY_SUBSCRIPTIONS = 7, KeepOpen, true;
    /// The client did not read fast enough; its outbound buffer hit the limit.
    SLOW_CONSUMER = 8, Close, true;
    /// The server needs credentials and HELLO carried none.
    AUTH_REQUIRED = 9, Close, false;
    /// The credentials were wrong, expired or not accepted.
    AUTH_FAILED = 10, Close, false;
    /// The authenticated identity may not do this on this topic.
    PERMISSION_DENIED = 11, KeepOpen, false;
    /// A rate limit was exceeded; ERR carries retry-after in milliseconds.
    RATE_LIMITED = 12, KeepOpen, true;
    /// A request found nobody subscribed to its topic; ERR carries the request id.
    NO_RESPONDERS = 13, KeepOpen, true;
    /// A request got no response before its deadline; ERR carries the request id.
    TIMEOUT = 14, KeepOpen, true;
    /// The client missed the server's pings.
    STALE_CONNECTION = 15, Close, true;
    /// The server is shutting down.
    SERVER_DRAINING = 16, Close, true;
    /// HELLO did not arrive within the handshake timeout.
    HELLO_TIMEOUT = 17, Close, true;
    /// An op other than HELLO arrived before the handshake, or HELLO arrived twice.
    HELLO_REQUIRED = 18, Close, false;
    /// The client asked for a protocol version the server does not speak.
    UNSUPPORTED_VERSION = 19, Close, false;
    /// The connection has the maximum number of requests in flight.
    TOO_MANY_REQUESTS = 20, KeepOpen, true;
    /// The server is at its connection limit.
    MAX_CONNECTIONS = 21, Close, true;
    /// UNSUB named a subscription id this connection does not hold.
    UNKNOWN_SUBSCRIPTION = 22, KeepOpen, false;
    /// SUB reused a subscription id that is still active.
    DUPLICATE_SUBSCRIPTION = 23, KeepOpen, false;
    /// A queue-group name breaks the token grammar.
    INVALID_QUEUE_GROUP = 24, KeepOpen, false;
    /// A container payload could not be decoded or transcoded (WebSocket JSON edge, LZ4).
    BAD_PAYLOAD = 25, KeepOpen, false;
    /// The credentials expired while the connection was open.
    AUTH_EXPIRED = 26, Close, false;
    /// A server fault; the connection is closed and a retry may succeed.
    INTERNAL = 27, Close, true;
    /// The server accepts TLS only and the client spoke plaintext.
    TLS_REQUIRED = 28, Close, false;
    /// An administrator closed the connection.
    KICKED = 29, Close, false;
    /// An admin operation named a connection the server does not have.
    UNKNOWN_CONNECTION = 30, KeepOpen, false;
    /// The topic or pattern has more tokens than the server's `max_topic_tokens`.
    TOO_MANY_TOKENS = 31, KeepOpen, false;
    /// A room op named a topic that no configured room pattern matches.
    NOT_A_ROOM = 32, KeepOpen, false;
    /// The room has its configured maximum of members.
    ROOM_FULL = 33, KeepOpen, true;
    /// The connection is a member of as many rooms as it may be.
    TOO_MANY_ROOMS = 34, KeepOpen, true;
    /// The connection is not a member of the room (LEAVE, or PUB to a members-only room).
    NOT_A_MEMBER = 35, KeepOpen, false;
    /// The connection is already a member of the room.
    ALREADY_A_MEMBER = 36, KeepOpen, false;
    /// The room's options do not keep what was asked for (presence, history).
    NOT_AVAILABLE = 37, KeepOpen, false;
    /// A presence page or history limit above the server's maximum.
    LIMIT_TOO_LARGE = 38, KeepOpen, false;
    /// A registration or heartbeat has a missing or senseless field; the message names it.
    BAD_SERVICE = 39, KeepOpen, false;
    /// The connection already registered an instance of this service.
    ALREADY_REGISTERED = 40, KeepOpen, false;
    /// HEARTBEAT or DEREGISTER named an instance this connection did not register.
    UNKNOWN_INSTANCE = 41, KeepOpen, false;
    /// The connection has registered as many instances as it may.
    TOO_MANY_SERVICES = 42, KeepOpen, true;
    /// An operation named a service that has no registered instance.
    UNKNOWN_SERVICE = 43, KeepOpen, true;
    /// A request on `$sys.cmd.<name>` named no built-in command.
    UNKNOWN_COMMAND = 44, KeepOpen, false;
    /// A command's parameter is missing, unknown or of the wrong type; the message names it.
    BAD_PARAMETER = 45, KeepOpen, false;
    /// The service has its `max_concurrent` requests in flight and its wait queue is full (or
    /// the request waited `queue_timeout_ms`), or it is over its rate; ERR carries retry-after.
    SERVICE_BUSY = 46, KeepOpen, true;
}

impl ErrorCode {
    /// The table row for this code, if it is defined.
    pub fn info(self) -> Option<&'static CodeInfo> {
        CODE_TABLE.iter().find(|row| row.code == self)
    }

    /// The code's name, or `UNDEFINED` for a number this build does not know.
    pub fn name(self) -> &'static str {
        self.info().map_or("UNDEFINED", |row| row.name)
    }

    /// Whether the server closes the connection after this code. Unknown codes count as closing.
    pub fn closes_connection(self) -> bool {
        self.info()
            .is_none_or(|row| row.disposition == Disposition::Close)
    }

    /// Whether retrying the op later may succeed.
    pub fn is_temporary(self) -> bool {
        self.info().is_some_and(|row| row.temporary)
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_table_is_ascending_and_unique() {
        for pair in CODE_TABLE.windows(2) {
            if let [a, b] = pair {
                assert!(a.code < b.code, "{:?} before {:?}", a.code, b.code);
            }
        }
    }

    #[test]
    fn undefined_code_closes_and_is_terminal() {
        let code = ErrorCode(60_000);
        assert_eq!(code.name(), "UNDEFINED");
        assert!(code.closes_connection());
        assert!(!code.is_temporary());
    }
}
