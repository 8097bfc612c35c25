//! PRESENCE and HISTORY from this shard's connections: checked here (the room, its options, the
//! permission, the page limits), answered by the room's home.

use shardbus_protocol::{ErrorCode, Frame, RoomFields, RoomFlags};

use super::Shard;
use super::conn::Conn;
use crate::rooms::asks::{Ask, AskKind};
use crate::rooms::positions::asked_position;

/// Members listed when PRESENCE asks for no particular page size.
const DEFAULT_PRESENCE_PAGE: u32 = 100;

impl Shard {
    pub(super) fn presence(&self, conn: &Conn, frame: &Frame<'_>, fields: RoomFields) {
        let Some(options) = self.room_for(conn, frame, 0) else {
            return;
        };
        if !options.presence {
            conn.error(
                ErrorCode::NOT_AVAILABLE,
                frame.op_id,
                0,
                "the room keeps no presence",
            );
            return;
        }
        if !self.may_see(conn, frame, 0)
            || !self.within_page(conn, frame, fields.count, true)
            || !self.room_op_allowed(conn, frame.op_id, 0)
        {
            return;
        }
        let limit = match fields.count {
            0 => DEFAULT_PRESENCE_PAGE.min(self.settings.max_presence_page),
            n => n,
        };
        conn.room_ops.set(conn.room_ops.get() + 1);
        self.ask_home(Ask {
            room: frame.topic.into(),
            conn: conn.id,
            op_id: frame.op_id,
            counted: true,
            kind: AskKind::Presence {
                cursor: fields.offset,
                limit,
                stats_only: fields.flags.contains(RoomFlags::STATS_ONLY),
            },
        });
    }

    pub(super) fn history(&self, conn: &Conn, frame: &Frame<'_>, fields: RoomFields) {
        let Some(options) = self.room_for(conn, frame, fields.sid) else {
            return;
        };
        if !options.ordered() {
            conn.error(
                ErrorCode::NOT_AVAILABLE,
                frame.op_id,
                fields.sid,
                "the room keeps no history",
            );
            return;
        }
        if !self.may_see(conn, frame, fields.sid)
            || !self.within_page(conn, frame, fields.count, false)
            || !self.room_op_allowed(conn, frame.op_id, fields.sid)
        {
            return;
        }
        let limit = match fields.count {
            0 => options.kept().min(self.settings.max_history_page),
            n => n,
        };
        let after = asked_position(fields);
        conn.room_ops.set(conn.room_ops.get() + 1);
        self.ask_home(Ask {
            room: frame.topic.into(),
            conn: conn.id,
            op_id: frame.op_id,
            counted: true,
            kind: AskKind::History {
                sid: fields.sid,
                after,
                limit,
                reverse: fields.flags.contains(RoomFlags::REVERSE),
            },
        });
    }

    /// Answers `TOO_MANY_REQUESTS` when the connection has `max_room_ops_in_flight` room ops
    /// waiting for their homes already.
    pub(super) fn room_op_allowed(&self, conn: &Conn, op_id: u32, sid: u64) -> bool {
        if conn.room_ops.get() < self.settings.max_room_ops_in_flight {
            return true;
        }
        conn.error(
            ErrorCode::TOO_MANY_REQUESTS,
            op_id,
            sid,
            "max_room_ops_in_flight room ops are waiting for their answers",
        );
        false
    }

    /// Answers `LIMIT_TOO_LARGE` when a page asks for more than the server lists at once.
    fn within_page(&self, conn: &Conn, frame: &Frame<'_>, count: u32, presence: bool) -> bool {
        let max = if presence {
            self.settings.max_presence_page
        } else {
            self.settings.max_history_page
        };
        if count > max {
            let what = if presence {
                "max_presence_page"
            } else {
                "max_history_page"
            };
            let message = format!("at most {max} at once ({what})");
            conn.error(ErrorCode::LIMIT_TOO_LARGE, frame.op_id, 0, &message);
            return false;
        }
        true
    }
}
