//! TLS on the binary protocol's port and the HTTP edge's: a TLS client and a plaintext one on
//! the same port, mutual TLS, refusals (a client certificate from another CA, a missing one
//! when required, a TLS 1.1 handshake, plaintext when TLS is required), HTTPS and WSS.
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use shardbus_engine::config::Config;
use shardbus_engine::metrics::Metric;
use shardbus_protocol::ErrorCode;
use shardbus_protocol::client::{Client, ClientError, ClientOptions, ClientTls};
use shardbus_tests::pki::{Identity, Pki};
use shardbus_tests::{PATIENCE, Raw, TestServer, wait_until};

fn with_tls(pki: &Pki) -> impl FnOnce(&mut Config) + '_ {
    |config| {
        config.tls.cert = Some(pki.server.cert.clone());
        config.tls.key = Some(pki.server.key.clone());
    }
}

fn tls_options(ca: &std::path::Path, identity: Option<&Identity>) -> ClientOptions {
    ClientOptions::new().no_reconnect().tls(ClientTls {
        ca: ca.to_owned(),
        identity: identity.map(|i| (i.cert.clone(), i.key.clone())),
        server_name: None,
    })
}

#[test]
fn tls_and_plaintext_clients_share_the_port_and_the_topics() {
    let pki = Pki::new();
    let server = TestServer::with(with_tls(&pki));
    let secure = Client::connect_with(server.addr, tls_options(&pki.ca, None)).unwrap();
    let sub = secure.subscribe("tls.>").unwrap();
    secure.flush().unwrap();
    let plain = Client::connect(server.addr).unwrap();
    plain.publish("tls.hello", b"over plaintext").unwrap();
    plain.flush().unwrap();
    assert_eq!(
        sub.recv_timeout(PATIENCE).unwrap().payload(),
        b"over plaintext"
    );
    let answers = plain.subscribe("tls.back").unwrap();
    plain.flush().unwrap();
    let big = vec![7u8; 200_000];
    secure.publish("tls.back", &big).unwrap();
    secure.flush().unwrap();
    assert_eq!(answers.recv_timeout(PATIENCE).unwrap().payload(), &big[..]);
}

#[test]
fn a_server_certificate_from_an_untrusted_ca_is_refused_by_the_client() {
    let pki = Pki::new();
    let server = TestServer::with(with_tls(&pki));
    let refused = Client::connect_with(server.addr, tls_options(&pki.other_ca, None));
    assert!(
        refused.is_err(),
        "the client trusted a certificate from another CA"
    );
}

#[test]
fn mutual_tls_accepts_the_ca_s_clients_and_refuses_others_and_none() {
    let pki = Pki::new();
    let server = TestServer::with(|config| {
        with_tls(&pki)(config);
        config.tls.client_ca = Some(pki.ca.clone());
    });
    let trusted = Client::connect_with(server.addr, tls_options(&pki.ca, Some(&pki.client)));
    assert!(trusted.is_ok(), "{:?}", trusted.err());
    let stranger = Client::connect_with(server.addr, tls_options(&pki.ca, Some(&pki.stranger)));
    assert!(
        stranger.is_err(),
        "a certificate from another CA was accepted"
    );
    let anonymous = Client::connect_with(server.addr, tls_options(&pki.ca, None));
    assert!(
        anonymous.is_err(),
        "a client without a certificate was accepted"
    );
    let plain = Client::connect(server.addr);
    assert!(plain.is_ok(), "plaintext stays allowed unless tls.required");
    wait_until("the failed handshakes are counted", || {
        server.total(Metric::TlsFailures) >= 2
    });
}

#[test]
fn plaintext_is_refused_with_tls_required_when_tls_is_required() {
    let pki = Pki::new();
    let server = TestServer::with(|config| {
        with_tls(&pki)(config);
        config.tls.required = true;
    });
    let mut raw = Raw::connect(server.addr);
    raw.send_bytes(&[0, 0, 0, 12, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let err = raw.expect_err();
    assert_eq!(err.err_code(), Some(ErrorCode::TLS_REQUIRED));
    match Client::connect(server.addr) {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::TLS_REQUIRED),
        Err(other) => panic!("expected TLS_REQUIRED, got {other:?}"),
        Ok(_) => panic!("a plaintext client was served"),
    }
    assert!(Client::connect_with(server.addr, tls_options(&pki.ca, None)).is_ok());
    let https =
        shardbus_tests::http::exchange(server.http, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (https.status, https.error_name()),
        (400, "TLS_REQUIRED".to_owned())
    );
}

/// A TLS 1.1 ClientHello (record and client version 3.2, no supported_versions extension,
/// ECDHE suites rustls has): the server must answer with a protocol_version alert.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(0); // session id
    // ECDHE-ECDSA and ECDHE-RSA with AES-128-GCM: suites rustls has, so only the version fails.
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    // signature_algorithms (ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256): without it rustls
    // stops earlier, with a handshake_failure.
    let extension = [0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04];
    body.extend_from_slice(&[0x00, extension.len() as u8]);
    body.extend_from_slice(&extension);
    let mut handshake = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![
        0x16,
        0x03,
        0x02,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend_from_slice(&handshake);
    record
}

#[test]
fn a_tls_1_1_handshake_is_refused_with_a_protocol_version_alert() {
    let pki = Pki::new();
    let server = TestServer::with(with_tls(&pki));
    for port in [server.addr, server.http] {
        let mut stream = TcpStream::connect(port).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(&tls11_client_hello()).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        // An alert record (21), fatal (2), protocol_version (70).
        assert_eq!(answer.first(), Some(&0x15), "{answer:?}");
        assert_eq!(answer.get(5..7), Some(&[2u8, 70][..]), "{answer:?}");
    }
}

/// A TLS connection to `addr` trusting `pki`'s CA, as a blocking stream.
fn tls_stream(
    pki: &Pki,
    addr: std::net::SocketAddr,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&pki.ca).unwrap();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn https_and_wss_serve_the_edge_with_the_same_certificate() {
    let pki = Pki::new();
    let server = TestServer::with(with_tls(&pki));
    let mut tls = tls_stream(&pki, server.http);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains(r#""status":"ok""#), "{text}");

    let (mut ws, _) = tungstenite::client(
        format!("wss://localhost:{}/ws", server.http.port()),
        tls_stream(&pki, server.http),
    )
    .unwrap();
    ws.send(tungstenite::Message::Text(
        r#"{"op":"hello","id":1}"#.into(),
    ))
    .unwrap();
    let welcome = ws.read().unwrap();
    assert!(
        welcome.to_text().unwrap().contains(r#""op":"welcome""#),
        "{welcome:?}"
    );
}
