//! `HyperIo`: hyper's I/O traits over a futures-io stream (a glommio socket, later a TLS
//! stream). hyper reads into its own cursor, which safe code can only fill by copying, so reads
//! land in a small buffer of the adapter first. Read errors are passed on, not turned into end
//! of stream (DEPENDENCIES.md: glommio's own example does that).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite};
use hyper::rt::ReadBufCursor;

/// Bytes one socket read may bring; HTTP requests here are small.
const READ_CHUNK: usize = 8 << 10;

/// A stream hyper can serve.
#[derive(Debug)]
pub(crate) struct HyperIo<S> {
    inner: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<S> HyperIo<S> {
    pub(crate) fn new(inner: S) -> HyperIo<S> {
        HyperIo {
            inner,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> hyper::rt::Read for HyperIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut cursor: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut this.buf))?;
            this.start = 0;
            this.end = n;
        }
        let n = (this.end - this.start).min(cursor.remaining());
        if let Some(bytes) = this.buf.get(this.start..this.start + n) {
            cursor.put_slice(bytes);
        }
        this.start += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
