//! `Transport`: an accepted connection, plaintext or TLS, as one futures-io stream — what the
//! binary protocol's sessions and the HTTP edge read and write — and `accept`, which decides
//! which by the first byte the client sends.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite, future};
use futures_rustls::TlsAcceptor;
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;

use crate::tls::{HANDSHAKE_RECORD, ServerTls};

/// One accepted connection.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// What `accept` made of a new connection.
pub(crate) enum Accepted {
    /// Ready to serve.
    Ready(Transport),
    /// Plaintext where TLS is required: refuse it (with the transport's own error form).
    PlaintextRefused(TcpStream),
    /// The TLS handshake failed, or nothing arrived in time.
    Failed,
}

/// Answers a connection that will not be served with `bytes` and leaves it to be closed: writes
/// for at most `LINGER` (a client that does not read), shuts the write side, then reads and
/// drops what the client still sends until it closes too — at most `LINGER` and 1 MiB — so
/// that closing with unread data does not reset the connection before the client has read the
/// answer (the lingering close of HTTP servers). Short, with a small buffer: in a reconnect
/// storm every refused connection holds one of these for up to twice `LINGER`.
pub(crate) async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    const LINGER: Duration = Duration::from_millis(500);
    const DRAIN_MAX: usize = 1 << 20;
    let _ = future::or(
        async {
            let _ = stream.write_all(bytes).await;
            let _ = stream.close().await;
        },
        glommio::timer::sleep(LINGER),
    )
    .await;
    let mut sink = [0u8; 1024];
    let _ = future::or(
        async {
            let mut drained = 0;
            while drained < DRAIN_MAX {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        },
        glommio::timer::sleep(LINGER),
    )
    .await;
}

/// Makes a transport of `stream`: TLS when `tls` is set and the client's first byte opens a
/// TLS handshake, plaintext otherwise (refused when TLS is required). The first byte and the
/// handshake must arrive within `timeout`.
pub(crate) async fn accept(
    tls: Option<&ServerTls>,
    stream: TcpStream,
    timeout: Duration,
) -> Accepted {
    let Some(tls) = tls else {
        return Accepted::Ready(Transport::Plain(stream));
    };
    let work = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) if first[0] == HANDSHAKE_RECORD => {}
            Ok(1) if !tls.required => return Accepted::Ready(Transport::Plain(stream)),
            Ok(1) => return Accepted::PlaintextRefused(stream),
            _ => return Accepted::Failed,
        }
        match TlsAcceptor::from(std::sync::Arc::clone(&tls.config))
            .accept(stream)
            .await
        {
            Ok(secured) => Accepted::Ready(Transport::Tls(Box::new(secured))),
            Err(error) => {
                tracing::debug!(%error, "TLS handshake failed");
                Accepted::Failed
            }
        }
    };
    future::or(work, async {
        glommio::timer::sleep(timeout).await;
        Accepted::Failed
    })
    .await
}

impl Transport {
    /// Plaintext TCP: nothing but the kernel's socket holds the connection's state.
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    /// The socket's descriptor (for shutting it down under a pending read or write).
    pub(crate) fn raw_fd(&self) -> RawFd {
        match self {
            Transport::Plain(stream) => stream.as_raw_fd(),
            Transport::Tls(stream) => stream.get_ref().0.as_raw_fd(),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(&mut **stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(&mut **stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(&mut **stream).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_close(cx),
            Transport::Tls(stream) => Pin::new(&mut **stream).poll_close(cx),
        }
    }
}
