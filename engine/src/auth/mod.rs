//! Authentication and authorization: who a connection is, from HELLO's
//! credentials, and what it may do. Static tokens, stored in the configuration only as SHA-256
//! digests and compared in constant time, each naming a role; roles (built-in `admin`, `user`,
//! `guest`, and custom ones) carry `Permissions`. Anonymous access is a configured role too —
//! on by default for the quick start, and logged loudly when on.

pub mod jwt;
pub mod password;
pub mod permissions;
mod recheck;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shardbus_protocol::{ErrorCode, Headers};

pub use permissions::{Permissions, Rule};

/// The `[auth]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accept connections whose HELLO carries no credentials, with `anonymous_role`.
    pub anonymous: bool,
    /// The role of anonymous connections.
    pub anonymous_role: String,
    /// Static tokens.
    pub tokens: Vec<TokenConfig>,
    /// Users with passwords.
    pub users: Vec<password::UserConfig>,
    /// JWT keys and checks.
    pub jwt: jwt::JwtConfig,
    /// Custom roles, and overrides of the built-in `admin`, `user` and `guest`.
    pub roles: BTreeMap<String, Permissions>,
    /// Serve HTTP requests that carry no credentials as `anonymous_role` (for the quick start;
    /// logged loudly). Otherwise the HTTP API (all but `/healthz`, `/readyz` and the browser
    /// assets) needs a token, an API key or a JWT, and monitoring needs an admin one.
    pub http_open: bool,
    /// The role of HTTP requests without credentials when `http_open` is on (admin by
    /// default: opening the HTTP API is for trying out monitoring).
    pub http_open_role: String,
    /// Password checks (argon2) a shard runs at once; more HELLOs with a password are refused
    /// `RATE_LIMITED` until one ends.
    pub max_password_checks: u32,
    /// Of those, how many one remote address may have: the rest stay for everybody else.
    pub max_password_checks_per_address: u32,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            anonymous: true,
            // Never admin: kicks and commands are reachable over the protocol.
            anonymous_role: "user".to_owned(),
            tokens: Vec::new(),
            users: Vec::new(),
            jwt: jwt::JwtConfig::default(),
            roles: BTreeMap::new(),
            http_open: false,
            http_open_role: "admin".to_owned(),
            max_password_checks: 8,
            max_password_checks_per_address: 2,
        }
    }
}

/// One static token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who the token is (shown in status and logs).
    pub name: String,
    /// The token's SHA-256 digest, hex (`printf %s "$TOKEN" | sha256sum`).
    pub sha256: String,
    /// Its role.
    pub role: String,
    /// Permissions of its own, replacing the role's.
    #[serde(default)]
    pub permissions: Option<Permissions>,
}

/// Why the `[auth]` section cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// A token or the anonymous role names a role that does not exist.
    #[error("auth: {what} names the unknown role {role:?}")]
    UnknownRole {
        /// Which setting.
        what: String,
        /// The role named.
        role: String,
    },
    /// A user's password hash is not an argon2 PHC string.
    #[error(
        "auth: user {name:?}: password_hash is not a PHC string (use shardbus --hash-password)"
    )]
    BadPasswordHash {
        /// The user.
        name: String,
    },
    /// A JWT key could not be read.
    #[error("auth.jwt: {0}")]
    Jwt(String),
    /// A token digest is not 64 hex digits.
    #[error("auth: token {name:?}: sha256 must be 64 hex digits")]
    BadDigest {
        /// The token's name.
        name: String,
    },
}

/// The roles every configuration has without defining them.
pub const BUILTIN_ROLES: [&str; 3] = ["admin", "user", "guest"];

/// Who a connection is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's name, or `anonymous`. Shared (`Arc`): every connection of one token or of
    /// the anonymous role holds the same text rather than its own copy.
    pub name: Arc<str>,
    /// The role.
    pub role: Arc<str>,
    /// What it may do.
    pub permissions: Arc<Permissions>,
    /// When its credentials expire (a JWT's `exp`, Unix seconds).
    pub expires: Option<u64>,
    /// What it proved itself with, so a configuration reload can tell whether it still would.
    pub credential: Credential,
}

/// The credential an identity was granted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// None: the anonymous role (or an open HTTP API's role).
    Anonymous,
    /// A static token, by its SHA-256 digest.
    Token([u8; 32]),
    /// A user's password, by its stored hash.
    User(Arc<str>),
    /// A JWT; `from_claims` when its permissions came from the token itself, not a role.
    Jwt {
        /// Permissions from the `permissions` claim.
        from_claims: bool,
    },
}

