//! Re-checking an open connection's identity against a reloaded configuration: the same
//! credential must still be accepted (the token's digest still configured, the user's
//! password hash unchanged, the JWT keys and rules unchanged, anonymous access still on), and
//! the identity it gets is the new configuration's, with its role's current permissions.

use std::sync::Arc;

use shardbus_protocol::ErrorCode;

use super::{Authenticator, Credential, Identity};

impl Authenticator {
    /// The identity `identity`'s credential gets under this configuration, or the terminal
    /// code its connection is closed with. `before` is the configuration it was granted under.
    ///
    /// # Errors
    /// `AUTH_REQUIRED` when anonymous access was turned off, `AUTH_FAILED` when the credential
    /// is no longer accepted.
    pub fn recheck(
        &self,
        before: &Authenticator,
        identity: &Identity,
    ) -> Result<Arc<Identity>, ErrorCode> {
        match &identity.credential {
            Credential::Anonymous => self.anonymous.clone().ok_or(ErrorCode::AUTH_REQUIRED),
            Credential::Token(digest) => self
                .tokens
                .iter()
                .find(|(known, _)| known == digest)
                .map(|(_, found)| Arc::clone(found))
                .ok_or(ErrorCode::AUTH_FAILED),
            Credential::User(hash) => match self.users.get(&*identity.name) {
                Some((stored, found)) if **stored == **hash => Ok(Arc::clone(found)),
                _ => Err(ErrorCode::AUTH_FAILED),
            },
            Credential::Jwt { from_claims } => {
                let same_rules = match (&self.jwt, &before.jwt) {
                    (Some(now), Some(then)) => now.config == then.config,
                    _ => false,
                };
                if !same_rules {
                    return Err(ErrorCode::AUTH_FAILED);
                }
                let mut renewed = identity.clone();
                if !from_claims {
                    renewed.permissions = Arc::clone(
                        self.roles
                            .get(&*identity.role)
                            .ok_or(ErrorCode::AUTH_FAILED)?,
                    );
                }
                Ok(Arc::new(renewed))
            }
        }
    }
}
