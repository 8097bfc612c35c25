//! `ClientOptions`: how the blocking client connects, authenticates, buffers and reconnects.

use std::time::Duration;

use crate::flags::HelloOptions;

use super::session::SessionOptions;

/// When and how the client reconnects after losing its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Whether to reconnect at all.
    pub enabled: bool,
    /// Attempts before giving up for good; `None` retries forever.
    pub max_attempts: Option<u32>,
    /// Delay before the first attempt; doubles per attempt.
    pub base_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> ReconnectPolicy {
        ReconnectPolicy {
            enabled: true,
            max_attempts: None,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// Settings for [`crate::client::Client`].
///
/// ```no_run
/// # use std::time::Duration;
/// use shardbus_protocol::client::{Client, ClientOptions, ReconnectPolicy};
///
/// let options = ClientOptions::new()
///     .name("billing")
///     .user_password("billing", "s3cret")
///     .reconnect(ReconnectPolicy { max_attempts: Some(20), ..ReconnectPolicy::default() });
/// let client = Client::connect_with("broker.internal:7400", options)?;
/// # Ok::<(), shardbus_protocol::client::ClientError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// What HELLO says (name, credentials, option bits).
    pub session: SessionOptions,
    /// Limit on the TCP connect.
    pub connect_timeout: Duration,
    /// Limit on waiting for WELCOME, and on `flush`/`rtt`.
    pub handshake_timeout: Duration,
    /// Reconnect behaviour.
    pub reconnect: ReconnectPolicy,
    /// Bytes of publishes kept while disconnected; past it, publishing fails with
    /// [`crate::client::ClientError::BufferFull`].
    pub reconnect_buffer: usize,
    /// Bytes waiting to be written past which publishing blocks until the writer catches up.
    pub max_outbox: usize,
    /// Messages a subscription holds before further ones are dropped (and counted).
    pub subscription_capacity: usize,
    /// Container payloads at least this long are LZ4-compressed when that saves space.
    pub compress_threshold: Option<usize>,
    /// Speak TLS to the server.
    pub tls: Option<super::tls::ClientTls>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            session: SessionOptions {
                options: HelloOptions::HEADERS,
                ..SessionOptions::default()
            },
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            reconnect: ReconnectPolicy::default(),
            reconnect_buffer: 8 << 20,
            max_outbox: 4 << 20,
            subscription_capacity: 65_536,
            compress_threshold: Some(crate::container::compress::DEFAULT_THRESHOLD),
            tls: None,
        }
    }
}

impl ClientOptions {
    /// The defaults.
    pub fn new() -> ClientOptions {
        ClientOptions::default()
    }

    /// Speaks TLS with these settings.
    #[must_use]
    pub fn tls(mut self, tls: super::tls::ClientTls) -> ClientOptions {
        self.tls = Some(tls);
        self
    }

    /// Sets the client name shown in server status.
    #[must_use]
    pub fn name(mut self, name: &str) -> ClientOptions {
        self.session.name = Some(name.to_owned());
        self
    }

    /// Authenticates with a static token.
    #[must_use]
    pub fn token(mut self, token: &str) -> ClientOptions {
        self.session.token = Some(token.to_owned());
        self
    }

    /// Authenticates with a username and password.
    #[must_use]
    pub fn user_password(mut self, user: &str, password: &str) -> ClientOptions {
        self.session.user_password = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Authenticates with a JWT.
    #[must_use]
    pub fn jwt(mut self, jwt: &str) -> ClientOptions {
        self.session.jwt = Some(jwt.to_owned());
        self
    }

    /// Whether this connection's publishes come back to its own subscriptions.
    #[must_use]
    pub fn echo(mut self, echo: bool) -> ClientOptions {
        self.session.options = if echo {
            self.session.options.with(HelloOptions::ECHO)
        } else {
            HelloOptions(self.session.options.0 & !HelloOptions::ECHO.0)
        };
        self
    }

    /// Sets the reconnect policy.
    #[must_use]
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> ClientOptions {
        self.reconnect = policy;
        self
    }

    /// Turns reconnecting off.
    #[must_use]
    pub fn no_reconnect(mut self) -> ClientOptions {
        self.reconnect.enabled = false;
        self
    }
}
