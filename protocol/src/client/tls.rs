//! TLS for the blocking client (rustls, ring, TLS 1.2 and 1.3). The client reads on one thread
//! and writes on another, and a rustls connection is one object: both threads share it behind a
//! mutex held only to move bytes in or out of it, never across a blocking socket read. Records
//! the connection produces (the handshake, alerts, encrypted writes) are written to the socket
//! under the lock, so they leave in the order rustls made them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::ClientError;

/// How the client speaks TLS.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// CA certificates (PEM) the server's certificate must chain to.
    pub ca: PathBuf,
    /// A client certificate chain and its key (PEM), for servers that require one (mTLS).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The name the server's certificate must carry; by default the host connected to.
    pub server_name: Option<String>,
}

fn tls_error(what: &str, error: impl std::fmt::Display) -> ClientError {
    ClientError::Tls(format!("{what}: {error}"))
}

impl ClientTls {
    /// The rustls configuration these settings describe.
    ///
    /// # Errors
    /// [`ClientError::Tls`] naming the file or setting that could not be used.
    pub fn config(&self) -> Result<Arc<ClientConfig>, ClientError> {
        let mut roots = RootCertStore::empty();
        let cas = CertificateDer::pem_file_iter(&self.ca)
            .map_err(|e| tls_error(&self.ca.display().to_string(), e))?;
        for ca in cas {
            let ca = ca.map_err(|e| tls_error(&self.ca.display().to_string(), e))?;
            roots
                .add(ca)
                .map_err(|e| tls_error(&self.ca.display().to_string(), e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| tls_error("protocol versions", e))?
            .with_root_certificates(roots);
        let config = match &self.identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| tls_error(&cert.display().to_string(), e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| tls_error(&cert.display().to_string(), e))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| tls_error(&key.display().to_string(), e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_error("client certificate", e))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// One TLS connection shared by the client's reader and writer threads.
#[derive(Debug)]
pub(crate) struct TlsLink {
    tcp: TcpStream,
    conn: Mutex<ClientConnection>,
}

impl TlsLink {
    /// Starts TLS on `tcp` towards `host` (the handshake runs as the threads read and write).
    pub(crate) fn new(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        host: &str,
    ) -> Result<TlsLink, ClientError> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| tls_error(host, e))?;
        let conn = ClientConnection::new(config, name).map_err(|e| tls_error("TLS", e))?;
        Ok(TlsLink {
            tcp,
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ClientConnection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes what rustls has queued for the peer.
    fn send_queued(&self, conn: &mut ClientConnection) -> io::Result<()> {
        while conn.wants_write() {
            conn.write_tls(&mut &self.tcp)?;
        }
        Ok(())
    }

    /// Encrypts and sends `data`, in pieces as rustls's buffer takes them.
    pub(crate) fn write_all(&self, data: &[u8]) -> io::Result<()> {
        let mut conn = self.lock();
        let mut rest = data;
        while !rest.is_empty() {
            let taken = conn.writer().write(rest)?;
            rest = rest.get(taken..).unwrap_or_default();
            let queued = conn.wants_write();
            self.send_queued(&mut conn)?;
            if taken == 0 && !queued {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "TLS connection takes no more data",
                ));
            }
        }
        Ok(())
    }

    /// The socket, for timeouts and shutdown.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub(crate) fn shutdown(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

/// The reading side of a [`TlsLink`]: raw bytes read without the lock, then decrypted under it.
#[derive(Debug)]
pub(crate) struct TlsReader {
    link: Arc<TlsLink>,
    raw: Vec<u8>,
    start: usize,
    end: usize,
}

impl TlsReader {
    pub(crate) fn new(link: Arc<TlsLink>) -> TlsReader {
        TlsReader {
            link,
            raw: vec![0; 32 << 10],
            start: 0,
            end: 0,
        }
    }
}

impl TlsReader {
    pub(crate) fn link(&self) -> &TlsLink {
        &self.link
    }
}

impl Read for TlsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut conn = self.link.lock();
                match conn.reader().read(out) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.start < self.end {
                    let mut pending = self.raw.get(self.start..self.end).unwrap_or_default();
                    let before = pending.len();
                    conn.read_tls(&mut pending)?;
                    self.start += before - pending.len();
                    conn.process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    // Handshake messages and alerts rustls made in answer.
                    self.link.send_queued(&mut conn)?;
                    continue;
                }
            }
            let n = (&self.link.tcp).read(&mut self.raw)?;
            if n == 0 {
                return Ok(0);
            }
            self.start = 0;
            self.end = n;
        }
    }
}
