//! JSON Web Key Sets for the Supabase Realtime front.
//!
//! Owns: the keys of `[supabase] jwks` / `jwks_file` by `kid`, each with the
//! signature algorithms it may verify (its `alg` if the JWK names one, else
//! every algorithm of its key type). Receives: the JWKS JSON text when the
//! config is loaded. Hands on: the key for a token's `kid` and `alg` to
//! [`super::jwt::Verifier`], which selects keys the way Supabase does
//! (realtime `jwt_verification.ex`): RS/PS/ES/EdDSA tokens only by `kid`;
//! HS tokens by an `oct` key with their `kid`, else the shared secrets.
//!
//! Parsing and the key math are `jsonwebtoken`'s (RustCrypto backend).
//! Keys marked `"use": "enc"` are skipped: they never sign tokens.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

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

/// One key and what it may verify.
#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    algs: Vec<Algorithm>,
}

/// A parsed key set, by `kid`.
#[derive(Clone, Default)]
pub struct Jwks {
    keys: HashMap<String, Key>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
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

impl Jwks {
    /// Parses `{"keys": [..]}`; every signing key needs a unique `kid`.
    pub fn parse(json: &str) -> Result<Jwks, JwksError> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| JwksError::Json {
            detail: e.to_string(),
        })?;
        let mut keys = HashMap::new();
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
            let algs = algorithms(jwk).map_err(unusable)?;
            let decoding = DecodingKey::from_jwk(jwk).map_err(|e| unusable(e.to_string()))?;
            if keys.contains_key(&kid) {
                return Err(JwksError::DuplicateKid { kid });
            }
            keys.insert(kid, Key { decoding, algs });
        }
        if keys.is_empty() {
            return Err(JwksError::Empty);
        }
        Ok(Jwks { keys })
    }

    /// The key with `kid`, if it may verify `alg`.
    pub fn key(&self, kid: &str, alg: Algorithm) -> Option<&DecodingKey> {
        self.keys
            .get(kid)
            .filter(|k| k.algs.contains(&alg))
            .map(|k| &k.decoding)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key (never true after [`Jwks::parse`]).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ec_jwk(kid: &str) -> serde_json::Value {
        // Any P-256 point parses; the tests in `jwt` sign with real keys.
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = kp.public_key_raw();
        let b64 = |b: &[u8]| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        };
        json!({"kty":"EC","crv":"P-256","kid":kid,"x":b64(&raw[1..33]),"y":b64(&raw[33..65])})
    }

    #[test]
    fn keys_by_kid_and_algorithm() {
        let set = json!({"keys":[
            ec_jwk("ec1"),
            {"kty":"oct","kid":"hs1","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA","alg":"HS256"},
            {"kty":"oct","kid":"enc","k":"AAAA","use":"enc"}
        ]});
        let j = Jwks::parse(&set.to_string()).unwrap();
        assert_eq!(j.len(), 2);
        assert!(j.key("ec1", Algorithm::ES256).is_some());
        assert!(j.key("ec1", Algorithm::RS256).is_none());
        assert!(j.key("hs1", Algorithm::HS256).is_some());
        assert!(j.key("hs1", Algorithm::HS512).is_none(), "alg pins it");
        assert!(j.key("enc", Algorithm::HS256).is_none());
        assert!(j.key("nope", Algorithm::ES256).is_none());
    }

    #[test]
    fn refusals() {
        let p = |v: serde_json::Value| Jwks::parse(&v.to_string()).unwrap_err();
        assert!(matches!(
            Jwks::parse("{").unwrap_err(),
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
}