/// Checks HELLO credentials against the configuration.
#[derive(Debug)]
pub struct Authenticator {
    anonymous: Option<Arc<Identity>>,
    /// The identity of HTTP requests without credentials, when `http_open`.
    http_anonymous: Option<Arc<Identity>>,
    tokens: Vec<([u8; 32], Arc<Identity>)>,
    users: BTreeMap<String, (String, Arc<Identity>)>,
    jwt: Option<jwt::JwtVerifier>,
    roles: BTreeMap<String, Arc<Permissions>>,
}

fn digest_from_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Equality that takes the same time wherever the first difference is.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator {
    /// Builds the checks `config` describes.
    ///
    /// # Errors
    /// [`AuthConfigError`] for an unknown role or a malformed digest.
    pub fn new(config: &AuthConfig) -> Result<Authenticator, AuthConfigError> {
        // The names must match `BUILTIN_ROLES`.
        let mut roles: BTreeMap<String, Arc<Permissions>> = [
            ("admin", Permissions::admin()),
            ("user", Permissions::user()),
            ("guest", Permissions::guest()),
        ]
        .into_iter()
        .map(|(name, p)| (name.to_owned(), Arc::new(p)))
        .collect();
        for (name, permissions) in &config.roles {
            roles.insert(name.clone(), Arc::new(permissions.clone()));
        }
        let identity = |name: &str, role: &str, what: String| {
            roles
                .get(role)
                .map(|permissions| Identity {
                    name: Arc::from(name),
                    role: Arc::from(role),
                    permissions: Arc::clone(permissions),
                    expires: None,
                    credential: Credential::Anonymous,
                })
                .ok_or_else(|| AuthConfigError::UnknownRole {
                    what,
                    role: role.to_owned(),
                })
        };
        let role = &config.anonymous_role;
        let nobody = Arc::new(identity(
            "anonymous",
            role,
            "auth.anonymous_role".to_owned(),
        )?);
        let anonymous = config.anonymous.then_some(nobody);
        let http_anonymous = if config.http_open {
            Some(Arc::new(identity(
                "anonymous",
                &config.http_open_role,
                "auth.http_open_role".to_owned(),
            )?))
        } else {
            None
        };
        // Shared by every connection that presents the credential.
        let own = |mut identity: Identity, permissions: &Option<Permissions>| {
            if let Some(permissions) = permissions {
                identity.permissions = Arc::new(permissions.clone());
            }
            Arc::new(identity)
        };
        let mut tokens = Vec::with_capacity(config.tokens.len());
        for token in &config.tokens {
            let digest =
                digest_from_hex(&token.sha256).ok_or_else(|| AuthConfigError::BadDigest {
                    name: token.name.clone(),
                })?;
            let what = format!("token {:?}", token.name);
            let mut found = identity(&token.name, &token.role, what)?;
            found.credential = Credential::Token(digest);
            tokens.push((digest, own(found, &token.permissions)));
        }
        let mut users = BTreeMap::new();
        for user in &config.users {
            if !password::is_valid_hash(&user.password_hash) {
                return Err(AuthConfigError::BadPasswordHash {
                    name: user.name.clone(),
                });
            }
            let what = format!("user {:?}", user.name);
            let mut found = identity(&user.name, &user.role, what)?;
            found.credential = Credential::User(Arc::from(user.password_hash.as_str()));
            let found = own(found, &user.permissions);
            users.insert(user.name.clone(), (user.password_hash.clone(), found));
        }
        Ok(Authenticator {
            anonymous,
            http_anonymous,
            tokens,
            users,
            jwt: jwt::JwtVerifier::new(&config.jwt)?,
            roles,
        })
    }

    /// Who an HTTP request is: the identity its token names, or — with none — the anonymous
    /// role when `http_open`.
    ///
    /// # Errors
    /// `AUTH_REQUIRED` without a token on a closed HTTP API; `AUTH_FAILED` for a bad one.
    pub fn authenticate_http(&self, token: Option<&str>) -> Result<Arc<Identity>, ErrorCode> {
        match token {
            Some(token) => self.authenticate_token(Some(token)),
            None => self.http_anonymous.clone().ok_or(ErrorCode::AUTH_REQUIRED),
        }
    }

    /// Whether HTTP requests without credentials are served.
    pub fn http_open(&self) -> bool {
        self.http_anonymous.is_some()
    }

    /// Whether connections without credentials are accepted.
    pub fn allows_anonymous(&self) -> bool {
        self.anonymous.is_some()
    }

    /// Who HELLO's headers say the connection is: `AUTH_REQUIRED` when they carry no
    /// credentials and anonymous access is off, `AUTH_FAILED` when they carry wrong or
    /// unsupported ones.
    ///
    /// # Errors
    /// The code to refuse the connection with.
    pub fn authenticate(&self, headers: &Headers<'_>) -> Result<Arc<Identity>, ErrorCode> {
        if headers.get("user").is_some() {
            // Passwords are checked off the shard's thread (`verify_user`) before HELLO is
            // handled; one that reaches here was not, and is refused rather than ignored.
            return Err(ErrorCode::AUTH_FAILED);
        }
        if let Some(token) = headers.get("jwt") {
            return self.verify_jwt(token);
        }
        self.authenticate_token(headers.get("token"))
    }

    /// Checks a JWT against the configured keys.
    ///
    /// # Errors
    /// `AUTH_FAILED` when no key is configured or the token is not valid.
    pub fn verify_jwt(&self, token: &str) -> Result<Arc<Identity>, ErrorCode> {
        self.jwt
            .as_ref()
            .and_then(|jwt| jwt.verify(token, &self.roles))
            .map(Arc::new)
            .ok_or(ErrorCode::AUTH_FAILED)
    }

    /// Checks a user's password. Slow on purpose (argon2): call it off the shard's thread.
    ///
    /// # Errors
    /// `AUTH_FAILED` for an unknown user or a wrong password (alike, in result and in time).
    pub fn verify_user(&self, user: &str, pass: &str) -> Result<Arc<Identity>, ErrorCode> {
        match self.users.get(user) {
            Some((hash, identity)) if password::verify(hash, pass) => Ok(identity.clone()),
            Some(_) => Err(ErrorCode::AUTH_FAILED),
            None => {
                password::verify_decoy(pass);
                Err(ErrorCode::AUTH_FAILED)
            }
        }
    }

    /// Who a token (or none) says the client is: the HTTP edge's `Authorization: Bearer`.
    ///
    /// # Errors
    /// `AUTH_FAILED` for an unknown token, `AUTH_REQUIRED` for none without anonymous access.
    pub fn authenticate_token(&self, token: Option<&str>) -> Result<Arc<Identity>, ErrorCode> {
        if let Some(token) = token {
            let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            let mut found = None;
            // Every digest is compared, so timing does not say which one matched.
            for (digest, identity) in &self.tokens {
                if same(digest, &presented) && found.is_none() {
                    found = Some(identity);
                }
            }
            if let Some(identity) = found {
                return Ok(identity.clone());
            }
            // An HTTP Bearer credential may be a JWT as well.
            if self.jwt.is_some() && token.split('.').count() == 3 {
                return self.verify_jwt(token);
            }
            return Err(ErrorCode::AUTH_FAILED);
        }
        self.anonymous.clone().ok_or(ErrorCode::AUTH_REQUIRED)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use shardbus_protocol::HeadersBuilder;

    fn hex(token: &str) -> String {
        Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn tokens_name_their_role_and_anything_else_is_refused() {
        let config = AuthConfig {
            anonymous: false,
            tokens: vec![TokenConfig {
                name: "gateway".into(),
                sha256: hex("s3cret"),
                role: "guest".into(),
                permissions: None,
            }],
            ..AuthConfig::default()
        };
        let auth = Authenticator::new(&config).unwrap();
        let mut headers = HeadersBuilder::new();
        headers.insert("token", "s3cret").unwrap();
        let who = auth.authenticate(&headers.headers()).unwrap();
        assert_eq!((&*who.name, &*who.role), ("gateway", "guest"));
        let mut wrong = HeadersBuilder::new();
        wrong.insert("token", "guess").unwrap();
        assert_eq!(
            auth.authenticate(&wrong.headers()).err(),
            Some(ErrorCode::AUTH_FAILED)
        );
        let none = HeadersBuilder::new();
        assert_eq!(
            auth.authenticate(&none.headers()).err(),
            Some(ErrorCode::AUTH_REQUIRED)
        );
    }

    #[test]
    fn unknown_roles_and_bad_digests_are_configuration_errors() {
        let mut config = AuthConfig {
            anonymous_role: "nobody".into(),
            ..AuthConfig::default()
        };
        assert!(matches!(
            Authenticator::new(&config),
            Err(AuthConfigError::UnknownRole { .. })
        ));
        config.anonymous_role = "admin".into();
        config.tokens.push(TokenConfig {
            name: "t".into(),
            sha256: "xyz".into(),
            role: "user".into(),
            permissions: None,
        });
        assert!(matches!(
            Authenticator::new(&config),
            Err(AuthConfigError::BadDigest { .. })
        ));
    }
}
