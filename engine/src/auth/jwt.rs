//! JWT credentials (jsonwebtoken): HS256 with a shared secret, RS256 and ES256 with public keys
//! from PEM files. A token is checked with the one key configured for the algorithm its header
//! names — never another kind (no key confusion), never `none` — and its `exp` (required),
//! `nbf`, and, when configured, `iss` and `aud`. Its `sub` names the client, a claim (`role`)
//! its role, and an optional `permissions` claim replaces the role's permissions. The
//! connection is closed with `AUTH_EXPIRED` when `exp` passes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};

use super::{AuthConfigError, Identity, Permissions};

/// The `[auth.jwt]` section; JWTs are refused while no key is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// The HS256 shared secret.
    pub hs256_secret: Option<String>,
    /// The RS256 public key, PEM.
    pub rs256_public_key: Option<PathBuf>,
    /// The ES256 (P-256) public key, PEM.
    pub es256_public_key: Option<PathBuf>,
    /// The `iss` a token must carry, when set.
    pub issuer: Option<String>,
    /// The `aud` a token must carry, when set.
    pub audience: Option<String>,
    /// The claim that names the role.
    pub role_claim: String,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_s: u64,
}

impl Default for JwtConfig {
    fn default() -> JwtConfig {
        JwtConfig {
            hs256_secret: None,
            rs256_public_key: None,
            es256_public_key: None,
            issuer: None,
            audience: None,
            role_claim: "role".to_owned(),
            leeway_s: 5,
        }
    }
}

/// Checks JWTs against the configured keys.
pub(crate) struct JwtVerifier {
    keys: Vec<(Algorithm, DecodingKey)>,
    pub(super) config: JwtConfig,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<_> = self.keys.iter().map(|(a, _)| a).collect();
        f.debug_struct("JwtVerifier")
            .field("algorithms", &algorithms)
            .finish_non_exhaustive()
    }
}

fn key_error(what: &str, error: impl std::fmt::Display) -> AuthConfigError {
    AuthConfigError::Jwt(format!("{what}: {error}"))
}

impl JwtVerifier {
    /// The verifier `config` describes; `None` when it sets no key.
    pub(crate) fn new(config: &JwtConfig) -> Result<Option<JwtVerifier>, AuthConfigError> {
        let mut keys = Vec::new();
        if let Some(secret) = &config.hs256_secret {
            keys.push((
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        if let Some(path) = &config.rs256_public_key {
            let pem = std::fs::read(path).map_err(|e| key_error(&path.display().to_string(), e))?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .map_err(|e| key_error(&path.display().to_string(), e))?;
            keys.push((Algorithm::RS256, key));
        }
        if let Some(path) = &config.es256_public_key {
            let pem = std::fs::read(path).map_err(|e| key_error(&path.display().to_string(), e))?;
            let key = DecodingKey::from_ec_pem(&pem)
                .map_err(|e| key_error(&path.display().to_string(), e))?;
            keys.push((Algorithm::ES256, key));
        }
        Ok((!keys.is_empty()).then(|| JwtVerifier {
            keys,
            config: config.clone(),
        }))
    }

    /// Who `token` says the client is, with its expiry; `None` when it is not a valid token
    /// signed by a configured key.
    pub(crate) fn verify(
        &self,
        token: &str,
        roles: &BTreeMap<String, Arc<Permissions>>,
    ) -> Option<Identity> {
        let header = decode_header(token).ok()?;
        let (algorithm, key) = self.keys.iter().find(|(a, _)| *a == header.alg)?;
        let mut validation = Validation::new(*algorithm);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway_s;
        validation.validate_aud = self.config.audience.is_some();
        if let Some(audience) = &self.config.audience {
            validation.set_audience(&[audience]);
            validation.set_required_spec_claims(&["exp", "aud"]);
        }
        if let Some(issuer) = &self.config.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = decode::<serde_json::Value>(token, key, &validation)
            .ok()?
            .claims;
        let role = claims.get(&self.config.role_claim)?.as_str()?;
        let from_claims = claims.get("permissions").is_some();
        let permissions = match claims.get("permissions") {
            Some(value) => Arc::new(serde_json::from_value::<Permissions>(value.clone()).ok()?),
            None => Arc::clone(roles.get(role)?),
        };
        Some(Identity {
            name: claims
                .get("sub")
                .and_then(|s| s.as_str())
                .unwrap_or("jwt")
                .into(),
            role: role.into(),
            permissions,
            expires: claims.get("exp").and_then(serde_json::Value::as_u64),
            credential: super::Credential::Jwt { from_claims },
        })
    }
}
