//! Built-in commands from this shard's connections: a REQ on `$sys.cmd.<name>` is answered by
//! the server itself (`commands/`), as a RESP carrying a container, or an ERR with the code
//! (`UNKNOWN_COMMAND`, `BAD_PARAMETER`, `PERMISSION_DENIED`, …) and the request id. A command
//! counts as a request in flight for the connection's cap while it runs.

use std::rc::Rc;

use shardbus_protocol::{ErrorCode, Fields, Flags, Frame};

use super::Shard;
use super::conn::{Conn, Outgoing};
use crate::commands::{self, PREFIX};

impl Shard {
    /// Whether a request's subject names a command.
    #[inline]
    pub(super) fn is_command(subject: &[u8]) -> bool {
        subject.starts_with(PREFIX)
    }

    /// Runs the command a REQ names, and answers it when it is done.
    pub(super) fn command(&self, conn: &Conn, frame: &Frame<'_>, request_id: u64) {
        let refuse = |code: ErrorCode, message: &str| {
            self.metrics.add(crate::metrics::Metric::CommandsRefused, 1);
            conn.error(code, frame.op_id, request_id, message);
        };
        let name = frame.topic.get(PREFIX.len()..).unwrap_or_default();
        let Ok(name) = std::str::from_utf8(name) else {
            return refuse(ErrorCode::UNKNOWN_COMMAND, "no such command");
        };
        if conn.inflight.get() >= self.settings.max_inflight_requests {
            return refuse(
                ErrorCode::TOO_MANY_REQUESTS,
                "max_inflight_requests reached",
            );
        }
        let params = match commands::to_json(frame.payload, frame.flags.contains(Flags::CONTAINER))
        {
            Ok(params) => params,
            Err(refusal) => return refuse(refusal.code, &refusal.message),
        };
        let (Some(shard), Some(conn), Some(identity)) =
            (self.this(), self.conn(conn.id), conn.identity())
        else {
            return refuse(ErrorCode::INTERNAL, "the connection is going");
        };
        conn.inflight.set(conn.inflight.get() + 1);
        let (name, op_id) = (name.to_owned(), frame.op_id);
        glommio::spawn_local(async move {
            let answer = commands::run::run(&shard, &identity, &name, params).await;
            conn.inflight.set(conn.inflight.get().saturating_sub(1));
            answer_command(&conn, op_id, request_id, answer);
        })
        .detach();
    }

    /// This shard as the `Rc` its tasks hold.
    pub(super) fn this(&self) -> Option<Rc<Shard>> {
        self.this.get()?.upgrade()
    }
}

fn answer_command(
    conn: &Conn,
    op_id: u32,
    request_id: u64,
    answer: Result<serde_json::Value, crate::http::reply::Refusal>,
) {
    let payload = answer.and_then(|json| {
        commands::to_container(&json)
            .to_binary()
            .map_err(|e| crate::http::reply::Refusal::new(ErrorCode::INTERNAL, e.to_string()))
    });
    match payload {
        Ok(payload) => {
            let sent = conn.send(&Outgoing {
                flags: Flags::CONTAINER.0,
                payload: &payload,
                ..Outgoing::bare(Fields::Resp { id: request_id }, op_id)
            });
            if sent {
                conn.count_out(payload.len());
            }
        }
        Err(refusal) if refusal.code.closes_connection() => {
            // A command's failure is the command's, not the connection's.
            conn.error(
                ErrorCode::BAD_PARAMETER,
                op_id,
                request_id,
                &refusal.message,
            );
        }
        Err(refusal) => conn.error(refusal.code, op_id, request_id, &refusal.message),
    }
}
