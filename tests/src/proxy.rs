//! `Proxy`: a TCP relay between a client and the server that a test can cut, to make a client
//! lose its connection without the server closing it, and hold reconnects back until the test
//! has done what should happen while the client was away.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A relay listening on a free port, forwarding every connection to `target`.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    /// Both ends of every relayed connection, to cut them.
    live: Mutex<Vec<TcpStream>>,
    /// Accepted while held: relayed only on `release`.
    waiting: Mutex<Vec<TcpStream>>,
    held: AtomicBool,
}

impl Proxy {
    /// Starts relaying to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let accepting = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if accepting.held.load(Ordering::SeqCst) {
                    accepting.waiting.lock().unwrap().push(client);
                } else {
                    relay(&accepting, client, target);
                }
            }
        });
        Proxy { addr, state }
    }

    /// Cuts every relayed connection, and holds new ones until [`Proxy::release`].
    pub fn cut_and_hold(&self) {
        self.state.held.store(true, Ordering::SeqCst);
        for stream in self.state.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Relays the connections that arrived while held, and every later one.
    pub fn release(&self, target: SocketAddr) {
        self.state.held.store(false, Ordering::SeqCst);
        let waiting: Vec<TcpStream> = self.state.waiting.lock().unwrap().drain(..).collect();
        for client in waiting {
            relay(&self.state, client, target);
        }
    }
}

fn relay(state: &State, client: TcpStream, target: SocketAddr) {
    let Ok(server) = TcpStream::connect(target) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    {
        let mut live = state.live.lock().unwrap();
        live.push(client.try_clone().unwrap());
        live.push(server.try_clone().unwrap());
    }
    for (mut from, mut to) in [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ] {
        std::thread::spawn(move || {
            let mut buf = [0u8; 64 << 10];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}
