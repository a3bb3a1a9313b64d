//! ServiceAccount tokens: JWTs signed with HS256 by a per-installation key kept in the data directory
//! (`sa-signing-key`, mode 0600), carrying the claims kube-apiserver's bound tokens carry (`iss`,
//! `sub`, `aud`, `exp`, `iat`, `nbf`, `kubernetes.io.{namespace, serviceaccount.{name, uid}}`).
//! Verification checks the signature (in constant time), the issuer, the audience and the validity
//! window; that the ServiceAccount still exists with that uid is checked by the caller.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The issuer and default audience of tokens, as a kind/kubeadm cluster's.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is not a JWT")]
    Malformed,
    #[error("invalid signature")]
    Signature,
    #[error("token has invalid claims: {0}")]
    Claims(&'static str),
    #[error("token has expired")]
    Expired,
    #[error("token audiences {0:?} is invalid for the target audiences {1:?}")]
    Audience(Vec<String>, Vec<String>),
}

/// Errors loading or creating the signing key.
#[derive(Debug, thiserror::Error)]
#[error("ServiceAccount signing key {path}: {source}")]
pub struct KeyError {
    path: String,
    #[source]
    source: std::io::Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountRef {
    pub name: String,
    pub uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: ServiceAccountRef,
}

/// The claims of a ServiceAccount token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    pub nbf: i64,
    pub sub: String,
}

impl Claims {
    /// Claims for `namespace/name` (uid `uid`) valid from `now` for `seconds`.
    pub fn new(
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: Vec<String>,
        now: i64,
        seconds: i64,
    ) -> Claims {
        Claims {
            aud: audiences,
            exp: now + seconds,
            iat: now,
            iss: ISSUER.into(),
            kubernetes: KubernetesClaims {
                namespace: namespace.into(),
                serviceaccount: ServiceAccountRef {
                    name: name.into(),
                    uid: uid.into(),
                },
            },
            nbf: now,
            sub: format!("system:serviceaccount:{namespace}:{name}"),
        }
    }
}

/// Signs and verifies tokens.
#[derive(Debug)]
pub struct Signer {
    key: hmac::Key,
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Signer {
    pub fn from_secret(secret: &[u8]) -> Signer {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The installation's key: read from `dir/sa-signing-key`, or generated and written there.
    pub fn load_or_create(dir: &Path) -> Result<Signer, KeyError> {
        let path = dir.join("sa-signing-key");
        let err = |source| KeyError {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(&path) {
            Ok(secret) if secret.len() >= 32 => return Ok(Signer::from_secret(&secret)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        crate::write_private(&path, &secret).map_err(err)?;
        Ok(Signer::from_secret(&secret))
    }

    pub fn issue(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let tag = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks signature, issuer, validity at `now` and that one of `audiences` is in the token.
    pub fn verify(&self, token: &str, audiences: &[String], now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError::Malformed)?;
        if header["alg"] != "HS256" {
            return Err(TokenError::Signature);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        // ring compares the tag in constant time.
        hmac::verify(&self.key, signing_input.as_bytes(), &signature).map_err(|_| TokenError::Signature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(TokenError::Claims("malformed payload"))?;
        if claims.iss != ISSUER {
            return Err(TokenError::Claims("issuer"));
        }
        // A minute of leeway, as the upstream JWT validator allows.
        if now > claims.exp + 60 {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now + 60 {
            return Err(TokenError::Claims("not valid yet"));
        }
        if !claims.aud.iter().any(|a| audiences.contains(a)) {
            return Err(TokenError::Audience(claims.aud.clone(), audiences.to_vec()));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aud() -> Vec<String> {
        vec![ISSUER.to_string()]
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let s = Signer::from_secret(&[7; 32]);
        let claims = Claims::new("ns", "bot", "u-1", aud(), 1_000_000, 3600);
        let token = s.issue(&claims);
        assert_eq!(s.verify(&token, &aud(), 1_000_100), Ok(claims));
        assert_eq!(s.verify(&token, &aud(), 1_003_661), Err(TokenError::Expired));
        assert!(matches!(
            s.verify(&token, &["other".to_string()], 1_000_100),
            Err(TokenError::Audience(..))
        ));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let s = Signer::from_secret(&[7; 32]);
        let token = s.issue(&Claims::new("ns", "bot", "u-1", aud(), 1_000_000, 3600));
        let other = Signer::from_secret(&[8; 32]);
        assert_eq!(
            other.verify(&token, &aud(), 1_000_000),
            Err(TokenError::Signature)
        );
        let forged = Claims::new("kube-system", "admin", "u-1", aud(), 1_000_000, 3600);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &payload;
        assert_eq!(
            s.verify(&parts.join("."), &aud(), 1_000_000),
            Err(TokenError::Signature)
        );
        assert_eq!(s.verify("abc", &aud(), 0), Err(TokenError::Malformed));
    }

    #[test]
    fn the_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::load_or_create(dir.path()).unwrap();
        let token = a.issue(&Claims::new("ns", "bot", "u", aud(), now(), 600));
        let b = Signer::load_or_create(dir.path()).unwrap();
        assert!(b.verify(&token, &aud(), now()).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("sa-signing-key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
