//! Test certificates (rcgen): a CA, a server certificate for 127.0.0.1 and localhost, a client
//! certificate from the same CA, and a second, unrelated CA with a client certificate of its
//! own — written as PEM files into a directory removed when the `Pki` is dropped.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A certificate's PEM file and its key's.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// The files of a test PKI.
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
    /// The CA everything trusted is signed by.
    pub ca: PathBuf,
    /// The server's certificate (127.0.0.1, localhost).
    pub server: Identity,
    /// A client certificate signed by `ca`.
    pub client: Identity,
    /// Another CA's certificate.
    pub other_ca: PathBuf,
    /// A client certificate signed by `other_ca`.
    pub stranger: Identity,
}

fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn issue(
    dir: &Path,
    name: &str,
    names: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> Identity {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, issuer).unwrap();
    let identity = Identity {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&identity.cert, cert.pem()).unwrap();
    std::fs::write(&identity.key, key.serialize_pem()).unwrap();
    identity
}

impl Pki {
    /// Generates everything into a fresh temporary directory.
    pub fn new() -> Pki {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("shardbus-pki-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = authority("shardbus test CA");
        let other = authority("some other CA");
        let ca_file = dir.join("ca.pem");
        let other_file = dir.join("other-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(&other_file, other.pem()).unwrap();
        Pki {
            server: issue(&dir, "server", &["127.0.0.1", "localhost"], &ca),
            client: issue(&dir, "client", &["client"], &ca),
            stranger: issue(&dir, "stranger", &["stranger"], &other),
            ca: ca_file,
            other_ca: other_file,
            dir,
        }
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
