//! The blocking client's way to run a built-in command (PROTOCOL.md §3.14): a request on
//! `$sys.cmd.<name>` with a container map of parameters, answered by the server itself.

use std::time::Duration;

use crate::container::{ContainerLimits, Value};
use crate::flags::Flags;
use crate::headers::Headers;

use super::blocking::Client;
use super::error::ClientError;

/// How long a command may take: listings gather every shard's part (at most 5 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    /// Runs built-in command `name` with `params` (a map, or [`Value::Null`] for none) and
    /// returns its answer.
    ///
    /// ```no_run
    /// use shardbus_protocol::client::Client;
    /// use shardbus_protocol::container::Value;
    /// let client = Client::connect("127.0.0.1:7400")?;
    /// let help = client.command("help", &Value::Null)?;
    /// # Ok::<(), shardbus_protocol::client::ClientError>(())
    /// ```
    ///
    /// # Errors
    /// [`ClientError::Server`] with `UNKNOWN_COMMAND`, `BAD_PARAMETER`, `PERMISSION_DENIED`,
    /// or the command's own code; [`ClientError::Timeout`], [`ClientError::Closed`].
    pub fn command(&self, name: &str, params: &Value) -> Result<Value, ClientError> {
        let (payload, flags) = match params {
            Value::Null => (Vec::new(), Flags::empty()),
            other => (other.to_binary()?, Flags::CONTAINER),
        };
        let subject = format!("$sys.cmd.{name}");
        let answer =
            self.request_with(&subject, Headers::EMPTY, flags, &payload, COMMAND_TIMEOUT)?;
        let limits = ContainerLimits {
            max_size: answer.payload().len(),
            ..ContainerLimits::default()
        };
        Ok(crate::container::view::decode(answer.payload(), &limits)?.to_owned_value())
    }
}
