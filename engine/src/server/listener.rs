//! Listening sockets for the shards: SO_REUSEPORT, so every shard binds the same address and
//! the kernel spreads connections, and SO_REUSEADDR, so a restarted broker binds again at once
//! while the last run's closed connections sit in TIME_WAIT (glommio's own `bind` sets only
//! the first, and a restart after a drain failed with "Address already in use" for a minute).
//! A port another live process listens on is still refused: SO_REUSEADDR does not let two
//! listeners share a port, and `refuse_taken_port` checks before any shard binds.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd};

use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket, sockopt,
};

/// Connections the kernel queues before a shard accepts them (glommio's own default).
const BACKLOG: usize = 1024;

/// A listener on `addr` for the calling shard's executor.
pub(crate) fn bind_listener(addr: SocketAddr) -> std::io::Result<glommio::net::TcpListener> {
    let family = if addr.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, BACKLOG)?;
    let fd = fd.into_raw_fd();
    // SAFETY: `fd` is a bound, listening TCP socket created above and owned by nothing else;
    // the listener takes it over and closes it when dropped.
    #[allow(unsafe_code)]
    let listener = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    Ok(listener)
}
