//! `[supabase] jwks` / `jwks_file`: a JSON Web Key Set, parsed and checked
//! at load time into plain key data.
//!
//! Owns: the rules for a key set — JSON of the shape `{"keys": [..]}`,
//! every signing key with a unique `kid`, keys marked `"use": "enc"`
//! skipped (they never sign tokens), each key's algorithms (its `alg` if
//! the JWK names one, else every algorithm of its key type) and its key
//! material decoded (base64url). Receives: the JSON text (inline or read
//! from the file). Hands on: a [`JwksSpec`] in `Supabase::jwks`; the Phoenix
//! front builds its verifying keys from it.
//!
//! Parsing and decoding are `jsonwebtoken`'s, so a set accepted here is one
//! `jsonwebtoken` can verify with.

use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};

use crate::config::ctx::{Ctx, SpStr};
use crate::config::error::ConfigError;

/// Why a JWKS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not JSON of the shape `{"keys": [..]}`.
    #[error("not a JSON Web Key Set ({detail})")]
    Json {
        /// The parser's message.
        detail: String,
    },
    /// No signing key in the set.
    #[error("the set has no signing keys")]
    Empty,
    /// A key without `kid`.
    #[error("key {index} has no `kid` (tokens select their key by `kid`)")]
    NoKid {
        /// Its position in `keys`.
        index: usize,
    },
    /// Two keys with one `kid`.
    #[error("two keys have the kid `{kid}`")]
    DuplicateKid {
        /// The repeated `kid`.
        kid: String,
    },
    /// A key that cannot verify any supported signature.
    #[error("key `{kid}` cannot be used: {detail}")]
    Unusable {
        /// Its `kid`.
        kid: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// The decoded public (or, for `oct`, shared) key bytes of one JWK.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// `oct`: the HMAC secret.
    Hmac(Vec<u8>),
    /// `RSA`: modulus and exponent, big-endian.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// `EC` (P-256, P-384): the uncompressed point `04 || x || y`.
    Ec(Vec<u8>),
    /// `OKP` (Ed25519): the public key.
    Ed(Vec<u8>),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyMaterial::Hmac(_) => "Hmac",
            KeyMaterial::Rsa { .. } => "Rsa",
            KeyMaterial::Ec(_) => "Ec",
            KeyMaterial::Ed(_) => "Ed",
        })
    }
}

/// One signing key of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwkSpec {
    /// The `kid` tokens select it by.
    pub kid: Arc<str>,
    /// The signature algorithms it may verify.
    pub algorithms: Vec<Algorithm>,
    /// The key itself.
    pub material: KeyMaterial,
}

/// A validated key set: at least one key, `kid`s unique, in file order.
#[derive(Clone, PartialEq, Eq)]
pub struct JwksSpec {
    /// The signing keys.
    pub keys: Vec<JwkSpec>,
}

impl std::fmt::Debug for JwksSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&str> = self.keys.iter().map(|k| &*k.kid).collect();
        kids.sort_unstable();
        f.debug_struct("Jwks").field("kids", &kids).finish()
    }
}

/// The algorithms a key may verify: its own `alg`, else its type's.
fn algorithms(jwk: &Jwk) -> Result<Vec<Algorithm>, String> {
    if let Some(a) = jwk.common.key_algorithm {
        return Algorithm::try_from(a)
            .map(|a| vec![a])
            .map_err(|_| format!("`alg` {a} is not a signature algorithm"));
    }
    use Algorithm::*;
    Ok(match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            ref c => return Err(format!("curve {c:?} is not supported (use P-256 or P-384)")),
        },
        AlgorithmParameters::OctetKeyPair(_) => vec![EdDSA],
        AlgorithmParameters::OctetKey(_) => vec![HS256, HS384, HS512],
        _ => return Err("unsupported key type".into()),
    })
}

