//! HELLO credentials from the command line or the environment (`SHARDBUS_TOKEN`,
//! `SHARDBUS_USER`, `SHARDBUS_PASSWORD`, `SHARDBUS_JWT`). A user without a password is asked
//! for one when a terminal is there; without one it is an error, never an empty password.

use std::io::IsTerminal;

use shardbus_protocol::client::ClientOptions;

use crate::args::Credentials;

/// `options` with the credentials given, if any.
pub fn apply(
    credentials: &Credentials,
    mut options: ClientOptions,
) -> Result<ClientOptions, String> {
    if let Some(token) = &credentials.token {
        options = options.token(token);
    }
    if let Some(jwt) = &credentials.jwt {
        options = options.jwt(jwt);
    }
    if let Some(user) = &credentials.user {
        let password = match &credentials.password {
            Some(password) => password.clone(),
            None if std::io::stdin().is_terminal() => {
                rpassword::prompt_password(format!("password for {user}: "))
                    .map_err(|error| format!("cannot read the password: {error}"))?
            }
            None => {
                return Err(format!(
                    "--user {user} needs --password (or SHARDBUS_PASSWORD) without a terminal"
                ));
            }
        };
        options = options.user_password(user, &password);
    }
    Ok(options)
}
