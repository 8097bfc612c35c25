//! Moving a connection to another shard. A synchronous request whose requester and responder
//! are on two shards wakes each shard about twice (the request and its response both cross the
//! mesh); on one shard, once each way. So a connection that only makes requests, answered on
//! one other shard `runtime.move_requester_after` times in a row, moves there: its reader stops
//! before taking the next bytes off the socket, the socket (a duplicate of its descriptor) and
//! what its session knows (HELLO's options, its name and identity, its traffic) go over the mesh
//! in one record, and the other shard serves it from there under a new connection id.
//!
//! Only a connection that nothing else holds on its shard moves: plaintext TCP (TLS state is
//! rustls's, not the socket's), no subscriptions (so no room memberships), no service
//! instances, no requests in flight, no bytes queued, unread or being written, no PING
//! barrier pending, no rate buckets of its own and no credentials that expire. Anything else
//! keeps it where it is; a connection that starts subscribing before the move stays, too.

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;

use shardbus_protocol::HelloOptions;

use super::Shard;
use super::conn::Conn;
use super::stream::SharedStream;
use crate::auth::Identity;
use crate::mesh::batch::Record;
use crate::metrics::Metric;
use crate::routing::ShardId;
use crate::transport::Transport;

/// A connection on its way to another shard: the socket and its session's state.
pub(crate) struct Arrival {
    /// Taken by the shard that adopts it; closed with the record if it never is.
    fd: Cell<Option<OwnedFd>>,
    remote: SocketAddr,
    options: HelloOptions,
    name: String,
    identity: Option<Arc<Identity>>,
    /// Messages and payload bytes in, then out.
    traffic: [u64; 4],
}

impl std::fmt::Debug for Arrival {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrival")
            .field("remote", &self.remote)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// A response from shard `from` reached `conn`: counts the responses in a row from that
    /// shard, and marks the connection to move there once they reach the configured number.
    pub(super) fn note_answer_from(&self, conn: &Conn, from: ShardId) {
        let after = self.settings.move_requester_after;
        if after == 0 || conn.move_to.get().is_some() {
            return;
        }
        let (last, run) = conn.answered_from.get();
        let run = if from == self.id {
            0
        } else if last == from {
            run.saturating_add(1)
        } else {
            1
        };
        conn.answered_from.set((from, run));
        // Another shard of this server: the cluster's link has a shard number too.
        let peer = usize::from(from) < self.settings.shards && self.link(from).is_some();
        if run >= after && peer && self.holds_nothing_of(conn) {
            conn.move_to.set(Some(from));
        }
    }

    /// Whether nothing but its socket ties `conn` to this shard (the module's list, but for
    /// the bytes on their way out, which `moves_now` waits for).
    pub(super) fn holds_nothing_of(&self, conn: &Conn) -> bool {
        conn.remote.is_some()
            && conn.plain_fd().is_some()
            && conn.subs.borrow().len() == 0
            && conn.inflight.get() == 0
            && conn.room_ops.get() == 0
            && conn.barriers_pending.get() == 0
            && !conn.outbox.is_closed()
            && !conn.backlogged.get()
            && conn.rate.borrow().is_none()
            && conn.identity().is_some_and(|i| i.expires.is_none())
            && !self.has_instances(conn.id)
    }

    /// Whether `conn`, marked to move, may go now (not while bytes of it are still queued or
    /// being written); a connection that took on something since it was marked is unmarked
    /// (it stays).
    pub(super) fn moves_now(&self, conn: &Conn) -> Option<ShardId> {
        let to = conn.move_to.get()?;
        if !self.holds_nothing_of(conn) {
            conn.move_to.set(None);
            conn.answered_from.set((to, 0));
            return None;
        }
        (conn.outbox.backlog() == 0).then_some(to)
    }

    /// Sends `conn`, whose reader and writer have stopped, to shard `to`, and forgets it here
    /// (without the events and counts of a close: it goes on there). `false` when the socket
    /// could not be handed over; the caller then closes the connection.
    pub(super) fn send_away(&self, conn: &Conn, to: ShardId) -> bool {
        let (Some(fd), Some(remote), Some(link)) = (conn.plain_fd(), conn.remote, self.link(to))
        else {
            return false;
        };
        let Ok(copy) = nix::unistd::dup(fd) else {
            return false;
        };
        // SAFETY: `dup` just made `copy`, a descriptor nothing else owns; the arrival owns it
        // from here and closes it if no shard takes it.
        #[allow(unsafe_code)]
        let copy = unsafe { OwnedFd::from_raw_fd(copy) };
        let traffic = &conn.traffic;
        let arrival = Arrival {
            fd: Cell::new(Some(copy)),
            remote,
            options: conn.options.get(),
            name: conn.name.borrow().clone(),
            identity: conn.identity(),
            traffic: [
                traffic.msgs_in.get(),
                traffic.bytes_in.get(),
                traffic.msgs_out.get(),
                traffic.bytes_out.get(),
            ],
        };
        if self.conns.borrow_mut().remove(&conn.id).is_some() {
            self.user_offline(conn);
        }
        self.metrics.sub(Metric::Connections, 1);
        link.with_batch(|b| b.push(Record::Arrival(Box::new(arrival))));
        self.metrics.add(Metric::ForwardsOut, 1);
        true
    }

    /// Serves a connection another shard sent here.
    pub(super) fn adopt(&self, arrival: &Arrival) {
        let (Some(shard), Some(fd)) = (self.this(), arrival.fd.take()) else {
            return;
        };
        // SAFETY: `fd` is the arrival's own descriptor of a connected TCP socket, given up here
        // to the stream, which closes it.
        #[allow(unsafe_code)]
        let socket = unsafe { glommio::net::TcpStream::from_raw_fd(fd.into_raw_fd()) };
        let stream = SharedStream::new(Transport::Plain(socket));
        let conn = Rc::new(Conn::new(
            self.next_conn_id(),
            Some(stream.clone()),
            Some(arrival.remote),
            self.settings.max_pending,
            self.write_tick.clone(),
            Arc::clone(&self.metrics),
        ));
        if let Some(identity) = &arrival.identity {
            conn.set_identity(Arc::clone(identity));
        }
        conn.options.set(arrival.options);
        arrival.name.clone_into(&mut conn.name.borrow_mut());
        let [msgs_in, bytes_in, msgs_out, bytes_out] = arrival.traffic;
        conn.traffic.msgs_in.set(msgs_in);
        conn.traffic.bytes_in.set(bytes_in);
        conn.traffic.msgs_out.set(msgs_out);
        conn.traffic.bytes_out.set(bytes_out);
        self.register(Rc::clone(&conn));
        self.metrics.add(Metric::ConnectionsMovedIn, 1);
        glommio::spawn_local(super::session::serve_arrived(shard, conn, stream)).detach();
    }
}