/// The key bytes of `jwk`, decoded by `jsonwebtoken` (so its errors are the
/// ones reported, and the bytes are exactly what it would verify with).
fn material(jwk: &Jwk) -> Result<KeyMaterial, String> {
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    Ok(match (key.family(), key.kind()) {
        (AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => KeyMaterial::Rsa {
            n: n.clone(),
            e: e.clone(),
        },
        (AlgorithmFamily::Hmac, DecodingKeyKind::SecretOrDer(b)) => KeyMaterial::Hmac(b.clone()),
        (AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(b)) => KeyMaterial::Ec(b.clone()),
        (AlgorithmFamily::Ed, DecodingKeyKind::SecretOrDer(b)) => KeyMaterial::Ed(b.clone()),
        _ => return Err("unsupported key type".into()),
    })
}

impl JwksSpec {
    /// Parses `{"keys": [..]}`; every signing key needs a unique `kid`.
    pub fn parse(json: &str) -> Result<JwksSpec, JwksError> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| JwksError::Json {
            detail: e.to_string(),
        })?;
        let mut keys: Vec<JwkSpec> = Vec::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
                continue;
            }
            let kid = jwk
                .common
                .key_id
                .clone()
                .filter(|k| !k.is_empty())
                .ok_or(JwksError::NoKid { index })?;
            let unusable = |detail: String| JwksError::Unusable {
                kid: kid.clone(),
                detail,
            };
            let algorithms = algorithms(jwk).map_err(unusable)?;
            let material = material(jwk).map_err(unusable)?;
            if keys.iter().any(|k| *k.kid == *kid) {
                return Err(JwksError::DuplicateKid { kid });
            }
            keys.push(JwkSpec {
                kid: Arc::from(kid),
                algorithms,
                material,
            });
        }
        if keys.is_empty() {
            return Err(JwksError::Empty);
        }
        Ok(JwksSpec { keys })
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key (never true after [`JwksSpec::parse`]).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// `jwks` (the JSON inline) or `jwks_file` (a path to it), not both.
pub(super) fn validate(
    cx: &Ctx<'_>,
    jwks: Option<&SpStr>,
    jwks_file: Option<&SpStr>,
) -> Result<Option<Arc<JwksSpec>>, ConfigError> {
    let fix = "give the project's key set, e.g. the JSON of https://<ref>.supabase.co/auth/v1/.well-known/jwks.json";
    let (key, v, text) = match (jwks, jwks_file) {
        (None, None) => return Ok(None),
        (Some(_), Some(f)) => {
            return Err(cx.err(
                "supabase.jwks_file",
                Some(f.span()),
                "`jwks` and `jwks_file` are both set",
                "keep one: the key set inline (`jwks`) or a path to it (`jwks_file`)",
            ));
        }
        (Some(v), None) => ("supabase.jwks", v, cx.string("supabase.jwks", v)?),
        (None, Some(f)) => {
            let path = cx.string("supabase.jwks_file", f)?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                cx.err(
                    "supabase.jwks_file",
                    Some(f.span()),
                    format!("cannot read {path}: {e}"),
                    "point jwks_file at a JSON key set (relative to where portico runs)",
                )
            })?;
            ("supabase.jwks_file", f, text)
        }
    };
    JwksSpec::parse(&text)
        .map(|j| Some(Arc::new(j)))
        .map_err(|e| cx.err(key, Some(v.span()), e.to_string(), fix))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ec_jwk(kid: &str) -> serde_json::Value {
        // Any P-256 point parses.
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = kp.public_key_raw();
        let b64 = |b: &[u8]| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        };
        json!({"kty":"EC","crv":"P-256","kid":kid,"x":b64(&raw[1..33]),"y":b64(&raw[33..65])})
    }

    #[test]
    fn refusals() {
        let p = |v: serde_json::Value| JwksSpec::parse(&v.to_string()).unwrap_err();
        assert!(matches!(
            JwksSpec::parse("{").unwrap_err(),
            JwksError::Json { .. }
        ));
        assert_eq!(p(json!({"keys":[]})), JwksError::Empty);
        let mut no_kid = ec_jwk("x");
        no_kid.as_object_mut().unwrap().remove("kid");
        assert_eq!(p(json!({"keys":[no_kid]})), JwksError::NoKid { index: 0 });
        assert_eq!(
            p(json!({"keys":[ec_jwk("a"), ec_jwk("a")]})),
            JwksError::DuplicateKid { kid: "a".into() }
        );
        let mut enc_alg = ec_jwk("b");
        enc_alg["alg"] = json!("RSA-OAEP");
        assert!(matches!(
            p(json!({"keys":[enc_alg]})),
            JwksError::Unusable { .. }
        ));
    }

    #[test]
    fn keys_are_decoded_with_their_algorithms() {
        let set = json!({"keys":[
            ec_jwk("ec1"),
            {"kty":"oct","kid":"hs1","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA","alg":"HS256"},
            {"kty":"oct","kid":"enc","k":"AAAA","use":"enc"}
        ]});
        let j = JwksSpec::parse(&set.to_string()).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j.keys[0].algorithms, vec![Algorithm::ES256]);
        assert!(matches!(&j.keys[0].material, KeyMaterial::Ec(p) if p.len() == 65 && p[0] == 4));
        assert_eq!(j.keys[1].algorithms, vec![Algorithm::HS256]);
        assert_eq!(
            j.keys[1].material,
            KeyMaterial::Hmac(b"secret-secret-secret-secret-secret".to_vec())
        );
    }
}
