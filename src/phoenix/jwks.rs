//! JSON Web Key Sets for the Supabase Realtime front.
//!
//! Owns: the verifying keys of `[supabase] jwks` / `jwks_file` by `kid`,
//! each with the signature algorithms it may verify. Receives: the key set
//! config has already parsed and checked ([`JwksSpec`]: `kid`s, algorithms,
//! decoded key bytes), turned into `jsonwebtoken` keys here
//! ([`Jwks::from`]). Hands on: the key for a token's `kid` and `alg` to
//! [`super::jwt::Verifier`], which selects keys the way Supabase does
//! (realtime `jwt_verification.ex`): RS/PS/ES/EdDSA tokens only by `kid`;
//! HS tokens by an `oct` key with their `kid`, else the shared secrets.
//!
//! The key math is `jsonwebtoken`'s (RustCrypto backend).

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey};

// Why a JWKS was refused: the rules are config's.
pub use crate::config::supabase::JwksError;
use crate::config::supabase::{JwksSpec, KeyMaterial};

/// One key and what it may verify.
#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    algs: Vec<Algorithm>,
}

/// A key set, by `kid`.
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

/// The `jsonwebtoken` key for decoded key bytes (the same key
/// `DecodingKey::from_jwk` builds from the JWK they were decoded from).
fn decoding_key(m: &KeyMaterial) -> DecodingKey {
    match m {
        KeyMaterial::Hmac(secret) => DecodingKey::from_secret(secret),
        KeyMaterial::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
        KeyMaterial::Ec(point) => DecodingKey::from_ec_der(point),
        KeyMaterial::Ed(public) => DecodingKey::from_ed_der(public),
    }
}

impl From<&JwksSpec> for Jwks {
    fn from(spec: &JwksSpec) -> Jwks {
        let keys = spec
            .keys
            .iter()
            .map(|k| {
                let key = Key {
                    decoding: decoding_key(&k.material),
                    algs: k.algorithms.clone(),
                };
                (k.kid.to_string(), key)
            })
            .collect();
        Jwks { keys }
    }
}

impl Jwks {
    /// Parses and checks `{"keys": [..]}` as config does
    /// ([`JwksSpec::parse`]), then builds the keys.
    pub fn parse(json: &str) -> Result<Jwks, JwksError> {
        JwksSpec::parse(json).map(|spec| Jwks::from(&spec))
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

    /// Whether the set holds no key (never true for a parsed set).
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
    fn keys_are_the_ones_jsonwebtoken_builds_from_the_jwk() {
        use jsonwebtoken::DecodingKeyKind as K;
        let same = |a: &DecodingKey, b: &DecodingKey| {
            a.family() == b.family()
                && match (a.kind(), b.kind()) {
                    (K::SecretOrDer(x), K::SecretOrDer(y)) => x == y,
                    (K::RsaModulusExponent { n, e }, K::RsaModulusExponent { n: n2, e: e2 }) => {
                        n == n2 && e == e2
                    }
                    _ => false,
                }
        };
        let keys = [
            (ec_jwk("ec"), Algorithm::ES256),
            (
                json!({"kty":"oct","kid":"hs","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}),
                Algorithm::HS384,
            ),
            (
                json!({"kty":"RSA","kid":"rsa","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}),
                Algorithm::PS512,
            ),
            (
                json!({"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
                Algorithm::EdDSA,
            ),
        ];
        let set = json!({"keys": keys.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()});
        let j = Jwks::parse(&set.to_string()).unwrap();
        for (jwk, alg) in &keys {
            let direct =
                DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
            let kid = jwk["kid"].as_str().unwrap();
            assert!(same(j.key(kid, *alg).unwrap(), &direct), "{kid}");
        }
    }
}
