//! `Subscription`: the receiving end of one SUB, an iterator of [`Message`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

use super::blocking::Client;
use super::error::ClientError;
use super::message::Message;

/// Messages for one subscription. Iterating blocks until a message arrives and ends when the
/// subscription or the client ends. Dropping it unsubscribes.
///
/// ```no_run
/// # use std::time::Duration;
/// # use shardbus_protocol::client::Client;
/// let client = Client::connect("127.0.0.1:7400")?;
/// let alerts = client.subscribe("alerts.>")?;
/// alerts.unsubscribe_after(10)?; // the server ends it after ten more messages
/// for alert in alerts {
///     println!("{}: {:?} (seq {})", alert.topic(), alert.payload(), alert.seq());
/// }
/// # Ok::<(), shardbus_protocol::client::ClientError>(())
/// ```
pub struct Subscription {
    client: Client,
    sid: u64,
    rx: Receiver<Message>,
    dropped: Arc<AtomicU64>,
    live: bool,
}

impl Subscription {
    pub(crate) fn new(
        client: Client,
        sid: u64,
        rx: Receiver<Message>,
        dropped: Arc<AtomicU64>,
    ) -> Subscription {
        Subscription {
            client,
            sid,
            rx,
            dropped,
            live: true,
        }
    }

    /// Messages on sids something else owns (a service's endpoints): dropping it does not
    /// unsubscribe.
    pub(crate) fn detached(
        client: Client,
        sid: u64,
        rx: Receiver<Message>,
        dropped: Arc<AtomicU64>,
    ) -> Subscription {
        let mut sub = Subscription::new(client, sid, rx, dropped);
        sub.live = false;
        sub
    }

    /// The subscription id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// Messages dropped because the application did not keep up with this subscription.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for the next message.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when none arrives, [`ClientError::Closed`] when the
    /// subscription or client has ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, ClientError> {
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => ClientError::Timeout,
            RecvTimeoutError::Disconnected => ClientError::Closed,
        })
    }

    /// The next message if one is waiting.
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the subscription or client has ended.
    pub fn try_recv(&self) -> Result<Option<Message>, ClientError> {
        match self.rx.try_recv() {
            Ok(m) => Ok(Some(m)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(ClientError::Closed),
        }
    }

    /// Ends the subscription after `n` more messages (the server counts them).
    ///
    /// # Errors
    /// [`ClientError::Closed`].
    pub fn unsubscribe_after(&self, n: u64) -> Result<(), ClientError> {
        self.client.unsubscribe(self.sid, Some(n.max(1)))
    }

    /// Ends the subscription now.
    ///
    /// # Errors
    /// [`ClientError::Closed`].
    pub fn unsubscribe(mut self) -> Result<(), ClientError> {
        self.live = false;
        self.client.unsubscribe(self.sid, None)
    }
}

impl Iterator for Subscription {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        self.rx.recv().ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.live {
            // Closed clients have nothing to unsubscribe from.
            let _ = self.client.unsubscribe(self.sid, None);
        }
    }
}
