//! `SharedStream`: one accepted connection (plaintext or TLS) shared by its session's reader and
//! writer tasks. The stream needs `&mut` to read or write, but glommio keeps separate reactor
//! sources for the two directions (and rustls separate buffers), so two tasks of one shard may
//! each drive one direction. The `RefCell` is borrowed
//! only inside a single poll, never across an `.await`; on one thread that cannot conflict.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::transport::Transport;
use futures_lite::{AsyncRead, AsyncWrite};

/// A handle on the connection; clone it for the other direction.
#[derive(Debug, Clone)]
pub(crate) struct SharedStream(Rc<RefCell<Transport>>);

impl SharedStream {
    pub(crate) fn new(stream: Transport) -> SharedStream {
        SharedStream(Rc::new(RefCell::new(stream)))
    }

    /// The socket's descriptor, over plaintext TCP only (`None` over TLS: rustls's state is
    /// the connection's too, and does not move with a descriptor).
    pub(crate) fn plain_fd(&self) -> Option<std::os::fd::RawFd> {
        let transport = self.0.borrow();
        transport.is_plain().then(|| transport.raw_fd())
    }

    /// Shuts both directions down, which also ends a read or write pending in the other task.
    /// A socket the peer already closed answers ENOTCONN; that is the outcome wanted anyway.
    pub(crate) fn shutdown(&self) {
        let fd = self.0.borrow().raw_fd();
        let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut stream = self.0.borrow_mut();
        Pin::new(&mut *stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut stream = self.0.borrow_mut();
        Pin::new(&mut *stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut stream = self.0.borrow_mut();
        Pin::new(&mut *stream).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut stream = self.0.borrow_mut();
        Pin::new(&mut *stream).poll_close(cx)
    }
}
